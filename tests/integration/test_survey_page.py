"""The survey page over real HTTP (waitress on loopback) with a real state store (SQLite, and PostgreSQL).

Security checks of reference reliability-security.md §9/§15: GET records no answer, single use under
replay and concurrency, neutral 404 for bad links, CSRF, size and rate limits, escaping, headers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
import requests
from sqlalchemy import func, insert, select

from connector.config import SurveyConfig
from connector.store import Store
from connector.store.schema import clicks, invitations, optouts, responses, tickets
from connector.store.surveys import SurveyStore
from connector.surveys.tokens import SurveyTokens
from connector.surveys.web import create_app, serve_in_thread, server_options

KEY = "k" * 40
SURVEYS = {"resolved": "csat", "loyalty": "nps"}
HOSTILE_TITLE = '<script>alert("x")</script>\r\nSet-Cookie: evil=1 & "quotes"'


@dataclass
class Page:
    """A running survey page and what the tests need to drive it."""

    url: str
    store: Store
    tokens: SurveyTokens
    clock: Callable[[], datetime]
    now: list[datetime]
    ids: Iterator[int] = field(default_factory=lambda: count(1))

    def invitation(self, *, language: str = "en", state: str = "sent", survey: str = "resolved",
                   title: str = "Printer on floor 3 is jammed", expires_in: timedelta | None = timedelta(days=14),
                   person_key: str | None = "alice@example.com") -> tuple[int, str]:
        """A ticket and an invitation for it; returns the invitation id and its signed token."""
        n = next(self.ids)
        now = datetime.now(UTC)
        with self.store.engine.begin() as conn:
            conn.execute(insert(tickets).values(system="snow", id=f"sys{n}", number=f"INC00{n:05d}", title=title,
                                                state="resolved", status="Resolved", raw={}, pulled_at=now))
            invitation_id = conn.execute(insert(invitations).values(
                survey=survey, system="snow", ticket_id=f"sys{n}", resolved_at=now, person_key=person_key,
                email=person_key, language=language, channel="email", state=state,
                expires_at=now + expires_in if expires_in else None, created_at=now, updated_at=now,
            ).returning(invitations.c.id)).scalar_one()
        return invitation_id, self.tokens.sign(invitation_id)

    def count(self, table: Any, invitation_id: int) -> int:
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)
                                .where(table.c.invitation_id == invitation_id)).scalar_one()


def _serve(app: Any, trusted_proxies: int = 0) -> tuple[str, Callable[[], None]]:
    return serve_in_thread(app, **server_options(trusted_proxies))


def _page(url: str, store_factory: Any, surveys: Mapping[str, Any] = SURVEYS, trusted_proxies: int = 0,
          **options: Any) -> Iterator[Page]:
    store = store_factory(url)
    tokens = SurveyTokens([KEY], max_age=timedelta(days=30))
    now = [datetime.now(UTC)]

    def clock() -> datetime:
        return now[0]

    # The public URL must be known before the server's port is: a late-bound app fills the gap.
    holder: dict[str, Any] = {}
    base, stop = _serve(lambda environ, start: holder["app"](environ, start), trusted_proxies)
    holder["app"] = create_app(SurveyStore(store.engine), tokens, surveys, public_url=base + "/", clock=clock,
                               secret_key="csrf-" + KEY, **options)
    try:
        yield Page(base, store, tokens, clock, now)
    finally:
        stop()


@pytest.fixture
def page(state_url: str, store_factory: Any) -> Iterator[Page]:
    yield from _page(state_url, store_factory)


@pytest.fixture
def sqlite_page(sqlite_url: str, store_factory: Any) -> Iterator[Page]:
    yield from _page(sqlite_url, store_factory)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def open_form(page: Page, token: str, score: int | None = None, **headers: str) -> requests.Response:
    params = {"score": score} if score is not None else {}
    return requests.get(f"{page.url}/s/{token}", params=params, headers=headers, timeout=10)


def submit(page: Page, token: str, form: dict[str, Any]) -> requests.Response:
    return requests.post(f"{page.url}/s/{token}", data=form, timeout=10)


# --- core behaviour: SQLite and PostgreSQL ------------------------------------------------------------


def test_get_preselects_the_score_and_records_only_a_click(page: Page):
    invitation_id, token = page.invitation()
    got = open_form(page, token, 4)
    assert got.status_code == 200
    html = got.text
    assert 'value="4" data-tone="positive" required checked' in html
    assert html.count(" checked") == 1
    assert "INC0000001" in html and "Printer on floor 3 is jammed" in html
    assert "<fieldset" in html and "<legend>" in html and 'for="comment"' in html
    assert page.count(responses, invitation_id) == 0
    assert page.count(clicks, invitation_id) == 1


def test_post_stores_one_response_and_a_replay_is_already_recorded(page: Page):
    invitation_id, token = page.invitation()
    form = {"csrf": csrf_of(open_form(page, token, 2).text), "score": "2", "reason": ["negative-0", "negative-3"],
            "comment": "Took a week.\r\nStill slow."}
    first = submit(page, token, form)
    assert first.status_code == 200 and "Thank you!" in first.text
    replay = submit(page, token, form)
    assert replay.status_code == 200 and "Already answered" in replay.text
    assert page.count(responses, invitation_id) == 1
    stored = SurveyStore(page.store.engine).response(invitation_id)
    assert stored is not None
    assert stored["score"] == 2 and stored["source"] == "page" and stored["language"] == "en"
    assert stored["answers"] == {"reasons": ["It took too long", "I was not kept informed"]}
    assert stored["comment"] == "Took a week.\nStill slow."
    again = open_form(page, token, 5)
    assert again.status_code == 200 and "Already answered" in again.text


@pytest.fixture
def roomy_page(state_url: str, store_factory: Any) -> Iterator[Page]:
    """A page whose per-link limit lets 20 submits of one link through."""
    yield from _page(state_url, store_factory, rate_limit_per_token=50)


def test_concurrent_submits_of_one_link_store_one_response(roomy_page: Page):
    page = roomy_page
    invitation_id, token = page.invitation()
    form = {"csrf": csrf_of(open_form(page, token).text), "score": "5"}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: submit(page, token, form), range(20)))
    assert all(a.status_code == 200 for a in answers)
    assert sum("Thank you!" in a.text for a in answers) == 1
    assert sum("Already answered" in a.text for a in answers) == 19
    assert page.count(responses, invitation_id) == 1


def test_tampered_expired_unknown_and_closed_links_get_one_neutral_404(page: Page):
    _, good = page.invitation()
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    unknown = page.tokens.sign(999_999)
    closed = [page.invitation(state=state)[1] for state in ("cancelled", "expired", "suppressed")]
    past_expiry = page.invitation(expires_in=timedelta(seconds=-5))[1]
    other_key = SurveyTokens(["o" * 40], max_age=timedelta(days=1)).sign(1)
    bodies = set()
    for token in [tampered, unknown, other_key, "garbage", *closed, past_expiry]:
        got = open_form(page, token, 3)
        assert got.status_code == 404, token
        bodies.add(got.text)
    assert len(bodies) == 1
    assert "cannot be used" in bodies.pop()
    posted = submit(page, tampered, {"score": "3"})
    assert posted.status_code == 404


def test_expired_signature_gets_the_same_404(sqlite_url: str, store_factory: Any):
    """A page whose links live 0 seconds: every signature is expired, and the page says 404 like for garbage."""
    store = store_factory(sqlite_url)
    tokens = SurveyTokens([KEY], max_age=timedelta(seconds=0))
    app = create_app(SurveyStore(store.engine), tokens, SURVEYS, public_url="https://feedback.example.com",
                     secret_key="s" * 40)
    client = app.test_client()
    token = tokens.sign(1)
    time.sleep(1.1)  # itsdangerous timestamps are whole seconds
    assert tokens.check(token).status == "expired"
    expired, garbage = client.get(f"/s/{token}"), client.get("/s/garbage")
    assert expired.status_code == garbage.status_code == 404
    assert expired.data == garbage.data


def test_missing_or_wrong_csrf_is_refused_with_400(page: Page):
    invitation_id, token = page.invitation()
    for form in ({"score": "4"}, {"score": "4", "csrf": "0" * 64}):
        got = submit(page, token, form)
        assert got.status_code == 400 and "did not come from our survey page" in got.text
    _, other = page.invitation()
    borrowed = csrf_of(open_form(page, other).text)  # a CSRF token is bound to its own link
    assert submit(page, token, {"score": "4", "csrf": borrowed}).status_code == 400
    assert page.count(responses, invitation_id) == 0


def test_swedish_invitation_gets_a_swedish_page(page: Page):
    _, token = page.invitation(language="sv")
    got = open_form(page, token, 5)
    assert '<html lang="sv">' in got.text
    assert "Hur nöjd är du med hur vi hanterade ditt ärende INC0000001?" in got.text
    assert "Skicka mitt svar" in got.text and "Mycket nöjd" in got.text
    answered = submit(page, token, {"csrf": csrf_of(got.text), "score": "5", "reason": "positive-1"})
    assert "Tack!" in answered.text
    english = requests.get(f"{page.url}/s/{token}", params={"lang": "en"}, timeout=10)
    assert '<html lang="en">' in english.text and "Already answered" in english.text


# --- the rest: SQLite -------------------------------------------------------------------------------------


def test_security_headers_on_every_response(sqlite_page: Page):
    _, token = sqlite_page.invitation()
    for got in (open_form(sqlite_page, token), open_form(sqlite_page, "bad"),
                requests.get(f"{sqlite_page.url}/healthz", timeout=10),
                requests.get(f"{sqlite_page.url}/static/survey.css", timeout=10)):
        csp = got.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Referrer-Policy"] == "no-referrer"
        assert got.headers["X-Frame-Options"] == "DENY"
        assert got.headers["Cache-Control"] == "no-store"
    assert "<script>" not in open_form(sqlite_page, token).text.replace('<script src="', "")


def test_hostile_title_is_escaped_and_cannot_inject_headers(sqlite_page: Page):
    _, token = sqlite_page.invitation(title=HOSTILE_TITLE)
    got = open_form(sqlite_page, token, 1)
    assert got.status_code == 200
    assert '<script>alert("x")</script>' not in got.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in got.text
    assert "evil" not in got.headers.get("Set-Cookie", "")
    assert all("evil" not in value for value in got.headers.values())


def test_links_come_from_public_url_never_the_host_header(sqlite_page: Page):
    _, token = sqlite_page.invitation()
    got = open_form(sqlite_page, token, 3, Host="attacker.example")
    assert got.status_code == 200
    assert "attacker.example" not in got.text
    assert f'action="{sqlite_page.url}/s/{token}"' in got.text


def test_oversized_body_is_refused_with_413(sqlite_page: Page):
    invitation_id, token = sqlite_page.invitation()
    got = submit(sqlite_page, token, {"score": "3", "comment": "x" * 20_000})
    assert got.status_code == 413 and "too large" in got.text
    assert sqlite_page.count(responses, invitation_id) == 0


def test_invalid_answers_are_shown_again_with_400(sqlite_page: Page):
    invitation_id, token = sqlite_page.invitation()
    csrf = csrf_of(open_form(sqlite_page, token).text)
    for form in ({"score": "6"}, {"score": "-1"}, {"score": "\uff13"}, {"score": "4", "reason": "made-up"},
                 {"score": "4", "comment": "y" * 2_001}):
        got = submit(sqlite_page, token, {"csrf": csrf, **form})
        assert got.status_code == 400 and 'role="alert"' in got.text, form
    assert sqlite_page.count(responses, invitation_id) == 0
    exact = submit(sqlite_page, token, {"csrf": csrf, "score": "4", "comment": "z" * 2_000})
    assert exact.status_code == 200 and sqlite_page.count(responses, invitation_id) == 1


def test_rate_limit_per_token_then_per_address(sqlite_url: str, store_factory: Any):
    for page in _page(sqlite_url, store_factory, rate_limit_per_ip=8, rate_limit_per_token=3):
        _, token = page.invitation()
        codes = [open_form(page, token).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = open_form(page, token)
        assert limited.status_code == 429 and "Too many requests" in limited.text
        page.now[0] += timedelta(seconds=30)  # refills half a minute's worth of the token's bucket
        assert open_form(page, token).status_code == 200
        # The address's bucket (8 a minute) has 6 left after the half-minute refill, whatever the link.
        others = [open_form(page, page.invitation()[1]).status_code for _ in range(7)]
        assert others == [200] * 6 + [429]
        assert requests.get(f"{page.url}/healthz", timeout=10).status_code == 200


def test_optout_confirm_then_record(sqlite_page: Page):
    _, token = sqlite_page.invitation(person_key="Bob@Example.com")
    confirm = requests.get(f"{sqlite_page.url}/optout/{token}", timeout=10)
    assert confirm.status_code == 200 and "Yes, stop sending me surveys" in confirm.text
    assert _optouts(sqlite_page) == []  # GET changes nothing
    refused = requests.post(f"{sqlite_page.url}/optout/{token}", data={}, timeout=10)
    assert refused.status_code == 400
    done = requests.post(f"{sqlite_page.url}/optout/{token}", data={"csrf": csrf_of(confirm.text)}, timeout=10)
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert _optouts(sqlite_page) == [("bob@example.com", "page")]


def test_one_click_unsubscribe(sqlite_page: Page):
    _, token = sqlite_page.invitation(person_key="carol@example.com", state="expired")
    got = requests.post(f"{sqlite_page.url}/optout/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert got.status_code == 200
    assert _optouts(sqlite_page) == [("carol@example.com", "list-unsubscribe")]
    bad = requests.post(f"{sqlite_page.url}/optout/garbage", data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert bad.status_code == 404


def test_healthz(sqlite_page: Page):
    got = requests.get(f"{sqlite_page.url}/healthz", timeout=10)
    assert got.status_code == 200 and got.json() == {"status": "ok", "database": True}


def test_nps_page_without_javascript_shows_every_reason_group(sqlite_page: Page):
    _, token = sqlite_page.invitation(survey="loyalty")
    html = open_form(sqlite_page, token, 9).text
    assert len(re.findall(r'type="radio" name="score"', html)) == 11
    assert html.count('class="reasons"') == 3 and " hidden" not in html
    assert "Not at all likely" in html and "Extremely likely" in html
    assert re.search(r'<script src="http://127\.0\.0\.1:\d+/static/survey\.js" defer></script>', html)
    assert requests.get(f"{sqlite_page.url}/static/survey.js", timeout=10).status_code == 200


def test_logs_hold_neither_tokens_nor_addresses(sqlite_page: Page, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    invitation_id, token = sqlite_page.invitation(person_key="dave@example.com")
    html = open_form(sqlite_page, token, 1).text
    submit(sqlite_page, token, {"csrf": csrf_of(html), "score": "1"})
    requests.post(f"{sqlite_page.url}/optout/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10)
    open_form(sqlite_page, token[:-2] + "xx")
    # The server side only: the test's own HTTP client (urllib3) logs the URLs it fetches.
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    assert f"invitation {invitation_id}" in text
    assert token not in text and token[:20] not in text and "@" not in text


def _optouts(page: Page) -> list[tuple[str, str]]:
    with page.store.engine.connect() as conn:
        return [(r.key, r.source) for r in conn.execute(select(optouts.c.key, optouts.c.source))]


def test_vloop_serve_runs_the_page_from_the_config(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import requests as http
    from sqlalchemy import insert

    from connector.store import Store as StateStore
    from connector.store.schema import invitations as invitation_table
    from connector.surveys.tokens import SurveyTokens
    from tests.conftest import write_config

    key = "s" * 40
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    config = write_config(tmp_path, url, {}, secret_key=key, public_url="https://feedback.example.com",
                          surveys={"resolved": {"kind": "nps", "questions": [
                              {"id": "again", "type": "yes_no", "text": {"en": "Would you ask us again?"}}]}},
                          channels={"email": {"from": "Service Desk <desk@example.com>"}})
    state = StateStore.open(url)
    now = datetime.now(UTC)
    with state.engine.begin() as conn:
        invitation_id = conn.execute(insert(invitation_table).values(
            survey="resolved", system="snow", ticket_id="t1", resolved_at=now - timedelta(hours=2), language="en",
            channel="email", state="sent", attempts=1, reminders_sent=0, created_at=now, updated_at=now,
            expires_at=now + timedelta(days=14))).inserted_primary_key[0]
    state.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "connector", "-c", str(config), "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2], env=os.environ.copy())
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if http.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except http.ConnectionError:
                time.sleep(0.1)
        token = SurveyTokens([key], timedelta(days=14)).sign(invitation_id)
        page = http.get(f"{base}/s/{token}?score=9", timeout=5)
        assert page.status_code == 200 and 'value="9" data-tone="positive" required checked' in page.text
        assert "Would you ask us again?" in page.text and 'name="q_again" value="yes"' in page.text
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the survey's own questions (config surveys.<name>.questions) ----------------------------------------

ASKED = SurveyConfig.model_validate({"kind": "csat", "questions": [
    {"id": "channel", "type": "choice", "required": True,
     "text": {"en": "How did you contact us?", "sv": "Hur kontaktade du oss?"},
     "choices": [{"id": "portal", "text": {"en": "The portal", "sv": "Portalen"}},
                 {"id": "phone", "text": {"en": "Phone", "sv": "Telefon"}}]},
    {"id": "topics", "type": "multi", "text": {"en": "What was it <about>?", "sv": "Vad gällde det?"},
     "choices": [{"id": "access", "text": {"en": "Access", "sv": "Behörighet"}},
                 {"id": "hardware", "text": {"en": "Hardware", "sv": "Hårdvara"}},
                 {"id": "other", "text": {"en": "Something else"}}]},
    {"id": "call_back", "type": "yes_no", "bands": ["dissatisfied", "neutral"],
     "text": {"en": "Shall we call you?", "sv": "Ska vi ringa dig?"}},
    {"id": "idea", "type": "text", "text": {"en": "One thing we should do differently?"}},
]})


@pytest.fixture
def asked(state_url: str, store_factory: Any) -> Iterator[Page]:
    """A page whose survey `asked` has questions of its own (SQLite and PostgreSQL)."""
    yield from _page(state_url, store_factory, {**SURVEYS, "asked": ASKED})


@pytest.fixture
def asked_sqlite(sqlite_url: str, store_factory: Any) -> Iterator[Page]:
    yield from _page(sqlite_url, store_factory, {**SURVEYS, "asked": ASKED})


def fieldset(html: str, question: str) -> str:
    """The fieldset of one question, to check what is drawn inside it."""
    found = re.search(rf'<fieldset class="question[^"]*" id="q-{question}".*?</fieldset>', html, re.S)
    assert found, html
    return found.group(0)


def answer_asked(page: Page, language: str = "en", **form: Any) -> tuple[int, requests.Response]:
    invitation_id, token = page.invitation(survey="asked", language=language)
    got = submit(page, token, {"csrf": csrf_of(open_form(page, token).text), **form})
    return invitation_id, got


def stored_answers(page: Page, invitation_id: int) -> dict[str, Any] | None:
    stored = SurveyStore(page.store.engine).response(invitation_id)
    return None if stored is None else dict(stored["answers"])


def test_questions_are_drawn_as_fieldsets_with_bound_labels(asked_sqlite: Page):
    _, token = asked_sqlite.invitation(survey="asked")
    html = open_form(asked_sqlite, token, 2).text
    assert html.count('<fieldset class="question"') == 4 and " hidden" not in html
    channel = fieldset(html, "channel")
    assert "<legend><span>How did you contact us?</span> <span class=\"hint\">(required)</span></legend>" in channel
    assert channel.count('type="radio" name="q_channel"') == 2 and channel.count(" required") == 2
    assert '<label class="check"><input type="radio" name="q_channel" value="phone" required> <span>Phone</span>' \
        in channel
    topics = fieldset(html, "topics")
    assert "What was it &lt;about&gt;?" in topics and "<about>" not in html
    assert topics.count('type="checkbox" name="q_topics"') == 3
    call_back = fieldset(html, "call_back")
    assert 'data-bands="dissatisfied neutral"' in call_back and "(unless you were happy)" in call_back
    assert "<span>Yes</span>" in call_back and "<span>No</span>" in call_back and " required" not in call_back
    idea = fieldset(html, "idea")
    assert '<label for="q-idea-text">One thing we should do differently?</label>' in idea
    assert 'id="q-idea-text" name="q_idea" maxlength="500"' in idea
    # After the reasons and before the comment, so the page keeps its order.
    assert html.index('class="reasons"') < html.index('id="q-channel"') < html.index('id="q-idea"') \
        < html.index('id="comment"')


def test_answers_are_stored_by_question_id(asked: Page):
    invitation_id, got = answer_asked(asked, score="2", reason="negative-0", q_channel="phone",
                                      q_topics=["other", "access", "access"], q_call_back="yes",
                                      q_idea="  Call me sooner \r\n ", comment="Slow")
    assert got.status_code == 200 and "Thank you!" in got.text
    assert stored_answers(asked, invitation_id) == {
        "reasons": ["It took too long"], "channel": "phone", "topics": ["access", "other"], "call_back": True,
        "idea": "Call me sooner"}
    stored = SurveyStore(asked.store.engine).response(invitation_id)
    assert stored is not None and stored["score"] == 2 and stored["comment"] == "Slow"


def test_unanswered_optional_questions_store_nothing(asked: Page):
    invitation_id, got = answer_asked(asked, score="4", q_channel="portal", q_idea="   ")
    assert got.status_code == 200
    assert stored_answers(asked, invitation_id) == {"reasons": [], "channel": "portal"}


@pytest.mark.parametrize(("score", "call_back", "stored"), [
    ("1", "no", False), ("3", "yes", True), ("4", "yes", None), ("5", "no", None),
])
def test_band_question_is_kept_only_for_its_bands(asked_sqlite: Page, score, call_back, stored):
    invitation_id, got = answer_asked(asked_sqlite, score=score, q_channel="phone", q_call_back=call_back)
    assert got.status_code == 200
    assert stored_answers(asked_sqlite, invitation_id).get("call_back") == stored  # type: ignore[union-attr]


def test_answer_of_another_band_is_dropped_even_when_not_on_the_list(asked_sqlite: Page):
    invitation_id, got = answer_asked(asked_sqlite, score="5", q_channel="phone", q_call_back="perhaps")
    assert got.status_code == 200
    assert stored_answers(asked_sqlite, invitation_id) == {"reasons": [], "channel": "phone"}


def test_missing_required_question_comes_back_with_its_message(asked: Page):
    invitation_id, token = asked.invitation(survey="asked")
    csrf = csrf_of(open_form(asked, token).text)
    got = submit(asked, token, {"csrf": csrf, "score": "4", "q_topics": "hardware", "q_idea": "Keep it up"})
    assert got.status_code == 400 and 'role="alert"' in got.text
    assert "<li>How did you contact us? \u2013 Please answer this question.</li>" in got.text
    channel = fieldset(got.text, "channel")
    assert '<p class="field-error" id="q-channel-error">Please answer this question.</p>' in channel
    assert 'aria-invalid="true" aria-describedby="q-channel-error"' in channel
    # What was entered comes back with the message.
    assert 'value="4" data-tone="positive" required checked' in got.text
    assert 'value="hardware" checked' in fieldset(got.text, "topics")
    assert 'value="Keep it up"' in fieldset(got.text, "idea")
    assert asked.count(responses, invitation_id) == 0
    done = submit(asked, token, {"csrf": csrf, "score": "4", "q_channel": "portal"})
    assert done.status_code == 200 and stored_answers(asked, invitation_id) == {"reasons": [], "channel": "portal"}


@pytest.mark.parametrize("form", [
    {"q_channel": "fax"}, {"q_channel": ["phone", "portal"]}, {"q_channel": "phone", "q_topics": ["access", "fax"]},
    {"q_channel": "phone", "q_call_back": "maybe"}, {"q_channel": "phone", "q_idea": "x" * 501},
], ids=["unknown-choice", "two-choices", "unknown-multi", "not-yes-no", "text-too-long"])
def test_answers_not_on_the_list_or_too_long_are_refused(asked_sqlite: Page, form):
    invitation_id, got = answer_asked(asked_sqlite, score="2", **form)
    assert got.status_code == 400 and 'role="alert"' in got.text
    assert 'class="field-error"' in got.text
    assert asked_sqlite.count(responses, invitation_id) == 0


def test_unknown_question_fields_are_ignored_and_text_fits_its_limit(asked_sqlite: Page):
    invitation_id, got = answer_asked(asked_sqlite, score="3", q_channel="phone", q_idea="é" * 500,
                                      q_nope="1", q_reasons="injected", reasons="x", topics="access")
    assert got.status_code == 200
    assert stored_answers(asked_sqlite, invitation_id) == {"reasons": [], "channel": "phone", "idea": "é" * 500}


def test_swedish_page_shows_swedish_questions_and_falls_back_to_english(asked_sqlite: Page):
    invitation_id, token = asked_sqlite.invitation(survey="asked", language="sv")
    html = open_form(asked_sqlite, token, 2).text
    assert '<html lang="sv">' in html
    assert "<span>Hur kontaktade du oss?</span> <span class=\"hint\">(obligatorisk)</span>" in html
    assert "<span>Telefon</span>" in html and "<span>Ja</span>" in html and "<span>Nej</span>" in html
    assert "(utom om du var nöjd)" in fieldset(html, "call_back")
    # Neither the question nor one choice has Swedish: English, marked as such for screen readers.
    assert '<label for="q-idea-text" lang="en">One thing we should do differently?</label>' in html
    assert '<span lang="en">Something else</span>' in fieldset(html, "topics")
    refused = submit(asked_sqlite, token, {"csrf": csrf_of(html), "score": "2"})
    assert refused.status_code == 400 and "Svara på den här frågan." in refused.text
    assert "<li>Hur kontaktade du oss? \u2013 Svara på den här frågan.</li>" in refused.text
    done = submit(asked_sqlite, token, {"csrf": csrf_of(html), "score": "2", "q_channel": "portal"})
    assert "Tack!" in done.text and stored_answers(asked_sqlite, invitation_id) == {"reasons": [], "channel": "portal"}


def test_optout_links_outlive_the_survey_link(sqlite_url: str, store_factory: Any):
    """The survey link expires with the survey; its opt-out link keeps working (optout_valid_for)."""
    store = store_factory(sqlite_url)
    short = SurveyTokens([KEY], max_age=timedelta(seconds=0))
    app = create_app(SurveyStore(store.engine), short, SURVEYS, public_url="https://feedback.example.com",
                     secret_key="s" * 40, optout_tokens=SurveyTokens([KEY], max_age=timedelta(days=365)))
    client = app.test_client()
    with store.engine.begin() as conn:
        conn.execute(invitations.insert().values(
            survey="resolved", system="servicenow", ticket_id="t-optout", resolved_at=datetime.now(UTC),
            person_key="dora@example.com", email="dora@example.com", language="en", channel="email",
            state="expired", attempts=1, reminders_sent=0, created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
        invitation_id = conn.execute(select(invitations.c.id).where(invitations.c.ticket_id == "t-optout")).scalar()
    token = short.sign(invitation_id)
    time.sleep(1.1)  # the survey link has expired
    assert client.get(f"/s/{token}").status_code == 404
    done = client.post(f"/optout/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert SurveyStore(store.engine).opted_out(["dora@example.com"]) == {"dora@example.com"}


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_behind_a_trusted_proxy_each_client_has_its_own_rate_limit(sqlite_url: str, store_factory: Any,
                                                                   trusted_proxies: int):
    def get(page: Page, client: str) -> int:
        _, token = page.invitation()
        return open_form(page, token, **{"X-Forwarded-For": client}).status_code

    for page in _page(sqlite_url, store_factory, rate_limit_per_ip=3, trusted_proxies=trusted_proxies):
        first = [get(page, "203.0.113.7") for _ in range(4)]
        other = get(page, "198.51.100.9")
        assert first == [200, 200, 200, 429]
        # Trusted: the proxy's header names the client, who has a bucket of its own. Not trusted: the
        # header is anyone's to forge, so the peer address (the proxy) counts and is already limited.
        assert other == (200 if trusted_proxies else 429)
