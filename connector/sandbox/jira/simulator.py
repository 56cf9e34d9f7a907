"""`JiraSimulator`: the in-memory site and its Python API. It owns all state (projects, issues and
their indexes, users and credentials, the field catalogue, id counters, per-field versions and the
search, schema, fragment and plan caches), turns a synthetic `World` into issues, and offers the
methods tests and the demo use to shape the site (add projects, fields, issues, credentials; resolve,
reopen, record feedback). The sibling modules hold the behaviour as functions of the simulator and
read and update this state directly; its `_` attributes are private to the package, not to the class."""

from __future__ import annotations

import json
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from connector.sandbox import jql
from connector.sandbox.jira.app import _handle
from connector.sandbox.jira.encode import _Encoder, _issue_json
from connector.sandbox.jira.fields import CREATABLE_TYPES, _custom, _define_fields
from connector.sandbox.jira.model import (
    _CLOSE_CODE_RESOLUTION,
    _FIRST_EXTRA_FIELD_ID,
    _STATE_STATUS,
    _TITLE_REQUEST_TYPE,
    DEFAULT_ISSUE_TYPES,
    ISSUE_TYPES,
    PRIORITIES,
    REQUEST_TYPES,
    RESOLUTIONS,
    STATUSES,
    SUBTASK_TYPES,
    Mode,
    Notification,
    _Feedback,
    _FieldDef,
    _Issue,
    _User,
)
from connector.sandbox.jira.render import _ms, _view
from connector.sandbox.jira.web import ISSUE_NOT_FOUND, _errors
from connector.sandbox.world import Person, Ticket, World, stable_hex


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
        admin: whether the API user administers the project (`notifyUsers=false` is honoured) and
            Jira (custom fields may be created through `POST /rest/api/{2,3}/field`).
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
        self._project_types: dict[str, frozenset[str]] = {}  # key -> its issue type scheme's types
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
        _define_fields(self)
        self._load(world)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return _handle(self, environ, start_response)

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

    def add_project(self, key: str, name: str, *, project_type: str = "software",
                    issue_types: Iterable[str] | None = None) -> None:
        """Add another project (e.g. a CSI register); issues are created in it through the API. Its
        issue type scheme has `issue_types` (default: the classic scheme, Sub-task included)."""
        with self._lock:
            self._projects[key.upper()] = (str(10000 + len(self._projects)), name, project_type)
            self._next_seq.setdefault(key.upper(), 1)
            self._schema_cache = None
        self.set_issue_types(key, DEFAULT_ISSUE_TYPES if issue_types is None else issue_types)

    def set_issue_types(self, project: str, names: Iterable[str]) -> None:
        """What an admin does in the project's issue type scheme: only these types may be created there
        (e.g. without "Sub-task", as some service projects are set up)."""
        wanted = frozenset(names)
        if project.upper() not in self._projects or not wanted <= set(ISSUE_TYPES):
            raise ValueError(f"unknown project {project!r} or issue types {sorted(wanted - set(ISSUE_TYPES))}; "
                             f"types: {sorted(ISSUE_TYPES)}")
        with self._lock:
            self._project_types[project.upper()] = wanted

    def add_field(self, name: str, kind: Literal["number", "text", "select", "datetime"] = "number",
                  options: Sequence[str] = (), *, on_screen: bool = True) -> str:
        """Add a custom field (say, our own score field) and return its id; `on_screen=False` leaves
        it off the edit screen, as a field created through the API is (see `add_to_screen`)."""
        custom, (_, schema_type, suffix, _) = next(
            (key, spec) for key, spec in CREATABLE_TYPES.items() if spec[0] == kind)
        with self._lock:
            fd = _custom(self, name, self._next_custom_id, f"extra_{kind}", custom, schema_type, suffix,
                         edit_ops=("set",) if on_screen else (), options=options)
            self._next_custom_id += 1
            self._schema_cache = None
            self._plans.clear()
            return fd.id

    def add_to_screen(self, field_id: str) -> None:
        """What an admin does after creating a field: put it on the edit screen (editmeta, edits)."""
        with self._lock:
            fd = self._fields[field_id]
            if fd.custom_id is None or not fd.role.startswith("extra_"):
                raise ValueError(f"{field_id} is not a field added with add_field or the API")
            fd.edit_ops = ("set",)

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
            view = _view(self, "http://sandbox", "2", self.me)
            issue = self._get_issue(key)
            return dict(json.loads(_issue_json(self, issue, self._all_fields(), view)))

    def labelled(self, label: str) -> list[str]:
        """Keys of the issues carrying `label` (e.g. the connector's follow-ups)."""
        with self._lock:
            return [i.key for i in self._issues if label in i.labels]

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
                  created: datetime | None = None, resolved: datetime | None = None,
                  parent: str | None = None) -> str:
        """Create an issue directly (reporter defaults to the API user); returns its key. With `parent`
        (a key) it is a sub-task of that issue; `issuetype` must then be a sub-task type."""
        project_key = (project or self.project).upper()
        if project_key not in self._projects or issuetype not in ISSUE_TYPES or priority not in PRIORITIES:
            raise ValueError(f"unknown project {project_key!r}, issue type {issuetype!r} or priority {priority!r}")
        if request_type is not None and request_type not in REQUEST_TYPES:
            raise ValueError(f"unknown request type {request_type!r}; one of {sorted(REQUEST_TYPES)}")
        if (parent is not None) != (issuetype in SUBTASK_TYPES):
            raise ValueError("a sub-task type needs a parent, and only a sub-task type takes one")
        with self._lock:
            parent_issue = self._get_issue(parent) if parent is not None else None
            if parent_issue is not None and (parent_issue.project != project_key
                                             or parent_issue.issuetype in SUBTASK_TYPES):
                raise ValueError(f"{parent} cannot be the parent of a sub-task in {project_key}")
            self._check_option("support_group", support_group)
            self._check_option("category", category)
            ms = _ms(created) if created is not None else self.now_ms()
            issue = self._new_issue(project_key, summary, issuetype, ms,
                                    self._user(reporter) if reporter is not None else self.me)
            issue.description, issue.priority, issue.labels = description, priority, list(labels)
            issue.assignee = self._user(assignee) if assignee is not None else None
            issue.support_group, issue.category, issue.language = support_group, category, language
            issue.request_type = request_type if self._is_service_project(project_key) and not parent else None
            if parent_issue is not None:
                self._adopt(parent_issue, issue)
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

    def _adopt(self, parent: _Issue, subtask: _Issue) -> None:
        """Make `subtask` a sub-task of `parent` (at create: Jira has no re-parenting here)."""
        subtask.parent = parent
        parent.subtasks = [*(parent.subtasks or []), subtask]
        self._touch("parent", "subtasks")

    def _get_issue(self, id_or_key: str) -> _Issue:
        issue = self._by_key.get(id_or_key.upper())
        if issue is None and id_or_key.isdigit():
            issue = self._by_num.get(int(id_or_key))
        if issue is None:
            raise _errors(404, ISSUE_NOT_FOUND)
        return issue

    def _all_fields(self) -> list[str]:
        return [f.id for f in self._fields.values() if f.in_issue]

    def _notify(self, issue: _Issue, event: str, *, customer: bool, watchers: bool) -> None:
        if customer or watchers:
            self.notifications.append(Notification(issue.key, event, customer, watchers, self.clock()))
