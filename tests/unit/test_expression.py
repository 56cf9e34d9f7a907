"""The rule language: what it accepts, what it refuses at load time, and null-safe evaluation."""

from __future__ import annotations

import pytest

from connector.expression import ExpressionError, compile_expression

SYMBOLS = {"score": "number", "nps": "number", "csat": "number", "ces": "number", "band": "text",
           "sentiment": "text", "themes": "list", "survey": "text"}
CSAT_2 = {"score": 2, "csat": 2, "nps": None, "ces": None, "band": "dissatisfied", "sentiment": "negative",
          "themes": ["slow", "reassigned"], "survey": "resolved"}
NPS_9 = {"score": 9, "nps": 9, "csat": None, "ces": None, "band": "promoter", "sentiment": None, "themes": [],
         "survey": "relationship"}


@pytest.mark.parametrize(("rule", "values", "expected"), [
    ("nps <= 6 or csat <= 2 or ces <= 3", CSAT_2, True),
    ("nps <= 6 or csat <= 2 or ces <= 3", NPS_9, False),  # csat and ces are null: false, not an error
    ("nps >= 9", NPS_9, True),
    ("nps >= 9", CSAT_2, False),
    ("not nps <= 6", CSAT_2, True),  # `nps <= 6` is false for a CSAT answer, so its negation holds
    ("sentiment == \"negative\"", CSAT_2, True),
    ("sentiment == null", NPS_9, True),
    ("sentiment != null", NPS_9, False),
    ("\"slow\" in themes", CSAT_2, True),
    ("\"slow\" not in themes", NPS_9, True),
    ("band in [\"detractor\", \"dissatisfied\", \"difficult\"]", CSAT_2, True),
    ("band in (\"detractor\",)", NPS_9, False),
    ("1 <= score <= 3", CSAT_2, True),
    ("1 <= score <= 3", NPS_9, False),
    ("csat <= 2 and (sentiment == 'negative' or 'not_fixed' in themes)", CSAT_2, True),
    ("survey == 'resolved' and true", CSAT_2, True),
    ("false or score < 0", CSAT_2, False),
])
def test_rules(rule, values, expected):
    assert compile_expression(rule, SYMBOLS)(values) is expected


@pytest.mark.parametrize(("rule", "message"), [
    ("npss <= 6", "unknown name `npss`"),
    ("csat <= 'two'", "compares a number with text"),
    ("__import__('os').system('true')", "is not allowed here"),
    ("score.real > 1", "is not allowed here"),
    ("score + 1 > 2", "is not allowed here"),
    ("themes[0] == 'slow'", "is not allowed here"),
    ("'a' in band", "`in` needs a list"),
    ("band in [sentiment]", "a list holds literal values only"),
    ("csat <=", "cannot read the expression"),
    ("lambda: 1", "is not allowed here"),
    ("(x := 1)", "is not allowed here"),
])
def test_refused_when_loaded(rule, message):
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compile_expression(rule, SYMBOLS)
