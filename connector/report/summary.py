"""Human and JSON summaries for `vloop sync`, `vloop status` and the demo."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connector.analytics.metrics import LoopMetrics
from connector.loop.run import RunResult
from connector.store import SystemStatus


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def format_run(result: RunResult) -> str:
    if result.status == "locked":
        return "Another sync run is in progress; this one did nothing."
    head = f"Sync run {result.run_id}: {result.status}" + (" (dry run: nothing stored)" if result.dry_run else "")
    lines = [head]
    for s in result.systems:
        cursor = _when(s.cursor_after.at) if s.cursor_after else "none"
        lines.append(f"  {s.system:<12} {s.status:<6} {s.tickets:>7} tickets in {s.pages} pages, "
                     f"{s.new_resolutions} new resolutions, cursor {cursor}, {s.requests} requests, "
                     f"{s.duration_s:.1f}s")
        if s.error:
            lines.append(f"  {'':<12} error: {s.error}")
    for c in result.collected:
        line = f"  survey {c.survey}: {c.new} native answers collected from {c.system}, {c.changed} changed"
        skipped = [f"{c.unknown_ticket} about tickets not pulled" if c.unknown_ticket else "",
                   f"{c.out_of_scale} outside the scale" if c.out_of_scale else ""]
        lines.append(line + "".join(f", {s} skipped" for s in skipped if s))
        if c.error:
            lines.append(f"    error: {c.error}")
    for plan in result.surveys:
        verb = "would be planned" if result.dry_run else "planned"
        suppressed = sum(plan.suppressed.values())
        lines.append(f"  survey {plan.survey}: {plan.pending} invitations {verb}, {suppressed} suppressed")
        for reason, count in plan.suppressed.most_common():
            lines.append(f"    {count:>6}  {reason}")
        for item in plan.examples:
            what = "survey" if item.decision.action != "suppress" else "skip"
            lines.append(f"    {what:<6} {item.system}/{item.ticket_number} ({item.language}): {item.decision.reason}")
    if result.bounces is not None:
        b = result.bounces
        lines.append(f"  bounces: {b.reports} reports read, {b.invitations_failed} invitations failed, "
                     f"{b.addresses} addresses no longer mailed" + (f"; error: {b.error}" if b.error else ""))
    for d in result.deliveries:
        lines.append(f"  survey {d.survey}: {d.sent} sent, {d.reminded} reminded, {d.retry} to retry, "
                     f"{d.failed} failed, {d.cancelled} cancelled (reopened), "
                     f"{sum(d.suppressed.values())} suppressed at send time, {d.expired} expired unanswered")
        if d.skipped_systems:
            lines.append(f"    not sent for {', '.join(d.skipped_systems)}: the tickets could not be re-checked")
    if result.inner is not None:
        i = result.inner
        lines.append(f"  inner loop: {i.detractors} new unhappy answers, {i.created} follow-ups created, "
                     f"{i.closed} closed ({i.resurveyed} re-surveyed), {i.failed} to retry")
        if i.metrics is not None:
            lines.append("    " + loop_line(i.metrics))
    for w in result.write_backs:
        lines.append(f"  write-back {w.system}: {w.written} tickets updated, {w.notes} notes added, "
                     f"{w.failed} to retry")
        for error, count in w.errors.most_common(3):
            lines.append(f"    {count:>6}  {error}")
    return "\n".join(lines)


def loop_line(m: LoopMetrics) -> str:
    """The loop metrics in one line: followed up, time to follow-up, closed, on time."""
    def pct(e: Any) -> str:
        return "n/a" if e is None or e.value is None else f"{e.value:.0f}%"

    def hours(t: Any) -> str:
        return "n/a" if t.value is None else f"{t.value.total_seconds() / 3600:.1f} h"

    return (f"{m.detractors} detractors: {pct(m.follow_up_rate)} followed up "
            f"(median {hours(m.median_time_to_follow_up)}), {pct(m.closure_rate)} closed "
            f"(median {hours(m.median_time_to_close)}), {pct(m.on_time_rate)} on time, "
            f"{pct(m.recovery_rate)} recovered")


def status_dict(statuses: Sequence[SystemStatus], last_run: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "systems": [{
            "system": s.system,
            "cursor": {"at": s.cursor.at.isoformat(), "id": s.cursor.id} if s.cursor else None,
            "tickets": s.tickets, "resolutions": s.resolutions,
            "last_run": {"id": s.last_run_id, "status": s.last_run_status,
                         "at": s.last_run_at.isoformat() if s.last_run_at else None, "error": s.last_error}
            if s.last_run_id else None,
        } for s in statuses],
        "last_run": {"id": last_run["id"], "status": last_run["status"],
                     "started_at": last_run["started_at"].isoformat(),
                     "finished_at": last_run["finished_at"].isoformat() if last_run["finished_at"] else None}
        if last_run else None,
    }


def format_status(statuses: Sequence[SystemStatus], last_run: dict[str, Any] | None) -> str:
    lines = [f"{'system':<12} {'cursor':<24} {'tickets':>8} {'resolutions':>12}  last run"]
    for s in statuses:
        cursor = _when(s.cursor.at) if s.cursor else "none"
        run = f"#{s.last_run_id} {s.last_run_status} at {_when(s.last_run_at)}" if s.last_run_id else "never"
        lines.append(f"{s.system:<12} {cursor:<24} {s.tickets:>8} {s.resolutions:>12}  {run}")
        if s.last_error:
            lines.append(f"{'':<12} last error: {s.last_error}")
    if last_run:
        lines.append(f"Last sync run #{last_run['id']}: {last_run['status']}, started {_when(last_run['started_at'])}")
    return "\n".join(lines)
