"""Bounced addresses: refused at RCPT (550 5.1.1) or reported after acceptance (RFC 3464 report in a
Maildir). The invitation fails with the reason, and later surveys to the address are suppressed."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime, timedelta

from connector.config import load
from connector.loop.run import sync
from connector.sandbox.mailsink import MailSink
from connector.store import Store
from connector.store.surveys import SurveyStore
from tests.conftest import ENV, write_config
from tests.integration.helpers import invitation_rows, site
from tests.integration.test_survey_loop import KEY, recent


def mail_config(tmp_path, url, systems, port, **email):
    return write_config(tmp_path, url, systems, secret_key=KEY, public_url="http://127.0.0.1:9",
                        channels={"email": {"from": "IT Service Desk <desk@example.com>",
                                            "smtp": {"host": "127.0.0.1", "port": port}, **email}},
                        surveys={"resolved": {"kind": "csat", "throttle": "1h"}})


def first_people(w, n):
    """Emails of the requesters of the first n resolved tickets that have one."""
    out = []
    for t in w.tickets:
        email = t.requester.email
        if t.resolved_at is not None and email and email.lower() not in out:
            out.append(email.lower())
    return out[:n]


def test_an_address_refused_at_rcpt_fails_its_invitation_and_is_not_mailed_again(tmp_path, state_url):
    w = recent(60, seed=71)
    bad = first_people(w, 1)[0]
    with site("servicenow", w) as sn, MailSink(refuse=[bad]) as sink:
        loaded = load(mail_config(tmp_path, state_url, {"servicenow": sn.system()}, sink.port), env=ENV)
        store = Store.open(state_url)
        first = sync(loaded, store).deliveries[0]
        # Another ticket of the same person is resolved: its survey is suppressed, not refused again.
        other = next(t for t in sn.sim.world.tickets if t.requester.email.lower() == bad)
        sn.sim.reopen(other.id, datetime.now(UTC) - timedelta(hours=3))
        sn.sim.resolve(other.id, datetime.now(UTC) - timedelta(hours=2))
        later = sync(loaded, store, now=datetime.now(UTC) + timedelta(hours=2))
        store.close()
        mailed = [m["To"].addresses[0].addr_spec.lower() for m in sink.messages]
    rows = [r for r in invitation_rows(state_url) if (r["email"] or "").lower() == bad]
    failed = [r for r in rows if r["state"] == "failed"]
    assert first.failed == len(failed) == 1 and "5.1.1" in failed[0]["reason"]
    assert bad not in mailed
    suppressed = [r for r in rows if r["state"] == "suppressed"]
    assert suppressed and all(r["reason"] == "requester's email address bounced" for r in suppressed)
    assert later.deliveries[0].failed == 0


def test_a_bounce_report_after_acceptance_fails_the_invitation_once(tmp_path, sqlite_url):
    w = recent(60, seed=72)
    bad = first_people(w, 2)
    box = tmp_path / "bounces"
    mailbox.Maildir(str(box), create=True)  # the site's mail system delivers reports here
    with site("servicenow", w) as sn, MailSink(bounce=bad, dsn_maildir=box) as sink:
        loaded = load(mail_config(tmp_path, sqlite_url, {"servicenow": sn.system()}, sink.port,
                                  bounce_maildir=str(box)), env=ENV)
        store = Store.open(sqlite_url)
        first = sync(loaded, store)
        accepted = {m["To"].addresses[0].addr_spec.lower() for m in sink.messages}
        mailbox.Maildir(str(box)).add(b"From: Anna <anna@example.com>\r\nSubject: Out of office\r\n\r\nAway.\r\n")
        second = sync(loaded, store, now=datetime.now(UTC) + timedelta(minutes=5))
        third = sync(loaded, store, now=datetime.now(UTC) + timedelta(minutes=10))
        bounced = SurveyStore(store.engine).bounced(bad)
        store.close()
    assert set(bad) <= accepted  # the relay took them; the failure came later
    assert first.bounces.reports == 0  # the reports arrive after this run read the folder
    assert (second.bounces.reports, second.bounces.invitations_failed, second.bounces.other) == (2, 2, 1)
    assert (third.bounces.reports, third.bounces.invitations_failed) == (0, 0)  # each report is read once
    rows = {r["email"].lower(): r for r in invitation_rows(sqlite_url) if r["email"] and r["message_id"]}
    assert all(rows[a]["state"] == "failed" and "5.1.1" in rows[a]["reason"] for a in bad)
    assert bounced == set(bad)
    assert all(m.get_flags() == "S" for m in mailbox.Maildir(str(box)))


def test_a_missing_bounce_folder_is_reported_and_the_run_is_partial(tmp_path, sqlite_url):
    with site("servicenow", recent(10, seed=73)) as sn, MailSink() as sink:
        loaded = load(mail_config(tmp_path, sqlite_url, {"servicenow": sn.system()}, sink.port,
                                  bounce_maildir=str(tmp_path / "nowhere")), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
    assert result.status == "partial" and "nowhere" in result.bounces.error
    assert result.deliveries[0].sent > 0  # mail still goes out
