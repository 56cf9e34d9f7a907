"""Jira Cloud and Data Center through the `jira` package, with its own retries switched off.

The package authenticates, reads server info (Cloud or Data Center) and the field list. Search pages
go through the package's own session but are decoded here: the package's helper re-parses every
page with the standard json module, which costs more than the rest of a page's client work.
Cloud searches `/rest/api/3/search/jql` with `nextPageToken` (the old `/search` answers 410); Data
Center searches `/rest/api/2/search` with `startAt`, trusting the `maxResults` the server returns.
The cursor clause uses epoch milliseconds: JQL date strings are read in the API user's profile time
zone at minute precision, which leaves silent gaps (shared reference jira-api.md §2.4).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import requests
from jira import JIRA, JIRAError

from connector.config import BasicAuth, BearerAuth, JiraSystem, JiraTokenAuth, NativeSurvey
from connector.errors import AuthError, RequestError, ResponseError, SystemError_, TransientError
from connector.http import Caller, RetryableStatus, classify, is_retryable
from connector.mapping import Mapping, jira_field_ref, parse_datetime, read_path
from connector.model import (
    Cursor,
    FollowUpRef,
    FollowUpRequest,
    FollowUpState,
    NativeAnswer,
    NativePage,
    OpenTicket,
    WriteBackItem,
    WriteBackOutcome,
)
from connector.systems import RawPage
from connector.systems.pipeline import pipelined

log = logging.getLogger("vloop.jira")
# The package logs whole response bodies (ticket text, personal data) at ERROR before raising; our own
# errors carry a redacted, truncated excerpt instead.
logging.getLogger("jira").setLevel(logging.CRITICAL)
T = TypeVar("T")
HINTS = {
    400: "check the system's `jql` and the mapping's resolved.jql; Jira names the problem above",
    401: "check the Jira email and API token (tokens expire within a year)",
    403: "the integration user lacks Browse projects permission on the project",
    404: "check the Jira URL (Data Center installs may have a context path)",
    410: "this Jira Cloud site removed the legacy search API; set deployment: cloud or auto",
}
WRITE_HINTS = HINTS | {  # edits, comments, follow-ups and links: what the search hints say does not apply
    400: "Jira names the field it refused above; check the mapping's write_back fields and the system's "
         "follow_up settings (docs/jira.md)",
    403: "the integration user lacks the permission for this write (Edit issues, Add comments, Create issues "
         "or Link issues in the project; docs/jira.md section 1)",
}
FEEDBACK_TYPES = {"com.atlassian.servicedesk:sd-request-feedback": "rating",
                  "com.atlassian.servicedesk:sd-request-feedback-date": "date"}
FOLLOW_UP_LABEL = "vloop-follow-up"  # on every follow-up issue: kept out of the pull, never surveyed
DC_WINDOW = 5000  # re-anchor a Data Center search before its result window (10,000 by default) ends


def _issue_id(ticket_id: str) -> str:
    """Ticket ids come from our store but go into URL paths: numeric issue ids only."""
    if not ticket_id.isdigit():
        raise ValueError(f"not a Jira issue id: {ticket_id!r}")
    return ticket_id


def _jira_value(value: Any, kind: str) -> Any:
    """A canonical value in the shape the field's schema type takes in an edit."""
    if isinstance(value, datetime):
        if kind == "date":  # a date picker takes the day only
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000") if kind == "datetime" else value.isoformat()
    if kind == "number":
        return value if isinstance(value, int | float) else float(value)
    if kind == "option":
        return {"value": str(value)}
    return value if kind == "any" else str(value)


def _clause(field_id: str) -> str:
    """`customfield_10033` → `cf[10033]`: JQL names custom fields by id, whatever their localised name."""
    return f"cf[{field_id.removeprefix('customfield_')}]" if field_id.startswith("customfield_") else field_id


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class JiraSource:
    """Reads resolved issues of one Jira site."""

    def __init__(self, name: str, config: JiraSystem, mapping: Mapping, *, caller: Caller | None = None):
        self.name = name
        self.config = config
        self.mapping = mapping
        self.url = str(config.url).rstrip("/")
        self.caller = caller or Caller(name, config.http, hints=HINTS)
        self.client: JIRA | None = None
        self.cloud = config.deployment == "cloud"
        self.field_ids: dict[str, str] = {}
        self.unknown_fields: list[str] = []
        self.feedback_fields: dict[str, str] = {}  # "rating" / "date" -> JSM Satisfaction field ids
        self.field_types: dict[str, tuple[str, str]] = {}  # display name -> (id, schema type), for writes
        self.field_kinds: dict[str, str] = {}  # field id -> schema type, for writes to a field named by id
        self.notify_off = True  # ask for notifyUsers=false until the site says the user may not
        self.subtask_types: dict[str, str] = {}  # project key -> the name of its sub-task issue type
        self.resolved_mapping = mapping
        self.page_size = config.pull.page_size or mapping.page_size

    @property
    def requests_sent(self) -> int:
        return self.caller.requests_sent

    def _auth_kwargs(self) -> dict[str, Any]:
        auth = self.config.auth
        if isinstance(auth, JiraTokenAuth):
            return {"basic_auth": (auth.email, auth.token.get_secret_value())}
        if isinstance(auth, BearerAuth):
            return {"token_auth": auth.token.get_secret_value()}
        assert isinstance(auth, BasicAuth)
        return {"basic_auth": (auth.user, auth.password.get_secret_value())}

    def _call(self, what: str, method: str, fn: Callable[[], T], *, replay: bool = True) -> T:
        """Run one `jira` package call under our retry policy, translating JIRAError at this boundary."""

        def attempt() -> T:
            with self.caller.pacer:
                self.caller.count_request()
                try:
                    return fn()
                except ValueError as exc:  # the package's json() on a body that is not JSON
                    raise ResponseError(self.name, what, f"malformed JSON in the answer ({exc})") from None
                except JIRAError as exc:
                    response = exc.response
                    if response is None:
                        raise requests.ConnectionError(str(exc.status_code)) from None
                    if is_retryable(RetryableStatus(response), method):
                        raise RetryableStatus(response) from None
                    url = response.url or what
                    writing = method in ("POST", "PUT", "DELETE") and "/search" not in url
                    raise classify(self.name, method, url, response, WRITE_HINTS if writing else HINTS) from None

        return self.caller.call(attempt, method=method, what=what, replay=replay)

    def connect(self) -> None:
        """Create the client (server info tells Cloud from Data Center) and resolve custom field ids."""
        options = {"server": self.url, "verify": self.caller.session.verify, "rest_api_version": "2",
                   "headers": {"User-Agent": self.caller.session.headers["User-Agent"]}}
        proxies = self.caller.session.proxies or None

        def build() -> JIRA:
            return JIRA(options=options, max_retries=0, timeout=self.caller.timeout,
                        get_server_info=True, proxies=proxies, **self._auth_kwargs())

        self.client = self._call(f"GET {self.url}/rest/api/2/serverInfo", "GET", build)
        if self.config.http.proxy:
            # The environment's proxy variables would otherwise win over the configured proxy.
            self.client._session.trust_env = False
        if self.config.deployment == "auto":
            self.cloud = bool(self.client._is_cloud)
        if self.cloud:
            self.client._options["rest_api_version"] = "3"
        fields: list[dict[str, Any]] = self._call(f"GET {self.url}/rest/api/{self._version}/field", "GET",
                                                  self.client.fields)
        by_name: dict[str, str] = {}
        for f in fields:
            by_name.setdefault(str(f.get("name")), str(f["id"]))
            kind = str((f.get("schema") or {}).get("type"))
            self.field_types.setdefault(str(f.get("name")), (str(f["id"]), kind))
            self.field_kinds[str(f["id"])] = kind
            custom = (f.get("schema") or {}).get("custom")
            if custom in FEEDBACK_TYPES:  # found by type: the name is localised and the id differs per site
                self.feedback_fields.setdefault(FEEDBACK_TYPES[custom], str(f["id"]))
        wanted = self.mapping.display_names()
        self.unknown_fields = sorted(n for n in wanted if n not in by_name)
        if self.unknown_fields:
            raise RequestError(self.name, f"GET {self.url}/rest/api/{self._version}/field",
                               f"the site has no field named {', '.join(repr(n) for n in self.unknown_fields)}",
                               hint="fix the {Display name} in the mapping, or give the integration user "
                                    "permission to see the field")
        self.field_ids = {n: by_name[n] for n in wanted}
        self.resolved_mapping = self.mapping.with_field_ids(self.field_ids)

    @property
    def _version(self) -> str:
        return "3" if self.cloud else "2"

    def _jql(self, since: datetime, until: datetime | None) -> str:
        clause = self.mapping.resolved.field
        parts = [f"({p})" for p in (self.config.jql, self.mapping.resolved.jql) if p]
        parts.append(f'(labels IS EMPTY OR labels NOT IN ("{FOLLOW_UP_LABEL}"))')  # our own follow-ups
        parts.append(f"{clause} >= {epoch_ms(since)}")
        if until is not None:
            parts.append(f"{clause} <= {epoch_ms(until)}")
        return " AND ".join(parts) + f" ORDER BY {clause} ASC, key ASC"

    def _request_fields(self) -> list[str]:
        names = {"resolutiondate"}
        for source in self.resolved_mapping.source_paths():
            head, _, rest = source.partition(".")
            if head == "fields" and rest:
                names.add(rest.split(".")[0])
        return sorted(names)

    def _page(self, records: list[dict[str, Any]]) -> RawPage:
        last = records[-1]
        at = parse_datetime(read_path(last, "fields.resolutiondate"))
        if at is None:
            raise ResponseError(self.name, "search", f"issue {last.get('key')} has no resolutiondate; does the "
                                "mapping's resolved.jql select unresolved issues?")
        return RawPage(records, Cursor(at, str(last.get("id"))))

    def pull_resolved(self, since: datetime, until: datetime | None = None) -> Iterator[RawPage]:
        if self.client is None:
            self.connect()
        assert self.client is not None
        if self.cloud:
            yield from self._pull_cloud(self._jql(since, until))
        else:
            yield from self._pull_datacenter(since, until)

    def _search(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        session, url = self.client._session, f"{self.url}/rest/api/{self._version}/{path}"

        def get() -> dict[str, Any]:
            body = orjson.loads(session.get(url, params=params, **self.caller.transport).content)
            if not isinstance(body, dict) or not isinstance(body.get("issues"), list):
                raise ResponseError(self.name, f"GET {url}", "answer has no `issues` list")
            return body

        return self._call(f"GET {url}", "GET", get)

    def _pull_cloud(self, jql: str) -> Iterator[RawPage]:
        params: dict[str, Any] = {"jql": jql, "maxResults": self.page_size, "fields": ",".join(self._request_fields())}
        seen_tokens: set[str] = set()
        while True:
            body = self._search("search/jql", params)
            issues = body["issues"]
            if issues:
                yield self._page(issues)
            token = body.get("nextPageToken")
            if body.get("isLast", not token) or not token or not issues:
                return
            if token in seen_tokens:  # a repeating token would page forever
                raise ResponseError(self.name, f"GET {self.url}/rest/api/3/search/jql",
                                    "the same nextPageToken came back twice")
            seen_tokens.add(token)
            params["nextPageToken"] = token

    def _pull_datacenter(self, since: datetime, until: datetime | None) -> Iterator[RawPage]:
        fields = ",".join(self._request_fields())
        anchor, start = since, 0
        while True:
            body = self._search("search", {"jql": self._jql(anchor, until), "startAt": start,
                                           "maxResults": self.page_size, "fields": fields,
                                           "validateQuery": "strict"})
            issues = body["issues"]
            if not issues:
                return
            page = self._page(issues)
            yield page
            served = int(body.get("maxResults") or len(issues))
            if 0 < served < self.page_size:
                log.info("%s: the server caps pages at %d issues", self.name, served)
                self.page_size = served
            start += len(issues)
            total = body.get("total")
            if isinstance(total, int) and start >= total:
                return
            if start >= DC_WINDOW and page.last is not None and page.last.at > anchor:
                # Start a fresh search at the last resolution time: offsets deep in a result set hit the
                # DC result window and drift when issues reopen. Overlapping rows dedupe downstream.
                anchor, start = page.last.at, 0

    def current_resolutions(self, ticket_ids: list[str]) -> dict[str, datetime]:
        """Still-resolved issues among `ticket_ids` (numeric ids), one search per 100."""
        if self.client is None:
            self.connect()
        restriction = [f"({p})" for p in (self.config.jql, self.mapping.resolved.jql) if p]
        out: dict[str, datetime] = {}
        for start in range(0, len(ticket_ids), 100):
            chunk = [i for i in ticket_ids[start:start + 100] if i.isdigit()]
            if not chunk:
                continue
            jql = " AND ".join([*restriction, f"id in ({', '.join(chunk)})"]) + " ORDER BY key ASC"
            params: dict[str, Any] = {"jql": jql, "maxResults": len(chunk), "fields": "resolutiondate"}
            body = self._search("search/jql" if self.cloud else "search", params)
            for issue in body["issues"]:
                at = parse_datetime(read_path(issue, "fields.resolutiondate"))
                if at is not None:
                    out[str(issue["id"])] = at
        return out

    def pull_native(self, since: datetime, native: NativeSurvey) -> Iterator[NativePage]:
        """JSM Satisfaction answers (1-5) given at or after `since`, by Satisfaction date; the customer's
        comment comes from the request's feedback resource, one call per answer that has one."""
        if self.client is None:
            self.connect()
        rating, date = self.feedback_fields.get("rating"), self.feedback_fields.get("date")
        if rating is None or date is None:
            raise RequestError(self.name, f"GET {self.url}/rest/api/{self._version}/field",
                               "the site has no Jira Service Management Satisfaction fields",
                               hint="native surveys need JSM with customer satisfaction enabled; or remove "
                                    "this system from the native survey's systems")
        rating_clause, date_clause = _clause(rating), _clause(date)
        restriction = [f"({self.config.jql})"] if self.config.jql else []
        jql = " AND ".join([*restriction, f"{rating_clause} is not EMPTY", f"{date_clause} >= {epoch_ms(since)}"])
        jql += f" ORDER BY {date_clause} ASC, key ASC"
        for issues in self._search_all(jql, f"{rating},{date}"):
            answers = [a for a in (self._native_answer(i, rating, date) for i in issues) if a is not None]
            if answers:
                last = answers[-1]
                yield NativePage(answers, Cursor(last.answered_at, last.ticket_id))

    def _native_answer(self, issue: dict[str, Any], rating_field: str, date_field: str) -> NativeAnswer | None:
        fields = issue.get("fields") or {}
        value, at = fields.get(rating_field), parse_datetime(fields.get(date_field))
        score = value.get("rating") if isinstance(value, dict) else None
        if not isinstance(score, int) or at is None:
            log.warning("%s: satisfaction of %s skipped: unreadable value", self.name, issue.get("key"))
            return None
        try:
            feedback = self._rest("GET", f"{self.url}/rest/servicedeskapi/request/{issue['id']}/feedback",
                                  headers={"X-ExperimentalApi": "opt-in"})  # the resource is experimental
        except (RequestError, AuthError) as exc:
            if exc.status not in (403, 404):  # answer withdrawn meanwhile, or the resource is unavailable
                raise
            feedback = None
        comment = (feedback or {}).get("comment") or {}
        text = comment.get("body") if isinstance(comment, dict) else None
        return NativeAnswer(ticket_id=str(issue["id"]), answered_at=at, score=score,
                            comment=text.strip() or None if isinstance(text, str) else None,
                            external_id=str(issue["id"]))

    def _search_all(self, jql: str, fields: str) -> Iterator[list[dict[str, Any]]]:
        """Every page of a search: Cloud by nextPageToken, Data Center by startAt."""
        params: dict[str, Any] = {"jql": jql, "maxResults": self.page_size, "fields": fields}
        while True:
            body = self._search("search/jql" if self.cloud else "search", params)
            issues = body["issues"]
            if issues:
                yield issues
            if self.cloud:
                token = body.get("nextPageToken")
                if body.get("isLast", not token) or not token or token == params.get("nextPageToken"):
                    return
                params["nextPageToken"] = token
            else:
                params["startAt"] = int(params.get("startAt", 0)) + len(issues)
                if not issues or params["startAt"] >= int(body.get("total") or 0):
                    return

    def _rest(self, method: str, url: str, payload: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        """One call through the package's authenticated session; writes are never replayed blindly."""
        if self.client is None:
            self.connect()
        assert self.client is not None
        session = self.client._session
        body = orjson.dumps(payload) if payload is not None else None

        def send() -> Any:
            response = session.request(method, url, data=body, params=params,  # the session sets timeouts
                                       headers={"Content-Type": "application/json", **(headers or {})},
                                       **self.caller.transport)
            return orjson.loads(response.content) if response.content else None

        return self._call(f"{method} {url}", method, send, replay=method in ("GET", "HEAD", "PUT"))

    def write_back(self, items: Iterable[WriteBackItem]) -> Iterator[tuple[int, WriteBackOutcome]]:
        """Per ticket one edit of the mapped fields (no re-read) and, once, an internal comment; tickets
        in parallel up to the system's max_concurrency, outcomes as each ticket is done."""
        spec = self.mapping.write_back
        stream = iter(items)
        first = next(stream, None)
        if spec is None or first is None:
            return
        if self.client is None:
            self.connect()
        missing = sorted(n for n in spec.fields if self.write_target(n) is None)
        if missing:
            error = (f"{self.name}: the site has no field {', '.join(missing)}; create it or fix the mapping "
                     "(vloop setup jira --check)")
            yield from ((i.key, WriteBackOutcome(False, error=error)) for i in (first, *stream))
            return
        # The first alone: it finds out whether notifications may be turned off, once, for the others.
        yield self._write_one(first)
        yield from pipelined(stream, lambda item: [self._write_one(item)], self.config.http.max_concurrency)

    def write_target(self, key: str) -> tuple[str, str] | None:
        """The (field id, schema type) a write_back key names, by `{Display name}` or by id; None when the
        site's field list (as the integration user sees it) has no such field."""
        name, field_id = jira_field_ref(key)
        if name is not None:
            return self.field_types.get(name)
        kind = self.field_kinds.get(str(field_id))
        return None if kind is None else (str(field_id), kind)

    def _write_one(self, item: WriteBackItem) -> tuple[int, WriteBackOutcome]:
        assert self.mapping.write_back is not None
        fields = {}
        for name, value in self.mapping.write_back.fields.items():
            target = self.write_target(name)
            if item.values.get(value) is not None and target is not None:
                fields[target[0]] = _jira_value(item.values[value], target[1])
        noted = False
        try:
            if fields:
                self._edit(item.ticket_id, fields)
            if item.note and not (item.unclear and self._internal_note_present(item)):
                self._internal_comment(item.ticket_id, item.note)
                noted = True
        except (SystemError_, ValueError) as exc:
            return item.key, WriteBackOutcome(False, note_written=noted, error=str(exc))
        return item.key, WriteBackOutcome(True, note_written=bool(item.note))

    def _edit(self, ticket_id: str, fields: dict[str, Any]) -> None:
        """One PUT, no re-read; without Jira's notification to watchers when the user may ask for that."""
        url = f"{self.url}/rest/api/2/issue/{_issue_id(ticket_id)}"
        if self.notify_off:
            try:
                self._rest("PUT", url, {"fields": fields}, params={"notifyUsers": "false"})
                return
            except AuthError as exc:
                if "notification" not in str(exc):
                    raise
                log.warning("%s: the integration user may not turn off notifications (needs project admin); "
                            "write-backs will notify watchers", self.name)
                self.notify_off = False
        self._rest("PUT", url, {"fields": fields})

    def _internal_comment(self, ticket_id: str, body: str) -> None:
        jsm, platform = self._comment_urls(ticket_id)
        try:
            self._rest("POST", jsm, {"body": body, "public": False})
        except RequestError as exc:
            if exc.status != 404:
                raise
            # Not a service project: no customers see it; the property keeps JSM from sharing it if the
            # project becomes one.
            self._rest("POST", platform, {"body": body, "properties": [
                {"key": "sd.public.comment", "value": {"internal": True}}]})

    def _internal_note_present(self, item: WriteBackItem) -> bool:
        jsm, platform = self._comment_urls(item.ticket_id)
        try:
            return any(item.reference in b for b in self._jsm_comment_bodies(jsm, public=False))
        except RequestError as exc:
            if exc.status != 404:
                raise
        return self._platform_comment_has(platform, item.reference)

    def create_follow_up(self, request: FollowUpRequest) -> FollowUpRef:
        """An issue labelled with the correlation key, linked to the ticket or a sub-task of it (`follow_up.as`);
        found by label if it exists."""
        if self.client is None:
            self.connect()
        found = self._search("search/jql" if self.cloud else "search", {
            "jql": f'labels = "{request.correlation}"', "maxResults": 1,
            "fields": "created,issuelinks,parent"})["issues"]
        if found:
            return self._adopt_follow_up(found[0], request)
        target = self.config.follow_up
        project = request.ticket_number.rsplit("-", 1)[0]  # a sub-task's is always its parent's
        description = f"{request.description}\nDue: {request.due_at:%Y-%m-%d %H:%M} UTC"
        type_name = self._subtask_type(project) if target.subtask and not target.issue_type else target.type_name
        fields: dict[str, Any] = {"project": {"key": project if target.subtask else target.project or project},
                                  "issuetype": {"name": type_name}, "summary": request.summary,
                                  "description": description, "labels": [FOLLOW_UP_LABEL, request.correlation],
                                  "duedate": request.due_at.strftime("%Y-%m-%d")}
        if target.subtask:
            fields["parent"] = {"key": request.ticket_number}
        try:
            created_issue = self._create_issue(fields)
        except RequestError as exc:
            if target.subtask and exc.status == 400:
                raise self._subtask_refused(exc, project, type_name) from None
            raise
        key = str(created_issue.get("key"))
        if not target.subtask:
            self._link(key, request.ticket_number)
        return FollowUpRef(str(created_issue.get("id")), key, datetime.now(UTC))

    def _adopt_follow_up(self, issue: dict[str, Any], request: FollowUpRequest) -> FollowUpRef:
        """A follow-up an earlier run created; linked now if that run stopped before the link. A sub-task of
        the ticket needs none (Jira set its parent in the create itself); any other unlinked one was created
        as a linked issue, whatever `follow_up.as` says today."""
        fields = issue.get("fields") or {}
        parent = str((fields.get("parent") or {}).get("key"))
        links = fields.get("issuelinks") or []
        linked = any(request.ticket_number in (str((link.get(side) or {}).get("key")) for side in
                                               ("inwardIssue", "outwardIssue")) for link in links)
        if parent != request.ticket_number and not linked:
            self._link(str(issue["key"]), request.ticket_number)
        created = parse_datetime(fields.get("created")) or datetime.now(UTC)
        return FollowUpRef(str(issue["id"]), str(issue["key"]), created)

    def _create_issue(self, fields: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/rest/api/2/issue"
        try:
            return self._rest("POST", url, {"fields": fields}) or {}
        except RequestError as exc:
            if exc.status != 400 or "duedate" not in str(exc):
                raise
        # The due date is not on the project's create screen: it stays in the description.
        return self._rest("POST", url, {"fields": {k: v for k, v in fields.items() if k != "duedate"}}) or {}

    def _subtask_type(self, project: str) -> str:
        """The project's own sub-task type: "Sub-task" in classic schemes, "Subtask" in newer Cloud projects,
        or whatever the admin named it. Read once per project and run from the create metadata; where that
        cannot be read (Data Center before 8.4, no permission), the classic name, and a refusal says what
        to set."""
        if project not in self.subtask_types:
            name = self.config.follow_up.type_name
            try:
                page = self._rest("GET", f"{self.url}/rest/api/2/issue/createmeta/{project}/issuetypes",
                                  params={"maxResults": 200}) or {}
            except TransientError:
                raise  # the create waits for the next run, which may read them
            except SystemError_ as exc:
                log.info("%s: cannot read %s's issue types (%s); sub-task follow-ups use type %r", self.name,
                         project, exc, name)
            else:
                types = page.get("issueTypes", page.get("values")) or []  # Cloud / Data Center page shapes
                name = next((str(t["name"]) for t in types if t.get("subtask") and t.get("name")), name)
            self.subtask_types[project] = name
        return self.subtask_types[project]

    def _subtask_refused(self, exc: RequestError, project: str, type_name: str) -> RequestError:
        """Jira's 400 for a sub-task, with the fix for what it names (its `errors` are keyed by field). The
        hint leaves the ticket out, so that one cause shared by many answers is reported once."""
        detail = exc.detail
        if '"issuetype"' in detail:
            hint = (f"the follow-up is a sub-task of type {type_name!r} in project {project}: add a sub-task issue "
                    f"type to {project}'s issue type scheme (or name its sub-task type in follow_up.issue_type), "
                    "or use follow_up.as: linked")
        elif '"parent"' in detail:
            hint = (f"Jira refused the ticket as the parent of a {type_name!r}: follow_up.issue_type must name a "
                    "sub-task type, and the ticket must not be a sub-task itself; or use follow_up.as: linked")
        elif '"project"' in detail or '"pid"' in detail:
            hint = (f"the ticket is no longer in project {project} (moved?), and a sub-task must be in its "
                    "parent's project: use follow_up.as: linked")
        else:
            hint = ("Jira names the field it refused (the sub-task's create screen may require it); or use "
                    "follow_up.as: linked")
        return RequestError(exc.system, exc.request, detail, status=exc.status, hint=hint)

    def _link(self, follow_up: str, ticket: str) -> None:
        self._rest("POST", f"{self.url}/rest/api/2/issueLink", {
            "type": {"name": self.config.follow_up.link_type}, "inwardIssue": {"key": follow_up},
            "outwardIssue": {"key": ticket}})

    def follow_up_states(self, remote_ids: list[str]) -> dict[str, FollowUpState]:
        """Closed once the issue's status is in the done category; the outcome is its resolution."""
        out: dict[str, FollowUpState] = {}
        ids = [i for i in remote_ids if i.isdigit()]
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            body = self._search("search/jql" if self.cloud else "search", {
                "jql": f"id in ({', '.join(chunk)})", "maxResults": len(chunk),
                "fields": "status,resolution,resolutiondate"})
            for issue in body["issues"]:
                f = issue.get("fields") or {}
                done = ((f.get("status") or {}).get("statusCategory") or {}).get("key") == "done"
                resolution = (f.get("resolution") or {}).get("name")
                out[str(issue["id"])] = FollowUpState(
                    str(issue["id"]), (parse_datetime(f.get("resolutiondate")) or datetime.now(UTC)) if done else None,
                    str(resolution or (f.get("status") or {}).get("name") or "") if done else None)
        return out

    def open_tickets_of(self, requester_ids: list[str], since: datetime) -> list[OpenTicket]:
        """Issues not done, created since `since`, reported by these people (accountId / DC user key)."""
        if self.client is None:
            self.connect()
        restriction = [f"({self.config.jql})"] if self.config.jql else []
        out = []
        for start in range(0, len(requester_ids), 100):
            people = ", ".join(f'"{i}"' for i in requester_ids[start:start + 100] if '"' not in i)
            jql = " AND ".join([*restriction, f"reporter in ({people})", "statusCategory != Done",
                                f"created >= {epoch_ms(since)}"]) + " ORDER BY created ASC"
            for issues in self._search_all(jql, "created,reporter"):
                for issue in issues:
                    f = issue.get("fields") or {}
                    who = f.get("reporter") or {}
                    out.append(OpenTicket(str(issue["id"]), str(issue["key"]),
                                          str(who.get("accountId") or who.get("key") or who.get("name") or ""),
                                          parse_datetime(f.get("created")) or since))
        return out

    def _comment_urls(self, ticket_id: str) -> tuple[str, str]:
        _issue_id(ticket_id)
        # JSM's request resource makes the comment public (shared with the customer) explicitly; plain
        # Jira projects have no customers, so the platform comment is what their reporters see.
        return (f"{self.url}/rest/servicedeskapi/request/{ticket_id}/comment",
                f"{self.url}/rest/api/2/issue/{ticket_id}/comment")

    def post_comment(self, ticket_id: str, body: str) -> None:
        jsm, platform = self._comment_urls(ticket_id)
        try:
            self._rest("POST", jsm, {"body": body, "public": True})
        except RequestError as exc:
            if exc.status != 404:  # 404: not a service project request (or not visible as one)
                raise
            self._rest("POST", platform, {"body": body})

    def find_comment(self, ticket_id: str, marker: str) -> bool:
        jsm, platform = self._comment_urls(ticket_id)
        try:
            return any(marker in body for body in self._jsm_comment_bodies(jsm))
        except RequestError as exc:
            if exc.status != 404:
                raise
        return self._platform_comment_has(platform, marker)

    def _platform_comment_has(self, url: str, marker: str) -> bool:
        start = 0
        while True:
            page = self._rest("GET", url, params={"startAt": start, "maxResults": 100}) or {}
            comments = page.get("comments") or []
            if any(marker in str(c.get("body", "")) for c in comments):
                return True
            start += len(comments)
            if not comments or start >= int(page.get("total") or 0):
                return False

    def _jsm_comment_bodies(self, url: str, *, public: bool = True) -> Iterator[str]:
        start = 0
        while True:
            page = self._rest("GET", url, params={"public": str(public).lower(), "internal": str(not public).lower(),
                                                  "start": start, "limit": 100}) or {}
            values = page.get("values") or []
            yield from (str(c.get("body", "")) for c in values)
            start += len(values)
            if page.get("isLastPage", True) or not values:
                return

    def missing_fields(self) -> list[str]:
        return [f"{{{n}}}" for n in self.unknown_fields]
