from __future__ import annotations

import pytest

from connector.surveys.definitions import scale
from connector.surveys.i18n import languages, pick_language, text


@pytest.mark.parametrize(("kind", "score", "band", "tone"), [
    ("nps", 0, "detractor", "negative"), ("nps", 6, "detractor", "negative"), ("nps", 7, "passive", "neutral"),
    ("nps", 8, "passive", "neutral"), ("nps", 9, "promoter", "positive"), ("nps", 10, "promoter", "positive"),
    ("csat", 1, "dissatisfied", "negative"), ("csat", 2, "dissatisfied", "negative"), ("csat", 3, "neutral", "neutral"),
    ("csat", 4, "satisfied", "positive"), ("csat", 5, "satisfied", "positive"),
    ("ces", 3, "difficult", "negative"), ("ces", 4, "neutral", "neutral"), ("ces", 5, "easy", "positive"),
])
def test_bands(kind, score, band, tone):
    assert scale(kind).band(score) == band and scale(kind).tone(score) == tone


@pytest.mark.parametrize(("kind", "bad"), [("nps", 11), ("nps", -1), ("csat", 0), ("csat", 6), ("ces", 8)])
def test_scores_outside_the_scale_are_refused(kind, bad):
    with pytest.raises(ValueError):
        scale(kind).band(bad)


def test_every_language_has_every_survey_key_of_english():
    from connector.surveys.i18n import _catalogue

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
        return out

    english = keys(_catalogue("en"))
    for language in languages():
        assert keys(_catalogue(language)) >= english, language


@pytest.mark.parametrize(("candidates", "expected"), [
    (("sv-SE",), "sv"), (("sv_se",), "sv"), (("fi", "sv"), "sv"), (("de",), "en"), ((None, ""), "en"),
])
def test_language_choice(candidates, expected):
    assert pick_language(*candidates) == expected


def test_fallback_and_formatting():
    assert text("sv", "question.csat", ticket="INC0010001").endswith("INC0010001?")
    assert text("fi", "comment.label") == text("en", "comment.label")


def test_question_ids_cannot_take_a_field_of_the_page():
    """A question's form field is q_<id> and its answer is stored under <id>: neither may meet the page's own."""
    import re
    from pathlib import Path

    from connector.config import RESERVED_QUESTION_IDS
    from connector.surveys import web

    template = (Path(web.__file__).parent / "templates" / "survey.html").read_text(encoding="utf-8")
    fields = set(re.findall(r'name="([a-z_]+)"', template))
    assert fields == {"csrf", "lang", "score", "reason", "comment"}
    assert fields | {"reasons"} <= RESERVED_QUESTION_IDS  # "reasons" keys the built-in reasons in answers


def test_question_texts_fall_back_to_the_default_language():
    from connector.surveys.questions import localised

    texts = {"en": "Why?", "de": "Warum?"}
    assert localised(texts, "sv", "de") == ("Warum?", "de")
    assert localised(texts, "en", "de") == ("Why?", "en")
    assert localised({"fi": "Miksi?"}, "sv", "en") == ("Miksi?", "fi")  # never fails, even unvalidated
    assert localised({"en-gb": "Why?", "sv-se": "Varför?"}, "sv", "en") == ("Varför?", "sv-se")
    assert localised({"en-gb": "Why?", "de": "Warum?"}, "sv", "en_GB") == ("Why?", "en-gb")
