"""The only modules that speak a system's API. Everything above them sees `Source` and `RawPage`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from connector.config import NativeSurvey
from connector.mapping import Mapping
from connector.model import (
    Cursor,
    FollowUpRef,
    FollowUpRequest,
    FollowUpState,
    NativePage,
    OpenTicket,
    WriteBackItem,
    WriteBackOutcome,
)


@dataclass(frozen=True)
class RawPage:
    """One page of raw records in (resolution time, id) order, and the cursor after its last record."""

    records: list[dict[str, Any]]
    last: Cursor | None


class Source(Protocol):
    name: str
    mapping: Mapping

    def connect(self) -> None:
        """Authenticate and discover what the mapping needs (server flavour, custom field ids)."""

    def pull_resolved(self, since: datetime, until: datetime | None = None) -> Iterator[RawPage]:
        """Resolved records with resolution time >= `since`, ascending, one page at a time."""

    def current_resolutions(self, ticket_ids: list[str]) -> dict[str, datetime]:
        """For tickets still resolved now, their current resolution time; one request per 100 tickets."""

    def pull_native(self, since: datetime, native: NativeSurvey) -> Iterator[NativePage]:
        """Answers of the system's own satisfaction survey given at or after `since`, oldest first."""

    def write_back(self, items: Iterable[WriteBackItem]) -> Iterator[tuple[int, WriteBackOutcome]]:
        """Put each item's values (and its note, once) on its ticket; (item key, outcome) for each item, as
        the system answers. Items are drawn from `items` in the caller's thread, a few calls ahead."""

    def create_follow_up(self, request: FollowUpRequest) -> FollowUpRef:
        """The follow-up with this correlation key: found if it exists, else created (linked to the ticket,
        or under it as a sub-task where the system is configured so)."""

    def follow_up_states(self, remote_ids: list[str]) -> dict[str, FollowUpState]:
        """Current state of these follow-ups, 100 per request."""

    def open_tickets_of(self, requester_ids: list[str], since: datetime) -> list[OpenTicket]:
        """Open tickets these people raised since `since`, 100 people per request."""

    def post_comment(self, ticket_id: str, body: str) -> None:
        """Add a comment the customer sees (never repeated after it may have been stored)."""

    def find_comment(self, ticket_id: str, marker: str) -> bool:
        """Whether a customer-visible comment containing `marker` is on the ticket (after an unclear send)."""

    def missing_fields(self) -> list[str]:
        """Source paths of the mapping that the system does not know (for `vloop validate --check-connection`)."""

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included."""
