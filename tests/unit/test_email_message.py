"""The invitation mail: safe headers whatever the ticket says, one link per score, opt-out headers, texts."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from email import policy
from html.parser import HTMLParser

import pytest

from connector.surveys.email import MailInvitation, build_message, clean_text, mask_address, message_id
from connector.surveys.i18n import text

BASE = "https://feedback.example.com/s/tok.EN-abc_123"
OPTOUT = "https://feedback.example.com/optout/tok.EN-abc_123"
SENDER = "Service Desk <desk@example.com>"


def invitation(**changes) -> MailInvitation:
    inv = MailInvitation(
        invitation_id=42, to_address="alice@example.com", to_name="Alice Andersson", language="en", kind="csat",
        ticket_number="INC0010001", ticket_title="Printer on floor 3 is jammed", survey_url_base=BASE,
        optout_url=OPTOUT, reminder=False,
    )
    return replace(inv, **changes)


def build(**changes):
    return build_message(invitation(**changes), sender=SENDER, domain="mail.example.com")


def wire_roundtrip(message):
    """What a receiver parses: the bytes on the wire read back with the modern policy."""
    return email.message_from_bytes(message.as_bytes(), policy=policy.default)


def bodies(message) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return plain, html


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])
        if tag == "script":
            self.scripts += 1


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


HOSTILE_TITLES = [
    pytest.param("Broken\r\nBcc: victim@evil.example\r\n\r\n<b>body</b>", id="crlf-header-injection"),
    pytest.param("Login fails\nSubject: you won", id="lf-only"),
    pytest.param("<script>alert('x')</script><img src=x onerror=alert(1)>", id="html-script"),
    pytest.param("A" * 5000, id="very-long"),
    pytest.param("日本語のプリンターが動かない", id="japanese"),
    pytest.param("Skrivaren på våning två är trasig \u2013 åäö ÅÄÖ", id="swedish"),
    pytest.param("x\u202eexe.txt\x00\x07\x1b[31m", id="bidi-and-controls"),
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_titles_never_reach_headers_and_are_escaped(title):
    message = build(ticket_title=title)
    parsed = wire_roundtrip(message)

    assert parsed.get_all("Bcc") is None and parsed.get_all("Subject") == [parsed["Subject"]]
    assert sorted(parsed.keys()) == sorted(message.keys())
    for name, value in parsed.items():
        assert "\n" not in str(value) and "\r" not in str(value), name
        assert clean_text(title)[:20] not in str(value), name
    plain, html = bodies(parsed)
    assert links(html).scripts == 0 and "<script" not in html and "<img" not in html
    shown = clean_text(title)
    assert len(shown) <= 200 and not any(ord(c) < 32 for c in shown) and "\u202e" not in shown
    assert shown in plain
    assert shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;") in html


@pytest.mark.parametrize(("number", "in_subject"), [
    ("INC0010001", True), ("ITSD-42", True), ("a_b-9", True),
    ("INC1\r\nBcc: x@evil.example", False), ("INC 1", False), ("<b>1</b>", False), ("X" * 41, False), ("", False),
])
def test_only_a_plain_ticket_number_enters_the_subject(number, in_subject):
    subject = wire_roundtrip(build(ticket_number=number))["Subject"]
    assert (number in subject) is in_subject if number else subject == text("en", "email.subject_no_ticket")
    assert "\n" not in subject and "Bcc" not in subject


@pytest.mark.parametrize(("field", "value"), [
    ("to_name", "Alice\r\nBcc: victim@evil.example"),
    ("to_name", "Alice\nX-Evil: 1"),
    ("to_address", "alice@example.com\r\nBcc: victim@evil.example"),
    ("to_address", "alice@example.com\n"),
    ("to_address", "alice@example.com, bob@example.com"),
    ("to_address", "not an address"),
    ("optout_url", "https://feedback.example.com/o/x>\r\nBcc: a@b.c"),
    ("optout_url", "javascript:alert(1)"),
    ("survey_url_base", 'https://feedback.example.com/s/x" onclick="alert(1)'),
])
def test_line_breaks_or_garbage_in_addresses_and_urls_raise(field, value):
    with pytest.raises(ValueError):
        build(**{field: value})


@pytest.mark.parametrize("sender", ["Desk <desk@example.com>\r\nBcc: a@evil.example", "no address here"])
def test_a_bad_sender_raises(sender):
    with pytest.raises(ValueError):
        build_message(invitation(), sender=sender, domain="example.com")


def test_a_bad_message_id_domain_raises():
    with pytest.raises(ValueError):
        build_message(invitation(), sender=SENDER, domain="example.com>\r\nBcc: a@evil.example")


@pytest.mark.parametrize(("kind", "scores"), [("nps", range(0, 11)), ("csat", range(1, 6)), ("ces", range(1, 8))])
def test_one_link_per_score_value(kind, scores):
    parsed = wire_roundtrip(build(kind=kind))
    plain, html = bodies(parsed)
    score_links = [h for h in links(html).hrefs if h.startswith(BASE)]
    assert score_links == [f"{BASE}?score={n}" for n in scores]
    assert re.findall(r"https://\S+\?score=\d+", plain) == score_links
    assert text("en", f"scale.{kind}.low") in html and text("en", f"scale.{kind}.high") in html
    assert text("en", f"question.{kind}", ticket="INC0010001") in plain


def test_a_base_url_with_a_query_gets_an_ampersand():
    _, html = bodies(wire_roundtrip(build(survey_url_base=BASE + "?src=mail", kind="csat")))
    assert f"{BASE}?src=mail&score=3" in links(html).hrefs


def test_buttons_are_table_cells_with_inline_styles():
    _, html = bodies(wire_roundtrip(build(kind="nps")))
    assert html.count('<td style="padding:2px"') == 11
    assert "<style" not in html and "<script" not in html


def test_list_unsubscribe_headers_and_auto_submitted():
    parsed = wire_roundtrip(build())
    assert parsed["List-Unsubscribe"] == f"<{OPTOUT}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Auto-Submitted"] == "auto-generated"
    plain, html = bodies(parsed)
    assert OPTOUT in links(html).hrefs and OPTOUT in plain


@pytest.mark.parametrize(("language", "expected"), [("en", "en"), ("sv", "sv"), ("sv-SE", "sv"), ("de", "en")])
def test_language_switch(language, expected):
    parsed = wire_roundtrip(build(language=language))
    plain, html = bodies(parsed)
    assert parsed["Subject"] == text(expected, "email.subject", ticket="INC0010001")
    assert parsed["Content-Language"] == expected and f'lang="{expected}"' in html
    assert text(expected, "question.csat", ticket="INC0010001") in plain
    assert text(expected, "email.optout") in plain and text(expected, "labels.csat.5") in plain


def test_swedish_is_swedish():
    parsed = wire_roundtrip(build(language="sv", to_name="Åsa Öberg"))
    plain, _ = bodies(parsed)
    assert parsed["Subject"] == "Hur gick det med ditt ärende INC0010001?"
    assert parsed["To"].addresses[0].display_name == "Åsa Öberg"
    assert plain.startswith("Hej Åsa Öberg!") and "Mycket nöjd" in plain


@pytest.mark.parametrize(("language", "prefix"), [("en", "Reminder:"), ("sv", "Påminnelse:")])
def test_reminder_says_so_in_the_subject(language, prefix):
    first = wire_roundtrip(build(language=language))
    reminder = wire_roundtrip(build(language=language, reminder=True))
    assert reminder["Subject"] == f"{prefix} {first['Subject']}"
    assert text(language, "email.reminder_intro") in bodies(reminder)[0]


def test_message_id_uses_the_domain_and_is_unique():
    first, second = build(), build()
    assert message_id(first).endswith("@mail.example.com>") and message_id(first).startswith("<")
    assert message_id(first) != message_id(second)
    assert wire_roundtrip(first)["Message-ID"] == message_id(first)


def test_no_name_gets_a_neutral_greeting():
    plain, _ = bodies(wire_roundtrip(build(to_name=None)))
    assert plain.startswith(text("en", "email.greeting_no_name"))


@pytest.mark.parametrize(("address", "masked"), [
    ("alice@example.com", "a***@example.com"), ("a@example.com", "a***@example.com"), ("nonsense", "***"),
])
def test_addresses_are_masked_for_logs(address, masked):
    assert mask_address(address) == masked
