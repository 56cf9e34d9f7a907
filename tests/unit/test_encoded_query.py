"""Encoded query parsing and evaluation (reference/servicenow-api.md §3.3), table-driven."""

from __future__ import annotations

import pytest

from connector.sandbox.encoded_query import Condition, OrderBy, parse, sort_key

ROW = {
    "number": "INC0010042",
    "state": "6",
    "priority": "3",
    "category": "network",
    "short_description": "VPN is very slow",
    "resolved_at": "2026-01-15 08:30:00",
    "closed_at": "",
    "sys_id": "5f3c0000000000000000000000000abc",
    "caller_id": "u1",
}
WALK = {("u1", "email"): "anna@example.com", ("u1", "name"): "Anna Berg"}


def walk(row, path):
    ref, _, column = path.partition(".")
    return WALK.get((row.get(ref, ""), column), "")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", True),
        ("state=6", True),
        ("state=7", False),
        ("state!=7", True),
        ("state!=6", False),
        ("stateIN6,7", True),
        ("stateIN1,2,3", False),
        ("stateNOTIN1,2,3", True),
        ("stateNOTIN6,7", False),
        ("priority<4", True),
        ("priority<=3", True),
        ("priority>3", False),
        ("priority>=3", True),
        ("state>10", False),  # numeric field: 6 > 10 is false (as strings "6" > "10" would be true)
        ("state<10", True),
        ("state=06", True),  # integers compare as integers in numeric fields
        ("number=INC0010042", True),
        ("number=inc0010042", False),  # values are case-sensitive
        ("numberSTARTSWITHINC001", True),
        ("numberSTARTSWITHINC002", False),
        ("short_descriptionLIKEslow", True),
        ("short_descriptionLIKESlow", False),
        ("closed_atISEMPTY", True),
        ("closed_atISNOTEMPTY", False),
        ("resolved_atISNOTEMPTY", True),
        ("resolved_at>=2026-01-15 08:30:00", True),
        ("resolved_at>2026-01-15 08:30:00", False),
        ("resolved_at<2026-01-15 08:30:01", True),
        ("resolved_at>=2026-01-15", True),  # a date prefix compares correctly as a string
        ("closed_at<2030-01-01 00:00:00", False),  # empty values never satisfy a range
        ("closed_at>2000-01-01 00:00:00", False),
        ("closed_at=", True),
        ("state=6^priority=3", True),
        ("state=6^priority=4", False),
        ("state=7^ORstate=6", True),
        ("state=7^ORpriority=3", True),
        ("state=7^ORstate=8^priority=3", False),
        ("priority=3^state=7^ORstate=6", True),  # ^OR binds to the condition just before it
        ("priority=4^state=7^ORstate=6", False),
        ("state=7^NQstate=6", True),
        ("state=7^NQstate=8", False),
        ("state=6^priority=4^NQcategory=network", True),
        ("state=6^priority=4^NQcategory=hardware", False),
        ("caller_id.email=anna@example.com", True),
        ("caller_id.email=other@example.com", False),
        ("caller_id.nameSTARTSWITHAnna", True),
        ("state=6^ORDERBYnumber^ORDERBYDESCpriority", True),
        ("state=6^EQ", True),
    ],
)
def test_matches(query, expected):
    assert parse(query).matcher(value_of=walk)(ROW) is expected


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("", ()),
        ("ORDERBYnumber", (OrderBy("number"),)),
        ("active=true^ORDERBYnumber^ORDERBYDESCcategory", (OrderBy("number"), OrderBy("category", True))),
        # Keyset queries repeat the order in every NQ group; each field counts once, first mention wins.
        ("a>1^ORDERBYresolved_at^ORDERBYsys_id^NQa=1^sys_id>x^ORDERBYresolved_at^ORDERBYsys_id",
         (OrderBy("resolved_at"), OrderBy("sys_id"))),
    ],
)
def test_order_by(query, order):
    assert parse(query).order_by == order


@pytest.mark.parametrize(
    ("query", "conditions"),
    [
        ("stateIN6,7", [Condition("state", "IN", "6,7")]),
        ("state!=7", [Condition("state", "!=", "7")]),
        ("closed_atISEMPTY", [Condition("closed_at", "ISEMPTY", "")]),
        ("incident_state=1", [Condition("incident_state", "=", "1")]),  # "IN" inside a field name is no operator
        ("short_descriptionLIKEa=b", [Condition("short_description", "LIKE", "a=b")]),
        ("short_description=a^^b", [Condition("short_description", "=", "a^b")]),  # ^^ escapes a caret
        ("caller_id=javascript:gs.getUserID()",
         [Condition("caller_id", "=", "javascript:gs.getUserID()", supported=False)]),
    ],
)
def test_parse_conditions(query, conditions):
    assert list(parse(query).conditions()) == conditions


@pytest.mark.parametrize(
    ("query", "bound"),
    [
        ("stateIN6,7^resolved_at>=2026-01-01 00:00:00^ORDERBYresolved_at^ORDERBYsys_id", "2026-01-01 00:00:00"),
        # The keyset continuation: the loosest of the groups' bounds.
        ("stateIN6,7^resolved_at>2026-01-02 00:00:00^ORDERBYresolved_at^ORDERBYsys_id"
         "^NQstateIN6,7^resolved_at=2026-01-02 00:00:00^sys_id>abc^ORDERBYresolved_at^ORDERBYsys_id",
         "2026-01-02 00:00:00"),
        ("resolved_at>=2026-01-05 00:00:00^NQresolved_at>=2026-01-03 00:00:00^ORDERBYresolved_at",
         "2026-01-03 00:00:00"),
        ("resolved_at>=2026-01-01 00:00:00^resolved_at>=2026-02-01 00:00:00^ORDERBYresolved_at",
         "2026-02-01 00:00:00"),  # ANDed bounds: the tighter one
        ("resolved_at>=2026-01-05 00:00:00^NQstate=1^ORDERBYresolved_at", None),  # one group is unbounded
        ("resolved_at>=2026-01-05 00:00:00^ORresolved_atISEMPTY^ORDERBYresolved_at", None),  # OR loosens it
        ("resolved_at<2026-01-05 00:00:00^ORDERBYresolved_at", None),
        ("resolved_at>=2026-01-05 00:00:00", None),  # no ORDERBY
        ("resolved_at>=2026-01-05 00:00:00^ORDERBYDESCresolved_at", None),
        ("stateIN7,3,6^ORDERBYstate", "3"),
        ("state>=10^ORDERBYstate", "10"),
        ("numberSTARTSWITHINC^ORDERBYnumber", None),
    ],
)
def test_lower_bound(query, bound):
    assert parse(query).lower_bound() == bound


@pytest.mark.parametrize(
    ("query", "expected_fields", "dropped"),
    [
        ("state=6^bogus=1", {"state"}, True),
        ("state=6^ORbogus=1", {"state"}, True),
        ("state=6", {"state"}, False),
        ("bogus=1", set(), True),  # only invalid parts: matches everything, the documented pitfall
        ("caller_id=javascript:gs.getUserID()", set(), True),
        ("not a condition^state=6", {"state"}, True),
    ],
)
def test_without_invalid(query, expected_fields, dropped):
    trimmed, was_dropped = parse(query).without(lambda c: c.field != "bogus")
    assert trimmed.fields() == expected_fields
    assert was_dropped is dropped
    if not expected_fields:
        assert trimmed.matcher()(ROW) is True


def test_and_also_adds_to_every_group():
    query = parse("state=7^NQstate=6").and_also([Condition("priority", "=", "4")])
    assert query.matcher()(ROW) is False
    assert query.matcher()(ROW | {"priority": "4"}) is True


@pytest.mark.parametrize(
    ("values", "numeric", "ordered"),
    [
        (["10", "9", "", "1"], True, ["", "1", "9", "10"]),
        (["10", "9", "", "1"], False, ["", "1", "10", "9"]),
        (["b", "a", ""], False, ["", "a", "b"]),
    ],
)
def test_sort_key(values, numeric, ordered):
    assert sorted(values, key=lambda v: sort_key(v, numeric)) == ordered
