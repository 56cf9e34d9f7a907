"""Jira Cloud / Data Center simulator, with the JSM request APIs, served over real HTTP.

`JiraSimulator` turns a synthetic `World` into Jira issues and answers the REST calls the connector
and the `jira` package make, behaving like the documented product (see shared/reference/jira-api.md):

- Cloud: enhanced search `GET|POST /rest/api/{2,3}/search/jql` (opaque `nextPageToken`, no
  `total`, bounded JQL only); the legacy `/search` answers 410 Gone.
- Data Center: `GET|POST /rest/api/2/search` with `startAt`/`maxResults`/`total`; no v3, no
  `/search/jql`.
- Issues, edits (`notifyUsers=false` needs admin rights), create and bulk create, links, platform
  comments (public unless the `sd.public.comment` property says internal), issue properties, and the
  JSM request comment and (experimental) feedback resources.

Timestamps are rendered in the API user's profile time zone and JQL string dates are read in it,
the pitfall the connector must avoid by searching with epoch milliseconds. Custom field ids differ
between the two modes, so the connector has to discover them through `/field`.

Searches are cached per (JQL, user, versions of the fields the query reads): a page is a bisect
into the cached sorted list using the search-after key carried in the token, then serialising only
the requested fields from pre-encoded fragments.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from operator import attrgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from connector.sandbox import jql
from connector.sandbox.server import SandboxServer, Steady, sandbox_tls
from connector.sandbox.world import CATEGORIES, Person, Ticket, World, stable_hex

__all__ = [
    "CUSTOM_FIELD_IDS",
    "JiraSimulator",
    "Notification",
    "jira_error_body",
    "make_jira_server",
]

Mode = Literal["cloud", "datacenter"]

# Per-site ids: a real connector must look them up by schema.custom, never hard-code them.
CUSTOM_FIELD_IDS: dict[str, dict[str, int]] = {
    "cloud": {"Request Type": 10010, "Satisfaction": 10033, "Satisfaction date": 10034,
              "Support group": 10050, "Category": 10051, "Request language": 10052},
    "datacenter": {"Request Type": 10100, "Satisfaction": 10303, "Satisfaction date": 10304,
                   "Support group": 11800, "Category": 11801, "Request language": 11802},
}
_FIRST_EXTRA_FIELD_ID = {"cloud": 10060, "datacenter": 11900}

LEGACY_SEARCH_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED_JQL = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
NOTIFY_NEEDS_ADMIN = "To discard the user notification either admin or project admin permissions are required."
EXPERIMENTAL_OPT_IN = (
    "This API is experimental. Experimental APIs are not guaranteed to be stable within the preview period. "
    "You must set the header 'X-ExperimentalApi: opt-in' to opt into using this API."
)
_TOKEN_TTL_MS = 7 * 86_400_000  # "This token will expire in 7 days" (spec)

PRIORITIES: dict[int, str] = {1: "Highest", 2: "High", 3: "Medium", 4: "Low", 5: "Lowest"}
_CATEGORIES: dict[str, tuple[int, str, str]] = {
    "new": (2, "To Do", "blue-gray"), "indeterminate": (4, "In Progress", "yellow"), "done": (3, "Done", "green"),
}


@dataclass(frozen=True)
class _Status:
    id: str
    name: str
    category: str  # new | indeterminate | done


STATUSES: dict[str, _Status] = {s.name: s for s in (
    _Status("1", "Open", "new"), _Status("3", "In Progress", "indeterminate"),
    _Status("10002", "Pending", "indeterminate"), _Status("5", "Resolved", "done"),
    _Status("6", "Closed", "done"), _Status("10003", "Canceled", "done"),
)}
_STATE_STATUS = {"new": "Open", "in_progress": "In Progress", "on_hold": "Pending", "resolved": "Resolved",
                 "closed": "Closed", "canceled": "Canceled"}
RESOLUTIONS: dict[str, str] = {"Done": "10000", "Won't Do": "10001", "Duplicate": "10002",
                               "Cannot Reproduce": "10003", "Known Error": "10004", "Declined": "10005"}
_CLOSE_CODE_RESOLUTION = {"Solution provided": "Done", "Workaround provided": "Done",
                          "Resolved by caller": "Done", "User error": "Cannot Reproduce",
                          "Known error": "Known Error"}
ISSUE_TYPES: dict[str, str] = {"Service Request": "10001", "Incident": "10002", "Problem": "10003",
                               "Change": "10004", "Task": "10005"}
REQUEST_TYPES: dict[str, tuple[str, str]] = {
    "Get IT help": ("1", "Service Request"), "Report a system problem": ("2", "Incident"),
    "Reset password": ("3", "Service Request"), "Request access": ("4", "Service Request"),
    "Request a new account": ("5", "Service Request"),
}
_TITLE_REQUEST_TYPE = (("Password reset", "Reset password"), ("Request access", "Request access"),
                       ("New ", "Request a new account"))


@dataclass(frozen=True)
class _LinkType:
    id: str
    name: str
    inward: str
    outward: str


LINK_TYPES: tuple[_LinkType, ...] = (
    _LinkType("10000", "Blocks", "is blocked by", "blocks"),
    _LinkType("10001", "Cloners", "is cloned by", "clones"),
    _LinkType("10002", "Duplicate", "is duplicated by", "duplicates"),
    _LinkType("10003", "Relates", "relates to", "relates to"),
    _LinkType("10004", "Problem/Incident", "is caused by", "causes"),
)

# --------------------------------------------------------------------------------------------- records


@dataclass(slots=True, eq=False)
class _User:
    account_id: str
    name: str  # Data Center username
    key: str  # Data Center user key
    display_name: str
    email: str
    email_hidden: bool
    timezone: str
    account_type: str  # atlassian | customer | app
    agent: bool


@dataclass(slots=True)
class _Feedback:
    rating: int
    comment: str | None
    at_ms: int


@dataclass(slots=True, eq=False)
class _Comment:
    id: int
    author: _User
    body: str
    created_ms: int
    public: bool
    visibility: dict[str, Any] | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Link:
    id: int
    type: _LinkType
    inward: _Issue
    outward: _Issue


@dataclass(slots=True, eq=False)
class _Issue:
    num: int
    project: str
    seq: int
    summary: str
    description: str | None
    issuetype: str
    status: str
    resolution: str | None
    resolved_ms: int | None
    created_ms: int
    updated_ms: int
    status_changed_ms: int
    priority: int
    components: list[str]
    labels: list[str]
    reporter: _User
    assignee: _User | None
    creator: _User
    support_group: str | None = None
    category: str | None = None
    language: str | None = None
    request_type: str | None = None
    feedback: _Feedback | None = None
    custom: dict[str, Any] | None = None  # fields added with add_field()
    comments: list[_Comment] | None = None
    links: list[_Link] | None = None
    properties: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.project}-{self.seq}"


@dataclass(frozen=True)
class Notification:
    """An email Jira would have sent: who would hear about which change."""

    issue_key: str
    event: str  # issue_updated | comment_added | feedback_added
    customer_notified: bool  # the reporter (a JSM customer) gets an email
    watchers_notified: bool
    at: datetime


@dataclass
class _FieldDef:
    """One field as `/field`, `editmeta`, the issue JSON and JQL see it."""

    id: str
    name: str
    role: str  # how values are stored, validated and encoded
    schema: dict[str, Any]
    clause_names: tuple[str, ...]
    custom_id: int | None = None
    navigable: bool = True
    orderable: bool = True
    in_issue: bool = True
    edit_ops: tuple[str, ...] = ()  # empty: not on the edit screen
    options: dict[str, str] = field(default_factory=dict)  # select: option id -> value


class _Clockface:
    """Formats epoch ms in one time zone, fast: paging 100k issues formats 300k timestamps.

    UTC offsets are cached per 15-minute bucket (every real DST transition falls on one) and the
    date part per local day, so a timestamp costs a few integer operations.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[int, tuple[int, str]] = {}
        self._days: dict[int, str] = {}

    def quoted(self, ms: int | None) -> str:
        """The timestamp as a JSON string, or null."""
        return "null" if ms is None else '"' + self.format(ms) + '"'

    def format(self, ms: int) -> str:
        seconds = ms // 1000
        offset = self._offsets.get(seconds // 900)
        if offset is None:
            offset = self._offsets[seconds // 900] = self._offset(seconds)
        day, second = divmod(seconds + offset[0], 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        return prefix + _CLOCK_TIMES[second] + _CLOCK_MILLIS[ms % 1000] + offset[1]

    def _offset(self, seconds: int) -> tuple[int, str]:
        delta = datetime.fromtimestamp(seconds, self.tz).utcoffset()
        total = int(delta.total_seconds()) if delta is not None else 0
        minutes = abs(total) // 60
        return total, f"{'+' if total >= 0 else '-'}{minutes // 60:02d}{minutes % 60:02d}"


_EPOCH = datetime(1970, 1, 1)
# Every "HH:MM:SS" of a day and every ".mmm": table lookups beat formatting integers per timestamp.
_CLOCK_TIMES = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_CLOCK_MILLIS = [f".{n:03d}" for n in range(1000)]
_CLOCKFACES: dict[str, _Clockface] = {}


def _clockface(tz: ZoneInfo) -> _Clockface:
    face = _CLOCKFACES.get(tz.key)
    if face is None:
        face = _CLOCKFACES[tz.key] = _Clockface(tz)
    return face


@dataclass(frozen=True)
class _View:
    """How to render for one request: base URL, API version, the caller, and shared encodings."""

    base: str
    v: str  # "2" | "3"
    tz: ZoneInfo
    user: _User
    clock: _Clockface
    frags: dict[tuple[Any, ...], str]  # pre-encoded JSON of users, statuses, options … for (base, v)


class _HTTPError(Exception):
    def __init__(self, status: int, body: Any = None, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, list(headers)


def _errors(status: int, *messages: str, errors: dict[str, str] | None = None) -> _HTTPError:
    return _HTTPError(status, {"errorMessages": list(messages), "errors": errors or {}})


def _jsm_error(status: int, message: str, i18n_key: str) -> _HTTPError:
    return _HTTPError(status, {"errorMessage": message, "i18nErrorMessage": {"i18nKey": i18n_key, "parameters": []}})


def jira_error_body(status: int) -> dict[str, Any]:
    """Jira's error shape for the faults `SandboxServer` injects."""
    text = {429: "Rate limit exceeded.", 503: "Service Unavailable"}.get(status, HTTP_STATUS_CODES.get(status, ""))
    return {"errorMessages": [text], "errors": {}}


# --------------------------------------------------------------------------------------------- formats


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _format_ts(ms: int, tz: ZoneInfo) -> str:
    """Jira's timestamp format: `2022-06-09T16:29:31.871-0700` (offset without a colon)."""
    return _clockface(tz).format(ms)


def _adf(text: str | None) -> dict[str, Any] | None:
    """Plain text as a minimal Atlassian Document (one paragraph per blank-line-separated block)."""
    if text is None:
        return None
    content = [{"type": "paragraph", "content": [{"type": "text", "text": p}] if p else []}
               for p in text.split("\n\n")]
    return {"type": "doc", "version": 1, "content": content}


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


def _adf_text(doc: dict[str, Any]) -> str:
    def walk(node: Any) -> str:
        if not isinstance(node, dict):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") == "hardBreak":
            return "\n"
        return "".join(walk(child) for child in node.get("content", []) or [])
    return "\n\n".join(walk(block) for block in doc.get("content", []))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _bool_arg(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() not in ("false", "0", "no")


def _int_arg(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _errors(400, f"The value '{value}' is not valid for the parameter '{name}'.") from None


def _split_list(values: Iterable[Any] | str | None) -> list[str]:
    """Query/body lists may repeat the parameter and/or comma-separate values."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]


# --------------------------------------------------------------------------------------------- simulator


class JiraSimulator:
    """An in-memory Jira site (Cloud or Data Center) with a JSM service project, as a WSGI app.

    Args:
        world: the synthetic tickets, people and groups to expose as issues.
        mode: "cloud" or "datacenter"; decides endpoints, user shape, field ids and versions.
        user_timezone: the API user's profile time zone (timestamps and JQL string dates).
        email: the API user's login (basic auth with `token`).
        token: the API token (Cloud) / password or personal access token (Data Center).
        project: key of the service project holding the world's tickets.
        max_results_cap: largest page a search serves (default 100 Cloud, 1000 Data Center).
        admin: whether the API user administers the project (`notifyUsers=false` is honoured).
        clock: returns the simulated now; writes stamp `updated` with it.
    """

    def __init__(
        self,
        world: World,
        *,
        mode: Mode = "cloud",
        user_timezone: str = "UTC",
        email: str = "vloop@example.com",
        token: str = "sandbox-token",
        project: str = "ITSD",
        max_results_cap: int | None = None,
        result_window: int = 10_000,
        admin: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if mode not in ("cloud", "datacenter"):
            raise ValueError(f"mode must be 'cloud' or 'datacenter', not {mode!r}")
        self.world = world
        self.mode: Mode = mode
        self.cloud = mode == "cloud"
        self.project = project
        self.max_results_cap = max_results_cap or (100 if self.cloud else 1000)
        # Data Center's search index refuses offsets past max_result_window (Atlassian KB "Handling JQL
        # REST API searching exceeding max_result_window"): deep offset paging has to re-window.
        self.result_window = result_window
        self._expand = ("renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
                        if self.cloud else "operations,versionedRepresentations,editmeta,changelog,renderedFields")
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.notifications: list[Notification] = []
        self._lock = threading.RLock()
        self._projects: dict[str, tuple[str, str, str]] = {}  # key -> (id, name, type)
        self._next_seq: dict[str, int] = {}
        self._issues: list[_Issue] = []
        self._by_num: dict[int, _Issue] = {}
        self._by_key: dict[str, _Issue] = {}
        self._users: dict[str, _User] = {}  # person id -> user
        self._credentials: dict[str, tuple[str, _User, bool]] = {}  # login (lower) -> (secret, user, admin)
        self._components = {s.name: str(10100 + i) for i, s in enumerate(world.services)}
        self._fields: dict[str, _FieldDef] = {}
        self._next_custom_id = _FIRST_EXTRA_FIELD_ID[mode]
        self._next_option_id = 10200
        self._next_comment_id = 10000
        self._next_link_id = 10000
        self._versions: dict[str, int] = {}
        self._issues_version = 0
        self._schema_cache: tuple[str, jql.Schema] | None = None
        self._search_cache: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], list[_Issue]]] = OrderedDict()
        self._frag_sets: dict[tuple[str, str], dict[tuple[Any, ...], str]] = {}
        self._plans: dict[tuple[str, ...], list[tuple[str, _Encoder, _FieldDef]]] = {}
        self.me = self._api_user(email, user_timezone)
        self._credentials[email.lower()] = (token, self.me, admin)
        if not self.cloud:
            self._credentials[self.me.name.lower()] = (token, self.me, admin)
        self.add_project(project, "IT Service Desk", project_type="service_desk")
        self._define_fields()
        self._load(world)

    # ------------------------------------------------------------------ construction

    def _api_user(self, email: str, timezone: str) -> _User:
        return _User(account_id="5f" + stable_hex("vloop-api-user", email, length=22),
                     name=email.split("@")[0], key="JIRAUSER10000", display_name="Virtuous Loop integration",
                     email=email, email_hidden=False, timezone=timezone, account_type="atlassian", agent=True)

    def _user(self, person: Person) -> _User:
        user = self._users.get(person.id)
        if user is None:
            user = _User(account_id=person.account_id, name=person.user_name,
                         key=f"JIRAUSER{10100 + len(self._users)}", display_name=person.name,
                         email=person.email, email_hidden=person.email_hidden, timezone=person.timezone,
                         account_type="atlassian" if person.is_agent else "customer", agent=person.is_agent)
            self._users[person.id] = user
        return user

    def _define_fields(self) -> None:
        system = [
            _FieldDef("summary", "Summary", "summary", {"type": "string", "system": "summary"}, ("summary",),
                      edit_ops=("set",)),
            _FieldDef("description", "Description", "description", {"type": "string", "system": "description"},
                      ("description",), orderable=False, edit_ops=("set",)),
            _FieldDef("issuetype", "Issue Type", "issuetype", {"type": "issuetype", "system": "issuetype"},
                      ("issuetype", "type")),
            _FieldDef("project", "Project", "project", {"type": "project", "system": "project"}, ("project",)),
            _FieldDef("status", "Status", "status", {"type": "status", "system": "status"}, ("status",)),
            _FieldDef("resolution", "Resolution", "resolution", {"type": "resolution", "system": "resolution"},
                      ("resolution",)),
            _FieldDef("resolutiondate", "Resolved", "date", {"type": "datetime", "system": "resolutiondate"},
                      ("resolutiondate", "resolved")),
            _FieldDef("created", "Created", "date", {"type": "datetime", "system": "created"},
                      ("created", "createdDate")),
            _FieldDef("updated", "Updated", "date", {"type": "datetime", "system": "updated"},
                      ("updated", "updatedDate")),
            _FieldDef("statuscategorychangedate", "Status Category Changed", "date",
                      {"type": "datetime", "system": "statuscategorychangedate"}, ("statusCategoryChangedDate",)),
            _FieldDef("priority", "Priority", "priority", {"type": "priority", "system": "priority"},
                      ("priority",), edit_ops=("set",)),
            _FieldDef("components", "Components", "components",
                      {"type": "array", "items": "component", "system": "components"}, ("component",),
                      edit_ops=("add", "set", "remove")),
            _FieldDef("labels", "Labels", "labels", {"type": "array", "items": "string", "system": "labels"},
                      ("labels",), edit_ops=("add", "set", "remove")),
            _FieldDef("reporter", "Reporter", "user", {"type": "user", "system": "reporter"}, ("reporter",),
                      edit_ops=("set",)),
            _FieldDef("assignee", "Assignee", "user", {"type": "user", "system": "assignee"}, ("assignee",),
                      edit_ops=("set",)),
            _FieldDef("creator", "Creator", "user", {"type": "user", "system": "creator"}, ("creator",)),
            _FieldDef("issuelinks", "Linked Issues", "issuelinks",
                      {"type": "array", "items": "issuelinks", "system": "issuelinks"}, ("issueLink",),
                      orderable=False),
            _FieldDef("comment", "Comment", "comment", {"type": "comments-page", "system": "comment"},
                      ("comment",), navigable=False, orderable=False),
            _FieldDef("issuekey", "Key", "issuekey", {}, ("id", "issue", "issuekey", "key"), in_issue=False),
            _FieldDef("statusCategory", "Status Category", "statuscategory", {}, ("statusCategory",),
                      in_issue=False),
        ]
        for f in system:
            self._fields[f.id] = f
        ids = CUSTOM_FIELD_IDS[self.mode]
        groups = [g.name for g in self.world.groups]
        categories = [c.title() for c in CATEGORIES]
        self._custom("Request Type", ids["Request Type"], "request_type",
                     "com.atlassian.servicedesk:vp-origin", "sd-customerrequesttype", "Request Type")
        self._custom("Satisfaction", ids["Satisfaction"], "satisfaction",
                     "com.atlassian.servicedesk:sd-request-feedback", "sd-feedback", "Satisfaction",
                     edit_ops=("set",))
        self._custom("Satisfaction date", ids["Satisfaction date"], "satisfaction_date",
                     "com.atlassian.servicedesk:sd-request-feedback-date", "datetime", "Date Time Picker")
        self._custom("Support group", ids["Support group"], "support_group",
                     "com.atlassian.jira.plugin.system.customfieldtypes:select", "option", "Dropdown",
                     edit_ops=("set",), options=groups)
        self._custom("Category", ids["Category"], "category",
                     "com.atlassian.jira.plugin.system.customfieldtypes:select", "option", "Dropdown",
                     edit_ops=("set",), options=categories)
        self._custom("Request language", ids["Request language"], "language",
                     "com.atlassian.jira.plugin.system.customfieldtypes:textfield", "string", "Short text",
                     edit_ops=("set",))

    def _custom(self, name: str, number: int, role: str, custom: str, schema_type: str, cloud_suffix: str,
                *, edit_ops: tuple[str, ...] = (), options: Sequence[str] = ()) -> _FieldDef:
        clause = (f"cf[{number}]", name) + ((f"{name}[{cloud_suffix}]",) if self.cloud else ())
        fd = _FieldDef(f"customfield_{number}", name, role,
                       {"type": schema_type, "custom": custom, "customId": number}, clause, custom_id=number,
                       orderable=role not in ("request_type",), edit_ops=edit_ops)
        for value in options:
            fd.options[str(self._next_option_id)] = value
            self._next_option_id += 1
        self._fields[fd.id] = fd
        return fd

    def _load(self, world: World) -> None:
        rng = random.Random(7)  # satisfaction answers: deterministic for a given world
        anchor_ms = _ms(world.anchor)
        for ticket in world.tickets:
            issue = self._issue_from_ticket(ticket)
            if issue.resolved_ms is not None and rng.random() < 0.2:
                at = min(issue.resolved_ms + rng.randint(3_600_000, 72 * 3_600_000), anchor_ms)
                rating = rng.choices((1, 2, 3, 4, 5), weights=(6, 6, 12, 30, 46))[0]
                issue.feedback = _Feedback(rating, rng.choice((None, "Thanks!", "Took too long.", "Great help")), at)
                issue.updated_ms = max(issue.updated_ms, at)
            self._index(issue)
        self._next_seq[self.project] = len(world.tickets) + 1
        self._next_num = max(self._by_num, default=10000) + 1

    def _issue_from_ticket(self, t: Ticket) -> _Issue:
        status = _STATE_STATUS[t.state]
        resolution: str | None = None
        resolved_ms: int | None = None
        if STATUSES[status].category == "done":
            resolution = "Won't Do" if t.state == "canceled" else _CLOSE_CODE_RESOLUTION.get(t.close_code, "Done")
            resolved_ms = _ms(t.resolved_at or t.updated_at)
        request_type = next((rt for prefix, rt in _TITLE_REQUEST_TYPE if t.title.startswith(prefix)),
                            "Report a system problem")
        reporter = self._user(t.requester)
        created = _ms(t.opened_at)
        return _Issue(
            num=10000 + t.seq, project=self.project, seq=t.seq, summary=t.title, description=t.description,
            issuetype=REQUEST_TYPES[request_type][1], status=status, resolution=resolution,
            resolved_ms=resolved_ms, created_ms=created, updated_ms=max(_ms(t.updated_at), resolved_ms or 0),
            status_changed_ms=resolved_ms if resolved_ms is not None else created, priority=t.priority,
            components=[t.service.name], labels=[f"channel-{t.channel}"], reporter=reporter,
            assignee=self._user(t.assignee) if t.assignee is not None else None, creator=reporter,
            support_group=t.group.name, category=t.category.title(), language=t.requester.language,
            request_type=request_type,
        )

    def _index(self, issue: _Issue) -> None:
        self._issues.append(issue)
        self._by_num[issue.num] = issue
        self._by_key[issue.key] = issue
        self._issues_version += 1

    # ------------------------------------------------------------------ python API for tests and the demo

    def now_ms(self) -> int:
        return _ms(self.clock())

    def add_project(self, key: str, name: str, *, project_type: str = "software") -> None:
        """Add another project (e.g. a CSI register); issues are created in it through the API."""
        with self._lock:
            self._projects[key.upper()] = (str(10000 + len(self._projects)), name, project_type)
            self._next_seq.setdefault(key.upper(), 1)
            self._schema_cache = None

    def add_field(self, name: str, kind: Literal["number", "text", "select"] = "number",
                  options: Sequence[str] = ()) -> str:
        """Add an editable custom field (say, our own score field) and return its id."""
        types = {"number": ("com.atlassian.jira.plugin.system.customfieldtypes:float", "number", "Number"),
                 "text": ("com.atlassian.jira.plugin.system.customfieldtypes:textfield", "string", "Short text"),
                 "select": ("com.atlassian.jira.plugin.system.customfieldtypes:select", "option", "Dropdown")}
        custom, schema_type, suffix = types[kind]
        with self._lock:
            fd = self._custom(name, self._next_custom_id, f"extra_{kind}", custom, schema_type, suffix,
                              edit_ops=("set",), options=options)
            self._next_custom_id += 1
            self._schema_cache = None
            self._plans.clear()
            return fd.id

    def field_id(self, name: str) -> str:
        """The id of a field by its display name (test convenience; the connector uses /field)."""
        return next(f.id for f in self._fields.values() if f.name == name)

    def add_credentials(self, person: Person | None, token: str, *, admin: bool = False) -> None:
        """Let `person` (e.g. a customer who reports issues) log in with their email and `token`."""
        with self._lock:
            user = self.me if person is None else self._user(person)
            self._credentials[user.email.lower()] = (token, user, admin)
            if not self.cloud:
                self._credentials[user.name.lower()] = (token, user, admin)

    def issue(self, key: str) -> dict[str, Any]:
        """The issue as the v2 API returns it with all fields (for assertions)."""
        with self._lock:
            view = self._view("http://sandbox", "2", self.me)
            issue = self._get_issue(key)
            return dict(json.loads(self._issue_json(issue, self._all_fields(), view)))

    def comments(self, key: str) -> list[dict[str, Any]]:
        """Comments of an issue: id, body, public, author account id."""
        with self._lock:
            issue = self._get_issue(key)
            return [{"id": str(c.id), "body": c.body, "public": c.public, "author": c.author.account_id}
                    for c in issue.comments or []]

    def resolve(self, key: str, at: datetime | None = None, *, resolution: str = "Done") -> None:
        """Resolve an issue: status Resolved, resolution set, resolutiondate = updated = `at`."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {resolution!r}; one of {sorted(RESOLUTIONS)}")
        with self._lock:
            issue = self._get_issue(key)
            ms = _ms(at) if at is not None else self.now_ms()
            issue.status, issue.resolution, issue.resolved_ms = "Resolved", resolution, ms
            issue.status_changed_ms = issue.updated_ms = ms
            self._touch("status", "statusCategory", "resolution", "resolutiondate", "statuscategorychangedate",
                        "updated")

    def reopen(self, key: str, at: datetime | None = None) -> None:
        """Reopen an issue: back In Progress, resolution and resolutiondate cleared."""
        with self._lock:
            issue = self._get_issue(key)
            ms = _ms(at) if at is not None else self.now_ms()
            issue.status, issue.resolution, issue.resolved_ms = "In Progress", None, None
            issue.status_changed_ms = issue.updated_ms = ms
            self._touch("status", "statusCategory", "resolution", "resolutiondate", "statuscategorychangedate",
                        "updated")

    def add_issue(self, *, summary: str = "Sandbox request", description: str | None = None,
                  issuetype: str = "Service Request", project: str | None = None, priority: int = 3,
                  reporter: Person | None = None, assignee: Person | None = None,
                  support_group: str | None = None, category: str | None = None, language: str | None = None,
                  labels: Sequence[str] = (), request_type: str | None = "Get IT help",
                  created: datetime | None = None, resolved: datetime | None = None) -> str:
        """Create an issue directly (reporter defaults to the API user); returns its key."""
        project_key = (project or self.project).upper()
        if project_key not in self._projects or issuetype not in ISSUE_TYPES or priority not in PRIORITIES:
            raise ValueError(f"unknown project {project_key!r}, issue type {issuetype!r} or priority {priority!r}")
        if request_type is not None and request_type not in REQUEST_TYPES:
            raise ValueError(f"unknown request type {request_type!r}; one of {sorted(REQUEST_TYPES)}")
        with self._lock:
            self._check_option("support_group", support_group)
            self._check_option("category", category)
            ms = _ms(created) if created is not None else self.now_ms()
            issue = self._new_issue(project_key, summary, issuetype, ms,
                                    self._user(reporter) if reporter is not None else self.me)
            issue.description, issue.priority, issue.labels = description, priority, list(labels)
            issue.assignee = self._user(assignee) if assignee is not None else None
            issue.support_group, issue.category, issue.language = support_group, category, language
            issue.request_type = request_type if self._is_service_project(project_key) else None
            if resolved is not None:
                self.resolve(issue.key, resolved)
            return issue.key

    def set_feedback(self, key: str, rating: int | None, comment: str | None = None,
                     at: datetime | None = None) -> None:
        """Record (or with rating None, remove) the customer's JSM satisfaction answer."""
        with self._lock:
            issue = self._get_issue(key)
            ms = _ms(at) if at is not None else self.now_ms()
            issue.feedback = _Feedback(rating, comment, ms) if rating is not None else None
            issue.updated_ms = ms
            self._touch(self._role_field("satisfaction"), self._role_field("satisfaction_date"), "updated")

    # ------------------------------------------------------------------ state helpers

    def _touch(self, *field_ids: str) -> None:
        for fid in field_ids:
            self._versions[fid] = self._versions.get(fid, 0) + 1
        if {"summary", "description", "comment"} & set(field_ids):
            self._versions["text"] = self._versions.get("text", 0) + 1

    def _check_option(self, role: str, value: str | None) -> None:
        fd = self._fields[self._role_field(role)]
        if value is not None and value not in fd.options.values():
            raise ValueError(f"{value!r} is not an option of {fd.name!r}: {sorted(fd.options.values())}")

    def _role_field(self, role: str) -> str:
        return next(f.id for f in self._fields.values() if f.role == role)

    def _is_service_project(self, key: str) -> bool:
        return self._projects.get(key, ("", "", ""))[2] == "service_desk"

    def _new_issue(self, project: str, summary: str, issuetype: str, ms: int, reporter: _User) -> _Issue:
        seq = self._next_seq[project]
        self._next_seq[project] = seq + 1
        num = self._next_num
        self._next_num += 1
        issue = _Issue(num=num, project=project, seq=seq, summary=summary, description=None, issuetype=issuetype,
                       status="Open", resolution=None, resolved_ms=None, created_ms=ms, updated_ms=ms,
                       status_changed_ms=ms, priority=3, components=[], labels=[], reporter=reporter,
                       assignee=None, creator=reporter)
        self._index(issue)
        return issue

    def _get_issue(self, id_or_key: str) -> _Issue:
        issue = self._by_key.get(id_or_key.upper())
        if issue is None and id_or_key.isdigit():
            issue = self._by_num.get(int(id_or_key))
        if issue is None:
            raise _errors(404, ISSUE_NOT_FOUND)
        return issue

    def _all_fields(self) -> list[str]:
        return [f.id for f in self._fields.values() if f.in_issue]

    # ------------------------------------------------------------------ JQL

    def _canon_user(self, user: _User | None) -> str | None:
        if user is None:
            return None
        return user.account_id if self.cloud else user.name.lower()

    def _schema(self) -> jql.Schema:
        stamp = f"{len(self._fields)}:{len(self._projects)}"
        if self._schema_cache is None or self._schema_cache[0] != stamp:
            self._schema_cache = (stamp, jql.Schema(self._jql_fields()))
        return self._schema_cache[1]

    def _jql_fields(self) -> list[jql.FieldSpec]:
        f = jql.FieldSpec
        statuses = {k.lower(): k for k in STATUSES} | {s.id: s.name for s in STATUSES.values()}
        categories: dict[str, str] = {}
        for key, (cid, name, _) in _CATEGORIES.items():
            categories.update({key: key, str(cid): key, name.lower(): key})
        resolutions = {k.lower(): k for k in RESOLUTIONS} | {v: k for k, v in RESOLUTIONS.items()}
        types = {k.lower(): k for k in ISSUE_TYPES} | {v: k for k, v in ISSUE_TYPES.items()}
        priorities = {v.lower(): k for k, v in PRIORITIES.items()} | {str(k): k for k in PRIORITIES}
        components = {k.lower(): k for k in self._components} | {v: k for k, v in self._components.items()}
        canon = self._canon_user
        specs = [
            f("issuekey", ("key", "issuekey", "id", "issue"), "key", lambda i: (i.project, i.seq),
              resolve=self._resolve_key),
            f("project", ("project",), "project", attrgetter("project"), resolve=self._resolve_project),
            f("summary", ("summary",), "text", lambda i: i.summary.lower(), sort=lambda i: i.summary.lower()),
            f("description", ("description",), "text",
              lambda i: i.description.lower() if i.description else None, sortable=False),
            f("text", ("text",), "text", _issue_text, sortable=False),
            f("comment", ("comment",), "text",
              lambda i: " ".join(c.body.lower() for c in i.comments) if i.comments else None, sortable=False),
            f("status", ("status",), "option", attrgetter("status"), resolve=lambda s: statuses.get(s.lower())),
            f("statusCategory", ("statusCategory",), "option", lambda i: STATUSES[i.status].category,
              resolve=lambda s: categories.get(s.lower())),
            f("resolution", ("resolution",), "option", attrgetter("resolution"),
              resolve=lambda s: jql.EMPTY if s.lower() == "unresolved" else resolutions.get(s.lower())),
            f("issuetype", ("issuetype", "type"), "option", attrgetter("issuetype"),
              resolve=lambda s: types.get(s.lower())),
            f("priority", ("priority",), "option", attrgetter("priority"),
              resolve=lambda s: priorities.get(s.lower()), sort=lambda i: -i.priority, numeric_sort=True),
            f("components", ("component",), "labels", lambda i: tuple(i.components),
              resolve=lambda s: components.get(s.lower()), sortable=False),
            f("labels", ("labels",), "labels", lambda i: tuple(x.lower() for x in i.labels), sortable=False),
            f("resolutiondate", ("resolved", "resolutiondate", "resolutionDate"), "date", attrgetter("resolved_ms")),
            f("created", ("created", "createdDate"), "date", attrgetter("created_ms")),
            f("updated", ("updated", "updatedDate"), "date", attrgetter("updated_ms")),
            f("statuscategorychangedate", ("statusCategoryChangedDate",), "date", attrgetter("status_changed_ms")),
            f("assignee", ("assignee",), "user", lambda i: canon(i.assignee), resolve=self._resolve_user),
            f("reporter", ("reporter",), "user", lambda i: canon(i.reporter), resolve=self._resolve_user),
            f("creator", ("creator",), "user", lambda i: canon(i.creator), resolve=self._resolve_user),
        ]
        return specs + [self._custom_spec(fd) for fd in self._fields.values() if fd.custom_id is not None]

    def _custom_spec(self, fd: _FieldDef) -> jql.FieldSpec:
        names = tuple(n for n in fd.clause_names if not n.startswith("cf["))
        options = {v.lower(): v for v in fd.options.values()} | dict(fd.options)

        def option(s: str) -> str | None:
            return options.get(s.lower()) or options.get(s)

        role = fd.role
        if role in ("support_group", "category"):
            return jql.FieldSpec(fd.id, names, "option", attrgetter(role), resolve=option, custom_id=fd.custom_id)
        if role == "language":
            return jql.FieldSpec(fd.id, names, "text", lambda i: i.language.lower() if i.language else None,
                                 custom_id=fd.custom_id)
        if role == "request_type":
            kinds = {k.lower(): k for k in REQUEST_TYPES}
            return jql.FieldSpec(fd.id, names, "option", attrgetter("request_type"),
                                 resolve=lambda s: kinds.get(s.lower()), sortable=False, custom_id=fd.custom_id)
        if role == "satisfaction":
            return jql.FieldSpec(fd.id, names, "number",
                                 lambda i: float(i.feedback.rating) if i.feedback else None, custom_id=fd.custom_id)
        if role == "satisfaction_date":
            return jql.FieldSpec(fd.id, names, "date", lambda i: i.feedback.at_ms if i.feedback else None,
                                 custom_id=fd.custom_id)
        fid = fd.id

        def extra(i: _Issue) -> Any:
            return i.custom.get(fid) if i.custom else None

        if role == "extra_number":
            return jql.FieldSpec(fid, names, "number", extra, custom_id=fd.custom_id)
        if role == "extra_select":
            return jql.FieldSpec(fid, names, "option", extra, resolve=option, custom_id=fd.custom_id)
        return jql.FieldSpec(fid, names, "text", lambda i: (extra(i) or "").lower() or None,
                             custom_id=fd.custom_id)

    def _resolve_key(self, text: str) -> tuple[str, int] | None:
        issue = self._by_key.get(text.upper())
        if issue is None and text.isdigit():
            issue = self._by_num.get(int(text))
        return (issue.project, issue.seq) if issue is not None else None

    def _resolve_project(self, text: str) -> str | None:
        for key, (pid, name, _) in self._projects.items():
            if text.upper() == key or text == pid or text.lower() == name.lower():
                return key
        return None

    def _resolve_user(self, text: str) -> str | None:
        low = text.lower()
        if low in self._credentials:
            return self._canon_user(self._credentials[low][1])
        for user in (self.me, *self._users.values()):
            if text == user.account_id or low == user.email.lower() or (not self.cloud and low in (
                    user.name.lower(), user.key.lower())):
                return self._canon_user(user)
        return None

    def _compile(self, text: str, user: _User) -> jql.CompiledQuery:
        try:
            query = jql.parse(text)
            context = jql.Context(ZoneInfo(user.timezone), self.clock(), self._canon_user(user))
            return jql.compile_query(query, self._schema(), context)
        except jql.JQLError as exc:
            raise _errors(400, *exc.messages) from None

    def _ordered(self, compiled: jql.CompiledQuery) -> Callable[[_Issue], tuple[Any, ...]]:
        """Sort key with the issue id as final tiebreak (search-after needs a total order)."""
        if compiled.order:
            return compiled.key_function(tiebreak=_NUM)
        return _default_order

    def _matches(self, text: str, compiled: jql.CompiledQuery, user: _User) -> list[_Issue]:
        deps = tuple(self._versions.get(fid, 0) for fid in sorted(compiled.fields))
        stamp: tuple[Any, ...] = (self._issues_version, deps, self.now_ms() if compiled.uses_now else 0)
        cache_key = (text.strip(), user.account_id)
        hit = self._search_cache.get(cache_key)
        if hit is not None and hit[0] == stamp:
            self._search_cache.move_to_end(cache_key)
            return hit[1]
        matches = compiled.matches
        found = [i for i in self._issues if matches(i)]  # _issues is in id order: the final tiebreak
        # Stable passes from the least significant term compare flat values instead of nested tuples:
        # about three times faster than one sort on the combined key for 100k issues.
        for term in reversed(compiled.term_keys() if compiled.order else [_default_order]):
            found.sort(key=term)
        self._search_cache[cache_key] = (stamp, found)
        while len(self._search_cache) > 16:
            self._search_cache.popitem(last=False)
        return found

    # ------------------------------------------------------------------ page tokens

    def _token(self, text: str, compiled: jql.CompiledQuery, last: _Issue) -> str:
        values = compiled.sort_values(last) if compiled.order else ()
        raw = _dumps([1, _jql_hash(text), list(values), last.num, self.now_ms()])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _token_position(self, token: str, text: str, compiled: jql.CompiledQuery, found: list[_Issue]) -> int:
        invalid = _errors(400, "The provided next page token is invalid or expired.")  # wording unverified
        try:
            version, digest, values, num, issued = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, TypeError):
            raise invalid from None
        if version != 1 or digest != _jql_hash(text) or self.now_ms() - int(issued) > _TOKEN_TTL_MS:
            raise invalid
        keyfn = self._ordered(compiled)
        if compiled.order:
            if len(values) != len(compiled.order):
                raise invalid
            target = (*compiled.key_from_values([_tuples(v) for v in values]), num)
        else:
            issue = self._by_num.get(num)
            if issue is None:
                raise invalid
            target = keyfn(issue)
        return bisect.bisect_right(found, target, key=keyfn)

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.get_data(cache=True)  # read the body before taking the lock: a slow client must not stall others
        headers = [("Content-Type", "application/json;charset=UTF-8")]
        try:
            with self._lock:
                status, body = self._dispatch(request)
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

    def _dispatch(self, request: Request) -> tuple[int, Any]:
        path = request.path.rstrip("/")
        parts = path.split("/")
        user, admin = self._authenticate(request)
        base = request.host_url.rstrip("/")
        if parts[1:3] == ["rest", "api"] and len(parts) >= 5:
            version = parts[3]
            if version not in ("2", "3", "latest") or (version == "3" and not self.cloud):
                raise _HTTPError(404, {"message": f"null for uri: {request.url}", "status-code": 404})
            rest = parts[4:]
            if rest == ["serverInfo"] and request.method == "GET":
                return 200, self._server_info(base)
            if user is None:
                raise _errors(401, NOT_AUTHENTICATED)
            view = self._view(base, "3" if version == "3" else "2", user)
            return self._platform(request, rest, view, admin)
        if parts[1:3] == ["rest", "servicedeskapi"]:
            if user is None:
                raise _errors(401, NOT_AUTHENTICATED)
            view = self._view(base, "2", user)
            return self._servicedesk(request, parts[3:], view)
        raise _HTTPError(404, {"message": f"null for uri: {request.url}", "status-code": 404})

    def _authenticate(self, request: Request) -> tuple[_User | None, bool]:
        header = request.headers.get("Authorization", "")
        if not header:
            return None, False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                login, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                raise _errors(401, NOT_AUTHENTICATED) from None
            found = self._credentials.get(login.lower())
            if found is not None and found[0] == secret:
                return found[1], found[2]
        elif scheme.lower() == "bearer" and not self.cloud:
            # Data Center personal access tokens.
            for secret, user, admin in self._credentials.values():
                if secret == value:
                    return user, admin
        raise _errors(401, NOT_AUTHENTICATED)

    def _platform(self, request: Request, rest: list[str], view: _View, admin: bool) -> tuple[int, Any]:
        method, head = request.method, rest[0]
        n = len(rest)
        if head == "myself" and n == 1 and method == "GET":
            return 200, self._myself(view)
        if head == "field" and n == 1 and method == "GET":
            return 200, self._field_list()
        if head == "search":
            if n == 1 and method in ("GET", "POST"):
                if self.cloud:
                    raise _errors(410, LEGACY_SEARCH_GONE)
                return 200, self._search_dc(request, view)
            if rest[1:] == ["jql"] and method in ("GET", "POST") and self.cloud:
                return 200, self._search_jql(request, view)
            if rest[1:] == ["approximate-count"] and method == "POST" and self.cloud:
                return 200, self._approximate_count(request, view)
        if head == "issue":
            return self._issue_routes(request, rest[1:], view, admin)
        if head == "issueLink" and n == 1 and method == "POST":
            return self._create_link(request, view)
        if head == "issueLinkType" and n == 1 and method == "GET":
            return 200, {"issueLinkTypes": [self._link_type_json(t, view) for t in LINK_TYPES]}
        raise _HTTPError(404, {"message": f"null for uri: {request.url}", "status-code": 404})

    def _issue_routes(self, request: Request, rest: list[str], view: _View, admin: bool) -> tuple[int, Any]:
        method = request.method
        if not rest and method == "POST":
            return self._create_issue(request, view)
        if rest == ["bulk"] and method == "POST":
            return self._create_bulk(request, view)
        if not rest:
            raise _HTTPError(405, None)
        issue = self._get_issue(rest[0])
        sub = rest[1:]
        if not sub and method == "GET":
            return 200, self._get_issue_json(request, issue, view)
        if not sub and method == "PUT":
            return self._edit_issue(request, issue, view, admin)
        if sub == ["editmeta"] and method == "GET":
            return 200, self._editmeta(issue, view)
        if sub == ["comment"] and method == "GET":
            return 200, self._list_comments(request, issue, view)
        if sub == ["comment"] and method == "POST":
            return 201, self._add_platform_comment(request, issue, view)
        if sub[:1] == ["properties"]:
            return self._property_routes(request, issue, sub[1:])
        raise _HTTPError(404, {"message": f"null for uri: {request.url}", "status-code": 404})

    # ------------------------------------------------------------------ server info, myself, fields

    def _server_info(self, base: str) -> dict[str, Any]:
        now = _format_ts(self.now_ms(), ZoneInfo("UTC"))
        if self.cloud:
            return {"baseUrl": base, "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
                    "deploymentType": "Cloud", "buildNumber": 100289, "buildDate": "2025-12-18T10:12:33.000+0000",
                    "serverTime": now, "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
                    "serverTitle": "Jira", "serverTimeZone": "Etc/UTC"}
        # Data Center reports deploymentType "Server" (observed on 10.3.x), not "DataCenter".
        return {"baseUrl": base, "version": "9.12.15", "versionNumbers": [9, 12, 15], "deploymentType": "Server",
                "buildNumber": 9120015, "buildDate": "2024-10-15T00:00:00.000+0000", "databaseBuildNumber": 9120015,
                "serverTime": now, "scmInfo": "6bb8a8a4b2d5c5c9f3e0a7b1c2d3e4f5a6b7c8d9", "serverTitle": "Jira",
                "serverTimeZone": "UTC"}

    def _myself(self, view: _View) -> dict[str, Any]:
        body = self._user_json(view.user, view)
        body["locale"] = "en_US"
        body["groups"] = {"size": 1, "items": []}
        body["applicationRoles"] = {"size": 1, "items": []}
        body["expand"] = "groups,applicationRoles"
        if body.get("emailAddress") is None:
            body.pop("emailAddress", None)
        return body

    def _field_list(self) -> list[dict[str, Any]]:
        out = []
        for fd in self._fields.values():
            item: dict[str, Any] = {"id": fd.id, "name": fd.name, "custom": fd.custom_id is not None,
                                    "orderable": fd.orderable and fd.in_issue, "navigable": fd.navigable,
                                    "searchable": True, "clauseNames": list(fd.clause_names)}
            if self.cloud:
                item["key"] = fd.id
            if fd.schema:
                item["schema"] = fd.schema
            out.append(item)
        return out

    # ------------------------------------------------------------------ search

    def _search_params(self, request: Request, allowed: set[str]) -> dict[str, Any]:
        if request.method == "GET":
            args = request.args
            return {"jql": args.get("jql", ""), "nextPageToken": args.get("nextPageToken"),
                    "maxResults": args.get("maxResults"), "startAt": args.get("startAt"),
                    "fields": args.getlist("fields") or None, "expand": args.get("expand"),
                    "properties": args.getlist("properties") or None,
                    "reconcileIssues": args.getlist("reconcileIssues") or None}
        body = _json_body(request)
        if not isinstance(body, dict):
            raise _errors(400, "Request body must be a JSON object.")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _errors(400, f'Unrecognized field "{unknown[0]}"')
        return body

    def _search_jql(self, request: Request, view: _View) -> str:
        params = self._search_params(request, {"jql", "nextPageToken", "maxResults", "fields", "expand",
                                               "properties", "fieldsByKeys", "reconcileIssues", "failFast"})
        text = str(params.get("jql") or "")
        max_results = _int_arg(params.get("maxResults"), "maxResults", 50)
        if max_results < 1:
            raise _errors(400, "maxResults must be greater than 0.")  # wording unverified
        reconcile = params.get("reconcileIssues") or []
        if len(reconcile) > 50:
            raise _errors(400, "The number of issues to reconcile cannot exceed 50.")  # wording unverified
        compiled = self._compile(text, view.user)
        if not compiled.query.bounded:
            raise _errors(400, UNBOUNDED_JQL)
        if len(compiled.query.order_by) > jql.MAX_ORDER_BY_FIELDS:
            raise _errors(400, "The ORDER BY clause can contain at most 7 fields.")  # wording unverified
        found = self._matches(text, compiled, view.user)
        token = params.get("nextPageToken")
        start = self._token_position(str(token), text, compiled, found) if token else 0
        page = found[start:start + min(max_results, self.max_results_cap)]
        is_last = start + len(page) >= len(found)
        fids, id_only = self._field_selection(params.get("fields"), default="id")
        props = _split_list(params.get("properties"))
        parts = ['{"issues":[', self._issues_json(page, fids, view, id_only=id_only, properties=props), "]"]
        if not is_last and page:
            parts.append(',"nextPageToken":' + _dumps(self._token(text, compiled, page[-1])))
        parts.append(',"isLast":' + ("true" if is_last else "false"))
        parts.append(self._names_schema(_split_list(params.get("expand")), fids))
        parts.append("}")
        return "".join(parts)

    def _search_dc(self, request: Request, view: _View) -> str:
        params = self._search_params(request, {"jql", "startAt", "maxResults", "fields", "expand", "properties",
                                               "validateQuery", "fieldsByKeys"})
        text = str(params.get("jql") or "")
        start = max(0, _int_arg(params.get("startAt"), "startAt", 0))
        max_results = min(max(0, _int_arg(params.get("maxResults"), "maxResults", 50)), self.max_results_cap)
        if start + max_results > self.result_window:
            raise _errors(400, f"Result window is too large, startAt + maxResults must be less than or equal to: "
                               f"[{self.result_window}] but was [{start + max_results}].")
        compiled = self._compile(text, view.user)
        found = self._matches(text, compiled, view.user)
        page = found[start:start + max_results]
        fids, _ = self._field_selection(params.get("fields"), default="*navigable")
        props = _split_list(params.get("properties"))
        head = _dumps({"expand": "schema,names", "startAt": start, "maxResults": max_results, "total": len(found)})
        issues = self._issues_json(page, fids, view, properties=props)
        names = self._names_schema(_split_list(params.get("expand")), fids)
        return head[:-1] + ',"issues":[' + issues + "]" + names + "}"

    def _approximate_count(self, request: Request, view: _View) -> dict[str, Any]:
        body = _json_body(request)
        text = str(body.get("jql") or "") if isinstance(body, dict) else ""
        compiled = self._compile(text, view.user)
        if not compiled.query.bounded:
            raise _errors(400, UNBOUNDED_JQL)
        return {"count": len(self._matches(text, compiled, view.user))}

    def _field_selection(self, raw: Any, default: str) -> tuple[list[str], bool]:
        """Resolve `fields` (list, `*all`, `*navigable`, `-x`) to ordered field ids; True when only `id`."""
        tokens = _split_list(raw) or [default]
        include: set[str] = set()
        exclude = {t[1:] for t in tokens if t.startswith("-")}
        positive = [t for t in tokens if not t.startswith("-")]
        if not positive:
            positive = ["*navigable"]
        known = {f.id: f for f in self._fields.values() if f.in_issue}
        for token in positive:
            if token == "*all":
                include.update(known)
            elif token == "*navigable":
                include.update(fid for fid, f in known.items() if f.navigable)
            elif token in known:
                include.add(token)
        ordered = [fid for fid in known if fid in include and fid not in exclude]
        id_only = not ordered and all(t == "id" for t in positive)
        return ordered, id_only

    def _names_schema(self, expand: list[str], fids: list[str]) -> str:
        out = ""
        if "names" in expand:
            out += ',"names":' + _dumps({fid: self._fields[fid].name for fid in fids})
        if "schema" in expand:
            out += ',"schema":' + _dumps({fid: self._fields[fid].schema for fid in fids if self._fields[fid].schema})
        return out

    # ------------------------------------------------------------------ issue JSON

    def _issue_json(self, issue: _Issue, fids: Sequence[str], view: _View, *, id_only: bool = False,
                    properties: Sequence[str] = ()) -> str:
        return self._issues_json([issue], fids, view, id_only=id_only, properties=properties)

    def _issues_json(self, issues: Sequence[_Issue], fids: Sequence[str], view: _View, *, id_only: bool = False,
                     properties: Sequence[str] = ()) -> str:
        """Comma-separated issue objects, built as one list of fragments joined once (one copy per page)."""
        if id_only:
            return ",".join([f'{{"id":"{issue.num}"}}' for issue in issues])
        plan = self._plan(fids)
        head = f'{{"expand":"{self._expand}","id":"'
        self_url = f'","self":"{view.base}/rest/api/{view.v}/issue/'
        out: list[str] = []
        add = out.append
        for n, issue in enumerate(issues):
            add(f'{head if n == 0 else "," + head}{issue.num}{self_url}{issue.num}","key":"{issue.project}-'
                f'{issue.seq}","fields":{{')
            for prefix, encode, fd in plan:
                add(prefix)
                add(encode(self, issue, view, fd))
            if properties:
                stored = issue.properties or {}
                wanted = stored if "*all" in properties else {k: stored[k] for k in properties if k in stored}
                add('},"properties":' + _dumps(wanted) + "}")
            else:
                add("}}")
        return "".join(out)

    def _get_issue_json(self, request: Request, issue: _Issue, view: _View) -> str:
        fids, _ = self._field_selection(request.args.getlist("fields") or None, default="*all")
        props = _split_list(request.args.getlist("properties"))
        body = self._issue_json(issue, fids, view, properties=props)
        return body[:-1] + self._names_schema(_split_list(request.args.get("expand")), fids) + "}"

    def _view(self, base: str, v: str, user: _User) -> _View:
        frags = self._frag_sets.setdefault((base, v), {})
        tz = ZoneInfo(user.timezone)
        return _View(base, v, tz, user, _clockface(tz), frags)

    def _plan(self, fids: Sequence[str]) -> list[tuple[str, _Encoder, _FieldDef]]:
        """Per field: its JSON key prefix, encoder and definition (looked up once per page, not per issue)."""
        key = tuple(fids)
        plan = self._plans.get(key)
        if plan is None:
            plan = [(f'{"," if n else ""}"{fid}":', _encoder(self._fields[fid]), self._fields[fid])
                    for n, fid in enumerate(fids)]
            if len(self._plans) > 256:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _frag(self, view: _View, key: tuple[Any, ...], build: Callable[[], Any]) -> str:
        text = view.frags.get(key)
        if text is None:
            text = view.frags[key] = _dumps(build())
        return text

    def _user_frag(self, user: _User | None, view: _View) -> str:
        if user is None:
            return "null"
        text = view.frags.get(("user", user.account_id))
        if text is None:
            text = view.frags[("user", user.account_id)] = self._user_text(user, view)
        return text

    def _user_text(self, user: _User, view: _View) -> str:
        """`_user_json` encoded by hand: a 100k-issue pull meets every one of 25k users once."""
        avatars = self._frag(view, ("avatars",), lambda: self._user_json(user, view)["avatarUrls"])
        e = encode_basestring
        if self.cloud:
            email = "null" if user.email_hidden else e(user.email)
            return (f'{{"self":{e(f"{view.base}/rest/api/{view.v}/user?accountId={user.account_id}")},'
                    f'"accountId":{e(user.account_id)},"emailAddress":{email},"avatarUrls":{avatars},'
                    f'"displayName":{e(user.display_name)},"active":true,"timeZone":{e(user.timezone)},'
                    f'"accountType":{e(user.account_type)}}}')
        return (f'{{"self":{e(f"{view.base}/rest/api/2/user?username={user.name}")},"name":{e(user.name)},'
                f'"key":{e(user.key)},"emailAddress":{e(user.email)},"avatarUrls":{avatars},'
                f'"displayName":{e(user.display_name)},"active":true,"timeZone":{e(user.timezone)}}}')

    def _user_json(self, user: _User, view: _View) -> dict[str, Any]:
        avatars = {size: f"{view.base}/secure/useravatar?size={size}&avatarId=10122"
                   for size in ("48x48", "24x24", "16x16", "32x32")}
        if self.cloud:
            return {"self": f"{view.base}/rest/api/{view.v}/user?accountId={user.account_id}",
                    "accountId": user.account_id, "emailAddress": None if user.email_hidden else user.email,
                    "avatarUrls": avatars, "displayName": user.display_name, "active": True,
                    "timeZone": user.timezone, "accountType": user.account_type}
        return {"self": f"{view.base}/rest/api/2/user?username={user.name}", "name": user.name, "key": user.key,
                "emailAddress": user.email, "avatarUrls": avatars, "displayName": user.display_name,
                "active": True, "timeZone": user.timezone}

    def _option_frag(self, fd: _FieldDef, value: str | None, view: _View) -> str:
        if value is None:
            return "null"
        text = view.frags.get((fd.id, value))
        if text is None:
            option_id = next((k for k, v in fd.options.items() if v == value), "")
            text = self._frag(view, (fd.id, value), lambda: {
                "self": f"{view.base}/rest/api/{view.v}/customFieldOption/{option_id}", "value": value,
                "id": option_id})
        return text

    def _status_json(self, name: str, view: _View) -> dict[str, Any]:
        status = STATUSES[name]
        cat_id, cat_name, color = _CATEGORIES[status.category]
        return {"self": f"{view.base}/rest/api/{view.v}/status/{status.id}", "description": "",
                "iconUrl": f"{view.base}/images/icons/statuses/generic.png", "name": status.name, "id": status.id,
                "statusCategory": {"self": f"{view.base}/rest/api/{view.v}/statuscategory/{cat_id}", "id": cat_id,
                                   "key": status.category, "colorName": color, "name": cat_name}}

    def _project_json(self, key: str, view: _View) -> dict[str, Any]:
        pid, name, ptype = self._projects[key]
        return {"self": f"{view.base}/rest/api/{view.v}/project/{pid}", "id": pid, "key": key, "name": name,
                "projectTypeKey": ptype, "simplified": False,
                "avatarUrls": {s: f"{view.base}/secure/projectavatar?size={s}&pid={pid}"
                               for s in ("48x48", "24x24", "16x16", "32x32")}}

    def _component_json(self, name: str, view: _View) -> dict[str, Any]:
        cid = self._components[name]
        return {"self": f"{view.base}/rest/api/{view.v}/component/{cid}", "id": cid, "name": name}

    def _priority_json(self, priority: int, view: _View) -> dict[str, Any]:
        return {"self": f"{view.base}/rest/api/{view.v}/priority/{priority}",
                "iconUrl": f"{view.base}/images/icons/priorities/{PRIORITIES[priority].lower()}.svg",
                "name": PRIORITIES[priority], "id": str(priority)}

    def _issuetype_json(self, name: str, view: _View) -> dict[str, Any]:
        tid = ISSUE_TYPES[name]
        return {"self": f"{view.base}/rest/api/{view.v}/issuetype/{tid}", "id": tid, "description": "",
                "iconUrl": f"{view.base}/secure/viewavatar?size=medium&avatarId=10553&avatarType=issuetype",
                "name": name, "subtask": False, "hierarchyLevel": 0}

    def _resolution_json(self, name: str, view: _View) -> dict[str, Any]:
        rid = RESOLUTIONS[name]
        return {"self": f"{view.base}/rest/api/{view.v}/resolution/{rid}", "id": rid, "description": "",
                "name": name}

    def _link_type_json(self, t: _LinkType, view: _View) -> dict[str, Any]:
        return {"id": t.id, "name": t.name, "inward": t.inward, "outward": t.outward,
                "self": f"{view.base}/rest/api/{view.v}/issueLinkType/{t.id}"}

    def _links_json(self, issue: _Issue, view: _View) -> list[dict[str, Any]]:
        out = []
        for link in issue.links or []:
            other, side = (link.outward, "outwardIssue") if link.inward is issue else (link.inward, "inwardIssue")
            out.append({"id": str(link.id), "self": f"{view.base}/rest/api/{view.v}/issueLink/{link.id}",
                        "type": self._link_type_json(link.type, view),
                        side: {"id": str(other.num), "key": other.key,
                               "self": f"{view.base}/rest/api/{view.v}/issue/{other.num}",
                               "fields": {"summary": other.summary, "status": self._status_json(other.status, view),
                                          "priority": self._priority_json(other.priority, view),
                                          "issuetype": self._issuetype_json(other.issuetype, view)}}})
        return out

    def _comment_json(self, issue: _Issue, c: _Comment, view: _View) -> dict[str, Any]:
        author = _author(self._user_json(c.author, view))
        out: dict[str, Any] = {
            "self": f"{view.base}/rest/api/{view.v}/issue/{issue.num}/comment/{c.id}", "id": str(c.id),
            "author": author, "body": _adf(c.body) if view.v == "3" else c.body, "updateAuthor": author,
            "created": view.clock.format(c.created_ms), "updated": view.clock.format(c.created_ms),
            "jsdPublic": c.public,
        }
        if c.visibility:
            out["visibility"] = c.visibility
        return out

    def _comments_page(self, issue: _Issue, view: _View) -> dict[str, Any]:
        comments = issue.comments or []
        return {"comments": [self._comment_json(issue, c, view) for c in comments],
                "self": f"{view.base}/rest/api/{view.v}/issue/{issue.num}/comment", "maxResults": len(comments),
                "total": len(comments), "startAt": 0}

    def _request_type_json(self, issue: _Issue, view: _View) -> dict[str, Any] | None:
        if issue.request_type is None:
            return None
        rid, _ = REQUEST_TYPES[issue.request_type]
        status = STATUSES[issue.status]
        return {
            "_links": {"jiraRest": f"{view.base}/rest/api/2/issue/{issue.num}",
                       "web": f"{view.base}/servicedesk/customer/portal/1/{issue.key}",
                       "self": f"{view.base}/rest/servicedeskapi/request/{issue.num}"},
            "requestType": {"_links": {"self": f"{view.base}/rest/servicedeskapi/servicedesk/1/requesttype/{rid}"},
                            "id": rid, "name": issue.request_type, "description": "", "helpText": "",
                            "issueTypeId": ISSUE_TYPES[REQUEST_TYPES[issue.request_type][1]],
                            "serviceDeskId": "1", "portalId": "1", "groupIds": []},
            "currentStatus": {"status": status.name, "statusCategory": status.category.upper(),
                              "statusDate": _date_dto(issue.status_changed_ms, view.tz)},
        }

    # ------------------------------------------------------------------ edits

    def _edit_issue(self, request: Request, issue: _Issue, view: _View, admin: bool) -> tuple[int, Any]:
        notify = _bool_arg(request.args.get("notifyUsers"), True)
        if not notify and not admin:
            # Observed on Cloud: the whole edit is rejected, not just the flag ignored.
            raise _errors(403, NOTIFY_NEEDS_ADMIN)
        body = _json_body(request)
        if not isinstance(body, dict):
            raise _errors(400, "Request body must be a JSON object.")
        changes, errors = self._validate(self._edit_operations(body), view)
        if errors:
            raise _errors(400, errors=errors)
        changed = self._apply(issue, changes)
        if changed:
            issue.updated_ms = self.now_ms()
            self._touch(*changed, "updated")
            self._notify(issue, "issue_updated", customer=False, watchers=notify)
        if _bool_arg(request.args.get("returnIssue"), False):
            return 200, self._issue_json(issue, self._all_fields(), view)
        return 204, None

    def _edit_operations(self, body: dict[str, Any]) -> list[tuple[str, str, Any]]:
        ops: list[tuple[str, str, Any]] = []
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise _errors(400, "'fields' and 'update' must be JSON objects.")
        for fid, value in fields.items():
            ops.append((fid, "set", value))
        for fid, items in update.items():
            if not isinstance(items, list):
                raise _errors(400, f"Field '{fid}': update operations must be a list.")
            for item in items:
                if not isinstance(item, dict) or len(item) != 1:
                    raise _errors(400, f"Field '{fid}': each update operation must have exactly one verb.")
                ((verb, value),) = item.items()
                ops.append((fid, verb, value))
        return ops

    def _validate(self, operations: list[tuple[str, str, Any]],
                  view: _View) -> tuple[list[tuple[_FieldDef, str, Any]], dict[str, str]]:
        """Check every operation; return normalised changes or per-field errors (applied all or nothing)."""
        changes: list[tuple[_FieldDef, str, Any]] = []
        errors: dict[str, str] = {}
        for fid, verb, value in operations:
            fd = self._fields.get(fid)
            if fd is None or not fd.edit_ops:
                errors[fid] = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            if verb not in fd.edit_ops:
                errors[fid] = f"Field '{fid}' does not support operation '{verb}'."  # wording unverified
                continue
            try:
                changes.append((fd, verb, self._normalise(fd, verb, value, view)))
            except ValueError as exc:
                errors[fid] = str(exc)
        return changes, errors

    def _normalise(self, fd: _FieldDef, verb: str, value: Any, view: _View) -> Any:
        role = fd.role
        if role == "summary":
            if not isinstance(value, str) or not value.strip():
                raise ValueError("You must specify a summary of the issue.")
            if len(value) > 255:
                raise ValueError("Summary must be less than 255 characters.")
            return value
        if role == "description":
            if value is None:
                return None
            if view.v == "3":
                if not _is_adf(value):
                    raise ValueError("Operation value must be an Atlassian Document (see the Atlassian "
                                     "Document Format)")
                return _adf_text(value)
            if not isinstance(value, str):
                raise ValueError("Operation value must be a string")
            return value
        if role == "priority":
            return self._priority_value(value)
        if role == "labels":
            items = value if verb == "set" else [value]
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise ValueError("Operation value must be a string")
            for label in items:
                if " " in label:
                    raise ValueError(f"The label '{label}' contains spaces which is invalid.")
            return items
        if role == "components":
            items = value if verb == "set" else [value]
            if not isinstance(items, list):
                raise ValueError("Operation value must be an array of components")
            return [self._component_value(x) for x in items]
        if role == "user":
            return self._user_value(fd, value)
        if role in ("support_group", "category", "extra_select"):
            return self._select_value(fd, value)
        if role in ("language", "extra_text"):
            if value is not None and not isinstance(value, str):
                raise ValueError("Operation value must be a string")
            if value is not None and len(value) > 255:
                raise ValueError("The entered text is too long. It exceeds the allowed limit of 255 characters.")
            return value
        if role == "extra_number":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError("Operation value must be a number")
            return value
        if role == "satisfaction":
            if value is None:
                return None
            rating = value.get("rating") if isinstance(value, dict) else None
            if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
                raise ValueError("The rating must be an integer between 1 and 5.")  # wording unverified
            return rating
        raise ValueError(f"Field '{fd.id}' cannot be set. It is not on the appropriate screen, or unknown.")

    def _priority_value(self, value: Any) -> int:
        if isinstance(value, dict):
            if "id" in value and str(value["id"]).isdigit() and int(value["id"]) in PRIORITIES:
                return int(value["id"])
            names = {v.lower(): k for k, v in PRIORITIES.items()}
            if "name" in value and str(value["name"]).lower() in names:
                return names[str(value["name"]).lower()]
        raise ValueError("Specify the Priority (id or name) in the proper format")

    def _component_value(self, value: Any) -> str:
        if isinstance(value, dict):
            if "name" in value and value["name"] in self._components:
                return str(value["name"])
            by_id = {v: k for k, v in self._components.items()}
            if "id" in value and str(value["id"]) in by_id:
                return by_id[str(value["id"])]
            if "name" in value:
                raise ValueError(f"Component name '{value['name']}' is not valid")
            raise ValueError(f"Component with id '{value.get('id')}' does not exist.")
        raise ValueError("expected Object containing a 'name' property")

    def _user_value(self, fd: _FieldDef, value: Any) -> _User | None:
        if value is None:
            if fd.id == "reporter":
                raise ValueError("Reporter is required.")
            return None
        ident = None
        if isinstance(value, dict):
            ident = value.get("accountId") if self.cloud else (value.get("name") or value.get("key"))
        user = None
        if isinstance(ident, str):
            candidates = [self.me, *self._users.values()]
            user = next((u for u in candidates if ident in ((u.account_id,) if self.cloud else (u.name, u.key))),
                        None)
        if user is None:
            raise ValueError("Specified user does not exist or you do not have required permissions"
                             if self.cloud else f"User '{ident}' does not exist.")
        if fd.id == "assignee" and not user.agent:
            raise ValueError(f"User '{user.account_id if self.cloud else user.name}' cannot be assigned issues.")
        return user

    def _select_value(self, fd: _FieldDef, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, dict):
            if "id" in value:
                found = fd.options.get(str(value["id"]))
                if found is None:
                    raise ValueError(f"Option id '{value['id']}' is not valid")
                return found
            if "value" in value:
                if value["value"] not in fd.options.values():
                    raise ValueError(f"Option value '{value['value']}' is not valid")
                return str(value["value"])
        raise ValueError(f"Specify a valid 'id' or 'name' for {fd.name}")

    def _apply(self, issue: _Issue, changes: list[tuple[_FieldDef, str, Any]]) -> list[str]:
        changed: list[str] = []
        for fd, verb, value in changes:
            before = self._current(issue, fd)
            after = value
            if fd.role in ("labels", "components"):
                current = list(before)
                if verb == "set":
                    after = list(dict.fromkeys(value))
                elif verb == "add":
                    after = current + [v for v in value if v not in current]
                else:
                    after = [v for v in current if v not in value]
            if after != before:
                self._store(issue, fd, after)
                changed.append(fd.id)
        return changed

    def _current(self, issue: _Issue, fd: _FieldDef) -> Any:
        role = fd.role
        if role == "satisfaction":
            return issue.feedback.rating if issue.feedback else None
        if role.startswith("extra_"):
            return (issue.custom or {}).get(fd.id)
        return getattr(issue, fd.id if role == "user" else role)  # other roles are _Issue attributes

    def _store(self, issue: _Issue, fd: _FieldDef, value: Any) -> None:
        role = fd.role
        if role == "satisfaction":
            issue.feedback = _Feedback(value, None, self.now_ms()) if value is not None else None
            self._touch(self._role_field("satisfaction_date"))
        elif role.startswith("extra_"):
            if issue.custom is None:
                issue.custom = {}
            issue.custom[fd.id] = value
        else:
            setattr(issue, fd.id if role == "user" else role, value)

    def _editmeta(self, issue: _Issue, view: _View) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for fd in self._fields.values():
            if not fd.edit_ops:
                continue
            meta: dict[str, Any] = {"required": fd.id == "summary", "schema": fd.schema, "name": fd.name,
                                    "key": fd.id, "operations": list(fd.edit_ops)}
            if fd.role == "priority":
                meta["allowedValues"] = [self._priority_json(p, view) for p in PRIORITIES]
            elif fd.role == "components":
                meta["allowedValues"] = [self._component_json(c, view) for c in self._components]
            elif fd.options:
                meta["allowedValues"] = [{"self": f"{view.base}/rest/api/{view.v}/customFieldOption/{oid}",
                                          "value": value, "id": oid} for oid, value in fd.options.items()]
            fields[fd.id] = meta
        return {"fields": fields}

    # ------------------------------------------------------------------ create

    def _create_issue(self, request: Request, view: _View) -> tuple[int, Any]:
        body = _json_body(request)
        created, errors = self._create_one(body, view)
        if created is None:
            raise _errors(400, errors=errors)
        return 201, self._created_json(created, view)

    def _create_bulk(self, request: Request, view: _View) -> tuple[int, Any]:
        body = _json_body(request)
        updates = body.get("issueUpdates") if isinstance(body, dict) else None
        if not isinstance(updates, list):
            raise _errors(400, "issueUpdates must be a list.")
        if len(updates) > 50:
            raise _errors(400, "The number of issues to create in bulk cannot exceed 50.")  # wording unverified
        issues, failures = [], []
        for n, item in enumerate(updates):
            created, errors = self._create_one(item, view)
            if created is None:
                failures.append({"status": 400, "elementErrors": {"errorMessages": [], "errors": errors},
                                 "failedElementNumber": n})
            else:
                issues.append(self._created_json(created, view))
        return (201 if issues else 400), {"issues": issues, "errors": failures}

    def _created_json(self, issue: _Issue, view: _View) -> dict[str, Any]:
        return {"id": str(issue.num), "key": issue.key, "self": f"{view.base}/rest/api/{view.v}/issue/{issue.num}"}

    def _create_one(self, body: Any, view: _View) -> tuple[_Issue | None, dict[str, str]]:
        if not isinstance(body, dict):
            return None, {"issue": "The issue must be a JSON object."}
        fields = dict(body.get("fields") or {})
        errors: dict[str, str] = {}
        project = self._project_value(fields.pop("project", None))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        issuetype = self._issuetype_value(fields.pop("issuetype", None))
        if issuetype is None:
            errors["issuetype"] = "Specify a valid issue type"
        if "summary" not in fields:
            errors["summary"] = "You must specify a summary of the issue."
        try:
            operations = self._edit_operations({"fields": fields, "update": body.get("update") or {}})
        except _HTTPError:
            return None, {"update": "Invalid update operations."}
        changes, field_errors = self._validate(operations, view)
        errors.update(field_errors)
        if errors or project is None or issuetype is None:
            return None, errors
        ms = self.now_ms()
        issue = self._new_issue(project, "", issuetype, ms, view.user)
        if self._is_service_project(project):
            issue.request_type = next((n for n, (_, t) in REQUEST_TYPES.items() if t == issuetype), "Get IT help")
        self._apply(issue, changes)
        self._touch(*(fd.id for fd, _, _ in changes))
        return issue, {}

    def _project_value(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        text = str(value.get("key") or value.get("id") or "")
        key = self._resolve_project(text) if text else None
        return key if key is not None and (text.upper() == key or text == self._projects[key][0]) else None

    def _issuetype_value(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        if "id" in value:
            return next((n for n, i in ISSUE_TYPES.items() if i == str(value["id"])), None)
        name = str(value.get("name", ""))
        return next((n for n in ISSUE_TYPES if n.lower() == name.lower()), None)

    # ------------------------------------------------------------------ links

    def _create_link(self, request: Request, view: _View) -> tuple[int, Any]:
        body = _json_body(request)
        if not isinstance(body, dict) or not all(k in body for k in ("type", "inwardIssue", "outwardIssue")):
            raise _errors(400, "The issue link type, inward issue and outward issue are required.")
        wanted = body["type"] if isinstance(body["type"], dict) else {}
        link_type = next((t for t in LINK_TYPES if t.id == str(wanted.get("id")) or t.name == wanted.get("name")),
                         None)
        if link_type is None:
            raise _errors(404, f"No issue link type with name '{wanted.get('name')}' found.")
        inward = self._linked(body["inwardIssue"])
        outward = self._linked(body["outwardIssue"])
        comment = body.get("comment")
        comment_text = self._comment_text(comment.get("body"), view) if isinstance(comment, dict) else None
        visibility = comment.get("visibility") if isinstance(comment, dict) else None
        visibility = visibility if isinstance(visibility, dict) else None
        duplicate = any(link.type is link_type and link.inward is inward and link.outward is outward
                        for link in inward.links or [])
        if not duplicate:
            # A repeated request still answers 201 and creates nothing new (documented).
            link = _Link(self._next_link_id, link_type, inward, outward)
            self._next_link_id += 1
            ms = self.now_ms()
            for issue in (inward, outward):
                issue.links = [*(issue.links or []), link]
                issue.updated_ms = ms
            self._touch("issuelinks", "updated")
        if comment_text is not None:
            # "optionally add a comment to the from (outward) issue"; added for duplicates too (spec).
            self._add_comment(outward, view.user, comment_text, public=visibility is None, visibility=visibility)
        return 201, None

    def _linked(self, ref: Any) -> _Issue:
        if not isinstance(ref, dict) or not (ref.get("key") or ref.get("id")):
            raise _errors(400, "An issue key or id is required.")
        return self._get_issue(str(ref.get("key") or ref.get("id")))

    # ------------------------------------------------------------------ platform comments

    def _list_comments(self, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
        comments = issue.comments or []
        start = max(0, _int_arg(request.args.get("startAt"), "startAt", 0))
        limit = min(max(0, _int_arg(request.args.get("maxResults"), "maxResults", 5000)), 5000)
        page = comments[start:start + limit]
        return {"startAt": start, "maxResults": limit, "total": len(comments),
                "comments": [self._comment_json(issue, c, view) for c in page]}

    def _add_platform_comment(self, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
        body = _json_body(request)
        if not isinstance(body, dict):
            raise _errors(400, "Request body must be a JSON object.")
        text = self._comment_text(body.get("body"), view)
        properties = {str(p.get("key")): p.get("value") for p in body.get("properties") or []
                      if isinstance(p, dict)}
        internal = bool((properties.get("sd.public.comment") or {}).get("internal"))
        visibility = body.get("visibility") if isinstance(body.get("visibility"), dict) else None
        comment = self._add_comment(issue, view.user, text, public=not internal and visibility is None,
                                    visibility=visibility, properties=properties)
        return self._comment_json(issue, comment, view)

    def _comment_text(self, raw: Any, view: _View) -> str:
        """A comment body as plain text: ADF in v3, a (wiki markup) string in v2."""
        if view.v == "3":
            if not isinstance(raw, dict) or not _is_adf(raw):
                raise _errors(400, errors={"comment": "Comment body is not valid!"})
            text = _adf_text(raw)
        else:
            if not isinstance(raw, str):
                raise _errors(400, errors={"comment": "Comment body is not valid!"})
            text = raw
        if not text.strip():
            raise _errors(400, errors={"comment": "Comment body can not be empty!"})
        return text

    def _add_comment(self, issue: _Issue, author: _User, text: str, *, public: bool,
                     visibility: dict[str, Any] | None = None, properties: dict[str, Any] | None = None) -> _Comment:
        ms = self.now_ms()
        comment = _Comment(self._next_comment_id, author, text, ms, public, visibility, dict(properties or {}))
        self._next_comment_id += 1
        issue.comments = [*(issue.comments or []), comment]
        issue.updated_ms = ms
        self._touch("comment", "updated")
        # JSM emails the customer on "Public comment added" unless they wrote it themselves.
        self._notify(issue, "comment_added", customer=public and author is not issue.reporter, watchers=True)
        return comment

    def _notify(self, issue: _Issue, event: str, *, customer: bool, watchers: bool) -> None:
        if customer or watchers:
            self.notifications.append(Notification(issue.key, event, customer, watchers, self.clock()))

    # ------------------------------------------------------------------ issue properties

    def _property_routes(self, request: Request, issue: _Issue, rest: list[str]) -> tuple[int, Any]:
        stored = issue.properties or {}
        base = request.host_url.rstrip("/")
        if not rest and request.method == "GET":
            return 200, {"keys": [{"key": k, "self": f"{base}/rest/api/2/issue/{issue.num}/properties/{k}"}
                                  for k in stored]}
        if len(rest) != 1:
            raise _HTTPError(404, {"message": f"null for uri: {request.url}", "status-code": 404})
        key = rest[0]
        if request.method == "GET":
            if key not in stored:
                raise _errors(404, f"The property with key '{key}' does not exist.")
            return 200, {"key": key, "value": stored[key]}
        if request.method == "PUT":
            existed = key in stored
            issue.properties = {**stored, key: _json_body(request)}
            return (200 if existed else 201), None
        if request.method == "DELETE":
            if key not in stored:
                raise _errors(404, f"The property with key '{key}' does not exist.")
            issue.properties = {k: v for k, v in stored.items() if k != key}
            return 204, None
        raise _HTTPError(405, None)

    # ------------------------------------------------------------------ JSM (servicedeskapi)

    def _servicedesk(self, request: Request, rest: list[str], view: _View) -> tuple[int, Any]:
        if len(rest) != 3 or rest[0] != "request":
            raise _HTTPError(404, {"message": f"null for uri: {request.url}", "status-code": 404})
        _, id_or_key, resource = rest
        if resource == "feedback" and request.headers.get("X-ExperimentalApi", "").lower() != "opt-in":
            raise _jsm_error(412, EXPERIMENTAL_OPT_IN, "sd.api.experimental.optin.required")
        issue = self._by_key.get(id_or_key.upper()) or (
            self._by_num.get(int(id_or_key)) if id_or_key.isdigit() else None)
        if issue is None or not self._is_service_project(issue.project):
            raise _jsm_error(404, "The request could not be found or you do not have permission to view it.",
                             "sd.request.error.notfound")
        method = request.method
        if resource == "comment" and method == "GET":
            return 200, self._jsm_comments(request, issue, view)
        if resource == "comment" and method == "POST":
            return 201, self._jsm_add_comment(request, issue, view)
        if resource == "feedback" and method in ("GET", "POST", "DELETE"):
            return self._feedback(request, issue, view)
        raise _HTTPError(405, None)

    def _jsm_user(self, user: _User, view: _View) -> dict[str, Any]:
        out: dict[str, Any] = {"displayName": user.display_name, "active": True, "timeZone": user.timezone,
                               "_links": {"jiraRest": f"{view.base}/rest/api/2/user?accountId={user.account_id}",
                                          "avatarUrls": {"48x48": f"{view.base}/secure/useravatar?size=48x48"},
                                          "self": f"{view.base}/rest/api/2/user?accountId={user.account_id}"}}
        if self.cloud:
            out["accountId"] = user.account_id
        else:
            out["name"], out["key"] = user.name, user.key
        if not (self.cloud and user.email_hidden):
            out["emailAddress"] = user.email
        return out

    def _jsm_comment_json(self, issue: _Issue, c: _Comment, view: _View) -> dict[str, Any]:
        return {"_expands": ["attachment", "renderedBody"], "id": str(c.id), "body": c.body, "public": c.public,
                "author": self._jsm_user(c.author, view), "created": _date_dto(c.created_ms, view.tz),
                "_links": {"self": f"{view.base}/rest/servicedeskapi/request/{issue.num}/comment/{c.id}"}}

    def _jsm_comments(self, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
        public = _bool_arg(request.args.get("public"), True)
        internal = _bool_arg(request.args.get("internal"), True)
        start = max(0, _int_arg(request.args.get("start"), "start", 0))
        limit = max(1, min(_int_arg(request.args.get("limit"), "limit", 50), 100))
        wanted = [c for c in issue.comments or [] if (public and c.public) or (internal and not c.public)]
        page = wanted[start:start + limit]
        base = f"{view.base}/rest/servicedeskapi/request/{issue.num}/comment"
        links: dict[str, str] = {"base": f"{view.base}/rest/servicedeskapi", "context": "",
                                 "self": f"{base}?start={start}&limit={limit}"}
        if start + limit < len(wanted):
            links["next"] = f"{base}?start={start + limit}&limit={limit}"
        if start > 0:
            links["prev"] = f"{base}?start={max(0, start - limit)}&limit={limit}"
        return {"_expands": [], "size": len(page), "start": start, "limit": limit,
                "isLastPage": start + limit >= len(wanted), "_links": links,
                "values": [self._jsm_comment_json(issue, c, view) for c in page]}

    def _jsm_add_comment(self, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
        body = _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"].strip():
            raise _jsm_error(400, "The comment body is required.", "sd.comment.body.required")
        if not isinstance(body.get("public"), bool):
            raise _jsm_error(400, "The 'public' field is required.", "sd.comment.public.required")
        comment = self._add_comment(issue, view.user, body["body"], public=body["public"])
        return self._jsm_comment_json(issue, comment, view)

    def _feedback(self, request: Request, issue: _Issue, view: _View) -> tuple[int, Any]:
        if request.method == "GET":
            if issue.feedback is None:
                raise _jsm_error(404, "No feedback was found for this request.", "sd.feedback.notfound")
            return 200, _feedback_json(issue.feedback)
        if view.user is not issue.reporter:
            raise _jsm_error(403, "Only the reporter of the request can give or delete feedback.",
                             "sd.feedback.reporter.only")
        if request.method == "DELETE":
            if issue.feedback is None:
                raise _jsm_error(404, "No feedback was found for this request.", "sd.feedback.notfound")
            self._set_feedback(issue, None)
            return 204, None
        body = _json_body(request)
        rating = body.get("rating") if isinstance(body, dict) else None
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise _jsm_error(400, "The rating must be an integer between 1 and 5.", "sd.feedback.rating.invalid")
        comment = body.get("comment")
        text = comment.get("body") if isinstance(comment, dict) else None
        self._set_feedback(issue, _Feedback(rating, text if isinstance(text, str) else None, self.now_ms()))
        return 201, _feedback_json(issue.feedback)

    def _set_feedback(self, issue: _Issue, feedback: _Feedback | None) -> None:
        issue.feedback = feedback
        issue.updated_ms = self.now_ms()
        self._touch(self._role_field("satisfaction"), self._role_field("satisfaction_date"), "updated")
        self._notify(issue, "feedback_added", customer=False, watchers=True)


# --------------------------------------------------------------------------------------------- encoders

_Encoder = Callable[["JiraSimulator", _Issue, _View, _FieldDef], str]


def _enc_summary(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return encode_basestring(i.summary)


def _enc_description(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(_adf(i.description) if view.v == "3" else i.description)


def _enc_issuetype(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.frags.get(("issuetype", i.issuetype)) or sim._frag(
        view, ("issuetype", i.issuetype), lambda: sim._issuetype_json(i.issuetype, view))


def _enc_project(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.frags.get(("project", i.project)) or sim._frag(
        view, ("project", i.project), lambda: sim._project_json(i.project, view))


def _enc_status(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.frags.get(("status", i.status)) or sim._frag(
        view, ("status", i.status), lambda: sim._status_json(i.status, view))


def _enc_resolution(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    name = i.resolution
    if name is None:
        return "null"
    return view.frags.get(("resolution", name)) or sim._frag(
        view, ("resolution", name), lambda: sim._resolution_json(name, view))


_NUM = attrgetter("num")


def _default_order(i: _Issue) -> tuple[int, int]:
    """Without ORDER BY: newest key first (unverified; the connector always orders explicitly)."""
    return (-i.seq, i.num)


def _enc_resolved(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.clock.quoted(i.resolved_ms)


def _enc_created(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.clock.quoted(i.created_ms)


def _enc_updated(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.clock.quoted(i.updated_ms)


def _enc_status_changed(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.clock.quoted(i.status_changed_ms)


_DATE_ENCODERS: dict[str, _Encoder] = {"resolutiondate": _enc_resolved, "created": _enc_created,
                                       "updated": _enc_updated, "statuscategorychangedate": _enc_status_changed}


def _enc_priority(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.frags.get(("priority", i.priority)) or sim._frag(
        view, ("priority", i.priority), lambda: sim._priority_json(i.priority, view))


def _enc_components(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return "[" + ",".join(_component_frag(sim, c, view) for c in i.components) + "]"


def _component_frag(sim: JiraSimulator, name: str, view: _View) -> str:
    return view.frags.get(("component", name)) or sim._frag(
        view, ("component", name), lambda: sim._component_json(name, view))


def _enc_labels(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(i.labels)


def _enc_user(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return sim._user_frag(getattr(i, fd.id), view)


def _enc_links(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(sim._links_json(i, view)) if i.links else "[]"


def _enc_comment(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(sim._comments_page(i, view))


def _enc_select(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return sim._option_frag(fd, getattr(i, fd.role), view)


def _enc_language(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return "null" if i.language is None else encode_basestring(i.language)


def _enc_request_type(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(sim._request_type_json(i, view))


def _enc_satisfaction(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    if i.feedback is None:
        return "null"
    return (f'{{"self":"{view.base}/rest/servicedeskapi/request/{i.num}/feedback",'
            f'"rating":{i.feedback.rating}}}')


def _enc_satisfaction_date(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.clock.quoted(i.feedback.at_ms if i.feedback else None)


def _encoder(fd: _FieldDef) -> _Encoder:
    return _DATE_ENCODERS[fd.id] if fd.role == "date" else _ENCODERS[fd.role]


def _enc_extra(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    value = (i.custom or {}).get(fd.id)
    return sim._option_frag(fd, value, view) if fd.role == "extra_select" else _dumps(value)


_ENCODERS: dict[str, _Encoder] = {
    "summary": _enc_summary, "description": _enc_description, "issuetype": _enc_issuetype,
    "project": _enc_project, "status": _enc_status, "resolution": _enc_resolution,
    "priority": _enc_priority, "components": _enc_components, "labels": _enc_labels, "user": _enc_user,
    "issuelinks": _enc_links, "comment": _enc_comment, "support_group": _enc_select, "category": _enc_select,
    "language": _enc_language, "request_type": _enc_request_type, "satisfaction": _enc_satisfaction,
    "satisfaction_date": _enc_satisfaction_date, "extra_number": _enc_extra, "extra_text": _enc_extra,
    "extra_select": _enc_extra,
}


# --------------------------------------------------------------------------------------------- helpers

def _issue_text(i: _Issue) -> str:
    parts = [i.summary, i.description or "", *(c.body for c in i.comments or [])]
    return " ".join(parts).lower()


def _author(user_json: dict[str, Any]) -> dict[str, Any]:
    """UserDetails (comment authors) has no locale/groups; drop a hidden (null) email rather than send null."""
    return {k: v for k, v in user_json.items() if v is not None}


def _date_dto(ms: int, tz: ZoneInfo) -> dict[str, Any]:
    local = datetime.fromtimestamp(ms // 1000, tz)
    jira_ts = _format_ts(ms, tz)
    return {"iso8601": jira_ts[:19] + jira_ts[23:], "jira": jira_ts,
            "friendly": local.strftime("%d/%b/%y %I:%M %p"), "epochMillis": ms}


def _feedback_json(feedback: _Feedback | None) -> dict[str, Any]:
    if feedback is None:
        return {}
    out: dict[str, Any] = {"type": "csat", "rating": feedback.rating}
    if feedback.comment is not None:
        out["comment"] = {"body": feedback.comment}
    return out


def _json_body(request: Request) -> Any:
    data = request.get_data(cache=True)
    if not data.strip():
        raise _errors(400, "No content to map due to end-of-input")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise _errors(400, f"Unexpected character in the request body: {exc}") from None


def _jql_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def _tuples(value: Any) -> Any:
    """JSON turned sort-key tuples into lists; lists and tuples never compare in Python."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def make_jira_server(sim: JiraSimulator, *, host: str = "127.0.0.1", port: int = 0,
                     steady: Steady | None = None, tls: bool = False) -> SandboxServer:
    """Serve `sim` over real HTTP with Jira-shaped error bodies for injected faults (not started)."""
    return SandboxServer(sim, host=host, port=port, steady=steady, error_body=jira_error_body,
                         ssl_context=sandbox_tls() if tls else None)
