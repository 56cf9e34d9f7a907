"""`vloop sandbox servicenow|jira`: serve a simulator until interrupted."""

from __future__ import annotations

import contextlib
from typing import Literal

from connector.sandbox.server import SANDBOX_CA, SandboxServer, Steady
from connector.sandbox.world import build_world


def start_simulator(kind: Literal["servicenow", "jira"] | str, *, host: str = "127.0.0.1", port: int = 0,
                    tickets: int = 500, seed: int = 1, latency_ms: float = 0.0, fail_rate: float = 0.0,
                    rate_limit: float = 0.0, mode: str = "cloud", tls: bool = False) -> tuple[object, SandboxServer]:
    """Build the world and the simulator; return both (server not yet started)."""
    world = build_world(tickets=tickets, seed=seed)
    steady = Steady(latency_ms=latency_ms, fail_rate=fail_rate, rate_limit=rate_limit, seed=seed)
    if kind == "servicenow":
        from connector.sandbox.servicenow import ServiceNowSimulator, make_servicenow_server

        sn = ServiceNowSimulator(world)
        return sn, make_servicenow_server(sn, host=host, port=port, steady=steady, tls=tls)
    from connector.sandbox.jira import JiraSimulator, make_jira_server

    jira = JiraSimulator(world, mode=mode)  # type: ignore[arg-type]
    return jira, make_jira_server(jira, host=host, port=port, steady=steady, tls=tls)


def serve(kind: str, **options: object) -> None:
    _sim, server = start_simulator(kind, **options)  # type: ignore[arg-type]
    creds = ("user vloop.integration, password sandbox-password" if kind == "servicenow"
             else "email vloop@example.com, API token sandbox-token")
    trust = f"; trust {SANDBOX_CA} (http.ca_bundle)" if options.get("tls") else ""
    print(f"{kind} sandbox on {server.base_url} ({creds}{trust}); Ctrl-C stops it", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
