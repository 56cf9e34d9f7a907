"""Native CSAT: answers of the systems' own surveys (JSM Satisfaction, ServiceNow asmt_metric_result)
are collected as responses, once each, and count toward the per-person throttle."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connector.config import load
from connector.loop.run import sync
from connector.sandbox.mailsink import MailSink
from connector.store import Store
from connector.store.schema import invitations, responses, tickets
from tests.conftest import ENV, write_config
from tests.integration.helpers import site
from tests.integration.test_survey_loop import KEY, recent

NATIVE = {"kind": "csat", "channel": "native"}


def native_config(tmp_path, url, systems, **surveys):
    return write_config(tmp_path, url, systems, secret_key=KEY, public_url="http://127.0.0.1:9",
                        surveys=surveys or {"native": NATIVE}, **_mail(surveys))


def _mail(surveys):
    port = next((s.pop("_smtp_port") for s in surveys.values() if "_smtp_port" in s), None)
    if port is None:
        return {}
    return {"channels": {"email": {"from": "desk@example.com", "smtp": {"host": "127.0.0.1", "port": port}}}}


def stored(url: str) -> dict[str, tuple[int, str | None, str]]:
    """Ticket number -> (score, comment, source) of every stored response."""
    store = Store.open(url)
    stmt = (select(tickets.c.number, responses.c.score, responses.c.comment, responses.c.source)
            .select_from(responses.join(invitations, invitations.c.id == responses.c.invitation_id)
                         .join(tickets, (tickets.c.system == invitations.c.system)
                               & (tickets.c.id == invitations.c.ticket_id))))
    with store.engine.connect() as conn:
        out = {r.number: (r.score, r.comment, r.source) for r in conn.execute(stmt)}
    store.close()
    return out


def servicenow_answers(sim) -> dict[str, tuple[int, str | None]]:
    """What the ServiceNow sandbox holds: incident number -> (score, comment)."""
    out = {}
    results = list(sim.tables["asmt_metric_result"].values())
    for inst in sim.tables["asmt_assessment_instance"].values():
        mine = [r for r in results if r["instance"] == inst["sys_id"]]
        score = next(int(r["actual_value"]) for r in mine if r["data_type"] == "integer")
        comment = next((r["string_value"] for r in mine if r["data_type"] == "string"), None)
        out[sim.record("incident", inst["trigger_id"])["number"]] = (score, comment)
    return out


def test_servicenow_survey_answers_become_responses_once(tmp_path, state_url):
    with site("servicenow", recent(120, seed=61)) as sn:
        loaded = load(native_config(tmp_path, state_url, {"servicenow": sn.system()}), env=ENV)
        store = Store.open(state_url)
        first = sync(loaded, store)
        expected = servicenow_answers(sn.sim)
        assert expected and first.collected[0].new == len(expected) and first.status == "ok"
        assert {n: v[:2] for n, v in stored(state_url).items()} == expected
        assert {v[2] for v in stored(state_url).values()} == {"native"}
        again = sync(loaded, store)
        assert again.collected[0].new == 0 and again.collected[0].changed == 0
        # A customer answers the survey of another incident: the next run brings exactly that answer.
        numbers = {r["number"]: r["sys_id"] for r in sn.sim.tables["incident"].values()}
        target = next(n for n in sorted(numbers) if n not in expected and sn.sim.record(
            "incident", numbers[n])["state"] in ("6", "7"))
        sn.sim.take_survey(numbers[target], 1, "Nobody called me back")
        third = sync(loaded, store)
        store.close()
    assert third.collected[0].new == 1
    assert stored(state_url)[target] == (1, "Nobody called me back", "native")


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_jsm_satisfaction_is_collected_and_a_new_rating_replaces_the_old(tmp_path, sqlite_url, mode):
    with site("jira", recent(120, seed=62), mode=mode) as jira:
        loaded = load(native_config(tmp_path, sqlite_url, {"jira": jira.system()}), env=ENV)
        store = Store.open(sqlite_url)
        first = sync(loaded, store)
        rated = {f"ITSD-{t.seq}": jira.sim.issue(f"ITSD-{t.seq}") for t in jira.sim.world.tickets}
        expected = {k: i["fields"][jira.sim.field_id("Satisfaction")]["rating"] for k, i in rated.items()
                    if i["fields"].get(jira.sim.field_id("Satisfaction"))}
        assert expected and first.collected[0].new == len(expected), first.collected
        assert {k: v[0] for k, v in stored(sqlite_url).items()} == expected
        key = sorted(expected)[0]
        jira.sim.set_feedback(key, 1 if expected[key] != 1 else 2, "Changed my mind")
        second = sync(loaded, store, now=datetime.now(UTC) + timedelta(minutes=1))
        store.close()
    assert (second.collected[0].new, second.collected[0].changed) == (0, 1)
    assert stored(sqlite_url)[key][1:] == ("Changed my mind", "native")


def test_a_site_without_jsm_satisfaction_reports_the_problem(tmp_path, sqlite_url):
    with site("jira", recent(20, seed=63)) as jira:
        jira.sim._fields = {k: f for k, f in jira.sim._fields.items() if f.role not in ("satisfaction",
                                                                                          "satisfaction_date")}
        jira.sim._schema_cache = None
        loaded = load(native_config(tmp_path, sqlite_url, {"jira": jira.system()}), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
    assert result.status == "partial" and result.systems[0].status == "ok"
    assert "no Jira Service Management Satisfaction fields" in result.collected[0].error


def test_a_native_answer_counts_toward_the_throttle(tmp_path, sqlite_url):
    with site("servicenow", recent(120, seed=64)) as sn, MailSink() as sink:
        cfg = native_config(tmp_path, sqlite_url, {"servicenow": sn.system()}, native=dict(NATIVE),
                            email={"kind": "csat", "throttle": "30d", "_smtp_port": sink.port})
        store = Store.open(sqlite_url)
        result = sync(load(cfg, env=ENV), store)
        store.close()
        mailed = Counter(m["To"].addresses[0].addr_spec.lower() for m in sink.messages)
    with Store.open(sqlite_url).engine.connect() as conn:
        natively = {r.email.lower() for r in conn.execute(select(invitations.c.email).where(
            invitations.c.channel == "native", invitations.c.email.is_not(None)))}
    assert natively and mailed  # both kinds happened in this run
    assert not natively & set(mailed)  # nobody answered natively and got a mail too
    assert any("throttle" in reason for reason in result.deliveries[0].suppressed)
