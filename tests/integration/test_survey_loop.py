"""Surveys end to end: pull, plan, email through a real SMTP server, follow the link, answer, stored."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from connector.config import load
from connector.loop.run import sync
from connector.sandbox.mailsink import MailSink
from connector.store import Store
from connector.store.schema import responses
from connector.store.surveys import SurveyStore
from connector.surveys.tokens import SurveyTokens
from connector.surveys.web import create_app
from tests.conftest import ENV, write_config
from tests.integration.helpers import invitation_rows, site, world
from tests.integration.test_survey_page import _serve

KEY = "e" * 40
NOW = datetime.now(UTC).replace(microsecond=0)
ROOT = Path(__file__).resolve().parents[2]


def recent(n=80, seed=41):
    w = world(n, seed=seed)
    for i, t in enumerate(w.tickets):  # resolved 2-50 hours ago: due, and within send_within
        if t.resolved_at is not None:
            t.resolved_at, t.state, t.closed_at = NOW - timedelta(hours=2 + i % 48), "resolved", None
    return w


def config(tmp_path, url, systems, port, **survey):
    return write_config(tmp_path, url, systems, secret_key=KEY, public_url="http://127.0.0.1:9",
                        channels={"email": {"from": "IT Service Desk <desk@example.com>",
                                            "smtp": {"host": "127.0.0.1", "port": port}}},
                        surveys={"resolved": {"kind": "csat", "throttle": "1h", **survey}})


def test_mail_link_answer_stored(tmp_path, state_url):
    w = recent()
    with site("servicenow", w) as sn, MailSink() as sink:
        loaded = load(config(tmp_path, state_url, {"servicenow": sn.system()}, sink.port), env=ENV)
        store = Store.open(state_url)
        result = sync(loaded, store)
        again = sync(loaded, store)
        delivery = result.deliveries[0]
        assert delivery.sent > 0 and delivery.sent == len(sink.messages)
        assert again.deliveries[0].sent == 0  # nothing is sent twice
        assert delivery.smtp_connections == 1
        message = sink.messages[0]
        body = message.get_body(("plain",)).get_content()
        link = re.search(r"http://127\.0\.0\.1:9/s/[\w.-]+\?score=2", body)
        assert link, body
        app = create_app(SurveyStore(store.engine), SurveyTokens([KEY], timedelta(days=14)), {"resolved": "csat"},
                         public_url="http://127.0.0.1:9", secret_key=KEY)
        base, stop = _serve(app)
        try:
            path = link.group(0).removeprefix("http://127.0.0.1:9")
            page = requests.get(base + path, timeout=10)
            assert page.status_code == 200 and 'value="2"' in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            posted = requests.post(base + path.split("?")[0], data={"csrf": csrf, "score": "2",
                                                                    "comment": "Slow, but fixed"}, timeout=10)
            assert posted.status_code == 200
        finally:
            stop()
        with store.engine.connect() as conn:
            stored = [dict(r) for r in conn.execute(select(responses)).mappings()]
        store.close()
    assert len(stored) == 1 and stored[0]["score"] == 2 and stored[0]["comment"] == "Slow, but fixed"
    rows = invitation_rows(state_url)
    sent = [r for r in rows if r["state"] == "sent"]
    assert len(sent) == delivery.sent and all(r["message_id"] and r["expires_at"] for r in sent)


def test_a_ticket_reopened_before_sending_is_cancelled_not_mailed(tmp_path, sqlite_url):
    w = recent(40, seed=42)
    target = next(t for t in w.tickets if t.resolved_at is not None)
    target.resolved_at = NOW - timedelta(minutes=30)  # not due yet with send_after 1h
    with site("servicenow", w) as sn, MailSink() as sink:
        loaded = load(config(tmp_path, sqlite_url, {"servicenow": sn.system()}, sink.port, send_after="1h"),
                      env=ENV)
        store = Store.open(sqlite_url)
        sync(loaded, store)
        planned = next(r for r in invitation_rows(sqlite_url) if r["ticket_id"] == target.id)
        assert planned["state"] == "pending"
        sn.sim.reopen(target.id, NOW - timedelta(minutes=1))
        later = sync(loaded, store, now=datetime.now(UTC) + timedelta(hours=1))  # now it is due
        store.close()
        mailed_tickets = [m.get_body(("plain",)).get_content() for m in sink.messages]
    assert later.deliveries[0].cancelled == 1
    row = next(r for r in invitation_rows(sqlite_url) if r["ticket_id"] == target.id)
    assert row["state"] == "cancelled" and "reopened" in row["reason"]
    assert not any(target.number in body for body in mailed_tickets)


def test_one_survey_per_person_across_systems(tmp_path, sqlite_url):
    snw, jw = recent(60, seed=43), recent(60, seed=43)  # the same people on both systems
    with site("servicenow", snw) as sn, site("jira", jw, mode="datacenter") as jira, MailSink() as sink:
        cfg = config(tmp_path, sqlite_url, {"servicenow": sn.system(), "jira": jira.system()}, sink.port,
                     throttle="30d")
        store = Store.open(sqlite_url)
        result = sync(load(cfg, env=ENV), store)
        store.close()
        recipients = Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
    assert recipients and max(recipients.values()) == 1
    assert result.deliveries[0].suppressed and all("throttle" in r for r in result.deliveries[0].suppressed)


@pytest.mark.parametrize(("failpoint", "duplicates_allowed"), [("deliver.before_smtp=3", 0),
                                                               ("deliver.after_smtp=3", 1)])
def test_crash_while_sending_then_rerun(tmp_path, sqlite_url, failpoint, duplicates_allowed):
    w = recent(60, seed=44)
    with site("servicenow", w) as sn, MailSink() as sink:
        cfg = config(tmp_path, sqlite_url, {"servicenow": sn.system()}, sink.port)
        env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
        killed = subprocess.run([sys.executable, "-m", "connector", "-c", str(cfg), "sync"],
                                env={**env, "VLOOP_FAILPOINTS": failpoint}, capture_output=True, text=True, timeout=120)
        assert killed.returncode == 86, killed.stderr
        rerun = subprocess.run([sys.executable, "-m", "connector", "-c", str(cfg), "sync"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        delivered = Counter(m["To"].addresses[0].addr_spec for m in sink.messages)
    sent = [r for r in invitation_rows(sqlite_url) if r["state"] == "sent"]
    assert len(sent) == len(delivered) and sent
    assert sum(delivered.values()) - len(delivered) == duplicates_allowed


def test_reminders_once_then_expiry(tmp_path, sqlite_url):
    w = recent(50, seed=45)
    with site("servicenow", w) as sn, MailSink() as sink:
        loaded = load(config(tmp_path, sqlite_url, {"servicenow": sn.system()}, sink.port, remind_after="3d",
                             max_reminders=1, expire_after="14d"), env=ENV)
        store = Store.open(sqlite_url)
        first = sync(loaded, store)
        sent = first.deliveries[0].sent
        answered_id = next(r["id"] for r in invitation_rows(sqlite_url) if r["state"] == "sent")
        SurveyStore(store.engine).record_response(answered_id, 5, {}, None, "en")
        start = datetime.now(UTC)
        early = sync(loaded, store, now=start + timedelta(days=2))
        due = sync(loaded, store, now=start + timedelta(days=3, minutes=5))
        once = sync(loaded, store, now=start + timedelta(days=6, minutes=10))
        late = sync(loaded, store, now=start + timedelta(days=15))
        store.close()
        first_subjects = [m["Subject"] for m in sink.messages[:sent]]
        reminders = sink.messages[sent:]
    assert early.deliveries[0].reminded == 0
    assert due.deliveries[0].reminded == sent - 1  # everyone but the one who answered
    assert once.deliveries[0].reminded == 0  # max_reminders: 1
    assert len(reminders) == sent - 1
    prefixes = ("Reminder:", "Påminnelse")
    assert all(str(m["Subject"]).startswith(prefixes) for m in reminders)
    assert not any(str(subject).startswith(prefixes) for subject in first_subjects)
    assert late.deliveries[0].expired == sent - 1
    states = Counter(r["state"] for r in invitation_rows(sqlite_url) if r["sent_at"] is not None)
    assert states == {"expired": sent - 1, "sent": 1}


class Receiver:
    """A webhook endpoint on loopback that records what it receives and answers as told."""

    def __init__(self, answers: dict[int, int] | None = None):
        self.received: list[tuple[dict, dict]] = []
        self.answers = answers or {}

    def __call__(self, environ, start_response):
        import json as _json

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        payload = _json.loads(body)
        self.received.append((payload, {**headers, "_raw": body}))
        status = self.answers.get(payload["invitation_id"], 202)
        start_response(f"{status} X", [("Content-Type", "text/plain")])
        return [b"ok"]


def test_webhook_channel_signs_posts_and_keeps_refused_ones(tmp_path, sqlite_url):
    import hashlib
    import hmac

    from connector.sandbox.server import SandboxServer

    secret = "w" * 40
    w = recent(30, seed=46)
    receiver = Receiver()
    with site("servicenow", w) as sn, SandboxServer(receiver) as hook:
        cfg = write_config(tmp_path, sqlite_url, {"servicenow": sn.system()}, secret_key=KEY,
                           public_url="https://feedback.example.com",
                           channels={"webhook": {"url": f"{hook.base_url}/in", "secret": secret}},
                           surveys={"resolved": {"kind": "nps", "channel": "webhook", "throttle": "1h"}})
        loaded = load(cfg, env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
    delivery = result.deliveries[0]
    assert delivery.sent == len(receiver.received) > 0
    payload, headers = receiver.received[0]
    expected = hmac.new(secret.encode(), headers["X-Vloop-Timestamp"].encode() + b"." + headers["_raw"],
                        hashlib.sha256).hexdigest()
    assert headers["X-Vloop-Signature"] == f"sha256={expected}"
    assert headers["Idempotency-Key"] == f"vloop-resolved-{payload['invitation_id']}"
    assert payload["kind"] == "nps" and payload["survey_url"].startswith("https://feedback.example.com/s/")
    assert payload["score_url"].endswith("?score={score}")
    rows = {r["id"]: r for r in invitation_rows(sqlite_url)}
    assert rows[payload["invitation_id"]]["state"] == "sent"


def test_webhook_refusals_fail_and_outages_retry(tmp_path, sqlite_url):
    from connector.sandbox.server import Fault, SandboxServer

    w = recent(30, seed=47)
    receiver = Receiver()
    with site("servicenow", w) as sn, SandboxServer(receiver) as hook:
        cfg = write_config(tmp_path, sqlite_url, {"servicenow": sn.system()}, secret_key=KEY,
                           public_url="https://feedback.example.com",
                           channels={"webhook": {"url": f"{hook.base_url}/in", "secret": "v" * 40,
                                                 "http": {"retry": {"max_attempts": 2, "max_wait": "10ms"}}}},
                           surveys={"resolved": {"kind": "csat", "channel": "webhook", "throttle": "1h"}})
        loaded = load(cfg, env=ENV)
        hook.faults.inject(Fault("status", times=2, path_contains="/in", status=503))  # one invitation, 2 tries
        hook.faults.inject(Fault("status", times=1, path_contains="/in", status=400, after=0))
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
    delivery = result.deliveries[0]
    assert delivery.retry == 1 and delivery.failed == 1 and delivery.sent == len(receiver.received)
    states = Counter(r["state"] for r in invitation_rows(sqlite_url) if r["attempts"])
    assert states["failed"] == 1 and states["pending"] == 1
    failed = next(r for r in invitation_rows(sqlite_url) if r["state"] == "failed")
    assert "HTTP 400" in failed["reason"]


def test_a_reminder_the_relay_could_not_take_is_sent_next_run_and_reopened_tickets_are_not_chased(
        tmp_path, sqlite_url):
    w = recent(30, seed=46)
    with site("servicenow", w) as sn, MailSink() as sink:
        systems = {"servicenow": sn.system()}
        loaded = load(config(tmp_path, sqlite_url, systems, sink.port, remind_after="3d"), env=ENV)
        (tmp_path / "down").mkdir()
        with socket.socket() as probe:  # a port nobody listens on: the relay is down
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        relay_down = load(config(tmp_path / "down", sqlite_url, systems, closed, remind_after="3d"), env=ENV)
        store = Store.open(sqlite_url)
        sent = sync(loaded, store).deliveries[0].sent
        reopened = next(r for r in invitation_rows(sqlite_url) if r["state"] == "sent")
        sn.sim.reopen(reopened["ticket_id"])
        start = datetime.now(UTC)
        down = sync(relay_down, store, now=start + timedelta(days=3, minutes=5)).deliveries[0]
        counted = {r["id"]: r["reminders_sent"] for r in invitation_rows(sqlite_url)}
        up = sync(loaded, store, now=start + timedelta(days=3, minutes=10)).deliveries[0]
        store.close()
        reminders = sink.messages[sent:]
    assert down.reminded == 0 and set(counted.values()) == {0}  # nothing lost to the outage
    assert up.reminded == sent - 1 == len(reminders)  # everyone but the reopened ticket's requester
    assert next(r for r in invitation_rows(sqlite_url) if r["id"] == reopened["id"])["reminders_sent"] == 0
