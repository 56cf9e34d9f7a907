"""Real HTTP serving for the simulators, with latency and fault injection.

`SandboxServer` wraps any WSGI app. Faults come two ways: steady ones from the command line
(`--latency-ms`, `--fail-rate`, `--rate-limit`) and scripted ones that tests queue up
(`inject(Fault(...))`), e.g. "the next three searches answer 429 with Retry-After: 7".
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FaultKind = Literal["status", "reset", "delay", "malformed"]


@dataclass
class Fault:
    """One scripted fault, consumed by the next `times` requests whose path contains `path_contains`,
    once `after` matching requests have gone through untouched."""

    kind: FaultKind
    times: int = 1
    after: int = 0
    path_contains: str = ""
    method: str = ""
    status: int = 503
    retry_after: str | None = None
    delay_s: float = 0.0
    body: Any = None


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int


@dataclass
class Steady:
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    rate_limit: float = 0.0  # requests per second; 0 = unlimited
    seed: int = 1


@dataclass
class _Bucket:
    rate: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FaultMiddleware:
    """Applies steady and scripted faults in front of a simulator app and records every request."""

    def __init__(self, app: WSGIApp, steady: Steady | None = None, error_body: Callable[[int], Any] | None = None):
        self.app = app
        self.steady = steady or Steady()
        self.error_body = error_body or (lambda status: {"error": {"message": f"HTTP {status}"}})
        self._rng = random.Random(self.steady.seed)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._bucket = _Bucket(self.steady.rate_limit, self.steady.rate_limit) if self.steady.rate_limit else None
        self.requests: list[RequestRecord] = []

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def count(self, path_contains: str = "", method: str = "") -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if path_contains in r.path and (not method or r.method == method)
            )

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains in path and (not fault.method or fault.method == method):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, environ: dict[str, Any], status: int) -> None:
        with self._lock:
            self.requests.append(
                RequestRecord(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                              environ.get("QUERY_STRING", ""), status)
            )

    def _json(self, start_response: Callable[..., Any], status: int, body: Any,
              headers: list[tuple[str, str]] | None = None) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(f"{status} ERR", [("Content-Type", "application/json"),
                                         ("Content-Length", str(len(data))), *(headers or [])])
        return [data]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.steady.latency_ms:
            time.sleep(self.steady.latency_ms / 1000)
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        fault = self._take_fault(method, path)
        if fault is not None:
            self._record(environ, 0 if fault.kind == "reset" else fault.status)
            if fault.kind == "reset":
                _reset_connection(environ)
                raise ConnectionAbortedError("sandbox: injected connection reset")
            if fault.kind == "delay":
                time.sleep(fault.delay_s)
            elif fault.kind == "malformed":
                start_response("200 OK", [("Content-Type", "application/json")])
                return [b'{"result": [{"sys_id": "trunc']
            else:
                headers = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
                if fault.status == 429:
                    headers += _rate_headers(self.steady.rate_limit or 1)
                body = fault.body if fault.body is not None else self.error_body(fault.status)
                return self._json(start_response, fault.status, body, headers)
        if self._bucket is not None:
            with self._lock:
                allowed = self._bucket.take()
            if not allowed:
                self._record(environ, 429)
                headers = [("Retry-After", "1"), *_rate_headers(self.steady.rate_limit)]
                return self._json(start_response, 429, self.error_body(429), headers)
        if self.steady.fail_rate:
            with self._lock:
                fail = self._rng.random() < self.steady.fail_rate
            if fail:
                self._record(environ, 503)
                return self._json(start_response, 503, self.error_body(503))
        status_box: list[int] = []

        def recording_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_box.append(int(status.split()[0]))
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start)
        self._record(environ, status_box[0] if status_box else 0)
        return result


def _rate_headers(rate: float) -> list[tuple[str, str]]:
    reset = int(time.time()) + 1
    return [("X-RateLimit-Limit", str(int(rate * 3600))), ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", str(reset))]


def _reset_connection(environ: dict[str, Any]) -> None:
    sock: socket.socket | None = environ.get("werkzeug.socket")
    if sock is None:
        return
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN: a real "connection reset".
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


TLS_DIR = Path(__file__).resolve().parent / "tls"
SANDBOX_CA = TLS_DIR / "ca.pem"


def sandbox_tls() -> ssl.SSLContext:
    """Server-side TLS for the simulators, with the bundled sandbox certificate (see tls/README.md)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_DIR / "server.pem", TLS_DIR / "server.key")
    return context


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: the middleware keeps its own record, and benchmarks stay quiet."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class SandboxServer:
    """Serves a WSGI app on loopback in a background thread; use as a context manager."""

    def __init__(self, app: WSGIApp, *, host: str = "127.0.0.1", port: int = 0, steady: Steady | None = None,
                 error_body: Callable[[int], Any] | None = None, ssl_context: Any = None):
        self.faults = FaultMiddleware(app, steady, error_body)
        self._server: BaseWSGIServer = make_server(host, port, self.faults, threaded=True, ssl_context=ssl_context,
                                                   request_handler=_QuietHandler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        scheme = "https" if ssl_context else "http"
        self.base_url = f"{scheme}://{host}:{self._server.server_port}"

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
