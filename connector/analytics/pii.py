"""Personal data out of survey comments, before they are stored for analysis or shown in a report.

Customers write their phone number, their email or a colleague's link into the comment box; reports
show comments to service desks and service owners, who do not need them. `redact_personal` puts a
placeholder in place of each:

=============  ==========================================================================  ==============
placeholder    what                                                                        example
=============  ==========================================================================  ==============
``[url]``      http(s):// and www. links (they carry tokens, user ids, emails in queries)  https://x/?t=1
``[email]``    email addresses, with or without ``mailto:``                                anna@example.se
``[id]``       Swedish personal identity numbers (personnummer, samordningsnummer), with   19811218-9876
               a valid date and check digit
``[phone]``    phone numbers: ``+`` or ``00`` international, or national with separators   +46 70-123 45 67
``[name]``     the names passed in (the requester's): full name and each part of 3+        Åsa Öberg
               letters, whole words, any case, with or without diacritics
=============  ==========================================================================  ==============

This is a different concern from `connector.redact`, which masks credentials in logs.

Not redacted: ticket numbers (INC0010023, ITSD-123), dates and times, IP addresses, version numbers,
digit runs that do not start with 0 or + (ids, amounts), and names nobody passed in (agents,
colleagues): there is no named-entity recogniser. See docs/analytics.md for the limits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

URL, EMAIL, ID, PHONE, NAME = "[url]", "[email]", "[id]", "[phone]", "[name]"
PLACEHOLDERS = (URL, EMAIL, ID, PHONE, NAME)

_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_EMAIL = re.compile(r"(?i)(?:mailto:)?[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")
# Swedish personal identity number: (CC)YYMMDD, '-' or '+' (or nothing), then 4 digits.
_PERSONNUMMER = re.compile(r"(?<![\w-])(?:19|20)?(\d{6})[-+]?(\d{4})(?![\w-])")
# Dates and times are masked (same length) before phones are looked for, so a phone candidate can
# neither be one nor swallow one: 2024-01-15, 15/01/2024, 15.1.24, 14:30, 2024-01-15T14:30:00.
_DATE_TIME = re.compile(
    r"(?<!\d)(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"
    r"|\d{1,2}:\d{2}(?::\d{2})?)(?!\d)"
)
# A phone candidate: optional +, digits with short runs of separators between them (space, hyphen,
# dot, slash, parentheses). Never glued to a word, a ticket key (ITSD-123) or another number.
_PHONE = re.compile(r"(?<![\w.\-/+])\+?\(?\d(?:[ \u00a0\-./()]{1,3}\d|\d)+\)?(?![\w])")
_MASK = "\ue000"  # a private-use character: neither a digit nor a separator


def redact_personal(text: str, *, names: Sequence[str] = ()) -> str:
    """`text` with URLs, emails, personal identity numbers, phone numbers and `names` replaced by
    placeholders (``[url]``, ``[email]``, ``[id]``, ``[phone]``, ``[name]``).

    Args:
        text: a survey comment (any language).
        names: names of the person who answered (the requester), e.g. their display name. Each full
            name is replaced, and so is each of its parts of three letters or more on its own
            ("Åsa", "Öberg"), as whole words, in any case, with or without diacritics ("Asa Oberg"),
            with a possessive ending ("Åsas", "Asa's").

    Returns:
        The redacted text; text without personal data comes back unchanged. Idempotent.
    """
    text = unicodedata.normalize("NFC", text)
    text = _URL.sub(URL, text)
    text = _EMAIL.sub(EMAIL, text)
    text = _PERSONNUMMER.sub(lambda m: ID if _is_personnummer(m.group(1), m.group(2)) else m.group(0), text)
    text = _redact_phones(text)
    pattern = _names_pattern(names)
    if pattern is not None:
        text = pattern.sub(NAME, text)
        # "Åsa Öberg" written as "Öberg, Åsa" or "Åsa K. Öberg" becomes one [name], not several.
        text = re.sub(r"\[name\](?:[ \u00a0]+(?:[^\W\d_]\.[ \u00a0]+)?\[name\])+", NAME, text)
    return text


def _is_personnummer(date: str, rest: str) -> bool:
    """A valid YYMMDD (day + 60 for a samordningsnummer) and a valid Luhn check digit."""
    month, day = int(date[2:4]), int(date[4:6])
    if day > 60:
        day -= 60
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return False
    total = 0
    for i, ch in enumerate(date + rest):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _redact_phones(text: str) -> str:
    masked = _DATE_TIME.sub(lambda m: _MASK * len(m.group(0)), text)
    # Same-length masking keeps positions, so spans found in `masked` cut `text`.
    out, last = [], 0
    for m in _PHONE.finditer(masked):
        if _is_phone(m.group(0)):
            out += [text[last:m.start()], PHONE]
            last = m.end()
    out.append(text[last:])
    return "".join(out)


def _is_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    international = candidate.startswith("+") or digits.startswith("00")
    count = len(digits) - (2 if digits.startswith("00") else 0)
    if not 7 <= count <= 15:
        return False
    groups = re.findall(r"\d+", candidate)
    if len(groups) == 1:
        # An unbroken digit run is an id or an amount unless it is dialled like a phone: +46701234567,
        # 0046701234567, 0701234567 (national numbers in Sweden and most of Europe start with 0).
        return international or (digits.startswith("0") and count >= 8)
    if international:
        return True
    separators = set(re.sub(r"[\d()]", "", candidate).replace("\u00a0", " "))
    if separators == {"."} and len(groups) == 4 and all(len(g) <= 3 for g in groups):
        return False  # an IPv4 address (192.168.10.25) or a version number
    # Otherwise a phone, unless it reads as an amount with thousands separators: 1 200 000, 12.500.000.
    return groups[0].startswith("0") or len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:])


def _fold(ch: str) -> str:
    """The letter without its diacritics ("Å" -> "A"), or the letter itself."""
    base = unicodedata.normalize("NFD", ch)[0]
    return base if base.isalpha() else ch


def _name_regex(name: str) -> str:
    out = []
    for ch in name:
        if ch.isspace():
            out.append(r"[\s\u00a0]+")
        elif ch.isalpha() and _fold(ch) != ch:
            out.append(f"[{re.escape(ch)}{re.escape(_fold(ch))}]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _names_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    variants: set[str] = set()
    for name in names:
        full = " ".join(unicodedata.normalize("NFC", name).split())
        if "@" in full:
            continue  # an email address given as a name is already caught as [email]
        if len(re.sub(r"[\W\d_]", "", full)) >= 3:
            variants.add(full)
        for part in re.findall(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*", full):
            if len(re.sub(r"[\W\d_]", "", part)) >= 3:
                variants.add(part)
                variants.update(p for p in re.split(r"['\u2019-]", part) if len(p) >= 3)
    if not variants:
        return None
    alternatives = "|".join(_name_regex(v) for v in sorted(variants, key=len, reverse=True))
    # Whole words only; a genitive "s" (Swedish "Åsas", English "Åsa's") belongs to the name.
    return re.compile(rf"(?<![\w@])(?:{alternatives})(?:['\u2019]?s)?(?![\w@])", re.IGNORECASE)
