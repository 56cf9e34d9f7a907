"""The sandbox JQL parser and evaluator: Jira's syntax errors, semantics and time-zone pitfall.

Expected error texts come from Jira's own JQL parser tests and from errors quoted in public bug
reports; the tables below are the contract the Jira simulator inherits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from zoneinfo import ZoneInfo

import pytest

from connector.sandbox import jql

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def ms(text: str, tz: str = "UTC") -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


@dataclass
class Rec:
    key: str
    resolved: int | None
    updated: int
    status: str
    labels: tuple[str, ...] = ()
    summary: str = ""
    group: str | None = None
    score: float | None = None

    @property
    def key_tuple(self) -> tuple[str, int]:
        project, num = self.key.split("-")
        return project, int(num)


RECORDS = [
    Rec("ITSD-1", ms("2024-03-01T09:00"), ms("2024-03-01T09:00"), "Resolved", ("vip",), "VPN is down", "Network", 5),
    Rec("ITSD-2", ms("2024-03-01T15:00"), ms("2024-03-02T08:00"), "Closed", (), "Printer jam", "Hardware", 2),
    Rec("ITSD-3", None, ms("2024-03-03T10:00"), "Open", ("vip", "email"), "Email bounce", "Network"),
    Rec("ITSD-10", ms("2024-03-01T15:00"), ms("2024-03-05T10:00"), "Resolved", (), "VPN slow", None, 4),
    Rec("OPS-1", ms("2024-02-20T00:00"), ms("2024-02-20T00:00"), "Resolved", ("email",), "Disk full", "Database"),
]
STATUS_CATEGORY = {"Resolved": "done", "Closed": "done", "Open": "new"}
KEYS = {r.key: r.key_tuple for r in RECORDS}
GROUPS = {"network": "Network", "hardware": "Hardware", "database": "Database", "10050": "Network"}


def resolve_key(text: str) -> tuple[str, int] | None:
    return KEYS.get(text.upper())


SCHEMA = jql.Schema([
    jql.FieldSpec("issuekey", ("key", "issuekey"), "key", attrgetter("key_tuple"), resolve=resolve_key),
    jql.FieldSpec("project", ("project",), "project", lambda r: r.key.split("-")[0],
                  resolve=lambda s: s.upper() if s.upper() in ("ITSD", "OPS") else None),
    jql.FieldSpec("resolutiondate", ("resolved", "resolutiondate"), "date", attrgetter("resolved")),
    jql.FieldSpec("updated", ("updated",), "date", attrgetter("updated")),
    jql.FieldSpec("status", ("status",), "option", attrgetter("status"),
                  resolve=lambda s: {"open": "Open", "resolved": "Resolved", "closed": "Closed"}.get(s.lower())),
    jql.FieldSpec("statusCategory", ("statusCategory",), "option", lambda r: STATUS_CATEGORY[r.status],
                  resolve=lambda s: {"done": "done", "to do": "new", "new": "new"}.get(s.lower())),
    jql.FieldSpec("resolution", ("resolution",), "option",
                  lambda r: "Done" if r.resolved is not None else None,
                  resolve=lambda s: jql.EMPTY if s.lower() == "unresolved" else ("Done" if s.lower() == "done"
                                                                                  else None)),
    jql.FieldSpec("labels", ("labels",), "labels", attrgetter("labels"), sortable=False),
    jql.FieldSpec("summary", ("summary",), "text", lambda r: r.summary.lower()),
    jql.FieldSpec("customfield_10050", ("Support group",), "option", attrgetter("group"),
                  resolve=lambda s: GROUPS.get(s.lower()), custom_id=10050),
    jql.FieldSpec("customfield_10060", ("Score",), "number", attrgetter("score"), custom_id=10060),
])


def run(text: str, tz: str = "UTC") -> list[str]:
    compiled = jql.compile_query(jql.parse(text), SCHEMA, jql.Context(ZoneInfo(tz), NOW, "me"))
    found = [r for r in RECORDS if compiled.matches(r)]
    if compiled.order:
        found.sort(key=compiled.key_function())
    return [r.key for r in found]


@pytest.mark.parametrize(("text", "expected"), [
    ("project = ITSD", ["ITSD-1", "ITSD-2", "ITSD-3", "ITSD-10"]),
    ("project in (OPS, itsd) AND resolution IS EMPTY", ["ITSD-3"]),
    ("project = ITSD AND resolution IS NOT EMPTY", ["ITSD-1", "ITSD-2", "ITSD-10"]),
    ("resolution = Unresolved", ["ITSD-3"]),
    ("statusCategory = Done AND project != OPS", ["ITSD-1", "ITSD-2", "ITSD-10"]),
    ('status = "Open" OR status = closed', ["ITSD-2", "ITSD-3"]),
    ("status not in (Resolved, Closed)", ["ITSD-3"]),
    ("labels = VIP", ["ITSD-1", "ITSD-3"]),
    ("labels != vip", ["OPS-1"]),  # != never matches issues without labels
    ("labels in (email) AND NOT labels = vip", ["OPS-1"]),
    ("labels is EMPTY", ["ITSD-2", "ITSD-10"]),
    ('"Support group" = network', ["ITSD-1", "ITSD-3"]),
    ("cf[10050] = Hardware", ["ITSD-2"]),
    ('"support GROUP" is empty', ["ITSD-10"]),
    ("cf[10050] != Network", ["ITSD-2", "OPS-1"]),  # != skips empty values
    ("Score >= 4", ["ITSD-1", "ITSD-10"]),
    ("summary ~ vpn", ["ITSD-1", "ITSD-10"]),
    ('summary ~ "vpn down"', ["ITSD-1"]),
    ("summary !~ vpn AND project = ITSD", ["ITSD-2", "ITSD-3"]),
    ("key = itsd-2", ["ITSD-2"]),
    ("issuekey in (ITSD-1, OPS-1)", ["ITSD-1", "OPS-1"]),
    ("key > ITSD-2", ["ITSD-3", "ITSD-10"]),  # numeric within the project, not string order
    ("key <= ITSD-2 OR key = OPS-1", ["ITSD-1", "ITSD-2", "OPS-1"]),
    ("(project = OPS OR labels = vip) AND resolved IS NOT EMPTY", ["ITSD-1", "OPS-1"]),
    ("project = ITSD && !(status = Open || status = Closed)", ["ITSD-1", "ITSD-10"]),
    ("not project = ITSD", ["OPS-1"]),
    ("resolved = EMPTY", ["ITSD-3"]),
    ("resolved in (EMPTY)", ["ITSD-3"]),
])
def test_matches(text: str, expected: list[str]) -> None:
    assert sorted(run(text)) == sorted(expected)


@pytest.mark.parametrize(("text", "tz", "expected"), [
    # Epoch milliseconds are absolute: the searcher's zone does not matter.
    (f"resolved >= {ms('2024-03-01T15:00')}", "America/New_York", ["ITSD-2", "ITSD-10"]),
    (f"resolved >= {ms('2024-03-01T15:00')}", "Asia/Kolkata", ["ITSD-2", "ITSD-10"]),
    # The same wall-clock string means different instants for differently configured users.
    ('resolved >= "2024-03-01 15:00"', "UTC", ["ITSD-2", "ITSD-10"]),
    ('resolved >= "2024-03-01 15:00"', "America/New_York", []),  # 20:00Z
    ('resolved >= "2024/03/01 10:30"', "Europe/Stockholm", ["ITSD-2", "ITSD-10"]),  # 09:30Z
    ('resolved >= "2024-03-01"', "Asia/Kolkata", ["ITSD-1", "ITSD-2", "ITSD-10"]),  # 2024-02-29 18:30Z
    ('resolved < "2024-03-01"', "UTC", ["OPS-1"]),
    ('updated > "2024-03-02 07:59" AND updated < "2024-03-02 08:01"', "UTC", ["ITSD-2"]),
    ("updated >= -7d", "UTC", ["ITSD-10"]),  # NOW minus 7 days = 2024-03-03 12:00
    ("updated >= '-1w 2d'", "UTC", ["ITSD-2", "ITSD-3", "ITSD-10"]),  # 2024-03-01 12:00
    ("updated >= startOfDay(-7)", "UTC", ["ITSD-3", "ITSD-10"]),  # 2024-03-03 00:00
    ("updated < startOfMonth()", "UTC", ["OPS-1"]),
    ("resolved <= now() AND resolved > endOfDay(-10)", "UTC", ["ITSD-1", "ITSD-2", "ITSD-10"]),
])
def test_dates_are_read_in_the_searchers_time_zone(text: str, tz: str, expected: list[str]) -> None:
    assert sorted(run(text, tz)) == sorted(expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("project in (ITSD, OPS) ORDER BY resolved ASC, key ASC", ["OPS-1", "ITSD-1", "ITSD-2", "ITSD-10", "ITSD-3"]),
    ("project in (ITSD, OPS) ORDER BY resolved DESC, key DESC", ["ITSD-3", "ITSD-10", "ITSD-2", "ITSD-1", "OPS-1"]),
    ("project = ITSD ORDER BY key", ["ITSD-1", "ITSD-2", "ITSD-3", "ITSD-10"]),
    ("project = ITSD ORDER BY key DESC", ["ITSD-10", "ITSD-3", "ITSD-2", "ITSD-1"]),
    ("project in (ITSD, OPS) ORDER BY cf[10050] ASC, key ASC", ["OPS-1", "ITSD-2", "ITSD-1", "ITSD-3", "ITSD-10"]),
    ('project in (ITSD, OPS) ORDER BY "Support group" DESC, key', ["ITSD-10", "ITSD-1", "ITSD-3", "ITSD-2", "OPS-1"]),
    ("project = ITSD ORDER BY summary", ["ITSD-3", "ITSD-2", "ITSD-1", "ITSD-10"]),
])
def test_order_by_puts_empty_values_last_ascending_and_first_descending(text: str, expected: list[str]) -> None:
    assert run(text) == expected


@pytest.mark.parametrize("text", [
    "project in (ITSD, OPS) ORDER BY resolved ASC, key ASC",
    "project in (ITSD, OPS) ORDER BY resolved DESC, summary DESC, key ASC",
    "project in (ITSD, OPS) ORDER BY cf[10050] DESC, Score, updated DESC",
])
def test_sort_key_rebuilt_from_raw_values_equals_the_sort_key(text: str) -> None:
    """Page tokens carry the raw ORDER BY values of the last issue; they must land on the same key."""
    compiled = jql.compile_query(jql.parse(text), SCHEMA, jql.Context(UTC, NOW))
    fast = compiled.key_function()
    for record in RECORDS:
        assert compiled.key_from_values(compiled.sort_values(record)) == fast(record) == compiled.sort_key(record)


SYNTAX = "Error in the JQL Query: "
OPS = "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."


@pytest.mark.parametrize(("text", "message"), [
    ("project = ITSD AND", SYNTAX + "Expecting a field name at the end of the query."),
    ("project =", SYNTAX + "Expecting either a value, list or function before the end of the query."),
    ("a=!", SYNTAX + "Expecting either a value, list or function but got '!'. You must surround '!' in quotation "
     "marks to use it as a value. (line 1, character 3)"),
    ("a=b c=d", SYNTAX + "Expecting either 'OR' or 'AND' but got 'c'. (line 1, character 5)"),
    ("a", SYNTAX + "Expecting operator before the end of the query. " + OPS),
    ("a blah >", SYNTAX + "Expecting operator but got 'blah'. " + OPS + " (line 1, character 3)"),
    ("a =a and j not is empty", SYNTAX + "Expecting 'IN' but got 'is'. (line 1, character 16)"),
    ("a =a and j is ! empty", SYNTAX + "Expecting 'NOT' but got '!'. (line 1, character 15)"),
    ("(a=b and c = d", SYNTAX + "Expecting ')' before the end of the query."),
    ("abc IN ((foo) abc = a", SYNTAX + "Expecting ')' but got 'abc'. (line 1, character 15)"),
    ("a =b order", SYNTAX + "Expecting 'by' before the end of the query."),
    ("a =b order summary", SYNTAX + "Expecting 'by' but got 'summary'. (line 1, character 12)"),
    ("a =b order by", SYNTAX + "Expecting a field name at the end of the query."),
    ("a =b order by asc", SYNTAX + "Expecting a field name but got 'asc'. You must surround 'asc' in quotation "
     "marks to use it as a field name. (line 1, character 15)"),
    ("a =b order by ajsks blah", SYNTAX + "Expecting either 'ASC' or 'DESC' but got 'blah'. (line 1, character 21)"),
    ("order by a desc d", SYNTAX + "Expecting ',' but got 'd'. (line 1, character 17)"),
    ("cf[ = 9", SYNTAX + "Expecting a custom field id (a positive number) but got '='. (line 1, character 5)"),
    ("cf[29829 = world", SYNTAX + "Expecting ']' but got '='. (line 1, character 10)"),
    ("[brenden] = a", SYNTAX + "Expecting a field name but got '['. Did you mean 'cf['? (line 1, character 1)"),
    ("comment ~ 'test", SYNTAX + "The quoted string 'test' has not been completed. (line 1, character 11)"),
    ("mine{www = qwwr", SYNTAX + "The character '{' is a reserved JQL character. You must enclose it in a string "
     "or use the escape '\\u007b' instead. (line 1, character 5)"),
    ("bas=func(bad,)", "Function argument must be specified. (line 1, character 14)"),
    ("k = func(abc, jk!)", SYNTAX + "Expecting ')' or ',' but got '!'. (line 1, character 17)"),
    ("project = ITSD\nAND status = = Done", SYNTAX + "Expecting either a value, list or function but got '='. "
     "You must surround '=' in quotation marks to use it as a value. (line 2, character 14)"),
])
def test_syntax_errors_use_jiras_wording(text: str, message: str) -> None:
    with pytest.raises(jql.JQLError) as caught:
        jql.parse(text)
    assert caught.value.messages == [message]


DATE_FORMATS = ("Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', "
                "or a period format e.g. '-5d', '4w 2d'.")


@pytest.mark.parametrize(("text", "messages"), [
    ("foo = bar", ["Field 'foo' does not exist or you do not have permission to view it."]),
    ("cf[99999] = 1", ["Field 'cf[99999]' does not exist or you do not have permission to view it."]),
    ("foo = 1 AND bar = 2", ["Field 'foo' does not exist or you do not have permission to view it.",
                             "Field 'bar' does not exist or you do not have permission to view it."]),
    ("project = NOPE", ["The value 'NOPE' does not exist for the field 'project'."]),
    ("project in (ITSD, X1)", ["The value 'X1' does not exist for the field 'project'."]),
    ('"Support group" = Nobody', ["The value 'Nobody' does not exist for the field 'Support group'."]),
    ("key > ITSD-999", ["An issue with key 'ITSD-999' does not exist for field 'key'."]),
    ("project ~ ITSD", ["The operator '~' is not supported by the 'project' field."]),
    ("summary = vpn", ["The operator '=' is not supported by the 'summary' field."]),
    ("status > Open", ["The operator '>' is not supported by the 'status' field."]),
    ('resolved >= "2024-13-01"', [f"Date value '2024-13-01' for field 'resolved' is invalid. {DATE_FORMATS}"]),
    ('updated > "01/03/2024"', [f"Date value '01/03/2024' for field 'updated' is invalid. {DATE_FORMATS}"]),
    ("updated > "
     '"2023-07-13T21:24:33.000+0000"',
     [f"Date value '2023-07-13T21:24:33.000+0000' for field 'updated' is invalid. {DATE_FORMATS}"]),
    ("resolved > bogus()", ["Unable to find JQL function 'bogus()'."]),
    ("resolved > now(1)", ["Function 'now' expected '0' arguments but received '1'."]),
    ("project = ITSD ORDER BY labels", ["Field 'labels' does not support sorting."]),
    ("project = ITSD ORDER BY nope", ["Field 'nope' does not exist or you do not have permission to view it."]),
])
def test_semantic_errors_are_reported_together(text: str, messages: list[str]) -> None:
    query = jql.parse(text)
    with pytest.raises(jql.JQLError) as caught:
        jql.compile_query(query, SCHEMA, jql.Context(UTC, NOW))
    assert caught.value.messages == messages


@pytest.mark.parametrize(("text", "bounded", "order"), [
    ("order by key desc", False, [("key", True)]),
    ("", False, []),
    ("project = ITSD order by resolved asc, key", True, [("resolved", False), ("key", None)]),
    ("resolved >= 1 ORDER BY a, b, c, d, e, f, g, h", True, [(n, None) for n in "abcdefgh"]),
])
def test_boundedness_and_order_terms(text: str, bounded: bool, order: list[tuple[str, bool | None]]) -> None:
    query = jql.parse(text)
    assert query.bounded is bounded
    assert [(t.field.display, t.descending) for t in query.order_by] == order


def test_parse_date_literal_has_minute_precision_in_the_users_zone() -> None:
    context = jql.Context(ZoneInfo("America/Los_Angeles"), NOW)
    assert jql.parse_date_literal("2024-07-01 09:30", context, "updated") == (ms("2024-07-01T16:30"), False)
    assert jql.parse_date_literal("1719851400123", context, "updated") == (1719851400123, False)
    assert jql.parse_date_literal("-5m", context, "updated") == (int(NOW.timestamp() * 1000) - 300_000, True)


def test_quoted_strings_support_escapes() -> None:
    query = jql.parse("summary ~ \"say \\\"hi\\\"\\n\" AND 'Support group' = 'Network'")
    assert isinstance(query.where, jql.And)
    first = query.where.children[0]
    assert isinstance(first, jql.Clause) and first.operand.text == 'say "hi"\n'
