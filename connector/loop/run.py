"""One sync run across the configured systems: lock, ledger, and (at this stage) the pull step."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from connector.config import Loaded
from connector.loop.bounces import BounceReport, read_bounces
from connector.loop.collect import CollectReport, collect_native
from connector.loop.deliver import DeliveryReport, deliver_survey
from connector.loop.inner import InnerLoopReport, run_inner_loop
from connector.loop.invite import SurveyPlan, plan_survey
from connector.loop.pull import make_source, run_pull
from connector.loop.score import ScoreReport, score_responses
from connector.loop.writeback import WriteBackReport, write_back
from connector.model import SystemPull
from connector.redact import redact
from connector.store import Store
from connector.systems import Source

log = logging.getLogger("vloop.run")
DRY_RUN_EXAMPLES = 50


@dataclass(frozen=True)
class RunResult:
    run_id: int | None
    status: Literal["ok", "partial", "failed", "locked"]
    started_at: datetime
    finished_at: datetime
    systems: list[SystemPull] = field(default_factory=list)
    dry_run: bool = False
    surveys: list[SurveyPlan] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)
    collected: list[CollectReport] = field(default_factory=list)
    bounces: BounceReport | None = None
    write_backs: list[WriteBackReport] = field(default_factory=list)
    scored: ScoreReport | None = None
    inner: InnerLoopReport | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "status": self.status, "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(), "finished_at": self.finished_at.isoformat(),
            "systems": [
                {"system": s.system, "status": s.status, "pages": s.pages, "tickets": s.tickets,
                 "new_resolutions": s.new_resolutions,
                 "cursor": s.cursor_after.at.isoformat() if s.cursor_after else None,
                 "requests": s.requests, "duration_s": s.duration_s, "error": s.error}
                for s in self.systems
            ],
            "surveys": [p.as_dict() for p in self.surveys],
            "deliveries": [d.as_dict() for d in self.deliveries],
            "collected": [c.as_dict() for c in self.collected],
            "bounces": self.bounces.as_dict() if self.bounces else None,
            "write_backs": [w.as_dict() for w in self.write_backs],
            "scored": self.scored.as_dict() if self.scored else None,
            "inner_loop": self.inner.as_dict() if self.inner else None,
        }


def sync(loaded: Loaded, store: Store, *, only: str | None = None, since: datetime | None = None,
         dry_run: bool = False, now: datetime | None = None) -> RunResult:
    """Run the loop once. A failing system does not stop the others; the run is then `partial`."""
    started = (now or datetime.now(UTC)).astimezone(UTC)
    with store.lock() as acquired:
        if not acquired:
            log.warning("another sync run holds the lock; nothing done")
            return RunResult(None, "locked", started, datetime.now(UTC), dry_run=dry_run)
        run_id = store.start_run(dry_run=dry_run)
        try:
            result = _run(loaded, store, run_id, started, only=only, since=since, dry_run=dry_run)
        except Exception as exc:
            # The ledger never keeps a run `running` that is not: the next status shows what stopped it.
            with contextlib.suppress(Exception):  # the store itself may be what failed
                store.finish_run(run_id, "failed", {"error": redact(f"{type(exc).__name__}: {exc}")})
            raise
        store.finish_run(run_id, result.status, result.as_dict())
        return result


def _run(loaded: Loaded, store: Store, run_id: int, started: datetime, *, only: str | None,
         since: datetime | None, dry_run: bool) -> RunResult:
    """The steps of one run, in order; each one idempotent, so a crash anywhere resumes next time."""
    results: list[SystemPull] = []
    sources: dict[str, Source] = {}
    for name, system in loaded.config.systems.items():
        if (only and name != only) or not system.enabled:
            continue
        log.info("%s: pulling resolved tickets", name)
        source = make_source(name, system, loaded.mappings[name])
        results.append(run_pull(store, name, system, loaded.mappings[name], run_id, started,
                                since=since, dry_run=dry_run, source=source))
        if results[-1].status == "ok":
            sources[name] = source
    wanted = {n: s for n, s in loaded.config.surveys.items()
              if not only or s.systems is None or only in s.systems}
    outbound = {n: s for n, s in wanted.items() if s.channel != "native"}
    overlaps = {n: s.pull.overlap for n, s in loaded.config.systems.items()}
    collected = [] if dry_run else [
        report for survey_name, survey in wanted.items() if survey.channel == "native"
        for report in collect_native(store, survey_name, survey, sources, overlaps, started)]
    email = loaded.config.channels.email
    bounces = read_bounces(store, email.bounce_maildir, started) if (
        email is not None and email.bounce_maildir and not dry_run) else None
    plans = []
    for survey_name, survey in outbound.items():
        if survey.trigger != "resolution":
            continue  # recovery surveys are invited by the inner loop when a follow-up closes
        plans.append(plan_survey(store, survey_name, survey, loaded.config, started, dry_run=dry_run,
                                 keep_examples=DRY_RUN_EXAMPLES if dry_run else 0))
    deliveries = [] if dry_run else [
        deliver_survey(store, survey_name, survey, loaded.config, sources, started)
        for survey_name, survey in outbound.items()]
    scored = None if dry_run else score_responses(store, loaded, started)
    written = [] if dry_run else [
        write_back(store, name, source, spec, loaded.config, started)
        for name, source in sources.items() if (spec := loaded.mappings[name].write_back) is not None]
    inner = None if dry_run or loaded.config.inner_loop is None else run_inner_loop(
        store, loaded.config, sources, started, loaded.mappings)
    failed = sum(1 for r in results if r.status != "ok")
    status: Literal["ok", "partial", "failed"] = (
        "ok" if not failed else "failed" if failed == len(results) else "partial")
    if status == "ok" and (any(c.error for c in collected) or (bounces and bounces.error)
                           or any(w.failed for w in written) or (inner and inner.failed)):
        status = "partial"  # the tickets are in; answers, bounce reports or write-backs are not all done
    return RunResult(run_id, status, started, datetime.now(UTC), results, dry_run, plans, deliveries,
                     collected, bounces, written, scored, inner)
