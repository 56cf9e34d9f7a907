"""Config loading: every problem reported at once, as `file:line: key.path: what is wrong`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from connector.config import load, parse_duration
from connector.errors import ConfigError
from connector.redact import redact

GOOD = """\
state: sqlite:///vloop.db
systems:
  snow:
    kind: servicenow
    url: https://acme.service-now.com
    auth: {user: vloop, password: "${SN_PASSWORD}"}
    mapping: servicenow-incident
  jsm:
    kind: jira
    url: https://acme.atlassian.net
    auth: {email: vloop@example.com, token: "file:jira-token"}
    mapping: jira-service-management
    jql: project = ITSD
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vloop.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), env=env or {})
    return [str(p).replace(f"{tmp_path}/", "") for p in info.value.problems]


def test_good_config_loads_with_env_and_file_secrets(tmp_path):
    (tmp_path / "jira-token").write_text("jira-token-value-123\n")
    loaded = load(write(tmp_path, GOOD), env={"SN_PASSWORD": "sn-password-value"})
    snow = loaded.config.systems["snow"]
    assert snow.auth.password.get_secret_value() == "sn-password-value"
    assert loaded.config.systems["jsm"].auth.token.get_secret_value() == "jira-token-value-123"
    assert loaded.mappings["snow"].table == "incident"
    assert snow.pull.overlap == timedelta(minutes=10)


def test_secrets_are_masked_once_loaded(tmp_path):
    (tmp_path / "jira-token").write_text("jira-token-value-123")
    load(write(tmp_path, GOOD), env={"SN_PASSWORD": "sn-password-value"})
    assert redact("GET failed for sn-password-value and jira-token-value-123") == "GET failed for *** and ***"
    assert "sn-password-value" not in repr(load(write(tmp_path, GOOD), env={"SN_PASSWORD": "sn-password-value"}))


def test_every_problem_is_reported_at_once_with_lines(tmp_path):
    text = GOOD.replace("state: sqlite:///vloop.db", "state: sqlite:///vloop.db\nstat: typo") \
               .replace("jql: project = ITSD", "jql: project = ITSD\n    http: {read_timeout: 0, retries: 3}")
    found = problems(tmp_path, text)
    assert "vloop.yaml:2: stat: unknown key" in found
    assert "vloop.yaml:7: systems.snow.auth.password: environment variable SN_PASSWORD is not set" in found
    assert any(p.startswith("vloop.yaml:12: systems.jsm.auth.token: cannot read secret file") for p in found)
    assert "vloop.yaml:15: systems.jsm.http.read_timeout: Input should be greater than 0" in found
    assert "vloop.yaml:15: systems.jsm.http.retries: unknown key" in found
    assert len(found) == 5


@pytest.mark.parametrize(("snippet", "expected"), [
    ("kind: remedy", "systems.snow: unknown kind; expected one of 'servicenow', 'jira'"),
    ("url: not-a-url", "systems.snow.url: Input should be a valid URL"),
    ("mapping: no-such-mapping.yaml", "systems.snow.mapping: cannot read mapping"),
    ("mapping: jira-service-management", "kind: mapping is for jira, system is servicenow"),
])
def test_single_problems_name_key_and_fix(tmp_path, snippet, expected):
    key = snippet.split(":")[0]
    lines = GOOD.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
    lines[index] = "    " + snippet
    found = problems(tmp_path, "\n".join(lines) + "\n", env={"SN_PASSWORD": "x" * 8})
    assert any(expected in p for p in found), found


def test_malformed_yaml_names_the_line(tmp_path):
    found = problems(tmp_path, "systems:\n  snow: {kind: servicenow\n  url: x\n")
    assert len(found) == 1 and found[0].startswith("vloop.yaml:") and "invalid YAML" in found[0]


def test_duplicate_keys_are_refused(tmp_path):
    found = problems(tmp_path, "state: a\nstate: b\nsystems: {}\n")
    assert "duplicate key 'state'" in found[0] and found[0].startswith("vloop.yaml:2")


def test_env_default_is_used_when_unset(tmp_path):
    text = GOOD.replace('"${SN_PASSWORD}"', '"${SN_PASSWORD:-fallback-pass}"').replace('"file:jira-token"', "tok-12345")
    loaded = load(write(tmp_path, text), env={})
    assert loaded.config.systems["snow"].auth.password.get_secret_value() == "fallback-pass"


@pytest.mark.parametrize(("raw", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600), ("30d", 2592000),
                                              ("2w", 1209600), (45, 45), ("1.5h", 5400), ("250ms", 0.25)])
def test_durations(raw, seconds):
    assert parse_duration(raw) == timedelta(seconds=seconds)


def test_bad_duration_is_a_problem(tmp_path):
    text = GOOD.replace("    jql: project = ITSD", "    jql: project = ITSD\n    pull: {overlap: ten minutes}")
    found = problems(tmp_path, text, env={"SN_PASSWORD": "x" * 8})
    assert any("systems.jsm.pull.overlap" in p and "a duration like" in p for p in found), found
