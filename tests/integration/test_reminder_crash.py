"""A sync killed in the middle of a reminder batch, then run again: no reminder is sent twice, one may be lost.

Reminders are at-most-once: each is counted (and committed) before its mail goes out, and the failpoint
`deliver.reminder_counted` kills the process right after that commit. Reminders fall due `remind_after`
after the invitation, and the CLI cannot move the clock, so the invitations go out in-process with a
`now` four days back (against a world whose tickets were resolved before then); the reminder batch then
runs in real `vloop sync` processes: one killed by the failpoint, one rerun to completion.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from connector.config import load
from connector.loop.run import sync
from connector.sandbox.mailsink import MailSink
from connector.sandbox.world import World
from connector.store import Store
from connector.store.surveys import SurveyStore
from connector.surveys.tokens import SurveyTokens
from tests.conftest import ENV
from tests.integration.helpers import invitation_rows, site, world
from tests.integration.test_crash import vloop
from tests.integration.test_survey_loop import KEY, config

REMINDER_PREFIXES = ("Reminder:", "Påminnelse:")
TOKENS = SurveyTokens([KEY], timedelta(days=14))


def resolved_before(at: datetime, n: int, seed: int) -> World:
    """A world seen from `at`: every resolved ticket resolved 2-50 hours before it (due, within send_within)."""
    w = world(n, seed=seed, anchor=at)
    for i, t in enumerate(w.tickets):
        if t.resolved_at is not None:
            t.resolved_at, t.state, t.closed_at = at - timedelta(hours=2 + i % 48), "resolved", None
    return w


def invitation_of(message: EmailMessage) -> int:
    """The invitation a mail is for, read back from its signed one-click opt-out link."""
    token = str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[-1]
    check = TOKENS.check(token)
    assert check.status == "ok" and check.invitation_id is not None, message["List-Unsubscribe"]
    return check.invitation_id


def is_reminder(message: EmailMessage) -> bool:
    return str(message["Subject"]).startswith(REMINDER_PREFIXES)


def reminders_in(messages: list[EmailMessage]) -> list[int]:
    return [invitation_of(m) for m in messages if is_reminder(m)]


@pytest.mark.parametrize("crash_at", ["first", "middle", "last"])
def test_crash_during_reminder_batch_then_rerun(tmp_path, state_url, crash_at):
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    with site("servicenow", resolved_before(past, 60, seed=48)) as sn, MailSink() as sink:
        cfg = config(tmp_path, state_url, {"servicenow": sn.system()}, sink.port, remind_after="3d",
                     max_reminders=1, expire_after="14d")
        loaded = load(cfg, env=ENV)
        store = Store.open(state_url)
        try:
            first = sync(loaded, store, now=past)  # the invitations went out four days ago
            sent_ids = sorted(r["id"] for r in invitation_rows(state_url) if r["state"] == "sent")
            answered = sent_ids[1]
            SurveyStore(store.engine).record_response(answered, 5, {}, None, "en")
        finally:
            store.close()
        invited = len(sink.messages)
        due = [i for i in sent_ids if i != answered]  # reminded in invitation id order
        assert first.deliveries[0].sent == invited == len(sent_ids) and len(due) >= 5
        nth = {"first": 1, "middle": len(due) // 2 + 1, "last": len(due)}[crash_at]
        lost = due[nth - 1]

        killed = vloop(cfg, "sync", failpoints=f"deliver.reminder_counted={nth}")
        assert killed.returncode == 86, killed.stdout + killed.stderr
        assert f"failpoint deliver.reminder_counted #{nth}" in killed.stderr
        in_killed_run = sink.messages[invited:]
        counted = {r["id"]: r["reminders_sent"] for r in invitation_rows(state_url)}

        rerun = vloop(cfg, "sync")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        in_rerun = sink.messages[invited + len(in_killed_run):]

        store = Store.open(state_url)  # three days on, another run: the lost reminder stays lost
        try:
            later = sync(loaded, store, now=datetime.now(UTC) + timedelta(days=3, minutes=5))
        finally:
            store.close()
        messages = sink.messages
    rows = {r["id"]: r for r in invitation_rows(state_url)}

    # The killed run reminded those before the crash point; the one it counted last never went out.
    assert reminders_in(in_killed_run) == due[:nth - 1]
    assert {i for i, n in counted.items() if n} == set(due[:nth])
    # The rerun reminded everyone else still due, in order, and not the one lost in the crash.
    assert reminders_in(in_rerun) == due[nth:]
    assert later.deliveries[0].reminded == 0 and len(messages) == invited + len(in_killed_run) + len(in_rerun)

    reminded = Counter(reminders_in(messages))
    assert max(reminded.values(), default=0) <= 1  # max_reminders
    assert lost not in reminded and answered not in reminded
    assert reminded == Counter(i for i in due if i != lost)  # every other unanswered invitation: exactly one
    # No invitation mail went out a second time: the killed run and the rerun sent reminders only.
    initial = Counter(invitation_of(m) for m in messages if not is_reminder(m))
    assert initial == Counter(sent_ids) and all(is_reminder(m) for m in messages[invited:])
    # The store counts every reminder delivered, plus exactly the one lost.
    assert {i: r["reminders_sent"] for i, r in rows.items() if r["reminders_sent"]} == {**reminded, lost: 1}
    assert sum(r["reminders_sent"] for r in rows.values()) == sum(reminded.values()) + 1
    assert rows[lost]["state"] == "sent" and rows[lost]["last_reminder_at"] is not None
