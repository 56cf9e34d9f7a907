"""The Jira site's data: the records the simulator keeps (issues, users, comments, links, CSAT feedback,
field definitions), the notifications it would have emailed, and the fixed catalogues of the simulated
site (statuses, resolutions, issue and request types, priorities, link types and the per-mode custom
field ids). Nothing here knows about HTTP or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Mode = Literal["cloud", "datacenter"]

# Per-site ids: a real connector must look them up by schema.custom, never hard-code them.
CUSTOM_FIELD_IDS: dict[str, dict[str, int]] = {
    "cloud": {"Request Type": 10010, "Satisfaction": 10033, "Satisfaction date": 10034,
              "Support group": 10050, "Category": 10051, "Request language": 10052},
    "datacenter": {"Request Type": 10100, "Satisfaction": 10303, "Satisfaction date": 10304,
                   "Support group": 11800, "Category": 11801, "Request language": 11802},
}
_FIRST_EXTRA_FIELD_ID = {"cloud": 10060, "datacenter": 11900}

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
                               "Change": "10004", "Task": "10005", "Sub-task": "10006", "Subtask": "10007"}
# Sub-task types sit one level below the standard ones (hierarchyLevel -1): their issues need a parent
# of a standard type in their own project. Newer Cloud projects name theirs "Subtask".
SUBTASK_TYPES: frozenset[str] = frozenset({"Sub-task", "Subtask"})
# A project's issue type scheme unless a test says otherwise: the classic one, with "Sub-task".
DEFAULT_ISSUE_TYPES: frozenset[str] = frozenset(ISSUE_TYPES) - {"Subtask"}
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
    parent: _Issue | None = None  # set at create for a sub-task, never changed
    subtasks: list[_Issue] | None = None

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
    searchable: bool = True  # a custom field created without a searcherKey is not (createCustomField)
    optional: bool = False  # left out of the issue JSON when empty (`parent` of an issue without one)
