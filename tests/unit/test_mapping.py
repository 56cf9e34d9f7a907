"""Mapping a raw record to a ticket: paths, transforms, maps and defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.mapping import (
    FieldSpec,
    MappingValueError,
    field_value,
    load_mapping,
    parse_datetime,
    parse_mapping,
    to_ticket,
)
from connector.yamlsource import parse_yaml

SN_ROW = {
    "sys_id": "a" * 32, "number": "INC0010001", "short_description": "VPN down", "state": "6",
    "opened_at": "2026-11-01 08:00:00", "resolved_at": "2026-11-02 09:30:00", "closed_at": "",
    "sys_updated_on": "2026-11-02 09:30:05", "caller_id": "c" * 32, "caller_id.email": " Anna.Berg@Example.com ",
    "caller_id.name": "Anna Berg", "caller_id.preferred_language": "sv", "caller_id.time_zone": "Europe/Stockholm",
    "assigned_to": "", "assigned_to.email": "", "assigned_to.name": "", "assignment_group.name": "Network",
    "business_service.name": "VPN", "category": "network", "priority": "3", "contact_type": "email",
    "reopen_count": "1", "reassignment_count": "2",
}
JIRA_ISSUE = {
    "id": "10001", "key": "ITSD-1",
    "fields": {
        "summary": "Laptop broken", "status": {"name": "Resolved", "statusCategory": {"key": "done"}},
        "created": "2026-11-01T10:00:00.000+0300", "resolutiondate": "2026-11-02T12:00:00.123+0300",
        "updated": "2026-11-02T12:00:01.000+0300",
        "reporter": {"accountId": "5f00abc", "emailAddress": None, "displayName": "Hidden Person",
                     "timeZone": "Europe/Helsinki"},
        "assignee": None, "customfield_10050": {"value": "Hardware"}, "customfield_10051": {"value": "hardware"},
        "components": [{"name": "Laptop"}, {"name": "Docking"}], "priority": {"name": "High"},
        "customfield_10060": "fi",
    },
}


def test_servicenow_row_becomes_a_ticket():
    mapping = load_mapping("servicenow-incident", Path("."))
    ticket = to_ticket(mapping, "snow", SN_ROW)
    assert ticket.state == "resolved" and ticket.status == "Resolved"
    assert ticket.resolved_at == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert ticket.closed_at is None
    assert ticket.requester is not None and ticket.requester.key == "anna.berg@example.com"
    assert ticket.requester.language == "sv" and ticket.language == "sv"
    assert ticket.assignee is None
    assert (ticket.group, ticket.service, ticket.priority) == ("Network", "VPN", 3)
    assert (ticket.reopen_count, ticket.reassignment_count) == (1, 2)
    assert ticket.raw["caller_id.email"] == " Anna.Berg@Example.com "


def test_jira_issue_with_hidden_email_is_keyed_by_account_id():
    mapping = load_mapping("jira-service-management", Path(".")).with_field_ids(
        {"Support group": "customfield_10050", "Category": "customfield_10051", "Request language": "customfield_10060"})
    ticket = to_ticket(mapping, "jsm", JIRA_ISSUE)
    assert ticket.requester is not None and ticket.requester.key == "jsm:5f00abc"
    assert ticket.requester.email is None
    assert ticket.resolved_at == datetime(2026, 11, 2, 9, 0, 0, 123000, tzinfo=UTC)
    assert (ticket.group, ticket.category, ticket.service, ticket.priority) == ("Hardware", "hardware", "Laptop", 2)
    assert ticket.language == "fi"
    assert ticket.state == "resolved"


@pytest.mark.parametrize(("spec", "raw", "expected"), [
    ({"source": "a"}, {"a": "x"}, "x"),
    ({"source": "a"}, {"a": ""}, None),
    ({"source": "a", "default": "d"}, {"a": ""}, "d"),
    ({"source": "a", "transform": "lower"}, {"a": "MiXed"}, "mixed"),
    ({"source": "a", "transform": ["strip", "upper"]}, {"a": " x "}, "X"),
    ({"source": "a", "transform": "int"}, {"a": "3"}, 3),
    ({"source": "a", "transform": "int"}, {"a": "3.0"}, 3),
    ({"source": "a", "transform": "bool"}, {"a": "true"}, True),
    ({"source": "a.b"}, {"a": {"b": 1}}, 1),
    ({"source": "a.b"}, {"a": None}, None),
    ({"source": "a.name", "transform": "first"}, {"a": [{"name": "p"}, {"name": "q"}]}, "p"),
    ({"source": "a.name", "transform": "join"}, {"a": [{"name": "p"}, {"name": "q"}]}, "p, q"),
    ({"source": "a.name", "transform": "first"}, {"a": []}, None),
    ({"source": "a", "map": {"6": "resolved"}, "default": "open"}, {"a": "6"}, "resolved"),
    ({"source": "a", "map": {"6": "resolved"}, "default": "open"}, {"a": "2"}, "open"),
    ({"source": "a", "map": {"6": "resolved"}, "default": "open"}, {}, "open"),
    ({"source": "a.b"}, {"a.b": "flat wins"}, "flat wins"),
])
def test_field_values(spec, raw, expected):
    assert field_value(FieldSpec.model_validate(spec), raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("2016-12-14 02:46:44", datetime(2016, 12, 14, 2, 46, 44, tzinfo=UTC)),
    ("2022-06-09T16:29:31.871-0700", datetime(2022, 6, 9, 23, 29, 31, 871000, tzinfo=UTC)),
    ("2022-06-09T16:29:31+02:00", datetime(2022, 6, 9, 14, 29, 31, tzinfo=UTC)),
    (1732877091000, datetime(2024, 11, 29, 10, 44, 51, tzinfo=UTC)),
    ("", None),
    (None, None),
])
def test_datetimes_are_aware_utc(raw, expected):
    assert parse_datetime(raw) == expected


def test_unparseable_value_names_the_field():
    mapping = load_mapping("servicenow-incident", Path("."))
    with pytest.raises(MappingValueError, match="field priority from priority"):
        to_ticket(mapping, "snow", {**SN_ROW, "priority": "high"})


def test_unknown_state_value_asks_for_a_map_entry():
    mapping = load_mapping("jira-service-management", Path(".")).with_field_ids(
        {"Support group": "x", "Category": "y", "Request language": "z"})
    issue = {**JIRA_ISSUE, "fields": {**JIRA_ISSUE["fields"], "status": {"statusCategory": {"key": "weird"}}}}
    mapping = mapping.model_copy(update={"fields": {**mapping.fields, "state": FieldSpec(
        source="fields.status.statusCategory.key")}})
    with pytest.raises(MappingValueError, match="extend its map"):
        to_ticket(mapping, "jsm", issue)


def test_mapping_problems_are_reported_with_lines():
    doc = parse_yaml("kind: servicenow\ntable: incident\nresolved: {query: stateIN6}\nfields:\n  id: sys_id\n"
                     "  colour: x\n  number: {source: number, transform: shout}\n", "m.yaml")
    with pytest.raises(ConfigError) as info:
        parse_mapping(doc)
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("m.yaml:3: resolved.field: required key is missing") for p in found), found
    assert any(p.startswith("m.yaml:7: fields.number.transform[0]:") for p in found), found


def test_mapping_without_required_fields_is_refused():
    doc = parse_yaml("kind: servicenow\ntable: incident\nresolved: {query: a, field: b}\nfields:\n  id: sys_id\n",
                     "m.yaml")
    with pytest.raises(ConfigError, match="number, title, state, resolved_at must be mapped"):
        parse_mapping(doc)


JIRA_MAPPING = ("kind: {kind}\ntable: incident\nresolved: {{jql: resolution IS NOT EMPTY, query: x, field: resolved}}\n"
                "fields: {{id: id, number: key, title: fields.summary, state: x, resolved_at: y}}\n"
                "write_back:\n  fields:\n{fields}")


@pytest.mark.parametrize("fields", ['    "{Customer score}": score\n', "    customfield_10042: score\n",
                                    '    "{Customer band}": band\n    customfield_10042: score\n'])
def test_jira_write_back_fields_by_display_name_or_by_id(fields):
    mapping = parse_mapping(parse_yaml(JIRA_MAPPING.format(kind="jira", fields=fields), "m.yaml"))
    assert mapping.write_back is not None and "score" in mapping.write_back.fields.values()


def test_a_jira_write_back_field_neither_braced_nor_an_id_is_refused_with_the_fix():
    text = JIRA_MAPPING.format(kind="jira", fields="    Customer score: score\n    customfield_10042: band\n")
    with pytest.raises(ConfigError) as info:
        parse_mapping(parse_yaml(text, "m.yaml"))
    assert [str(p) for p in info.value.problems] == [
        "m.yaml:5: write_back: fields 'Customer score': name each Jira field by its display name in braces, "
        "quoted (\"{Customer score}\"), or by its id (customfield_10042)"]
    # ServiceNow names columns, never braces: its keys are not Jira's business.
    servicenow = JIRA_MAPPING.format(kind="servicenow", fields="    u_vloop_score: score\n")
    assert parse_mapping(parse_yaml(servicenow, "m.yaml")).write_back is not None
