"""The migrations build exactly the schema the code declares, on both backends, and go down and up."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from connector.store import Store
from connector.store.db import alembic_config
from connector.store.schema import metadata


def test_migrated_schema_matches_the_code(state_url):
    store = Store.open(state_url)
    try:
        with store.engine.connect() as conn:
            # Types are compared on PostgreSQL only: SQLite keeps UTCDateTime as text by design.
            context = MigrationContext.configure(conn, opts={"compare_type": conn.dialect.name == "postgresql"})
            diff = compare_metadata(context, metadata)
    finally:
        store.close()
    assert diff == []


def test_downgrade_and_upgrade_again(state_url):
    store = Store.open(state_url)
    try:
        cfg = alembic_config(store.engine)
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
            command.upgrade(cfg, "head")
        assert store.status(["x"])[0].tickets == 0
    finally:
        store.close()
