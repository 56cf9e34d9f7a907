"""Step: put each answer on its ticket: score fields (the mapping's `write_back.fields`) and, once, an
internal note with the answer and the comment, so the agent who opens the ticket sees both.

Every response gets a `write_backs` row, `pending` until its system confirms the write. Field values
are absolute, so writing them again is harmless; the note is appended, so it is written once: a row
counts an attempt before the request, and a later attempt first looks for the note's reference on the
ticket. A refused write (e.g. a closed incident whose fields the ACLs protect) stays pending with the
system's answer and the fix, and is tried again next run; nothing is dropped. A changed answer (JSM
lets a customer re-rate) queues its new values again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update

from connector.config import Config
from connector.errors import VloopError
from connector.mapping import WriteBack
from connector.model import WriteBackItem, WriteBackOutcome
from connector.store import Store
from connector.store.repo import _insert
from connector.store.schema import invitations, responses, scores, write_backs
from connector.surveys.definitions import SCALES
from connector.systems import Source

log = logging.getLogger("vloop.writeback")
CHUNK = 2000  # rows read, written and committed together: bounds memory and what a crash repeats
NOTE_COMMENT_LIMIT = 3000
SOURCES = {"page": "on the survey page", "native": "in the system's own satisfaction survey"}


@dataclass
class WriteBackReport:
    system: str
    queued: int = 0
    written: int = 0
    notes: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "queued": self.queued, "written": self.written, "notes": self.notes,
                "failed": self.failed, "errors": dict(self.errors.most_common(5)), "duration_s": self.duration_s}


def values_of(survey: str, kind: str, score: int, answered_at: datetime,
              sentiment: str | None = None) -> dict[str, Any] | None:
    """The canonical write-back values of one answer; None when the score is not on the kind's scale."""
    scale = SCALES.get(kind)
    if scale is None or score not in scale.values():
        return None
    return {"score": score, "band": scale.band(score), "kind": kind, "survey": survey,
            "answered_at": answered_at.isoformat(), "sentiment": sentiment}


def note_text(values: dict[str, Any], comment: str | None, source: str, reference: str) -> str:
    """The internal note: the answer an agent needs at a glance, the comment, where it came from."""
    scale = SCALES[values["kind"]]
    answered = datetime.fromisoformat(values["answered_at"])
    lines = [f"Customer survey \"{values['survey']}\" ({values['kind'].upper()}): {values['score']} on "
             f"{scale.low}-{scale.high} ({values['band']})"]
    if values.get("sentiment"):
        lines.append(f"Sentiment of the comment: {values['sentiment']}")
    if comment:
        text = comment.strip()
        lines.append("Comment: " + (text if len(text) <= NOTE_COMMENT_LIMIT else text[:NOTE_COMMENT_LIMIT] + "…"))
    lines.append(f"Answered {answered:%Y-%m-%d %H:%M} UTC {SOURCES.get(source, '')}".rstrip() + ".")
    lines.append(reference)
    return "\n".join(lines)


def reference_of(response_id: int, answered_at: datetime) -> str:
    """Unique per version of the answer: a re-rated answer gets a note of its own, found on its own."""
    return f"(ref vloop-wb-{response_id}.{int(answered_at.timestamp())})"


def write_back(store: Store, system: str, source: Source, spec: WriteBack, config: Config,
               now: datetime) -> WriteBackReport:
    report = WriteBackReport(system)
    started = time.monotonic()
    report.queued = _enqueue(store, system, spec, config, now)
    handed: dict[int, dict[str, Any]] = {}  # rows given to the system and not yet recorded
    answered: dict[int, WriteBackOutcome] = {}
    try:
        for key, outcome in source.write_back(_items(store, system, now, handed)):
            answered[key] = outcome
            if len(answered) >= CHUNK:
                _record(store, [handed.pop(k) for k in answered if k in handed], answered, now, report)
                answered = {}
    except VloopError as exc:  # the system failed as a whole: what it was given waits for the next run
        answered |= {k: WriteBackOutcome(False, error=str(exc)) for k in handed if k not in answered}
    _record(store, list(handed.values()), answered, now, report)  # a row left unanswered stays pending
    report.duration_s = round(time.monotonic() - started, 3)
    for error, count in report.errors.most_common(3):
        log.error("%s: %d write-backs failed: %s", system, count, error)
    return report


def _items(store: Store, system: str, now: datetime, handed: dict[int, dict[str, Any]]) -> Iterator[WriteBackItem]:
    """Pending rows, CHUNK at a time, each chunk's attempt counted before its first item goes out. Drawn
    as the system's calls need more work, so reading the next rows overlaps the calls in flight."""
    after = -1
    while rows := _pending(store, system, after):
        after = rows[-1]["response_id"]
        _count_attempt(store, [r["response_id"] for r in rows], now)
        for row in rows:
            handed[row["response_id"]] = row
            yield _item(row)


def _enqueue(store: Store, system: str, spec: WriteBack, config: Config, now: datetime) -> int:
    """A row per new response; new values for a response that changed since it was written."""
    stmt = (select(responses.c.id, responses.c.score, responses.c.submitted_at, invitations.c.survey,
                   invitations.c.ticket_id, write_backs.c.response_id.label("known"), scores.c.sentiment_label)
            .select_from(responses.join(invitations, invitations.c.id == responses.c.invitation_id)
                         .outerjoin(write_backs, write_backs.c.response_id == responses.c.id)
                         .outerjoin(scores, scores.c.response_id == responses.c.id))
            .where(invitations.c.system == system,
                   or_(write_backs.c.response_id.is_(None), write_backs.c.answered_at != responses.c.submitted_at)))
    kinds = {name: s.kind for name, s in config.surveys.items()}
    queued = 0
    with store.engine.begin() as conn:
        for row in conn.execute(stmt).all():
            values = values_of(row.survey, kinds.get(row.survey, ""), row.score, row.submitted_at,
                               row.sentiment_label)
            if values is None:
                continue  # a survey no longer configured, or a score off its scale
            fields = {"fields": values, "answered_at": row.submitted_at, "state": "pending", "error": None,
                      "updated_at": now}
            if row.known is None:
                conn.execute(_insert(conn, write_backs).on_conflict_do_nothing(index_elements=["response_id"]), {
                    "response_id": row.id, "system": system, "ticket_id": row.ticket_id, "attempts": 0,
                    "note": "pending" if spec.note else "none", "written_at": None, **fields})
            else:  # the answer changed: new values, and a new note when notes are wanted
                conn.execute(update(write_backs).where(write_backs.c.response_id == row.id).values(
                    **fields, attempts=0, note="pending" if spec.note else "none"))
            queued += 1
    return queued


def _pending(store: Store, system: str, after: int) -> list[dict[str, Any]]:
    stmt = (select(write_backs, responses.c.comment, responses.c.source)
            .select_from(write_backs.join(responses, responses.c.id == write_backs.c.response_id))
            .where(and_(write_backs.c.system == system, write_backs.c.state == "pending",
                        write_backs.c.response_id > after))
            .order_by(write_backs.c.response_id).limit(CHUNK))
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _count_attempt(store: Store, ids: list[int], now: datetime) -> None:
    """Before the request: a crash now leaves the rows marked, and the next try looks for the note."""
    with store.engine.begin() as conn:
        conn.execute(update(write_backs).where(write_backs.c.response_id.in_(ids))
                     .values(attempts=write_backs.c.attempts + 1, updated_at=now))


def _item(row: dict[str, Any]) -> WriteBackItem:
    values = dict(row["fields"])
    reference = reference_of(row["response_id"], row["answered_at"])
    note = note_text(values, row["comment"], row["source"], reference) if row["note"] == "pending" else None
    values["answered_at"] = datetime.fromisoformat(values["answered_at"])
    return WriteBackItem(key=row["response_id"], ticket_id=row["ticket_id"], values=values, note=note,
                         reference=reference, unclear=int(row["attempts"] or 0) > 0)


def _record(store: Store, rows: list[dict[str, Any]], outcomes: dict[int, WriteBackOutcome], now: datetime,
            report: WriteBackReport) -> None:
    with store.engine.begin() as conn:
        for row in rows:
            outcome = outcomes.get(row["response_id"]) or WriteBackOutcome(False, error="no answer from the system")
            note = "done" if outcome.note_written and row["note"] == "pending" else row["note"]
            report.notes += note == "done" and row["note"] == "pending"
            if outcome.ok:
                values: dict[str, Any] = {"state": "done", "note": note, "error": None, "written_at": now}
                report.written += 1
            else:
                values = {"note": note, "error": outcome.error}
                report.failed += 1
                report.errors[outcome.error or "unknown"] += 1
            conn.execute(update(write_backs).where(write_backs.c.response_id == row["response_id"])
                         .values(updated_at=now, **values))
