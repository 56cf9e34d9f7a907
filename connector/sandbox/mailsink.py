"""A local SMTP server that keeps what it receives: the demo's and the tests' mailbox (aiosmtpd).

Like a real relay it can refuse a recipient outright (`refuse`: 550 5.1.1 at RCPT) or accept the mail
and bounce it afterwards (`bounce`): then a delivery status notification (RFC 3464) addressed to the
envelope sender is written into `dsn_maildir`, as Postfix would deliver it to the sender's mailbox.
"""

from __future__ import annotations

import logging
import mailbox
import socket
import threading
from collections.abc import Collection
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

UNKNOWN_USER = "550 5.1.1 Recipient address rejected: User unknown in local recipient table"


class _Handler:
    def __init__(self, refuse: Collection[str], bounce: Collection[str], dsn_maildir: Path | None) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.refuse = {a.lower() for a in refuse}
        self.bounce = {a.lower() for a in bounce}
        self.dsn_maildir = dsn_maildir

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return UNKNOWN_USER
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(parsed)
            bounced = [r for r in envelope.rcpt_tos if r.lower() in self.bounce]
            if bounced and self.dsn_maildir is not None:
                report = delivery_report(envelope.mail_from, bounced, envelope.content)
                mailbox.Maildir(str(self.dsn_maildir), create=True).add(report)
        return "250 Message accepted for delivery"


def delivery_report(sender: str, recipients: list[str], original: bytes) -> bytes:
    """A Postfix-style bounce: text, message/delivery-status, and the original headers."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(original, headersonly=True)
    quoted = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    boundary = "vloop-sink-dsn"
    blocks = "".join(
        f"Final-Recipient: rfc822; {r}\r\nOriginal-Recipient: rfc822; {r}\r\nAction: failed\r\n"
        f"Status: 5.1.1\r\nRemote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; {UNKNOWN_USER}\r\n\r\n"
        for r in recipients)
    text = (f"From: Mail Delivery System <MAILER-DAEMON@sink.example.net>\r\nTo: <{sender}>\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nDate: {formatdate()}\r\n"
            f"Message-ID: {make_msgid(domain='sink.example.net')}\r\nAuto-Submitted: auto-replied\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
            f" boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; sink.example.net\r\nArrival-Date: {formatdate()}\r\n\r\n{blocks}"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{quoted}\r\n"
            f"--{boundary}--\r\n")
    return text.encode()


class MailSink:
    """Listens on 127.0.0.1; `messages` holds every accepted mail, parsed."""

    def __init__(self, *, refuse: Collection[str] = (), bounce: Collection[str] = (),
                 dsn_maildir: str | Path | None = None) -> None:
        # aiosmtpd logs each protocol line from its own thread; the sink is for demos and tests.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._handler = _Handler(refuse, bounce, Path(dsn_maildir) if dsn_maildir else None)
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._handler.lock:
            return list(self._handler.messages)

    def __enter__(self) -> MailSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
