"""The shipped example configs load, and config/vloop.example.yaml documents every key the models accept.

If a config key is added, renamed or removed, these tests fail until the example file says so: the
example is the admin's reference and must not drift from `connector/config.py`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import (
    SECRET_KEYS,
    BasicAuth,
    BearerAuth,
    JiraTokenAuth,
    OAuthClientCredentials,
    config_schema,
    load,
)
from connector.errors import ConfigError
from connector.mapping import Mapping, load_mapping

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "vloop.example.yaml"
DEMO = ROOT / "config" / "demo.yaml"

# Distinctive values: loading registers secrets for redaction process-wide.
EXAMPLE_ENV = {
    "VLOOP_SN_PASSWORD": "example-sn-password-5c1e",
    "VLOOP_JIRA_TOKEN": "example-jira-token-5c1e",
    "VLOOP_SECRET_KEY": "example-survey-link-signing-key-5c1e-0123456789",
    "VLOOP_SMTP_PASSWORD": "example-smtp-password-5c1e",
    "VLOOP_WEBHOOK_SECRET": "example-webhook-signing-secret-5c1e-0123456789",
}
ALTERNATIVE_ENV = {
    "VLOOP_SN_CLIENT_ID": "example-sn-client-5c1e",
    "VLOOP_SN_CLIENT_SECRET": "example-sn-client-secret-5c1e",
    "VLOOP_JIRA_PAT": "example-jira-pat-5c1e",
    "VLOOP_JIRA_PASSWORD": "example-jira-password-5c1e",
}
DEMO_ENV = {
    "VLOOP_DEMO_STATE": "sqlite:///demo-test.db",
    "VLOOP_DEMO_SECRET_KEY": "demo-survey-link-signing-key-5c1e-0123456789",
    "VLOOP_DEMO_PUBLIC_URL": "http://127.0.0.1:18003",
    "VLOOP_DEMO_SMTP_PORT": "18025",
    "VLOOP_DEMO_SN_URL": "http://127.0.0.1:18001",
    "VLOOP_DEMO_SN_PASSWORD": "demo-sn-password-5c1e",
    "VLOOP_DEMO_JIRA_URL": "http://127.0.0.1:18002",
    "VLOOP_DEMO_JIRA_TOKEN": "demo-jira-token-5c1e",
}
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
# A YAML key at the start of a line, live or commented out: `  key:` or `  # key:`.
KEY_LINE = re.compile(r"^[ \t]*(?:#[ \t]*)?([A-Za-z_][A-Za-z0-9_]*):(?:[ \t]|$)", re.MULTILINE)
# A commented-out `# auth:` block and the commented lines indented under it.
AUTH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)# auth:[ \t]*\n(?P<body>(?:(?P=indent)#[ \t]{3,}\S.*\n)+)", re.MULTILINE)
# Which auth forms each system kind must show (active or as a commented alternative).
AUTH_FORMS = {
    "servicenow": {BasicAuth, OAuthClientCredentials},
    "jira": {JiraTokenAuth, BearerAuth, BasicAuth},
}


def schema_keys(schema: dict[str, Any]) -> set[str]:
    """Every property name in the config JSON schema: top level and every `$defs` model."""
    keys = set(schema.get("properties", {}))
    for model in schema.get("$defs", {}).values():
        keys |= set(model.get("properties", {}))
    return keys


def missing_keys(schema: dict[str, Any], text: str) -> set[str]:
    """Schema keys that never appear as a YAML key (live or commented) in `text`."""
    return schema_keys(schema) - set(KEY_LINE.findall(text))


def env_refs(text: str) -> set[str]:
    """Names of the `${ENV}` references in YAML values (comments skipped)."""
    return {name for line in text.splitlines() if not line.lstrip().startswith("#") for name in ENV_REF.findall(line)}


def auth_alternatives(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(system name, auth mapping) for every commented-out `# auth:` block, uncommented and parsed."""
    out = []
    for match in AUTH_BLOCK.finditer(text):
        before = text[: match.start()]
        systems = re.findall(r"^  ([A-Za-z0-9_-]+):[ \t]*$", before.split("\nsystems:", 1)[1], re.MULTILINE)
        indent = match.group("indent")
        body = "".join(line[len(indent) + 1:] + "\n" for line in match.group("body").splitlines())
        out.append((systems[-1], yaml.safe_load("auth:\n" + body)["auth"]))
    return out


def secret_values(data: Any) -> list[tuple[str, Any]]:
    """(key, value) of every secret key in nested YAML data."""
    found: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in SECRET_KEYS:
                found.append((key, value))
            found += secret_values(value)
    elif isinstance(data, list):
        for item in data:
            found += secret_values(item)
    return found


@pytest.fixture(scope="module")
def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def test_example_references_exactly_the_env_vars_supplied(example_text):
    assert env_refs(example_text) == set(EXAMPLE_ENV)


def test_example_config_validates(example_text):
    loaded = load(EXAMPLE, env=EXAMPLE_ENV)
    systems = loaded.config.systems
    assert {s.kind for s in systems.values()} == {"servicenow", "jira"}
    assert len(systems) == 2
    jira = next(s for s in systems.values() if s.kind == "jira")
    assert str(jira.url).startswith("https://") and ".atlassian.net" in str(jira.url), "a JSM Cloud site"


def test_example_mentions_every_config_key(example_text):
    missing = missing_keys(config_schema(), example_text)
    assert not missing, f"config/vloop.example.yaml does not document: {', '.join(sorted(missing))}"


def test_example_commented_keys_are_real_keys(example_text):
    """A commented-out key must still exist: otherwise the example would teach a stale name."""
    known = schema_keys(config_schema()) | {"systems"}
    commented = {m.group(1) for m in re.finditer(r"^[ \t]*#[ \t]{0,3}([a-z_]+):(?:[ \t]|$)", example_text, re.MULTILINE)}
    assert commented <= known, f"commented keys the config does not accept: {sorted(commented - known)}"


def test_key_check_catches_an_undocumented_key(example_text):
    """The drift check can fail: drop every `budget:` line and it must notice."""
    text = "\n".join(line for line in example_text.splitlines() if "budget:" not in line)
    assert missing_keys(config_schema(), text) == {"budget"}


def test_example_shows_every_auth_form_and_each_one_validates(example_text, tmp_path):
    raw = yaml.safe_load(example_text)
    alternatives = auth_alternatives(example_text)
    assert len(alternatives) >= 3, "the OAuth, bearer and Jira basic alternatives are commented out in the example"
    seen: dict[str, set[type]] = {"servicenow": set(), "jira": set()}
    for system in load(EXAMPLE, env=EXAMPLE_ENV).config.systems.values():
        seen[system.kind].add(type(system.auth))
    for name, auth in alternatives:
        variant = yaml.safe_load(example_text)
        variant["systems"][name]["auth"] = auth
        for system in variant["systems"].values():  # keep mapping references valid from tmp_path
            if (EXAMPLE.parent / system["mapping"]).exists():
                system["mapping"] = str(EXAMPLE.parent / system["mapping"])
        path = tmp_path / f"{name}-{len(auth)}.yaml"
        path.write_text(yaml.safe_dump(variant, sort_keys=False), encoding="utf-8")
        loaded = load(path, env={**EXAMPLE_ENV, **ALTERNATIVE_ENV}).config.systems[name]
        seen[raw["systems"][name]["kind"]].add(type(loaded.auth))
    assert seen == AUTH_FORMS


def test_example_secrets_are_env_references_or_files(example_text):
    data = yaml.safe_load(example_text)
    pairs = secret_values(data) + [pair for _, auth in auth_alternatives(example_text) for pair in secret_values(auth)]
    assert pairs
    for key, value in pairs:
        assert isinstance(value, str) and (ENV_REF.fullmatch(value) or value.startswith("file:")), \
            f"{key}: {value!r} is a literal secret; use ${{ENV}} or file:"


def test_example_fails_without_its_secrets():
    with pytest.raises(ConfigError) as info:
        load(EXAMPLE, env={})
    assert {p.message for p in info.value.problems} == {
        f"environment variable {name} is not set" for name in EXAMPLE_ENV}


@pytest.mark.parametrize(("path", "env"), [(EXAMPLE, EXAMPLE_ENV), (DEMO, DEMO_ENV)], ids=["example", "demo"])
def test_named_mappings_load_and_match_their_system(path, env):
    loaded = load(path, env=env)
    assert set(loaded.mappings) == set(loaded.config.systems)
    for name, system in loaded.config.systems.items():
        mapping = load_mapping(system.mapping, path.parent, expect_kind=system.kind)
        assert isinstance(mapping, Mapping)
        assert mapping.kind == system.kind == loaded.mappings[name].kind


def test_demo_config_is_what_the_demo_expects():
    assert env_refs(DEMO.read_text(encoding="utf-8")) == set(DEMO_ENV)
    loaded = load(DEMO, env=DEMO_ENV)
    config = loaded.config
    assert config.state == DEMO_ENV["VLOOP_DEMO_STATE"]
    assert set(config.systems) == {"servicenow", "jira"}

    sn = config.systems["servicenow"]
    assert sn.kind == "servicenow"
    assert str(sn.url).rstrip("/") == DEMO_ENV["VLOOP_DEMO_SN_URL"]
    assert isinstance(sn.auth, BasicAuth) and sn.auth.user == "vloop.integration"
    assert sn.auth.password.get_secret_value() == DEMO_ENV["VLOOP_DEMO_SN_PASSWORD"]
    assert sn.mapping == "servicenow-incident"
    assert sn.pull.initial_lookback == timedelta(days=60)

    jira = config.systems["jira"]
    assert jira.kind == "jira"
    assert str(jira.url).rstrip("/") == DEMO_ENV["VLOOP_DEMO_JIRA_URL"]
    assert isinstance(jira.auth, JiraTokenAuth) and jira.auth.email == "vloop@example.com"
    assert jira.auth.token.get_secret_value() == DEMO_ENV["VLOOP_DEMO_JIRA_TOKEN"]
    assert jira.mapping == "jira-service-management"
    assert jira.jql == "project = ITSD"
    assert jira.pull.initial_lookback == timedelta(days=60)

    assert config.secret_keys() == [DEMO_ENV["VLOOP_DEMO_SECRET_KEY"]]
    assert str(config.public_url).rstrip("/") == DEMO_ENV["VLOOP_DEMO_PUBLIC_URL"]
    resolved = config.surveys["resolved"]
    assert (resolved.kind, resolved.send_after, resolved.send_within) == ("csat", timedelta(hours=1), timedelta(days=7))
    assert resolved.exclude.fields == {"category": ["security"]}
    email = config.channels.email
    assert email is not None and email.smtp.host == "127.0.0.1" and email.smtp.port == 18025
