"""The state store's tables. Changing them means adding an Alembic migration (connector/store/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python. PostgreSQL gets timestamptz; SQLite gets naive UTC text in SQLAlchemy's own
    layout (`YYYY-MM-DD HH:MM:SS.ffffff`, so values sort and compare as text), formatted here in one
    step because the generic DateTime round trip costs more than the rest of a page's insert."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(String(32) if dialect.name == "sqlite" else DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused by the state store")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        out: datetime = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return out


metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

cursors = Table(
    "cursors", metadata,
    Column("system", String(100), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("last_id", String(200), nullable=False, default=""),
    Column("updated_at", UTCDateTime, nullable=False),
)

persons = Table(
    "persons", metadata,
    Column("key", String(320), primary_key=True),
    Column("email", String(320)),
    Column("name", String(300)),
    Column("language", String(20)),
    Column("timezone", String(64)),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
)

tickets = Table(
    "tickets", metadata,
    Column("system", String(100), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("number", String(100), nullable=False),
    Column("title", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("status", String(100), nullable=False),
    Column("opened_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("requester_key", String(320)),
    Column("assignee_key", String(320)),
    Column("group_name", String(300)),
    Column("service", String(300)),
    Column("category", String(200)),
    Column("priority", Integer),
    Column("channel", String(100)),
    Column("language", String(20)),
    Column("reopen_count", Integer, nullable=False, default=0),
    Column("reassignment_count", Integer, nullable=False, default=0),
    Column("raw", JSON, nullable=False),
    Column("pulled_at", UTCDateTime, nullable=False),
)

resolutions = Table(
    "resolutions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String(100), nullable=False),
    Column("ticket_id", String(200), nullable=False),
    Column("resolved_at", UTCDateTime, nullable=False),
    Column("first_seen_run", Integer, ForeignKey("runs.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("system", "ticket_id", "resolved_at", name="uq_resolutions_key"),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String(20), nullable=False),  # running | ok | partial | failed
    Column("dry_run", Integer, nullable=False, default=0),
    Column("summary", JSON),
)

run_steps = Table(
    "run_steps", metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("system", String(100), primary_key=True),
    Column("step", String(50), primary_key=True),
    Column("status", String(20), nullable=False),  # running | ok | failed | skipped
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("pages", Integer, nullable=False, default=0),
    Column("records", Integer, nullable=False, default=0),
    Column("new_resolutions", Integer, nullable=False, default=0),
    Column("error", Text),
)

invitations = Table(
    "invitations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("survey", String(100), nullable=False),
    Column("system", String(100), nullable=False),
    Column("ticket_id", String(200), nullable=False),
    Column("resolved_at", UTCDateTime, nullable=False),
    Column("person_key", String(320)),
    Column("email", String(320)),
    Column("language", String(20), nullable=False),
    Column("channel", String(20), nullable=False),  # email | comment | webhook
    # pending -> sending -> sent | failed; or suppressed | cancelled | expired
    Column("state", String(20), nullable=False),
    Column("reason", Text),
    Column("not_before", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("message_id", String(300)),
    Column("reminders_sent", Integer, nullable=False, default=0),
    Column("last_reminder_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("survey", "system", "ticket_id", "resolved_at", name="uq_invitations_resolution"),
)

responses = Table(
    "responses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invitation_id", Integer, ForeignKey("invitations.id"), nullable=False, unique=True),
    Column("score", Integer, nullable=False),
    Column("answers", JSON, nullable=False),  # extra questions: {question id: value}
    Column("comment", Text),
    Column("language", String(20)),
    Column("source", String(20), nullable=False),  # page | native
    Column("submitted_at", UTCDateTime, nullable=False),
)

clicks = Table(
    "clicks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invitation_id", Integer, ForeignKey("invitations.id"), nullable=False),
    Column("score", Integer),
    Column("at", UTCDateTime, nullable=False),
)

optouts = Table(
    "optouts", metadata,
    Column("key", String(320), primary_key=True),  # person key or normalised email
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(50), nullable=False),  # page | list-unsubscribe | admin
)

bounces = Table(
    "bounces", metadata,
    Column("address", String(320), primary_key=True),  # normalised email address
    Column("at", UTCDateTime, nullable=False),
    Column("status", String(20)),  # enhanced status code, e.g. 5.1.1
    Column("detail", Text),
    Column("source", String(20), nullable=False),  # smtp (refused at RCPT) | dsn (report after acceptance)
)
Index("ix_invitations_message_id", invitations.c.message_id)

write_backs = Table(
    "write_backs", metadata,
    Column("response_id", Integer, ForeignKey("responses.id"), primary_key=True),
    Column("system", String(100), nullable=False),
    Column("ticket_id", String(200), nullable=False),
    Column("fields", JSON, nullable=False),  # the values wanted on the ticket: {score, band, …}
    Column("answered_at", UTCDateTime, nullable=False),  # of the response these values came from
    Column("state", String(20), nullable=False),  # pending | done
    Column("note", String(20), nullable=False),  # pending | done | none (no note wanted)
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("written_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_write_backs_pending", write_backs.c.system, write_backs.c.state)

scores = Table(
    "scores", metadata,
    Column("response_id", Integer, ForeignKey("responses.id"), primary_key=True),
    Column("answered_at", UTCDateTime, nullable=False),  # of the response scored: a changed answer is rescored
    Column("band", String(20), nullable=False),
    Column("sentiment", Float),  # VADER compound, -1..1; null when the comment is not scored
    Column("sentiment_label", String(10)),  # negative | neutral | positive
    Column("unscored", String(100)),  # why there is no sentiment (language, no comment)
    Column("themes", JSON, nullable=False),  # theme ids
    Column("comment_redacted", Text),  # the comment without emails, phone numbers and the requester's name
    Column("scored_at", UTCDateTime, nullable=False),
)

follow_ups = Table(
    "follow_ups", metadata,
    Column("response_id", Integer, ForeignKey("responses.id"), primary_key=True),
    Column("system", String(100), nullable=False),
    Column("ticket_id", String(200), nullable=False),  # the ticket the unhappy answer was about
    Column("correlation", String(100), nullable=False, unique=True),  # also on the follow-up in the system
    Column("state", String(20), nullable=False),  # pending (to create) | open | closed
    Column("remote_id", String(200)),
    Column("remote_number", String(100)),
    Column("detractor_at", UTCDateTime, nullable=False),  # when the answer was given
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime),  # in the system
    Column("closed_at", UTCDateTime),
    Column("outcome", String(300)),
    Column("recovery_invitation_id", Integer, ForeignKey("invitations.id")),  # the re-survey after closing
    Column("message", String(20), nullable=False, default="none"),  # none | pending | sending | sent | skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_follow_ups_state", follow_ups.c.system, follow_ups.c.state)

flags = Table(
    "flags", metadata,
    Column("system", String(100), primary_key=True),
    Column("ticket_id", String(200), primary_key=True),  # a new ticket of a recently unhappy customer
    Column("response_id", Integer, ForeignKey("responses.id"), nullable=False),  # the unhappy answer
    Column("state", String(20), nullable=False),  # pending | done
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)
