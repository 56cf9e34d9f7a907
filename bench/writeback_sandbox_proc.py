"""A simulator in its own process for bench/writeback.py: N writable tickets, the vloop score fields, fixed latency.

Usage: python bench/writeback_sandbox_proc.py servicenow|jira N LATENCY_MS IDS_FILE → writes the N ticket ids
(sys_ids, or Jira numeric issue ids) to IDS_FILE as JSON, prints "PORT <port>" and then answers one command
per stdin line with one JSON line, until stdin closes. The commands travel over the pipe, not HTTP, so they
never show in the request counts:

    reset          forget the request log (call before a measured phase)
    stats          requests served since the reset, by method and path shape, and this process's CPU seconds
    verify FILE    compare the simulator's own state with FILE ({ticket id: [score, band, note reference or
                   null]}): values written, and each reference in exactly one internal note of that ticket

ServiceNow: every incident is resolved (not closed, whose fields the ACLs protect) and the incident table
gains u_vloop_score (integer) and u_vloop_band (string). Jira Cloud: the API user administers the project
(so notifyUsers=false is accepted) and the site has the number field "Customer score" and the text field
"Customer band".
"""

from __future__ import annotations

import gc
import json
import re
import resource
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.sandbox.server import SandboxServer, Steady
from connector.sandbox.world import build_world

SHAPE = re.compile(r"/(?:[0-9a-f]{32}|\d+)(?=/|$)")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stats(server: SandboxServer) -> dict[str, Any]:
    with server.faults._lock:
        records = list(server.faults.requests)
    shapes = Counter(f"{r.method} {SHAPE.sub('/<id>', r.path)}" for r in records)
    statuses = Counter(str(r.status) for r in records)
    return {"requests": len(records), "by": dict(shapes), "statuses": dict(statuses), "cpu_s": round(cpu_s(), 2)}


class ServiceNowSide:
    def __init__(self, n: int, steady: Steady):
        from connector.sandbox.servicenow import ServiceNowSimulator, make_servicenow_server

        anchor = datetime.now(UTC) - timedelta(hours=1)
        world = build_world(tickets=n, seed=42, anchor=anchor, days=20)
        for t in world.tickets:  # resolved, not closed: a closed incident refuses the score fields (403)
            t.resolved_at = t.resolved_at or min(anchor, t.opened_at + timedelta(hours=4))
            t.state, t.closed_at = "resolved", None
        self.sim = ServiceNowSimulator(world)
        self.sim.register_table("incident", {"u_vloop_score": "integer", "u_vloop_band": "string"})
        self.ids = [t.id for t in world.tickets]
        self.server = make_servicenow_server(self.sim, steady=steady)

    def verify(self, expected: dict[str, list[Any]]) -> dict[str, Any]:
        with self.sim._lock:
            incidents = self.sim.tables["incident"]
            notes: dict[str, list[str]] = {}
            for row in self.sim.tables["sys_journal_field"].values():
                if row["element"] == "work_notes" and "(ref vloop-wb-" in row["value"]:
                    notes.setdefault(row["element_id"], []).append(row["value"])
            wrong, bad_notes = [], []
            for ticket, (score, band, reference) in expected.items():
                row = incidents.get(ticket) or {}
                if (row.get("u_vloop_score"), row.get("u_vloop_band")) != (str(score), band):
                    wrong.append(ticket)
                if reference is not None and sum(reference in v for v in notes.get(ticket, [])) != 1:
                    bad_notes.append(ticket)
        return {"checked": len(expected), "wrong": len(wrong), "bad_notes": len(bad_notes),
                "examples": (wrong + bad_notes)[:3]}


class JiraSide:
    def __init__(self, n: int, steady: Steady):
        from connector.sandbox.jira import JiraSimulator, make_jira_server

        world = build_world(tickets=n, seed=42, anchor=datetime.now(UTC) - timedelta(hours=1), days=20)
        self.sim = JiraSimulator(world, mode="cloud", admin=True)
        self.score_field = self.sim.add_field("Customer score", "number")
        self.band_field = self.sim.add_field("Customer band", "text")
        self.ids = [str(i.num) for i in self.sim._issues]
        self.server = make_jira_server(self.sim, steady=steady)

    def verify(self, expected: dict[str, list[Any]]) -> dict[str, Any]:
        with self.sim._lock:
            wrong, bad_notes = [], []
            for ticket, (score, band, reference) in expected.items():
                issue = self.sim._get_issue(ticket)
                custom = issue.custom or {}
                value = custom.get(self.score_field)
                if value is None or float(value) != score or custom.get(self.band_field) != band:
                    wrong.append(ticket)
                if reference is not None and sum(reference in c.body for c in issue.comments or []) != 1:
                    bad_notes.append(ticket)
        return {"checked": len(expected), "wrong": len(wrong), "bad_notes": len(bad_notes),
                "examples": (wrong + bad_notes)[:3]}


def main() -> None:
    kind, n, latency, ids_file = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
    steady = Steady(latency_ms=latency)
    side = ServiceNowSide(n, steady) if kind == "servicenow" else JiraSide(n, steady)
    ids_file.write_text(json.dumps(side.ids))
    gc.collect()
    gc.freeze()  # full collections over 100k records would otherwise pause random requests
    server = side.server.start()
    print(f"PORT {server.port}", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "reset":
            server.faults.clear()
            answer: dict[str, Any] = {"ok": True}
        elif command == "stats":
            answer = stats(server)
        elif command == "verify":
            answer = side.verify(json.loads(Path(argument).read_text()))
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
