"""Which field type holds which write-back value (`vloop setup`), as tables."""

from __future__ import annotations

import pytest

from connector.systems.fieldtypes import (
    JIRA_CREATE,
    JIRA_TYPES,
    SERVICENOW_TYPES,
    fits,
    missing_options,
    needed,
    servicenow_fields,
    too_short,
)
from connector.systems.setup import FieldCheck, WriteBackCheck

SN = [
    ("score", "integer", True), ("score", "decimal", True), ("score", "float", True), ("score", "string", True),
    ("score", "glide_date_time", False), ("score", "boolean", False), ("score", "reference", False),
    ("band", "string", True), ("band", "choice", True), ("band", "integer", False),
    ("kind", "string", True), ("survey", "choice", True), ("sentiment", "string", True),
    ("sentiment", "journal_input", False),
    ("answered_at", "glide_date_time", True), ("answered_at", "string", False), ("answered_at", "glide_date", False),
    ("note", "journal_input", True), ("note", "journal", True), ("note", "string", False),
    ("unknown", "string", False),
]
JIRA = [
    ("score", "number", True), ("score", "string", True), ("score", "option", False), ("score", "datetime", False),
    ("band", "string", True), ("band", "option", True), ("band", "number", False), ("band", "array", False),
    ("kind", "option", True), ("survey", "string", True), ("sentiment", "string", True),
    ("answered_at", "datetime", True), ("answered_at", "date", False), ("answered_at", "string", False),
    ("score", "sd-feedback", False), ("note", "string", False),
]


@pytest.mark.parametrize(("value", "field_type", "ok"), SN)
def test_servicenow_internal_types(value, field_type, ok):
    assert fits("servicenow", value, field_type) is ok


@pytest.mark.parametrize(("value", "field_type", "ok"), JIRA)
def test_jira_schema_types(value, field_type, ok):
    assert fits("jira", value, field_type) is ok


def test_every_write_back_value_has_a_rule_and_a_field_to_create():
    from typing import get_args

    from connector.mapping import WriteBackValue

    values = set(get_args(WriteBackValue))
    assert values <= set(SERVICENOW_TYPES) and values == set(JIRA_TYPES) == set(JIRA_CREATE)
    for value in values:  # what --create makes is what --check accepts
        created = {"float": "number", "textfield": "string", "datetime": "datetime"}[
            JIRA_CREATE[value].type.rsplit(":", 1)[1]]
        assert fits("jira", value, created)


@pytest.mark.parametrize(("system", "value", "text"), [
    ("servicenow", "score", "Decimal or Floating Point Number or Integer or String"),
    ("servicenow", "answered_at", "Date/Time"),
    ("jira", "band", "Select list (single choice) or Short text"),
    ("jira", "answered_at", "Date Time Picker"),
])
def test_needed_names_types_as_an_admin_sees_them(system, value, text):
    assert needed(system, value) == text


@pytest.mark.parametrize(("value", "options", "lacking"), [
    ("band", ["detractor", "passive", "promoter", "dissatisfied", "neutral", "satisfied", "difficult", "easy"], []),
    ("band", ["detractor", "passive", "promoter"], ["difficult", "dissatisfied", "easy", "neutral", "satisfied"]),
    ("kind", ["nps", "csat"], ["ces"]),
    ("survey", [], []),  # open set: any option list may be right
    ("sentiment", ["x"], []),
])
def test_missing_options_of_closed_sets(value, options, lacking):
    assert missing_options(value, options) == lacking


@pytest.mark.parametrize(("value", "max_length", "longest"), [
    ("band", 40, None), ("band", 12, None), ("band", 11, "dissatisfied"), ("kind", 4, None), ("kind", 3, "csat"),
    ("survey", 1, None), ("band", None, None), ("band", 0, None),
])
def test_too_short_for_the_longest_value(value, max_length, longest):
    assert too_short(value, max_length) == longest


def test_servicenow_fields_to_add_recommended_and_from_a_mapping():
    recommended = [f.describe() for f in servicenow_fields({})]
    assert recommended == [
        'u_vloop_score: Integer, label "VLoop score"',
        'u_vloop_band: String (40), label "VLoop band"',
        'u_vloop_sentiment: String (20), label "VLoop sentiment" (optional)',
        'u_vloop_answered_at: Date/Time, label "VLoop answered at" (optional)',
    ]
    mapped = servicenow_fields({"u_csat_score": "score", "u_vloop_band": "band", "u_when": "answered_at"})
    assert [(f.name, f.type, f.label, f.optional) for f in mapped] == [
        ("u_csat_score", "Integer", "Csat score", False), ("u_vloop_band", "String (40)", "VLoop band", False),
        ("u_when", "Date/Time", "When", False)]


def test_check_lines_and_readiness():
    check = WriteBackCheck("snow", (
        FieldCheck("u_vloop_score", "score", "ok", "Integer on incident"),
        FieldCheck("u_vloop_band", "band", "missing", "not a column", "add it"),
    ), ("a note",))
    assert check.lines() == ["snow: u_vloop_score (score): ok — Integer on incident",
                             "snow: u_vloop_band (band): missing — not a column; fix: add it", "snow: a note"]
    assert not check.ok
    assert WriteBackCheck("jsm", (FieldCheck("{S}", "score", "created"),)).ok
    assert WriteBackCheck("jsm", ()).ok
