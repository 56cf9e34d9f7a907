"""Step: plan survey invitations for new resolutions (the outbox rows), or list them in a dry run.

Every resolution a survey covers gets exactly one invitation row per survey (unique key), created
`pending` with the time it may be sent, or `suppressed` with the reason. The checks that depend on
what happens later (still resolved, throttle, run limit) are made again when the invitation is sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select

from connector.config import Config, SurveyConfig
from connector.store import Store
from connector.store.repo import bulk_upsert
from connector.store.schema import invitations, persons, resolutions, tickets
from connector.store.surveys import SurveyStore
from connector.surveys import i18n
from connector.surveys.policy import Candidate, Context, Decision, Rules, decide

BATCH = 1000


@dataclass(frozen=True)
class PlannedInvitation:
    survey: str
    system: str
    ticket_id: str
    ticket_number: str
    resolved_at: datetime
    person_key: str | None
    email: str | None
    language: str
    decision: Decision


@dataclass
class SurveyPlan:
    survey: str
    pending: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    examples: list[PlannedInvitation] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"survey": self.survey, "pending": self.pending, "suppressed": dict(self.suppressed)}


RECOVERY_WINDOW = timedelta(days=3650)


def rules_of(survey: SurveyConfig) -> Rules:
    if survey.trigger == "follow_up_closed":
        # A recovery survey follows a closed follow-up, whenever that is: the resolution's age and the
        # person's last survey (the one they were unhappy in) must not hold it back.
        return Rules(send_after=timedelta(0), send_within=RECOVERY_WINDOW, throttle=timedelta(0), sample=1.0,
                     max_per_run=survey.max_per_run, exclude_requester_is_assignee=False,
                     needs_email=survey.channel == "email")
    return Rules(send_after=survey.send_after, send_within=survey.send_within, throttle=survey.throttle,
                 sample=survey.sample, max_per_run=survey.max_per_run,
                 exclude_fields={k: frozenset(str(v) for v in vs) for k, vs in survey.exclude.fields.items()},
                 exclude_requester_is_assignee=survey.exclude.requester_is_assignee,
                 needs_email=survey.channel == "email")


def _uninvited(store: Store, name: str, systems: list[str]) -> Iterator[list[dict[str, Any]]]:
    """Resolutions of `systems` with no invitation of survey `name` yet, with ticket and requester."""
    stmt = (
        select(resolutions.c.system, resolutions.c.ticket_id, resolutions.c.resolved_at, tickets.c.number,
               tickets.c.state, tickets.c.requester_key, tickets.c.assignee_key, tickets.c.group_name,
               tickets.c.service, tickets.c.category, tickets.c.priority, tickets.c.channel, tickets.c.language,
               persons.c.email, persons.c.language.label("person_language"))
        .select_from(resolutions
                     .join(tickets, and_(tickets.c.system == resolutions.c.system,
                                         tickets.c.id == resolutions.c.ticket_id))
                     .outerjoin(persons, persons.c.key == tickets.c.requester_key)
                     .outerjoin(invitations, and_(invitations.c.survey == name,
                                                  invitations.c.system == resolutions.c.system,
                                                  invitations.c.ticket_id == resolutions.c.ticket_id,
                                                  invitations.c.resolved_at == resolutions.c.resolved_at)))
        .where(resolutions.c.system.in_(systems), invitations.c.id.is_(None))
        .order_by(resolutions.c.resolved_at, resolutions.c.system, resolutions.c.ticket_id)
    )
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(stmt).mappings()
        for chunk in result.partitions(BATCH):
            yield [dict(r) for r in chunk]


def _candidate(row: dict[str, Any]) -> Candidate:
    key = f"{row['system']}:{row['ticket_id']}:{row['resolved_at'].isoformat()}"
    fields = {"group": row["group_name"], "service": row["service"], "category": row["category"],
              "priority": None if row["priority"] is None else str(row["priority"]), "channel": row["channel"]}
    return Candidate(resolution_key=key, resolved_at=row["resolved_at"], still_resolved=True,
                     requester_key=row["requester_key"], requester_email=row["email"],
                     assignee_key=row["assignee_key"], fields=fields)


def plan_survey(store: Store, name: str, survey: SurveyConfig, config: Config, now: datetime, *,
                dry_run: bool = False, keep_examples: int = 0) -> SurveyPlan:
    """Create the invitation rows for every uninvited resolution (or only count them in a dry run)."""
    systems = survey.systems or list(config.systems)
    rules, plan = rules_of(survey), SurveyPlan(name)
    surveys = SurveyStore(store.engine)
    vip = frozenset(v.strip().lower() for v in survey.exclude.vip)
    for rows in _uninvited(store, name, systems):
        keys = [k for r in rows for k in (r["requester_key"], r["email"]) if k]
        context = Context(now=now, opted_out=frozenset(surveys.opted_out(keys)), vip=vip,
                          bounced=frozenset(surveys.bounced(r["email"] for r in rows if r["email"])))
        planned = []
        for row in rows:
            decision = decide(_candidate(row), rules, context)
            language = i18n.pick_language(row["language"], row["person_language"], survey.default_language)
            item = PlannedInvitation(name, row["system"], row["ticket_id"], row["number"], row["resolved_at"],
                                     row["requester_key"], row["email"], language, decision)
            planned.append(item)
            if decision.action == "suppress":
                plan.suppressed[decision.reason] += 1
            else:
                plan.pending += 1
            if len(plan.examples) < keep_examples:
                plan.examples.append(item)
        if not dry_run:
            _store(store, survey, planned, now)
    return plan


def _store(store: Store, survey: SurveyConfig, planned: list[PlannedInvitation], now: datetime) -> None:
    rows = []
    for p in planned:
        suppressed = p.decision.action == "suppress"
        rows.append({
            "survey": p.survey, "system": p.system, "ticket_id": p.ticket_id, "resolved_at": p.resolved_at,
            "person_key": p.person_key, "email": p.email, "language": p.language, "channel": survey.channel,
            "state": "suppressed" if suppressed else "pending",
            "reason": p.decision.reason if suppressed else None,
            "not_before": None if suppressed else p.resolved_at + survey.send_after,
            "attempts": 0, "reminders_sent": 0, "created_at": now, "updated_at": now,
        })
    with store.engine.begin() as conn:
        # The unique (survey, resolution) key makes a rerun or a concurrent planner a no-op.
        bulk_upsert(conn, invitations, rows, ("survey", "system", "ticket_id", "resolved_at"), update=False)
