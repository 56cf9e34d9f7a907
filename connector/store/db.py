"""Opening the state store: engine, automatic migrations, and the one-sync-at-a-time lock."""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StateError
from connector.redact import sanitize_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_memory_locks: dict[str, threading.Lock] = {}


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (psycopg2 is not a dependency)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_json_dumps,
                               json_deserializer=orjson.loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            # WAL lets `vloop status` and the survey page read while a sync writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint every ~40 MB of WAL instead of ~4 MB: a pull rewrites the same B-tree pages
            # page after page, and a larger window copies each of them back to the database once.
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # The survey page serves with 8 waitress threads: a pool below that closes and reopens PostgreSQL
    # connections all the time under load (bench/page.py saw 50-100 backends instead of 8).
    return create_engine(url, pool_pre_ping=True, pool_size=10, json_serializer=_json_dumps,
                         json_deserializer=orjson.loads)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StateError(f"cannot migrate state store {sanitize_url(str(engine.url))}: {exc.__class__.__name__}: "
                         f"{str(exc.orig if hasattr(exc, 'orig') else exc)[:200]}") from None


def pending_migrations(engine: Engine) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return [rev.revision for rev in script.iterate_revisions(script.get_current_head(), current)]


@contextmanager
def run_lock(engine: Engine, name: str = "vloop-sync") -> Iterator[bool]:
    """Yield True when this process holds the sync lock, False when another run holds it.

    PostgreSQL: a session advisory lock (released if the process dies). SQLite: flock on a file next
    to the database (also released by the kernel when the process dies).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            # Advisory locks are per database server, not per schema: deployments that keep their state
            # in different databases or schemas of one server must not block each other.
            where = conn.execute(text("SELECT current_database() || '.' || current_schema()")).scalar()
            key = int.from_bytes(hashlib.sha256(f"{name}@{where}".encode()).digest()[:8], "big", signed=True)
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        lock = _memory_locks.setdefault(name, threading.Lock())
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()
        return
    path = Path(database).expanduser().with_suffix(".lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
