"""A simulator in its own process for the benchmarks: every ticket resolved, fixed latency per request.

Usage: python bench/sandbox_proc.py servicenow|jira N LATENCY_MS  → prints "PORT <port>" and serves until
stdin closes. The process also answers GET /__bench/requests with its request count.
"""

from __future__ import annotations

import gc
import json
import sys
from datetime import UTC, datetime, timedelta

from connector.sandbox.server import Steady
from connector.sandbox.world import build_world


def main() -> None:
    kind, n, latency = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    anchor = datetime.now(UTC) - timedelta(hours=1)
    world = build_world(tickets=n, seed=42, anchor=anchor, days=20)
    for t in world.tickets:  # the benchmark pulls exactly N resolved tickets
        if t.resolved_at is None:
            t.resolved_at, t.state = min(anchor, t.opened_at + timedelta(hours=4)), "resolved"
    steady = Steady(latency_ms=latency)
    if kind == "servicenow":
        from connector.sandbox.servicenow import ServiceNowSimulator, make_servicenow_server

        server = make_servicenow_server(ServiceNowSimulator(world), steady=steady)
    else:
        from connector.sandbox.jira import JiraSimulator, make_jira_server

        server = make_jira_server(JiraSimulator(world, mode="cloud"), steady=steady)
    del world
    gc.collect()
    gc.freeze()  # full collections over 100k records would otherwise pause random pages
    server.start()
    print(f"PORT {server.port}", flush=True)
    sys.stdin.read()
    print(json.dumps({"requests": server.faults.count()}), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
