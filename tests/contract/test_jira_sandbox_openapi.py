"""The Jira sandbox (Cloud mode) against Atlassian's own OpenAPI specs, over real HTTP.

Every request the tests send and every answer the sandbox gives is validated with openapi-core
against the platform v3 spec and the JSM spec (shared/specs, see reference/jira-api.md §1.1). The
specs list `https://your-domain.atlassian.net` as their only server, so the request URL is
rewritten to it for validation.

Two documented deviations of the real product from its spec are allowed here, on purpose:
- Jira writes timestamps as `2022-06-09T16:29:31.871-0700` (offset without a colon), which is not
  RFC 3339 `date-time`; the `date-time` format check accepts that form.
- Empty 204/201 answers (edit issue, create link) carry no body although the spec declares a JSON
  content type; for those only the status code and headers are validated.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.sandbox.jira import JiraSimulator
from connector.sandbox.jira.fields import CREATE_FIELD_NEEDS_ADMIN
from connector.sandbox.server import SandboxServer
from connector.sandbox.world import build_world
from tests.contract.conftest import CurrentSimulator

# Atlassian's specs live in shared/specs beside the repository (they are not ours to redistribute);
# VLOOP_SPECS_DIR points elsewhere.
SPECS = Path(os.environ.get("VLOOP_SPECS_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "specs")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SPEC_BASE = "https://your-domain.atlassian.net"
ANCHOR = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AUTH = ("vloop@example.com", "sandbox-token")
TIMEOUT = 10
JIRA_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:?\d\d)")
EXPERIMENTAL = {"X-ExperimentalApi": "opt-in"}


def adf(text: str) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text",
                                                                                          "text": text}]}]}


class Specs:
    def __init__(self, folder: Path) -> None:
        from openapi_core import Config, OpenAPI

        config = Config(spec_validator_cls=None,  # both copies fail strict spec validation (§1.1)
                        extra_format_validators={"date-time": _jira_date_time})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unsupported scheme type" is harmless for shape checks
            self.platform = OpenAPI.from_file_path(folder / "jira-cloud-platform-v3.openapi.json", config=config)
            self.jsm = OpenAPI.from_file_path(folder / "jira-service-management.openapi.json", config=config)


def _jira_date_time(value: Any) -> bool:
    return not isinstance(value, str) or bool(JIRA_DATE_TIME.fullmatch(value))


@pytest.fixture(scope="module")
def specs() -> Specs:
    missing = [name for name in ("jira-cloud-platform-v3.openapi.json", "jira-service-management.openapi.json")
               if not (SPECS / name).is_file()]
    if missing:
        message = f"OpenAPI specs not found in {SPECS}: {', '.join(missing)}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return Specs(SPECS)


@pytest.fixture
def sim() -> JiraSimulator:
    world = build_world(tickets=120, seed=11, anchor=ANCHOR)
    return JiraSimulator(world, mode="cloud", user_timezone="Europe/Stockholm",
                         clock=lambda: ANCHOR + timedelta(hours=2))


class Api:
    """Sends requests to the sandbox and validates both directions against a spec."""

    def __init__(self, base: str, specs: Specs) -> None:
        self.base, self.specs = base, specs
        self.session = requests.Session()

    def call(self, method: str, path: str, *, spec: str = "platform", auth: tuple[str, str] = AUTH,
             **kwargs: Any) -> requests.Response:
        from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
        from openapi_core.validation.response.validators import V30ResponseHeadersValidator

        openapi = self.specs.platform if spec == "platform" else self.specs.jsm
        prepared = requests.Request(method, self.base + path, auth=auth, **kwargs).prepare()
        response = self.session.send(prepared, timeout=TIMEOUT)
        checked = prepared.copy()
        checked.url = str(prepared.url).replace(self.base, SPEC_BASE, 1)
        request = RequestsOpenAPIRequest(checked)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            openapi.validate_request(request)
            if response.content:
                openapi.validate_response(request, RequestsOpenAPIResponse(response))
            else:
                V30ResponseHeadersValidator(openapi.spec).validate(request, RequestsOpenAPIResponse(response))
        return response


@pytest.fixture
def api(sim: JiraSimulator, shared_server: tuple[SandboxServer, CurrentSimulator],
        specs: Specs) -> Iterator[Api]:
    srv, current = shared_server
    current.sim = sim
    srv.faults.clear()
    client = Api(srv.base_url, specs)
    yield client
    client.session.close()
    current.sim = None


# ---------------------------------------------------------------------------------------------- tests


def test_server_info_myself_and_fields(api: Api, sim: JiraSimulator) -> None:
    info = api.call("GET", "/rest/api/3/serverInfo").json()
    assert info["deploymentType"] == "Cloud" and info["versionNumbers"][0] == 1001
    me = api.call("GET", "/rest/api/3/myself").json()
    assert me["timeZone"] == "Europe/Stockholm" and me["accountType"] == "atlassian"
    fields = api.call("GET", "/rest/api/3/field").json()
    by_custom = {f["schema"].get("custom"): f for f in fields if f.get("custom")}
    satisfaction = by_custom["com.atlassian.servicedesk:sd-request-feedback"]
    assert satisfaction["name"] == "Satisfaction" and satisfaction["id"] == "customfield_10033"
    assert "com.atlassian.servicedesk:vp-origin" in by_custom


def test_search_jql_first_middle_and_last_pages(api: Api, sim: JiraSimulator) -> None:
    jql = "project = ITSD AND resolution IS NOT EMPTY ORDER BY resolved ASC, key ASC"
    fields = ["summary", "status", "resolutiondate", "reporter", "assignee", "description", "customfield_10050",
              "customfield_10033", "customfield_10010", "components", "priority", "labels"]
    expected = sum(1 for t in sim.world.tickets if t.resolved_at is not None)
    pages, token, keys = [], None, []
    while True:
        params: dict[str, Any] = {"jql": jql, "maxResults": 40, "fields": fields}
        if token:
            params["nextPageToken"] = token
        body = api.call("GET", "/rest/api/3/search/jql", params=params).json()
        pages.append(body)
        keys += [i["key"] for i in body["issues"]]
        token = body.get("nextPageToken")
        if body["isLast"]:
            break
    assert len(pages) >= 3
    assert all("nextPageToken" in p and p["isLast"] is False for p in pages[:-1])
    assert "nextPageToken" not in pages[-1] and "total" not in pages[-1]
    assert len(keys) == len(set(keys)) == expected
    first = pages[0]["issues"][0]["fields"]
    assert first["description"]["type"] == "doc"  # v3 renders rich text as ADF
    assert set(first) == set(fields)


def test_search_jql_post_with_expand_names(api: Api) -> None:
    body = {"jql": "project = ITSD ORDER BY key ASC", "maxResults": 5, "fields": ["summary", "updated"],
            "expand": "names"}
    page = api.call("POST", "/rest/api/3/search/jql", json=body).json()
    assert page["names"] == {"summary": "Summary", "updated": "Updated"}
    again = api.call("POST", "/rest/api/3/search/jql", json={**body, "nextPageToken": page["nextPageToken"]}).json()
    assert [i["key"] for i in again["issues"]] == ["ITSD-6", "ITSD-7", "ITSD-8", "ITSD-9", "ITSD-10"]


def test_search_jql_returns_ids_only_by_default(api: Api) -> None:
    page = api.call("GET", "/rest/api/3/search/jql", params={"jql": "project = ITSD", "maxResults": 3}).json()
    assert all(set(issue) == {"id"} for issue in page["issues"])


def test_issue_get_editmeta_and_put(api: Api, sim: JiraSimulator) -> None:
    issue = api.call("GET", "/rest/api/3/issue/ITSD-5").json()
    assert issue["key"] == "ITSD-5" and issue["fields"]["project"]["key"] == "ITSD"
    meta = api.call("GET", "/rest/api/3/issue/ITSD-5/editmeta").json()
    assert meta["fields"]["customfield_10033"]["operations"] == ["set"]
    edited = api.call("PUT", "/rest/api/3/issue/ITSD-5",
                      json={"fields": {"customfield_10050": {"value": "Database"}},
                            "update": {"labels": [{"add": "surveyed"}]}})
    assert edited.status_code == 204
    after = api.call("GET", "/rest/api/3/issue/ITSD-5", params={"fields": "customfield_10050,labels,updated"})
    assert after.json()["fields"]["customfield_10050"]["value"] == "Database"
    assert "surveyed" in after.json()["fields"]["labels"]
    rejected = api.call("PUT", "/rest/api/3/issue/ITSD-5", json={"fields": {"customfield_99999": 3}})
    assert rejected.status_code == 400
    assert rejected.json()["errors"] == {
        "customfield_99999": "Field 'customfield_99999' cannot be set. It is not on the appropriate screen, or unknown."}


def test_comment_post_in_adf_and_list(api: Api, sim: JiraSimulator) -> None:
    created = api.call("POST", "/rest/api/3/issue/ITSD-7/comment", json={"body": adf("How did we do?")})
    assert created.status_code == 201
    comment = created.json()
    assert comment["jsdPublic"] is True and comment["body"]["type"] == "doc"
    internal = api.call("POST", "/rest/api/3/issue/ITSD-7/comment", json={
        "body": adf("Survey sent"), "properties": [{"key": "sd.public.comment", "value": {"internal": True}}]})
    assert internal.json()["jsdPublic"] is False
    listed = api.call("GET", "/rest/api/3/issue/ITSD-7/comment").json()
    assert [c["jsdPublic"] for c in listed["comments"]] == [True, False]


def test_bulk_create_with_partial_errors(api: Api) -> None:
    good = {"fields": {"project": {"key": "ITSD"}, "issuetype": {"name": "Task"}, "summary": "Improve VPN"}}
    bad = {"fields": {"project": {"key": "ITSD"}, "issuetype": {"name": "Task"}, "summary": "x",
                      "customfield_10050": {"value": "Nobody"}}}
    partial = api.call("POST", "/rest/api/3/issue/bulk", json={"issueUpdates": [good, bad, good]})
    assert partial.status_code == 201
    body = partial.json()
    assert [i["key"] for i in body["issues"]] == ["ITSD-121", "ITSD-122"]
    assert body["errors"] == [{"status": 400, "failedElementNumber": 1, "elementErrors": {
        "errorMessages": [], "errors": {"customfield_10050": "Option value 'Nobody' is not valid"}}}]
    failed = api.call("POST", "/rest/api/3/issue/bulk", json={"issueUpdates": [bad, {"fields": {}}]})
    assert failed.status_code == 400
    assert failed.json()["issues"] == [] and [e["failedElementNumber"] for e in failed.json()["errors"]] == [0, 1]


def test_issue_link_and_link_types(api: Api) -> None:
    types = api.call("GET", "/rest/api/3/issueLinkType").json()["issueLinkTypes"]
    assert "Relates" in {t["name"] for t in types}
    link = {"type": {"name": "Relates"}, "inwardIssue": {"key": "ITSD-1"}, "outwardIssue": {"key": "ITSD-2"}}
    first = api.call("POST", "/rest/api/3/issueLink", json=link)
    again = api.call("POST", "/rest/api/3/issueLink", json={**link, "comment": {"body": adf("Same cause")}})
    assert first.status_code == again.status_code == 201 and first.content == b""
    links = api.call("GET", "/rest/api/3/issue/ITSD-1", params={"fields": "issuelinks"}).json()
    assert [item["outwardIssue"]["key"] for item in links["fields"]["issuelinks"]] == ["ITSD-2"]  # no duplicate
    comments = api.call("GET", "/rest/api/3/issue/ITSD-2/comment").json()["comments"]
    assert [c["body"] for c in comments] == [adf("Same cause")]  # on the outward issue, even for a duplicate


def test_jsm_request_comments(api: Api) -> None:
    public = api.call("POST", "/rest/servicedeskapi/request/ITSD-3/comment", spec="jsm",
                      json={"body": "Please rate us", "public": True})
    internal = api.call("POST", "/rest/servicedeskapi/request/ITSD-3/comment", spec="jsm",
                        json={"body": "Survey queued", "public": False})
    assert public.status_code == internal.status_code == 201
    assert internal.json()["public"] is False
    only_internal = api.call("GET", "/rest/servicedeskapi/request/ITSD-3/comment", spec="jsm",
                             params={"public": "false", "internal": "true"}).json()
    assert [c["body"] for c in only_internal["values"]] == ["Survey queued"]
    paged = api.call("GET", "/rest/servicedeskapi/request/ITSD-3/comment", spec="jsm",
                     params={"start": 0, "limit": 1}).json()
    assert paged["size"] == 1 and paged["isLastPage"] is False and "next" in paged["_links"]
    missing_public = api.call("POST", "/rest/servicedeskapi/request/ITSD-3/comment", spec="jsm",
                              json={"body": "no flag"})
    assert missing_public.status_code == 400


def test_jsm_feedback_by_the_reporter(api: Api, sim: JiraSimulator) -> None:
    reporter = sim.world.ticket(4).requester
    sim.add_credentials(reporter, "customer-token")
    customer = (reporter.email, "customer-token")
    posted = api.call("POST", "/rest/servicedeskapi/request/ITSD-4/feedback", spec="jsm", auth=customer,
                      headers=EXPERIMENTAL, json={"rating": 4, "comment": {"body": "Quick fix"}, "type": "csat"})
    assert posted.status_code == 201
    read = api.call("GET", "/rest/servicedeskapi/request/ITSD-4/feedback", spec="jsm", headers=EXPERIMENTAL)
    assert read.json() == {"type": "csat", "rating": 4, "comment": {"body": "Quick fix"}}
    forbidden = api.call("POST", "/rest/servicedeskapi/request/ITSD-4/feedback", spec="jsm",
                         headers=EXPERIMENTAL, json={"rating": 5})
    assert forbidden.status_code == 403  # the integration user is not the reporter
    deleted = api.call("DELETE", "/rest/servicedeskapi/request/ITSD-4/feedback", spec="jsm", auth=customer,
                       headers=EXPERIMENTAL)
    assert deleted.status_code == 204


def test_create_custom_field_needs_admin_and_answers_field_details(api: Api, sim: JiraSimulator) -> None:
    cf = "com.atlassian.jira.plugin.system.customfieldtypes:"
    body = {"name": "Customer score", "description": "Written by vloop", "type": f"{cf}float",
            "searcherKey": f"{cf}numberrange"}
    refused = api.call("POST", "/rest/api/3/field", json=body)
    # The spec documents 400 for "the user does not have permission to create custom fields".
    assert refused.status_code == 400 and refused.json() == {"errorMessages": [CREATE_FIELD_NEEDS_ADMIN],
                                                             "errors": {}}
    sim.add_credentials(None, AUTH[1], admin=True)
    created = api.call("POST", "/rest/api/3/field", json=body)
    assert created.status_code == 201
    field = created.json()
    number = int(field["id"].removeprefix("customfield_"))
    assert field["name"] == "Customer score" and field["custom"] is True and field["searchable"] is True
    assert field["schema"] == {"type": "number", "custom": f"{cf}float", "customId": number}
    assert field in api.call("GET", "/rest/api/3/field").json()
    meta = api.call("GET", "/rest/api/3/issue/ITSD-5/editmeta").json()
    assert field["id"] not in meta["fields"]  # created on no screen


def test_subtask_create_read_and_search(api: Api, sim: JiraSimulator) -> None:
    sub = {"project": {"key": "ITSD"}, "issuetype": {"name": "Sub-task"}, "summary": "Call the customer back"}
    created = api.call("POST", "/rest/api/3/issue", json={"fields": {**sub, "parent": {"key": "ITSD-5"}}})
    assert created.status_code == 201
    key = created.json()["key"]
    by_id = api.call("POST", "/rest/api/3/issue", json={"fields": {**sub, "parent": {"id": str(
        sim.issue("ITSD-5")["id"])}}})
    assert by_id.status_code == 201
    child = api.call("GET", f"/rest/api/3/issue/{key}", params={"fields": "parent,issuetype,subtasks"}).json()
    assert child["fields"]["parent"]["key"] == "ITSD-5" and child["fields"]["subtasks"] == []
    assert child["fields"]["issuetype"]["subtask"] is True and child["fields"]["issuetype"]["hierarchyLevel"] == -1
    parent = api.call("GET", "/rest/api/3/issue/ITSD-5", params={"fields": "parent,subtasks"}).json()
    assert "parent" not in parent["fields"]  # left out, not null, on an issue without one
    assert [s["key"] for s in parent["fields"]["subtasks"]] == [key, by_id.json()["key"]]
    assert parent["fields"]["subtasks"][0]["fields"]["status"]["statusCategory"]["key"] == "new"
    found = api.call("GET", "/rest/api/3/search/jql", params={"jql": "parent = ITSD-5 ORDER BY key ASC",
                                                               "fields": "summary"}).json()
    assert [i["key"] for i in found["issues"]] == [key, by_id.json()["key"]]
    fields = {f["id"]: f for f in api.call("GET", "/rest/api/3/field").json()}
    assert fields["subtasks"]["schema"] == {"type": "array", "items": "issuelinks", "system": "subtasks"}
    assert "schema" not in fields["parent"] and fields["parent"]["clauseNames"] == ["parent"]


def test_subtask_refusals_in_jiras_error_shape(api: Api, sim: JiraSimulator) -> None:
    sub = {"project": {"key": "ITSD"}, "issuetype": {"name": "Sub-task"}, "summary": "Follow up"}
    nested = api.call("POST", "/rest/api/3/issue", json={"fields": {**sub, "parent": {"key": "ITSD-6"}}}).json()
    sim.add_project("OPS", "Operations")
    refusals = [
        (sub, {"issuetype": "Issue type is a sub-task but parent issue key or id not specified."}),
        ({**sub, "issuetype": {"name": "Task"}, "parent": {"key": "ITSD-6"}},
         {"parent": "Given parent work item does not belong to appropriate hierarchy."}),
        ({**sub, "parent": {"key": nested["key"]}},
         {"parent": "Given parent work item does not belong to appropriate hierarchy."}),
        ({**sub, "project": {"key": "OPS"}, "parent": {"key": "ITSD-6"}},
         {"project": "Sub-tasks must be created in the same project as the parent."}),
    ]
    for fields, errors in refusals:
        refused = api.call("POST", "/rest/api/3/issue", json={"fields": fields})
        assert refused.status_code == 400 and refused.json() == {"errorMessages": [], "errors": errors}
    sim.set_issue_types("ITSD", ["Service Request", "Incident", "Task"])  # a scheme without a sub-task type
    refused = api.call("POST", "/rest/api/3/issue", json={"fields": {**sub, "parent": {"key": "ITSD-6"}}})
    assert refused.json()["errors"] == {"issuetype": "The issue type selected is invalid."}
    assert [s["key"] for s in sim.issue("ITSD-6")["fields"]["subtasks"]] == [nested["key"]]  # nothing else made


def test_issue_types_of_the_site_and_of_a_project_for_create(api: Api, sim: JiraSimulator) -> None:
    types = {t["name"]: t for t in api.call("GET", "/rest/api/3/issuetype").json()}
    assert types["Sub-task"]["subtask"] is True and types["Task"]["subtask"] is False
    sim.set_issue_types("ITSD", ["Service Request", "Incident"])
    page = api.call("GET", "/rest/api/3/issue/createmeta/ITSD/issuetypes", params={"maxResults": 1}).json()
    assert [t["name"] for t in page["issueTypes"]] == ["Service Request"] and page["total"] == 2
    sim.set_issue_types("ITSD", ["Service Request", "Sub-task"])
    page = api.call("GET", "/rest/api/3/issue/createmeta/ITSD/issuetypes").json()
    assert [(t["name"], t["subtask"]) for t in page["issueTypes"]] == [("Service Request", False), ("Sub-task", True)]
