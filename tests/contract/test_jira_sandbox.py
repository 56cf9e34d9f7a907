"""The Jira sandbox over real HTTP: behaviour the OpenAPI specs do not describe.

Each expectation comes from reference/jira-api.md (section numbers in the docstrings): the legacy
search removal, Data Center paging, time-zone interpretation of JQL dates, how resolution and edits
move issues in and out of searches, permissions, the experimental JSM feedback API, and the `jira`
package working against the sandbox with its own retries off.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jira
import pytest
import requests

from connector.sandbox.jira import (
    CUSTOM_FIELD_IDS,
    LEGACY_SEARCH_GONE,
    NOT_AUTHENTICATED,
    UNBOUNDED_JQL,
    JiraSimulator,
    make_jira_server,
)
from connector.sandbox.server import Fault, SandboxServer
from connector.sandbox.world import build_world
from tests.contract.conftest import CurrentSimulator

ANCHOR = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AUTH = ("vloop@example.com", "sandbox-token")
TIMEOUT = 10
EXPERIMENTAL = {"X-ExperimentalApi": "opt-in"}


class Clock:
    """A settable clock for the simulator."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def world() -> Any:
    return build_world(tickets=150, seed=5, anchor=ANCHOR)


@pytest.fixture
def clock() -> Clock:
    return Clock(ANCHOR + timedelta(hours=1))


@pytest.fixture
def serve(shared_server: tuple[SandboxServer, CurrentSimulator]) -> Iterator[Any]:
    """Call with a simulator; returns the base URL serving it."""
    srv, current = shared_server

    def use(sim: JiraSimulator) -> str:
        current.sim = sim
        srv.faults.clear()
        return srv.base_url

    yield use
    current.sim = None


@pytest.fixture
def cloud(world: Any, clock: Clock) -> JiraSimulator:
    return JiraSimulator(world, mode="cloud", user_timezone="America/New_York", clock=clock)


@pytest.fixture
def dc(world: Any, clock: Clock) -> JiraSimulator:
    return JiraSimulator(world, mode="datacenter", user_timezone="Europe/Stockholm", clock=clock,
                         max_results_cap=40)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = AUTH
        yield session


def search(http: requests.Session, base: str, jql: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"{base}/rest/api/3/search/jql", params={"jql": jql, **params}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return dict(response.json())


def search_all(http: requests.Session, base: str, jql: str, **params: Any) -> list[dict[str, Any]]:
    issues, token = [], params.pop("nextPageToken", None)
    while True:
        page = search(http, base, jql, **params, **({"nextPageToken": token} if token else {}))
        issues += page["issues"]
        token = page.get("nextPageToken")
        if page["isLast"]:
            return issues


def keys(issues: list[dict[str, Any]]) -> list[str]:
    return [i["key"] for i in issues]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def assert_jira_error(response: requests.Response, status: int, *messages: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"errorMessages": list(messages), "errors": {}}


# ---- search endpoints (§2.1-2.3) --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/rest/api/2/search", "/rest/api/3/search", "/rest/api/latest/search"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_legacy_search_is_gone_on_cloud(cloud, serve, http, path, method):
    """§2.2: the removed endpoints answer 410 with Atlassian's migration message."""
    base = serve(cloud)
    response = http.request(method, base + path, params={"jql": "project = ITSD"}, json={"jql": "project = ITSD"},
                            timeout=TIMEOUT)
    assert_jira_error(response, 410, LEGACY_SEARCH_GONE)


def test_enhanced_search_rejects_unbounded_jql_and_long_order_by(cloud, serve, http):
    """§2.1: bounded JQL only; ORDER BY takes at most 7 fields."""
    base = serve(cloud)
    for jql in ("order by key desc", ""):
        response = http.get(f"{base}/rest/api/3/search/jql", params={"jql": jql}, timeout=TIMEOUT)
        assert_jira_error(response, 400, UNBOUNDED_JQL)
    eight = ", ".join(["created", "updated", "resolved", "key", "priority", "status", "summary", "issuetype"])
    response = http.get(f"{base}/rest/api/3/search/jql", params={"jql": f"project = ITSD ORDER BY {eight}"},
                        timeout=TIMEOUT)
    assert response.status_code == 400
    assert search(http, base, "assignee = currentUser() order by key")["issues"] == []


def test_enhanced_search_caps_pages_and_tokens_belong_to_their_jql(cloud, serve, http):
    base = serve(cloud)
    page = search(http, base, "project = ITSD ORDER BY key", maxResults=5000, fields="key")
    assert len(page["issues"]) == 100  # the sandbox's Cloud page cap
    other = http.get(f"{base}/rest/api/3/search/jql", timeout=TIMEOUT,
                     params={"jql": "project = ITSD ORDER BY key DESC", "nextPageToken": page["nextPageToken"]})
    assert other.status_code == 400
    garbage = http.get(f"{base}/rest/api/3/search/jql", params={"jql": "project = ITSD", "nextPageToken": "x!"},
                       timeout=TIMEOUT)
    assert garbage.status_code == 400


def test_invalid_jql_answers_400_with_jiras_messages(cloud, serve, http):
    base = serve(cloud)
    response = http.get(f"{base}/rest/api/3/search/jql", params={"jql": "project = ITSD AND foo = 1"},
                        timeout=TIMEOUT)
    assert_jira_error(response, 400, "Field 'foo' does not exist or you do not have permission to view it.")
    response = http.get(f"{base}/rest/api/3/search/jql", params={"jql": "project = ITSD status = Done"},
                        timeout=TIMEOUT)
    assert_jira_error(response, 400, "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'status'. "
                                     "(line 1, character 16)")


def test_data_center_pages_with_start_at_and_reports_the_effective_page_size(dc, serve, http):
    """§2.3: startAt/maxResults/total; the server caps maxResults and says so in the answer."""
    base = serve(dc)
    jql = "project = ITSD AND resolution IS NOT EMPTY ORDER BY resolved ASC, key ASC"
    seen, start = [], 0
    while True:
        body = http.get(f"{base}/rest/api/2/search", timeout=TIMEOUT,
                        params={"jql": jql, "startAt": start, "maxResults": 1000, "fields": "resolutiondate"}).json()
        assert body["maxResults"] == 40 and body["startAt"] == start
        seen += keys(body["issues"])
        start += len(body["issues"])
        if start >= body["total"]:
            break
    assert len(seen) == len(set(seen)) == body["total"] == sum(1 for t in dc.world.tickets if t.resolved_at)
    assert http.get(f"{base}/rest/api/2/search", params={"jql": ""}, timeout=TIMEOUT).json()["total"] == 150
    assert http.get(f"{base}/rest/api/2/search/jql", params={"jql": jql}, timeout=TIMEOUT).status_code == 404
    assert http.get(f"{base}/rest/api/3/myself", timeout=TIMEOUT).status_code == 404


def test_data_center_users_and_field_ids(dc, cloud, serve, http):
    base = serve(dc)
    info = http.get(f"{base}/rest/api/2/serverInfo", timeout=TIMEOUT).json()
    assert info["deploymentType"] != "Cloud" and info["versionNumbers"][0] == 9
    issue = http.get(f"{base}/rest/api/2/issue/ITSD-1", timeout=TIMEOUT).json()["fields"]
    assert set(issue["reporter"]) >= {"name", "key", "displayName", "emailAddress", "timeZone"}
    assert "accountId" not in issue["reporter"]
    assert isinstance(issue["description"], str)
    fields = http.get(f"{base}/rest/api/2/field", timeout=TIMEOUT).json()
    dc_ids = {f["name"]: f["id"] for f in fields if f["custom"]}
    assert dc_ids["Satisfaction"] == f"customfield_{CUSTOM_FIELD_IDS['datacenter']['Satisfaction']}"
    assert set(CUSTOM_FIELD_IDS["cloud"].values()).isdisjoint(CUSTOM_FIELD_IDS["datacenter"].values())


# ---- time zones (§2.4, §3.1) ------------------------------------------------------------------------


def test_string_dates_are_read_in_the_users_time_zone_but_epoch_ms_are_absolute(cloud, serve, http):
    """§2.4: a naive UTC string in a New York user's search silently skips five hours of resolutions."""
    base = serve(cloud)
    resolved = sorted((t for t in cloud.world.tickets if t.resolved_at), key=lambda t: t.resolved_at)
    target = resolved[len(resolved) // 2]
    at = target.resolved_at.replace(second=0)
    jql_ms = f"project = ITSD AND resolved >= {epoch_ms(at)} ORDER BY resolved ASC, key ASC"
    jql_naive = f'project = ITSD AND resolved >= "{at:%Y-%m-%d %H:%M}" ORDER BY resolved ASC, key ASC'
    local = at.astimezone(ZoneInfo("America/New_York"))
    jql_local = f'project = ITSD AND resolved >= "{local:%Y/%m/%d %H:%M}" ORDER BY resolved ASC, key ASC'
    by_ms = keys(search_all(http, base, jql_ms, fields="resolutiondate"))
    by_naive = keys(search_all(http, base, jql_naive, fields="resolutiondate"))
    by_local = keys(search_all(http, base, jql_local, fields="resolutiondate"))
    assert f"ITSD-{target.seq}" in by_ms and by_ms == by_local
    assert f"ITSD-{target.seq}" not in by_naive and len(by_naive) < len(by_ms)
    missed = [t for t in resolved if at <= t.resolved_at < at + timedelta(hours=5)]
    assert len(by_ms) - len(by_naive) == len(missed)


def test_timestamps_are_rendered_in_the_users_profile_time_zone(cloud, serve, http):
    base = serve(cloud)
    issue = http.get(f"{base}/rest/api/3/issue/ITSD-1", params={"fields": "created"}, timeout=TIMEOUT).json()
    created = issue["fields"]["created"]
    assert created.endswith(("-0500", "-0400"))
    parsed = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%f%z")
    assert parsed == cloud.world.ticket(1).opened_at


# ---- state changes move issues in and out of searches (§2.4, §3.4) -----------------------------------


def test_resolve_and_reopen_change_search_results(cloud, serve, http, clock):
    base = serve(cloud)
    open_ticket = next(t for t in cloud.world.tickets if t.resolved_at is None)
    key = f"ITSD-{open_ticket.seq}"
    since = epoch_ms(clock.now)
    jql = f"project = ITSD AND resolved >= {since} ORDER BY resolved ASC, key ASC"
    assert search(http, base, jql)["issues"] == []
    cloud.resolve(key, clock.now + timedelta(minutes=3))
    found = search(http, base, jql, fields="resolution,resolutiondate,status")["issues"]
    assert keys(found) == [key] and found[0]["fields"]["status"]["statusCategory"]["key"] == "done"
    cloud.reopen(key, clock.now + timedelta(minutes=10))
    assert search(http, base, jql)["issues"] == []
    reopened = http.get(f"{base}/rest/api/3/issue/{key}", timeout=TIMEOUT).json()["fields"]
    assert reopened["resolution"] is None and reopened["resolutiondate"] is None
    assert search(http, base, f"key = {key} AND resolution IS EMPTY")["issues"] == [{"id": reopened_id(cloud, key)}]
    cloud.resolve(key, clock.now + timedelta(minutes=20))
    again = search(http, base, jql, fields="resolutiondate")["issues"]
    assert keys(again) == [key]
    assert again[0]["fields"]["resolutiondate"] > found[0]["fields"]["resolutiondate"]


def reopened_id(sim: JiraSimulator, key: str) -> str:
    return str(sim.issue(key)["id"])


def test_paging_continues_after_the_last_key_even_when_issues_change(cloud, serve, http, clock):
    """Tokens carry a search-after position: a write-back between pages neither repeats nor skips."""
    base = serve(cloud)
    jql = "project = ITSD AND resolution IS NOT EMPTY ORDER BY resolved ASC, key ASC"
    first = search(http, base, jql, maxResults=30, fields="resolutiondate")
    for issue in first["issues"][:5]:
        clock.now += timedelta(seconds=1)
        edit = http.put(f"{base}/rest/api/3/issue/{issue['key']}", json={"fields": {"customfield_10052": "sv"}},
                        timeout=TIMEOUT)
        assert edit.status_code == 204
    rest = keys(search_all(http, base, jql, maxResults=30, fields="resolutiondate",
                           nextPageToken=first["nextPageToken"]))
    everything = keys(search_all(http, base, jql, maxResults=100, fields="key"))
    assert keys(first["issues"]) + rest == everything


def test_edits_and_comments_move_updated_but_not_resolved(cloud, serve, http, clock):
    """§2.4: our own write-backs bump `updated`, which is why the cursor is on `resolved`."""
    base = serve(cloud)
    key = f"ITSD-{next(t for t in cloud.world.tickets if t.resolved_at).seq}"
    before = cloud.issue(key)["fields"]
    clock.now += timedelta(minutes=5)
    http.put(f"{base}/rest/api/3/issue/{key}", json={"fields": {"customfield_10052": before["customfield_10052"]}},
             timeout=TIMEOUT)
    assert cloud.issue(key)["fields"]["updated"] == before["updated"]  # nothing changed, nothing recorded
    http.put(f"{base}/rest/api/3/issue/{key}", json={"fields": {"customfield_10052": "de-AT"}}, timeout=TIMEOUT)
    edited = cloud.issue(key)["fields"]
    assert edited["updated"] != before["updated"] and edited["resolutiondate"] == before["resolutiondate"]
    clock.now += timedelta(minutes=5)
    http.post(f"{base}/rest/api/2/issue/{key}/comment", json={"body": "Thanks"}, timeout=TIMEOUT)
    commented = cloud.issue(key)["fields"]
    assert commented["updated"] > edited["updated"]
    since = epoch_ms(clock.now - timedelta(minutes=1))
    assert keys(search(http, base, f"updated >= {since}", fields="key")["issues"]) == [key]


# ---- edits, permissions and notifications (§3.4, §4) -------------------------------------------------


def test_notify_users_false_needs_admin(world, clock, serve, http):
    plain = JiraSimulator(world, clock=clock)
    base = serve(plain)
    response = http.put(f"{base}/rest/api/3/issue/ITSD-2?notifyUsers=false",
                        json={"fields": {"customfield_10052": "fi"}}, timeout=TIMEOUT)
    assert_jira_error(response, 403, "To discard the user notification either admin or project admin permissions "
                                     "are required.")
    assert plain.issue("ITSD-2")["fields"]["customfield_10052"] != "fi"  # the whole edit was refused
    admin = JiraSimulator(world, clock=clock, admin=True)
    base = serve(admin)
    quiet = http.put(f"{base}/rest/api/3/issue/ITSD-2?notifyUsers=false",
                     json={"fields": {"customfield_10052": "fi"}}, timeout=TIMEOUT)
    assert quiet.status_code == 204 and admin.notifications == []
    loud = http.put(f"{base}/rest/api/3/issue/ITSD-2", json={"fields": {"customfield_10052": "sv"}}, timeout=TIMEOUT)
    assert loud.status_code == 204 and [n.event for n in admin.notifications] == ["issue_updated"]


def test_edit_validation(cloud, serve, http):
    base = serve(cloud)
    bad = http.put(f"{base}/rest/api/3/issue/ITSD-3", timeout=TIMEOUT, json={"fields": {
        "status": {"name": "Closed"}, "description": "plain text is not ADF", "customfield_10050": {"value": "Nope"},
        "summary": "fine"}})
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "status": "Field 'status' cannot be set. It is not on the appropriate screen, or unknown.",
        "description": "Operation value must be an Atlassian Document (see the Atlassian Document Format)",
        "customfield_10050": "Option value 'Nope' is not valid",
    }
    assert cloud.issue("ITSD-3")["fields"]["summary"] != "fine"  # nothing applied
    v2 = http.put(f"{base}/rest/api/2/issue/ITSD-3", json={"fields": {"description": "plain text in v2"}},
                  timeout=TIMEOUT)
    assert v2.status_code == 204 and cloud.issue("ITSD-3")["fields"]["description"] == "plain text in v2"
    missing = http.get(f"{base}/rest/api/3/issue/ITSD-9999", timeout=TIMEOUT)
    assert_jira_error(missing, 404, "Issue does not exist or you do not have permission to see it.")


def test_comments_are_public_unless_marked_internal_and_public_ones_email_the_customer(cloud, serve, http):
    """§4: platform comments default to jsdPublic=true, which emails the customer."""
    base = serve(cloud)
    http.post(f"{base}/rest/api/2/issue/ITSD-8/comment", json={"body": "How did we do?"}, timeout=TIMEOUT)
    http.post(f"{base}/rest/api/2/issue/ITSD-8/comment", timeout=TIMEOUT, json={
        "body": "bookkeeping", "properties": [{"key": "sd.public.comment", "value": {"internal": True}}]})
    http.post(f"{base}/rest/servicedeskapi/request/ITSD-8/comment", json={"body": "note", "public": False},
              timeout=TIMEOUT)
    assert [c["public"] for c in cloud.comments("ITSD-8")] == [True, False, False]
    assert [n.customer_notified for n in cloud.notifications] == [True, False, False]
    public_only = http.get(f"{base}/rest/servicedeskapi/request/ITSD-8/comment", params={"internal": "false"},
                           timeout=TIMEOUT).json()
    assert [c["body"] for c in public_only["values"]] == ["How did we do?"]


def test_bulk_create_limit(cloud, serve, http):
    base = serve(cloud)
    one = {"fields": {"project": {"key": "ITSD"}, "issuetype": {"name": "Task"}, "summary": "x"}}
    response = http.post(f"{base}/rest/api/3/issue/bulk", json={"issueUpdates": [one] * 51}, timeout=TIMEOUT)
    assert response.status_code == 400
    nothing = http.get(f"{base}/rest/api/3/search/jql", params={"jql": "key = ITSD-151"}, timeout=TIMEOUT)
    assert_jira_error(nothing, 400, "An issue with key 'ITSD-151' does not exist for field 'key'.")


def test_hidden_emails_are_null_on_cloud(cloud, serve, http):
    base = serve(cloud)
    hidden = next(t for t in cloud.world.tickets if t.requester.email_hidden)
    visible = next(t for t in cloud.world.tickets if not t.requester.email_hidden)
    for ticket, expected in ((hidden, None), (visible, visible.requester.email)):
        issue = http.get(f"{base}/rest/api/3/issue/ITSD-{ticket.seq}", params={"fields": "reporter"},
                         timeout=TIMEOUT).json()
        assert issue["fields"]["reporter"]["emailAddress"] == expected
        assert issue["fields"]["reporter"]["accountType"] == "customer"


# ---- authentication and JSM feedback (§5) ------------------------------------------------------------


def test_authentication(cloud, serve):
    base = serve(cloud)
    for auth in (None, ("vloop@example.com", "wrong"), ("someone@example.com", "sandbox-token")):
        response = requests.get(f"{base}/rest/api/3/myself", auth=auth, timeout=TIMEOUT)
        assert_jira_error(response, 401, NOT_AUTHENTICATED)
    assert requests.get(f"{base}/rest/api/3/serverInfo", timeout=TIMEOUT).status_code == 200
    token = base64.b64encode(b"vloop@example.com:sandbox-token").decode()
    ok = requests.get(f"{base}/rest/api/3/myself", headers={"Authorization": f"Basic {token}"}, timeout=TIMEOUT)
    assert ok.status_code == 200 and ok.json()["emailAddress"] == "vloop@example.com"


def test_feedback_is_experimental_reporter_only_and_rated_one_to_five(cloud, serve, http, clock):
    """§5.2: X-ExperimentalApi: opt-in or 412; only the reporter may post; rating 1-5."""
    base = serve(cloud)
    url = f"{base}/rest/servicedeskapi/request/ITSD-6/feedback"
    assert http.get(url, timeout=TIMEOUT).status_code == 412
    assert http.post(url, json={"rating": 5}, headers=EXPERIMENTAL, timeout=TIMEOUT).status_code == 403
    reporter = cloud.world.ticket(6).requester
    cloud.add_credentials(reporter, "their-token")
    as_reporter = (reporter.email, "their-token")
    for rating in (0, 6, "5", None):
        response = requests.post(url, json={"rating": rating}, headers=EXPERIMENTAL, auth=as_reporter,
                                 timeout=TIMEOUT)
        assert response.status_code == 400
    clock.now += timedelta(minutes=1)
    posted = requests.post(url, json={"rating": 2, "type": "csat"}, headers=EXPERIMENTAL, auth=as_reporter,
                           timeout=TIMEOUT)
    assert posted.status_code == 201
    fields = cloud.issue("ITSD-6")["fields"]
    assert fields["customfield_10033"]["rating"] == 2
    assert fields["customfield_10033"]["self"].endswith("/rest/servicedeskapi/request/10006/feedback")
    assert fields["customfield_10034"] == fields["updated"]
    own = cloud.add_issue(summary="Mine")  # reported by the integration user itself
    mine = http.post(f"{base}/rest/servicedeskapi/request/{own}/feedback", json={"rating": 5},
                     headers=EXPERIMENTAL, timeout=TIMEOUT)
    assert mine.status_code == 201


def test_set_feedback_and_satisfaction_search(cloud, serve, http):
    base = serve(cloud)
    cloud.set_feedback("ITSD-9", 1, "Slow")
    found = keys(search(http, base, "project = ITSD AND Satisfaction <= 1", maxResults=100, fields="key")["issues"])
    assert "ITSD-9" in found
    body = http.get(f"{base}/rest/servicedeskapi/request/ITSD-9/feedback", headers=EXPERIMENTAL,
                    timeout=TIMEOUT).json()
    assert body == {"type": "csat", "rating": 1, "comment": {"body": "Slow"}}


# ---- the jira package (§8) and faults --------------------------------------------------------------


def test_jira_package_constructs_and_pages_on_cloud(cloud, serve):
    base = serve(cloud)
    client = jira.JIRA(base, basic_auth=AUTH, max_retries=0, get_server_info=True)
    try:
        assert client._is_cloud and client.myself()["timeZone"] == "America/New_York"
        client._options["rest_api_version"] = "3"
        jql = "project = ITSD AND resolution IS NOT EMPTY ORDER BY resolved ASC, key ASC"
        seen, token = [], None
        while True:
            page = client.enhanced_search_issues(jql, nextPageToken=token, maxResults=25,
                                                 fields=["resolutiondate", "customfield_10050"], json_result=True)
            seen += keys(page["issues"])
            token = page.get("nextPageToken")
            if page["isLast"]:
                break
        assert len(seen) == len(set(seen)) == sum(1 for t in cloud.world.tickets if t.resolved_at)
        everything = client.enhanced_search_issues("project = ITSD", maxResults=0, fields=["summary"])
        assert len(everything) == 150
    finally:
        client.close()


def test_jira_package_constructs_and_pages_on_data_center(dc, serve):
    base = serve(dc)
    client = jira.JIRA(base, basic_auth=AUTH, max_retries=0, get_server_info=True)
    try:
        assert not client._is_cloud
        body = client.search_issues("project = ITSD ORDER BY key", startAt=40, maxResults=500,
                                    fields=["summary"], json_result=True)
        assert body["startAt"] == 40 and body["maxResults"] == 40 and body["total"] == 150
        assert body["issues"][0]["key"] == "ITSD-41"
        assert len(client.search_issues("project = ITSD", maxResults=0, fields=["summary"])) == 150
        assert client.enhanced_search_issues("project = ITSD", json_result=True) is None  # Cloud only
    finally:
        client.close()


def test_injected_faults_carry_jira_error_bodies(cloud, world):
    with make_jira_server(cloud) as srv:
        srv.faults.inject(Fault("status", status=429, retry_after="3", path_contains="/search/jql"))
        response = requests.get(f"{srv.base_url}/rest/api/3/search/jql", params={"jql": "project = ITSD"},
                                auth=AUTH, timeout=TIMEOUT)
        assert response.status_code == 429 and response.headers["Retry-After"] == "3"
        assert response.json() == {"errorMessages": ["Rate limit exceeded."], "errors": {}}
        client = jira.JIRA(srv.base_url, basic_auth=AUTH, max_retries=0)
        try:
            srv.faults.inject(Fault("status", status=503, path_contains="/myself"))
            with pytest.raises(jira.JIRAError) as caught:
                client.myself()
            assert caught.value.status_code == 503  # max_retries=0: the package does not retry
        finally:
            client.close()


def test_concurrent_requests_are_served_consistently(cloud, serve):
    base = serve(cloud)

    def work(n: int) -> int:
        with requests.Session() as session:
            session.auth = AUTH
            if n % 2:
                session.post(f"{base}/rest/api/2/issue/ITSD-{n}/comment", json={"body": f"c{n}"}, timeout=TIMEOUT)
            page = session.get(f"{base}/rest/api/3/search/jql", timeout=TIMEOUT,
                               params={"jql": "project = ITSD ORDER BY key", "maxResults": 100}).json()
            return len(page["issues"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(work, range(1, 41))) == {100}
    assert sum(len(cloud.comments(f"ITSD-{n}")) for n in range(1, 41)) == 20
    assert json.loads(json.dumps(cloud.issue("ITSD-1")))["key"] == "ITSD-1"


def test_own_score_field_and_issue_properties(cloud, serve, http):
    """§11.4: store our score in our own number field or an issue property, not in JSM's Satisfaction."""
    score = cloud.add_field("Survey score", "number")
    base = serve(cloud)
    fields = {f["name"]: f for f in http.get(f"{base}/rest/api/3/field", timeout=TIMEOUT).json()}
    assert fields["Survey score"]["schema"]["custom"] == "com.atlassian.jira.plugin.system.customfieldtypes:float"
    assert fields["Survey score"]["id"] == score
    wrong = http.put(f"{base}/rest/api/3/issue/ITSD-11", json={"fields": {score: "five"}}, timeout=TIMEOUT)
    assert wrong.status_code == 400 and wrong.json()["errors"] == {score: "Operation value must be a number"}
    assert http.put(f"{base}/rest/api/3/issue/ITSD-11", json={"fields": {score: 4.5}},
                    timeout=TIMEOUT).status_code == 204
    found = search(http, base, '"Survey score" >= 4', fields=score)["issues"]
    assert [(i["key"], i["fields"][score]) for i in found] == [("ITSD-11", 4.5)]
    before = cloud.issue("ITSD-11")["fields"]["updated"]
    put = http.put(f"{base}/rest/api/3/issue/ITSD-11/properties/vloop", json={"score": 4.5}, timeout=TIMEOUT)
    assert put.status_code == 201
    got = http.get(f"{base}/rest/api/3/issue/ITSD-11/properties/vloop", timeout=TIMEOUT).json()
    assert got == {"key": "vloop", "value": {"score": 4.5}}
    assert cloud.issue("ITSD-11")["fields"]["updated"] == before  # properties are not fields
    with_props = http.get(f"{base}/rest/api/3/issue/ITSD-11", params={"fields": "summary", "properties": "vloop"},
                          timeout=TIMEOUT).json()
    assert with_props["properties"] == {"vloop": {"score": 4.5}}


def test_approximate_count(cloud, serve, http):
    base = serve(cloud)
    body = http.post(f"{base}/rest/api/3/search/approximate-count", json={"jql": "project = ITSD"},
                     timeout=TIMEOUT).json()
    assert body == {"count": 150}


CF = "com.atlassian.jira.plugin.system.customfieldtypes:"


def test_a_created_custom_field_is_on_no_screen_until_an_admin_adds_it(dc, serve, http):
    """createCustomField (Data Center v2): a global context but no screen, so edits refuse it at first."""
    dc.add_credentials(None, AUTH[1], admin=True)
    base = serve(dc)
    created = http.post(f"{base}/rest/api/2/field", json={"name": "Answered at", "type": f"{CF}datetime",
                                                           "searcherKey": f"{CF}datetimerange"}, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    field = created.json()["id"]
    assert "key" not in created.json()  # Data Center field details carry no `key`
    put = http.put(f"{base}/rest/api/2/issue/ITSD-3", json={"fields": {field: "2026-03-01T12:00:00.000+0000"}},
                   timeout=TIMEOUT)
    assert put.status_code == 400 and field in put.json()["errors"]
    dc.add_to_screen(field)
    meta = http.get(f"{base}/rest/api/2/issue/ITSD-3/editmeta", timeout=TIMEOUT).json()["fields"]
    assert meta[field]["operations"] == ["set"] and meta[field]["schema"]["type"] == "datetime"
    assert http.put(f"{base}/rest/api/2/issue/ITSD-3", json={"fields": {field: "2026-03-01T12:00:00.000+0000"}},
                    timeout=TIMEOUT).status_code == 204
    issue = http.get(f"{base}/rest/api/2/issue/ITSD-3", params={"fields": field}, timeout=TIMEOUT).json()
    assert issue["fields"][field] == "2026-03-01T13:00:00.000+0100"  # the user's profile time zone
    bad = http.put(f"{base}/rest/api/2/issue/ITSD-3", json={"fields": {field: "yesterday"}}, timeout=TIMEOUT)
    assert bad.status_code == 400 and "Invalid date format" in bad.json()["errors"][field]
    jql = f"project = ITSD AND cf[{field.removeprefix('customfield_')}] >= '2026-03-01'"
    found = http.get(f"{base}/rest/api/2/search", params={"jql": jql, "fields": "key"}, timeout=TIMEOUT).json()
    assert [i["key"] for i in found["issues"]] == ["ITSD-3"]


def test_create_custom_field_checks_its_definition(cloud, serve, http):
    cloud.add_credentials(None, AUTH[1], admin=True)
    base = serve(cloud)

    def create(**body):
        return http.post(f"{base}/rest/api/3/field", json=body, timeout=TIMEOUT)

    assert create(type=f"{CF}float").json()["errors"].keys() == {"name"}
    assert create(name="X", type=f"{CF}nope").json()["errors"].keys() == {"type"}
    wrong_searcher = create(name="X", type=f"{CF}float", searcherKey=f"{CF}textsearcher")
    assert wrong_searcher.status_code == 400 and wrong_searcher.json()["errors"].keys() == {"searcherKey"}
    # Without a searcher the field exists but is not searchable (the spec's words), so JQL cannot name it.
    quiet = create(name="Quiet", type=f"{CF}textfield")
    assert quiet.status_code == 201 and quiet.json()["searchable"] is False
    assert create(name="Quiet", type=f"{CF}textfield").status_code == 201  # names need not be unique
    unknown = http.get(f"{base}/rest/api/3/search/jql", params={"jql": 'project = ITSD AND Quiet ~ "x"'},
                       timeout=TIMEOUT)
    assert unknown.status_code == 400


def test_data_center_subtasks_createmeta_pages_and_parent_search(dc, serve, http):
    """Sub-tasks on Data Center (REST v2): created under a parent, found by `parent in (...)`; createmeta
    pages the project's issue types as `values`."""
    base = serve(dc)
    sub = {"project": {"key": "ITSD"}, "issuetype": {"name": "Sub-task"}, "summary": "Call back"}
    made = [http.post(f"{base}/rest/api/2/issue", json={"fields": {**sub, "parent": {"key": parent}}},
                      timeout=TIMEOUT).json()["key"] for parent in ("ITSD-2", "ITSD-3")]
    found = http.get(f"{base}/rest/api/2/search", timeout=TIMEOUT, params={
        "jql": "parent in (ITSD-2, ITSD-3) ORDER BY key ASC", "fields": "parent"}).json()
    assert [(i["key"], i["fields"]["parent"]["key"]) for i in found["issues"]] == list(zip(made, ("ITSD-2", "ITSD-3"),
                                                                                           strict=True))
    assert [i["key"] for i in http.get(f"{base}/rest/api/2/search", timeout=TIMEOUT, params={
        "jql": "parent != ITSD-2 AND project = ITSD", "fields": "parent"}).json()["issues"]] == [made[1]]
    sorting = http.get(f"{base}/rest/api/2/search", params={"jql": "project = ITSD ORDER BY parent"}, timeout=TIMEOUT)
    assert_jira_error(sorting, 400, "Field 'parent' does not support sorting.")
    relational = http.get(f"{base}/rest/api/2/search", params={"jql": "parent > ITSD-2"}, timeout=TIMEOUT)
    assert_jira_error(relational, 400, "The operator '>' is not supported by the 'parent' field.")
    page = http.get(f"{base}/rest/api/2/issue/createmeta/ITSD/issuetypes", params={"maxResults": 4},
                    timeout=TIMEOUT).json()
    assert page["isLast"] is False and page["total"] == 6 and len(page["values"]) == 4
    missing = http.get(f"{base}/rest/api/2/issue/createmeta/NOPE/issuetypes", timeout=TIMEOUT)
    assert_jira_error(missing, 404, "No project could be found with key 'NOPE'.")
