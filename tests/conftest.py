"""Shared fixtures: state stores on SQLite and PostgreSQL, simulators over real HTTP, config files.

In CI (`CI=true`) a test that needs PostgreSQL fails when the server is missing instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from connector.config import Loaded, load
from connector.store import Store

PG_URL = os.environ.get("VLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SN_PASSWORD = "sandbox-password"
JIRA_TOKEN = "sandbox-token"


def _postgres_available() -> str | None:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    return _postgres_available()


@pytest.fixture
def pg_schemas(postgres_problem: str | None) -> Iterator[Any]:
    """Makes PostgreSQL URLs whose search_path is a fresh schema each; all dropped afterwards."""
    if postgres_problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_URL}: {postgres_problem}")
        pytest.skip(f"PostgreSQL not reachable: {postgres_problem}")
    admin = create_engine(PG_URL)
    made: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return f"{PG_URL}?options=-csearch_path%3D{schema}"

    try:
        yield make
    finally:
        with admin.begin() as conn:
            for schema in made:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_schemas: Any) -> str:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    return str(pg_schemas())


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store_factory() -> Iterator[Any]:
    opened: list[Store] = []

    def make(url: str) -> Store:
        store = Store.open(url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def servicenow_system(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "servicenow", "url": url, "auth": {"user": "vloop.integration", "password": "${SN_PASSWORD}"},
            "mapping": "servicenow-incident", "http": {"retry": {"max_wait": "200ms"}}, **extra}


def jira_system(url: str, mapping: str = "jira-service-management", **extra: Any) -> dict[str, Any]:
    return {"kind": "jira", "url": url, "auth": {"email": "vloop@example.com", "token": "${JIRA_TOKEN}"},
            "mapping": mapping, "jql": "project = ITSD", "http": {"retry": {"max_wait": "200ms"}}, **extra}


def write_config(folder: Path, state: str, systems: dict[str, dict[str, Any]], **top: Any) -> Path:
    path = folder / "vloop.yaml"
    path.write_text(yaml.safe_dump({"state": state, "systems": systems, **top}, sort_keys=False))
    return path


def load_config(path: Path) -> Loaded:
    return load(path, env={"SN_PASSWORD": SN_PASSWORD, "JIRA_TOKEN": JIRA_TOKEN})


ENV = {"SN_PASSWORD": SN_PASSWORD, "JIRA_TOKEN": JIRA_TOKEN}
