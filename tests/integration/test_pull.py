"""Pulling resolved tickets over real HTTP from both simulators into SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from connector.store import Store
from tests.integration.helpers import ANCHOR, run_sync, site, world

KINDS = ["servicenow", "jira"]


@pytest.mark.parametrize("kind", KINDS)
def test_5000_tickets_with_2500_in_one_second_are_all_stored_once(kind, state_url, tmp_path):
    w = world(5000)
    tie = (ANCHOR - timedelta(days=2)).replace(microsecond=0)
    for t in w.tickets[:2500]:  # the first 2,500 tickets all resolve in the same second
        t.resolved_at, t.state, t.closed_at = tie, "resolved", None
    page = 1000 if kind == "servicenow" else 100
    with site(kind, w) as s:
        result = run_sync(tmp_path, state_url, {kind: s.system(pull={"page_size": page})})
        search_requests = s.requests("/table/incident" if kind == "servicenow" else "/search")
    assert result.status == "ok", result.systems[0].error
    resolved = [t for t in w.tickets if t.resolved_at is not None]
    store = Store.open(state_url)
    keys = store.resolution_keys(kind)
    store.close()
    assert len(keys) == len(resolved)
    assert not [k for k, n in Counter(keys).items() if n > 1]
    assert sum(1 for _, at in keys if at == tie) == 2500
    pages = math.ceil(len(resolved) / page)
    # One request per page, plus the empty page that ends ServiceNow paging, plus the connect check.
    assert search_requests <= pages + 2, (search_requests, pages)


@pytest.mark.parametrize("kind", KINDS)
def test_reopened_and_re_resolved_ticket_has_two_resolutions(kind, state_url, tmp_path):
    w = world(60)
    with site(kind, w) as s:
        run_sync(tmp_path, state_url, {kind: s.system()})
        target = next(t for t in w.tickets if t.state == "resolved")
        s.sim.reopen(s.ident(target.seq), datetime.now(UTC) - timedelta(seconds=50))
        again = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=20)
        s.sim.resolve(s.ident(target.seq), again)
        second = run_sync(tmp_path, state_url, {kind: s.system()})
        ticket_id = s.ticket_id(target.seq)
    assert second.systems[0].new_resolutions == 1
    store = Store.open(state_url)
    mine = [at for tid, at in store.resolution_keys(kind) if tid == ticket_id]
    stored = store.ticket(kind, ticket_id)
    store.close()
    assert len(mine) == 2 and mine[1] == again
    assert stored is not None and stored["resolved_at"] == again


@pytest.mark.parametrize("kind", KINDS)
def test_late_visible_ticket_inside_the_overlap_is_picked_up_without_duplicates(kind, state_url, tmp_path):
    w = world(80)
    with site(kind, w) as s:
        first = run_sync(tmp_path, state_url, {kind: s.system()})
        cursor = first.systems[0].cursor_after
        assert cursor is not None
        # A ticket whose resolution commits late: its resolution time is 5 minutes behind the cursor.
        late = next(t for t in w.tickets if t.resolved_at is None)
        s.sim.resolve(s.ident(late.seq), cursor.at - timedelta(minutes=5))
        second = run_sync(tmp_path, state_url, {kind: s.system()})
        late_id = s.ticket_id(late.seq)
    assert second.systems[0].new_resolutions == 1
    store = Store.open(state_url)
    keys = store.resolution_keys(kind)
    store.close()
    assert len(keys) == first.systems[0].new_resolutions + 1
    assert late_id in {tid for tid, _ in keys}


@pytest.mark.parametrize("kind", KINDS)
def test_tickets_resolved_while_paging_are_neither_missed_nor_doubled(kind, state_url, tmp_path):
    from connector.loop import pull

    w = world(400)
    open_tickets = [t for t in w.tickets if t.resolved_at is None][:10]
    with site(kind, w) as s:
        original = pull.prefetch
        fired = []

        def resolving_prefetch(items, depth=2):
            for n, item in enumerate(original(items, depth)):
                if n == 0 and not fired:
                    fired.append(True)
                    now = datetime.now(UTC)
                    for i, t in enumerate(open_tickets):  # some late (behind the cursor), some brand new
                        at = now - timedelta(minutes=3) if i % 2 else now - timedelta(seconds=2)
                        s.sim.resolve(s.ident(t.seq), at)
                yield item

        page = 50 if kind == "servicenow" else 100
        pull.prefetch = resolving_prefetch
        try:
            run_sync(tmp_path, state_url, {kind: s.system(pull={"page_size": page})})
        finally:
            pull.prefetch = original
        run_sync(tmp_path, state_url, {kind: s.system(pull={"page_size": page})})
        expected = {s.ticket_id(t.seq) for t in w.tickets if t.resolved_at is not None} | {
            s.ticket_id(t.seq) for t in open_tickets}
    store = Store.open(state_url)
    keys = store.resolution_keys(kind)
    store.close()
    assert {tid for tid, _ in keys} == expected
    assert len(keys) == len(expected)


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "America/Los_Angeles", "Asia/Kolkata"])
def test_jira_user_time_zone_leaves_no_gap(tz, sqlite_url, tmp_path):
    w = world(120)
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [t for t in w.tickets if t.resolved_at is None][:12]
    for i, t in enumerate(recent):  # resolved within the last two hours
        t.resolved_at, t.state = now - timedelta(minutes=5 + 9 * i), "resolved"
    with site("jira", w, user_timezone=tz) as s:
        first = run_sync(tmp_path, sqlite_url, {"jira": s.system(pull={"initial_lookback": "3h"})})
        again = run_sync(tmp_path, sqlite_url, {"jira": s.system()})
        expected = {s.ticket_id(t.seq) for t in recent}
    assert first.systems[0].status == "ok"
    store = Store.open(sqlite_url)
    keys = store.resolution_keys("jira")
    store.close()
    assert {tid for tid, _ in keys} == expected and len(keys) == len(expected)
    assert again.systems[0].new_resolutions == 0


def test_jira_data_center_pages_with_start_at(sqlite_url, tmp_path):
    w = world(1500)
    with site("jira", w, mode="datacenter", max_results_cap=200) as s:
        result = run_sync(tmp_path, sqlite_url, {"jira": s.system(pull={"page_size": 500})})
        searches = s.requests("/rest/api/2/search")
    assert result.status == "ok", result.systems[0].error
    resolved = sum(1 for t in w.tickets if t.resolved_at is not None)
    assert result.systems[0].new_resolutions == resolved
    # The server caps pages at 200: vloop reads that back and keeps paging with startAt.
    assert searches == math.ceil(resolved / 200)


def test_dry_run_reads_but_stores_nothing(sqlite_url, tmp_path):
    with site("servicenow", world(50)) as s:
        result = run_sync(tmp_path, sqlite_url, {"servicenow": s.system()}, dry_run=True)
    assert result.systems[0].tickets > 0
    store = Store.open(sqlite_url)
    assert store.count("tickets") == 0 and store.cursor("servicenow") is None
    store.close()


def test_since_overrides_the_cursor(sqlite_url, tmp_path):
    w = world(200)
    with site("servicenow", w) as s:
        since = ANCHOR - timedelta(days=3)
        result = run_sync(tmp_path, sqlite_url, {"servicenow": s.system()}, since=since)
    expected = sum(1 for t in w.tickets if t.resolved_at is not None and t.resolved_at >= since)
    assert result.systems[0].new_resolutions == expected > 0


def test_jira_data_center_restarts_the_search_before_the_result_window(sqlite_url, tmp_path, monkeypatch):
    from connector.systems import jira as jira_source

    # A site whose result window is 500 (10,000 by default); vloop re-windows after 300.
    monkeypatch.setattr(jira_source, "DC_WINDOW", 300)
    w = world(1200, seed=9)
    with site("jira", w, mode="datacenter", max_results_cap=100, result_window=500) as s:
        result = run_sync(tmp_path, sqlite_url, {"jira": s.system(pull={"page_size": 100})})
        starts = [r.query for r in s.server.faults.requests if r.path == "/rest/api/2/search"]
        expected = {s.ticket_id(t.seq) for t in w.tickets if t.resolved_at is not None}
    assert result.status == "ok", result.systems[0].error
    assert sum("startAt=0" in q for q in starts) >= 3  # the search was re-anchored several times
    store = Store.open(sqlite_url)
    keys = store.resolution_keys("jira")
    store.close()
    assert {tid for tid, _ in keys} == expected and len(keys) == len(expected)
