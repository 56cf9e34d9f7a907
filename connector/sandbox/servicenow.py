"""ServiceNow instance simulator: Table API, Batch API and OAuth over WSGI, built from a synthetic World.

Faithful to reference/servicenow-api.md, including its pitfalls, because the connector must survive them:
every value is a string; references are ``{"link", "value"}`` objects or ``""``; journal fields read back as
``""``; misspelled query fields are silently ignored; ``sysparm_fields`` drops unknown names; v1 answers an
empty list with 404; closed and canceled incidents are read-only except for a documented field list.

Rows live in ``tables[table][sys_id]`` as ``dict[str, str]`` and are replaced, never mutated, on write, so a
response rendered from a row never sees half an update. Reads page through a sorted index per
(table, ORDER BY) that writes keep up to date; a keyset query bisects to the lower bound of its first
ORDERBY field instead of scanning the table (see `ServiceNowSimulator._select`).

    sim = ServiceNowSimulator(build_world(tickets=500))
    with make_servicenow_server(sim) as server:
        requests.get(f"{server.base_url}/api/now/v2/table/incident", auth=(sim.user, sim.password))
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from connector.sandbox.encoded_query import Condition, EncodedQuery, OrderBy, parse, sort_key
from connector.sandbox.server import SandboxServer, Steady, sandbox_tls
from connector.sandbox.world import Ticket, World, build_world, stable_hex

Row = dict[str, str]
StartResponse = Callable[..., Any]

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_USER = "vloop.integration"
DEFAULT_PASSWORD = "sandbox-password"
DEFAULT_OAUTH_CLIENTS = {"vloop-sandbox": "sandbox-client-secret"}
DEFAULT_LIMIT = 10000
TOKEN_TTL_S = 1800
SYS_ID_LENGTH = 32  # every sys_id here is 32 hex characters; sorted index keys rely on it
# Orders the connector pages by (reference §4, DESIGN bookmarks); indexed at start so page one is fast too.
PREBUILT_ORDERS = (("incident", ("resolved_at", "sys_id")), ("incident", ("sys_updated_on", "sys_id")))

STATE_BY_WORLD = {"new": "1", "in_progress": "2", "on_hold": "3", "resolved": "6", "closed": "7",
                  "canceled": "8"}
RESOLVED, CLOSED, CANCELED = "6", "7", "8"
OPEN_STATES = frozenset({"1", "2", "3"})
# reference §7.2: what even an admin may still change on a Closed or Canceled incident. work_notes is on
# the list because the connector's write-back goes there.
CLOSED_WRITABLE = frozenset({
    "subcategory", "business_service", "service_offering", "description", "contact_type", "watch_list",
    "work_notes_list", "work_notes", "parent", "problem_id", "rfc", "caused_by", "resolved_by", "resolved_at",
    "reassignment_count",
})
SUBCATEGORY = {"software": "email", "hardware": "monitor", "network": "vpn",
               "inquiry": "internal application", "database": "oracle", "security": "access"}
NUMBER_PREFIX = {"incident": "INC", "incident_task": "TASK", "sn_cim_register": "CIM",
                 "asmt_assessment_instance": "AINST"}


@dataclass(frozen=True)
class FieldSpec:
    """One column as sys_dictionary describes it."""

    # internal_type: string, integer, boolean, glide_date_time, reference, journal_input, GUID, collection
    type: str = "string"
    reference: str = ""  # target table of a reference field
    label: str = ""


# Short names keep the schema tables below readable: String, Number (integer), Boolean, Date-time, Journal.
S, N, B = FieldSpec("string"), FieldSpec("integer"), FieldSpec("boolean")
D, J = FieldSpec("glide_date_time"), FieldSpec("journal_input")


def ref(table: str) -> FieldSpec:
    return FieldSpec("reference", table)


SYSTEM_FIELDS: dict[str, FieldSpec] = {
    "sys_id": FieldSpec("GUID"), "sys_created_on": D, "sys_created_by": S, "sys_updated_on": D,
    "sys_updated_by": S, "sys_mod_count": N,
}
USER = ref("sys_user")
SCHEMAS: dict[str, dict[str, FieldSpec]] = {
    "sys_user": {"user_name": S, "name": S, "first_name": S, "last_name": S, "email": S,
                 "preferred_language": S, "time_zone": S, "active": B},
    "sys_user_group": {"name": S, "description": S, "email": S, "active": B},
    "cmdb_ci_service": {"name": S, "operational_status": N},
    "incident": {
        "number": S, "short_description": S, "description": S, "category": S, "subcategory": S, "priority": N,
        "impact": N, "urgency": N, "state": N, "incident_state": N, "hold_reason": N, "caller_id": USER,
        "assigned_to": USER, "assignment_group": ref("sys_user_group"),
        "business_service": ref("cmdb_ci_service"),
        "contact_type": S, "opened_at": D, "opened_by": USER, "resolved_at": D, "resolved_by": USER,
        "closed_at": D, "closed_by": USER, "reopened_time": D, "close_code": S, "close_notes": S,
        "reopen_count": N, "reassignment_count": N, "active": B, "comments": J, "work_notes": J,
    },
    "incident_task": {
        "number": S, "incident": ref("incident"), "short_description": S, "description": S, "state": N,
        "priority": N, "assigned_to": USER, "assignment_group": ref("sys_user_group"), "opened_at": D,
        "closed_at": D, "active": B, "comments": J, "work_notes": J,
    },
    "sys_journal_field": {"element_id": FieldSpec("GUID"), "element": S, "value": S, "name": S},
    "asmt_assessment_instance": {
        "number": S, "metric_type": S, "user": USER, "state": S, "due_date": D, "expiration_date": D,
        "trigger_table": S, "trigger_id": FieldSpec("GUID"), "taken_on": D, "task_id": ref("incident"),
    },
    "asmt_metric_result": {
        "instance": ref("asmt_assessment_instance"), "metric": S, "data_type": S, "user": USER,
        "source_table": S, "source_id": FieldSpec("GUID"), "actual_value": N, "normalized_value": N,
        "string_value": S, "instance_question": S,
    },
    "sn_cim_register": {
        "number": S, "short_description": S, "description": S, "priority": N, "state": S, "benefit": S,
        "business_service": ref("cmdb_ci_service"), "assigned_to": USER, "source_id": S, "source_table": S,
        "type": S, "cim_estimate": S, "strategic_objective": S, "business_process": S,
        "approver_group": ref("sys_user_group"), "close_notes": S, "active": B, "opened_at": D,
    },
    "sys_dictionary": {"name": S, "element": S, "internal_type": S, "reference": S, "column_label": S},
}
CHOICES: dict[tuple[str, str], dict[str, str]] = {
    ("incident", "state"): {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed",
                            "8": "Canceled"},
    ("incident", "priority"): {"1": "1 - Critical", "2": "2 - High", "3": "3 - Moderate", "4": "4 - Low",
                               "5": "5 - Planning"},
    ("incident", "impact"): {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    ("incident", "hold_reason"): {"1": "Awaiting Caller", "3": "Awaiting Problem", "4": "Awaiting Vendor",
                                  "5": "Awaiting Change"},
    ("incident", "contact_type"): {"email": "Email", "phone": "Phone", "self-service": "Self-service",
                                   "chat": "Chat", "walk-in": "Walk-in"},
}
CHOICES[("incident", "incident_state")] = CHOICES[("incident", "state")]
CHOICES[("incident", "urgency")] = CHOICES[("incident", "impact")]
DEFAULTS: dict[str, dict[str, str]] = {
    "incident": {"state": "1", "incident_state": "1", "impact": "3", "urgency": "3", "priority": "5",
                 "active": "true", "reopen_count": "0", "reassignment_count": "0"},
    "incident_task": {"state": "1", "priority": "4", "active": "true"},
    "sn_cim_register": {"state": "1", "priority": "4", "active": "true"},
    "asmt_assessment_instance": {"state": "ready"},
    "sys_user": {"active": "true"},
    "sys_user_group": {"active": "true"},
}


class ApiError(Exception):
    """An error the Table API reports in its envelope."""

    def __init__(self, status: int, message: str, detail: str | None = None,
                 headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, list(headers)


@dataclass
class _Reply:
    status: int
    payload: Any = None  # None: no body
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _SortedIndex:
    """The rows of one table in one ORDER BY order: sorted keys and, in parallel, the rows themselves.

    Keeping row references (not sys_ids to look up) makes a scan a plain list walk, several times
    faster on 100k rows. Keys come in three forms. All-ascending orders on string columns use one
    string, ``value1 NUL value2 … NUL sys_id``, which sorts like the tuple but twice as fast; orders
    with an integer column use a tuple ``(key1, …, sys_id)``. Both keep `key_of`, so a write moves its
    row in place (bisect + insert, no re-sort) and a read can bisect to a lower bound (`bound_of`).
    Descending and dot-walked orders store bare sys_ids and are rebuilt after a write.
    """

    keys: list[Any]
    rows: list[Row]
    key_of: Callable[[Mapping[str, str]], Any] | None = None
    bound_of: Callable[[str], Any] | None = None
    walks: bool = False  # orders through a reference, so writes to other tables can reorder it

    def move(self, old: Row | None, new: Row | None) -> None:
        """Follow one write: an insert (old None), delete (new None) or update of a row."""
        assert self.key_of is not None
        old_key = self.key_of(old) if old is not None else None
        new_key = self.key_of(new) if new is not None else None
        if old_key is not None:
            at = bisect_left(self.keys, old_key)
            if new is not None and old_key == new_key:
                self.rows[at] = new  # rows are replaced on write, never mutated
                return
            del self.keys[at], self.rows[at]
        if new is not None:
            at = bisect_left(self.keys, new_key)
            self.keys.insert(at, new_key)
            self.rows.insert(at, new)


def format_datetime(value: datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS``, the Table API's date-time value format."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(sep=" ")[:19]


def parse_datetime(value: str) -> datetime:
    return datetime.strptime(value, DATETIME_FORMAT).replace(tzinfo=UTC)


def servicenow_error_body(status: int) -> dict[str, Any]:
    """The error envelope for faults injected in front of the simulator (429 as in reference §6.1)."""
    if status == 429:
        return _envelope("Rate limit exceeded", "Rate limit of 100 requests per hour for Table API exceeded")
    return _envelope(HTTP_STATUS_CODES.get(status, "Error"), None)


def _envelope(message: str, detail: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


def _field_spec(value: FieldSpec | str) -> FieldSpec:
    if isinstance(value, FieldSpec):
        return value
    kind, _, target = value.partition(":")
    return FieldSpec(kind, target)


def _to_value(value: object) -> str:
    """JSON or Python input to the stored string form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):  # a reference echoed back as {"value": ..., "link": ...}
        return _to_value(value.get("value"))
    return str(value)


class ServiceNowSimulator:
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
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.invalid_query_returns_no_rows = invalid_query_returns_no_rows
        self.batch_max_items = batch_max_items
        self.base_url = base_url.rstrip("/") if base_url else None
        self.schema: dict[str, dict[str, FieldSpec]] = {}
        self.tables: dict[str, dict[str, Row]] = {}
        self._lock = threading.RLock()
        self._indexes: dict[tuple[str, tuple[OrderBy, ...]], _SortedIndex] = {}
        self._match_cache: OrderedDict[tuple[Any, ...], list[Row]] = OrderedDict()
        self._writes = 0
        self._inserted = 0
        self._numbers: dict[str, int] = {}
        self._tokens: dict[str, tuple[str, datetime]] = {}
        for name, fields in SCHEMAS.items():
            if name != "sys_dictionary":
                self.register_table(name, fields)
        self.register_table("sys_dictionary", SCHEMAS["sys_dictionary"])
        for name in self.schema:  # tables registered before sys_dictionary existed
            self._describe(name)
        self.user_sys_id = stable_hex("sandbox", "user", user)
        self._load_world(time_zone)
        for table, names in PREBUILT_ORDERS:
            self._index(table, tuple(OrderBy(name) for name in names))
        self._routes = _routes()

    # ---- schema ------------------------------------------------------------------------------------

    def register_table(self, name: str, fields: Mapping[str, FieldSpec | str] | Iterable[str]) -> None:
        """Add a table, or add fields to an existing one; sys_dictionary is updated to describe them.

        `fields` maps names to a `FieldSpec` or an internal_type string (``"integer"``,
        ``"reference:sys_user"``); a plain list of names means string fields. System fields (sys_id,
        sys_created_on, …) are always present.
        """
        specs = ({k: _field_spec(v) for k, v in fields.items()} if isinstance(fields, Mapping)
                 else {k: S for k in fields})
        with self._lock:
            schema = self.schema.setdefault(name, dict(SYSTEM_FIELDS))
            schema.update(specs)
            table = self.tables.setdefault(name, {})
            self._numbers.setdefault(name, 0)
            for sys_id, row in table.items():  # existing rows gain the new columns, empty
                table[sys_id] = {**dict.fromkeys(schema, ""), **row}
            self._changed(name)
            if "sys_dictionary" in self.schema:
                self._describe(name)

    def _describe(self, name: str) -> None:
        dictionary = self.tables["sys_dictionary"]
        now = format_datetime(self.clock())
        entries = [("", FieldSpec("collection")), *self.schema[name].items()]
        for element, spec in entries:
            sys_id = stable_hex("sys_dictionary", name, element)
            dictionary[sys_id] = self._system_row("sys_dictionary", sys_id, now, "system") | {
                "name": name, "element": element, "internal_type": spec.type, "reference": spec.reference,
                "column_label": spec.label or element.replace("_", " ").title(),
            }
        self._changed("sys_dictionary")

    def field_spec(self, table: str, path: str) -> FieldSpec | None:
        """The column `path` names, following dot-walks through references; None if there is none."""
        spec: FieldSpec | None = None
        for i, part in enumerate(path.split(".")):
            columns = self.schema.get(table)
            spec = columns.get(part) if columns is not None else None
            if spec is None:
                return None
            if i < path.count("."):
                if spec.type != "reference":
                    return None
                table = spec.reference
        return spec

    def _numeric_fields(self, table: str) -> set[str]:
        return {name for name, spec in self.schema[table].items() if spec.type == "integer"}

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
            incidents[ticket.id] = _incident_row(ticket)
        self._numbers["incident"] = max((t.seq for t in world.tickets), default=0) + 10000
        self._changed("incident")

    def _user_row(self, sys_id: str, user_name: str, name: str, email: str, language: str, tz: str,
                  at: datetime) -> Row:
        first, _, last = name.partition(" ")
        return {**self._blank("sys_user", sys_id, at), "user_name": user_name, "name": name,
                "first_name": first, "last_name": last, "email": email, "preferred_language": language,
                "time_zone": tz}

    def _system_row(self, table: str, sys_id: str, now: str, by: str) -> Row:
        return {"sys_id": sys_id, "sys_created_on": now, "sys_created_by": by, "sys_updated_on": now,
                "sys_updated_by": by, "sys_mod_count": "0"}

    def _blank(self, table: str, sys_id: str, at: datetime, by: str = "system") -> Row:
        row = dict.fromkeys(self.schema[table], "")
        row.update(DEFAULTS.get(table, {}))
        row.update(self._system_row(table, sys_id, format_datetime(at), by))
        return row

    def _put(self, table: str, row: Row) -> None:
        self.tables[table][row["sys_id"]] = row
        self._changed(table)

    # ---- Python API for tests and the demo ------------------------------------------------------------

    def record(self, table: str, sys_id: str) -> Row | None:
        """A copy of one row as stored (every value a string), or None."""
        with self._lock:
            row = self.tables.get(table, {}).get(sys_id)
            return dict(row) if row is not None else None

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
            self._update(table, sys_id, {k: _to_value(v) for k, v in fields.items()}, self.clock(),
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
            values = base | {k: _to_value(v) for k, v in fields.items()}
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

    # ---- writes --------------------------------------------------------------------------------------

    def _insert(self, table: str, values: Mapping[str, str], now: datetime, actor: tuple[str, str]) -> Row:
        sys_id = values.get("sys_id", "")
        while len(sys_id) != SYS_ID_LENGTH or sys_id in self.tables[table]:
            self._inserted += 1
            sys_id = stable_hex("sandbox", table, self._inserted)
        old = self._blank(table, sys_id, now, actor[1])
        if table == "incident":
            old["opened_at"], old["opened_by"] = old["sys_created_on"], actor[0]
        if "number" in self.schema[table]:
            self._numbers[table] += 1
            old["number"] = f"{NUMBER_PREFIX.get(table, 'REC')}{self._numbers[table]:07d}"
        changes, journal = self._writable(table, values)
        changes = {k: v for k, v in changes.items() if v != old.get(k)}
        if table == "incident":
            changes = _incident_rules(old, changes, format_datetime(now), actor[0])
        row = old | changes
        self.tables[table][sys_id] = row
        self._changed(table, None, row)
        self._journal(table, sys_id, journal, now, actor[1])
        return row

    def _update(self, table: str, sys_id: str, values: Mapping[str, str], now: datetime,
                actor: tuple[str, str], *, enforce_acl: bool) -> Row:
        old = self.tables[table][sys_id]
        changes, journal = self._writable(table, values)
        changes = {k: v for k, v in changes.items() if v != old.get(k)}
        if table == "incident":
            if enforce_acl and old["state"] in (CLOSED, CANCELED):
                blocked = (set(changes) | set(journal)) - CLOSED_WRITABLE
                if blocked:
                    raise ApiError(403, "Operation Failed",
                                   "ACL Exception Update Failed due to security constraints")
            changes = _incident_rules(old, changes, format_datetime(now), actor[0])
        if not changes and not journal:
            return old  # an update that changes nothing is not a write: no sys_mod_count bump
        row = old | changes
        row.update(sys_updated_on=format_datetime(now), sys_updated_by=actor[1],
                   sys_mod_count=str(int(old.get("sys_mod_count") or 0) + 1))
        self.tables[table][sys_id] = row
        self._changed(table, old, row)
        self._journal(table, sys_id, journal, now, actor[1])
        return row

    def _writable(self, table: str, values: Mapping[str, str]) -> tuple[Row, Row]:
        """Split input into column changes and journal entries; unknown and sys_ fields are ignored."""
        schema = self.schema[table]
        changes: Row = {}
        journal: Row = {}
        for name, value in values.items():
            spec = schema.get(name)
            if spec is None or name.startswith("sys_"):
                continue
            if spec.type == "journal_input":
                if value:
                    journal[name] = value
            else:
                changes[name] = value
        return changes, journal

    def _journal(self, table: str, sys_id: str, entries: Mapping[str, str], now: datetime, by: str) -> None:
        for element, value in entries.items():
            self._inserted += 1
            entry_id = stable_hex("journal", sys_id, element, self._inserted)
            stamp = format_datetime(now)
            row = dict.fromkeys(self.schema["sys_journal_field"], "")
            row.update(self._system_row("sys_journal_field", entry_id, stamp, by))
            row.update(element_id=sys_id, element=element, value=value, name=table)
            self.tables["sys_journal_field"][entry_id] = row
            self._changed("sys_journal_field", None, row)

    def _delete(self, table: str, sys_id: str) -> None:
        old = self.tables[table].pop(sys_id)
        self._changed(table, old, None)

    def _changed(self, table: str, old: Row | None = None, new: Row | None = None) -> None:
        """Record a write: move the row in incremental indexes, drop the others and the count cache.

        `old` / `new` are the row before and after (None for an insert / delete); neither given means a
        bulk change, after which every index of the table is rebuilt on demand.
        """
        self._writes += 1
        self._match_cache.clear()
        bulk = old is None and new is None
        for key, index in list(self._indexes.items()):
            if index.walks or (key[0] == table and (index.key_of is None or bulk)):
                del self._indexes[key]
            elif key[0] == table:
                index.move(old, new)

    # ---- reads ---------------------------------------------------------------------------------------

    def _index(self, table: str, order: tuple[OrderBy, ...]) -> _SortedIndex:
        index = self._indexes.get((table, order))
        if index is None:
            index = self._build_index(table, order)
            self._indexes[(table, order)] = index
        return index

    def _build_index(self, table: str, order: tuple[OrderBy, ...]) -> _SortedIndex:
        rows = self.tables[table]
        if not order:
            return _SortedIndex(list(rows), list(rows.values()))  # no ORDERBY: insertion order
        walks = any("." in o.field for o in order)
        if walks or any(o.descending for o in order):
            # Stable multi-pass sort, least significant key first, sys_id as the final tiebreak.
            ids = sorted(rows)
            for o in reversed(order):
                ids.sort(key=self._row_sort_key(table, o.field), reverse=o.descending)
            return _SortedIndex(ids, [rows[i] for i in ids], walks=walks)
        names = [o.field for o in order]
        numeric = self._numeric_fields(table)
        if not any(name in numeric for name in names):
            def joined(row: Mapping[str, str]) -> str:
                return "\x00".join([*(row.get(name, "") for name in names), row["sys_id"]])

            keys: list[Any] = sorted(map(joined, rows.values()))
            return _SortedIndex(keys, [rows[k[-SYS_ID_LENGTH:]] for k in keys], joined, str)
        key_fns = [self._sort_key_fn(table, name) for name in names]

        def as_tuple(row: Mapping[str, str]) -> tuple[Any, ...]:
            values = (fn(row.get(name, "")) for fn, name in zip(key_fns, names, strict=True))
            return (*values, row["sys_id"])

        first = key_fns[0]
        keys = sorted(map(as_tuple, rows.values()))
        return _SortedIndex(keys, [rows[k[-1]] for k in keys], as_tuple, lambda bound: (first(bound),))

    def _row_sort_key(self, table: str, path: str) -> Callable[[str], Any]:
        rows, fn = self.tables[table], self._sort_key_fn(table, path)
        return lambda sys_id: fn(self._value(table, rows[sys_id], path))

    def _sort_key_fn(self, table: str, path: str) -> Callable[[str], Any]:
        spec = self.field_spec(table, path)
        if spec is not None and spec.type == "integer":
            return lambda v: sort_key(v, True)
        return str  # plain strings already sort like sort_key(v, False): empty first

    def _value(self, table: str, row: Mapping[str, str], path: str) -> str:
        """A field's stored value, following dot-walks through references ("" when a link is empty)."""
        if "." not in path:
            return row.get(path, "")
        *hops, last = path.split(".")
        current: Mapping[str, str] | None = row
        for hop in hops:
            spec = self.schema[table].get(hop)
            if current is None or spec is None or spec.type != "reference":
                return ""
            table = spec.reference
            current = self.tables.get(table, {}).get(current.get(hop, ""))
        return current.get(last, "") if current is not None else ""

    def _prepare(self, table: str, query: EncodedQuery) -> EncodedQuery | None:
        """Drop invalid conditions and ORDERBYs; None when the instance would return no rows instead."""
        valid, dropped = query.without(lambda c: self.field_spec(table, c.field) is not None)
        if dropped and self.invalid_query_returns_no_rows:
            return None
        order = tuple(o for o in valid.order_by if self.field_spec(table, o.field) is not None)
        return EncodedQuery(valid.groups, order)

    def _select(self, table: str, query: EncodedQuery, offset: int, limit: int,
                count: bool) -> tuple[list[Row], int | None]:
        """One page of matching rows, in order, plus the total when `count`.

        Walks the sorted index from the bisected lower bound of the first ORDERBY field, so a keyset
        page costs about limit + offset predicate checks; counting has to finish the walk (cached per
        query until the next write, so offset paging with counts does not rescan).
        """
        index = self._index(table, query.order_by)
        start = self._seek(table, query, index)
        if not query.has_conditions:
            page = index.rows[start + offset:start + offset + limit]
            return page, (len(index.rows) - start if count else None)
        cache_key = (table, query, self._writes)
        matched = self._match_cache.get(cache_key) if count else None
        if matched is None:
            predicate = query.matcher(self._numeric_fields(table),
                                      lambda row, path: self._value(table, row, path))
            candidates = index.rows[start:] if start else index.rows
            if count:
                matched = [row for row in candidates if predicate(row)]
                self._match_cache[cache_key] = matched
                while len(self._match_cache) > 8:
                    self._match_cache.popitem(last=False)
            else:
                matched = list(islice(filter(predicate, candidates), offset + limit))
        return matched[offset:offset + limit], (len(matched) if count else None)

    def _seek(self, table: str, query: EncodedQuery, index: _SortedIndex) -> int:
        if index.bound_of is None:
            return 0
        bound = query.lower_bound(self._numeric_fields(table))
        return 0 if bound is None else bisect_left(index.keys, index.bound_of(bound))

    # ---- rendering -----------------------------------------------------------------------------------

    def _renderer(self, table: str, fields: list[str], mode: str, links: bool, base: str,
                  tz: ZoneInfo) -> Callable[[Row], dict[str, Any]]:
        """Build a row -> JSON-object function for one request (plain columns are copied in bulk)."""
        special: list[tuple[str, Callable[[Row], Any]]] = []
        for name in fields:
            spec = self.field_spec(table, name)
            assert spec is not None
            owner = self._owner(table, name)
            if mode == "false" and "." not in name and not (spec.type == "reference" and links):
                continue
            special.append((name, self._field_renderer(table, owner, name, spec, mode, links, base, tz)))

        def render(row: Row) -> dict[str, Any]:
            out: dict[str, Any] = {name: row.get(name, "") for name in fields}
            for name, fn in special:
                out[name] = fn(row)
            return out

        def render_all(row: Row) -> dict[str, Any]:
            out: dict[str, Any] = row.copy()  # rows hold exactly the table's columns; a C-level copy is 10x faster
            for name, fn in special:
                out[name] = fn(row)
            return out

        return render_all if fields == list(self.schema[table]) else render

    def _owner(self, table: str, path: str) -> str:
        """The table whose column the last hop of `path` names."""
        for hop in path.split(".")[:-1]:
            table = self.schema[table][hop].reference
        return table

    def _field_renderer(self, table: str, owner: str, path: str, spec: FieldSpec, mode: str, links: bool,
                        base: str, tz: ZoneInfo) -> Callable[[Row], Any]:
        if mode == "false" and "." not in path and spec.type == "reference" and links:
            # The common case on every page: a reference as {"link", "value"}, built without detours.
            prefix = f"{base}/api/now/table/{spec.reference}/"
            return lambda row: {"link": prefix + v, "value": v} if (v := row.get(path, "")) else ""
        last = path.rsplit(".", 1)[-1]
        choices = CHOICES.get((owner, last), {})

        def display(value: str) -> str:
            if spec.type == "reference":
                return self._display_of(spec.reference, value)
            if spec.type == "glide_date_time" and value:
                return parse_datetime(value).astimezone(tz).strftime(DATETIME_FORMAT)
            return choices.get(value, value)

        def render(row: Row) -> Any:
            value = self._value(table, row, path)
            link = {"link": f"{base}/api/now/table/{spec.reference}/{value}"} if (
                spec.type == "reference" and links and value) else {}
            if mode == "false":
                return {**link, "value": value} if link else value
            if mode == "true":
                return {"display_value": display(value), **link} if link else display(value)
            return {"display_value": display(value), **link, "value": value}

        return render

    def _display_of(self, table: str, sys_id: str) -> str:
        row = self.tables.get(table, {}).get(sys_id)
        if row is None:
            return ""
        for name in ("number", "name", "user_name"):
            if row.get(name):
                return row[name]
        return sys_id

    def _fields(self, table: str, requested: str) -> list[str]:
        """sysparm_fields: invalid names are dropped silently, as documented; empty means every column."""
        if not requested.strip():
            return list(self.schema[table])
        names = dict.fromkeys(n.strip() for n in requested.split(","))
        return [n for n in names if n and self.field_spec(table, n) is not None]

    # ---- HTTP ----------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        reply = self._handle(request, None)
        return _response(reply, request)(environ, start_response)

    def error_body(self, status: int) -> dict[str, Any]:
        return servicenow_error_body(status)

    def _handle(self, request: Request, batch_user: str | None) -> _Reply:
        try:
            adapter = self._routes.bind_to_environ(request.environ)
            endpoint, args = adapter.match()
            if endpoint == "oauth":
                return self._oauth(request)
            user = batch_user or self._authenticate(request)
            with self._lock:
                return self._endpoint(str(endpoint), request, user, args)
        except ApiError as err:
            return _Reply(err.status, _envelope(err.message, err.detail), err.headers)
        except MethodNotAllowed:
            return _Reply(405, _envelope("Method not Supported", f"{request.method} is not supported"))
        except NotFound:
            return _Reply(400, _envelope("Requested URI does not represent any resource", None))
        except HTTPException as exc:
            return _Reply(exc.code or 500, _envelope(exc.name, exc.description))

    def _endpoint(self, endpoint: str, request: Request, user: str, args: Mapping[str, Any]) -> _Reply:
        if endpoint == "batch":
            return self._batch(request, user)
        table = args["table"]
        if table not in self.tables:
            raise ApiError(400, f"Invalid table {table}")
        version = args.get("version", "v2")
        sys_id = args.get("sys_id")
        reading = request.method in ("GET", "HEAD")  # werkzeug routes HEAD wherever GET is allowed
        if sys_id is None and reading:
            return self._list(request, table, version)
        if sys_id is None:
            return self._create(request, table, user)
        if reading:
            return self._read(request, table, sys_id)
        if request.method == "DELETE":
            self._require(table, sys_id)
            self._delete(table, sys_id)
            return _Reply(204)
        return self._modify(request, table, sys_id, user)

    def _authenticate(self, request: Request) -> str:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            if secrets.compare_digest(f"{auth.username}:{auth.password}", f"{self.user}:{self.password}"):
                return self.user
        elif auth is not None and auth.type == "bearer" and auth.token:
            with self._lock:
                grant = self._tokens.get(auth.token)
                if grant is not None and grant[1] > self.clock():
                    return grant[0]
        raise ApiError(401, "User Not Authenticated", "Required to provide Auth information",
                       [("WWW-Authenticate", 'BEARER realm="Service-now"')])

    def _actor(self, user: str) -> tuple[str, str]:
        """(sys_id, user_name) of the caller; basic auth and OAuth tokens both act as the integration user."""
        return self.user_sys_id, user

    def _list(self, request: Request, table: str, version: str) -> _Reply:
        args = request.args
        limit = _int_arg(args.get("sysparm_limit"), DEFAULT_LIMIT, minimum=1)
        offset = _int_arg(args.get("sysparm_offset"), 0, minimum=0)
        count = not _flag(args.get("sysparm_no_count"))
        query = parse(args.get("sysparm_query", ""))
        # Plain "&active=true" parameters filter too; parameters that are not columns are not conditions.
        plain = [Condition(k, "=", v) for k, v in args.items(multi=True)
                 if not k.startswith("sysparm_") and self.field_spec(table, k) is not None]
        prepared = self._prepare(table, query.and_also(plain))
        rows: list[Row] = []
        total: int | None = 0 if count else None
        if prepared is not None:
            rows, total = self._select(table, prepared, offset, limit, count)
        if not rows and version == "v1":
            raise ApiError(404, "No Record found", "Records not found")
        render = self._request_renderer(request, table)
        headers: list[tuple[str, str]] = []
        if total is not None:
            headers.append(("X-Total-Count", str(total)))
        if not _flag(args.get("sysparm_suppress_pagination_header")):
            link = _link_header(self._base(request), request, offset, limit, total, len(rows))
            if link:
                headers.append(("Link", link))
        return _Reply(200, {"result": [render(r) for r in rows]}, headers)

    def _request_renderer(self, request: Request, table: str) -> Callable[[Row], dict[str, Any]]:
        args = request.args
        mode = args.get("sysparm_display_value", "false").lower()
        mode = mode if mode in ("true", "all") else "false"
        links = not _flag(args.get("sysparm_exclude_reference_link"))
        fields = self._fields(table, args.get("sysparm_fields", ""))
        return self._renderer(table, fields, mode, links, self._base(request), self._time_zone())

    def _time_zone(self) -> ZoneInfo:
        row = self.tables["sys_user"].get(self.user_sys_id)
        try:
            return ZoneInfo(row["time_zone"] if row and row["time_zone"] else "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def _base(self, request: Request) -> str:
        return self.base_url or request.host_url.rstrip("/")

    def _require(self, table: str, sys_id: str) -> Row:
        row = self.tables[table].get(sys_id)
        if row is None:
            raise ApiError(404, "No Record found",
                           "Record doesn't exist or ACL restricts the record retrieval")
        return row

    def _read(self, request: Request, table: str, sys_id: str) -> _Reply:
        row = self._require(table, sys_id)
        return _Reply(200, {"result": self._request_renderer(request, table)(row)})

    def _create(self, request: Request, table: str, user: str) -> _Reply:
        row = self._insert(table, _body(request), self.clock(), self._actor(user))
        location = f"{self._base(request)}/api/now/table/{table}/{row['sys_id']}"
        return self._written(request, table, row, 201, [("Location", location)])

    def _modify(self, request: Request, table: str, sys_id: str, user: str) -> _Reply:
        self._require(table, sys_id)
        row = self._update(table, sys_id, _body(request), self.clock(), self._actor(user), enforce_acl=True)
        return self._written(request, table, row, 200, [])

    def _written(self, request: Request, table: str, row: Row, status: int,
                 headers: list[tuple[str, str]]) -> _Reply:
        if request.headers.get("X-no-response-body", "").lower() == "true":
            return _Reply(status, None, headers)
        return _Reply(status, {"result": self._request_renderer(request, table)(row)}, headers)

    # ---- OAuth and Batch -------------------------------------------------------------------------------

    def _oauth(self, request: Request) -> _Reply:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return _Reply(400, {"error": "unsupported_grant_type",
                                "error_description": "Only client_credentials is enabled in the sandbox"})
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if request.authorization is not None and request.authorization.type == "basic":  # RFC 6749 §2.3.1
            client_id = request.authorization.username or ""
            secret = request.authorization.password or ""
        expected = self.oauth_clients.get(client_id)
        if expected is None or not secrets.compare_digest(secret, expected):
            return _Reply(401, {"error_description": "access_denied", "error": "server_error"})
        token = secrets.token_urlsafe(48)
        with self._lock:
            now = self.clock()
            self._tokens = {t: g for t, g in self._tokens.items() if g[1] > now}
            self._tokens[token] = (self.user, now + timedelta(seconds=TOKEN_TTL_S))
        return _Reply(200, {"access_token": token, "scope": "useraccount", "token_type": "Bearer",
                            "expires_in": TOKEN_TTL_S})

    def _batch(self, request: Request, user: str) -> _Reply:
        payload = _body(request)
        items = payload.get("rest_requests")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ApiError(400, "Invalid batch request", "rest_requests must be a list of objects")
        serviced = [self._batch_item(request, item, user) for item in items[:self.batch_max_items]]
        unserviced = [str(item.get("id", "")) for item in items[self.batch_max_items:]]
        return _Reply(200, {"batch_request_id": payload.get("batch_request_id", ""),
                            "serviced_requests": serviced, "unserviced_requests": unserviced})

    def _batch_item(self, outer: Request, item: Mapping[str, Any], user: str) -> dict[str, Any]:
        started = time.perf_counter()
        item_id = str(item.get("id", ""))
        url, method = str(item.get("url", "")), str(item.get("method", "")).upper()
        if not item_id or not url.startswith("/") or not method or "/batch" in url:
            reply = _Reply(400, _envelope("Invalid batch request item",
                                          "id, method and a relative url are required"))
            return _batch_result(item_id, reply, outer, True, started)
        headers = {h.get("name", ""): h.get("value", "")
                   for h in item.get("headers") or [] if isinstance(h, dict)}
        try:
            data = base64.b64decode(item.get("body") or "", validate=True)
        except (binascii.Error, ValueError):
            reply = _Reply(400, _envelope("Invalid batch request item", "body is not Base64"))
            return _batch_result(item_id, reply, outer, True, started)
        environ = EnvironBuilder(path=url, method=method, headers=headers, data=data,
                                 base_url=outer.host_url).get_environ()
        inner = Request(environ)
        reply = self._handle(inner, user)
        return _batch_result(item_id, reply, inner, bool(item.get("exclude_response_headers")), started)


def _batch_result(item_id: str, reply: _Reply, request: Request, exclude_headers: bool,
                  started: float) -> dict[str, Any]:
    response = _response(reply, request)
    body = response.get_data()
    result: dict[str, Any] = {
        "id": item_id,
        "status_code": reply.status,
        "status_text": HTTP_STATUS_CODES.get(reply.status, ""),
        "headers": [] if exclude_headers else [{"name": k, "value": v} for k, v in response.headers.items()],
        "body": base64.b64encode(body).decode(),
        "execution_time": int((time.perf_counter() - started) * 1000),
    }
    if reply.status >= 400 and isinstance(reply.payload, dict) and "error" in reply.payload:
        result["error_message"] = reply.payload["error"].get("message", "")
    return result


def _routes() -> Map:
    table, record = "/table/<table>", "/table/<table>/<sys_id>"
    one = ["GET", "PATCH", "PUT", "DELETE"]
    return Map([
        Rule("/oauth_token.do", endpoint="oauth", methods=["POST"]),
        Rule("/api/now/v1/batch", endpoint="batch", methods=["POST"]),
        Rule(f"/api/now{table}", endpoint="table", methods=["GET", "POST"]),
        Rule(f"/api/now/<any(v1,v2):version>{table}", endpoint="table", methods=["GET", "POST"]),
        Rule(f"/api/now{record}", endpoint="table", methods=one),
        Rule(f"/api/now/<any(v1,v2):version>{record}", endpoint="table", methods=one),
    ], strict_slashes=False)


def _response(reply: _Reply, request: Request) -> Response:
    headers = list(reply.headers)
    if reply.payload is None:
        return Response(b"", status=reply.status, headers=headers)
    data = orjson.dumps(reply.payload)
    return Response(data, status=reply.status, headers=headers, content_type="application/json;charset=UTF-8")


def _body(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise ApiError(400, "Exception while reading request", "The payload is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "Exception while reading request", "The payload must be a JSON object.")
    return {k: v if k == "rest_requests" else _to_value(v) for k, v in payload.items()}


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _int_arg(value: str | None, default: int, *, minimum: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number >= minimum else default


def _link_header(base: str, request: Request, offset: int, limit: int, total: int | None,
                 returned: int) -> str:
    """first / prev / next / last links as in reference §3.4; absent when everything fits one page.

    With sysparm_no_count there is no total, so "last" is left out and "next" follows a full page.
    """
    if total is not None and offset == 0 and total <= limit:
        return ""
    if total is None and offset == 0 and returned < limit:
        return ""
    params = [(k, v) for k, v in request.args.items(multi=True)
              if k not in ("sysparm_offset", "sysparm_limit")]

    def url(at: int) -> str:
        query = urlencode([*params, ("sysparm_offset", str(at)), ("sysparm_limit", str(limit))])
        return f"<{base}{request.path}?{query}>"

    links = [f'{url(0)};rel="first"']
    if offset > 0:
        links.append(f'{url(max(0, offset - limit))};rel="prev"')
    has_next = offset + limit < total if total is not None else returned >= limit
    if has_next:
        links.append(f'{url(offset + limit)};rel="next"')
    if total is not None:
        links.append(f'{url(max(0, (total - 1) // limit * limit))};rel="last"')
    return ",".join(links)


def _incident_row(ticket: Ticket) -> Row:
    """One world ticket as an incident row; all values strings, empty references as ""."""
    state = STATE_BY_WORLD[ticket.state]
    resolved = ticket.resolved_at is not None
    # Formatting dominates start-up for 100k tickets; updated_at is always one of the other three.
    opened = format_datetime(ticket.opened_at)
    resolved_at = format_datetime(ticket.resolved_at) if ticket.resolved_at else ""
    closed_at = format_datetime(ticket.closed_at) if ticket.closed_at else ""
    updated = {ticket.opened_at: opened, ticket.resolved_at: resolved_at, ticket.closed_at: closed_at}.get(
        ticket.updated_at) or format_datetime(ticket.updated_at)
    agent = ticket.assignee
    agent_id = agent.id if agent else ""
    done_by = (agent.user_name if agent else "system") if state == RESOLVED else (
        "system" if state == CLOSED else ticket.requester.user_name)
    return {
        "sys_id": ticket.id, "number": ticket.number, "short_description": ticket.title,
        "description": ticket.description, "category": ticket.category,
        "subcategory": SUBCATEGORY.get(ticket.category, ""), "priority": str(ticket.priority),
        "impact": str(ticket.impact), "urgency": str(ticket.urgency), "state": state, "incident_state": state,
        "hold_reason": "1" if state == "3" else "", "caller_id": ticket.requester.id,
        "assigned_to": agent_id, "assignment_group": ticket.group.id, "business_service": ticket.service.id,
        "contact_type": ticket.channel, "opened_at": opened,
        "opened_by": ticket.requester.id,
        "resolved_at": resolved_at,
        "resolved_by": agent_id if resolved else "",
        "closed_at": closed_at,
        "closed_by": agent_id if ticket.closed_at else "", "reopened_time": "",
        "close_code": ticket.close_code if resolved else "",
        "close_notes": f"{ticket.close_code}: {ticket.title}" if resolved else "",
        "reopen_count": str(ticket.reopen_count), "reassignment_count": str(ticket.reassignment_count),
        "active": "false" if state in (CLOSED, CANCELED) else "true", "comments": "", "work_notes": "",
        "sys_created_on": opened, "sys_created_by": ticket.requester.user_name,
        "sys_updated_on": updated, "sys_updated_by": done_by,
        "sys_mod_count": str(ticket.mod_count),
    }


def _incident_rules(old: Mapping[str, str], changes: Row, now: str, actor_id: str) -> Row:
    """Business rules the instance runs on incident writes: state mirrors, resolve, close, reopen."""
    out = dict(changes)
    if "incident_state" in out and "state" not in out:
        out["state"] = out["incident_state"]
    new_state = out.get("state", old.get("state", ""))
    if "state" in out:
        out["incident_state"] = new_state
    was = old.get("state", "")
    if new_state == was:
        return {k: v for k, v in out.items() if v != old.get(k)}
    if new_state in (RESOLVED, CLOSED):
        out.setdefault("resolved_at", old.get("resolved_at") or now)
        out.setdefault("resolved_by", old.get("resolved_by") or actor_id)
    if new_state == CLOSED:
        out.setdefault("closed_at", now)
        out.setdefault("closed_by", actor_id)
    if new_state in OPEN_STATES and was in (RESOLVED, CLOSED):
        out.update(resolved_at="", resolved_by="", closed_at="", closed_by="", reopened_time=now,
                   reopen_count=str(int(old.get("reopen_count") or 0) + 1))
    out["active"] = "false" if new_state in (CLOSED, CANCELED) else "true"
    return {k: v for k, v in out.items() if v != old.get(k)}


def make_servicenow_server(sim: ServiceNowSimulator, *, host: str = "127.0.0.1", port: int = 0,
                           steady: Steady | None = None, tls: bool = False) -> SandboxServer:
    """A `SandboxServer` (not yet started) serving `sim`, with ServiceNow error envelopes for faults."""
    return SandboxServer(sim.wsgi_app, host=host, port=port, steady=steady, error_body=servicenow_error_body,
                         ssl_context=sandbox_tls() if tls else None)
