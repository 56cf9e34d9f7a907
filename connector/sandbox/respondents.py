"""Synthetic respondents for the demo: people who open their invitation mail, follow a score link to
the real survey page over HTTP and submit the form, or never answer, in a realistic mix."""

from __future__ import annotations

import random
import re
from collections import Counter
from email.message import EmailMessage

import requests

from connector.surveys.definitions import scale

ANSWER_RATE = 0.45  # ITSM post-resolution surveys typically see well under half answering
_LINK = re.compile(r"(https?://[^\s\"<>]+/s/[\w.-]+)\?score=(\d+)")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
COMMENTS = {
    "en": {"negative": ["It took three days and I had to chase you twice.", "Still not fixed, the VPN drops daily.",
                        "I was passed between teams and nobody owned it."],
           "positive": ["Quick and friendly, thanks!", "Fixed on the first try."]},
    "sv": {"negative": ["Det tog tre dagar och jag fick jaga er två gånger.", "Fortfarande inte löst."],
           "positive": ["Snabbt och vänligt, tack!", "Löst direkt."]},
}


def _score(kind: str, rng: random.Random) -> int:
    values = list(scale(kind).values())
    # Skewed to the top, with a tail of unhappy customers (as service desks usually see).
    weights = [1 + 6 * (i / (len(values) - 1)) ** 3 for i in range(len(values))]
    weights[0] += 1.5
    return rng.choices(values, weights=weights)[0]


def answer(messages: list[EmailMessage], kind: str, rng: random.Random, page_url: str) -> Counter[str]:
    """Answer some invitations through the page at `page_url` (links point at the configured public_url)."""
    outcome: Counter[str] = Counter()
    session = requests.Session()
    for message in messages:
        if rng.random() > ANSWER_RATE:
            outcome["never answered"] += 1
            continue
        body = message.get_body(("plain",))
        found = _LINK.search(body.get_content() if body else "")
        if not found:
            outcome["no link"] += 1
            continue
        score = _score(kind, rng)
        path = found.group(1).split("/s/", 1)[1]
        url = f"{page_url}/s/{path}"
        page = session.get(url, params={"score": score}, timeout=10)
        csrf = _CSRF.search(page.text)
        if page.status_code != 200 or not csrf:
            outcome[f"page answered {page.status_code}"] += 1
            continue
        tone = scale(kind).tone(score)
        language = str(message.get("Content-Language") or "en")
        form: dict[str, str | list[str]] = {"csrf": csrf.group(1), "score": str(score)}
        if tone != "neutral" and rng.random() < (0.8 if tone == "negative" else 0.3):
            form["comment"] = rng.choice(COMMENTS.get(language, COMMENTS["en"])[tone])
        if rng.random() < 0.6:
            form["reason"] = [f"{tone}-{rng.randrange(2)}"]
        posted = session.post(url, data=form, timeout=10)
        outcome["answered" if posted.status_code == 200 else f"post answered {posted.status_code}"] += 1
    return outcome
