"""Reading bounces: which SMTP refusals mean a bad address, and what a delivery report says."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from connector.sandbox.mailsink import delivery_report
from connector.surveys.bounces import parse_report
from connector.surveys.email import address_failure

ORIGINAL = (b"From: IT Service Desk <desk@example.com>\r\nTo: anna@example.com\r\n"
            b"Message-ID: <1.2@example.com>\r\nSubject: How did we do?\r\n\r\nBody\r\n")


@pytest.mark.parametrize(("code", "reply", "bad_address"), [
    (550, "5.1.1 <anna@example.com>: Recipient address rejected: User unknown", True),
    (550, "5.1.10 Recipient address rejected: Domain has null MX", True),
    (550, "5.2.1 The email account that you tried to reach is disabled", True),
    (552, "5.2.2 Mailbox full", False),  # the person exists; the next mail may fit
    (554, "5.7.1 Relay access denied", False),  # our relay's policy, not the address
    (550, "Requested action not taken: mailbox unavailable", True),  # no enhanced code: read the words
    (550, "Message rejected as spam", False),
    (553, "mailbox name not allowed", True),
    (551, "User not local", True),
])
def test_which_refusals_mean_the_address_is_bad(code, reply, bad_address):
    assert address_failure(code, reply) is bad_address


def report(status: str, action: str = "failed", quoted: str = "text/rfc822-headers") -> bytes:
    return (b"From: MAILER-DAEMON@mx.example.net\r\nTo: desk@example.com\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
            b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
            b"Final-Recipient: rfc822; Anna@Example.com\r\nAction: " + action.encode() +
            b"\r\nStatus: " + status.encode() + b"\r\nDiagnostic-Code: smtp; 550 " + status.encode() +
            b" no such user\r\n\r\n--b\r\nContent-Type: " + quoted.encode() + b"\r\n\r\n" + ORIGINAL +
            b"\r\n--b--\r\n")


@pytest.mark.parametrize(("raw", "expected"), [
    (report("5.1.1"), [("anna@example.com", "5.1.1", "<1.2@example.com>", True)]),
    (report("5.1.1", quoted="message/rfc822"), [("anna@example.com", "5.1.1", "<1.2@example.com>", True)]),
    (report("5.7.1"), [("anna@example.com", "5.7.1", "<1.2@example.com>", False)]),  # refused, address fine
    (report("4.4.7", action="delayed"), []),  # still being tried: not a bounce
    (report("2.0.0", action="delivered"), []),
    (b"From: anna@example.com\r\nSubject: Out of office\r\n\r\nI am away.\r\n", []),
    (delivery_report("desk@example.com", ["bo@example.com", "cy@example.com"], ORIGINAL),
     [("bo@example.com", "5.1.1", "<1.2@example.com>", True), ("cy@example.com", "5.1.1", "<1.2@example.com>", True)]),
])
def test_delivery_reports(raw, expected):
    found = parse_report(message_from_bytes(raw, policy=policy.default))
    assert [(b.address, b.status, b.original_message_id, b.address_failed) for b in found] == expected
