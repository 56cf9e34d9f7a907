"""One simulator server per test module; each test swaps in its own simulator behind it
(stopping a server waits out its 0.5 s poll interval). A module sets ERROR_BODY for its system's
error envelope on injected faults; the default is Jira's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connector.sandbox.jira import jira_error_body
from connector.sandbox.server import SandboxServer


class CurrentSimulator:
    """Forwards to the current test's simulator (any WSGI callable)."""

    sim: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.sim is not None
        return self.sim(environ, start_response)


@pytest.fixture(scope="module")
def shared_server(request: pytest.FixtureRequest) -> Iterator[tuple[SandboxServer, CurrentSimulator]]:
    current = CurrentSimulator()
    with SandboxServer(current, error_body=getattr(request.module, "ERROR_BODY", jira_error_body)) as srv:
        yield srv, current
