"""Step: read the bounce reports that arrived since the last run (channels.email.bounce_maildir).

Each permanent failure marks its invitation `failed` with the report's reason (found by the Message-ID
the report quotes) and remembers the address, so later surveys to it are suppressed with a reason
instead of bouncing again. A report is marked seen only after what it says is committed: a crash
re-reads it, and reading it twice changes nothing.
"""

from __future__ import annotations

import logging
import mailbox
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.store import Store
from connector.store.surveys import SurveyStore
from connector.surveys.bounces import read_reports

log = logging.getLogger("vloop.bounces")


@dataclass
class BounceReport:
    reports: int = 0  # delivery status notifications read
    other: int = 0  # mail in the folder that is not a failure report (out-of-office, delays)
    invitations_failed: int = 0
    addresses: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"reports": self.reports, "other": self.other, "invitations_failed": self.invitations_failed,
                "addresses": self.addresses, "error": self.error}


def read_bounces(store: Store, maildir: str, now: datetime) -> BounceReport:
    report = BounceReport()
    surveys = SurveyStore(store.engine)
    try:
        for bounces, seen in read_reports(maildir):
            if not bounces:
                report.other += 1
            else:
                report.reports += 1
            for bounce in bounces:
                reason = f"bounced: {bounce.diagnostic}"
                if bounce.original_message_id and surveys.fail_bounced(bounce.original_message_id, reason, now):
                    report.invitations_failed += 1
                if bounce.address_failed:
                    surveys.add_bounce(bounce.address, bounce.status, bounce.diagnostic, "dsn", now)
                    report.addresses += 1
            seen()
    except (OSError, mailbox.Error) as exc:  # missing folder, permissions
        report.error = f"cannot read the bounce Maildir {maildir}: {exc}"
        log.error("%s", report.error)
    return report
