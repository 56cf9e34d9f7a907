"""Step 3 of the loop (gather): pull resolved tickets from one system into the state store.

Pages are fetched on a background thread while the previous page is stored, so wall time stays close
to the HTTP lower bound. Each page is stored together with the cursor in one transaction; the cursor
never passes the run's start minus the safety lag, and never moves backwards.
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from connector import failpoints
from connector.config import JiraSystem, ServiceNowSystem
from connector.errors import ResponseError, VloopError
from connector.mapping import Mapping, MappingValueError, to_ticket
from connector.model import Cursor, SystemPull, Ticket
from connector.store import Store
from connector.systems import RawPage, Source

log = logging.getLogger("vloop.pull")
T = TypeVar("T")
_DONE = object()
# A commit rewrites every B-tree page the batch touched; with random keys (sys_id, issue id) that is
# most index pages, so committing every few thousand rows (pull.commit_every) instead of every page
# saves most of that work. Time-bound too, so a slow system still makes durable progress.
COMMIT_SECONDS = 5.0


@contextmanager
def tuned_for_bulk_pull(switch_interval_s: float = 0.0005) -> Iterator[None]:
    """Interpreter settings for a long pull, measured with bench/pull.py.

    - GIL hand-over every 0.5 ms instead of 5 ms: the fetching thread waits on the network and needs
      the interpreter only briefly per page, but queued behind the storing thread it lost up to 5 ms
      per page (100k Jira issues: 30.4 s -> 28.5 s).
    - Young-generation collections every 50,000 allocations instead of 700: pulled records are plain
      dicts and frozen objects without cycles (100k ServiceNow incidents: 7.6 s -> 7.0 s).
    """
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(switch_interval_s)
    gc.set_threshold(50_000, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate `items` on a worker thread, `depth` ahead; exceptions surface at the same position."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:
            slots.put(exc)

    worker = threading.Thread(target=work, name="vloop-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)


def make_source(name: str, config: ServiceNowSystem | JiraSystem, mapping: Mapping) -> Source:
    if isinstance(config, ServiceNowSystem):
        from connector.systems.servicenow import ServiceNowSource

        return ServiceNowSource(name, config, mapping)
    from connector.systems.jira import JiraSource

    return JiraSource(name, config, mapping)


@dataclass
class PullPlan:
    since: datetime
    signpost: Cursor
    previous: Cursor | None


def plan(store: Store, name: str, config: ServiceNowSystem | JiraSystem, started: datetime,
         since: datetime | None = None) -> PullPlan:
    """Where to start: `--since`, else the stored cursor minus the overlap, else the initial lookback."""
    previous = store.cursor(name)
    if since is None:
        since = (previous.at - config.pull.overlap) if previous else (started - config.pull.initial_lookback)
    return PullPlan(since=since, signpost=Cursor(started - config.pull.safety_lag, ""), previous=previous)


@dataclass
class PullProgress:
    pages: int = 0
    tickets: int = 0
    new_resolutions: int = 0
    cursor: Cursor | None = None
    mapping_errors: list[str] = field(default_factory=list)


def tickets_of(source: Source, name: str, page: RawPage) -> list[Ticket]:
    mapping = getattr(source, "resolved_mapping", source.mapping)
    out = []
    for record in page.records:
        try:
            out.append(to_ticket(mapping, name, record))
        except MappingValueError as exc:
            ident = record.get("number") or record.get("key") or record.get("sys_id") or record.get("id")
            raise ResponseError(name, f"record {ident}", f"cannot be mapped: {exc}",
                                hint="fix the mapping (docs/mappings.md); the cursor stays before this record"
                                ) from None
    return out


def pull_system(store: Store, name: str, source: Source, pull_plan: PullPlan, run_id: int | None, *,
                dry_run: bool = False, commit_every: int = 5000,
                on_page: Callable[[PullProgress], None] | None = None) -> PullProgress:
    """Pull every page into the store; raise VloopError when the system fails (cursor stays safe).

    Pages are committed together with their cursor once `commit_every` tickets or COMMIT_SECONDS have
    gathered (and at the end): a page that fails to arrive was never part of a commit, so the stored
    cursor always sits on the last ticket stored.
    """
    progress = PullProgress(cursor=pull_plan.previous)
    source.connect()
    pending: list[Ticket] = []
    pending_cursor: Cursor | None = None
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal pending, last_commit
        if pending and not dry_run:
            progress.new_resolutions += store.save_page(name, pending, pending_cursor, run_id)
            failpoints.hit("pull.page_stored")
        pending, last_commit = [], time.monotonic()

    with tuned_for_bulk_pull():
        # Fetch far enough ahead to keep the network busy through a commit: about one commit's worth.
        depth = max(2, -(-commit_every // max(1, getattr(source, "page_size", commit_every))))
        for page in prefetch(source.pull_resolved(pull_plan.since), depth=min(depth, 64)):
            tickets = tickets_of(source, name, page)
            failpoints.hit("pull.page_fetched")
            pending += tickets
            pending_cursor = _next_cursor(pending_cursor or progress.cursor, page.last, pull_plan.signpost)
            if len(pending) >= commit_every or time.monotonic() - last_commit >= COMMIT_SECONDS:
                commit()
                progress.cursor = pending_cursor
            progress.pages += 1
            progress.tickets += len(tickets)
            if on_page is not None:
                on_page(progress)
        commit()
    progress.cursor = pending_cursor or progress.cursor
    return progress


def _next_cursor(current: Cursor | None, last: Cursor | None, signpost: Cursor) -> Cursor | None:
    if last is None:
        return current
    capped = min(last, signpost)
    return capped if current is None or capped > current else current


def run_pull(store: Store, name: str, config: ServiceNowSystem | JiraSystem, mapping: Mapping, run_id: int | None,
             started: datetime, *, since: datetime | None = None, dry_run: bool = False,
             source: Source | None = None) -> SystemPull:
    """Pull one system, recording the step in the run ledger; failures are reported, not raised."""
    pull_plan = plan(store, name, config, started, since)
    source = source or make_source(name, config, mapping)
    if run_id is not None:
        store.start_step(run_id, name, "pull")
    t0 = time.monotonic()
    progress = PullProgress(cursor=pull_plan.previous)

    def remember(p: PullProgress) -> None:
        nonlocal progress
        progress = p

    status, error = "ok", None
    try:
        progress = pull_system(store, name, source, pull_plan, run_id, dry_run=dry_run,
                               commit_every=config.pull.commit_every, on_page=remember)
    except VloopError as exc:
        status, error = "failed", str(exc)
        log.error("%s", exc)
    if run_id is not None:
        store.finish_step(run_id, name, "pull", status=status, pages=progress.pages, records=progress.tickets,
                          new_resolutions=progress.new_resolutions, error=error)
    return SystemPull(system=name, status="ok" if status == "ok" else "failed", pages=progress.pages,
                      tickets=progress.tickets, new_resolutions=progress.new_resolutions,
                      cursor_before=pull_plan.previous, cursor_after=progress.cursor, error=error,
                      duration_s=round(time.monotonic() - t0, 3), requests=source.requests_sent)
