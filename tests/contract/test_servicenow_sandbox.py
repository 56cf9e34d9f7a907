"""The ServiceNow sandbox over real HTTP behaves like the documented Table, Batch and OAuth APIs.

Every expectation here comes from reference/servicenow-api.md (section numbers in the test names'
docstrings), so a client that passes against the sandbox has met the documented shapes and pitfalls.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from connector.sandbox.server import Fault, SandboxServer
from connector.sandbox.servicenow import (
    ServiceNowSimulator,
    format_datetime,
    make_servicenow_server,
    servicenow_error_body,
)
from connector.sandbox.world import build_world

ANCHOR = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW = ANCHOR + timedelta(hours=1)
TIMEOUT = 10


class Clock:
    """A settable clock for the simulator."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def sim(clock: Clock) -> ServiceNowSimulator:
    return ServiceNowSimulator(build_world(tickets=120, seed=7, anchor=ANCHOR), clock=clock,
                               time_zone="Europe/Stockholm")


ERROR_BODY = servicenow_error_body  # used by the shared_server fixture in conftest.py


@pytest.fixture
def server(sim: ServiceNowSimulator, shared_server) -> Iterator[SandboxServer]:
    srv, current = shared_server
    current.sim = sim
    srv.faults.clear()
    yield srv
    current.sim = None


@pytest.fixture
def http(sim: ServiceNowSimulator) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = (sim.user, sim.password)
        yield session


@pytest.fixture
def api(server: SandboxServer) -> str:
    return f"{server.base_url}/api/now"


def incidents(sim: ServiceNowSimulator, **where: str) -> list[dict[str, str]]:
    rows = sim.tables["incident"].values()
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def closed_incident(sim: ServiceNowSimulator) -> dict[str, str]:
    return incidents(sim, state="7")[0]


def open_incident(sim: ServiceNowSimulator) -> dict[str, str]:
    return incidents(sim, state="2")[0]


def assert_error(response: requests.Response, status: int, message: str, detail: str | None = None) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["status"] == "failure"
    assert body["error"]["message"] == message
    if detail is not None:
        assert body["error"]["detail"] == detail


# ---- shapes (§3.5) ----------------------------------------------------------------------------------


def test_list_values_are_strings_and_references_are_link_objects(sim, http, api, server):
    response = http.get(f"{api}/v2/table/incident", params={"sysparm_limit": 50}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    result = response.json()["result"]
    assert len(result) == 50
    for record in result:
        for name, value in record.items():
            if name in ("caller_id", "assigned_to", "assignment_group", "business_service", "resolved_by",
                        "opened_by", "closed_by"):
                assert value == "" or set(value) == {"link", "value"}, (name, value)
            else:
                assert isinstance(value, str), (name, value)
        caller = record["caller_id"]
        assert caller["link"] == f"{server.base_url}/api/now/table/sys_user/{caller['value']}"
        assert re.fullmatch(r"[0-9a-f]{32}", record["sys_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["sys_updated_on"])
        assert record["comments"] == "" and record["work_notes"] == ""
        assert record["active"] in ("true", "false")
        assert int(record["sys_mod_count"]) >= 0
    open_ones = [r for r in result if r["state"] in ("1", "2", "3")]
    assert open_ones and all(r["resolved_at"] == "" and r["resolved_by"] == "" for r in open_ones)


@pytest.mark.parametrize("table", ["incident", "sys_user", "sys_user_group", "cmdb_ci_service", "sys_dictionary"])
def test_every_dictionary_column_comes_back(http, api, table):
    params = {"sysparm_query": f"name={table}^elementISNOTEMPTY", "sysparm_fields": "element"}
    columns = {r["element"] for r in http.get(f"{api}/table/sys_dictionary", params=params,
                                              timeout=TIMEOUT).json()["result"]}
    records = http.get(f"{api}/table/{table}", params={"sysparm_limit": 3}, timeout=TIMEOUT).json()["result"]
    assert records and all(set(record) == columns for record in records)
    assert {"sys_id", "sys_created_on", "sys_updated_on", "sys_updated_by", "sys_mod_count"} <= columns


def test_exclude_reference_link_gives_plain_sys_ids(http, api):
    params = {"sysparm_limit": 5, "sysparm_exclude_reference_link": "true"}
    result = http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT).json()["result"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["caller_id"]) for r in result)


def test_single_record_envelope_is_an_object(sim, http, api):
    row = open_incident(sim)
    body = http.get(f"{api}/table/incident/{row['sys_id']}", timeout=TIMEOUT).json()
    assert body["result"]["number"] == row["number"]
    assert body["result"]["state"] == "2"


def test_display_value_all_and_true(sim, http, api, server):
    row = closed_incident(sim)
    caller = sim.record("sys_user", row["caller_id"])
    assert caller is not None
    params = {"sysparm_display_value": "all", "sysparm_fields": "state,caller_id,closed_at,number"}
    result = http.get(f"{api}/table/incident/{row['sys_id']}", params=params, timeout=TIMEOUT).json()["result"]
    assert result["state"] == {"display_value": "Closed", "value": "7"}
    assert result["caller_id"] == {"display_value": caller["name"], "value": caller["sys_id"],
                                   "link": f"{server.base_url}/api/now/table/sys_user/{caller['sys_id']}"}
    # Dates: value in UTC, display value in the integration user's time zone (Stockholm is UTC+1 in winter).
    closed = datetime.strptime(row["closed_at"], "%Y-%m-%d %H:%M:%S")
    assert result["closed_at"]["value"] == row["closed_at"]
    assert closed.month in (1, 2, 3) and result["closed_at"]["display_value"] == format_datetime(
        closed + timedelta(hours=1))
    params = {"sysparm_display_value": "true", "sysparm_fields": "state,caller_id",
              "sysparm_exclude_reference_link": "true"}
    result = http.get(f"{api}/table/incident/{row['sys_id']}", params=params, timeout=TIMEOUT).json()["result"]
    assert result == {"state": "Closed", "caller_id": caller["name"]}


def test_fields_dot_walk_and_unknown_fields_dropped(sim, http, api):
    row = open_incident(sim)
    caller = sim.record("sys_user", row["caller_id"])
    group = sim.record("sys_user_group", row["assignment_group"])
    service = sim.record("cmdb_ci_service", row["business_service"])
    assert caller and group and service
    params = {"sysparm_fields": "number,caller_id.email,assignment_group.name,business_service.name,u_bogus"}
    result = http.get(f"{api}/table/incident/{row['sys_id']}", params=params, timeout=TIMEOUT).json()["result"]
    assert result == {"number": row["number"], "caller_id.email": caller["email"],
                      "assignment_group.name": group["name"], "business_service.name": service["name"]}


# ---- queries (§3.3) ---------------------------------------------------------------------------------


def test_encoded_query_filters_and_orders(sim, http, api):
    params = {"sysparm_query": "stateIN6,7^priority<=3^ORDERBYDESCresolved_at", "sysparm_fields": "number,state,"
              "priority,resolved_at"}
    result = http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT).json()["result"]
    expected = [r for r in sim.tables["incident"].values() if r["state"] in ("6", "7") and int(r["priority"]) <= 3]
    assert len(result) == len(expected) > 0
    assert [r["resolved_at"] for r in result] == sorted((r["resolved_at"] for r in expected), reverse=True)


def test_dot_walked_condition(sim, http, api):
    row = open_incident(sim)
    email = sim.record("sys_user", row["caller_id"])["email"]  # type: ignore[index]
    params = {"sysparm_query": f"caller_id.email={email}", "sysparm_fields": "sys_id"}
    result = http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT).json()["result"]
    assert {r["sys_id"] for r in result} == {r["sys_id"] for r in incidents(sim, caller_id=row["caller_id"])}


def test_misspelled_query_field_is_silently_ignored(sim, http, api):
    params = {"sysparm_query": "stat=6", "sysparm_fields": "sys_id"}
    response = http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT)
    assert response.status_code == 200
    assert len(response.json()["result"]) == len(sim.tables["incident"])  # every row, not the resolved ones


def test_invalid_query_returns_no_rows_when_the_property_is_set(sim, http, api):
    sim.invalid_query_returns_no_rows = True
    params = {"sysparm_query": "stat=6", "sysparm_fields": "sys_id"}
    response = http.get(f"{api}/v2/table/incident", params=params, timeout=TIMEOUT)
    assert response.json() == {"result": []}
    assert response.headers["X-Total-Count"] == "0"


def test_plain_name_value_parameters_filter(sim, http, api):
    params = {"active": "false", "sysparm_fields": "sys_id,active"}
    result = http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT).json()["result"]
    assert len(result) == len(incidents(sim, active="false")) > 0
    assert {r["active"] for r in result} == {"false"}


# ---- pagination headers (§3.4) ------------------------------------------------------------------------


def links(response: requests.Response) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>;rel="(\w+)"', response.headers.get("Link", ""))}


def test_link_header_and_total_count(sim, http, api):
    total = len(sim.tables["incident"])
    first = http.get(f"{api}/table/incident", params={"sysparm_limit": 50, "sysparm_query": "ORDERBYnumber"},
                     timeout=TIMEOUT)
    assert first.headers["X-Total-Count"] == str(total)
    rels = links(first)
    assert set(rels) == {"first", "next", "last"}
    assert "sysparm_offset=50" in rels["next"] and "sysparm_limit=50" in rels["next"]
    assert "sysparm_offset=100" in rels["last"]
    second = http.get(rels["next"], timeout=TIMEOUT)
    assert set(links(second)) == {"first", "prev", "next", "last"}
    numbers = [r["number"] for r in first.json()["result"] + second.json()["result"]]
    assert numbers == sorted(r["number"] for r in sim.tables["incident"].values())[:100]
    last = http.get(rels["last"], timeout=TIMEOUT)
    assert set(links(last)) == {"first", "prev", "last"}
    assert len(last.json()["result"]) == total - 100


def test_link_header_absent_when_everything_fits_and_when_suppressed(http, api):
    fits = http.get(f"{api}/table/incident", params={"sysparm_limit": 1000}, timeout=TIMEOUT)
    assert "Link" not in fits.headers
    suppressed = http.get(f"{api}/table/incident", params={"sysparm_limit": 10,
                          "sysparm_suppress_pagination_header": "true"}, timeout=TIMEOUT)
    assert "Link" not in suppressed.headers and "X-Total-Count" in suppressed.headers


def test_no_count_omits_total(http, api):
    response = http.get(f"{api}/table/incident", params={"sysparm_limit": 10, "sysparm_no_count": "true"},
                        timeout=TIMEOUT)
    assert response.status_code == 200 and len(response.json()["result"]) == 10
    assert "X-Total-Count" not in response.headers


def test_offset_pages_cover_the_table(sim, http, api):
    seen: list[str] = []
    for offset in range(0, 200, 40):
        params = {"sysparm_limit": 40, "sysparm_offset": offset, "sysparm_query": "ORDERBYsys_id",
                  "sysparm_fields": "sys_id"}
        seen += [r["sys_id"] for r in http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT).json()["result"]]
    assert seen == sorted(sim.tables["incident"])


def test_keyset_paging_with_2500_rows_in_one_second(sim, http, api):
    """§4: the NQ continuation returns each row exactly once even when pages end inside one timestamp."""
    second = ANCHOR + timedelta(minutes=5)
    tied = {sim.add_incident(state=6, resolved_at=second) for _ in range(2500)}
    base = "stateIN6,7"
    order = "^ORDERBYresolved_at^ORDERBYsys_id"
    start = format_datetime(ANCHOR - timedelta(days=3))
    seen: list[str] = []
    last: tuple[str, str] | None = None
    for _ in range(100):
        if last is None:
            query = f"{base}^resolved_at>={start}{order}"
        else:
            t, s = last
            query = f"{base}^resolved_at>{t}{order}^NQ{base}^resolved_at={t}^sys_id>{s}{order}"
        params = {"sysparm_query": query, "sysparm_limit": 1000, "sysparm_fields": "sys_id,resolved_at",
                  "sysparm_no_count": "true", "sysparm_suppress_pagination_header": "true"}
        page = http.get(f"{api}/v2/table/incident", params=params, timeout=TIMEOUT).json()["result"]
        if not page:
            break
        seen += [r["sys_id"] for r in page]
        last = (page[-1]["resolved_at"], page[-1]["sys_id"])
    expected = {r["sys_id"] for r in sim.tables["incident"].values()
                if r["state"] in ("6", "7") and r["resolved_at"] >= start}
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected and tied <= set(seen)


def test_timestamp_only_cursor_loses_tied_rows(sim, http, api):
    """The bug class §4 warns about is reproducible here, so the keyset test above can fail."""
    second = ANCHOR + timedelta(minutes=5)
    for _ in range(30):
        sim.add_incident(state=6, resolved_at=second)
    query = f"resolved_at>={format_datetime(second)}^ORDERBYresolved_at"
    first = http.get(f"{api}/table/incident", params={"sysparm_query": query, "sysparm_limit": 10,
                                                       "sysparm_fields": "resolved_at"}, timeout=TIMEOUT).json()
    cursor = first["result"][-1]["resolved_at"]
    rest = http.get(f"{api}/table/incident", params={"sysparm_query": f"resolved_at>{cursor}",
                                                      "sysparm_fields": "sys_id"}, timeout=TIMEOUT).json()
    assert len(first["result"]) + len(rest["result"]) < 30


# ---- versions and errors (§3.1, §3.5, §6) ----------------------------------------------------------


def test_empty_result_v1_is_404_and_v2_is_empty_list(http, api):
    params = {"sysparm_query": "number=INC9999999"}
    v2 = http.get(f"{api}/v2/table/incident", params=params, timeout=TIMEOUT)
    assert v2.status_code == 200 and v2.json() == {"result": []}
    latest = http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT)
    assert latest.status_code == 200 and latest.json() == {"result": []}
    assert_error(http.get(f"{api}/v1/table/incident", params=params, timeout=TIMEOUT), 404, "No Record found")


def test_invalid_table_is_400(http, api):
    response = http.get(f"{api}/table/sys_user_groups", timeout=TIMEOUT)
    assert_error(response, 400, "Invalid table sys_user_groups")
    assert response.json()["error"]["detail"] is None


@pytest.mark.parametrize("auth", [None, ("vloop.integration", "wrong"), ("someone", "sandbox-password")])
def test_unauthenticated_is_401(api, auth):
    response = requests.get(f"{api}/table/incident", auth=auth, timeout=TIMEOUT)
    assert_error(response, 401, "User Not Authenticated", "Required to provide Auth information")
    assert response.headers["WWW-Authenticate"] == 'BEARER realm="Service-now"'


def test_missing_record_is_404(http, api):
    response = http.get(f"{api}/table/incident/{'0' * 32}", timeout=TIMEOUT)
    assert_error(response, 404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
    assert http.patch(f"{api}/table/incident/{'0' * 32}", json={"state": "2"}, timeout=TIMEOUT).status_code == 404


def test_injected_429_has_envelope_and_rate_headers(sim, http):
    with make_servicenow_server(sim) as server:
        api = f"{server.base_url}/api/now"
        server.faults.inject(Fault(kind="status", status=429, retry_after="3", path_contains="/table/incident"))
        limited = http.get(f"{api}/table/incident", params={"sysparm_limit": 1}, timeout=TIMEOUT)
        assert_error(limited, 429, "Rate limit exceeded")
        assert limited.headers["Retry-After"] == "3"
        assert "X-RateLimit-Limit" in limited.headers and "X-RateLimit-Reset" in limited.headers
        assert http.get(f"{api}/table/incident", params={"sysparm_limit": 1}, timeout=TIMEOUT).status_code == 200
        assert server.faults.count("/table/incident") == 2


# ---- writes (§3.7, §7) -----------------------------------------------------------------------------


def test_post_creates_201_with_location_and_full_record(sim, http, api, server):
    caller = sim.world.people[0]
    body = {"short_description": "Printer on fire", "caller_id": caller.id, "impact": 1, "u_unknown": "x"}
    response = http.post(f"{api}/table/incident", json=body, timeout=TIMEOUT)
    assert response.status_code == 201
    record = response.json()["result"]
    assert response.headers["Location"] == f"{server.base_url}/api/now/table/incident/{record['sys_id']}"
    assert record["short_description"] == "Printer on fire"
    assert record["impact"] == "1" and record["state"] == "1" and record["active"] == "true"
    assert record["caller_id"]["value"] == caller.id
    assert re.fullmatch(r"INC\d{7}", record["number"])
    assert record["sys_created_on"] == format_datetime(NOW) and record["sys_created_by"] == sim.user
    assert "u_unknown" not in record
    fetched = http.get(response.headers["Location"], timeout=TIMEOUT).json()["result"]
    assert fetched["number"] == record["number"]


def test_patch_bumps_update_stamps_and_skips_no_op_writes(sim, http, api, clock):
    row = open_incident(sim)
    clock.now = NOW + timedelta(minutes=7)
    url = f"{api}/table/incident/{row['sys_id']}"
    record = http.patch(url, json={"urgency": "1" if row["urgency"] != "1" else "2"}, timeout=TIMEOUT).json()["result"]
    assert record["sys_updated_on"] == format_datetime(clock.now)
    assert record["sys_updated_by"] == sim.user
    assert record["sys_mod_count"] == str(int(row["sys_mod_count"]) + 1)
    again = http.put(url, json={"urgency": record["urgency"]}, timeout=TIMEOUT).json()["result"]
    assert again["sys_mod_count"] == record["sys_mod_count"]  # nothing changed, nothing written


def test_no_response_body_header(sim, http, api):
    row = open_incident(sim)
    response = http.patch(f"{api}/table/incident/{row['sys_id']}", json={"description": "quiet"},
                          headers={"X-no-response-body": "true"}, timeout=TIMEOUT)
    assert response.status_code == 200 and response.content == b""
    assert sim.record("incident", row["sys_id"])["description"] == "quiet"  # type: ignore[index]


def test_journal_fields_are_write_only_and_land_in_sys_journal_field(sim, http, api):
    row = open_incident(sim)
    record = http.patch(f"{api}/table/incident/{row['sys_id']}", json={"work_notes": "CSAT 5/5"},
                        timeout=TIMEOUT).json()["result"]
    assert record["work_notes"] == ""
    params = {"sysparm_query": f"element_id={row['sys_id']}^element=work_notes"}
    entries = http.get(f"{api}/table/sys_journal_field", params=params, timeout=TIMEOUT).json()["result"]
    assert [(e["value"], e["name"], e["sys_created_by"]) for e in entries] == [("CSAT 5/5", "incident", sim.user)]
    assert entries[0]["sys_created_on"] == format_datetime(NOW)


def test_resolve_and_reopen_through_the_api(sim, http, api):
    row = open_incident(sim)
    url = f"{api}/table/incident/{row['sys_id']}"
    resolved = http.patch(url, json={"state": "6", "close_code": "Solution provided"}, timeout=TIMEOUT).json()["result"]
    assert resolved["state"] == resolved["incident_state"] == "6"
    assert resolved["resolved_at"] == format_datetime(NOW)
    assert resolved["resolved_by"]["value"] == sim.user_sys_id
    reopened = http.patch(url, json={"state": "2"}, timeout=TIMEOUT).json()["result"]
    assert reopened["resolved_at"] == "" and reopened["resolved_by"] == ""
    assert reopened["reopen_count"] == str(int(row["reopen_count"]) + 1)


def test_closed_incident_is_read_only_except_the_documented_fields(sim, http, api):
    row = closed_incident(sim)
    url = f"{api}/table/incident/{row['sys_id']}"
    denied = http.patch(url, json={"short_description": "changed", "work_notes": "x"}, timeout=TIMEOUT)
    assert_error(denied, 403, "Operation Failed")
    assert sim.record("incident", row["sys_id"]) == row
    # §7.2 lists the work notes *list*, not work notes: a note needs an ACL exception on a closed incident.
    assert http.patch(url, json={"work_notes": "CSAT 2/5"}, timeout=TIMEOUT).status_code == 403
    allowed = http.patch(url, json={"work_notes_list": "", "description": "annotated"}, timeout=TIMEOUT)
    assert allowed.status_code == 200 and allowed.json()["result"]["description"] == "annotated"
    assert http.patch(url, json={"state": "2"}, timeout=TIMEOUT).status_code == 403  # no reopening a closed one


def test_delete_is_204(sim, http, api):
    row = open_incident(sim)
    url = f"{api}/table/incident/{row['sys_id']}"
    response = http.delete(url, timeout=TIMEOUT)
    assert response.status_code == 204 and response.content == b""
    assert http.get(url, timeout=TIMEOUT).status_code == 404


# ---- Batch API (§5) --------------------------------------------------------------------------------


def b64(payload: object) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_batch_round_trip_with_unserviced_items(sim, http, api, clock):
    sim.batch_max_items = 2
    target = open_incident(sim)
    batch = {
        "batch_request_id": "b-1",
        "rest_requests": [
            {"id": "get", "method": "GET", "url": "/api/now/table/incident?sysparm_limit=2&sysparm_fields=number",
             "headers": [{"name": "Accept", "value": "application/json"}]},
            {"id": "patch", "method": "PATCH", "url": f"/api/now/table/incident/{target['sys_id']}",
             "headers": [{"name": "Content-Type", "value": "application/json"},
                         {"name": "Accept", "value": "application/json"}],
             "body": b64({"work_notes": "batched", "urgency": "1" if target["urgency"] != "1" else "2"}),
             "exclude_response_headers": True},
            {"id": "late", "method": "GET", "url": "/api/now/table/incident?sysparm_limit=1"},
        ],
    }
    response = http.post(f"{api}/v1/batch", json=batch, timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["batch_request_id"] == "b-1"
    assert body["unserviced_requests"] == ["late"]
    by_id = {item["id"]: item for item in body["serviced_requests"]}
    assert by_id["get"]["status_code"] == 200 and by_id["get"]["status_text"] == "OK"
    assert len(json.loads(base64.b64decode(by_id["get"]["body"]))["result"]) == 2
    assert {"name": "X-Total-Count", "value": str(len(sim.tables["incident"]))} in by_id["get"]["headers"]
    assert isinstance(by_id["get"]["execution_time"], int)
    patched = json.loads(base64.b64decode(by_id["patch"]["body"]))["result"]
    assert by_id["patch"]["status_code"] == 200 and by_id["patch"]["headers"] == []
    assert patched["sys_updated_by"] == sim.user
    assert [e["value"] for e in sim.journal(target["sys_id"], "work_notes")] == ["batched"]


def test_batch_items_carry_their_own_errors(sim, http, api):
    closed = closed_incident(sim)
    batch = {"batch_request_id": "b-2", "rest_requests": [
        {"id": "1", "method": "PATCH", "url": f"/api/now/table/incident/{closed['sys_id']}",
         "body": b64({"short_description": "nope"})},
        {"id": "2", "method": "GET", "url": "/api/now/table/nope"},
    ]}
    body = http.post(f"{api}/v1/batch", json=batch, timeout=TIMEOUT).json()
    codes = {item["id"]: item["status_code"] for item in body["serviced_requests"]}
    assert codes == {"1": 403, "2": 400}
    assert requests.post(f"{api}/v1/batch", json=batch, timeout=TIMEOUT).status_code == 401


@pytest.mark.parametrize("no_body", [False, True])
@pytest.mark.parametrize("exclude_headers", [True, False])
@pytest.mark.parametrize("closed", [False, True])
def test_a_batched_patch_answers_exactly_like_a_direct_one(sim, http, api, exclude_headers, closed, no_body):
    """Batched PATCHes have a quick path in the simulator: its answers must be those of the full path."""
    a, b = incidents(sim, state="7" if closed else "2")[:2]
    fields = "sys_id,urgency,short_description,caller_id,caller_id.email,opened_at"
    change = {"urgency": "1", "short_description": "Same change", "work_notes": "note"}
    quiet = {"X-no-response-body": "true"} if no_body else {}
    direct = http.patch(f"{api}/table/incident/{a['sys_id']}", params={"sysparm_fields": fields,
                        "sysparm_display_value": "all"}, json=change, headers=quiet, timeout=TIMEOUT)
    item = {"id": "1", "method": "PATCH", "exclude_response_headers": exclude_headers,
            "url": f"/api/now/v2/table/incident/{b['sys_id']}?sysparm_fields={fields}&sysparm_display_value=all",
            "headers": [{"name": "Content-Type", "value": "application/json"},
                        *({"name": k, "value": v} for k, v in quiet.items())], "body": b64(change)}
    batched = http.post(f"{api}/v1/batch", json={"batch_request_id": "eq", "rest_requests": [item]},
                        timeout=TIMEOUT).json()["serviced_requests"][0]
    assert batched["status_code"] == direct.status_code
    if no_body and not closed:  # written, and nothing echoed: neither way sends the record back
        assert batched["body"] == "" and direct.content == b""
        assert sim.tables["incident"][b["sys_id"]]["short_description"] == "Same change"
        return
    mine, theirs = json.loads(base64.b64decode(batched["body"])), direct.json()
    if closed:  # the same refusal, word for word
        assert mine == theirs and batched["error_message"] == theirs["error"]["message"]
        return
    # Two records differ in who called and when: the same fields, rendered alike, and the same change.
    assert set(mine["result"]) == set(theirs["result"])
    for name in ("urgency", "short_description"):
        assert mine["result"][name] == theirs["result"][name]


# ---- OAuth ---------------------------------------------------------------------------------------


def test_oauth_client_credentials(sim, server, api, clock):
    form = {"grant_type": "client_credentials", "client_id": "vloop-sandbox", "client_secret": "sandbox-client-secret"}
    token = requests.post(f"{server.base_url}/oauth_token.do", data=form, timeout=TIMEOUT)
    assert token.status_code == 200
    grant = token.json()
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == 1800 and grant["scope"] == "useraccount"
    bearer = {"Authorization": f"Bearer {grant['access_token']}"}
    assert requests.get(f"{api}/table/incident", params={"sysparm_limit": 1}, headers=bearer,
                        timeout=TIMEOUT).status_code == 200
    clock.now = NOW + timedelta(seconds=1801)
    expired = requests.get(f"{api}/table/incident", params={"sysparm_limit": 1}, headers=bearer, timeout=TIMEOUT)
    assert_error(expired, 401, "User Not Authenticated")
    bad = requests.post(f"{server.base_url}/oauth_token.do", data=form | {"client_secret": "nope"}, timeout=TIMEOUT)
    assert bad.status_code == 401 and "access_token" not in bad.json()


# ---- schema and Python controls -------------------------------------------------------------------


def test_sys_dictionary_describes_fields(sim, http, api):
    params = {"sysparm_query": "name=incident^element=state", "sysparm_fields": "name,element,internal_type"}
    result = http.get(f"{api}/table/sys_dictionary", params=params, timeout=TIMEOUT).json()["result"]
    assert result == [{"name": "incident", "element": "state", "internal_type": "integer"}]
    sim.register_table("incident", {"u_csat_score": "integer"})
    params = {"sysparm_query": "name=incident^element=u_csat_score", "sysparm_fields": "internal_type"}
    assert http.get(f"{api}/table/sys_dictionary", params=params, timeout=TIMEOUT).json()["result"] == [
        {"internal_type": "integer"}]
    row = open_incident(sim)
    record = http.patch(f"{api}/table/incident/{row['sys_id']}", json={"u_csat_score": 4},
                        timeout=TIMEOUT).json()["result"]
    assert record["u_csat_score"] == "4"


def test_python_controls_move_the_record_like_real_writes(sim, http, api, clock):
    sys_id = sim.add_incident(short_description="made in a test")
    created = sim.record("incident", sys_id)
    assert created is not None and created["state"] == "1" and created["caller_id"]
    clock.now = NOW + timedelta(hours=2)
    sim.resolve(sys_id)
    resolved = sim.record("incident", sys_id)
    assert resolved is not None and resolved["state"] == "6" and resolved["resolved_at"] == format_datetime(clock.now)
    assert resolved["resolved_by"] == created["assigned_to"]
    sim.reopen(sys_id, at=NOW + timedelta(hours=3))
    sim.close(sys_id, at=NOW + timedelta(hours=4))
    sim.set_fields("incident", sys_id, close_notes="done")
    final = sim.record("incident", sys_id)
    assert final is not None
    assert final["reopen_count"] == "1" and final["state"] == "7" and final["active"] == "false"
    assert final["closed_at"] == format_datetime(NOW + timedelta(hours=4))
    assert final["sys_mod_count"] == "4"
    query = {"sysparm_query": f"sys_updated_on>={format_datetime(NOW + timedelta(hours=2))}", "sysparm_fields": "sys_id"}
    assert http.get(f"{api}/table/incident", params=query, timeout=TIMEOUT).json()["result"] == [{"sys_id": sys_id}]


def test_ordered_reads_follow_writes(sim, http, api, clock):
    """Sorted indexes are updated in place on writes; reads must still match a fresh sort."""
    open_ones = incidents(sim, state="2")[:3]
    resolved = incidents(sim, state="6")[:2]
    clock.now = NOW + timedelta(days=1)
    http.patch(f"{api}/table/incident/{open_ones[0]['sys_id']}", json={"state": "6"}, timeout=TIMEOUT)
    http.patch(f"{api}/table/incident/{resolved[0]['sys_id']}", json={"state": "2"}, timeout=TIMEOUT)
    http.patch(f"{api}/table/incident/{resolved[1]['sys_id']}", json={"resolved_at": "2026-01-01 00:00:00"},
               timeout=TIMEOUT)
    http.delete(f"{api}/table/incident/{open_ones[1]['sys_id']}", timeout=TIMEOUT)
    sim.resolve(open_ones[2]["sys_id"], at=NOW - timedelta(days=40))
    http.patch(f"{api}/table/incident/{resolved[1]['sys_id']}", json={"description": "still here"},
               timeout=TIMEOUT)  # a write that does not move the row must still show in ordered reads
    params = {"sysparm_query": "resolved_atISNOTEMPTY^ORDERBYresolved_at^ORDERBYsys_id",
              "sysparm_fields": "sys_id,description"}
    result = http.get(f"{api}/table/incident", params=params, timeout=TIMEOUT).json()["result"]
    assert result[0]["description"] == "still here"
    got = [r["sys_id"] for r in result]
    expected = sorted((r for r in sim.tables["incident"].values() if r["resolved_at"]),
                      key=lambda r: (r["resolved_at"], r["sys_id"]))
    assert got == [r["sys_id"] for r in expected]
    # The world's tickets were all resolved within 30 days of the anchor, so the two back-dated ones lead.
    assert got[:2] == [resolved[1]["sys_id"], open_ones[2]["sys_id"]] and got[-1] == open_ones[0]["sys_id"]


def test_concurrent_writes_are_serialised(sim, server):
    row = open_incident(sim)
    url = f"{server.base_url}/api/now/table/incident/{row['sys_id']}"

    def writer(worker: int) -> int:
        with requests.Session() as session:
            session.auth = (sim.user, sim.password)
            for i in range(25):
                response = session.patch(url, json={"description": f"w{worker}-{i}"}, timeout=TIMEOUT)
                assert response.status_code == 200
                session.get(url, timeout=TIMEOUT).raise_for_status()
        return worker

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(writer, range(4))) == [0, 1, 2, 3]
    final = sim.record("incident", row["sys_id"])
    assert final is not None and int(final["sys_mod_count"]) == int(row["sys_mod_count"]) + 100
