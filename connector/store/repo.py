"""Queries over the state store. A batch of pulled tickets is stored with its cursor in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Engine, Table, and_, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from connector.model import Cursor, PersonRef, Ticket
from connector.store import db
from connector.store.schema import UTCDateTime, cursors, persons, resolutions, run_steps, runs, tickets

PERSON_CACHE = 5_000


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           keep: Sequence[str] = ()) -> None:
    """Insert rows, updating every non-key column except `keep` on conflict."""
    if not rows:
        return
    stmt = _insert(conn, table)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in keys and c not in keep}
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=update) if update else \
        stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, list(rows))


def _driver_converters(table: Table, columns: Sequence[str], sqlite_dialect: bool) -> list[Any]:
    """Per column, the conversion UTCDateTime or JSON would apply, or None for values the driver takes as is."""

    seen: dict[datetime, Any] = {}  # a batch repeats some instants (pulled_at, created_at) on every row

    def as_time(value: datetime | None) -> Any:
        if value is None:
            return None
        out = seen.get(value)
        if out is None:
            utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            out = seen[value] = utc.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite_dialect else utc
        return out

    def as_json(value: Any) -> Any:
        return None if value is None else orjson.dumps(value, default=str).decode()

    out: list[Any] = []
    for name in columns:
        kind = table.c[name].type
        out.append(as_time if isinstance(kind, UTCDateTime) else as_json if isinstance(kind, JSON) else None)
    return out


def bulk_upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str], *,
                update: bool = True) -> int:
    """`upsert` for the hot path (a batch of tickets): the statement is compiled by SQLAlchemy, the
    values are converted here in one pass and handed to the driver's executemany. The conversions are
    exactly those of UTCDateTime and JSON, so rows read back the same as through `upsert`.

    With `update=False` existing rows are left alone. Returns the rows the driver reports as written
    (with `update=False`: the rows that were new).
    """
    if not rows:
        return 0
    stmt = _insert(conn, table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}) \
        if update else stmt.on_conflict_do_nothing(index_elements=list(keys))
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    sqlite_dialect = conn.dialect.name == "sqlite"
    order = list(compiled.positiontup or rows[0])
    convert = list(zip(order, _driver_converters(table, order, sqlite_dialect), strict=True))
    values = [tuple(r[c] if f is None else f(r[c]) for c, f in convert) for r in rows]
    params: list[Any] = values if compiled.positiontup else [dict(zip(order, v, strict=True)) for v in values]
    return int(conn.exec_driver_sql(str(compiled), params).rowcount)


@dataclass(frozen=True)
class SystemStatus:
    system: str
    cursor: Cursor | None
    tickets: int
    resolutions: int
    last_run_id: int | None
    last_run_status: str | None
    last_run_at: datetime | None
    last_error: str | None


class Store:
    """The state store of one deployment."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # Person rows written by this process, by key: a person on many tickets is written once per
        # run, not once per ticket. Emptied when it grows past PERSON_CACHE so memory stays flat.
        self._persons_written: dict[str, tuple[Any, ...]] = {}

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        engine = db.create(url)
        if migrate:
            db.migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def lock(self, name: str = "vloop-sync") -> Any:
        return db.run_lock(self.engine, name)

    # --- cursors and pulled pages -------------------------------------------------------------------

    def cursor(self, system: str, stream: str = "tickets") -> Cursor | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(cursors.c.at, cursors.c.last_id).where(
                cursors.c.system == system, cursors.c.stream == stream)).first()
        return Cursor(row.at, row.last_id) if row else None

    def save_page(self, system: str, page: Sequence[Ticket], cursor: Cursor | None, run_id: int | None,
                  stream: str = "tickets") -> int:
        """Store a page of tickets, their resolutions and persons, and the cursor, atomically.

        Returns how many resolutions were new. The cursor is written in the same transaction, so it
        can never point past a ticket that is not stored.
        """
        now = _now()
        with self.engine.begin() as conn:
            written = self._upsert_persons(conn, [p for t in page for p in (t.requester, t.assignee) if p], now)
            bulk_upsert(conn, tickets, [_ticket_row(t, now) for t in page], ("system", "id"))
            new = self._insert_resolutions(conn, system, page, run_id, now)
            if cursor is not None:
                upsert(conn, cursors, [{"system": system, "stream": stream, "at": cursor.at,
                                        "last_id": cursor.id, "updated_at": now}], ("system", "stream"))
        if len(self._persons_written) > PERSON_CACHE:
            self._persons_written.clear()
        self._persons_written.update(written)  # only once committed
        return new

    def set_cursor(self, system: str, cursor: Cursor, stream: str = "tickets") -> None:
        with self.engine.begin() as conn:
            upsert(conn, cursors, [{"system": system, "stream": stream, "at": cursor.at, "last_id": cursor.id,
                                    "updated_at": _now()}], ("system", "stream"))

    def _upsert_persons(self, conn: Connection, people: Iterable[PersonRef], now: datetime) -> list[tuple[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for p in people:
            values = (p.email, p.name, p.language, p.timezone)
            if self._persons_written.get(p.key) == values:
                continue
            rows[p.key] = {"key": p.key, "email": p.email, "name": p.name, "language": p.language,
                           "timezone": p.timezone, "first_seen": now, "last_seen": now}
        upsert(conn, persons, sorted(rows.values(), key=lambda r: r["key"]), ("key",), keep=("first_seen",))
        return [(key, (r["email"], r["name"], r["language"], r["timezone"])) for key, r in rows.items()]

    def _insert_resolutions(self, conn: Connection, system: str, page: Sequence[Ticket], run_id: int | None,
                            now: datetime) -> int:
        """Insert the batch's resolutions; those already stored are left alone. Returns how many were new."""
        keys = sorted({(t.id, t.resolved_at) for t in page if t.resolved_at is not None}, key=lambda k: (k[1], k[0]))
        rows = [{"system": system, "ticket_id": tid, "resolved_at": at, "first_seen_run": run_id, "created_at": now}
                for tid, at in keys]
        return bulk_upsert(conn, resolutions, rows, ("system", "ticket_id", "resolved_at"), update=False)

    # --- run ledger ---------------------------------------------------------------------------------

    def start_run(self, *, dry_run: bool = False) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(runs.insert().values(started_at=_now(), status="running", dry_run=int(dry_run)))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(
                finished_at=_now(), status=status, summary=summary))

    def start_step(self, run_id: int, system: str, step: str) -> None:
        with self.engine.begin() as conn:
            upsert(conn, run_steps, [{"run_id": run_id, "system": system, "step": step, "status": "running",
                                      "started_at": _now(), "finished_at": None, "pages": 0, "records": 0,
                                      "new_resolutions": 0, "error": None}], ("run_id", "system", "step"))

    def finish_step(self, run_id: int, system: str, step: str, *, status: str, pages: int, records: int,
                    new_resolutions: int, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(run_steps.update().where(
                run_steps.c.run_id == run_id, run_steps.c.system == system, run_steps.c.step == step
            ).values(status=status, finished_at=_now(), pages=pages, records=records,
                     new_resolutions=new_resolutions, error=error))

    # --- reading -------------------------------------------------------------------------------------

    def status(self, systems: Sequence[str]) -> list[SystemStatus]:
        out = []
        with self.engine.connect() as conn:
            for name in systems:
                ticket_count = conn.execute(select(func.count()).select_from(tickets).where(
                    tickets.c.system == name)).scalar_one()
                resolution_count = conn.execute(select(func.count()).select_from(resolutions).where(
                    resolutions.c.system == name)).scalar_one()
                step = conn.execute(
                    select(run_steps.c.run_id, run_steps.c.status, run_steps.c.finished_at, run_steps.c.started_at,
                           run_steps.c.error)
                    .where(run_steps.c.system == name).order_by(run_steps.c.run_id.desc()).limit(1)).first()
                cur = conn.execute(select(cursors.c.at, cursors.c.last_id).where(
                    cursors.c.system == name, cursors.c.stream == "tickets")).first()
                out.append(SystemStatus(
                    system=name, cursor=Cursor(cur.at, cur.last_id) if cur else None, tickets=ticket_count,
                    resolutions=resolution_count, last_run_id=step.run_id if step else None,
                    last_run_status=step.status if step else None,
                    last_run_at=(step.finished_at or step.started_at) if step else None,
                    last_error=step.error if step else None))
        return out

    def last_run(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def resolution_keys(self, system: str) -> list[tuple[str, datetime]]:
        with self.engine.connect() as conn:
            return [(r.ticket_id, r.resolved_at) for r in conn.execute(
                select(resolutions.c.ticket_id, resolutions.c.resolved_at).where(resolutions.c.system == system)
                .order_by(resolutions.c.resolved_at, resolutions.c.ticket_id))]

    def ticket(self, system: str, ticket_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tickets).where(and_(tickets.c.system == system, tickets.c.id == ticket_id))
                               ).mappings().first()
        return dict(row) if row else None

    def count(self, table: str, system: str | None = None) -> int:
        tbl = {"tickets": tickets, "resolutions": resolutions, "persons": persons}[table]
        stmt = select(func.count()).select_from(tbl)
        if system is not None and "system" in tbl.c:
            stmt = stmt.where(tbl.c.system == system)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def resolutions_between(self, system: str, keys: Sequence[tuple[str, datetime]]) -> int:
        if not keys:
            return 0
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(resolutions).where(
                resolutions.c.system == system,
                tuple_(resolutions.c.ticket_id, resolutions.c.resolved_at).in_(list(keys)))).scalar_one())


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _ticket_row(t: Ticket, now: datetime) -> dict[str, Any]:
    return {
        "system": t.system, "id": t.id, "number": t.number, "title": t.title, "state": t.state,
        "status": t.status, "opened_at": t.opened_at, "resolved_at": t.resolved_at, "closed_at": t.closed_at,
        "updated_at": t.updated_at, "requester_key": t.requester.key if t.requester else None,
        "assignee_key": t.assignee.key if t.assignee else None, "group_name": t.group, "service": t.service,
        "category": t.category, "priority": t.priority, "channel": t.channel, "language": t.language,
        "reopen_count": t.reopen_count, "reassignment_count": t.reassignment_count,
        "raw": t.raw, "pulled_at": now,
    }
