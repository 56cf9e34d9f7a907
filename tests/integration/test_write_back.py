"""Write-back: each answer lands on its ticket as score fields and one internal note, checked in the
simulators' own state. Answers come from the systems' native surveys, so every test has many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from connector.config import load
from connector.loop.run import sync
from connector.mapping import find_mapping_file
from connector.sandbox.server import Fault
from connector.store import Store
from connector.store.schema import invitations, responses, write_backs
from tests.conftest import ENV, write_config
from tests.integration.helpers import site
from tests.integration.test_survey_loop import recent

SN_FIELDS = {"u_vloop_score": "score", "u_vloop_band": "band"}
JIRA_FIELDS = {"{Customer score}": "score", "{Customer band}": "band"}


def mapping_with(tmp_path: Path, bundled: str, fields: dict[str, str]) -> str:
    doc = yaml.safe_load(find_mapping_file(bundled, tmp_path).read_text())
    doc["write_back"] = {"note": True, "fields": fields}
    path = tmp_path / f"{bundled}-write-back.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def native_config(tmp_path, url, systems):
    return write_config(tmp_path, url, systems, surveys={"native": {"kind": "csat", "channel": "native"}})


def answers(url: str) -> dict[str, tuple[int, int]]:
    """ticket id -> (response id, score) of every stored answer."""
    store = Store.open(url)
    stmt = select(invitations.c.ticket_id, responses.c.id, responses.c.score).select_from(
        responses.join(invitations, invitations.c.id == responses.c.invitation_id))
    with store.engine.connect() as conn:
        out = {r.ticket_id: (r.id, r.score) for r in conn.execute(stmt)}
    store.close()
    return out


def rows(url: str) -> dict[int, dict]:
    store = Store.open(url)
    with store.engine.connect() as conn:
        out = {r["response_id"]: dict(r) for r in conn.execute(select(write_backs)).mappings()}
    store.close()
    return out


def sn_notes(sim, sys_id: str, element: str = "work_notes") -> list[str]:
    return [r["value"] for r in sim.journal(sys_id, element) if "(ref vloop-wb-" in r["value"]]


@pytest.fixture
def sn(request):
    with site("servicenow", recent(150, seed=81)) as s:
        s.sim.register_table("incident", {"u_vloop_score": "integer", "u_vloop_band": "string"})
        yield s


def test_servicenow_fields_and_one_internal_note_per_answer(tmp_path, state_url, sn):
    system = sn.system(mapping=mapping_with(tmp_path, "servicenow-incident", SN_FIELDS))
    loaded = load(native_config(tmp_path, state_url, {"servicenow": system}), env=ENV)
    store = Store.open(state_url)
    first = sync(loaded, store)
    batches = sn.requests("/api/now/v1/batch")
    again = sync(loaded, store)
    store.close()
    got = answers(state_url)
    open_or_resolved = {t: a for t, a in got.items() if sn.sim.record("incident", t)["state"] == "6"}
    assert open_or_resolved
    for ticket, (response_id, score) in open_or_resolved.items():
        row = sn.sim.record("incident", ticket)
        assert (row["u_vloop_score"], row["u_vloop_band"]) == (str(score), {1: "dissatisfied", 2: "dissatisfied",
                                                                          3: "neutral"}.get(score, "satisfied"))
        notes = sn_notes(sn.sim, ticket)
        assert len(notes) == 1 and f"(ref vloop-wb-{response_id}." in notes[0] and f": {score} on 1-5" in notes[0]
        assert not sn_notes(sn.sim, ticket, "comments")  # never in the caller-visible journal
    # 100 PATCHes per Batch API call: the requests are ceil(written / 100).
    sent = first.write_backs[0].written + first.write_backs[0].failed
    assert batches == -(-sent // 100)
    assert again.write_backs[0].written == 0 and sn.requests("/api/now/v1/batch") == batches


def test_the_step_hands_its_chunks_over_as_one_stream(tmp_path, sqlite_url, sn, monkeypatch):
    """Rows are read and committed CHUNK at a time, but the Batch API calls stay full across chunks."""
    import connector.loop.writeback as step
    import connector.systems.servicenow as servicenow

    monkeypatch.setattr(step, "CHUNK", 7)
    monkeypatch.setattr(servicenow, "BATCH_ITEMS", 10)
    system = sn.system(mapping=mapping_with(tmp_path, "servicenow-incident", SN_FIELDS))
    loaded = load(native_config(tmp_path, sqlite_url, {"servicenow": system}), env=ENV)
    store = Store.open(sqlite_url)
    result = sync(loaded, store)
    store.close()
    written = result.write_backs[0].written
    assert written == len(answers(sqlite_url)) > 20 and result.write_backs[0].failed == 0
    assert sn.requests("/api/now/v1/batch") == -(-written // 10)  # calls of 10, not one per chunk of 7
    assert all(r["state"] == "done" and r["attempts"] == 1 for r in rows(sqlite_url).values())


def surveyed(sim) -> list[str]:
    return sorted(i["trigger_id"] for i in sim.tables["asmt_assessment_instance"].values())


def test_closed_incidents_refuse_the_fields_and_the_write_back_is_kept(tmp_path, sqlite_url, sn):
    for ticket in surveyed(sn.sim)[:3]:
        sn.sim.close(ticket)  # the autoclose job got there before vloop
    system = sn.system(mapping=mapping_with(tmp_path, "servicenow-incident", SN_FIELDS))
    loaded = load(native_config(tmp_path, sqlite_url, {"servicenow": system}), env=ENV)
    store = Store.open(sqlite_url)
    first = sync(loaded, store)
    second = sync(loaded, store, now=datetime.now(UTC) + timedelta(minutes=5))
    store.close()
    closed = {t: a for t, a in answers(sqlite_url).items() if sn.sim.record("incident", t)["state"] == "7"}
    assert closed and first.status == "partial"
    state = rows(sqlite_url)
    for ticket, (response_id, _) in closed.items():
        row = state[response_id]
        assert row["state"] == "pending" and row["attempts"] == 2  # kept, and tried again next run
        assert "HTTP 403" in row["error"] and "docs/servicenow.md" in row["error"]
        assert sn.sim.record("incident", ticket)["u_vloop_score"] == ""
    assert second.write_backs[0].failed == len(closed)


def test_closed_incidents_refuse_the_note_too_and_it_is_kept(tmp_path, sqlite_url, sn):
    for ticket in surveyed(sn.sim)[:3]:
        sn.sim.close(ticket)
    loaded = load(native_config(tmp_path, sqlite_url, {"servicenow": sn.system()}), env=ENV)  # bundled: note only
    store = Store.open(sqlite_url)
    result = sync(loaded, store)
    store.close()
    closed = {t for t in answers(sqlite_url) if sn.sim.record("incident", t)["state"] == "7"}
    assert len(closed) == 3 and result.write_backs[0].failed == 3 and result.status == "partial"
    assert all(not sn_notes(sn.sim, t) for t in closed)  # reference §7.2: closed incidents take no work notes
    assert all(len(sn_notes(sn.sim, t)) == 1 for t in answers(sqlite_url) if t not in closed)


def test_missing_fields_are_named(tmp_path, sqlite_url):
    with site("servicenow", recent(80, seed=82)) as sn:  # the admin has not added the columns
        system = sn.system(mapping=mapping_with(tmp_path, "servicenow-incident", SN_FIELDS))
        loaded = load(native_config(tmp_path, sqlite_url, {"servicenow": system}), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
    errors = result.write_backs[0].errors
    assert any("has no field u_vloop_band, u_vloop_score" in e and "setup servicenow --check" in e for e in errors)
    # The note went in with the refused fields' PATCH: it is not written again on the retry.
    assert all(r["note"] == "done" for r in rows(sqlite_url).values() if r["state"] == "pending" and
               "has no field" in (r["error"] or ""))


def test_unserviced_batch_items_are_sent_again(tmp_path, sqlite_url):
    with site("servicenow", recent(150, seed=81), batch_max_items=7) as sn:
        loaded = load(native_config(tmp_path, sqlite_url, {"servicenow": sn.system()}), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
        # The instance serves 7 items per call: each call of up to 100 needs more rounds, then gives up.
        assert result.write_backs[0].written == 7 * 3 * -(-len(answers(sqlite_url)) // 100)
    assert all("unserviced" in e for e in result.write_backs[0].errors)


def test_a_batch_that_timed_out_after_it_was_applied_adds_no_second_note(tmp_path, sqlite_url, sn):
    sn.server.faults.inject(Fault("delay", method="POST", path_contains="/api/now/v1/batch", delay_s=1.5))
    system = sn.system(http={"read_timeout": 0.5, "retry": {"max_wait": "200ms"}})
    loaded = load(native_config(tmp_path, sqlite_url, {"servicenow": system}), env=ENV)
    store = Store.open(sqlite_url)
    first = sync(loaded, store)
    got = answers(sqlite_url)
    wait_until(lambda: all(sn_notes(sn.sim, t) for t in got))  # the instance finishes the slow batch
    second = sync(loaded, store, now=datetime.now(UTC) + timedelta(minutes=5))
    store.close()
    assert first.write_backs[0].failed == len(got) and second.write_backs[0].written == len(got)
    assert all(len(sn_notes(sn.sim, t)) == 1 for t in got)


def wait_until(check, seconds: float = 10) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("admin", [True, False])
def test_jira_fields_with_one_edit_each_and_an_internal_comment(tmp_path, sqlite_url, admin):
    with site("jira", recent(150, seed=83), admin=admin) as jira:
        jira.sim.add_field("Customer score", "number")
        jira.sim.add_field("Customer band", "text")
        system = jira.system(mapping=mapping_with(tmp_path, "jira-service-management", JIRA_FIELDS))
        loaded = load(native_config(tmp_path, sqlite_url, {"jira": system}), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        got = answers(sqlite_url)
        edits = jira.requests("/rest/api/2/issue/")  # PUT issue (the comment posts go to servicedeskapi)
        again = sync(loaded, store)
        store.close()
        keys = {str(jira.sim.issue(f"ITSD-{t.seq}")["id"]): f"ITSD-{t.seq}" for t in jira.sim.world.tickets}
        for ticket, (response_id, score) in got.items():
            issue = jira.sim.issue(keys[ticket])
            assert issue["fields"][jira.sim.field_id("Customer score")] == score
            notes = [c for c in jira.sim.comments(keys[ticket]) if f"(ref vloop-wb-{response_id}." in c["body"]]
            assert len(notes) == 1 and notes[0]["public"] is False  # internal: the customer never sees it
    assert result.status == "ok" and result.write_backs[0].written == len(got) > 0
    # Exactly one edit per ticket (plus one refused try when notifications cannot be turned off).
    assert edits == len(got) + (0 if admin else 1)
    assert again.write_backs[0].written == 0 and jira.requests("/rest/api/2/issue/") == edits


def test_a_jira_field_off_the_edit_screen_is_refused_with_the_write_back_fix(tmp_path, sqlite_url):
    with site("jira", recent(60, seed=84)) as jira:
        jira.sim.add_field("Customer score", "number", on_screen=False)  # the admin forgot the edit screen
        jira.sim.add_field("Customer band", "text")
        system = jira.system(mapping=mapping_with(tmp_path, "jira-service-management", JIRA_FIELDS))
        loaded = load(native_config(tmp_path, sqlite_url, {"jira": system}), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
    errors = list(result.write_backs[0].errors)
    assert result.write_backs[0].failed == len(answers(sqlite_url)) > 0 and errors
    assert all("HTTP 400" in e and "cannot be set" in e and "write_back fields" in e and "jql" not in e
               for e in errors)
    assert all(r["state"] == "pending" for r in rows(sqlite_url).values())


def test_a_re_rated_jsm_answer_is_written_again_with_a_note_of_its_own(tmp_path, sqlite_url):
    with site("jira", recent(150, seed=84), admin=True) as jira:
        jira.sim.add_field("Customer score", "number")
        system = jira.system(mapping=mapping_with(tmp_path, "jira-service-management", {"{Customer score}": "score"}))
        loaded = load(native_config(tmp_path, sqlite_url, {"jira": system}), env=ENV)
        store = Store.open(sqlite_url)
        sync(loaded, store)
        ticket, (response_id, score) = sorted(answers(sqlite_url).items())[0]
        key = next(f"ITSD-{t.seq}" for t in jira.sim.world.tickets if str(jira.sim.issue(f"ITSD-{t.seq}")["id"]) == ticket)
        jira.sim.set_feedback(key, 1 if score != 1 else 2, "Actually it broke again")
        again = sync(loaded, store, now=datetime.now(UTC) + timedelta(minutes=1))
        store.close()
        issue = jira.sim.issue(key)
        notes = [c for c in jira.sim.comments(key) if f"(ref vloop-wb-{response_id}." in c["body"]]
    assert again.write_backs[0].written == 1 and again.write_backs[0].notes == 1
    assert issue["fields"][jira.sim.field_id("Customer score")] == (1 if score != 1 else 2)
    assert len(notes) == 2 and all(not n["public"] for n in notes) and "broke again" in notes[1]["body"]


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_jira_fields_by_display_name_and_by_raw_id(tmp_path, sqlite_url, mode):
    with site("jira", recent(150, seed=85), mode=mode, admin=True) as jira:
        jira.sim.add_field("Customer score", "number")
        band = jira.sim.add_field("Customer band", "text")
        bundled = "jira-data-center" if mode == "datacenter" else "jira-service-management"
        system = jira.system(mapping=mapping_with(tmp_path, bundled, {"{Customer score}": "score", band: "band"}))
        loaded = load(native_config(tmp_path, sqlite_url, {"jira": system}), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
        got = answers(sqlite_url)
        written = {str(i["id"]): i["fields"] for i in (jira.sim.issue(f"ITSD-{t.seq}") for t in jira.sim.world.tickets)}
    assert result.write_backs[0].written == len(got) > 0 and result.write_backs[0].failed == 0
    for ticket, (_, score) in got.items():
        assert written[ticket][jira.sim.field_id("Customer score")] == score
        assert written[ticket][band] in ("dissatisfied", "neutral", "satisfied")


def test_a_jira_field_id_the_site_lacks_is_named(tmp_path, sqlite_url):
    with site("jira", recent(80, seed=86), admin=True) as jira:
        jira.sim.add_field("Customer score", "number")
        system = jira.system(mapping=mapping_with(tmp_path, "jira-service-management",
                                                  {"{Customer score}": "score", "customfield_99999": "band"}))
        loaded = load(native_config(tmp_path, sqlite_url, {"jira": system}), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
        got = answers(sqlite_url)
    assert result.write_backs[0].failed == len(got) > 0 and result.status == "partial"
    assert list(result.write_backs[0].errors) == [
        "jira: the site has no field customfield_99999; create it or fix the mapping (vloop setup jira --check)"]
