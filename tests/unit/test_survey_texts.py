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
