"""Frozen value objects named after the glossary in DESIGN.md. Every datetime is timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

TicketState = Literal["open", "resolved", "closed", "canceled"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def aware(value: datetime) -> datetime:
    """Return `value` in UTC, refusing naive datetimes: a naive one is a bug at the source edge."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: convert to UTC where it is read")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class PersonRef:
    """The requester as one system sees them; `key` is the cross-system identity."""

    key: str
    email: str | None = None
    name: str | None = None
    account_id: str | None = None
    language: str | None = None
    timezone: str | None = None

    @staticmethod
    def make_key(system: str, email: str | None, account_id: str | None) -> str | None:
        """Normalised email when known (the same person across systems), else system + account id."""
        if email and "@" in email:
            return email.strip().lower()
        if account_id:
            return f"{system}:{account_id}"
        return None


@dataclass(frozen=True)
class Ticket:
    """A canonical ticket made from one system's incident or issue by the mapping."""

    system: str
    id: str
    number: str
    title: str
    state: TicketState
    status: str
    opened_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime | None
    requester: PersonRef | None
    assignee: PersonRef | None = None
    group: str | None = None
    service: str | None = None
    category: str | None = None
    priority: int | None = None
    channel: str | None = None
    language: str | None = None
    reopen_count: int = 0
    reassignment_count: int = 0
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, order=True)
class Cursor:
    """Keyset position in a stream: everything at or before (at, id) has been stored."""

    at: datetime
    id: str = ""


@dataclass(frozen=True)
class NativeAnswer:
    """One answer that a system's own survey collected about one ticket (JSM Satisfaction, a ServiceNow
    survey instance)."""

    ticket_id: str
    answered_at: datetime
    score: int
    comment: str | None
    external_id: str  # the survey instance sys_id, or the issue id (JSM keeps one answer per request)


@dataclass(frozen=True)
class NativePage:
    answers: list[NativeAnswer]
    last: Cursor


@dataclass(frozen=True)
class WriteBackItem:
    """What to put on one ticket for one response: field values and, once, an internal note."""

    key: int  # the response id
    ticket_id: str
    values: dict[str, Any]  # canonical names (score, band, kind, survey, sentiment, answered_at)
    note: str | None  # None: no note wanted, or it is already on the ticket
    reference: str  # written inside the note, to find it after an attempt with an unclear end
    unclear: bool = False  # an earlier attempt may have added the note


@dataclass(frozen=True)
class WriteBackOutcome:
    ok: bool
    note_written: bool = False
    error: str | None = None


@dataclass(frozen=True)
class FollowUpRequest:
    """A follow-up to open for one unhappy answer, in the ticket's own system."""

    correlation: str  # stored on the follow-up too: found again instead of created twice
    ticket_id: str
    ticket_number: str
    group: str | None  # the ticket's assignment group, which owns the follow-up
    summary: str
    description: str
    due_at: datetime


@dataclass(frozen=True)
class FollowUpRef:
    remote_id: str
    number: str
    created_at: datetime


@dataclass(frozen=True)
class FollowUpState:
    remote_id: str
    closed_at: datetime | None  # None while open
    outcome: str | None


@dataclass(frozen=True)
class OpenTicket:
    ticket_id: str
    number: str
    requester_id: str  # the system's own user id (ServiceNow sys_id, Jira accountId or user key)
    opened_at: datetime


@dataclass(frozen=True)
class SystemPull:
    """What one sync run pulled from one system."""

    system: str
    status: Literal["ok", "failed", "skipped"]
    pages: int = 0
    tickets: int = 0
    new_resolutions: int = 0
    cursor_before: Cursor | None = None
    cursor_after: Cursor | None = None
    error: str | None = None
    duration_s: float = 0.0
    requests: int = 0
