"""Survey state: the invitation outbox, responses (one per invitation), clicks and opt-outs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select

from connector.store.repo import _insert
from connector.store.schema import clicks, invitations, optouts, responses, tickets


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

    def response_scores(self) -> dict[int, int]:
        """How many responses gave each score."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(responses.c.score, func.count()).group_by(responses.c.score))
            return {int(score): int(n) for score, n in rows}

    def response(self, invitation_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(responses).where(responses.c.invitation_id == invitation_id)).mappings().first()
        return dict(row) if row else None
