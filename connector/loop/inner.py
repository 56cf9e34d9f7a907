"""Step: the inner loop. Each unhappy answer (the `inner_loop.detractor` rule) gets one follow-up in the
ticket's own system, owned by the ticket's group with a due date, and later runs track it to closure.

Exactly once: a `follow_ups` row per answer with a correlation key (`vloop-fu-<response id>`) that is
also written on the follow-up (ServiceNow `correlation_id`, a Jira label), and the system is searched
for that key before anything is created, so a crash or a timeout after the create never makes a
second one. The loop metrics (share followed up, time to follow-up, closure, on time) come from the
same rows.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from connector import failpoints
from connector.analytics.metrics import FollowUpFacts, LoopMetrics, loop_metrics
from connector.config import RESPONSE_SYMBOLS, Config, InnerLoop, SurveyConfig
from connector.errors import VloopError
from connector.expression import Expression, compile_expression
from connector.mapping import Mapping, read_path
from connector.model import FollowUpRequest, WriteBackItem, WriteBackOutcome
from connector.store import Store
from connector.store.repo import _insert
from connector.store.schema import flags, follow_ups, invitations, persons, responses, scores, tickets
from connector.store.surveys import SurveyStore
from connector.surveys.channels import smtp_settings
from connector.surveys.email import SmtpSender, build_notice
from connector.surveys.i18n import pick_language, text
from connector.systems import Source

log = logging.getLogger("vloop.inner")
PER_RUN = 500  # follow-ups created per system and run: a first run over a backlog does not flood a desk
COMMENT_LIMIT = 2000


@dataclass
class InnerLoopReport:
    detractors: int = 0  # new unhappy answers found this run
    created: int = 0
    closed: int = 0
    resurveyed: int = 0
    told: int = 0
    flagged: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    metrics: LoopMetrics | None = None

    def as_dict(self) -> dict[str, Any]:
        m = self.metrics
        return {"detractors": self.detractors, "created": self.created, "closed": self.closed,
                "resurveyed": self.resurveyed, "told": self.told, "flagged": self.flagged, "failed": self.failed,
                "errors": dict(self.errors.most_common(5)),
                "metrics": None if m is None else {
                    "detractors": m.detractors, "follow_up_rate": m.follow_up_rate.value,
                    "closure_rate": m.closure_rate.value, "recovery_rate": m.recovery_rate.value,
                    "on_time_rate": m.on_time_rate.value if m.on_time_rate else None,
                    "median_time_to_follow_up_h": _hours(m.median_time_to_follow_up.value),
                    "median_time_to_close_h": _hours(m.median_time_to_close.value)}}


def rule_values(row: Any, kind: str) -> dict[str, Any]:
    """What a detractor rule sees of one answer (connector.config.RESPONSE_SYMBOLS)."""
    values: dict[str, Any] = {"score": row.score, "kind": kind, "band": row.band, "nps": None, "csat": None,
                              "ces": None, "sentiment": row.sentiment_label, "sentiment_score": row.sentiment,
                              "themes": list(row.themes or []), "has_comment": bool(row.comment),
                              "survey": row.survey, "system": row.system, "source": row.source}
    if kind in ("nps", "csat", "ces"):
        values[kind] = row.score
    return values


def run_inner_loop(store: Store, config: Config, sources: dict[str, Source], now: datetime,
                   mappings: dict[str, Mapping] | None = None) -> InnerLoopReport:
    spec = config.inner_loop
    report = InnerLoopReport()
    if spec is None:
        return report
    rule = compile_expression(spec.detractor, RESPONSE_SYMBOLS)
    report.detractors = _find_detractors(store, config, spec, rule, now)
    recovery = {name: s for name, s in config.surveys.items() if s.trigger == "follow_up_closed"}
    for system, source in sources.items():
        _create(store, system, source, now, report)
        _track(store, system, source, recovery, spec.close_message, now, report)
        mapping = (mappings or {}).get(system)
        if spec.flag_new_tickets is not None and mapping is not None and mapping.write_back is not None:
            _flag_new_tickets(store, system, source, mapping, spec.flag_new_tickets, now, report)
    if spec.close_message:
        _tell_customers(store, config, sources, now, report)
    report.metrics = _metrics(store, config, spec, rule, now)
    for error, count in report.errors.most_common(3):
        log.error("inner loop: %s (%d times)", error, count)
    return report


def _find_detractors(store: Store, config: Config, spec: InnerLoop, rule: Expression, now: datetime) -> int:
    kinds = {name: s.kind for name, s in config.surveys.items()}
    recovery = {name for name, s in config.surveys.items() if s.trigger == "follow_up_closed"}
    stmt = (select(responses.c.id, responses.c.score, responses.c.comment, responses.c.source,
                   responses.c.submitted_at, invitations.c.survey, invitations.c.system, invitations.c.ticket_id,
                   scores.c.band, scores.c.sentiment, scores.c.sentiment_label, scores.c.themes)
            .select_from(responses.join(invitations, invitations.c.id == responses.c.invitation_id)
                         .join(scores, and_(scores.c.response_id == responses.c.id,
                                            scores.c.answered_at == responses.c.submitted_at))
                         .outerjoin(follow_ups, follow_ups.c.response_id == responses.c.id))
            .where(follow_ups.c.response_id.is_(None), responses.c.submitted_at >= now - spec.within,
                   invitations.c.system.in_(list(config.systems))))
    found = 0
    with store.engine.begin() as conn:
        for row in conn.execute(stmt).all():
            if spec.surveys is not None and row.survey not in spec.surveys:
                continue
            if row.survey in recovery:
                continue  # a recovery answer measures the loop; it does not start another one
            if not rule(rule_values(row, kinds.get(row.survey, ""))):
                continue
            conn.execute(_insert(conn, follow_ups).on_conflict_do_nothing(index_elements=["response_id"]), {
                "response_id": row.id, "system": row.system, "ticket_id": row.ticket_id,
                "correlation": f"vloop-fu-{row.id}", "state": "pending", "detractor_at": row.submitted_at,
                "due_at": row.submitted_at + spec.due_in, "attempts": 0, "message": "none", "updated_at": now})
            found += 1
    return found


def _create(store: Store, system: str, source: Source, now: datetime, report: InnerLoopReport) -> None:
    stmt = (select(follow_ups, responses.c.score, responses.c.comment, invitations.c.survey, tickets.c.number,
                   tickets.c.title, tickets.c.group_name, persons.c.name, scores.c.band, scores.c.themes,
                   scores.c.sentiment_label)
            .select_from(follow_ups.join(responses, responses.c.id == follow_ups.c.response_id)
                         .join(invitations, invitations.c.id == responses.c.invitation_id)
                         .join(tickets, and_(tickets.c.system == follow_ups.c.system,
                                             tickets.c.id == follow_ups.c.ticket_id))
                         .outerjoin(persons, persons.c.key == invitations.c.person_key)
                         .outerjoin(scores, scores.c.response_id == responses.c.id))
            .where(follow_ups.c.system == system, follow_ups.c.state == "pending")
            .order_by(follow_ups.c.response_id).limit(PER_RUN))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    for row in rows:
        _set(store, row.response_id, attempts=row.attempts + 1, updated_at=now)  # before: a crash is looked up
        try:
            ref = source.create_follow_up(_request(row))
            failpoints.hit("inner.follow_up_created")
        except (VloopError, ValueError) as exc:
            _set(store, row.response_id, error=str(exc), updated_at=now)
            report.failed += 1
            report.errors[str(exc)] += 1
            continue
        _set(store, row.response_id, state="open", remote_id=ref.remote_id, remote_number=ref.number,
             created_at=ref.created_at, error=None, updated_at=now)
        report.created += 1


def _request(row: Any) -> FollowUpRequest:
    who = row.name or "the customer"
    comment = (row.comment or "").strip()
    if len(comment) > COMMENT_LIMIT:
        comment = comment[:COMMENT_LIMIT] + "…"
    answer = [f"{who} answered the \"{row.survey}\" survey about {row.number} ({row.title or 'no title'}) with "
              f"{row.score} ({row.band}).",
              f"Comment: {comment}" if comment else "No comment was left."]
    if row.themes:
        answer.append(f"Themes: {', '.join(row.themes)}")
    ask = [f"Please contact {who}, find out what went wrong and what would put it right, and close this "
           "follow-up with what was done. Virtuous Loop tracks it and reports the loop metrics.",
           f"Correlation: {row.correlation}"]
    return FollowUpRequest(correlation=row.correlation, ticket_id=row.ticket_id, ticket_number=row.number or "",
                           group=row.group_name, summary=f"Follow up: {who} was unhappy with {row.number}"[:160],
                           description="\n".join([*answer, "", *ask]), due_at=row.due_at)


def _track(store: Store, system: str, source: Source, recovery: dict[str, SurveyConfig], tell: bool,
           now: datetime, report: InnerLoopReport) -> None:
    with store.engine.connect() as conn:
        open_rows = conn.execute(
            select(follow_ups.c.response_id, follow_ups.c.remote_id, invitations)
            .select_from(follow_ups.join(responses, responses.c.id == follow_ups.c.response_id)
                         .join(invitations, invitations.c.id == responses.c.invitation_id))
            .where(follow_ups.c.system == system, follow_ups.c.state == "open")).all()
    if not open_rows:
        return
    try:
        states = source.follow_up_states([r.remote_id for r in open_rows if r.remote_id])
    except VloopError as exc:
        report.errors[f"{system}: cannot read follow-up states: {exc}"] += 1
        report.failed += 1
        return
    for row in open_rows:
        state = states.get(row.remote_id or "")
        if state is not None and state.closed_at is not None:
            with store.engine.begin() as conn:  # closed and re-surveyed together: a crash does neither
                invited = [_invite_recovery(conn, row, name, survey, now) for name, survey in recovery.items()]
                conn.execute(update(follow_ups).where(follow_ups.c.response_id == row.response_id).values(
                    state="closed", closed_at=state.closed_at, outcome=state.outcome, updated_at=now,
                    recovery_invitation_id=invited[0] if invited else None,
                    message="pending" if tell else "none"))
            report.closed += 1
            report.resurveyed += len(invited)


def _tell_customers(store: Store, config: Config, sources: dict[str, Source], now: datetime,
                    report: InnerLoopReport) -> None:
    """"We followed up on your feedback": at most once per closed follow-up (marked before it is sent),
    by email when the person has an address and email is configured, else as a comment on the ticket."""
    stmt = (select(follow_ups.c.response_id, invitations.c.system, invitations.c.ticket_id, invitations.c.email,
                   invitations.c.person_key, invitations.c.language, tickets.c.number, persons.c.name)
            .select_from(follow_ups.join(responses, responses.c.id == follow_ups.c.response_id)
                         .join(invitations, invitations.c.id == responses.c.invitation_id)
                         .join(tickets, and_(tickets.c.system == invitations.c.system,
                                             tickets.c.id == invitations.c.ticket_id))
                         .outerjoin(persons, persons.c.key == invitations.c.person_key))
            .where(follow_ups.c.message == "pending"))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return
    opted = SurveyStore(store.engine).opted_out([k for r in rows for k in (r.person_key, r.email) if k])
    email = config.channels.email
    with contextlib.ExitStack() as stack:
        smtp: SmtpSender | None = None
        for row in rows:
            if {row.person_key, (row.email or "").lower()} & opted:
                _set(store, row.response_id, message="skipped", updated_at=now)
                continue
            _set(store, row.response_id, message="sending", updated_at=now)  # at most once
            lang = pick_language(row.language)
            greeting = text(lang, "email.greeting", name=row.name) if row.name else text(lang, "email.greeting_no_name")
            body = text(lang, "closed_loop.body", greeting=greeting, ticket=row.number,
                        signature=text(lang, "email.signature"))
            try:
                if row.email and email is not None:
                    if smtp is None:
                        smtp = stack.enter_context(SmtpSender(smtp_settings(email)))
                    domain = email.domain or email.sender.rsplit("@", 1)[-1].strip(" >")
                    sent = smtp.send(build_notice(to_address=row.email, to_name=row.name, language=lang, body=body,
                                                  subject=text(lang, "closed_loop.subject", ticket=row.number),
                                                  sender=email.sender, domain=domain)).status == "sent"
                elif row.system in sources:
                    sources[row.system].post_comment(row.ticket_id, body)
                    sent = True
                else:
                    sent = False
            except (VloopError, ValueError) as exc:
                report.errors[f"telling a customer their follow-up closed: {exc}"] += 1
                sent = False
            _set(store, row.response_id, message="sent" if sent else "skipped", updated_at=now)
            report.told += sent


def _invite_recovery(conn: Connection, row: Any, name: str, survey: SurveyConfig, now: datetime) -> int:
    """The recovery survey for the same ticket and person; delivered like any invitation, from now on."""
    key = {"survey": name, "system": row.system, "ticket_id": row.ticket_id, "resolved_at": row.resolved_at}
    conn.execute(_insert(conn, invitations).on_conflict_do_nothing(
        index_elements=["survey", "system", "ticket_id", "resolved_at"]), {
        **key, "person_key": row.person_key, "email": row.email, "language": row.language,
        "channel": survey.channel, "state": "pending", "reason": "the follow-up of an unhappy answer closed",
        "not_before": now, "attempts": 0, "reminders_sent": 0, "created_at": now, "updated_at": now})
    found = conn.execute(select(invitations.c.id).where(
        *(invitations.c[k] == v for k, v in key.items()))).scalar_one()
    return int(found)


def _metrics(store: Store, config: Config, spec: InnerLoop, rule: Expression, now: datetime) -> LoopMetrics:
    """Loop metrics over every follow-up; recovered = the re-survey answer no longer meets the rule."""
    kinds = {name: s.kind for name, s in config.surveys.items()}
    stmt = (select(follow_ups.c.detractor_at, follow_ups.c.created_at, follow_ups.c.closed_at,
                   responses.c.id.label("answered"), responses.c.score, responses.c.comment, responses.c.source,
                   invitations.c.survey, invitations.c.system, scores.c.band, scores.c.sentiment,
                   scores.c.sentiment_label, scores.c.themes)
            .select_from(follow_ups.outerjoin(invitations, invitations.c.id == follow_ups.c.recovery_invitation_id)
                         .outerjoin(responses, responses.c.invitation_id == invitations.c.id)
                         .outerjoin(scores, scores.c.response_id == responses.c.id)))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    facts = []
    for r in rows:
        recovered = None
        if r.answered is not None and r.band is not None:
            recovered = not rule(rule_values(r, kinds.get(r.survey, "")))
        facts.append(_consistent(r.detractor_at, r.created_at, r.closed_at, recovered))
    return loop_metrics(facts, due_in=spec.due_in, as_of=now, min_n=1)


def _consistent(detractor_at: datetime, created_at: datetime | None, closed_at: datetime | None,
                recovered: bool | None) -> FollowUpFacts:
    """System clocks differ a little: a follow-up created "before" the answer counts as created at it."""
    created = max(created_at, detractor_at) if created_at else None
    closed = max(closed_at, created) if closed_at and created else None
    return FollowUpFacts(detractor_at, created, closed, recovered if closed else None)


def _flag_new_tickets(store: Store, system: str, source: Source, mapping: Mapping, window: timedelta,
                      now: datetime, report: InnerLoopReport) -> None:
    """A heads-up note on each new open ticket of someone recently unhappy (once per ticket)."""
    unhappy = _recently_unhappy(store, system, mapping, now - window)
    if unhappy:
        try:
            found = source.open_tickets_of(sorted(unhappy), min(u["detractor_at"] for u in unhappy.values()))
        except VloopError as exc:
            report.errors[f"{system}: cannot look for new tickets of unhappy customers: {exc}"] += 1
            report.failed += 1
            return
        with store.engine.begin() as conn:
            for ticket in found:
                answer = unhappy.get(ticket.requester_id)
                if answer is None or ticket.ticket_id == answer["ticket_id"]:
                    continue
                if ticket.opened_at < answer["detractor_at"]:
                    continue  # raised before they were unhappy: not "new" to this answer
                conn.execute(_insert(conn, flags).on_conflict_do_nothing(index_elements=["system", "ticket_id"]), {
                    "system": system, "ticket_id": ticket.ticket_id, "response_id": answer["response_id"],
                    "state": "pending", "attempts": 0, "updated_at": now})
    _write_flags(store, system, source, now, report)


def _recently_unhappy(store: Store, system: str, mapping: Mapping, since: datetime) -> dict[str, dict[str, Any]]:
    """The system's own user id of each person with an unhappy answer since `since` or an open follow-up,
    with their latest such answer."""
    source_path = mapping.fields["requester_id"].source if "requester_id" in mapping.fields else None
    if source_path is None:
        return {}
    stmt = (select(follow_ups.c.response_id, follow_ups.c.detractor_at, follow_ups.c.ticket_id, tickets.c.raw)
            .select_from(follow_ups.join(tickets, and_(tickets.c.system == follow_ups.c.system,
                                                       tickets.c.id == follow_ups.c.ticket_id)))
            .where(follow_ups.c.system == system,
                   or_(follow_ups.c.detractor_at >= since, follow_ups.c.state.in_(("pending", "open"))))
            .order_by(follow_ups.c.detractor_at))
    out: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(stmt).all():
            who = read_path(row.raw or {}, source_path)
            if who:
                out[str(who)] = {"response_id": row.response_id, "detractor_at": row.detractor_at,
                                 "ticket_id": row.ticket_id}
    return out


def _write_flags(store: Store, system: str, source: Source, now: datetime, report: InnerLoopReport) -> None:
    stmt = (select(flags.c.ticket_id, flags.c.attempts, flags.c.response_id, responses.c.score,
                   responses.c.submitted_at, invitations.c.survey, tickets.c.number, follow_ups.c.remote_number,
                   follow_ups.c.state.label("follow_up_state"), scores.c.band)
            .select_from(flags.join(responses, responses.c.id == flags.c.response_id)
                         .join(invitations, invitations.c.id == responses.c.invitation_id)
                         .join(tickets, and_(tickets.c.system == invitations.c.system,
                                             tickets.c.id == invitations.c.ticket_id))
                         .outerjoin(follow_ups, follow_ups.c.response_id == responses.c.id)
                         .outerjoin(scores, scores.c.response_id == responses.c.id))
            .where(flags.c.system == system, flags.c.state == "pending"))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return
    items = []
    for i, row in enumerate(rows):
        reference = f"(ref vloop-flag-{row.ticket_id})"
        follow = f"; follow-up {row.remote_number} is {row.follow_up_state}" if row.remote_number else ""
        note = (f"Heads-up from the customer survey: this customer was unhappy with {row.number} on "
                f"{row.submitted_at:%Y-%m-%d} ({row.survey}: {row.score}, {row.band}){follow}.\n{reference}")
        items.append(WriteBackItem(key=i, ticket_id=row.ticket_id, values={}, note=note, reference=reference,
                                   unclear=row.attempts > 0))
    with store.engine.begin() as conn:
        conn.execute(update(flags).where(flags.c.system == system, flags.c.ticket_id.in_([r.ticket_id for r in rows]))
                     .values(attempts=flags.c.attempts + 1, updated_at=now))
    try:
        outcomes = dict(source.write_back(items))
    except VloopError as exc:
        outcomes = {i: WriteBackOutcome(False, error=str(exc)) for i in range(len(items))}
    with store.engine.begin() as conn:
        for i, row in enumerate(rows):
            outcome = outcomes.get(i)
            done = outcome is not None and outcome.ok
            error = None if done else (outcome.error if outcome else "no answer from the system")
            conn.execute(update(flags).where(flags.c.system == system, flags.c.ticket_id == row.ticket_id).values(
                state="done" if done else "pending", error=error, updated_at=now))
            report.flagged += done
            if not done:
                report.failed += 1
                report.errors[f"{system}: heads-up note on a new ticket: {error}"] += 1


def _set(store: Store, response_id: int, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(follow_ups).where(follow_ups.c.response_id == response_id).values(**values))


def _hours(value: timedelta | None) -> float | None:
    return round(value.total_seconds() / 3600, 1) if value is not None else None
