"""Running simulators and syncs for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.loop.run import RunResult, sync
from connector.sandbox.jira import JiraSimulator, make_jira_server
from connector.sandbox.server import SandboxServer, Steady
from connector.sandbox.servicenow import ServiceNowSimulator, make_servicenow_server
from connector.sandbox.world import World, build_world
from connector.store import Store
from tests.conftest import jira_system, load_config, servicenow_system, write_config

ANCHOR = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@dataclass
class Site:
    """A running simulator of one kind, with the config entry that points at it."""

    kind: str
    sim: Any
    server: SandboxServer

    def system(self, **extra: Any) -> dict[str, Any]:
        if self.kind == "servicenow":
            return servicenow_system(self.server.base_url, **extra)
        default = "jira-data-center" if self.sim.mode == "datacenter" else "jira-service-management"
        return jira_system(self.server.base_url, **{"mapping": default, **extra})

    def ident(self, seq: int) -> str:
        """The id the simulator's Python API takes for the world's ticket number `seq`."""
        return self.sim.world.tickets[seq - 1].id if self.kind == "servicenow" else f"ITSD-{seq}"

    def ticket_id(self, seq: int) -> str:
        """The ticket id vloop stores for the world's ticket `seq`."""
        if self.kind == "servicenow":
            return self.sim.world.tickets[seq - 1].id
        return str(self.sim.issue(f"ITSD-{seq}")["id"])

    def requests(self, path: str = "") -> int:
        return self.server.faults.count(path)


def world(tickets: int, seed: int = 3, anchor: datetime = ANCHOR) -> World:
    return build_world(tickets=tickets, seed=seed, anchor=anchor, days=20)


@contextmanager
def site(kind: str, w: World, *, steady: Steady | None = None, **options: Any) -> Iterator[Site]:
    if kind == "servicenow":
        sim: Any = ServiceNowSimulator(w, **options)
        server = make_servicenow_server(sim, steady=steady)
    else:
        sim = JiraSimulator(w, **options)
        server = make_jira_server(sim, steady=steady)
    with server:
        yield Site(kind, sim, server)


def run_sync(folder: Path, state: str, systems: dict[str, dict[str, Any]], **kwargs: Any) -> RunResult:
    loaded = load_config(write_config(folder, state, systems))
    store = Store.open(loaded.config.state)
    try:
        return sync(loaded, store, **kwargs)
    finally:
        store.close()


def resolved_keys(w: World, kind: str, s: Site, since: datetime) -> set[str]:
    return {s.ticket_id(t.seq) for t in w.tickets if t.resolved_at is not None and t.resolved_at >= since}


def invitation_rows(url: str) -> list[dict[str, Any]]:
    """Every invitation row in the state store at `url`."""
    from sqlalchemy import select

    from connector.store.schema import invitations

    store = Store.open(url)
    with store.engine.connect() as conn:
        out = [dict(r) for r in conn.execute(select(invitations)).mappings()]
    store.close()
    return out
