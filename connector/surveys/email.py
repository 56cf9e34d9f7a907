"""The email channel: builds the invitation mail and delivers batches of them over SMTP.

Building: `email.message.EmailMessage` with `policy.default`, so header values holding CR/LF raise, and
addresses go through `email.headerregistry.Address` (which refuses CR/LF, bpo-39073). Ticket text
never reaches a header: the subject comes from the texts and carries only a ticket number that matches
a strict pattern. Every generated header is checked once more the way CVE-2024-6923's fix does
(`verify_generated_headers`), because the Python in use may predate that fix.

Sending: one SMTP connection per batch. Each message ends as `sent` (2xx), `retry` (4xx, lost
connection, unreachable server, bad credentials: the outbox tries again later) or `rejected` (5xx:
the address or message is refused for good). Addresses are masked in logs and in result details.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from ipaddress import ip_address
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from connector.redact import redact, register_secret
from connector.surveys.definitions import scale
from connector.surveys.i18n import pick_language, text

log = logging.getLogger(__name__)

TICKET_NUMBER = re.compile(r"[A-Za-z0-9_-]{1,40}")
TITLE_LIMIT = 200
DETAIL_LIMIT = 300
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
DASH = "\u2013"  # en dash between a number and its label
# Bidirectional overrides let a title display reversed text (spoofing); drop them with the C0/C1 controls.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
# The check CPython added for CVE-2024-6923: a folded header may only break lines before whitespace.
_NEWLINE_WITHOUT_FWSP = re.compile(r"\r\n[^ \t]|\r[^ \n\t]|\n[^ \t]")
_ADDRESS_IN_TEXT = re.compile(r"([A-Za-z0-9._%+=-])[A-Za-z0-9._%+=-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


@dataclass(frozen=True)
class MailInvitation:
    """What the mail needs to know about one invitation; no store or ticket objects leak in here."""

    invitation_id: int
    to_address: str
    to_name: str | None
    language: str
    kind: str
    ticket_number: str
    ticket_title: str
    survey_url_base: str  # e.g. https://feedback.example.com/s/<token>
    optout_url: str
    reminder: bool = False


# ---------------------------------------------------------------- building


def clean_text(value: str, limit: int = TITLE_LIMIT) -> str:
    """One line of printable text: control and bidi characters become spaces, then it is shortened."""
    chars = (" " if unicodedata.category(c) == "Cc" or c in _BIDI else c for c in value)
    line = " ".join("".join(chars).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def header_ticket(number: str) -> str:
    """The ticket number if it is safe in a header, else empty (the subject then names no ticket)."""
    return number if TICKET_NUMBER.fullmatch(number or "") else ""


def mask_address(address: str) -> str:
    """`alice@example.com` → `a***@example.com`: enough to tell mails apart in a log, not to read it."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_addresses(value: str) -> str:
    return _ADDRESS_IN_TEXT.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def _refuse_line_breaks(what: str, value: str) -> None:
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"{what} holds a line break or NUL")


def make_address(display_name: str | None, addr_spec: str) -> Address:
    """An `Address` from untrusted parts; raises ValueError on CR/LF or anything but one addr-spec."""
    _refuse_line_breaks("display name", display_name or "")
    _refuse_line_breaks("address", addr_spec)
    address = Address(display_name=clean_text(display_name or "", 100), addr_spec=addr_spec.strip())
    if not address.username or not address.domain:
        raise ValueError("address needs a local part and a domain")
    return address


def parse_sender(sender: str) -> Address:
    """`Service Desk <desk@example.com>` (from config) as an `Address`."""
    _refuse_line_breaks("sender", sender)
    name, addr_spec = parseaddr(sender)
    if not addr_spec:
        raise ValueError("sender is not an address")
    return make_address(name, addr_spec)


def _checked_url(what: str, url: str) -> str:
    """An absolute http(s) URL that cannot break out of a header or an HTML attribute."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() or c in '<>"' for c in url):
        raise ValueError(f"{what} is not an absolute http(s) URL")
    return url


def score_url(base: str, score: int) -> str:
    return f"{base}{'&' if '?' in base else '?'}score={score}"


def _optional_text(language: str, key: str) -> str:
    try:
        return str(text(language, key))
    except KeyError:
        return ""


def _score_labels(language: str, kind: str) -> list[tuple[int, str]]:
    """Each score with its label; scales without per-score labels (NPS) label their two ends only."""
    values = list(scale(kind).values())
    ends = {values[0]: text(language, f"scale.{kind}.low"), values[-1]: text(language, f"scale.{kind}.high")}
    return [(v, _optional_text(language, f"labels.{kind}.{v}") or ends.get(v, "")) for v in values]


@dataclass(frozen=True)
class _Content:
    """The localised words of one mail, already cleaned (not yet HTML-escaped)."""

    language: str
    subject: str
    greeting: str
    intro: str
    request_line: str
    question: str
    choose: str
    choose_text: str
    low: str
    high: str
    scores: list[tuple[int, str, str]]  # (score, label, url)
    thanks: str
    signature: str
    why: str
    optout: str
    optout_url: str


def _content(inv: MailInvitation) -> _Content:
    language = pick_language(inv.language)
    number = header_ticket(inv.ticket_number)
    subject = text(language, "email.subject", ticket=number) if number else text(language, "email.subject_no_ticket")
    if inv.reminder:
        subject = f"{text(language, 'email.reminder_prefix')} {subject}"
    name = clean_text(inv.to_name or "", 100)
    body_number = clean_text(inv.ticket_number, 40)
    title = clean_text(inv.ticket_title)
    base = _checked_url("survey_url_base", inv.survey_url_base)
    question = re.sub(r"\s+([?.!])", r"\1", text(language, f"question.{inv.kind}", ticket=body_number))
    return _Content(
        language=language,
        subject=subject,
        greeting=text(language, "email.greeting", name=name) if name else text(language, "email.greeting_no_name"),
        intro=text(language, "email.reminder_intro" if inv.reminder else "email.intro"),
        request_line=f"{text(language, 'email.request')}: {f' {DASH} '.join(p for p in (body_number, title) if p)}",
        question=question,
        choose=text(language, "email.choose"),
        choose_text=text(language, "email.choose_text"),
        low=text(language, f"scale.{inv.kind}.low"),
        high=text(language, f"scale.{inv.kind}.high"),
        scores=[(v, label, score_url(base, v)) for v, label in _score_labels(language, inv.kind)],
        thanks=text(language, "email.thanks"),
        signature=text(language, "email.signature"),
        why=text(language, "email.why"),
        optout=text(language, "email.optout"),
        optout_url=_checked_url("optout_url", inv.optout_url),
    )


def _text_body(c: _Content) -> str:
    lines = [c.greeting, "", c.intro, "", c.request_line, "", c.question, c.choose_text, ""]
    lines += [f"  {v}{f' {DASH} ' + label if label else ''}: {url}" for v, label, url in c.scores]
    lines += ["", c.thanks, c.signature, "", "-- ", c.why, f"{c.optout}: {c.optout_url}", ""]
    return "\n".join(lines)


_BUTTON = ("display:inline-block;min-width:24px;padding:10px 8px;border:1px solid #1f5fa8;border-radius:4px;"
           "background-color:#ffffff;color:#1f5fa8;font-family:Arial,Helvetica,sans-serif;font-size:16px;"
           "font-weight:bold;line-height:20px;text-align:center;text-decoration:none")
_FONT = "font-family:Arial,Helvetica,sans-serif;color:#222222"


def _buttons(c: _Content) -> str:
    """One table cell per score: tables and inline styles are what Outlook and webmail render alike."""
    e = html.escape
    cells = "".join(
        f'<td style="padding:2px" align="center"><a href="{e(url)}" style="{_BUTTON}"'
        f'{f" title={chr(34)}{e(label)}{chr(34)}" if label else ""}>{v}</a></td>'
        for v, label, url in c.scores
    )
    ends = (f'<tr><td colspan="{len(c.scores) // 2}" align="left" style="{_FONT};font-size:12px;padding-top:4px">'
            f"{e(c.low)}</td><td colspan=\"{len(c.scores) - len(c.scores) // 2}\" align=\"right\" "
            f'style="{_FONT};font-size:12px;padding-top:4px">{e(c.high)}</td></tr>')
    return (f'<table role="presentation" cellspacing="0" cellpadding="0" border="0"><tr>{cells}</tr>'
            f"{ends}</table>")


def _html_body(c: _Content) -> str:
    e = html.escape
    p = f'style="{_FONT};font-size:15px;line-height:22px;margin:0 0 14px 0"'
    small = f'style="{_FONT};font-size:12px;line-height:18px;color:#666666;margin:0 0 8px 0"'
    return (
        f'<!DOCTYPE html><html lang="{e(c.language)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(c.subject)}</title></head>'
        f'<body style="margin:0;padding:0;background-color:#f4f4f4">'
        f'<table role="presentation" width="100%" cellspacing="0" cellpadding="0" border="0"><tr><td align="center" '
        f'style="padding:16px"><table role="presentation" cellspacing="0" cellpadding="0" border="0" '
        f'style="max-width:600px;background-color:#ffffff"><tr><td style="padding:24px">'
        f"<p {p}>{e(c.greeting)}</p><p {p}>{e(c.intro)}</p><p {p}><strong>{e(c.request_line)}</strong></p>"
        f'<p {p}><strong>{e(c.question)}</strong></p><p {small}>{e(c.choose)}</p>{_buttons(c)}'
        f'<p {p}>&nbsp;</p><p {p}>{e(c.thanks)}<br>{e(c.signature)}</p>'
        f'<p {small}>{e(c.why)}</p><p {small}><a href="{e(c.optout_url)}" style="color:#666666">{e(c.optout)}</a></p>'
        f"</td></tr></table></td></tr></table></body></html>"
    )


def _verify_generated_headers(message: EmailMessage) -> None:
    """Refuse a message whose folded headers would start a new header line (CVE-2024-6923)."""
    linesep = message.policy.linesep
    for name, value in message.items():
        folded = message.policy.fold(name, value)
        if _NEWLINE_WITHOUT_FWSP.search(folded.removesuffix(linesep)):
            raise ValueError(f"header {name} would fold into a new header line")


def build_message(inv: MailInvitation, *, sender: str, domain: str) -> EmailMessage:
    """The invitation mail: text and HTML parts, one link per score, RFC 8058 one-click opt-out."""
    if not _DOMAIN.fullmatch(domain):
        raise ValueError("domain is not a host name")
    c = _content(inv)
    message = EmailMessage(policy=policy.default)
    message["From"] = parse_sender(sender)
    message["To"] = make_address(inv.to_name, inv.to_address)
    message["Subject"] = c.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834: mark as automatic so auto-responders stay quiet; Exchange reads its own header for that.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    # RFC 8058: mail clients show an unsubscribe button that POSTs to the opt-out URL.
    message["List-Unsubscribe"] = f"<{c.optout_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(_text_body(c))
    message.add_alternative(_html_body(c), subtype="html")
    # After the parts: set_content drops every Content-* header set before it.
    message["Content-Language"] = c.language
    _verify_generated_headers(message)
    return message


def build_notice(*, to_address: str, to_name: str | None, language: str | None, subject: str, body: str,
                 sender: str, domain: str) -> EmailMessage:
    """A short plain-text message to a person (e.g. "we followed up on your feedback"), with the same
    header safety as the invitation mail. `subject` and `body` come from our texts, never from a ticket."""
    if not _DOMAIN.fullmatch(domain):
        raise ValueError("domain is not a host name")
    message = EmailMessage(policy=policy.default)
    message["From"] = parse_sender(sender)
    message["To"] = make_address(clean_text(to_name or "", 100), to_address)
    message["Subject"] = clean_text(subject, 200)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(body)
    message["Content-Language"] = pick_language(language)
    _verify_generated_headers(message)
    return message


def message_id(message: EmailMessage) -> str:
    """The Message-ID to store on the invitation (to reconcile rows left in `sending`)."""
    return str(message["Message-ID"])


# ---------------------------------------------------------------- sending


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    security: Literal["plain", "starttls", "ssl"] = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if self.security not in ("plain", "starttls", "ssl"):
            raise ValueError("security must be plain, starttls or ssl")
        if not 0 < self.port < 65536:
            raise ValueError("port must be 1-65535")
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together")
        if self.password and self.security == "plain" and not _is_loopback(self.host):
            raise ValueError("a password is only sent over starttls or ssl (or to a relay on this host)")
        register_secret(self.password)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SendResult:
    status: Literal["sent", "retry", "rejected"]
    detail: str
    code: int | None = None
    uncertain: bool = False  # a retry after the message may have arrived (the connection died after it)
    bounced: bool = False  # the server refused the recipient's address itself (unknown mailbox, bad domain)


def _reply_detail(code: int, reply: bytes | str) -> str:
    """An SMTP reply fit for a log or the outbox row: decoded, one line, secrets and addresses masked."""
    body = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return clean_text(mask_addresses(redact(f"{code} {body}")), DETAIL_LIMIT)


def _error_detail(exc: BaseException) -> str:
    return clean_text(mask_addresses(redact(f"{type(exc).__name__}: {exc}")), DETAIL_LIMIT)


def classify(code: int, reply: bytes | str) -> SendResult:
    """2xx sent, 5xx rejected for good, everything else (4xx, odd codes) tried again later."""
    detail = _reply_detail(code, reply)
    if 200 <= code < 300:
        return SendResult("sent", detail, code)
    if 500 <= code < 600:
        return SendResult("rejected", detail, code)
    return SendResult("retry", detail, code)


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_NO_SUCH = re.compile(r"(user|mailbox|recipient|address|account)\b.*\b(unknown|not found|does not exist|invalid|"
                      r"unavailable|disabled|no such)", re.IGNORECASE)


def enhanced_status(text: str) -> str | None:
    """The RFC 3463 status code (`5.1.1`) in a reply or report, if there is one."""
    match = _ENHANCED.search(text)
    return ".".join(match.groups()) if match else None


def address_failure(code: int, reply: bytes | str) -> bool:
    """A permanent failure of the address itself (5.1.x addressing, 5.2.1 mailbox disabled), not a policy
    refusal (5.7.x) or a full mailbox: the address will not work next time either (RFC 3463)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    status = enhanced_status(text)
    if status is not None:
        return status.startswith("5.1.") or status == "5.2.1"
    return code in (551, 553) or (code == 550 and bool(_NO_SUCH.search(text)))


class _Lost(Exception):
    """The connection broke; `before_data` says whether the server can have accepted the message."""

    def __init__(self, cause: BaseException, *, before_data: bool):
        super().__init__(str(cause))
        self.cause = cause
        self.before_data = before_data


class SmtpSender:
    """Delivers a batch over one SMTP connection (reconnecting once when it drops).

    Use as a context manager: `with SmtpSender(settings) as smtp: smtp.send(message)`. The connection
    opens on the first send. When the server cannot be reached, or refuses our credentials or TLS, the
    sender turns `broken`: the rest of the batch returns `retry` at once instead of waiting for a
    timeout per message.
    """

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.connections_opened = 0
        self.broken: str | None = None
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- connection

    def _tls_context(self) -> ssl.SSLContext:
        # Verifies the chain and the host name; ca_bundle adds a private CA (never turns checks off).
        return ssl.create_default_context(cafile=self.settings.ca_bundle)

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                # No fallback to plain text when STARTTLS is missing: that is what a downgrade looks like.
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if s.username and s.password:
                smtp.login(s.username, s.password)
        except BaseException:
            _close_quietly(smtp)
            raise
        self.connections_opened += 1
        log.debug("smtp: connected to %s:%s (%s), connection %d", s.host, s.port, s.security,
                  self.connections_opened)
        return smtp

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._open()
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            _close_quietly(self._smtp)
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._drop()

    # -- sending

    def send(self, message: EmailMessage) -> SendResult:
        to = ", ".join(mask_address(a.addr_spec) for a in _recipients(message))
        result = self._deliver(message)
        level = logging.INFO if result.status == "sent" else logging.WARNING
        log.log(level, "smtp: %s to %s (%s): %s", result.status, to, message["Message-ID"], result.detail)
        return result

    def _deliver(self, message: EmailMessage) -> SendResult:
        if self.broken:
            return SendResult("retry", self.broken)
        for attempt in (1, 2):
            try:
                return self._transaction(self._connect_or_break(), message)
            except _Broken as exc:
                return SendResult("retry", exc.detail)
            except _Lost as lost:
                self._drop()
                detail = _error_detail(lost.cause)
                if not lost.before_data:
                    # The server may have taken the message: resending now would risk a duplicate for
                    # every dropped connection; the outbox retries it later (reliability-security §3).
                    return SendResult("retry", f"connection lost after the message data: {detail}",
                                      uncertain=True)
                if attempt == 2:
                    return SendResult("retry", f"connection lost again: {detail}")
                log.info("smtp: connection lost (%s), reconnecting once", detail)
        raise AssertionError("unreachable")

    def _connect_or_break(self) -> smtplib.SMTP:
        try:
            return self._connection()
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            # Unreachable, TLS refused, credentials refused: every later message would fail the same way.
            self.broken = f"cannot open an SMTP connection to {self.settings.host}:{self.settings.port}: " + (
                _error_detail(exc))
            log.error("smtp: %s", self.broken)
            raise _Broken(self.broken) from None

    def _transaction(self, smtp: smtplib.SMTP, message: EmailMessage) -> SendResult:
        """MAIL, RCPT, DATA by hand, so a lost connection is known to be before or after the data."""
        sender = _sender(message)
        recipients = [a.addr_spec for a in _recipients(message)]
        international = not all(a.isascii() for a in (sender, *recipients))
        if international and not smtp.has_extn("smtputf8"):
            return SendResult("rejected", "a non-ASCII address needs SMTPUTF8, which this server does not offer")
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        data = _flatten(message, utf8=international)
        before_data = True
        try:
            code, reply = smtp.mail(sender, options)
            if code != 250:
                return self._refused(smtp, code, reply)
            for rcpt in recipients:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    refused = self._refused(smtp, code, reply)
                    return replace(refused, bounced=refused.status == "rejected" and address_failure(code, reply))
            before_data = False
            code, reply = smtp.data(data)
            return classify(code, reply)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354): nothing was taken
            self._reset(smtp)
            return classify(exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Lost(exc, before_data=before_data) from None

    def _refused(self, smtp: smtplib.SMTP, code: int, reply: bytes) -> SendResult:
        if code == 421:  # the server is closing the connection; the next message reconnects
            self._drop()
        else:
            self._reset(smtp)
        return classify(code, reply)

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


class _Broken(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _close_quietly(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


def _sender(message: EmailMessage) -> str:
    addresses = message["From"].addresses
    return str(addresses[0].addr_spec)


def _recipients(message: EmailMessage) -> list[Address]:
    return [a for name in ("To", "Cc") for a in (message[name].addresses if message[name] else ())]


def _flatten(message: EmailMessage, *, utf8: bool) -> bytes:
    """The wire form with CRLF line ends (what smtplib.send_message would send)."""
    wire = policy.default.clone(linesep="\r\n", utf8=utf8)
    return message.as_bytes(policy=wire)
