"""The HTTP face of the simulator: the WSGI entry that `JiraSimulator.__call__` hands each request to,
authentication (basic auth with email or Data Center username, and Data Center personal access
tokens), the URL map of the platform (`/rest/api/{2,3,latest}`, v3 on Cloud only) and JSM
(`/rest/servicedeskapi`) APIs, server info and `myself`, the Jira-shaped error body for faults the
`SandboxServer` injects, and `make_jira_server` to serve a simulator over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from connector.sandbox.jira.fields import _create_custom_field, _editmeta, _field_list
from connector.sandbox.jira.issues import (
    _add_platform_comment,
    _create_bulk,
    _create_issue,
    _create_link,
    _createmeta_types,
    _edit_issue,
    _get_issue_json,
    _issue_types,
    _list_comments,
    _property_routes,
)
from connector.sandbox.jira.jsm import _servicedesk
from connector.sandbox.jira.model import LINK_TYPES, _User
from connector.sandbox.jira.render import _dumps, _format_ts, _link_type_json, _user_json, _View, _view
from connector.sandbox.jira.search import _approximate_count, _search_dc, _search_jql
from connector.sandbox.jira.web import LEGACY_SEARCH_GONE, NOT_AUTHENTICATED, _errors, _HTTPError, _no_route
from connector.sandbox.server import SandboxServer, Steady, sandbox_tls

if TYPE_CHECKING:
    from connector.sandbox.jira.simulator import JiraSimulator


def _handle(sim: JiraSimulator, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    request = Request(environ)
    request.get_data(cache=True)  # read the body before taking the lock: a slow client must not stall others
    headers = [("Content-Type", "application/json;charset=UTF-8")]
    try:
        with sim._lock:
            status, body = _dispatch(sim, request)
    except _HTTPError as exc:
        status, body = exc.status, exc.body
        headers += exc.headers
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = _dumps(body).encode()
    headers.append(("Content-Length", str(len(data))))
    start_response(f"{status} {HTTP_STATUS_CODES.get(status, '')}", headers)
    return [data]


def _dispatch(sim: JiraSimulator, request: Request) -> tuple[int, Any]:
    path = request.path.rstrip("/")
    parts = path.split("/")
    user, admin = _authenticate(sim, request)
    base = request.host_url.rstrip("/")
    if parts[1:3] == ["rest", "api"] and len(parts) >= 5:
        version = parts[3]
        if version not in ("2", "3", "latest") or (version == "3" and not sim.cloud):
            raise _no_route(request)
        rest = parts[4:]
        if rest == ["serverInfo"] and request.method == "GET":
            return 200, _server_info(sim, base)
        if user is None:
            raise _errors(401, NOT_AUTHENTICATED)
        view = _view(sim, base, "3" if version == "3" else "2", user)
        return _platform(sim, request, rest, view, admin)
    if parts[1:3] == ["rest", "servicedeskapi"]:
        if user is None:
            raise _errors(401, NOT_AUTHENTICATED)
        view = _view(sim, base, "2", user)
        return _servicedesk(sim, request, parts[3:], view)
    raise _no_route(request)


def _authenticate(sim: JiraSimulator, request: Request) -> tuple[_User | None, bool]:
    header = request.headers.get("Authorization", "")
    if not header:
        return None, False
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            login, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            raise _errors(401, NOT_AUTHENTICATED) from None
        found = sim._credentials.get(login.lower())
        if found is not None and found[0] == secret:
            return found[1], found[2]
    elif scheme.lower() == "bearer" and not sim.cloud:
        # Data Center personal access tokens.
        for secret, user, admin in sim._credentials.values():
            if secret == value:
                return user, admin
    raise _errors(401, NOT_AUTHENTICATED)


def _platform(sim: JiraSimulator, request: Request, rest: list[str], view: _View, admin: bool) -> tuple[int, Any]:
    method, head = request.method, rest[0]
    n = len(rest)
    if head == "myself" and n == 1 and method == "GET":
        return 200, _myself(sim, view)
    if head == "field" and n == 1 and method == "GET":
        return 200, _field_list(sim)
    if head == "field" and n == 1 and method == "POST":
        return _create_custom_field(sim, request, view, admin)
    if head == "search":
        if n == 1 and method in ("GET", "POST"):
            if sim.cloud:
                raise _errors(410, LEGACY_SEARCH_GONE)
            return 200, _search_dc(sim, request, view)
        if rest[1:] == ["jql"] and method in ("GET", "POST") and sim.cloud:
            return 200, _search_jql(sim, request, view)
        if rest[1:] == ["approximate-count"] and method == "POST" and sim.cloud:
            return 200, _approximate_count(sim, request, view)
    if head == "issue":
        return _issue_routes(sim, request, rest[1:], view, admin)
    if head == "issueLink" and n == 1 and method == "POST":
        return _create_link(sim, request, view)
    if head == "issuetype" and n == 1 and method == "GET":
        return 200, _issue_types(sim, view)
    if head == "issueLinkType" and n == 1 and method == "GET":
        return 200, {"issueLinkTypes": [_link_type_json(t, view) for t in LINK_TYPES]}
    raise _no_route(request)


def _issue_routes(sim: JiraSimulator, request: Request, rest: list[str], view: _View,
                  admin: bool) -> tuple[int, Any]:
    method = request.method
    if not rest and method == "POST":
        return _create_issue(sim, request, view)
    if rest == ["bulk"] and method == "POST":
        return _create_bulk(sim, request, view)
    if len(rest) == 3 and rest[0] == "createmeta" and rest[2] == "issuetypes" and method == "GET":
        return 200, _createmeta_types(sim, request, rest[1], view)
    if not rest:
        raise _HTTPError(405, None)
    issue = sim._get_issue(rest[0])
    sub = rest[1:]
    if not sub and method == "GET":
        return 200, _get_issue_json(sim, request, issue, view)
    if not sub and method == "PUT":
        return _edit_issue(sim, request, issue, view, admin)
    if sub == ["editmeta"] and method == "GET":
        return 200, _editmeta(sim, issue, view)
    if sub == ["comment"] and method == "GET":
        return 200, _list_comments(sim, request, issue, view)
    if sub == ["comment"] and method == "POST":
        return 201, _add_platform_comment(sim, request, issue, view)
    if sub[:1] == ["properties"]:
        return _property_routes(request, issue, sub[1:])
    raise _no_route(request)


# --------------------------------------------------------------------------------------------- server info, myself


def _server_info(sim: JiraSimulator, base: str) -> dict[str, Any]:
    now = _format_ts(sim.now_ms(), ZoneInfo("UTC"))
    if sim.cloud:
        return {"baseUrl": base, "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud", "buildNumber": 100289, "buildDate": "2025-12-18T10:12:33.000+0000",
                "serverTime": now, "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
                "serverTitle": "Jira", "serverTimeZone": "Etc/UTC"}
    # Data Center reports deploymentType "Server" (observed on 10.3.x), not "DataCenter".
    return {"baseUrl": base, "version": "9.12.15", "versionNumbers": [9, 12, 15], "deploymentType": "Server",
            "buildNumber": 9120015, "buildDate": "2024-10-15T00:00:00.000+0000", "databaseBuildNumber": 9120015,
            "serverTime": now, "scmInfo": "6bb8a8a4b2d5c5c9f3e0a7b1c2d3e4f5a6b7c8d9", "serverTitle": "Jira",
            "serverTimeZone": "UTC"}


def _myself(sim: JiraSimulator, view: _View) -> dict[str, Any]:
    body = _user_json(sim, view.user, view)
    body["locale"] = "en_US"
    body["groups"] = {"size": 1, "items": []}
    body["applicationRoles"] = {"size": 1, "items": []}
    body["expand"] = "groups,applicationRoles"
    if body.get("emailAddress") is None:
        body.pop("emailAddress", None)
    return body


# --------------------------------------------------------------------------------------------- serving


def jira_error_body(status: int) -> dict[str, Any]:
    """Jira's error shape for the faults `SandboxServer` injects."""
    text = {429: "Rate limit exceeded.", 503: "Service Unavailable"}.get(status, HTTP_STATUS_CODES.get(status, ""))
    return {"errorMessages": [text], "errors": {}}


def make_jira_server(sim: JiraSimulator, *, host: str = "127.0.0.1", port: int = 0,
                     steady: Steady | None = None, tls: bool = False) -> SandboxServer:
    """Serve `sim` over real HTTP with Jira-shaped error bodies for injected faults (not started)."""
    return SandboxServer(sim, host=host, port=port, steady=steady, error_body=jira_error_body,
                         ssl_context=sandbox_tls() if tls else None)
