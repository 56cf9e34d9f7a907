"""Redaction of secrets wherever text leaves the process (logs, errors, reports, test output).

Config loading registers every secret value it resolves; `redact()` then masks those values and the
usual credential shapes (Authorization headers, tokens in query strings, user:password in URLs).
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SENSITIVE_PARAMS = frozenset({
    "token", "access_token", "refresh_token", "client_secret", "password", "secret", "api_key", "apikey",
    "key", "signature", "sig", "code", "jwt", "assertion",
})
_PATTERNS = (
    re.compile(r"(?i)(authorization\s*[:=]\s*)(?:basic|bearer)?\s*[^\s,;'\"}]+"),
    re.compile(r"(?i)((?:password|passwd|secret|token|client_secret|api_key)\s*[\"']?\s*[:=]\s*[\"']?)[^\s,;'\"}&]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so it is masked everywhere; very short values would mask ordinary words."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str, *, patterns: bool = True) -> str:
    """Mask registered secrets and, unless `patterns` is off, credential-looking fragments in `text`.

    Config problems are printed with `patterns=False`: they name keys such as `auth.password` and
    never echo values, so the shape rules would only garble them.
    """
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    if not patterns:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def sanitize_url(url: str) -> str:
    """Drop user:password from the netloc and mask sensitive query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, MASK if k.lower() in _SENSITIVE_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe=",^=<>@:",
    )
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True
