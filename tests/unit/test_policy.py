"""The survey policy, one row per rule: what is decided and the reason the operator reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connector.surveys.policy import Candidate, Context, Rules, decide, sampled

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BASE = Candidate(resolution_key="snow:abc:2026-11-25T09:00:00+00:00", resolved_at=NOW - timedelta(hours=3),
                 still_resolved=True, requester_key="anna@example.com", requester_email="anna@example.com",
                 assignee_key="agent@example.com", fields={"category": "network", "priority": "3"})
RULES = Rules(exclude_fields={"category": frozenset({"security"})})
CTX = Context(now=NOW)


@pytest.mark.parametrize(("candidate", "rules", "context", "action", "reason"), [
    (BASE, RULES, CTX, "send", "eligible"),
    (replace(BASE, still_resolved=False), RULES, CTX, "suppress", "reopened before the survey was sent"),
    (replace(BASE, resolved_at=NOW - timedelta(minutes=20)), RULES, CTX, "wait",
     "waiting until 2026-11-25 12:40 UTC (send_after)"),
    (replace(BASE, resolved_at=NOW - timedelta(days=8)), RULES, CTX, "suppress",
     "resolved more than 7d ago (send_within)"),
    (replace(BASE, requester_key=None, requester_email=None), RULES, CTX, "suppress", "no requester on the ticket"),
    (replace(BASE, requester_key="jsm:5f00", requester_email=None), RULES, CTX, "suppress",
     "requester has no email address"),
    (replace(BASE, requester_key="jsm:5f00", requester_email=None), replace(RULES, needs_email=False), CTX, "send",
     "eligible"),
    (BASE, RULES, replace(CTX, bounced=frozenset({"anna@example.com"})), "suppress",
     "requester's email address bounced"),
    (BASE, replace(RULES, needs_email=False), replace(CTX, bounced=frozenset({"anna@example.com"})), "send",
     "eligible"),  # a ticket comment still reaches them
    (BASE, RULES, replace(CTX, opted_out=frozenset({"anna@example.com"})), "suppress", "requester opted out"),
    (BASE, RULES, replace(CTX, vip=frozenset({"anna@example.com"})), "suppress", "requester is on the VIP list"),
    (replace(BASE, assignee_key="anna@example.com"), RULES, CTX, "suppress", "requester is the assignee"),
    (replace(BASE, assignee_key="anna@example.com"), replace(RULES, exclude_requester_is_assignee=False), CTX,
     "send", "eligible"),
    (replace(BASE, fields={"category": "security"}), RULES, CTX, "suppress", "excluded by category = security"),
    (BASE, replace(RULES, sample=0.0), CTX, "suppress", "not in the 0% sample"),
    (BASE, RULES, replace(CTX, last_surveyed={"anna@example.com": NOW - timedelta(days=10)}), "suppress",
     "surveyed on 2026-11-15 (throttle 30d)"),
    (BASE, RULES, replace(CTX, last_surveyed={"anna@example.com": NOW - timedelta(days=31)}), "send", "eligible"),
    (BASE, replace(RULES, max_per_run=100), replace(CTX, sent_this_run=100), "wait",
     "run limit of 100 reached (max_per_run)"),
    # The first rule that applies is the reason: reopened wins over everything else.
    (replace(BASE, still_resolved=False, requester_key=None), replace(RULES, sample=0.0), CTX, "suppress",
     "reopened before the survey was sent"),
])
def test_decide(candidate, rules, context, action, reason):
    decision = decide(candidate, rules, context)
    assert (decision.action, decision.reason) == (action, reason)


def test_wait_says_when():
    decision = decide(replace(BASE, resolved_at=NOW - timedelta(minutes=20)), RULES, CTX)
    assert decision.not_before == NOW + timedelta(minutes=40)


def test_sampling_is_deterministic_and_close_to_the_share():
    keys = [f"snow:{i}:2026-11-25" for i in range(20_000)]
    first = [sampled(k, 0.3) for k in keys]
    assert first == [sampled(k, 0.3) for k in keys]  # reruns decide the same
    assert 0.28 < sum(first) / len(keys) < 0.32
    assert all(sampled(k, 1.0) for k in keys[:100]) and not any(sampled(k, 0.0) for k in keys[:100])
