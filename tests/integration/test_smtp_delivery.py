"""Delivery over a real SMTP server (aiosmtpd on loopback): batches, replies, lost servers, STARTTLS and AUTH."""

from __future__ import annotations

import email
import logging
import socket
import ssl
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connector.surveys.email import MailInvitation, SmtpSender, SmtpSettings, build_message, message_id

TLS = Path(__file__).resolve().parents[2] / "connector" / "sandbox" / "tls"
BASE = "https://feedback.example.com/s/"
USER, PASSWORD = "vloop-mailer", "Sm7p-p4ssw0rd-never-logged"


class Mailbox:
    """Stores what the server accepted; answers scripted replies for chosen recipients."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.peers: set[Any] = set()
        self.rcpt_replies: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.peers.add(session.peer)
        self.messages.append(envelope.original_content)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "server.pem", TLS / "server.key")
    return context


def check_password(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and (
        auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class Server:
    def __init__(self, **options: Any) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **options)
        self.running = False

    def start(self) -> Server:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


@pytest.fixture(autouse=True)
def quiet_aiosmtpd() -> Iterator[None]:
    """aiosmtpd logs every line it reads from its own thread, also after a test has ended and pytest
    closed the streams other tests' handlers write to; only its warnings are of interest here."""
    logger = logging.getLogger("mail.log")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server().start()
    yield s
    s.stop()


@pytest.fixture
def tls_server() -> Iterator[Server]:
    s = Server(tls_context=server_tls(), require_starttls=True, auth_require_tls=True,
               authenticator=check_password).start()
    yield s
    s.stop()


def invitation(n: int, **changes: Any) -> MailInvitation:
    values: dict[str, Any] = {
        "invitation_id": n, "to_address": f"user{n}@example.com", "to_name": f"User {n}", "language": "en",
        "kind": "csat", "ticket_number": f"INC{n:07d}", "ticket_title": f"Ticket {n} <b>title</b>",
        "survey_url_base": f"{BASE}token{n}", "optout_url": f"https://feedback.example.com/optout/token{n}",
        "reminder": False,
    }
    return MailInvitation(**{**values, **changes})


def message(n: int, **changes: Any):
    return build_message(invitation(n, **changes), sender="Service Desk <desk@example.com>", domain="example.com")


def settings(port: int, **changes: Any) -> SmtpSettings:
    return SmtpSettings(**{"host": "127.0.0.1", "port": port, "timeout": 5, **changes})


def test_a_batch_of_50_goes_over_one_connection_and_parses_back(server):
    sent = [message(n) for n in range(50)]
    with SmtpSender(settings(server.port)) as smtp:
        results = [smtp.send(m) for m in sent]
    assert [r.status for r in results] == ["sent"] * 50
    assert smtp.connections_opened == 1 and len(server.mailbox.peers) == 1
    assert len(server.mailbox.messages) == 50

    parsed = email.message_from_bytes(server.mailbox.messages[7], policy=policy.default)
    assert parsed["Message-ID"] == message_id(sent[7])
    assert parsed["To"].addresses[0].addr_spec == "user7@example.com"
    assert parsed["Subject"] == "How did we do with your request INC0000007?"
    assert parsed["List-Unsubscribe"] == "<https://feedback.example.com/optout/token7>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Auto-Submitted"] == "auto-generated"
    html = parsed.get_body(preferencelist=("html",)).get_content()
    for score in range(1, 6):
        assert f'href="{BASE}token7?score={score}"' in html
    assert "Ticket 7 &lt;b&gt;title&lt;/b&gt;" in html
    assert server.mailbox.envelopes[7] == ("desk@example.com", ["user7@example.com"])


def test_451_is_retried_and_550_is_rejected_with_the_address_masked(server, caplog):
    server.mailbox.rcpt_replies = {
        "user1@example.com": "451 4.7.1 Greylisted, try again later",
        "user2@example.com": "550 5.1.1 <user2@example.com>: Recipient address rejected: User unknown",
    }
    caplog.set_level(logging.DEBUG)
    with SmtpSender(settings(server.port)) as smtp:
        results = [smtp.send(message(n)) for n in range(4)]
    assert [r.status for r in results] == ["sent", "retry", "rejected", "sent"]
    assert results[1].code == 451 and results[2].code == 550
    assert "User unknown" in results[2].detail and "u***@example.com" in results[2].detail
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("connector"))
    assert "u***@example.com" in ours and "user2@example.com" not in ours + results[2].detail
    assert smtp.connections_opened == 1 and len(server.mailbox.messages) == 2


def test_a_server_stopping_mid_batch_leaves_the_rest_to_retry(server):
    with SmtpSender(settings(server.port, timeout=2)) as smtp:
        first = [smtp.send(message(n)) for n in range(5)]
        server.stop()
        rest = [smtp.send(message(n)) for n in range(5, 12)]
    assert [r.status for r in first] == ["sent"] * 5
    assert [r.status for r in rest] == ["retry"] * 7
    assert smtp.broken and smtp.connections_opened == 1


def test_an_unreachable_server_is_tried_once_per_batch():
    with SmtpSender(settings(free_port(), timeout=2)) as smtp:
        results = [smtp.send(message(n)) for n in range(3)]
    assert [r.status for r in results] == ["retry"] * 3 and smtp.connections_opened == 0
    assert "cannot open an SMTP connection" in results[2].detail


def test_a_dropped_idle_connection_is_reopened_once(server):
    with SmtpSender(settings(server.port)) as smtp:
        assert smtp.send(message(1)).status == "sent"
        assert smtp._smtp is not None
        smtp._smtp.sock.shutdown(socket.SHUT_RDWR)  # as when the server times out an idle client between two messages
        assert smtp.send(message(2)).status == "sent"
    assert smtp.connections_opened == 2 and len(server.mailbox.messages) == 2


def test_starttls_and_auth_work_and_the_password_stays_secret(tls_server, caplog):
    caplog.set_level(logging.DEBUG)
    good = settings(tls_server.port, security="starttls", username=USER, password=PASSWORD,
                    ca_bundle=str(TLS / "ca.pem"))
    with SmtpSender(good) as smtp:
        results = [smtp.send(message(n)) for n in range(3)]
    assert [r.status for r in results] == ["sent"] * 3 and smtp.connections_opened == 1
    assert PASSWORD not in repr(good)

    bad = settings(tls_server.port, security="starttls", username=USER, password=PASSWORD + "-wrong",
                   ca_bundle=str(TLS / "ca.pem"))
    with SmtpSender(bad) as smtp:
        failed = [smtp.send(message(n)) for n in range(2)]
    assert [r.status for r in failed] == ["retry", "retry"] and "535" in failed[0].detail
    for leak in (PASSWORD, PASSWORD + "-wrong"):
        assert leak not in caplog.text and all(leak not in r.detail for r in failed)
        assert leak not in str(smtp.broken)


def test_starttls_refuses_a_certificate_it_cannot_verify(tls_server):
    # Without ca_bundle the sandbox CA is unknown: the sender must not fall back to sending anyway.
    untrusted = settings(tls_server.port, security="starttls", username=USER, password=PASSWORD)
    with SmtpSender(untrusted) as smtp:
        result = smtp.send(message(1))
    assert result.status == "retry" and "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert tls_server.mailbox.messages == []


def test_plain_connection_to_a_server_requiring_starttls_is_not_sent(tls_server):
    with SmtpSender(settings(tls_server.port)) as smtp:
        result = smtp.send(message(1))
    assert result.status == "rejected" and result.code == 530
    assert tls_server.mailbox.messages == []


def test_implicit_tls():
    s = Server(ssl_context=server_tls()).start()
    try:
        with SmtpSender(settings(s.port, security="ssl", ca_bundle=str(TLS / "ca.pem"))) as smtp:
            assert smtp.send(message(1)).status == "sent"
        assert len(s.mailbox.messages) == 1
    finally:
        s.stop()


def test_a_password_is_not_sent_in_plain_text_to_a_remote_relay():
    with pytest.raises(ValueError):
        SmtpSettings(host="mail.example.com", username=USER, password=PASSWORD)
