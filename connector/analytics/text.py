"""Small text helpers shared by sentiment, themes and distinguishing terms: language codes, a
conservative language guess for comments that carry none, normalisation and tokens.

Pure functions; nothing is loaded or downloaded.
"""

from __future__ import annotations

import re
import unicodedata

# BCP 47 "undetermined" and friends: a response that says this says nothing.
_UNDETERMINED = frozenset({"", "und", "mul", "zxx", "xx", "unknown"})
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_NOT_IRREGULAR = {"can't": "can not", "cannot": "can not", "won't": "will not", "shan't": "shall not"}
_NOT = re.compile(r"(?i)\b(?:can't|cannot|won't|shan't)\b|(?<=[^\W\d_])n't\b")
_PLACEHOLDER = re.compile(r"\[[a-z]+\]")  # what connector.analytics.pii puts in place of personal data
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_CLAUSE = re.compile(r"[.,;:!?()\[\]\"\n\r\t]+|\s[-\u2013\u2014]+\s")

# Words that are frequent in any English comment and are not words of Swedish (or German, Dutch,
# Norwegian, Danish...) spelled the same. "i", "in", "be", "man", "under" are left out on purpose: they
# are common Swedish words too.
_ENGLISH_MARKERS = frozenset({
    "the", "and", "to", "it", "is", "was", "you", "my", "not", "of", "for", "with", "this", "that", "on",
    "have", "has", "had", "but", "they", "we", "me", "very", "are", "were", "your", "been", "would",
    "could", "did", "it's", "i'm", "thanks", "thank", "what", "when", "which", "there", "their", "from",
    "at", "an", "a", "our", "so", "no", "still", "again", "got", "nobody", "after", "took", "great", "good",
    "quick", "slow", "helpful", "fixed",
})
_SWEDISH_MARKERS = frozenset({
    "och", "att", "det", "är", "jag", "inte", "på", "med", "för", "som", "en", "ett", "till", "av", "har",
    "var", "mig", "den", "så", "om", "men", "vi", "ni", "du", "hade", "kan", "fick", "tack", "löst", "bra",
    "mycket", "ingen", "aldrig", "fortfarande", "ärendet", "snabbt", "direkt", "efter", "dagar",
})
# Frequent function words of other languages a service desk meets: their presence vetoes a guess.
_OTHER_MARKERS = frozenset({
    "und", "der", "die", "das", "ist", "nicht", "ich", "le", "la", "les", "et", "est", "je", "pas", "el",
    "los", "las", "y", "es", "og", "ikke", "jeg", "het", "een", "niet", "ik", "ei", "ole",
})
_SWEDISH_LETTERS = re.compile(r"[åäöÅÄÖ]")


def normalize_language(code: str | None) -> str | None:
    """The primary language subtag in lower case ('sv-SE' -> 'sv', 'EN_gb' -> 'en').

    Returns None when the code says nothing ('', 'und', None) or is not a language code at all, so
    callers treat it as "language unknown" and may guess.
    """
    if code is None:
        return None
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    if primary in _UNDETERMINED or not _LANGUAGE.match(primary):
        return None
    return primary


def guess_language(text: str) -> str | None:
    """'en' or 'sv' when the comment plainly is that language, else None.

    Deliberately conservative, for the few comments that arrive without a language (native CSAT
    answers collected from a system): it counts frequent function words of each language and guesses
    only with at least two markers of one language, none of the other ones, and for English no
    letters outside ASCII. Short comments ("Great!") stay unknown. A statistical language identifier
    would not do much better on a handful of words, and would cost a model file.
    """
    words = tokens(text)
    if not words:
        return None
    english = sum(w in _ENGLISH_MARKERS for w in words)
    swedish = sum(w in _SWEDISH_MARKERS for w in words)
    if any(w in _OTHER_MARKERS for w in words):
        return None
    if (english >= 2 and swedish == 0 and english >= 0.2 * len(words)
            and all(ch.isascii() for ch in text if ch.isalpha())):
        return "en"
    if swedish >= 2 and english == 0 and (swedish >= 0.2 * len(words) or _SWEDISH_LETTERS.search(text)):
        return "sv"
    return None


def normalize_text(text: str) -> str:
    """NFC form, straight apostrophes, and English "n't" spelled as a separate "not".

    Composed characters make "Å" one letter whichever keyboard typed it; a separate "not" lets
    negation rules and bigrams see "wasn't fixed" as "was not fixed".
    """
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
    return _NOT.sub(lambda m: _NOT_IRREGULAR.get(m.group(0).lower(), " not"), text)


def clauses(text: str) -> list[str]:
    """`text` cut at punctuation (and at pii placeholders), so word pairs never reach across a comma."""
    text = _PLACEHOLDER.sub("\n", normalize_text(text))
    return [part for part in _CLAUSE.split(text) if part.strip()]


def tokens(text: str) -> list[str]:
    """Lower-case word tokens: letters only (numbers dropped), an inner apostrophe kept ("i'm").

    Placeholders left by `connector.analytics.pii` ("[email]", "[name]"...) are dropped, so redacted
    personal data never becomes a term.
    """
    text = _PLACEHOLDER.sub(" ", normalize_text(text))
    return [t.lower() for t in _TOKEN.findall(text)]
