"""Terms that distinguish detractors' comments from promoters' comments, found in the data.

The taxonomy (`themes.py`) only finds what someone thought of; this finds what customers actually
say more often when unhappy, such as the name of a system that keeps failing. The method is the
weighted log-odds ratio with an informative Dirichlet prior of Monroe, Colaresi & Quinn (2008),
"Fightin' Words: Lexical Feature Selection and Evaluation for Identifying the Content of Political
Conflict", Political Analysis 16(4), 372-403, section 3.5.1:

    delta_w = log((y_wd + a_w) / (n_d + a_0 - y_wd - a_w)) - log((y_wp + a_w) / (n_p + a_0 - y_wp - a_w))
    var(delta_w) ~= 1 / (y_wd + a_w) + 1 / (y_wp + a_w)
    score_w = delta_w / sqrt(var(delta_w))            (a z-score)

with y_wd, y_wp the counts of term w among detractors and promoters, n_d, n_p their totals, and the
prior a_w the pooled count of w in both groups (a_0 their sum), the usual choice when there is no
separate background corpus. The prior shrinks rare terms towards "no difference", and dividing by
the standard error ranks a term said 30 times above one said twice with the same ratio, which plain
frequency ratios cannot do on a few hundred comments.

Counts are comments, not occurrences: a comment that says "slow" five times counts once, so one long
complaint cannot dominate. Terms are unigrams and bigrams of the comment's words, without stop words
(`stopwords.py`); negation words appear only at the start of bigrams ("not fixed"), never alone,
and a negated word only inside its bigram.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from connector.analytics.stopwords import STOP_WORDS
from connector.analytics.text import clauses, normalize_language, tokens

NEGATION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"not", "no", "nor", "never"}),
    "sv": frozenset({"inte", "ej", "icke", "aldrig", "ingen", "inget", "inga"}),
}


@dataclass(frozen=True)
class Term:
    """A term with its log-odds z-score: positive leans detractor, negative leans promoter, near 0 is
    said alike by both. |score| above 1.96 is the paper's rough line for "not chance" (it is a
    heuristic there too: terms are not independent). Counts are comments that contain the term."""

    term: str
    score: float
    detractor_count: int
    promoter_count: int


@dataclass(frozen=True)
class DistinguishingTerms:
    """The terms that lean most to each side, strongest first."""

    detractor: tuple[Term, ...]
    promoter: tuple[Term, ...]


def comment_terms(text: str, language: str) -> frozenset[str]:
    """The unigrams and bigrams of one comment, stop words and personal-data placeholders left out.

    A bigram is two neighbouring words of the same clause, neither a stop word: "passed between
    teams" gives no "passed teams". A negated word counts only inside its bigram: "still not fixed"
    gives "still" and "not fixed", not "fixed", so "fixed" stays a word of happy customers.
    """
    code = _language(language)
    stop, negation = STOP_WORDS[code], NEGATION_WORDS.get(code, frozenset())
    out: set[str] = set()
    for clause in clauses(text):
        words = [w if w not in stop and len(w) >= 2 else "" for w in tokens(clause)]
        for i, word in enumerate(words):
            if not word:
                continue
            negated = i > 0 and words[i - 1] in negation
            if word not in negation and not negated:
                out.add(word)
            following = words[i + 1] if i + 1 < len(words) else ""
            if following and following not in negation:
                out.add(f"{word} {following}")
    return frozenset(out)


def term_scores(detractor_texts: Iterable[str], promoter_texts: Iterable[str], *, language: str,
                min_count: int = 3) -> list[Term]:
    """Every term said in at least `min_count` comments, with its score, highest score first.

    Texts must already have passed `connector.analytics.pii.redact_personal`: its placeholders are
    dropped here, but a name nobody redacted would become a term like any other word.

    Raises:
        ValueError: for a language without stop words (only en and sv have them).
    """
    detractor = _count(detractor_texts, language)
    promoter = _count(promoter_texts, language)
    prior = detractor + promoter
    n_d, n_p, a_0 = detractor.total(), promoter.total(), prior.total()
    out: list[Term] = []
    if len(prior) < 2:
        return out  # one term alone has nothing to be compared with (and the odds divide by zero)
    for term, a_w in prior.items():
        y_d, y_p = detractor[term], promoter[term]
        if y_d + y_p < min_count:
            continue
        delta = (math.log((y_d + a_w) / (n_d + a_0 - y_d - a_w))
                 - math.log((y_p + a_w) / (n_p + a_0 - y_p - a_w)))
        variance = 1 / (y_d + a_w) + 1 / (y_p + a_w)
        out.append(Term(term, round(delta / math.sqrt(variance), 4), y_d, y_p))
    out.sort(key=lambda t: (-t.score, t.term))
    return out


def distinguishing_terms(detractor_texts: Iterable[str], promoter_texts: Iterable[str], *, language: str,
                         top: int = 10, min_count: int = 3) -> DistinguishingTerms:
    """The `top` terms that lean most towards detractors, and the `top` that lean most towards promoters.

    Args:
        detractor_texts: comments of detractors (redacted), in `language`.
        promoter_texts: comments of promoters (redacted), in `language`.
        language: 'en' or 'sv' (a region such as 'sv-SE' is fine): it picks the stop words. Run
            once per language; mixing languages would only find the languages.
        top: how many terms per side.
        min_count: terms said in fewer comments (both sides together) are left out.

    Raises:
        ValueError: for a language without stop words.
    """
    scored = term_scores(detractor_texts, promoter_texts, language=language, min_count=min_count)
    return DistinguishingTerms(
        detractor=tuple(t for t in scored if t.score > 0)[:top],
        promoter=tuple(sorted((t for t in scored if t.score < 0), key=lambda t: (t.score, t.term)))[:top],
    )


def _language(language: str) -> str:
    code = normalize_language(language)
    if code not in STOP_WORDS:
        raise ValueError(f"no stop words for language {language!r}; supported: {', '.join(sorted(STOP_WORDS))}")
    return code


def _count(texts: Iterable[str], language: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(comment_terms(text, language))
    return counts
