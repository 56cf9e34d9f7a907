"""Benchmark: 10,000 invitations through a local SMTP server (issue 3).

One sync run against the ServiceNow sandbox: pull 10,000 recently resolved incidents from 10,000
different people, plan one invitation each, re-check the tickets (100 per request), and mail them
over SMTP to a local aiosmtpd sink. Reports messages per second of the delivery step and SMTP
connections opened. Appends to bench/RESULTS.md.

    .venv/bin/python bench/surveys.py [--n 10000]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from connector.config import load
from connector.loop.run import sync
from connector.sandbox.servicenow import ServiceNowSimulator, make_servicenow_server
from connector.sandbox.world import build_world
from connector.store import Store

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    world = build_world(tickets=args.n, people=args.n, seed=5, anchor=now - timedelta(hours=2), days=3)
    for i, t in enumerate(world.tickets):  # every ticket resolved 2-26 hours ago, each by a different person
        t.resolved_at, t.state, t.closed_at = now - timedelta(hours=2 + i % 24), "resolved", None
        t.requester = world.people[i]
        t.category = "software"
    folder = Path(tempfile.mkdtemp(prefix="vloop-bench-surveys-"))
    sink = subprocess.Popen([sys.executable, str(HERE / "smtp_sink_proc.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    sink_port = int(sink.stdout.readline().split()[1])
    with make_servicenow_server(ServiceNowSimulator(world)) as server:
        config = folder / "vloop.yaml"
        config.write_text(yaml.safe_dump({
            "state": f"sqlite:///{folder / 'state.db'}", "secret_key": "b" * 40,
            "public_url": "https://feedback.example.com",
            "systems": {"snow": {"kind": "servicenow", "url": server.base_url, "mapping": "servicenow-incident",
                                 "auth": {"user": "vloop.integration", "password": "sandbox-password"},
                                 "pull": {"initial_lookback": "3d"}}},
            "channels": {"email": {"from": "IT Service Desk <desk@example.com>", "batch_size": 10_000,
                                   "smtp": {"host": "127.0.0.1", "port": sink_port}}},
            "surveys": {"resolved": {"kind": "csat", "send_after": "1h", "exclude": {"requester_is_assignee": False}}},
        }))
        loaded = load(config, env={})
        store = Store.open(loaded.config.state)
        started = time.perf_counter()
        result = sync(loaded, store)
        wall = time.perf_counter() - started
        store.close()
    sink.stdin.close()
    received = int(sink.stdout.readline())
    sink.wait(timeout=30)
    delivery = result.deliveries[0]
    rate = delivery.sent / delivery.duration_s if delivery.duration_s else 0.0
    row = (f"| {args.n:,} | {delivery.sent:,} | {received:,} | {delivery.smtp_connections} | "
           f"{delivery.duration_s:.1f} | {rate:,.0f} | {wall:.1f} |")
    print(row)
    text = Path(args.out).read_text() if Path(args.out).exists() else "# Benchmark results\n"
    marker = "## Survey delivery (issue 3)"
    if marker not in text:
        text += (f"\n{marker}\n\nCommand: `.venv/bin/python bench/surveys.py`  \n"
                 f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
                 f"({platform.python_version()}), 2 cores; ServiceNow sandbox in the connector's process, aiosmtpd "
                 "sink in its own process, SQLite. Delivery = re-check tickets (100 per request), policy, "
                 "mark `sending`, SMTP, mark `sent`, per invitation.\n\n"
                 "About 6 ms per invitation, all in the connector's process (profiled with py-spy): building "
                 "the MIME message with the standard `email` package (about a third), the SMTP exchange with MAIL, "
                 "RCPT and DATA as separate steps so a lost connection is known to be before or after the data "
                 "(about a third), and two commits per invitation (`sending`, then `sent`), which keep the "
                 "duplicate window to one message. Not optimised yet.\n\n"
                 "| incidents | sent | received by the sink | SMTP connections | delivery s | messages/s "
                 "| whole sync s |\n|---|---|---|---|---|---|---|\n")
    Path(args.out).write_text(text.rstrip("\n") + "\n" + row + "\n")
    return 0 if delivery.sent == received == args.n and delivery.smtp_connections == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
