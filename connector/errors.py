"""Exceptions, grouped by what the operator has to do.

    VloopError
    ├── ConfigError            fix the YAML or provide the secret; exit code 2
    ├── SystemError_           a system (ServiceNow / Jira) refused or failed; names the request and the fix
    │   ├── AuthError              401/403: check the integration user's credentials and roles
    │   ├── RequestError           400/404/410 and other non-retryable answers: fix the query, mapping or URL
    │   ├── TransientError         429/5xx/timeouts that outlived the retry budget: run again later
    │   └── ResponseError          the system answered something we cannot read (malformed JSON)
    └── StateError             the state store cannot be opened or migrated

Every message is already redacted: it never carries a secret, a token or an Authorization header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class VloopError(Exception):
    """Base of every error vloop raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config or mapping file, printed as `file:line: key.path: what is wrong`."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(VloopError):
    """The configuration cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SystemError_(VloopError):
    """A configured system failed. `system` is its name in the config; `request` is sanitised."""

    hint = "see the message above"

    def __init__(self, system: str, request: str, detail: str, *, status: int | None = None,
                 hint: str | None = None):
        self.system = system
        self.request = request
        self.detail = detail
        self.status = status
        self.hint = hint or self.hint
        code = f" HTTP {status}" if status else ""
        super().__init__(f"{system}: {request}:{code} {detail} — {self.hint}")


class AuthError(SystemError_):
    hint = "check the integration user's credentials, roles and ACLs (docs/security.md)"


class RequestError(SystemError_):
    hint = "fix the query, mapping or URL named here; retrying will not help"


class TransientError(SystemError_):
    hint = "the system is overloaded or unreachable; the next run resumes from the stored cursor"


class ResponseError(SystemError_):
    hint = "the system answered something that is not the documented API; check the URL and any proxy"


class StateError(VloopError):
    """The state store cannot be opened or migrated."""
