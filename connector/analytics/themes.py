"""Themes of survey comments from a configurable taxonomy of keywords and patterns per language.

A taxonomy (YAML; the default ships as `themes.yaml` beside this module) lists themes such as
"slow", "reassigned", "not fixed" with keywords and regular expressions per language. A theme is
tagged on a comment when one of its matchers finds whole words in the comment's language and the
match is not negated ("not fixed" does not tag "fixed"). Rules, not a model: every tag can be
explained by the words that caused it, and an admin can change them without retraining anything.

Negation: a match is negated when one of the language's negation words stands up to `before` words
ahead of it or `after` words behind it, in the same clause (punctuation and words like "but" end a
clause). Matches that contain a negation word themselves ("not fixed", "no updates") are never
negated, and neither are the matches of a theme with ``negatable: false``. Limits (double negation,
"could not have been faster", sarcasm) are listed in docs/analytics.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connector.analytics.text import clauses, guess_language, normalize_language, tokens
from connector.errors import ConfigError, ConfigProblem
from connector.yamlsource import PathKey, YamlDoc, load_yaml

DEFAULT_TAXONOMY = Path(__file__).with_name("themes.yaml")

_THEME_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = frozenset({"negation", "themes"})
_THEME_KEYS = frozenset({"id", "label", "keywords", "patterns", "negatable"})
_NEGATION_KEYS = frozenset({"words", "before", "after", "breaks"})
_BARE_BOOLEAN = "YAML reads a bare no, yes, on or off as true/false: put the word in quotes ('no')"


@dataclass(frozen=True)
class Negation:
    """How negation is written in one language."""

    words: frozenset[str]
    before: int = 3
    after: int = 0
    breaks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Theme:
    """One theme: its id (stable, used in stored scores), its label per language and its matchers."""

    id: str
    labels: Mapping[str, str]
    matchers: Mapping[str, tuple[re.Pattern[str], ...]]
    negatable: bool = True

    def label(self, language: str | None = None) -> str:
        """The label in `language`, else in English, else the id."""
        code = normalize_language(language) or "en"
        return self.labels.get(code) or self.labels.get("en") or self.id


@dataclass(frozen=True)
class Taxonomy:
    """Validated themes in file order, and negation rules per language. `source` names the file."""

    themes: tuple[Theme, ...]
    negation: Mapping[str, Negation] = field(default_factory=lambda: MappingProxyType({}))
    source: str = "<memory>"

    @property
    def languages(self) -> frozenset[str]:
        """The languages at least one theme has matchers for."""
        return frozenset(lang for theme in self.themes for lang in theme.matchers)

    def theme(self, theme_id: str) -> Theme:
        for theme in self.themes:
            if theme.id == theme_id:
                return theme
        raise KeyError(theme_id)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Load and validate a theme taxonomy; None loads the default that ships with vloop.

    Raises:
        ConfigError: with every problem found, each naming the file, the line and the key
            (``themes.yaml:12: themes[1].patterns.en[0]: invalid regular expression: ...``).
    """
    if path is None:
        return default_taxonomy()
    return _parse(load_yaml(path))


@cache
def default_taxonomy() -> Taxonomy:
    """The shipped taxonomy, read once per process."""
    return _parse(load_yaml(DEFAULT_TAXONOMY, display=f"{DEFAULT_TAXONOMY.parent.name}/{DEFAULT_TAXONOMY.name}"))


def themes_of(text: str, language: str | None, taxonomy: Taxonomy | None = None) -> frozenset[str]:
    """The ids of the themes tagged on one comment.

    Args:
        text: the comment.
        language: the response's language ('en', 'sv-SE'...). None means unknown: the language is then
            guessed conservatively from the words. A comment in a language the taxonomy has no
            matchers for (or that cannot be guessed) gets no themes rather than another language's:
            English "fast" is Swedish for "stuck" or "although".
        taxonomy: the taxonomy to use; the shipped default when None.
    """
    taxonomy = taxonomy or default_taxonomy()
    code = normalize_language(language) or guess_language(text)
    if code is None or code not in taxonomy.languages:
        return frozenset()
    negation = taxonomy.negation.get(code)
    parts = clauses(text)
    found = set()
    for theme in taxonomy.themes:
        matchers = theme.matchers.get(code, ())
        if any(_matches(m, part, negation if theme.negatable else None) for m in matchers for part in parts):
            found.add(theme.id)
    return frozenset(found)


def _matches(pattern: re.Pattern[str], clause: str, negation: Negation | None) -> bool:
    return any(negation is None or not _negated(clause, m, negation) for m in pattern.finditer(clause))


def _negated(clause: str, m: re.Match[str], negation: Negation) -> bool:
    if any(t in negation.words for t in tokens(m.group(0))):
        return False  # the matcher spells out the negation itself ("not fixed")
    before = tokens(clause[:m.start()])
    for i in range(len(before) - 1, -1, -1):
        if before[i] in negation.breaks:
            before = before[i + 1:]
            break
    after = tokens(clause[m.end():])
    for i, t in enumerate(after):
        if t in negation.breaks:
            after = after[:i]
            break
    window = (before[-negation.before:] if negation.before else []) + after[:negation.after]
    return any(t in negation.words for t in window)


def keyword_pattern(keyword: str) -> str:
    """The regular expression for a keyword: words matched literally, any whitespace between them,
    and a trailing ``*`` on a word for any ending ("wait*" matches "waited", "waiting")."""
    words = []
    for word in keyword.split():
        stem, star = (word[:-1], True) if word.endswith("*") else (word, False)
        words.append(re.escape(stem) + (r"\w*" if star else ""))
    return r"\s+".join(words)


def _compile(expression: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{expression})(?!\w)", re.IGNORECASE)


# --- validation -----------------------------------------------------------------------------------------


def _parse(doc: YamlDoc) -> Taxonomy:
    problems: list[ConfigProblem] = []
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError([doc.problem((), "a taxonomy is a mapping with the keys negation and themes")])
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(doc.problem((key,), f"unknown key (expected one of: {', '.join(sorted(_TOP_KEYS))})"))
    negation = _parse_negation(doc, data.get("negation", {}), problems)
    themes: list[Theme] = []
    raw_themes = data.get("themes")
    if not isinstance(raw_themes, list) or not raw_themes:
        problems.append(doc.problem(("themes",), "a non-empty list of themes is required"))
        raw_themes = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_themes):
        theme = _parse_theme(doc, ("themes", i), raw, problems)
        if theme is None:
            continue
        if theme.id in seen:
            problems.append(doc.problem(("themes", i, "id"), f"duplicate theme id {theme.id!r}"))
        seen.add(theme.id)
        themes.append(theme)
    if problems:
        raise ConfigError(problems)
    return Taxonomy(themes=tuple(themes), negation=MappingProxyType(negation), source=doc.file)


def _parse_negation(doc: YamlDoc, raw: Any, problems: list[ConfigProblem]) -> dict[str, Negation]:
    out: dict[str, Negation] = {}
    if not isinstance(raw, dict):
        problems.append(doc.problem(("negation",), "must be a mapping of language -> rules"))
        return out
    for lang, rules in raw.items():
        where: PathKey = ("negation", lang)
        if not _language_ok(doc, where, lang, problems):
            continue
        if not isinstance(rules, dict):
            problems.append(doc.problem(where, "must be a mapping with words, before, after, breaks"))
            continue
        for key in rules:
            if key not in _NEGATION_KEYS:
                problems.append(doc.problem(
                    (*where, key), f"unknown key (expected one of: {', '.join(sorted(_NEGATION_KEYS))})"))
        words = _word_list(doc, (*where, "words"), rules.get("words"), problems, required=True)
        breaks = _word_list(doc, (*where, "breaks"), rules.get("breaks", []), problems, required=False)
        window = {}
        for key, default in (("before", 3), ("after", 0)):
            value = rules.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
                problems.append(doc.problem((*where, key), "must be a whole number of words from 0 to 10"))
                value = default
            window[key] = value
        out[lang] = Negation(words=words, before=window["before"], after=window["after"], breaks=breaks)
    return out


def _word_list(doc: YamlDoc, where: PathKey, raw: Any, problems: list[ConfigProblem], *,
               required: bool) -> frozenset[str]:
    if isinstance(raw, list) and any(isinstance(w, bool) for w in raw):
        problems.append(doc.problem(where, _BARE_BOOLEAN))
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(w, str) and w.strip() for w in raw) or (required and not raw):
        problems.append(doc.problem(where, f"must be a {'non-empty ' if required else ''}list of words"))
        return frozenset()
    return frozenset(w.strip().lower() for w in raw)


def _language_ok(doc: YamlDoc, where: PathKey, lang: Any, problems: list[ConfigProblem]) -> bool:
    if not isinstance(lang, str) or normalize_language(lang) != lang:
        problems.append(doc.problem(where, f"{lang!r} is not a language code (2 or 3 lower-case letters: en, sv)"))
        return False
    return True


def _parse_theme(doc: YamlDoc, where: PathKey, raw: Any, problems: list[ConfigProblem]) -> Theme | None:
    if not isinstance(raw, dict):
        problems.append(doc.problem(where, "a theme is a mapping with id, label, keywords and/or patterns"))
        return None
    for key in raw:
        if key not in _THEME_KEYS:
            problems.append(doc.problem(
                (*where, key), f"unknown key (expected one of: {', '.join(sorted(_THEME_KEYS))})"))
    theme_id = raw.get("id")
    if not isinstance(theme_id, str) or not _THEME_ID.match(theme_id):
        problems.append(doc.problem(
            (*where, "id"), "required: lower-case letters, digits and underscores, starting with a letter"))
        theme_id = None
    labels: dict[str, str] = {}
    raw_labels = raw.get("label")
    if not isinstance(raw_labels, dict) or not raw_labels:
        problems.append(doc.problem((*where, "label"), "required: a mapping of language -> label"))
    else:
        for lang, text in raw_labels.items():
            if _language_ok(doc, (*where, "label", lang), lang, problems):
                if isinstance(text, str) and text.strip():
                    labels[lang] = text.strip()
                else:
                    problems.append(doc.problem((*where, "label", lang), "must be a non-empty text"))
    negatable = raw.get("negatable", True)
    if not isinstance(negatable, bool):
        problems.append(doc.problem((*where, "negatable"), "must be true or false"))
        negatable = True
    matchers: dict[str, list[re.Pattern[str]]] = {}
    known = len(problems)
    for kind in ("keywords", "patterns"):
        _parse_matchers(doc, (*where, kind), raw.get(kind, {}), kind, matchers, problems)
    if not matchers and len(problems) == known:
        problems.append(doc.problem(where, "empty theme: give it keywords or patterns in at least one language"))
    if theme_id is None:
        return None
    return Theme(id=theme_id, labels=MappingProxyType(labels),
                 matchers=MappingProxyType({lang: tuple(ms) for lang, ms in matchers.items() if ms}),
                 negatable=negatable)


def _parse_matchers(doc: YamlDoc, where: PathKey, raw: Any, kind: str,
                    into: dict[str, list[re.Pattern[str]]], problems: list[ConfigProblem]) -> None:
    if not isinstance(raw, dict):
        problems.append(doc.problem(where, f"{kind} must be a mapping of language -> list"))
        return
    for lang, items in raw.items():
        at: PathKey = (*where, lang)
        if not _language_ok(doc, at, lang, problems):
            continue
        if not isinstance(items, list):
            problems.append(doc.problem(at, f"must be a list of {kind}"))
            continue
        for j, item in enumerate(items):
            if isinstance(item, bool):
                problems.append(doc.problem((*at, j), _BARE_BOOLEAN))
                continue
            if not isinstance(item, str) or not item.strip():
                problems.append(doc.problem((*at, j), "must be a non-empty text"))
                continue
            expression = keyword_pattern(item) if kind == "keywords" else item
            try:
                re.compile(expression)  # first alone, so an error's position is one in the text written
                compiled = _compile(expression)
            except re.error as exc:
                problems.append(doc.problem((*at, j), f"invalid regular expression: {exc}"))
                continue
            if compiled.fullmatch(""):
                problems.append(doc.problem((*at, j), "matches empty text, so it would tag every comment"))
                continue
            into.setdefault(lang, []).append(compiled)
