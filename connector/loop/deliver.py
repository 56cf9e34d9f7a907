"""Step: send due invitations (email, ticket comment or webhook), exactly once in practice.

For each due invitation (pending, `not_before` passed, retry time passed), in order:
1. the ticket is re-checked in its system, 100 per request: if it is no longer resolved at the same
   resolution time, the invitation is `cancelled` (a reopened ticket);
2. the policy is asked again with what is known now: opt-outs, the per-person throttle across systems
   (invitations sent by any survey), the run limit;
3. the row is marked `sending` and committed, the mail goes out over the batch's one SMTP connection,
   then the row is marked `sent` (Message-ID, expiry), back to `pending` with a later retry time, or
   `failed` when the server refused the address for good.

The one window that can send twice: the server accepted the mail and the process died before step 3's
last commit. The row is then still `sending`, and the next run sends it again (at-least-once); every
other crash point sends nothing twice. Ticket comments close that window too: before sending again an
invitation whose earlier attempt had an unclear end, the ticket is searched for the comment's reference.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from connector import failpoints
from connector.config import Config, SurveyConfig
from connector.errors import VloopError
from connector.loop.invite import _candidate, rules_of
from connector.store import Store
from connector.store.schema import invitations, persons, responses, tickets
from connector.store.surveys import SurveyStore
from connector.surveys.channels import CommentDelivery, Delivery, EmailDelivery, Links, WebhookDelivery
from connector.surveys.email import enhanced_status
from connector.surveys.policy import Context, decide
from connector.surveys.tokens import SurveyTokens
from connector.systems import Source

log = logging.getLogger("vloop.deliver")
RETRY_BACKOFF = (timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=8))
MAX_ATTEMPTS = 8


@dataclass
class DeliveryReport:
    survey: str
    sent: int = 0
    retry: int = 0
    failed: int = 0
    cancelled: int = 0
    reminded: int = 0
    expired: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    skipped_systems: list[str] = field(default_factory=list)
    smtp_connections: int = 0
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"survey": self.survey, "sent": self.sent, "retry": self.retry, "failed": self.failed,
                "cancelled": self.cancelled, "reminded": self.reminded, "expired": self.expired,
                "suppressed": dict(self.suppressed),
                "skipped_systems": self.skipped_systems, "duration_s": self.duration_s}


def _due(store: Store, name: str, now: datetime, limit: int) -> list[dict[str, Any]]:
    stmt = (
        select(invitations, tickets.c.number, tickets.c.title, tickets.c.state.label("ticket_state"),
               tickets.c.assignee_key, tickets.c.group_name, tickets.c.service, tickets.c.category,
               tickets.c.priority, tickets.c.channel.label("ticket_channel"), persons.c.name.label("person_name"))
        .select_from(invitations
                     .join(tickets, and_(tickets.c.system == invitations.c.system,
                                         tickets.c.id == invitations.c.ticket_id))
                     .outerjoin(persons, persons.c.key == invitations.c.person_key))
        .where(invitations.c.survey == name, invitations.c.state.in_(("pending", "sending")),
               invitations.c.not_before <= now,
               or_(invitations.c.next_attempt_at.is_(None), invitations.c.next_attempt_at <= now))
        .order_by(invitations.c.not_before, invitations.c.id).limit(limit)
    )
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _last_surveyed(store: Store, keys: list[str]) -> dict[str, datetime]:
    if not keys:
        return {}
    stmt = (select(invitations.c.person_key, func.max(invitations.c.sent_at))
            .where(invitations.c.person_key.in_(sorted(set(keys))), invitations.c.sent_at.is_not(None))
            .group_by(invitations.c.person_key))
    with store.engine.connect() as conn:
        return {k: at for k, at in conn.execute(stmt) if at is not None}


def _set(store: Store, invitation_id: int, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(invitations).where(invitations.c.id == invitation_id).values(**values))


def _still_resolved(rows: list[dict[str, Any]], sources: dict[str, Source],
                    report: DeliveryReport) -> dict[int, bool | None]:
    """Per invitation: True/False from the system, None when the system could not be asked."""
    by_system: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_system[row["system"]].append(row)
    out: dict[int, bool | None] = {}
    for system, items in by_system.items():
        source = sources.get(system)
        current: dict[str, datetime] | None = None
        if source is not None:
            try:
                current = source.current_resolutions(sorted({r["ticket_id"] for r in items}))
            except VloopError as exc:
                log.error("%s: cannot re-check tickets before sending: %s", system, exc)
        if current is None and system not in report.skipped_systems:
            report.skipped_systems.append(system)
        for row in items:
            out[row["id"]] = None if current is None else current.get(row["ticket_id"]) == row["resolved_at"]
    return out


def deliver_survey(store: Store, name: str, survey: SurveyConfig, config: Config, sources: dict[str, Source],
                   now: datetime, *, delivery: Delivery | None = None) -> DeliveryReport:
    """Expire, send the survey's due invitations, then remind; returns what happened."""
    report = DeliveryReport(name)
    delivery = delivery or _delivery(name, survey, config, sources)
    if delivery is None:
        return report
    report.expired = _expire(store, name, now)
    rows = _due(store, name, now, survey.max_per_run or 1_000_000)
    reminders = _reminders_due(store, name, survey, now)[:max(0, (survey.max_per_run or 1_000_000) - len(rows))]
    if not rows and not reminders:
        return report
    started = time.monotonic()
    with delivery:
        if rows:
            _send_new(store, rows, sources, survey, delivery, now, report)
        resolved = _still_resolved(reminders, sources, report) if reminders else {}
        for row in reminders:
            if resolved[row["id"]]:  # a reopened ticket is not chased; an unchecked one waits a run
                _remind(store, row, delivery, now, report)
        report.smtp_connections = delivery.connections
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _delivery(name: str, survey: SurveyConfig, config: Config, sources: dict[str, Source]) -> Delivery | None:
    if config.public_url is None:
        return None
    links = Links(SurveyTokens(config.secret_keys(), survey.expire_after), str(config.public_url).rstrip("/"))
    if survey.channel == "email" and config.channels.email is not None:
        return EmailDelivery(config.channels.email, survey, links)
    if survey.channel == "webhook" and config.channels.webhook is not None:
        return WebhookDelivery(config.channels.webhook, name, survey, links)
    if survey.channel == "comment":
        return CommentDelivery(sources, name, survey, links)
    return None


def _send_new(store: Store, rows: list[dict[str, Any]], sources: dict[str, Source], survey: SurveyConfig,
              delivery: Delivery, now: datetime, report: DeliveryReport) -> None:
    resolved = _still_resolved(rows, sources, report)
    keys = [r["person_key"] for r in rows if r["person_key"]]
    last = _last_surveyed(store, keys)
    surveys = SurveyStore(store.engine)
    opted = frozenset(surveys.opted_out([*keys, *(r["email"] for r in rows if r["email"])]))
    bounced = surveys.bounced(r["email"] for r in rows if r["email"])
    vip = frozenset(v.strip().lower() for v in survey.exclude.vip)
    rules = rules_of(survey)
    for row in rows:
        still = resolved[row["id"]]
        if still is None:
            continue  # the system could not be asked: never send unchecked; next run tries again
        if not still:
            _set(store, row["id"], state="cancelled", reason="ticket reopened before the survey was sent",
                 updated_at=now)
            report.cancelled += 1
            continue
        candidate = _candidate({**row, "requester_key": row["person_key"], "channel": row["ticket_channel"]})
        context = Context(now=now, last_surveyed=last, opted_out=opted, vip=vip, bounced=bounced,
                          sent_this_run=report.sent)
        decision = decide(candidate, rules, context)
        if decision.action == "wait":
            continue
        if decision.action == "suppress":
            _set(store, row["id"], state="suppressed", reason=decision.reason, updated_at=now)
            report.suppressed[decision.reason] += 1
            continue
        if _send_one(store, delivery, row, survey, now, report):
            if row["person_key"]:
                last[row["person_key"]] = now  # one survey per person per throttle period, this run too
        elif row["email"]:
            bounced |= surveys.bounced([row["email"]])  # a refused address is not tried again this run


def _expire(store: Store, name: str, now: datetime) -> int:
    """Sent invitations past their expiry without an answer become `expired` (the page refuses them)."""
    answered = select(responses.c.invitation_id)
    with store.engine.begin() as conn:
        result = conn.execute(update(invitations).where(
            invitations.c.survey == name, invitations.c.state == "sent", invitations.c.expires_at <= now,
            invitations.c.id.not_in(answered)).values(state="expired", updated_at=now))
        return int(result.rowcount or 0)


def _reminders_due(store: Store, name: str, survey: SurveyConfig, now: datetime) -> list[dict[str, Any]]:
    if survey.remind_after is None or survey.max_reminders == 0:
        return []
    last_contact = func.coalesce(invitations.c.last_reminder_at, invitations.c.sent_at)
    stmt = (
        select(invitations, tickets.c.number, tickets.c.title, persons.c.name.label("person_name"))
        .select_from(invitations
                     .join(tickets, and_(tickets.c.system == invitations.c.system,
                                         tickets.c.id == invitations.c.ticket_id))
                     .outerjoin(persons, persons.c.key == invitations.c.person_key))
        .where(invitations.c.survey == name, invitations.c.state == "sent",
               invitations.c.reminders_sent < survey.max_reminders, last_contact <= now - survey.remind_after,
               invitations.c.expires_at > now, invitations.c.id.not_in(select(responses.c.invitation_id)))
        .order_by(invitations.c.id)
    )
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _remind(store: Store, row: dict[str, Any], delivery: Delivery, now: datetime, report: DeliveryReport) -> None:
    """At most once: the reminder is counted before it is sent, so a crash can lose one, never double it."""
    opted = SurveyStore(store.engine).opted_out([k for k in (row["person_key"], row["email"]) if k])
    if opted:
        return
    _set(store, row["id"], reminders_sent=int(row["reminders_sent"]) + 1, last_reminder_at=now, updated_at=now)
    failpoints.hit("deliver.reminder_counted")
    try:
        result, _ = delivery.send(row, reminder=True)
    except ValueError:
        return  # the row cannot make a message; it will not get better
    if result.status == "sent":
        report.reminded += 1
    elif result.status == "retry" and not result.uncertain:  # surely not delivered: the next run tries again
        _set(store, row["id"], reminders_sent=row["reminders_sent"], last_reminder_at=row["last_reminder_at"],
             updated_at=now)


def _send_one(store: Store, delivery: Delivery, row: dict[str, Any], survey: SurveyConfig, now: datetime,
              report: DeliveryReport) -> bool:
    attempts = int(row["attempts"] or 0) + 1
    earlier = delivery.delivered_before(row) if attempts > 1 else None
    if earlier is not None:  # the last attempt did arrive; only its outcome was lost
        _mark_sent(store, row["id"], earlier, survey, now)
        report.sent += 1
        return True
    _set(store, row["id"], state="sending", attempts=attempts, updated_at=now)
    failpoints.hit("deliver.before_smtp")
    try:
        result, sent_id = delivery.send(row)
    except ValueError as exc:  # the row cannot make a valid message (e.g. a malformed address)
        _set(store, row["id"], state="failed", reason=f"cannot build the message: {exc}", updated_at=now)
        report.failed += 1
        return False
    failpoints.hit("deliver.after_smtp")
    if result.status == "sent":
        _mark_sent(store, row["id"], sent_id, survey, now)
        report.sent += 1
        return True
    elif result.status == "retry" and attempts < MAX_ATTEMPTS:
        wait = RETRY_BACKOFF[min(attempts - 1, len(RETRY_BACKOFF) - 1)]
        _set(store, row["id"], state="pending", next_attempt_at=now + wait, reason=result.detail, updated_at=now)
        report.retry += 1
        return False
    else:
        _set(store, row["id"], state="failed", reason=result.detail, updated_at=now)
        report.failed += 1
        if result.bounced and row["email"]:  # later surveys to this address are suppressed, not failed again
            SurveyStore(store.engine).add_bounce(row["email"], enhanced_status(result.detail), result.detail,
                                                 "smtp", now)
    return False


def _mark_sent(store: Store, invitation_id: int, sent_id: str | None, survey: SurveyConfig, now: datetime) -> None:
    _set(store, invitation_id, state="sent", sent_at=now, message_id=sent_id, reason=None,
         expires_at=now + survey.expire_after, next_attempt_at=None, updated_at=now)
