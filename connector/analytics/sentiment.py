"""Sentiment of a survey comment, offline, in the languages we have a validated analyser for.

English comments are scored with VADER (Hutto & Gilbert 2014, the `vaderSentiment` package), a
lexicon and rule-based analyser whose lexicon ships inside the package: nothing is downloaded at run
time. A comment in any other language is returned unscored with the reason, never scored with the
English lexicon: VADER would read Swedish "glad" or "bad" as English words and call everything else
neutral, which looks like a measurement and is not one.

Labels use the thresholds VADER's README recommends for its compound score
(https://github.com/cjhutto/vaderSentiment#about-the-scoring): positive >= 0.05, negative <= -0.05,
neutral in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from connector.analytics.text import guess_language, normalize_language, normalize_text

Label = Literal["negative", "neutral", "positive"]

SUPPORTED_LANGUAGES = frozenset({"en"})
THRESHOLD = 0.05  # VADER README: compound >= 0.05 positive, <= -0.05 negative


@dataclass(frozen=True)
class Sentiment:
    """The sentiment of one comment.

    `score` is VADER's compound score in [-1, 1] and `label` its band; both are None when the
    comment is not scored, and `reason` then says why ("language sv not supported", "empty
    comment", "language unknown"). `language` is the language the comment was scored in, and
    `detected` is True when that language was guessed from the text because the response had none.
    """

    score: float | None
    label: Label | None
    scored: bool
    language: str | None = None
    detected: bool = False
    reason: str | None = None

    @classmethod
    def unscored(cls, reason: str, language: str | None = None) -> Sentiment:
        return cls(score=None, label=None, scored=False, language=language, reason=reason)


def label_of(score: float) -> Label:
    """VADER's recommended band for a compound score."""
    if score >= THRESHOLD:
        return "positive"
    if score <= -THRESHOLD:
        return "negative"
    return "neutral"


def sentiment(text: str, language: str | None) -> Sentiment:
    """Score one comment.

    Args:
        text: the comment, ideally already redacted (placeholders such as "[name]" are neutral words).
        language: the response's language ('en', 'sv', 'sv-SE'), from the survey page or the person.
            None (or 'und') means unknown: English is then detected conservatively from the words, and
            anything that is not plainly English stays unscored.

    Returns:
        A `Sentiment`; `scored` is False for empty comments and for languages we cannot score.
    """
    if not text or not text.strip():
        return Sentiment.unscored("empty comment", normalize_language(language))
    code = normalize_language(language)
    detected = False
    if code is None:
        code = guess_language(text)
        detected = code is not None
        if code is None:
            return Sentiment.unscored("language unknown")
    if code not in SUPPORTED_LANGUAGES:
        return Sentiment.unscored(f"language {code} not supported", code)
    score = round(float(_analyser().polarity_scores(normalize_text(text))["compound"]), 4)
    return Sentiment(score=score, label=label_of(score), scored=True, language=code, detected=detected)


@cache
def _analyser() -> SentimentIntensityAnalyzer:
    # Reads the two lexicon files that ship inside the vaderSentiment package (~30 ms), once.
    return SentimentIntensityAnalyzer()
