"""Survey state: the invitation outbox, responses (one per invitation), clicks and opt-outs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, update

from connector.model import Cursor, NativeAnswer
from connector.store.repo import _insert, upsert
from connector.store.schema import (
    bounces,
    clicks,
    cursors,
    invitations,
    optouts,
    persons,
    resolutions,
    responses,
    tickets,
)
from connector.surveys.i18n import pick_language


@dataclass(frozen=True)
class InvitationView:
    """What the survey page needs about one invitation (never shown: email, person)."""

    id: int
    survey: str
    system: str
    state: str
    language: str
    expires_at: datetime | None
    ticket_number: str | None
    ticket_title: str | None
    responded: bool


@dataclass(frozen=True)
class NativeCounts:
    new: int = 0
    changed: int = 0
    unknown_ticket: int = 0


class SurveyStore:
    """Queries for the survey page and the outbox; shares the engine of `Store`."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def invitation_view(self, invitation_id: int) -> InvitationView | None:
        stmt = (
            select(invitations.c.id, invitations.c.survey, invitations.c.system, invitations.c.state,
                   invitations.c.language, invitations.c.expires_at, tickets.c.number, tickets.c.title,
                   responses.c.id.label("response_id"))
            .select_from(invitations
                         .outerjoin(tickets, and_(tickets.c.system == invitations.c.system,
                                                  tickets.c.id == invitations.c.ticket_id))
                         .outerjoin(responses, responses.c.invitation_id == invitations.c.id))
            .where(invitations.c.id == invitation_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return InvitationView(id=row.id, survey=row.survey, system=row.system, state=row.state,
                              language=row.language, expires_at=row.expires_at, ticket_number=row.number,
                              ticket_title=row.title, responded=row.response_id is not None)

    def record_response(self, invitation_id: int, score: int, answers: Mapping[str, Any], comment: str | None,
                        language: str | None, source: str = "page", at: datetime | None = None) -> bool:
        """Store the answer; False when this invitation already has one (the first answer stands)."""
        with self.engine.begin() as conn:
            # RETURNING tells the winner from the loser of a double submit on every backend; rowcount does
            # not (PostgreSQL reports -1 once SQLAlchemy adds its own RETURNING).
            stmt = (_insert(conn, responses).on_conflict_do_nothing(index_elements=["invitation_id"])
                    .returning(responses.c.id))
            row = conn.execute(stmt, {"invitation_id": invitation_id, "score": score, "answers": dict(answers),
                                      "comment": comment, "language": language, "source": source,
                                      "submitted_at": at or datetime.now(UTC)}).first()
            return row is not None

    def record_click(self, invitation_id: int, score: int | None, at: datetime | None = None) -> None:
        """A link was opened (by a person or a mail scanner): a signal only, never an answer."""
        with self.engine.begin() as conn:
            conn.execute(clicks.insert().values(invitation_id=invitation_id, score=score,
                                                at=at or datetime.now(UTC)))

    def add_optout(self, key: str, source: str, at: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(_insert(conn, optouts).on_conflict_do_nothing(index_elements=["key"]),
                         {"key": key.strip().lower(), "source": source, "at": at or datetime.now(UTC)})

    def opted_out(self, keys: Iterable[str]) -> set[str]:
        wanted = sorted({k.strip().lower() for k in keys if k})
        if not wanted:
            return set()
        with self.engine.connect() as conn:
            return {r.key for r in conn.execute(select(optouts.c.key).where(optouts.c.key.in_(wanted)))}

    def add_bounce(self, address: str, status: str | None, detail: str, source: str,
                   at: datetime | None = None) -> None:
        """Remember an address that cannot receive mail; the latest report wins."""
        row = {"address": address.strip().lower(), "status": status, "detail": detail, "source": source,
               "at": at or datetime.now(UTC)}
        with self.engine.begin() as conn:
            upsert(conn, bounces, [row], ("address",))

    def bounced(self, addresses: Iterable[str]) -> set[str]:
        wanted = sorted({a.strip().lower() for a in addresses if a})
        if not wanted:
            return set()
        with self.engine.connect() as conn:
            return {r.address for r in conn.execute(select(bounces.c.address).where(bounces.c.address.in_(wanted)))}

    def fail_bounced(self, message_id: str, reason: str, now: datetime) -> int | None:
        """The sent, unanswered invitation whose mail bounced becomes `failed`; returns its id."""
        answered = select(responses.c.invitation_id)
        with self.engine.begin() as conn:
            found = conn.execute(select(invitations.c.id).where(
                invitations.c.message_id == message_id, invitations.c.state == "sent",
                invitations.c.id.not_in(answered))).scalar()
            if found is None:
                return None
            conn.execute(update(invitations).where(invitations.c.id == found).values(
                state="failed", reason=reason, updated_at=now))
            return int(found)

    def response_scores(self, source: str | None = None) -> dict[int, int]:
        """How many responses gave each score (of one source: page | native)."""
        stmt = select(responses.c.score, func.count()).group_by(responses.c.score)
        if source is not None:
            stmt = stmt.where(responses.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt)
            return {int(score): int(n) for score, n in rows}

    def response(self, invitation_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(responses).where(responses.c.invitation_id == invitation_id)).mappings().first()
        return dict(row) if row else None

    def record_native(self, survey: str, system: str, answers: Sequence[NativeAnswer], cursor: Cursor,
                      default_language: str, now: datetime) -> NativeCounts:
        """Store native answers as responses, each with the invitation the system itself sent (channel
        `native`: counted by the throttle, never delivered or reminded), and move the stream's cursor,
        in one transaction. A changed answer (JSM lets the customer re-rate) replaces the stored one."""
        new = changed = unknown = 0
        with self.engine.begin() as conn:
            known = _ticket_people(conn, system, sorted({a.ticket_id for a in answers}))
            times = _resolution_times(conn, system, sorted(known))
            for answer in answers:
                person = known.get(answer.ticket_id)
                resolved = _resolution_for(times.get(answer.ticket_id, []), answer.answered_at)
                if person is None or resolved is None:
                    unknown += 1  # not pulled (filtered out by the mapping, or older than the first pull)
                    continue
                invitation_id = _native_invitation(conn, survey, system, answer, resolved, person,
                                                   default_language, now)
                outcome = _native_response(conn, invitation_id, answer)
                new += outcome == "new"
                changed += outcome == "changed"
            stream = f"native:{survey}"
            current = conn.execute(select(cursors.c.at, cursors.c.last_id).where(
                cursors.c.system == system, cursors.c.stream == stream)).first()
            if current is None or Cursor(current.at, current.last_id) < cursor:
                upsert(conn, cursors, [{"system": system, "stream": stream, "at": cursor.at, "last_id": cursor.id,
                                        "updated_at": now}], ("system", "stream"))
        return NativeCounts(new, changed, unknown)


def _ticket_people(conn: Connection, system: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    stmt = (select(tickets.c.id, tickets.c.requester_key, tickets.c.language, persons.c.email,
                   persons.c.language.label("person_language"))
            .select_from(tickets.outerjoin(persons, persons.c.key == tickets.c.requester_key))
            .where(tickets.c.system == system, tickets.c.id.in_(ids)))
    return {r.id: dict(r._mapping) for r in conn.execute(stmt)}


def _resolution_times(conn: Connection, system: str, ids: list[str]) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {}
    if ids:
        stmt = (select(resolutions.c.ticket_id, resolutions.c.resolved_at)
                .where(resolutions.c.system == system, resolutions.c.ticket_id.in_(ids))
                .order_by(resolutions.c.resolved_at))
        for ticket_id, at in conn.execute(stmt):
            out.setdefault(ticket_id, []).append(at)
    return out


def _resolution_for(times: list[datetime], answered_at: datetime) -> datetime | None:
    """The resolution the answer is about: the last one before it was given (else the first one)."""
    before = [t for t in times if t <= answered_at]
    return before[-1] if before else (times[0] if times else None)


def _native_invitation(conn: Connection, survey: str, system: str, answer: NativeAnswer, resolved: datetime,
                       person: dict[str, Any], default_language: str, now: datetime) -> int:
    key = {"survey": survey, "system": system, "ticket_id": answer.ticket_id, "resolved_at": resolved}
    language = pick_language(person["language"], person["person_language"], default_language)
    conn.execute(_insert(conn, invitations).on_conflict_do_nothing(
        index_elements=["survey", "system", "ticket_id", "resolved_at"]), {
        **key, "person_key": person["requester_key"], "email": person["email"], "language": language,
        "channel": "native", "state": "sent", "reason": None, "not_before": None, "attempts": 0,
        "next_attempt_at": None, "sent_at": answer.answered_at, "message_id": answer.external_id,
        "reminders_sent": 0, "last_reminder_at": None, "expires_at": answer.answered_at,
        "created_at": now, "updated_at": now})
    found = conn.execute(select(invitations.c.id).where(
        *(invitations.c[name] == value for name, value in key.items()))).scalar_one()
    return int(found)


def _native_response(conn: Connection, invitation_id: int, answer: NativeAnswer) -> str:
    stored = conn.execute(select(responses.c.score, responses.c.comment, responses.c.submitted_at)
                          .where(responses.c.invitation_id == invitation_id)).first()
    values = {"score": answer.score, "comment": answer.comment, "submitted_at": answer.answered_at}
    if stored is None:
        conn.execute(responses.insert().values(invitation_id=invitation_id, answers={}, language=None,
                                               source="native", **values))
        return "new"
    if (stored.score, stored.comment) == (answer.score, answer.comment) or stored.submitted_at > answer.answered_at:
        return "same"
    conn.execute(update(responses).where(responses.c.invitation_id == invitation_id).values(**values))
    return "changed"
