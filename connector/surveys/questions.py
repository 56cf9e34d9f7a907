"""Extra questions of a survey (config `surveys.<name>.questions`) on the survey page.

What the page shows (texts in the page's language, else the survey's default_language) and what a POST
stores: `{question id: value}` with a choice id, a sorted list of choice ids, true/false or a stripped
text. A question limited to some score bands is decided by the submitted score: its answer is dropped
for any other score, whatever the browser showed. Unknown question fields are never read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from connector.config import QuestionConfig, language_code, same_language
from connector.surveys.definitions import scale
from connector.surveys.i18n import text

MAX_TEXT = 500
FIELD_PREFIX = "q_"  # form field of a question: q_<id>
YES_NO = {"yes": True, "no": False}
TONES = ("negative", "neutral", "positive")


def clean_text(raw: str) -> str:
    # Browsers count a line break as one character for maxlength but send CR LF; PostgreSQL refuses NUL.
    return raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()


def localised(texts: Mapping[str, str], language: str, default_language: str) -> tuple[str, str]:
    """(text, its language): the page's language, else the survey's default, else any there is.

    `sv` takes a text keyed `sv-se` when there is no plain `sv` one.
    """
    for wanted in (language_code(language), language_code(default_language), "en"):
        if wanted in texts:
            return texts[wanted], wanted
        for code in sorted(texts):
            if same_language(code, wanted):
                return texts[code], code
    code = sorted(texts)[0]
    return texts[code], code


def applies(question: QuestionConfig, kind: str, score: int | None) -> bool:
    """Whether the question is asked after this score (a question for some bands needs a score)."""
    if not question.bands:
        return True
    return score is not None and scale(kind).band(score) in question.bands


@dataclass(frozen=True)
class ShownChoice:
    value: str
    label: str
    lang: str


@dataclass(frozen=True)
class ShownQuestion:
    """A question as the template draws it."""

    id: str
    type: str
    field: str
    legend: str
    lang: str  # of the legend: differs from the page's when the text fell back
    required: bool
    bands: str  # space-separated band names for the script; empty: every score
    hint: str | None  # without the script: after which scores it is meant
    choices: list[ShownChoice]
    value: Any  # what to show as entered: a choice id, a set of ids, "yes"/"no" or a text
    error: str | None


def _band_hint(question: QuestionConfig, kind: str, language: str) -> str | None:
    if not question.bands:
        return None
    sc = scale(kind)
    tones = {TONES[i] for i, (band, _, _) in enumerate(sc.bands) if band in question.bands}
    if len(tones) == 1:
        return str(text(language, f"page.reasons_hint.{tones.pop()}"))
    if len(tones) == 2:
        missing = next(t for t in TONES if t not in tones)
        return str(text(language, f"page.questions.unless.{missing}"))
    return None


def shown(questions: Sequence[QuestionConfig], kind: str, language: str, default_language: str,
          values: Mapping[str, Any] | None = None, errors: Mapping[str, str] | None = None) -> list[ShownQuestion]:
    values, errors = values or {}, errors or {}
    out = []
    for q in questions:
        legend, legend_lang = localised(q.text, language, default_language)
        if q.type == "yes_no":
            choices = [ShownChoice(v, str(text(language, f"page.questions.answer_{v}")), language) for v in YES_NO]
        else:
            choices = [ShownChoice(c.id, *localised(c.text, language, default_language)) for c in q.choices or ()]
        out.append(ShownQuestion(q.id, q.type, FIELD_PREFIX + q.id, legend, legend_lang, q.required,
                                 " ".join(q.bands or ()), _band_hint(q, kind, language), choices,
                                 values.get(q.id), errors.get(q.id)))
    return out


@dataclass(frozen=True)
class ReadAnswers:
    answers: dict[str, Any]  # what is stored, for the questions that apply to the score
    errors: dict[str, str]  # question id -> message shown next to the question
    summary: list[str]  # the same problems for the list at the top of the page
    values: dict[str, Any]  # what was entered, to show again when the form comes back


def read(form: MultiDict[str, str], questions: Sequence[QuestionConfig], kind: str, score: int | None,
         language: str, default_language: str) -> ReadAnswers:
    """The answers of the questions that apply to `score`, checked; `score` None checks only band-free ones."""
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    summary: list[str] = []
    values: dict[str, Any] = {}

    def problem(q: QuestionConfig, key: str, **args: Any) -> None:
        here = str(text(language, f"page.questions.errors.{key}", **args))
        errors[q.id] = here
        question = localised(q.text, language, default_language)[0]
        summary.append(str(text(language, "page.questions.errors.summary", question=question, problem=here)))

    for q in questions:
        field = FIELD_PREFIX + q.id
        picked = [v for v in dict.fromkeys(form.getlist(field)) if v != ""]
        if q.type == "text":
            entered = clean_text(form.get(field, ""))
            values[q.id] = entered
        elif q.type == "multi":
            values[q.id] = set(picked)
        else:
            values[q.id] = picked[0] if len(picked) == 1 else None
        if not applies(q, kind, score):
            continue  # another band's question: never stored; unchecked when the score is missing
        offered = YES_NO if q.type == "yes_no" else {c.id: c.id for c in q.choices or ()}
        if q.type == "text":
            if len(entered) > MAX_TEXT:
                problem(q, "too_long", max=MAX_TEXT)
            elif entered:
                answers[q.id] = entered
        elif any(v not in offered for v in picked) or (q.type != "multi" and len(picked) > 1):
            problem(q, "unknown")
        elif picked:
            answers[q.id] = sorted(picked) if q.type == "multi" else offered[picked[0]]
        if q.required and q.id not in answers and q.id not in errors:
            problem(q, "required")
    return ReadAnswers(answers, errors, summary, values)
