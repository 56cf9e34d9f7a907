"""Deterministic synthetic service-desk world shared by the ServiceNow and Jira simulators.

The same seed and anchor always produce the same people, groups, services and tickets, so tests and
benchmarks can name what they expect. Each simulator turns these neutral entities into its own
records (ServiceNow table rows, Jira issues) when it starts.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

FIRST_NAMES = (
    "Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sofia", "Anders", "Emma", "Per", "Olivia", "Liam",
    "Noah", "Ava", "Lucas", "Mia", "Elin", "Oskar", "Aisha", "Wei", "Priya", "Mateo", "Chloe", "Yusuf",
)
LAST_NAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Smith", "Garcia", "Chen", "Patel", "Müller", "Rossi",
    "Dubois", "Novak", "Kowalski", "Okafor", "Tanaka", "Silva", "Berg", "Lindqvist", "Murphy", "Nguyen",
)
GROUPS = (
    "Service Desk", "Network", "Database", "Identity & Access", "End User Computing", "Applications",
    "Hardware", "Email & Collaboration",
)
SERVICES = (
    "Email", "VPN", "Laptop", "Payroll", "CRM", "Printing", "Wi-Fi", "Single Sign-On", "ERP", "Telephony",
)
CATEGORIES = ("software", "hardware", "network", "inquiry", "database", "security")
CLOSE_CODES = ("Solution provided", "Workaround provided", "Resolved by caller", "User error", "Known error")
TITLES = (
    "Cannot connect to {service}", "{service} is very slow", "Password reset for {service}",
    "{service} shows an error on login", "Request access to {service}", "{service} crashed again",
    "New {service} account needed", "{service} not working after update",
)
LANGUAGES = ("en", "en", "en", "sv", "sv", "de")
TIMEZONES = ("Europe/Stockholm", "UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata")


def stable_hex(*parts: object, length: int = 32) -> str:
    """A stable hexadecimal id made from the parts (ServiceNow sys_id style when length is 32)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:length]


@dataclass
class Person:
    id: str  # 32-hex, doubles as the ServiceNow sys_id
    account_id: str  # Jira Cloud accountId
    user_name: str
    name: str
    email: str
    language: str
    timezone: str
    email_hidden: bool  # Jira Cloud privacy setting: emailAddress comes back null
    is_agent: bool = False


@dataclass
class Group:
    id: str
    name: str
    members: list[str] = field(default_factory=list)  # Person ids of agents


@dataclass
class Service:
    id: str
    name: str


@dataclass
class Ticket:
    """A ticket with its full history; simulators expose it in their own shape."""

    id: str  # sys_id / Jira numeric id source
    seq: int  # 1-based; INC number and Jira key number
    title: str
    description: str
    category: str
    priority: int  # 1 critical … 5 planning
    impact: int
    urgency: int
    requester: Person
    assignee: Person | None
    group: Group
    service: Service
    channel: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    state: str = "new"  # new | in_progress | on_hold | resolved | closed | canceled
    close_code: str = ""
    reopen_count: int = 0
    reassignment_count: int = 0
    mod_count: int = 0

    @property
    def number(self) -> str:
        return f"INC{self.seq + 10000:07d}"


@dataclass
class World:
    anchor: datetime
    people: list[Person]
    agents: list[Person]
    groups: list[Group]
    services: list[Service]
    tickets: list[Ticket]

    def ticket(self, seq: int) -> Ticket:
        return self.tickets[seq - 1]

    def resolved(self) -> Iterator[Ticket]:
        return (t for t in self.tickets if t.resolved_at is not None)


def _person(rng: random.Random, seed: int, index: int, *, agent: bool) -> Person:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    user_name = f"{first}.{last}{index}".lower().replace("ü", "u")
    return Person(
        id=stable_hex(seed, "person", index),
        account_id="5f" + stable_hex(seed, "account", index, length=22),
        user_name=user_name,
        name=f"{first} {last}",
        email=f"{user_name}@example.com",
        language=rng.choice(LANGUAGES),
        timezone=rng.choice(TIMEZONES),
        email_hidden=rng.random() < 0.15,
        is_agent=agent,
    )


def build_world(
    *, tickets: int = 200, seed: int = 1, anchor: datetime | None = None, days: int = 30, people: int | None = None
) -> World:
    """Generate a world of `tickets` tickets opened over the `days` before `anchor`.

    About 85 % are resolved (some of those closed), the rest still open. Resolution times never pass
    the anchor, so a sync at the anchor sees every resolved ticket.
    """
    anchor = (anchor or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)
    n_people = people or max(20, tickets // 4)
    customers = [_person(rng, seed, i, agent=False) for i in range(n_people)]
    agents = [_person(rng, seed, n_people + i, agent=True) for i in range(max(8, len(GROUPS) * 2))]
    groups = [Group(id=stable_hex(seed, "group", name), name=name) for name in GROUPS]
    for i, agent in enumerate(agents):
        groups[i % len(groups)].members.append(agent.id)
    services = [Service(id=stable_hex(seed, "service", name), name=name) for name in SERVICES]
    by_id = {a.id: a for a in agents}
    span = timedelta(days=days).total_seconds()
    out: list[Ticket] = []
    for seq in range(1, tickets + 1):
        service = rng.choice(services)
        group = rng.choice(groups)
        opened = anchor - timedelta(seconds=rng.uniform(0.05, 1.0) * span)
        opened = opened.replace(microsecond=0)
        priority = rng.choices((1, 2, 3, 4, 5), weights=(2, 8, 40, 40, 10))[0]
        t = Ticket(
            id=stable_hex(seed, "ticket", seq),
            seq=seq,
            title=rng.choice(TITLES).format(service=service.name),
            description=f"Reported via {service.name}.",
            category=rng.choice(CATEGORIES),
            priority=priority,
            impact=min(3, max(1, (priority + 1) // 2)),
            urgency=min(3, max(1, priority // 2 + 1)),
            requester=rng.choice(customers),
            assignee=by_id[rng.choice(group.members)],
            group=group,
            service=service,
            channel=rng.choice(("email", "phone", "self-service", "chat")),
            opened_at=opened,
            updated_at=opened,
            reassignment_count=rng.choices((0, 1, 2, 3, 5), weights=(50, 25, 12, 8, 5))[0],
        )
        if rng.random() < 0.85:
            left = (anchor - opened).total_seconds()
            resolved = opened + timedelta(seconds=rng.uniform(0.02, 0.95) * left)
            if rng.random() < 0.08:
                t.reopen_count = 1
            t.resolved_at = resolved.replace(microsecond=0)
            t.state = "resolved"
            t.close_code = rng.choice(CLOSE_CODES)
            t.updated_at = t.resolved_at
            if (anchor - t.resolved_at) > timedelta(days=5) and rng.random() < 0.7:
                t.closed_at = t.resolved_at + timedelta(days=5)
                t.state = "closed"
                t.updated_at = t.closed_at
        else:
            t.state = rng.choice(("new", "in_progress", "on_hold"))
        t.mod_count = 3 + t.reopen_count * 2 + t.reassignment_count
        out.append(t)
    return World(anchor=anchor, people=customers, agents=agents, groups=groups, services=services, tickets=out)
