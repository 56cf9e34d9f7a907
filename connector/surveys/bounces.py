"""Bounces that arrive after the relay accepted a mail: delivery status notifications (RFC 3464).

A relay that accepts an invitation may still fail to deliver it and mail a report back to the envelope
sender. When the site delivers those reports into a Maildir (Postfix, Exim, Dovecot's LMTP all can),
`read_reports` hands over each new one, `parse_report` finds the permanently failed recipients and the
Message-ID of the invitation they were about. Out-of-office replies and other mail are skipped.
Only permanent failures (Action: failed, Status 5.x.x) count: a delayed delivery is still being tried.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, HeaderParser
from pathlib import Path

from connector.surveys.email import address_failure, clean_text, enhanced_status, mask_addresses


@dataclass(frozen=True)
class Bounce:
    address: str  # lower-cased
    status: str  # RFC 3463 enhanced status, e.g. 5.1.1
    diagnostic: str  # one line, for the invitation's reason
    original_message_id: str | None  # the invitation mail the report is about, when the report quotes it
    address_failed: bool  # the address itself is bad (5.1.x, 5.2.1), not e.g. a policy refusal


def parse_report(message: Message) -> list[Bounce]:
    """The permanently failed recipients of a delivery status notification; [] for any other mail."""
    if message.get_content_type() != "multipart/report" or \
            str(message.get_param("report-type", "")).lower() != "delivery-status":
        return []
    original: str | None = None
    failures: list[tuple[str, str, str]] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            failures += _failed_recipients(part)
        elif kind in ("text/rfc822-headers", "message/rfc822", "message/rfc822-headers") and original is None:
            original = _quoted_message_id(part)
    return [Bounce(address, status, diagnostic, original, address_failure(550, status))
            for address, status, diagnostic in failures]


def _failed_recipients(part: Message) -> list[tuple[str, str, str]]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return []
    out = []
    for block in blocks[1:]:  # the first block is about the message, the rest one per recipient
        if not isinstance(block, Message) or str(block.get("Action", "")).strip().lower() != "failed":
            continue
        status = enhanced_status(str(block.get("Status", ""))) or ""
        recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
        if status.startswith("5.") and "@" in address:
            diagnostic = str(block.get("Diagnostic-Code", "")).split(";", 1)[-1]
            out.append((address, status, clean_text(mask_addresses(diagnostic or status), 200)))
    return out


def _quoted_message_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        headers: Message = payload[0]
    elif isinstance(payload, str):
        headers = HeaderParser().parsestr(payload, headersonly=True)
    else:
        raw = part.get_payload(decode=True)
        headers = BytesHeaderParser().parsebytes(raw if isinstance(raw, bytes) else b"")
    value = headers.get("Message-ID")
    return str(value).strip() if value else None


def read_reports(folder: str | Path) -> Iterator[tuple[list[Bounce], Callable[[], None]]]:
    """Each unseen mail of a Maildir with its bounces, and a callback that marks it seen (moves it to
    cur/ with the S flag) once what it says is stored, so a crash re-reads it instead of losing it."""
    box = mailbox.Maildir(str(folder), factory=None, create=False)
    for key in list(box.iterkeys()):
        entry = box.get_message(key)
        if "S" in entry.get_flags():
            continue
        parsed = message_from_bytes(box.get_bytes(key), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        yield parse_report(parsed), _marker(box, key)


def _marker(box: mailbox.Maildir, key: str) -> Callable[[], None]:
    def done() -> None:
        entry = box.get_message(key)
        entry.set_subdir("cur")
        entry.add_flag("S")
        box[key] = entry

    return done
