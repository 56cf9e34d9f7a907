"""HTTP done once: sessions, timeouts, TLS/proxy options, the one retry policy, pacing, error mapping.

Every request to a system goes through `Caller.request` (ServiceNow) or `Caller.call` (a function that
performs a request, e.g. through the `jira` package's session). Only here are requests retried:
the `jira` package is created with `max_retries=0` and no urllib3 `Retry` adapter is mounted.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import requests
import tenacity
from urllib3.exceptions import NewConnectionError

from connector.config import HttpOptions
from connector.errors import AuthError, RequestError, ResponseError, SystemError_, TransientError
from connector.redact import redact, sanitize_url

log = logging.getLogger("vloop.http")
T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_AGENT = "virtuous-loop/0.1 (+https://github.com/virtuous-loop/vloop)"


class RetryableStatus(Exception):
    """An HTTP answer worth retrying; carries the response for Retry-After."""

    def __init__(self, response: requests.Response):
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


def build_session(options: HttpOptions) -> requests.Session:
    """A plain session: TLS verification on (or the CA bundle), optional proxy, no retry adapter."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    # A CA bundle replaces the default trust store (requests semantics); verify_tls: false wins over it.
    session.verify = (options.ca_bundle or True) if options.verify_tls else False
    if options.proxy:
        session.proxies = {"https": options.proxy, "http": options.proxy}
    adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=max(4, options.max_concurrency))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def retry_after_seconds(response: requests.Response | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds, whether given as a number or an HTTP date; None when absent or bad."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_retryable(exc: BaseException, method: str) -> bool:
    """Connection problems, timeouts, 429/502/503/504; 500 only when repeating the request is harmless."""
    if isinstance(exc, RetryableStatus):
        status = exc.response.status_code
        return status in RETRY_STATUSES or (status == 500 and method in IDEMPOTENT)
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a certificate that does not verify will not verify on the next attempt either
    return isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError)


def never_reached(exc: BaseException) -> bool:
    """True only when the server surely did not act on the request: safe to repeat a write that appends.

    A 429 is refused before any work; a connect timeout or refused connection never delivered a byte.
    A read timeout, a reset or a 5xx may come after the server stored the write.
    """
    if isinstance(exc, RetryableStatus):
        return exc.response.status_code == 429
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        return isinstance(getattr(exc.args[0], "reason", None), NewConnectionError)
    return False


class RetryAfterWait(tenacity.wait.wait_base):
    """Honour Retry-After when the server sent it, else exponential back-off with full jitter, capped."""

    def __init__(self, max_wait: float, rng: random.Random | None = None, base: float = 0.5):
        self.max_wait = max_wait
        self.base = base
        self.rng = rng or random.Random()

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        advised = retry_after_seconds(exc.response) if isinstance(exc, RetryableStatus) else None
        if advised is not None and advised > 0:
            # Waiting less than advised earns the same or a longer wait (Atlassian); never cap it below.
            return advised
        ceiling = min(self.max_wait, self.base * 2 ** (retry_state.attempt_number - 1))
        return self.rng.uniform(0, ceiling)


@dataclass
class Pacer:
    """Per-system ceiling on requests in flight and requests per second, shared by all threads."""

    max_concurrency: int
    per_second: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()
        self._next = 0.0

    def __enter__(self) -> Pacer:
        self._slots.acquire()
        if self.per_second > 0:
            with self._lock:
                now = self.clock()
                start = max(now, self._next)
                self._next = start + 1.0 / self.per_second
            if start > now:
                self.sleep(start - now)
        return self

    def __exit__(self, *exc: object) -> None:
        self._slots.release()


def describe(method: str, url: str) -> str:
    return f"{method} {sanitize_url(url)}"


def body_excerpt(response: requests.Response, limit: int = 300) -> str:
    text = response.text[:limit].replace("\n", " ")
    return redact(text) + ("…" if len(response.text) > limit else "")


def classify(system: str, method: str, url: str, response: requests.Response,
             hints: dict[int, str] | None = None) -> SystemError_:
    """The error an operator sees for a non-success answer: system, sanitised request, status, fix."""
    status, request = response.status_code, describe(method, url)
    detail = body_excerpt(response)
    hint = (hints or {}).get(status)
    if status in (401, 403):
        return AuthError(system, request, detail, status=status, hint=hint)
    if status in RETRY_STATUSES or status >= 500:
        return TransientError(system, request, detail, status=status, hint=hint)
    return RequestError(system, request, detail, status=status, hint=hint)


class Caller:
    """Executes requests toward one system with pacing, the retry policy and error classification."""

    def __init__(self, system: str, options: HttpOptions, session: requests.Session | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, hints: dict[int, str] | None = None):
        self.system = system
        self.options = options
        self.session = session or build_session(options)
        self.sleep = sleep
        self.hints = hints or {}
        self.pacer = Pacer(options.max_concurrency, options.requests_per_second, sleep=sleep)
        self.timeout = (options.connect_timeout, options.read_timeout)
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE / HTTPS_PROXY from the environment
        # override a session's own verify and proxies, which would silently ignore the config.
        self.transport: dict[str, Any] = {"verify": self.session.verify}
        if options.proxy:
            self.transport["proxies"] = dict(self.session.proxies)
        self.requests_sent = 0
        self._count_lock = threading.Lock()

    def _retrying(self, method: str, what: str, replay: bool = True) -> tenacity.Retrying:
        retry = self.options.retry

        def log_wait(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = str(exc) if isinstance(exc, RetryableStatus) else type(exc).__name__
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s: %s: %s, retry %d in %.1fs", self.system, what, reason, state.attempt_number, wait)

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: is_retryable(e, method) and (replay or never_reached(e))),
            wait=RetryAfterWait(retry.max_wait.total_seconds()),
            stop=tenacity.stop_after_attempt(retry.max_attempts)
            | tenacity.stop_after_delay(retry.budget.total_seconds()),
            sleep=self.sleep,
            reraise=True,
            before_sleep=log_wait,
        )

    def count_request(self) -> None:
        """Count one request toward a system (the benchmark and the run summary report them)."""
        with self._count_lock:
            self.requests_sent += 1

    def request(self, method: str, url: str, *, ok: tuple[int, ...] = (200, 201, 204), replay: bool = True,
                **kwargs: Any) -> requests.Response:
        """Send one request (with retries); return the response or raise a classified SystemError_.

        `replay=False` for writes that append (a comment): retried only when the server surely did not
        act on it, so a timeout never posts the same comment twice.
        """
        what = describe(method, url)

        def attempt() -> requests.Response:
            with self.pacer:
                self.count_request()
                response = self.session.request(method, url, timeout=self.timeout, **self.transport, **kwargs)
            if response.status_code in ok:
                return response
            if is_retryable(RetryableStatus(response), method):
                raise RetryableStatus(response)
            raise classify(self.system, method, url, response, self.hints)

        return self.call(attempt, method=method, what=what, replay=replay)

    def call(self, attempt: Callable[[], T], *, method: str, what: str, replay: bool = True) -> T:
        """Run `attempt` under the retry policy; map what is left to our errors."""
        try:
            return self._retrying(method, what, replay)(attempt)
        except RetryableStatus as exc:
            raise classify(self.system, method, exc.response.url or what, exc.response, self.hints) from None
        except requests.Timeout as exc:
            raise TransientError(self.system, what, f"timed out ({type(exc).__name__})") from None
        except requests.exceptions.SSLError:
            raise RequestError(self.system, what, "TLS verification failed",
                               hint="set http.ca_bundle to your CA certificates (docs/security.md)") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(self.system, what, f"connection failed ({type(exc).__name__})",
                                 hint="check the URL, DNS, proxy and firewall; the next run resumes") from None

    def json(self, response: requests.Response, method: str = "GET") -> Any:
        """Decode a JSON body or raise ResponseError naming the request."""
        try:
            return orjson.loads(response.content)
        except ValueError:
            raise ResponseError(self.system, describe(method, response.url),
                                f"malformed JSON in a {response.status_code} answer: {body_excerpt(response, 120)}"
                                ) from None
