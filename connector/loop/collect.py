"""Step: collect the answers of the systems' own satisfaction surveys (surveys with `channel: native`).

For sites that already survey natively (JSM's Satisfaction rating, a ServiceNow survey on resolved
incidents), the answers become responses like those given on the survey page, so scores, write-back and
follow-ups work on them too. Each system and survey has its own cursor (stream `native:<survey>`),
moved with the answers it covers in one transaction; the overlap re-reads the last minutes, and an
answer read twice is stored once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.config import SurveyConfig
from connector.errors import VloopError
from connector.store import Store
from connector.store.surveys import SurveyStore
from connector.surveys.definitions import scale
from connector.systems import Source

log = logging.getLogger("vloop.collect")


@dataclass
class CollectReport:
    survey: str
    system: str
    new: int = 0
    changed: int = 0
    unknown_ticket: int = 0
    out_of_scale: int = 0
    error: str | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"survey": self.survey, "system": self.system, "new": self.new, "changed": self.changed,
                "unknown_ticket": self.unknown_ticket, "out_of_scale": self.out_of_scale, "error": self.error,
                "duration_s": self.duration_s}


def collect_native(store: Store, name: str, survey: SurveyConfig, sources: dict[str, Source],
                   overlaps: dict[str, Any], now: datetime) -> list[CollectReport]:
    """Collect one native survey from every connected system it covers; a failing system is reported."""
    reports = []
    for system, source in sources.items():
        if survey.systems is not None and system not in survey.systems:
            continue
        report = CollectReport(name, system)
        started = time.monotonic()
        try:
            _collect(store, name, survey, system, source, overlaps[system], now, report)
        except VloopError as exc:
            log.error("%s: collecting survey %s failed: %s", system, name, exc)
            report.error = str(exc)
        report.duration_s = round(time.monotonic() - started, 3)
        reports.append(report)
    return reports


def _collect(store: Store, name: str, survey: SurveyConfig, system: str, source: Source, overlap: Any,
             now: datetime, report: CollectReport) -> None:
    cursor = store.cursor(system, f"native:{name}")
    since = cursor.at - overlap if cursor else now - survey.native.since
    valid = scale(survey.kind).values()
    answers_store = SurveyStore(store.engine)
    for page in source.pull_native(since, survey.native):
        answers = [a for a in page.answers if a.score in valid]
        report.out_of_scale += len(page.answers) - len(answers)
        counts = answers_store.record_native(name, system, answers, page.last, survey.default_language, now)
        report.new += counts.new
        report.changed += counts.changed
        report.unknown_ticket += counts.unknown_ticket
    if report.out_of_scale:
        log.warning("%s: %d answers of survey %s lie outside the %s scale and were skipped; check "
                    "native.metric", system, report.out_of_scale, name, survey.kind)
