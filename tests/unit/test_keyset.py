"""Keyset queries and cursor arithmetic: pure, no HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.loop.pull import _next_cursor
from connector.model import Cursor
from connector.systems.jira import epoch_ms
from connector.systems.servicenow import keyset_query

T = datetime(2026, 11, 20, 8, 30, 5, tzinfo=UTC)
ORDER = "^ORDERBYresolved_at^ORDERBYsys_id"


@pytest.mark.parametrize(("base", "cursor", "expected"), [
    ("stateIN6,7", Cursor(T, ""), f"stateIN6,7^resolved_at>=2026-11-20 08:30:05{ORDER}"),
    ("stateIN6,7", Cursor(T, "abc"),
     f"stateIN6,7^resolved_at>2026-11-20 08:30:05{ORDER}^NQstateIN6,7^resolved_at=2026-11-20 08:30:05^sys_id>abc{ORDER}"),
    ("", Cursor(T, "abc"), f"resolved_at>2026-11-20 08:30:05{ORDER}^NQresolved_at=2026-11-20 08:30:05^sys_id>abc{ORDER}"),
    ("stateIN6,7", Cursor(T.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Stockholm")), ""),
     f"stateIN6,7^resolved_at>=2026-11-20 08:30:05{ORDER}"),
])
def test_servicenow_keyset_query(base, cursor, expected):
    assert keyset_query(base, "resolved_at", cursor) == expected


def test_epoch_ms_is_absolute():
    assert epoch_ms(datetime(2024, 11, 29, 10, 44, 51, tzinfo=UTC)) == 1732877091000


SIGNPOST = Cursor(T, "")


@pytest.mark.parametrize(("current", "last", "expected"), [
    (None, Cursor(T - timedelta(hours=1), "a"), Cursor(T - timedelta(hours=1), "a")),
    (None, Cursor(T + timedelta(seconds=1), "a"), SIGNPOST),  # never past the signpost
    (Cursor(T - timedelta(hours=1), "b"), Cursor(T - timedelta(hours=2), "a"), Cursor(T - timedelta(hours=1), "b")),
    (Cursor(T - timedelta(hours=1), "b"), None, Cursor(T - timedelta(hours=1), "b")),
    (Cursor(T - timedelta(hours=1), "a"), Cursor(T - timedelta(hours=1), "b"), Cursor(T - timedelta(hours=1), "b")),
])
def test_cursor_moves_forward_only_and_stops_at_the_signpost(current, last, expected):
    assert _next_cursor(current, last, SIGNPOST) == expected
