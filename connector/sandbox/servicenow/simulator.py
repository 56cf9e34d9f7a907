"""`ServiceNowSimulator`, the concrete instance, and `make_servicenow_server` to serve it over HTTP.

The simulator is a `TableApi` (HTTP) over a `TableStore` (tables and writes). This module builds it from a
synthetic World (users, groups, services, incidents), prebuilds the indexes the connector pages by, and adds
the Python controls tests and the demo use to act as agents and background jobs: read a record or its
journal, resolve, close, reopen, set fields, add an incident.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from connector.sandbox.encoded_query import OrderBy
from connector.sandbox.server import SandboxServer, Steady, sandbox_tls
from connector.sandbox.servicenow.app import TableApi, routes
from connector.sandbox.servicenow.errors import servicenow_error_body
from connector.sandbox.servicenow.incident import CLOSED, RESOLVED, SUBCATEGORY, incident_row
from connector.sandbox.servicenow.schema import Row, format_datetime, to_value
from connector.sandbox.world import World, build_world, stable_hex

DEFAULT_USER = "vloop.integration"
DEFAULT_PASSWORD = "sandbox-password"
DEFAULT_OAUTH_CLIENTS = {"vloop-sandbox": "sandbox-client-secret"}
# Orders the connector pages by (reference §4, DESIGN bookmarks); indexed at start so page one is fast too.
# The base system's Customer Satisfaction survey: its definition and its two questions.
SURVEY_TYPE = stable_hex("sandbox", "asmt_metric_type", "customer-satisfaction")
SCORE_METRIC = stable_hex("sandbox", "asmt_metric", "overall-satisfaction")
COMMENT_METRIC = stable_hex("sandbox", "asmt_metric", "comments")
PREBUILT_ORDERS = (("incident", ("resolved_at", "sys_id")), ("incident", ("sys_updated_on", "sys_id")))


class ServiceNowSimulator(TableApi):
    """An in-memory ServiceNow instance serving the Table, Batch and OAuth APIs as a WSGI app.

    Args:
        world: Synthetic data to load; a default `build_world()` when omitted.
        user, password: Basic-auth credentials of the integration user (also a sys_user row).
        oauth_clients: client_id -> client_secret accepted by ``/oauth_token.do`` (client credentials).
        clock: Returns the simulator's aware UTC "now"; replace `sim.clock` in tests to move time.
        time_zone: The integration user's time zone; display values of dates use it.
        invalid_query_returns_no_rows: Mirrors ``glide.invalid_query.returns_no_rows``.
        batch_max_items: Batch API items beyond this count come back in ``unserviced_requests``.
        base_url: Instance URL used in links; by default the URL the request came in on.
    """

    def __init__(self, world: World | None = None, *, user: str = DEFAULT_USER,
                 password: str = DEFAULT_PASSWORD,
                 oauth_clients: Mapping[str, str] | None = None, clock: Callable[[], datetime] | None = None,
                 time_zone: str = "UTC", invalid_query_returns_no_rows: bool = False,
                 batch_max_items: int = 1000, base_url: str | None = None):
        self.world = world if world is not None else build_world()
        self.user, self.password = user, password
        self.oauth_clients = dict(DEFAULT_OAUTH_CLIENTS if oauth_clients is None else oauth_clients)
        self.invalid_query_returns_no_rows = invalid_query_returns_no_rows
        self.batch_max_items = batch_max_items
        self.base_url = base_url.rstrip("/") if base_url else None
        self._tokens = {}
        super().__init__(clock or (lambda: datetime.now(UTC)))  # registers the standard tables
        self.user_sys_id = stable_hex("sandbox", "user", user)
        self._load_world(time_zone)
        for table, names in PREBUILT_ORDERS:
            self._index(table, tuple(OrderBy(name) for name in names))
        self._routes = routes()

    # ---- world ---------------------------------------------------------------------------------------

    def _load_world(self, time_zone: str) -> None:
        world = self.world
        for person in [*world.people, *world.agents]:
            self._put("sys_user", self._user_row(person.id, person.user_name, person.name, person.email,
                                                 person.language, person.timezone, world.anchor))
        self._put("sys_user", self._user_row(self.user_sys_id, self.user, "VLoop Integration",
                                             f"{self.user}@example.com", "en", time_zone, world.anchor))
        for group in world.groups:
            self._put("sys_user_group", {
                **self._blank("sys_user_group", group.id, world.anchor), "name": group.name,
                "description": f"{group.name} support group",
                "email": f"{group.name.lower().replace(' ', '-')}@example.com"})
        for service in world.services:
            self._put("cmdb_ci_service", {**self._blank("cmdb_ci_service", service.id, world.anchor),
                                          "name": service.name, "operational_status": "1"})
        incidents = self.tables["incident"]
        for ticket in world.tickets:
            incidents[ticket.id] = incident_row(ticket)
        self._numbers["incident"] = max((t.seq for t in world.tickets), default=0) + 10000
        self._changed("incident")
        self._load_surveys(world)

    def _load_surveys(self, world: World) -> None:
        """The base system's Customer Satisfaction survey, answered for about a fifth of resolved incidents."""
        at = world.anchor
        self._put("asmt_metric_type", {**self._blank("asmt_metric_type", SURVEY_TYPE, at),
                                       "name": "Customer Satisfaction", "table": "incident", "active": "true"})
        for sys_id, name, datatype in ((SCORE_METRIC, "Overall satisfaction", "scale"),
                                       (COMMENT_METRIC, "Comments", "string")):
            self._put("asmt_metric", {**self._blank("asmt_metric", sys_id, at), "name": name, "question": name,
                                      "metric_type": SURVEY_TYPE, "datatype": datatype, "scale_factor": "1",
                                      "active": "true"})
        rng = random.Random(11)  # deterministic for a given world
        for ticket in world.tickets:
            if ticket.resolved_at is None or rng.random() >= 0.2:
                continue
            taken = min(ticket.resolved_at + timedelta(hours=rng.randint(1, 72)), world.anchor)
            score = rng.choices((1, 2, 3, 4, 5), weights=(6, 6, 12, 30, 46))[0]
            comment = rng.choice((None, "Thanks!", "Took too long.", "Great help"))
            self._survey_rows(ticket.id, ticket.requester.id, score, comment, taken)

    def _survey_rows(self, incident: str, user: str, score: int, comment: str | None, at: datetime) -> str:
        n = len(self.tables["asmt_assessment_instance"]) + 1
        instance = stable_hex("asmt", incident, n)
        self._put("asmt_assessment_instance", {
            **self._blank("asmt_assessment_instance", instance, at), "number": f"AINST{n:07d}",
            "metric_type": SURVEY_TYPE, "user": user, "state": "complete", "trigger_table": "incident",
            "trigger_id": incident, "task_id": incident, "taken_on": format_datetime(at),
            "due_date": format_datetime(at + timedelta(days=14))})
        answers = [(SCORE_METRIC, str(score), str(score))]
        if comment is not None:
            answers.append((COMMENT_METRIC, "-1", comment))
        for metric, actual, text in answers:
            result = stable_hex("asmt_result", instance, metric)
            self._put("asmt_metric_result", {
                **self._blank("asmt_metric_result", result, at), "instance": instance, "metric": metric,
                "data_type": "string" if metric == COMMENT_METRIC else "integer", "user": user,
                "source_table": "incident", "source_id": incident, "actual_value": actual,
                "normalized_value": actual, "string_value": text})
        return instance

    def _user_row(self, sys_id: str, user_name: str, name: str, email: str, language: str, tz: str,
                  at: datetime) -> Row:
        first, _, last = name.partition(" ")
        return {**self._blank("sys_user", sys_id, at), "user_name": user_name, "name": name,
                "first_name": first, "last_name": last, "email": email, "preferred_language": language,
                "time_zone": tz}


    # ---- Python API for tests and the demo ------------------------------------------------------------

    def record(self, table: str, sys_id: str) -> Row | None:
        """A copy of one row as stored (every value a string), or None."""
        with self._lock:
            row = self.tables.get(table, {}).get(sys_id)
            return dict(row) if row is not None else None

    def take_survey(self, incident: str, score: int, comment: str | None = None, at: datetime | None = None) -> str:
        """The caller completes the Customer Satisfaction survey of an incident; returns the instance sys_id."""
        with self._lock:
            row = self._incident(incident)
            return self._survey_rows(incident, row["caller_id"], score, comment, at or self.clock())

    def allow_on_closed(self, *fields: str) -> None:
        """Let API writes change these fields of closed incidents too, as an ACL exception would
        (docs/servicenow.md, "Write-back fields")."""
        with self._lock:
            self.closed_writable = self.closed_writable | frozenset(fields)

    def journal(self, element_id: str, element: str | None = None) -> list[Row]:
        """Journal entries (comments / work_notes) written on a record, oldest first."""
        with self._lock:
            return [dict(r) for r in self.tables["sys_journal_field"].values()
                    if r["element_id"] == element_id and (element is None or r["element"] == element)]

    def resolve(self, sys_id: str, at: datetime | None = None) -> None:
        """The assigned agent resolves the incident (state 6, resolved_at = `at` or now).

        `at` is also the time of the write (sys_updated_on), as for `close` and `reopen`.
        """
        with self._lock:
            row = self._incident(sys_id)
            when = at or self.clock()
            changes = {"state": RESOLVED, "resolved_at": format_datetime(when),
                       "close_code": row["close_code"] or "Solution provided"}
            self._update("incident", sys_id, changes, when, self._by_user_id(row["assigned_to"]),
                         enforce_acl=False)

    def close(self, sys_id: str, at: datetime | None = None) -> None:
        """Close the incident (state 7) as the autoclose job would; resolves it too if it was not."""
        with self._lock:
            row = self._incident(sys_id)
            when = at or self.clock()
            changes = {"state": CLOSED, "closed_at": format_datetime(when)}
            if not row["resolved_at"]:
                changes["resolved_at"] = changes["closed_at"]
            self._update("incident", sys_id, changes, when, self._by_user_id(""), enforce_acl=False)

    def reopen(self, sys_id: str, at: datetime | None = None) -> None:
        """The caller reopens a resolved or closed incident (back to In Progress; reopen_count + 1)."""
        with self._lock:
            row = self._incident(sys_id)
            when = at or self.clock()
            self._update("incident", sys_id, {"state": "2"}, when, self._by_user_id(row["caller_id"]),
                         enforce_acl=False)

    def set_fields(self, table: str, sys_id: str, **fields: object) -> None:
        """Change fields as a background script would: no ACL check, bumps sys_updated_on / sys_mod_count."""
        with self._lock:
            if sys_id not in self.tables[table]:
                raise KeyError(f"{table}/{sys_id}")
            self._update(table, sys_id, {k: to_value(v) for k, v in fields.items()}, self.clock(),
                         self._by_user_id(""), enforce_acl=False)

    def add_incident(self, **fields: object) -> str:
        """Create an incident like the world's (caller, group, assignee, service filled in) and return its
        sys_id. `fields` override any column; datetimes, ints and bools are converted to strings."""
        with self._lock:
            n = self._numbers["incident"] + 1 - 10000
            people, groups, services = self.world.people, self.world.groups, self.world.services
            group = groups[n % len(groups)]
            caller = people[n % len(people)].id
            base = {
                "caller_id": caller, "opened_by": caller,
                "assignment_group": group.id,
                "assigned_to": group.members[n % len(group.members)] if group.members else "",
                "business_service": services[n % len(services)].id,
                "short_description": f"Sandbox incident {n}",
                "description": "Created in the sandbox.",
                "category": "inquiry", "subcategory": SUBCATEGORY["inquiry"], "contact_type": "email",
                "impact": "2", "urgency": "2", "priority": "3",
            }
            values = base | {k: to_value(v) for k, v in fields.items()}
            row = self._insert("incident", values, self.clock(), self._by_user_id(""))
            return row["sys_id"]

    def _incident(self, sys_id: str) -> Row:
        row = self.tables["incident"].get(sys_id)
        if row is None:
            raise KeyError(f"incident/{sys_id}")
        return row

    def _by_user_id(self, user_id: str) -> tuple[str, str]:
        """(sys_id, user_name) of who performs a write; background work runs as "system"."""
        row = self.tables["sys_user"].get(user_id) if user_id else None
        return (row["sys_id"], row["user_name"]) if row else ("", "system")



def make_servicenow_server(sim: ServiceNowSimulator, *, host: str = "127.0.0.1", port: int = 0,
                           steady: Steady | None = None, tls: bool = False) -> SandboxServer:
    """A `SandboxServer` (not yet started) serving `sim`, with ServiceNow error envelopes for faults."""
    return SandboxServer(sim.wsgi_app, host=host, port=port, steady=steady, error_body=servicenow_error_body,
                         ssl_context=sandbox_tls() if tls else None)
