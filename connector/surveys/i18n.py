"""Survey texts per language, with English as the fallback for any missing key.

Texts live in `texts/<language>/*.yaml` (survey.yaml: questions and reasons; page.yaml: the survey
page; email.yaml: the invitation mail). Keys are dotted paths; values may hold `{placeholders}`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEXTS = Path(__file__).resolve().parent / "texts"
FALLBACK = "en"


@cache
def _catalogue(language: str) -> dict[str, Any]:
    folder = TEXTS / language
    merged: dict[str, Any] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        merged.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return merged


def languages() -> list[str]:
    return sorted(p.name for p in TEXTS.iterdir() if p.is_dir())


def _lookup(catalogue: dict[str, Any], key: str) -> Any:
    value: Any = catalogue
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def pick_language(*candidates: str | None, offered: list[str] | None = None) -> str:
    """The first candidate we have texts for (`sv-SE` matches `sv`), else English."""
    available = offered or languages()
    for candidate in candidates:
        if not candidate:
            continue
        code = candidate.replace("_", "-").lower()
        for option in (code, code.split("-")[0]):
            if option in available:
                return option
    return FALLBACK


def text(language: str, key: str, **values: Any) -> Any:
    """The text for `key` in `language`, else in English; strings are formatted with `values`."""
    found = _lookup(_catalogue(language), key)
    if found is None:
        found = _lookup(_catalogue(FALLBACK), key)
    if found is None:
        raise KeyError(f"no text {key!r} in {language} or {FALLBACK}")
    return found.format(**values) if isinstance(found, str) and values else found
