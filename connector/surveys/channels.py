"""Delivery channels: how one invitation reaches a person. Each `send` answers sent / retry / rejected.

- email: the invitation mail over the batch's one SMTP connection (connector/surveys/email.py);
- comment: a customer-visible comment on the ticket carrying the link, for sites where email addresses
  are hidden or the ITSM tool sends the mail (ServiceNow `comments`, a public JSM request comment);
- webhook: a JSON POST signed with HMAC-SHA256, for sites that deliver through their own tools.
  Receivers get an `Idempotency-Key` per invitation, since a retried POST may arrive twice.

`delivered_before` answers, for an invitation whose earlier send had an unclear outcome (a crash or a
timeout after the request left), whether it did arrive; only the comment channel can look.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self

from connector.config import EmailChannel, SurveyConfig, WebhookChannel
from connector.errors import RequestError, SystemError_, TransientError
from connector.http import Caller
from connector.surveys.comment import comment_body, marker
from connector.surveys.email import MailInvitation, SendResult, SmtpSender, SmtpSettings, build_message, message_id
from connector.surveys.tokens import SurveyTokens
from connector.systems import Source

log = logging.getLogger("vloop.deliver")


@dataclass(frozen=True)
class Links:
    """Signed links for one invitation, built from the configured public URL (never a Host header)."""

    tokens: SurveyTokens
    base: str

    def for_invitation(self, invitation_id: int) -> tuple[str, str]:
        token = self.tokens.sign(invitation_id)
        return f"{self.base}/s/{token}", f"{self.base}/optout/{token}"


class Delivery(Protocol):
    def __enter__(self) -> Delivery: ...

    def __exit__(self, *exc: object) -> None: ...

    def send(self, row: dict[str, Any], *, reminder: bool = False) -> tuple[SendResult, str | None]:
        """Deliver one invitation row; returns the outcome and a message id when there is one."""

    @property
    def connections(self) -> int: ...

    def delivered_before(self, row: dict[str, Any]) -> str | None:
        """The reference of an earlier delivery of this invitation that did arrive, if it can be seen."""


def smtp_settings(channel: EmailChannel) -> SmtpSettings:
    o = channel.smtp
    return SmtpSettings(host=o.host, port=o.port, security=o.security, username=o.username,
                        password=o.password.get_secret_value() if o.password else None, timeout=o.timeout,
                        ca_bundle=o.ca_bundle)


class EmailDelivery:
    def __init__(self, channel: EmailChannel, survey: SurveyConfig, links: Links, smtp: SmtpSender | None = None):
        self.channel, self.survey, self.links = channel, survey, links
        self.domain = channel.domain or channel.sender.rsplit("@", 1)[-1].strip(" >")
        self.smtp = smtp or SmtpSender(smtp_settings(channel))

    def __enter__(self) -> EmailDelivery:
        self.smtp.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.smtp.__exit__(None, None, None)

    @property
    def connections(self) -> int:
        return self.smtp.connections_opened

    def delivered_before(self, row: dict[str, Any]) -> str | None:
        return None  # a relay's acceptance cannot be looked up afterwards

    def send(self, row: dict[str, Any], *, reminder: bool = False) -> tuple[SendResult, str | None]:
        survey_url, optout_url = self.links.for_invitation(row["id"])
        mail = MailInvitation(invitation_id=row["id"], to_address=row["email"], to_name=row["person_name"],
                              language=row["language"], kind=self.survey.kind, ticket_number=row["number"] or "",
                              ticket_title=row["title"] or "", survey_url_base=survey_url, optout_url=optout_url,
                              reminder=reminder)
        message = build_message(mail, sender=self.channel.sender, domain=self.domain)  # ValueError: bad data
        return self.smtp.send(message), message_id(message)


class _Connectionless:
    """Channels that hold no connection across a batch: entering and leaving cost nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def connections(self) -> int:
        return 0


class WebhookDelivery(_Connectionless):
    def __init__(self, channel: WebhookChannel, survey_name: str, survey: SurveyConfig, links: Links,
                 caller: Caller | None = None):
        self.channel, self.survey_name, self.survey, self.links = channel, survey_name, survey, links
        self.caller = caller or Caller("webhook", channel.http)
        self.secret = channel.secret.get_secret_value().encode()
        self.sent = 0

    def delivered_before(self, row: dict[str, Any]) -> str | None:
        return None  # receivers dedupe on the Idempotency-Key instead

    def payload(self, row: dict[str, Any], reminder: bool) -> dict[str, Any]:
        survey_url, optout_url = self.links.for_invitation(row["id"])
        return {
            "type": "reminder" if reminder else "invitation", "invitation_id": row["id"],
            "survey": self.survey_name, "kind": self.survey.kind, "language": row["language"],
            "system": row["system"], "ticket": {"id": row["ticket_id"], "number": row["number"], "title": row["title"]},
            "resolved_at": _iso(row["resolved_at"]),
            "person": {"key": row["person_key"], "email": row["email"], "name": row["person_name"]},
            "survey_url": survey_url, "score_url": f"{survey_url}?score={{score}}", "optout_url": optout_url,
        }

    def signature(self, timestamp: str, body: bytes) -> str:
        digest = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return f"sha256={digest}"

    def send(self, row: dict[str, Any], *, reminder: bool = False) -> tuple[SendResult, str | None]:
        body = json.dumps(self.payload(row, reminder), separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        key = f"vloop-{self.survey_name}-{row['id']}" + ("-reminder" if reminder else "")
        headers = {"Content-Type": "application/json", "X-Vloop-Timestamp": timestamp,
                   "X-Vloop-Signature": self.signature(timestamp, body), "Idempotency-Key": key}
        try:
            self.caller.request("POST", str(self.channel.url), data=body, headers=headers, ok=_ANY_2XX)
        except TransientError as exc:  # a timeout may come after the receiver took it
            return SendResult("retry", str(exc), uncertain=True), None
        except (RequestError, SystemError_) as exc:
            return SendResult("rejected", str(exc)), None
        return SendResult("sent", "accepted"), key


class CommentDelivery(_Connectionless):
    """Posts the invitation as a comment the customer sees, through the ticket's own system."""

    def __init__(self, sources: dict[str, Source], survey_name: str, survey: SurveyConfig, links: Links):
        self.sources, self.survey_name, self.survey, self.links = sources, survey_name, survey, links

    def send(self, row: dict[str, Any], *, reminder: bool = False) -> tuple[SendResult, str | None]:
        source = self.sources.get(row["system"])
        if source is None:
            return SendResult("retry", f"system {row['system']} is not part of this run"), None
        reference = marker(self.survey_name, row["id"], int(row["reminders_sent"] or 0) + 1 if reminder else 0)
        survey_url, optout_url = self.links.for_invitation(row["id"])
        body = comment_body(language=row["language"], kind=self.survey.kind, ticket_number=row["number"] or "",
                            survey_url=survey_url, optout_url=optout_url, reference=reference, reminder=reminder)
        try:
            source.post_comment(row["ticket_id"], body)
        except TransientError as exc:  # the write is never replayed blindly, so this may be after it landed
            return SendResult("retry", str(exc), uncertain=True), None
        except SystemError_ as exc:
            return SendResult("rejected", str(exc)), None
        return SendResult("sent", "comment added"), reference

    def delivered_before(self, row: dict[str, Any]) -> str | None:
        source = self.sources.get(row["system"])
        if source is None:
            return None
        reference = marker(self.survey_name, row["id"])
        try:
            return reference if source.find_comment(row["ticket_id"], reference) else None
        except SystemError_ as exc:
            # Unknown: sending again risks one duplicate comment, not sending risks none at all.
            log.warning("%s: cannot check for an earlier survey comment on %s: %s", row["system"],
                        row["number"] or row["ticket_id"], exc)
            return None


_ANY_2XX = tuple(range(200, 300))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
