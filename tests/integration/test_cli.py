"""The command line contract: validate, schema, migrate, sync, status; exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.cli import main
from connector.mapping import REPO_MAPPINGS
from tests.conftest import ENV, write_config
from tests.integration.helpers import site, world


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def test_validate_ok_and_config_discovery_by_env(tmp_path, sqlite_url, monkeypatch, capsys):
    path = write_config(tmp_path, sqlite_url, {"servicenow": {
        "kind": "servicenow", "url": "https://acme.service-now.com",
        "auth": {"user": "u", "password": "${SN_PASSWORD}"}, "mapping": "servicenow-incident"}})
    monkeypatch.setenv("VLOOP_CONFIG", str(path))
    assert main(["validate"]) == 0
    assert "OK (1 systems)" in capsys.readouterr().out


def test_validate_reports_every_problem_and_exits_2(tmp_path, capsys):
    path = tmp_path / "vloop.yaml"
    path.write_text("state: sqlite:///x.db\nsystems:\n  a:\n    kind: servicenow\n    url: https://x\n"
                    "    auth: {user: u, password: '${NOPE}'}\n    mapping: servicenow-incident\n    colour: red\n"
                    "  b:\n    kind: jira\n    url: https://y\n    auth: {email: e@x.com, token: t0ken123}\n"
                    "    mapping: missing.yaml\n")
    assert main(["-c", str(path), "validate"]) == 2
    err = capsys.readouterr().err.replace(f"{tmp_path}/", "")
    lines = err.strip().splitlines()
    assert lines == [
        "vloop.yaml:6: systems.a.auth.password: environment variable NOPE is not set",
        "vloop.yaml:8: systems.a.colour: unknown key",
        lines[2],
    ]
    assert lines[2].startswith("vloop.yaml:13: systems.b.mapping: cannot read mapping") and "missing.yaml" in lines[2]


def test_missing_config_file_is_a_clear_exit_2(tmp_path, capsys):
    assert main(["-c", str(tmp_path / "nope.yaml"), "validate"]) == 2
    assert "nope.yaml: cannot read file" in capsys.readouterr().err


def test_check_connection_finds_a_field_the_instance_does_not_have(tmp_path, sqlite_url, capsys):
    mapping = tmp_path / "custom.yaml"
    mapping.write_text((REPO_MAPPINGS / "servicenow-incident.yaml").read_text().replace(
        "  category: category", "  category: u_cx_category"))
    with site("servicenow", world(10)) as sn, site("jira", world(10)) as jira:
        path = write_config(tmp_path, sqlite_url, {"servicenow": sn.system(mapping="custom.yaml"),
                                                   "jira": jira.system()})
        code = main(["-c", str(path), "validate", "--check-connection"])
    err = capsys.readouterr().err.replace(f"{tmp_path}/", "")
    assert code == 2
    assert err.strip() == ("vloop.yaml:9: systems.servicenow.mapping: mapping custom.yaml reads u_cx_category, "
                           "which servicenow does not have")


def test_check_connection_names_a_jira_field_the_site_lacks(tmp_path, sqlite_url, capsys):
    mapping = tmp_path / "jsm.yaml"
    mapping.write_text((REPO_MAPPINGS / "jira-service-management.yaml").read_text().replace(
        "{Category}", "{Kategorie}"))
    with site("jira", world(10)) as jira:
        path = write_config(tmp_path, sqlite_url, {"jira": jira.system(mapping="jsm.yaml")})
        code = main(["-c", str(path), "validate", "--check-connection"])
    err = capsys.readouterr().err
    assert code == 2 and "the site has no field named 'Kategorie'" in err


def test_sync_status_and_json_output(tmp_path, sqlite_url, capsys):
    w = world(120)
    with site("servicenow", w) as sn, site("jira", world(90, seed=8)) as jira:
        path = write_config(tmp_path, sqlite_url, {"servicenow": sn.system(), "jira": jira.system()})
        assert main(["-c", str(path), "sync", "--json"]) == 0
        run = json.loads(capsys.readouterr().out)
        assert main(["-c", str(path), "sync", "--system", "jira"]) == 0
        human = capsys.readouterr().out
        assert main(["-c", str(path), "status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert main(["-c", str(path), "status"]) == 0
        table = capsys.readouterr().out
    assert run["status"] == "ok" and [s["system"] for s in run["systems"]] == ["servicenow", "jira"]
    resolved = sum(1 for t in w.tickets if t.resolved_at is not None)
    assert run["systems"][0]["new_resolutions"] == resolved
    assert human.startswith("Sync run 2: ok") and "servicenow" not in human
    by_name = {s["system"]: s for s in status["systems"]}
    assert by_name["servicenow"]["resolutions"] == resolved and by_name["servicenow"]["cursor"]["at"]
    assert by_name["servicenow"]["last_run"]["id"] == 1 and by_name["jira"]["last_run"]["id"] == 2
    assert status["last_run"]["id"] == 2 and status["last_run"]["status"] == "ok"
    assert "servicenow" in table and str(resolved) in table


def test_unknown_system_name_is_a_usage_error(tmp_path, sqlite_url, capsys):
    with site("servicenow", world(5)) as sn:
        path = write_config(tmp_path, sqlite_url, {"servicenow": sn.system()})
        assert main(["-c", str(path), "sync", "--system", "snow"]) == 2
    assert "no system named 'snow'" in capsys.readouterr().err


def test_bad_since_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["sync", "--since", "yesterday"])
    assert info.value.code == 2 and "not an ISO 8601 date/time" in capsys.readouterr().err


def test_schema_is_json_schema_for_the_config(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Virtuous Loop configuration"
    assert schema["additionalProperties"] is False and "systems" in schema["properties"]


def test_migrate_creates_the_schema_on_postgres(tmp_path, pg_url, capsys):
    path = write_config(tmp_path, pg_url, {})
    assert main(["-c", str(path), "migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    from connector.store.db import create, pending_migrations

    engine = create(pg_url)
    assert pending_migrations(engine) == []
    engine.dispose()


def test_module_entry_point_runs(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "connector", "--version"], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], check=False)
    assert out.returncode == 0 and out.stdout.startswith("vloop 0.1.0")
