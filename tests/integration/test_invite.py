"""Planning survey invitations: one row per resolution per survey, suppressions with reasons."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from connector.config import load
from connector.errors import ConfigError
from connector.loop.run import sync
from connector.report.summary import format_run
from connector.store import Store
from connector.store.surveys import SurveyStore
from tests.conftest import ENV, write_config
from tests.integration.helpers import invitation_rows, site, world

KEY = "k" * 40
CHANNELS = {"email": {"from": "Service Desk <desk@example.com>"}}
NOW = datetime.now(UTC).replace(microsecond=0)


def survey(**extra):
    return {"kind": "csat", "send_after": "1h", "send_within": "7d", **extra}


def run(tmp_path, url, systems, surveys, **kwargs):
    path = write_config(tmp_path, url, systems, secret_key=KEY, public_url="https://feedback.example.com",
                        surveys=surveys, channels=CHANNELS)
    loaded = load(path, env=ENV)
    store = Store.open(loaded.config.state)
    try:
        return sync(loaded, store, **kwargs)
    finally:
        store.close()


def recent_world(n=120, seed=31):
    w = world(n, seed=seed)
    for i, t in enumerate(w.tickets):  # spread resolutions over the last 10 days
        if t.resolved_at is not None:
            t.resolved_at, t.state, t.closed_at = NOW - timedelta(hours=2 + (i * 2) % 240), "resolved", None
    return w


def test_every_resolution_gets_one_invitation_row_and_reruns_add_none(tmp_path, state_url):
    w = recent_world()
    with site("servicenow", w) as sn:
        first = run(tmp_path, state_url, {"servicenow": sn.system()}, {"resolved": survey()})
        again = run(tmp_path, state_url, {"servicenow": sn.system()}, {"resolved": survey()})
    stored = invitation_rows(state_url)
    resolved = sum(1 for t in w.tickets if t.resolved_at is not None)
    assert len(stored) == resolved
    plan = first.surveys[0]
    assert plan.pending + sum(plan.suppressed.values()) == resolved
    assert again.surveys[0].pending == 0 and not again.surveys[0].suppressed
    states = Counter(r["state"] for r in stored)
    assert states["pending"] == plan.pending > 0
    too_old = [r for r in stored if r["resolved_at"] < NOW - timedelta(days=7)]
    assert too_old and all(r["state"] == "suppressed" and "send_within" in r["reason"] for r in too_old)
    pending = [r for r in stored if r["state"] == "pending"]
    assert all(r["not_before"] == r["resolved_at"] + timedelta(hours=1) for r in pending)
    assert all(r["email"] and r["language"] in ("en", "sv") for r in pending)


def test_exclusions_vip_opt_out_and_assignee_are_recorded_with_reasons(tmp_path, sqlite_url):
    w = recent_world(200, seed=32)
    recent = [t for t in w.tickets if t.resolved_at is not None and t.resolved_at > NOW - timedelta(days=6)]
    vip, opted, own = recent[0].requester, recent[1].requester, recent[2]
    own.assignee = own.requester  # the requester resolved their own ticket
    store = Store.open(sqlite_url)
    SurveyStore(store.engine).add_optout(opted.email, "admin")
    store.close()
    definition = survey(exclude={"fields": {"category": ["security"]}, "vip": [vip.email.upper()]})
    with site("servicenow", w) as sn:
        result = run(tmp_path, sqlite_url, {"servicenow": sn.system()}, {"resolved": definition})
    reasons = result.surveys[0].suppressed
    assert reasons["requester is on the VIP list"] >= 1
    assert reasons["requester opted out"] >= 1
    assert reasons["requester is the assignee"] >= 1
    assert reasons["excluded by category = security"] >= 1
    by_ticket = {r["ticket_id"]: r for r in invitation_rows(sqlite_url)}
    assert by_ticket[own.id]["reason"] == "requester is the assignee"


def test_a_re_resolved_ticket_gets_a_second_invitation(tmp_path, sqlite_url):
    w = recent_world(60, seed=33)
    target = next(t for t in w.tickets if t.resolved_at is not None and t.resolved_at > NOW - timedelta(days=2))
    with site("jira", w) as jira:
        run(tmp_path, sqlite_url, {"jira": jira.system()}, {"resolved": survey()})
        jira.sim.reopen(f"ITSD-{target.seq}", NOW - timedelta(seconds=40))
        jira.sim.resolve(f"ITSD-{target.seq}", NOW - timedelta(seconds=20))
        run(tmp_path, sqlite_url, {"jira": jira.system()}, {"resolved": survey()})
        ticket_id = jira.ticket_id(target.seq)
    mine = [r for r in invitation_rows(sqlite_url) if r["ticket_id"] == ticket_id]
    assert len(mine) == 2 and len({r["resolved_at"] for r in mine}) == 2


def test_dry_run_lists_decisions_and_stores_nothing(tmp_path, sqlite_url):
    w = recent_world(150, seed=34)
    with site("servicenow", w) as sn:
        run(tmp_path, sqlite_url, {"servicenow": sn.system()}, {})  # tickets stored, no survey yet
        result = run(tmp_path, sqlite_url, {"servicenow": sn.system()}, {"resolved": survey()}, dry_run=True)
    text = format_run(result)
    assert invitation_rows(sqlite_url) == []
    assert "invitations would be planned" in text
    assert "skip   servicenow/INC" in text and "send_within" in text
    assert "survey servicenow/INC" in text


@pytest.mark.parametrize(("top", "expected"), [
    ({"secret_key": None}, "surveys need secret_key"),
    ({"secret_key": "short"}, "at least 32 characters"),
    ({"surveys": {"resolved": {"kind": "csat", "systems": ["snow"]}}}, "no system named snow"),
    ({"surveys": {"resolved": {"kind": "stars"}}}, "surveys.resolved.kind"),
    ({"channels": {}}, "configure channels.email"),
])
def test_survey_config_problems(tmp_path, top, expected):
    base = {"secret_key": KEY, "public_url": "https://feedback.example.com", "channels": CHANNELS,
            "surveys": {"resolved": {"kind": "csat"}}}
    path = write_config(tmp_path, "sqlite:///x.db", {"servicenow": {
        "kind": "servicenow", "url": "https://x.service-now.com", "auth": {"user": "u", "password": "p" * 8},
        "mapping": "servicenow-incident"}}, **{**base, **top})
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert any(expected in str(p) for p in info.value.problems), info.value.problems
