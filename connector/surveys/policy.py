"""Who is asked, decided at send time. Pure: no I/O, every input passed in, table-tested.

`decide()` answers for one resolution whether to send its survey now, to wait, or to suppress it,
always with a reason an operator can read in `vloop sync --dry-run`. The checks run in a fixed order so
the first reason that applies is the one recorded (a reopened ticket is "reopened", not "not sampled").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["send", "wait", "suppress"]


@dataclass(frozen=True)
class Rules:
    """The policy part of a survey definition."""

    send_after: timedelta = timedelta(hours=1)
    send_within: timedelta = timedelta(days=7)
    throttle: timedelta = timedelta(days=30)
    sample: float = 1.0
    max_per_run: int | None = None
    exclude_fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    exclude_requester_is_assignee: bool = True
    needs_email: bool = True  # email channel; a ticket-comment channel reaches people without one


@dataclass(frozen=True)
class Candidate:
    """One resolution as the policy sees it, with the ticket's current state."""

    resolution_key: str  # stable id of the resolution: system, ticket id and resolution time
    resolved_at: datetime
    still_resolved: bool  # re-checked against the system at send time
    requester_key: str | None
    requester_email: str | None
    assignee_key: str | None
    fields: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What the policy needs to know beyond the candidate, gathered once per run."""

    now: datetime
    last_surveyed: Mapping[str, datetime] = field(default_factory=dict)  # person key -> last invitation, any system
    opted_out: Set[str] = frozenset()
    bounced: Set[str] = frozenset()  # addresses that cannot receive mail
    vip: Set[str] = frozenset()
    sent_this_run: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    not_before: datetime | None = None


def sampled(resolution_key: str, share: float) -> bool:
    """Deterministic: the same resolution is always in or out of the sample, run after run."""
    if share >= 1:
        return True
    if share <= 0:
        return False
    digest = hashlib.sha256(resolution_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def decide(candidate: Candidate, rules: Rules, context: Context) -> Decision:
    """Send, wait or suppress one resolution's survey, with the reason.

    Callers deciding several candidates in one run add each "send" to `last_surveyed` and
    `sent_this_run` before the next decision, so one person gets at most one survey per throttle period.
    """
    if not candidate.still_resolved:
        return Decision("suppress", "reopened before the survey was sent")
    due = candidate.resolved_at + rules.send_after
    if context.now < due:
        return Decision("wait", f"waiting until {due:%Y-%m-%d %H:%M} UTC (send_after)", not_before=due)
    if context.now > candidate.resolved_at + rules.send_within:
        return Decision("suppress", f"resolved more than {_days(rules.send_within)} ago (send_within)")
    person = candidate.requester_key
    if person is None:
        return Decision("suppress", "no requester on the ticket")
    if rules.needs_email and not candidate.requester_email:
        return Decision("suppress", "requester has no email address")
    if rules.needs_email and (candidate.requester_email or "").lower() in context.bounced:
        return Decision("suppress", "requester's email address bounced")
    if person in context.opted_out or (candidate.requester_email or "") in context.opted_out:
        return Decision("suppress", "requester opted out")
    if person in context.vip or (candidate.requester_email or "") in context.vip:
        return Decision("suppress", "requester is on the VIP list")
    if rules.exclude_requester_is_assignee and candidate.assignee_key == person:
        return Decision("suppress", "requester is the assignee")
    for name, values in rules.exclude_fields.items():
        value = candidate.fields.get(name)
        if value is not None and value in values:
            return Decision("suppress", f"excluded by {name} = {value}")
    if not sampled(candidate.resolution_key, rules.sample):
        return Decision("suppress", f"not in the {rules.sample:.0%} sample")
    last = context.last_surveyed.get(person)
    if last is not None and context.now - last < rules.throttle:
        return Decision("suppress", f"surveyed on {last:%Y-%m-%d} (throttle {_days(rules.throttle)})")
    if rules.max_per_run is not None and context.sent_this_run >= rules.max_per_run:
        return Decision("wait", f"run limit of {rules.max_per_run} reached (max_per_run)")
    return Decision("send", "eligible")


def _days(value: timedelta) -> str:
    days = value.total_seconds() / 86400
    return f"{days:g}d" if days >= 1 else f"{value.total_seconds() / 3600:g}h"
