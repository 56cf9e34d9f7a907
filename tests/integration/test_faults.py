"""Faults on the wire: the run completes when it can, and otherwise stops with a clear message and a
cursor that never passes anything not stored. A failing system does not stop the other one."""

from __future__ import annotations

from collections import Counter

import pytest

from connector.cli import main
from connector.sandbox.server import Fault, Steady
from connector.store import Store
from tests.conftest import ENV, write_config
from tests.integration.helpers import run_sync, site, world

KINDS = ["servicenow", "jira"]
SEARCH = {"servicenow": "/table/incident", "jira": "/search"}


@pytest.mark.parametrize("kind", KINDS)
def test_429_storms_503s_timeouts_and_resets_do_not_lose_or_double_anything(kind, state_url, tmp_path):
    w = world(600, seed=11)
    with site(kind, w, steady=Steady(fail_rate=0.15, seed=5)) as s:
        path = SEARCH[kind]
        s.server.faults.inject(Fault("status", times=3, path_contains=path, status=429, retry_after="0.05"))
        s.server.faults.inject(Fault("reset", times=2, path_contains=path, after=2))
        s.server.faults.inject(Fault("delay", times=1, path_contains=path, after=3, delay_s=1.0))
        system = s.system(pull={"page_size": 50}, http={"read_timeout": 0.4, "retry": {
            "max_wait": "100ms", "max_attempts": 12}})
        result = run_sync(tmp_path, state_url, {kind: system})
        statuses = Counter(r.status for r in s.server.faults.requests)
        expected = {s.ticket_id(t.seq) for t in w.tickets if t.resolved_at is not None}
    assert result.status == "ok", result.systems[0].error
    assert statuses[429] >= 3 and statuses[503] > 0 and statuses[0] >= 2  # the faults really happened
    store = Store.open(state_url)
    keys = store.resolution_keys(kind)
    store.close()
    assert {tid for tid, _ in keys} == expected and len(keys) == len(expected)


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_json_mid_pull_stops_with_the_cursor_on_the_last_stored_page(kind, sqlite_url, tmp_path):
    w = world(300, seed=12)
    with site(kind, w) as s:
        s.server.faults.inject(Fault("malformed", path_contains=SEARCH[kind], after=3))
        system = s.system(pull={"page_size": 40, "commit_every": 40})
        failed = run_sync(tmp_path, sqlite_url, {kind: system})
        store = Store.open(sqlite_url)
        cursor = store.cursor(kind)
        stored = store.resolution_keys(kind)
        store.close()
        assert failed.status == "failed"
        error = failed.systems[0].error or ""
        assert error.startswith(f"{kind}: GET ") and "malformed JSON" in error
        assert cursor is not None and stored
        assert max(at for _, at in stored) <= cursor.at or kind == "jira"
        assert all(at <= cursor.at for _, at in stored if kind == "servicenow")
        again = run_sync(tmp_path, sqlite_url, {kind: system})
        expected = {s.ticket_id(t.seq) for t in w.tickets if t.resolved_at is not None}
    assert again.status == "ok"
    store = Store.open(sqlite_url)
    keys = store.resolution_keys(kind)
    store.close()
    assert {tid for tid, _ in keys} == expected and len(keys) == len(expected)


def test_a_400_is_reported_not_retried_and_the_other_system_still_syncs(sqlite_url, tmp_path, monkeypatch,
                                                                         capsys):
    with site("servicenow", world(40)) as sn, site("jira", world(40, seed=4)) as jira:
        bad_jql = jira.system(jql="project = = ITSD")
        path = write_config(tmp_path, sqlite_url, {"servicenow": sn.system(), "jira": bad_jql})
        for k, v in ENV.items():
            monkeypatch.setenv(k, v)
        code = main(["-c", str(path), "sync"])
        searches = jira.requests("/search/jql")
    out = capsys.readouterr().out
    assert code == 1
    assert searches == 1  # a 400 is never retried
    assert "servicenow   ok" in out and "jira         failed" in out
    assert "jira: GET " in out and "HTTP 400" in out and "jql" in out.lower()
    store = Store.open(sqlite_url)
    assert store.count("resolutions", "servicenow") > 0 and store.cursor("jira") is None
    store.close()


def test_an_invalid_table_is_reported_with_the_fix(sqlite_url, tmp_path):
    mapping = tmp_path / "bad.yaml"
    from connector.mapping import REPO_MAPPINGS

    mapping.write_text((REPO_MAPPINGS / "servicenow-incident.yaml").read_text().replace("table: incident",
                                                                                          "table: incidnt"))
    with site("servicenow", world(20)) as sn:
        result = run_sync(tmp_path, sqlite_url, {"servicenow": sn.system(mapping=str(mapping))})
        sent = sn.requests("/table/incidnt")
    error = result.systems[0].error or ""
    assert result.status == "failed" and sent == 1
    assert "HTTP 400" in error and "Invalid table incidnt" in error and "table name" in error


def test_wrong_password_is_an_auth_error_and_the_secret_is_never_printed(sqlite_url, tmp_path, monkeypatch, capsys):
    with site("servicenow", world(20)) as sn:
        system = sn.system()
        system["auth"] = {"user": "vloop.integration", "password": "${WRONG_PASSWORD}"}
        path = write_config(tmp_path, sqlite_url, {"servicenow": system})
        monkeypatch.setenv("WRONG_PASSWORD", "not-the-password-123")
        code = main(["-c", str(path), "sync", "--json"])
        sent = sn.requests()
    captured = capsys.readouterr()
    assert code == 1 and sent == 1
    assert "HTTP 401" in captured.out and "name and password" in captured.out
    assert "not-the-password-123" not in captured.out + captured.err


def test_an_unreachable_system_fails_after_retries_with_a_hint(sqlite_url, tmp_path):
    from tests.conftest import servicenow_system

    system = servicenow_system("http://127.0.0.1:9", http={"connect_timeout": 0.5, "retry": {
        "max_attempts": 2, "max_wait": "50ms"}})
    result = run_sync(tmp_path, sqlite_url, {"servicenow": system})
    error = result.systems[0].error or ""
    assert result.status == "failed"
    assert error.startswith("servicenow: GET http://127.0.0.1:9/api/now/v2/table/incident")
    assert "connection failed" in error and "check the URL" in error


def test_a_page_that_keeps_timing_out_fails_the_system_and_keeps_the_cursor(sqlite_url, tmp_path):
    w = world(200, seed=13)
    with site("servicenow", w) as sn:
        system = sn.system(pull={"page_size": 30, "commit_every": 30}, http={"read_timeout": 0.3, "retry": {
            "max_attempts": 2, "max_wait": "50ms"}})
        sn.server.faults.inject(Fault("delay", times=2, path_contains="/table/incident", after=3, delay_s=0.8))
        result = run_sync(tmp_path, sqlite_url, {"servicenow": system})
    store = Store.open(sqlite_url)
    cursor, stored = store.cursor("servicenow"), store.resolution_keys("servicenow")
    store.close()
    assert result.status == "failed" and "timed out" in (result.systems[0].error or "")
    assert len(stored) == 60 and cursor is not None and cursor.at == max(at for _, at in stored)
