"""The survey page (`vloop serve`): a Flask app over the shared state store, served by waitress.

Rules it keeps (shared reference reliability-security.md §9 and §11):
- GET never records an answer: mail link scanners fetch every link. It records a click (a signal).
- The answer is a POST carrying a CSRF token bound to the survey link; one response per invitation is
  enforced by the store's unique constraint, so concurrent double submits store one.
- Unknown, tampered, expired and closed links all get the same neutral 404 page, after the same work
  (one database lookup), so neither the body nor the timing tells them apart.
- Links come from the configured `public_url`, never from the Host header; logs carry the invitation
  id, never the token or an email address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, Response, abort, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from connector.config import QuestionConfig, SurveyConfig
from connector.store.surveys import InvitationView, SurveyStore
from connector.surveys import questions as extra
from connector.surveys.definitions import scale
from connector.surveys.i18n import FALLBACK, languages, pick_language, text
from connector.surveys.tokens import SurveyTokens
from connector.surveys.web_store import database_ok, optout_key

log = logging.getLogger("vloop.web")

HERE = Path(__file__).resolve().parent
MAX_BODY = 16 * 1024
MAX_COMMENT = 2_000
# Room in the body for each free-text question: a character can take 9 bytes once percent-encoded.
BODY_PER_TEXT_QUESTION = extra.MAX_TEXT * 9
TONES = ("negative", "neutral", "positive")
CLOSED_STATES = frozenset({"cancelled", "expired", "suppressed"})
ONE_CLICK = "One-Click"  # RFC 8058: the exact body value mail clients POST
# Looked up for links that fail verification, so a refusal costs the same query as a real link.
NO_INVITATION = 0

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TokenBuckets:
    """In-process token buckets: `capacity` requests per `period` seconds per key, refilled continuously.

    Per process only: several replicas each allow the full rate, which is acceptable for abuse damping.
    """

    def __init__(self, capacity: int, period: float, clock: Clock, max_keys: int = 50_000):
        self.capacity = float(capacity)
        self.rate = capacity / period
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> bool:
        now = self._clock().timestamp()
        with self._lock:
            level, last = self._buckets.get(key, (self.capacity, now))
            level = min(self.capacity, level + max(0.0, now - last) * self.rate)
            allowed = level >= 1
            self._buckets[key] = (level - 1 if allowed else level, now)
            if len(self._buckets) > self._max_keys:
                self._prune(now)
            return allowed

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as a missing one: forgetting it keeps memory bounded.
        full = [k for k, (level, last) in self._buckets.items()
                if level + (now - last) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]


@dataclass(frozen=True)
class PageSurvey:
    """What the page needs of a survey definition."""

    kind: str
    default_language: str = FALLBACK
    questions: tuple[QuestionConfig, ...] = ()

    @classmethod
    def of(cls, survey: str | SurveyConfig) -> PageSurvey:
        if isinstance(survey, str):
            return cls(survey)
        return cls(survey.kind, survey.default_language, tuple(survey.questions))


@dataclass(frozen=True)
class Answer:
    score: int
    reasons: list[str]  # English texts of the chosen reasons: stable across the page's languages
    comment: str | None
    extra: dict[str, Any]  # the survey's own questions: {question id: value}


@dataclass(frozen=True)
class Entered:
    """What a returned form shows again: ticked reasons, the comment, the questions' values and problems."""

    reasons: Sequence[str] = ()
    comment: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReasonChoice:
    value: str  # "<tone>-<index>" in the form
    label: str
    english: str


def reason_choices(language: str) -> dict[str, list[ReasonChoice]]:
    """The reasons offered per tone; texts are parallel lists in every language, English is stored."""
    out: dict[str, list[ReasonChoice]] = {}
    for tone in TONES:
        english = list(text("en", f"reasons.{tone}"))
        local = list(text(language, f"reasons.{tone}"))
        if len(local) != len(english):  # a translation out of step: show English rather than mismatch
            local = english
        out[tone] = [ReasonChoice(f"{tone}-{i}", label, english[i]) for i, label in enumerate(local)]
    return out


def parse_score(raw: str | None, kind: str) -> int | None:
    """An ASCII integer within the scale, else None (int() also takes ' 5', '1_0' and non-Latin digits)."""
    if not raw or len(raw) > 2 or not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value in scale(kind).values() else None


def clean_comment(raw: str) -> str:
    return extra.clean_text(raw)


def create_app(store: SurveyStore, tokens: SurveyTokens, surveys: Mapping[str, str | SurveyConfig], *,
               public_url: str, rate_limit_per_ip: int = 60, rate_limit_per_token: int = 10,
               clock: Clock | None = None, secret_key: str | bytes | None = None,
               optout_tokens: SurveyTokens | None = None) -> Flask:
    """The survey page app. `surveys` maps survey name to its definition, or to its kind (nps | csat | ces)
    for a survey with no questions of its own.

    `secret_key` keys the CSRF tokens; pass the configured secret so replicas and restarts agree.
    Without it a random per-process key is used (forms opened before a restart are then refused).
    `optout_tokens` checks opt-out links, which stay good long after the survey closed (default: `tokens`).
    Behind reverse proxies the client's address comes from the server (`server_options`).
    """
    now = clock or _utc_now
    base = public_url.rstrip("/")
    defined = {name: PageSurvey.of(survey) for name, survey in surveys.items()}
    text_questions = max((sum(q.type == "text" for q in d.questions) for d in defined.values()), default=0)
    if secret_key is None:
        log.info("survey page: no secret_key given, CSRF tokens are valid for this process only")
    csrf_key = (secret_key.encode() if isinstance(secret_key, str) else secret_key) or secrets.token_bytes(32)
    per_ip = TokenBuckets(rate_limit_per_ip, 60.0, now)
    per_token = TokenBuckets(rate_limit_per_token, 60.0, now)

    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"),
                static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY + text_questions * BODY_PER_TEXT_QUESTION
    optout_checker = optout_tokens or tokens

    # --- helpers bound to this app ---------------------------------------------------------------

    def link(path: str, **query: Any) -> str:
        params = {k: v for k, v in query.items() if v is not None}
        return base + path + ("?" + urlencode(params) if params else "")

    def survey_path(token: str) -> str:
        return "/s/" + quote(token, safe="")

    def optout_path(token: str) -> str:
        return "/optout/" + quote(token, safe="")

    def csrf_for(purpose: str, token: str) -> str:
        return hmac.new(csrf_key, f"vloop-csrf-v1\x00{purpose}\x00{token}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(purpose: str, token: str) -> bool:
        # Fetch Metadata: a browser that says the POST came from another site is refused outright.
        if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
            return False
        sent = request.form.get("csrf", "")
        return hmac.compare_digest(sent.encode(), csrf_for(purpose, token).encode())

    def language(view: InvitationView | None, *, read_form: bool = True) -> str:
        asked = request.args.get("lang") or (request.form.get("lang") if read_form else None)
        browser = request.accept_languages.best_match(languages())
        return pick_language(asked, view.language if view else None, browser)

    def render(template: str, lang: str, status: int = 200, **context: Any) -> tuple[str, int]:
        return render_template(template, lang=lang, t=partial(text, lang), static_url=lambda f: link("/static/" + f),
                               **context), status

    def message(lang: str, key: str, status: int = 200) -> tuple[str, int]:
        return render("message.html", lang, status, title=text(lang, f"page.{key}.title"),
                      body=text(lang, f"page.{key}.text"))

    def not_found(lang: str) -> tuple[str, int]:
        return message(lang, "not_found", 404)

    def csrf_refused(lang: str) -> tuple[str, int]:
        return render("message.html", lang, 400, title=text(lang, "page.errors.title"),
                      body=text(lang, "page.errors.csrf"))

    def lookup(token: str, checker: SurveyTokens = tokens) -> InvitationView | None:
        """The invitation a link is for, rate limited per link; None for any link that is not good."""
        check = checker.check(token)
        key = f"i{check.invitation_id}" if check.status == "ok" else "t" + hashlib.sha256(token.encode()).hexdigest()
        if not per_token.take(key):
            log.info("survey link rate limited: invitation %s", check.invitation_id)
            abort(429)
        wanted = check.invitation_id if check.invitation_id is not None else NO_INVITATION
        view = store.invitation_view(wanted)
        if check.status != "ok":
            log.info("survey link refused: %s signature", check.status)
            return None
        if view is None:
            log.info("survey link refused: invitation %s unknown", check.invitation_id)
        return view

    def answerable_survey(view: InvitationView) -> PageSurvey | None:
        """The survey when this invitation still takes an answer, else None (closed, expired, unknown)."""
        survey = defined.get(view.survey)
        if survey is None:
            log.warning("survey link refused: invitation %s is for survey %r, not configured", view.id, view.survey)
            return None
        if view.state in CLOSED_STATES or (view.expires_at is not None and view.expires_at <= now()):
            log.info("survey link refused: invitation %s is %s", view.id, view.state)
            return None
        return survey

    def survey_form(token: str, view: InvitationView, survey: PageSurvey, lang: str, *, score: int | None,
                    entered: Entered | None = None, errors: Sequence[str] = (),
                    status: int = 200) -> tuple[str, int]:
        kind = survey.kind
        entered = entered or Entered()
        sc = scale(kind)
        labels = text(lang, f"labels.{kind}") if kind != "nps" else None
        low, high = text(lang, f"scale.{kind}.low"), text(lang, f"scale.{kind}.high")
        options = []
        for value in sc.values():
            label = labels.get(str(value)) if isinstance(labels, dict) else None
            # Without a label per value the ends of the scale say what they mean, for screen readers too.
            hint = None if label else low if value == sc.low else high if value == sc.high else None
            options.append({"value": value, "tone": sc.tone(value), "band": sc.band(value), "label": label,
                            "hint": hint})
        groups = [{"tone": tone, "legend": text(lang, "reasons.question"),
                   "hint": text(lang, f"page.reasons_hint.{tone}"), "choices": choices}
                  for tone, choices in reason_choices(lang).items()]
        return render("survey.html", lang, status, kind=kind, options=options, score=score, low=low, high=high,
                      question=text(lang, f"question.{kind}", ticket=view.ticket_number or ""),
                      ticket_number=view.ticket_number, ticket_title=view.ticket_title, reason_groups=groups,
                      chosen=set(entered.reasons), comment=entered.comment, errors=list(errors),
                      max_comment=MAX_COMMENT, max_text=extra.MAX_TEXT,
                      questions=extra.shown(survey.questions, kind, lang, survey.default_language,
                                            entered.values, entered.errors),
                      csrf=csrf_for("survey", token), action=link(survey_path(token)),
                      optout_url=link(optout_path(token)),
                      language_links=[(code, name, link(survey_path(token), score=score, lang=code))
                                      for code, name in languages_named()])

    def languages_named() -> list[tuple[str, str]]:
        return [(code, text(code, "page.language_name")) for code in languages()]

    def read_answer(survey: PageSurvey, lang: str) -> tuple[Answer | None, list[str], Entered]:
        """The submitted answer, or the problems to show; also what was entered, to show it again."""
        form = request.form
        errors: list[str] = []
        kind = survey.kind
        score = parse_score(form.get("score"), kind)
        if score is None:
            errors.append(text(lang, "page.errors.score"))
        offered = {c.value: c for choices in reason_choices(lang).values() for c in choices}
        picked = list(dict.fromkeys(form.getlist("reason")))
        if any(value not in offered for value in picked):
            errors.append(text(lang, "page.errors.reasons"))
            picked = [value for value in picked if value in offered]
        comment = clean_comment(form.get("comment", ""))
        if len(comment) > MAX_COMMENT:
            errors.append(text(lang, "page.errors.comment", max=MAX_COMMENT))
        own = extra.read(form, survey.questions, kind, score, lang, survey.default_language)
        errors += own.summary
        entered = Entered(picked, form.get("comment", ""), own.values, own.errors)
        if errors or score is None:
            return None, errors, entered
        return Answer(score, [offered[v].english for v in picked], comment or None, own.answers), [], entered

    # --- request hooks --------------------------------------------------------------------------

    @app.before_request
    def limit_per_ip() -> None:
        if request.endpoint in ("survey_page", "survey_submit", "optout_page", "optout_submit") \
                and not per_ip.take(request.remote_addr or "-"):
            log.info("survey page rate limited per address")
            abort(429)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        # The form may be the cause (413), so the language comes from the query and the browser only.
        lang = language(None, read_form=False)
        code = error.code or 500
        if code == 404:
            return not_found(lang)
        key = {413: "too_large", 429: "rate"}.get(code)
        if key is None:
            return error
        return render("message.html", lang, code, title=text(lang, "page.errors.title"),
                      body=text(lang, f"page.errors.{key}"))

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> Any:
        log.error("survey page failed: %s", type(error).__name__, exc_info=error)
        lang = language(None, read_form=False)
        return render("message.html", lang, 500, title=text(lang, "page.errors.title"),
                      body=text(lang, "page.errors.server"))

    def answerable(token: str) -> tuple[Any, str, PageSurvey | None, Any]:
        """(view, language, survey, None) for a link that can still be answered, else the page to show."""
        view = lookup(token)
        lang = language(view)
        if view is None:
            return None, lang, None, not_found(lang)
        if view.responded:
            return view, lang, None, message(lang, "already")
        survey = answerable_survey(view)
        if survey is None:
            return view, lang, None, not_found(lang)
        return view, lang, survey, None

    # --- routes ---------------------------------------------------------------------------------

    @app.get("/s/<token>")
    def survey_page(token: str) -> Any:
        view, lang, survey, refusal = answerable(token)
        if refusal is not None or survey is None:
            return refusal
        score = parse_score(request.args.get("score"), survey.kind)
        if request.method == "GET":  # HEAD is what scanners often send: not even a click
            store.record_click(view.id, score)
            log.info("survey page opened: invitation %s", view.id)
        return survey_form(token, view, survey, lang, score=score)

    @app.post("/s/<token>")
    def survey_submit(token: str) -> Any:
        view, lang, survey, refusal = answerable(token)
        if refusal is not None or survey is None:
            return refusal
        if not csrf_ok("survey", token):
            log.info("survey answer refused: bad CSRF token, invitation %s", view.id)
            return csrf_refused(lang)
        answer, errors, entered = read_answer(survey, lang)
        if answer is None:
            return survey_form(token, view, survey, lang, score=parse_score(request.form.get("score"), survey.kind),
                               entered=entered, errors=errors, status=400)
        # Question ids never take "reasons" (config refuses it), so the built-in key keeps its meaning.
        answers = {**answer.extra, "reasons": answer.reasons}
        if not store.record_response(view.id, answer.score, answers, answer.comment, lang, at=now()):
            log.info("survey answer already recorded: invitation %s", view.id)
            return message(lang, "already")
        log.info("survey answer recorded: invitation %s", view.id)
        return message(lang, "thanks")

    @app.get("/optout/<token>")
    def optout_page(token: str) -> Any:
        view = lookup(token, optout_checker)
        lang = language(view)
        if view is None:
            return not_found(lang)
        return render("optout.html", lang, csrf=csrf_for("optout", token), action=link(optout_path(token)))

    @app.post("/optout/<token>")
    def optout_submit(token: str) -> Any:
        view = lookup(token, optout_checker)
        lang = language(view)
        if view is None:
            return not_found(lang)
        # RFC 8058: mail clients POST exactly this body, without our form's CSRF field.
        one_click = request.form.get("List-Unsubscribe") == ONE_CLICK
        if not one_click and not csrf_ok("optout", token):
            log.info("opt-out refused: bad CSRF token, invitation %s", view.id)
            return csrf_refused(lang)
        key = optout_key(store.engine, view.id)
        if key is None:
            log.warning("opt-out for invitation %s: no person key or address to record", view.id)
        else:
            store.add_optout(key, "list-unsubscribe" if one_click else "page")
            log.info("opt-out recorded: invitation %s (%s)", view.id, "one-click" if one_click else "page")
        return render("message.html", lang, 200, title=text(lang, "page.optout.done_title"),
                      body=text(lang, "page.optout.done"))

    @app.get("/healthz")
    def healthz() -> Any:
        ok = database_ok(store.engine)
        return jsonify(status="ok" if ok else "unavailable", database=ok), 200 if ok else 503

    return app


def server_options(trusted_proxies: int = 0) -> dict[str, Any]:
    """waitress settings: 8 threads; with reverse proxies in front, the client address is taken from their
    X-Forwarded-For (the rate limit per address then counts people, not the proxy). Without, waitress
    drops forwarded headers, which anyone could forge."""
    options: dict[str, Any] = {"threads": 8, "ident": "vloop", "clear_untrusted_proxy_headers": True}
    if trusted_proxies:
        options |= {"trusted_proxy": "*", "trusted_proxy_count": trusted_proxies,
                    "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"}}
    return options


def serve(app: Flask, host: str, port: int, trusted_proxies: int = 0) -> None:
    """Serve the survey page with waitress (a production WSGI server; no per-request access log)."""
    from waitress import serve as waitress_serve

    waitress_serve(app, host=host, port=port, **server_options(trusted_proxies))


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0,
                    **options: Any) -> tuple[str, Callable[[], None]]:
    """The page under waitress in a background thread (the demo, the tests): its URL and a stop function.

    waitress's loop runs a round at a time until told to stop, and the sockets are closed only after it
    has ended. Closing them from another thread while it sits in select() (what `server.close()` does)
    makes it read freed descriptors, which the process may already have handed to a new socket or pipe.
    """
    from waitress import wasyncore
    from waitress.server import create_server

    server: Any = create_server(app, host=host, port=port, **options)
    stopping = threading.Event()

    def run() -> None:
        while not stopping.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=run, name="survey-page", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(5)
        for channel in list(server._map.values()):
            channel.close()
        server.task_dispatcher.shutdown()

    return f"http://{host}:{server.effective_port}", stop
