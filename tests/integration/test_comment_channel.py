"""Surveys delivered as customer-visible ticket comments: ServiceNow `comments`, a public JSM comment.

For sites where email addresses are hidden or the ITSM tool sends the mail. The comment carries the
survey link; an unclear send (a timeout after the request left, a crash before the commit) is
checked on the ticket before any second attempt, so no comment is ever posted twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from connector.config import load
from connector.loop.run import sync
from connector.sandbox.server import Fault
from connector.store import Store
from connector.store.schema import responses, tickets
from connector.store.surveys import SurveyStore
from connector.surveys.tokens import SurveyTokens
from connector.surveys.web import create_app
from tests.conftest import ENV, write_config
from tests.integration.helpers import invitation_rows, site
from tests.integration.test_survey_loop import KEY, ROOT, recent
from tests.integration.test_survey_page import _serve

PUBLIC = "http://127.0.0.1:9"
LINK = re.compile(r"http://127\.0\.0\.1:9/s/[\w.-]+")


def comment_config(tmp_path, url, systems, **survey):
    return write_config(tmp_path, url, systems, secret_key=KEY, public_url=PUBLIC,
                        surveys={"resolved": {"kind": "csat", "channel": "comment", "throttle": "1h", **survey}})


def survey_comments(s, ticket_id: str, number: str) -> list[str]:
    """Bodies of the comments the customer sees on one ticket that carry a survey link."""
    if s.kind == "servicenow":
        bodies = [r["value"] for r in s.sim.journal(ticket_id, "comments")]
    else:
        bodies = [c["body"] for c in s.sim.comments(number) if c["public"]]
    return [b for b in bodies if LINK.search(b)]


def numbers(url: str) -> dict[str, str]:
    store = Store.open(url)
    with store.engine.connect() as conn:
        out = {r.id: r.number for r in conn.execute(select(tickets.c.id, tickets.c.number))}
    store.close()
    return out


@pytest.mark.parametrize("kind", ["servicenow", "jira"])
def test_comment_carries_the_link_and_the_answer_is_stored(tmp_path, state_url, kind):
    w = recent(40, seed=51)
    with site(kind, w) as s:
        loaded = load(comment_config(tmp_path, state_url, {kind: s.system()}), env=ENV)
        store = Store.open(state_url)
        first = sync(loaded, store)
        again = sync(loaded, store)
        delivery = first.deliveries[0]
        sent = [r for r in invitation_rows(state_url) if r["state"] == "sent"]
        by_id = numbers(state_url)
        posted = {r["ticket_id"]: survey_comments(s, r["ticket_id"], by_id[r["ticket_id"]]) for r in sent}
        assert delivery.sent == len(sent) > 0 and again.deliveries[0].sent == 0
        assert all(len(bodies) == 1 for bodies in posted.values()), posted
        # Reaching people by comment needs no email address.
        assert "requester has no email address" not in delivery.suppressed
        row = sent[0]
        body = posted[row["ticket_id"]][0]
        assert f"(ref vloop-resolved-{row['id']})" in body and "/optout/" in body
        assert by_id[row["ticket_id"]] in body  # the question names the ticket
        app = create_app(SurveyStore(store.engine), SurveyTokens([KEY], timedelta(days=14)), {"resolved": "csat"},
                         public_url=PUBLIC, secret_key=KEY)
        base, stop = _serve(app)
        try:
            path = LINK.search(body).group(0).removeprefix(PUBLIC)
            page = requests.get(f"{base}{path}?score=4", timeout=10)
            assert page.status_code == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            answer = requests.post(base + path, data={"csrf": csrf, "score": "4"}, timeout=10)
            assert answer.status_code == 200
        finally:
            stop()
        with store.engine.connect() as conn:
            stored = [dict(r) for r in conn.execute(select(responses)).mappings()]
        store.close()
    assert [(r["invitation_id"], r["score"]) for r in stored] == [(row["id"], 4)]


def test_jira_software_project_gets_a_platform_comment(tmp_path, sqlite_url):
    w = recent(10, seed=52)
    with site("jira", w) as s:
        s.sim.add_project("DEV", "Development")
        key = s.sim.add_issue(project="DEV", summary="Build broken", request_type=None,
                              resolved=datetime.now(UTC) - timedelta(hours=3))
        loaded = load(comment_config(tmp_path, sqlite_url, {"jira": s.system(jql="project in (ITSD, DEV)")}),
                      env=ENV)
        store = Store.open(sqlite_url)
        sync(loaded, store)
        store.close()
        row = next(r for r in invitation_rows(sqlite_url) if r["ticket_id"] == str(s.sim.issue(key)["id"]))
        assert row["state"] == "sent", row
        assert len(survey_comments(s, row["ticket_id"], key)) == 1


@pytest.mark.parametrize("kind", ["servicenow", "jira"])
def test_a_send_that_timed_out_after_arriving_is_found_not_repeated(tmp_path, sqlite_url, kind):
    w = recent(12, seed=53)
    with site(kind, w) as s:
        write = ("PATCH", "/api/now/v2/table/incident/") if kind == "servicenow" else ("POST", "/comment")
        # The server stores the comment after the client gave up waiting: the outcome is unclear.
        s.server.faults.inject(Fault("delay", method=write[0], path_contains=write[1], delay_s=1.5, after=1))
        system = s.system(http={"read_timeout": 0.5, "retry": {"max_wait": "200ms"}})
        loaded = load(comment_config(tmp_path, sqlite_url, {kind: system}), env=ENV)
        store = Store.open(sqlite_url)
        first = sync(loaded, store).deliveries[0]
        unclear = next(r for r in invitation_rows(sqlite_url) if r["attempts"] == 1 and r["state"] == "pending")
        number = numbers(sqlite_url)[unclear["ticket_id"]]
        deadline = time.monotonic() + 10
        while not survey_comments(s, unclear["ticket_id"], number):  # the server finishes the slow write
            assert time.monotonic() < deadline, "the delayed comment never arrived"
            time.sleep(0.05)
        later = sync(loaded, store, now=datetime.now(UTC) + timedelta(hours=1)).deliveries[0]
        store.close()
        rows = invitation_rows(sqlite_url)
        by_id = numbers(sqlite_url)
        counts = Counter({r["ticket_id"]: len(survey_comments(s, r["ticket_id"], by_id[r["ticket_id"]]))
                          for r in rows if r["state"] == "sent"})
    assert first.retry == 1 and later.sent == 1
    assert next(r for r in rows if r["id"] == unclear["id"])["state"] == "sent"
    assert set(counts.values()) == {1}, counts  # the timed-out comment exists once, not twice


@pytest.mark.parametrize("failpoint", ["deliver.before_smtp=2", "deliver.after_smtp=2"])
def test_crash_while_commenting_then_rerun_posts_each_comment_once(tmp_path, sqlite_url, failpoint):
    w = recent(30, seed=54)
    with site("servicenow", w) as s:
        cfg = comment_config(tmp_path, sqlite_url, {"servicenow": s.system()})
        env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
        killed = subprocess.run([sys.executable, "-m", "connector", "-c", str(cfg), "sync"],
                                env={**env, "VLOOP_FAILPOINTS": failpoint}, capture_output=True, text=True,
                                timeout=120)
        assert killed.returncode == 86, killed.stderr
        rerun = subprocess.run([sys.executable, "-m", "connector", "-c", str(cfg), "sync"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        sent = [r for r in invitation_rows(sqlite_url) if r["state"] == "sent"]
        counts = [len(survey_comments(s, r["ticket_id"], "")) for r in sent]
    assert sent and counts == [1] * len(sent)  # exactly once, even across the after-send crash
