"""ServiceNow Table API on plain `requests`: keyset paging on (resolution time, sys_id), Batch API later.

Why not pysnow or PySNC: see README ("Dependencies"). Facts relied on: shared reference
servicenow-api.md §3-§4 — v2 returns 200 + [] for no rows, every value is a string, dates are UTC
`YYYY-MM-DD HH:MM:SS`, a short page is not the last page (ACLs trim after the limit), only an empty
page is.
"""

from __future__ import annotations

import base64
import http.cookiejar
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import orjson
import requests

from connector.config import BasicAuth, NativeSurvey, OAuthClientCredentials, ServiceNowSystem
from connector.errors import AuthError, RequestError, ResponseError, SystemError_, TransientError
from connector.http import Caller
from connector.mapping import Mapping, WriteBack, parse_datetime
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
from connector.redact import redact, register_secret
from connector.systems import RawPage
from connector.systems.pipeline import pipelined

log = logging.getLogger("vloop.servicenow")
SN_TIME = "%Y-%m-%d %H:%M:%S"
SYS_ID = re.compile(r"[0-9a-f]{32}")
BATCH_ITEMS = 100  # requests per Batch API call
TASK_CLOSED = frozenset({"3", "4", "7"})  # task states Closed Complete, Closed Incomplete, Closed Skipped
BATCH_ROUNDS = 3  # calls for the items the instance left unserviced
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
HINTS = {
    400: "check the table name and the mapping's encoded query (resolved.query) and field names",
    401: "check the integration user's name and password (or OAuth client) in the config",
    403: "the integration user lacks a role or ACL on this table or field (docs/servicenow.md)",
    404: "check the instance URL and the table name",
}


def sn_time(value: datetime) -> str:
    """A UTC literal for encoded queries; literals are read as UTC, never `gs.dateGenerate` (user's zone)."""
    return value.astimezone(UTC).strftime(SN_TIME)


def keyset_query(base: str, field: str, after: Cursor) -> str:
    """Encoded query for rows strictly after (at, id) in (field, sys_id) order, base filter in every group.

    `^NQ` starts a new OR group, so the base filter and the ORDER BY are repeated in each group.
    With an empty id the position is "from `at` inclusive".
    """
    order = f"^ORDERBY{field}^ORDERBYsys_id"
    prefix = f"{base}^" if base else ""
    at = sn_time(after.at)
    if not after.id:
        return f"{prefix}{field}>={at}{order}"
    return f"{prefix}{field}>{at}{order}^NQ{prefix}{field}={at}^sys_id>{after.id}{order}"


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class _OAuth(requests.auth.AuthBase):
    """Client-credentials bearer token, fetched on first use and refreshed shortly before it expires."""

    def __init__(self, token_url: str, auth: OAuthClientCredentials, caller: Caller):
        self.token_url, self.auth, self.caller = token_url, auth, caller
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        response = self.caller.session.post(self.token_url, data={
            "grant_type": "client_credentials", "client_id": self.auth.client_id,
            "client_secret": self.auth.client_secret.get_secret_value()},
            timeout=self.caller.timeout, auth=_no_auth,  # the session's auth is this object: don't recurse
            **self.caller.transport)
        if response.status_code != 200:
            raise AuthError(self.caller.system, f"POST {self.token_url}", f"token request refused "
                            f"(HTTP {response.status_code})", status=response.status_code,
                            hint="check oauth client_id/client_secret and that client credentials are enabled")
        body = response.json()
        self._token = str(body["access_token"])
        register_secret(self._token)
        self._expires = time.monotonic() + float(body.get("expires_in", 1800)) - 60

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._fetch()
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def _field(row: dict[str, Any], name: str, *, display: bool = False) -> str:
    """A value of a `sysparm_display_value=all` answer: {"value", "display_value"} per field."""
    value = row.get(name)
    if isinstance(value, dict):
        return str(value.get("display_value" if display else "value") or "")
    return str(value or "")


@dataclass
class _Batch:
    """One Batch API call in the making: items already decided, items to send (with their request), and
    the items whose note an earlier attempt left on the ticket."""

    decided: dict[int, WriteBackOutcome] = field(default_factory=dict)
    waiting: dict[str, tuple[WriteBackItem, dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    noted: set[int] = field(default_factory=set)


def _columns(body: dict[str, Any]) -> list[str]:
    """The columns a write-back PATCH sets (the journal field reads back empty, so it is not checked)."""
    return [c for c in body if c != "work_notes"]


def _sn_value(value: Any) -> str | int | float:
    """Table API input: date-times as UTC literals; numbers and text as they are."""
    if isinstance(value, datetime):
        return sn_time(value)
    return value if isinstance(value, int | float) else str(value)


def _by_name_or_id(field: str, value: str) -> str:
    """A reference condition on a sys_id, or on the referenced record's name (for readable config)."""
    clean = value.replace("^", "")
    return f"{field}={clean}" if SYS_ID.fullmatch(clean) else f"{field}.name={clean}"


def _native_answer(row: dict[str, Any], comments: dict[str, str]) -> NativeAnswer | None:
    """A metric result as an answer; None when it names no ticket or holds no number (logged)."""
    ticket, instance = str(row.get("instance.trigger_id") or ""), str(row.get("instance") or "")
    at = parse_datetime(row.get("instance.taken_on")) or parse_datetime(row.get("sys_created_on"))
    try:
        score = int(float(str(row.get("actual_value"))))
    except ValueError:
        score = None
    if not ticket or at is None or score is None:
        log.warning("survey answer %s skipped: no ticket, time or numeric value", row.get("sys_id"))
        return None
    return NativeAnswer(ticket_id=ticket, answered_at=at, score=score, comment=comments.get(instance),
                        external_id=instance)


def _sys_id(ticket_id: str) -> str:
    """Ticket ids come from our store, but they go into a URL path and a query: allow sys_ids only."""
    if not ticket_id.isalnum():
        raise ValueError(f"not a sys_id: {ticket_id!r}")
    return ticket_id


class ServiceNowSource:
    """Reads resolved records of the mapping's table from one instance."""

    def __init__(self, name: str, config: ServiceNowSystem, mapping: Mapping, *, caller: Caller | None = None):
        self.name = name
        self.config = config
        self.mapping = mapping
        self.base_url = str(config.url).rstrip("/")
        self.caller = caller or Caller(name, config.http, hints=HINTS)
        self.page_size = config.pull.page_size or mapping.page_size
        self._groups: dict[str, str | None] = {}  # assignment group name -> sys_id
        self._columns_seen: set[frozenset[str]] = set()  # write-back columns the table echoed back
        # No session cookies: JSESSIONID / BIGipServerpool pin every request to one node, where one
        # transaction per session runs at a time (shared reference reliability-security.md §6).
        self.caller.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        auth = config.auth
        if isinstance(auth, BasicAuth):
            self.caller.session.auth = (auth.user, auth.password.get_secret_value())
        else:
            self.caller.session.auth = _OAuth(auth.token_url or f"{self.base_url}/oauth_token.do", auth, self.caller)

    @property
    def requests_sent(self) -> int:
        return self.caller.requests_sent

    def table_url(self, table: str) -> str:
        return f"{self.base_url}/api/now/v2/table/{table}"

    def _get(self, table: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.caller.request("GET", self.table_url(table), params=params)
        body = self.caller.json(response)
        if not isinstance(body, dict) or not isinstance(body.get("result"), list):
            raise ResponseError(self.name, f"GET {self.table_url(table)}", "answer has no `result` list")
        rows: list[dict[str, Any]] = body["result"]
        return rows

    def connect(self) -> None:
        """One cheap authenticated read, so bad credentials fail before any paging starts."""
        self._get(self.mapping.table or "incident", {"sysparm_limit": "1", "sysparm_fields": "sys_id",
                                                     "sysparm_no_count": "true"})

    def _base_query(self) -> str:
        parts = [p for p in (self.mapping.resolved.query, self.config.query) if p]
        return "^".join(parts)

    def pull_resolved(self, since: datetime, until: datetime | None = None) -> Iterator[RawPage]:
        """Keyset pages of resolved records; stops only on an empty page."""
        field = self.mapping.resolved.field
        fields = sorted({"sys_id", field, *self.mapping.source_paths()})
        position = Cursor(since, "")
        base = self._base_query()
        if until is not None:
            base = f"{base}^{field}<={sn_time(until)}" if base else f"{field}<={sn_time(until)}"
        while True:
            params = {
                "sysparm_query": keyset_query(base, field, position),
                "sysparm_fields": ",".join(fields),
                "sysparm_limit": str(self.page_size),
                "sysparm_display_value": "false",
                "sysparm_exclude_reference_link": "true",
                "sysparm_no_count": "true",
                "sysparm_suppress_pagination_header": "true",
            }
            rows = self._get(self.mapping.table or "incident", params)
            if not rows:
                return
            last = rows[-1]
            at = parse_datetime(last.get(field))
            if at is None:
                raise ResponseError(self.name, f"GET {self.table_url(self.mapping.table or 'incident')}",
                                    f"record {last.get('sys_id')} has no {field}; is the mapping's resolved.query "
                                    "selecting unresolved records?")
            position = Cursor(at, str(last["sys_id"]))
            yield RawPage(rows, position)

    def current_resolutions(self, ticket_ids: list[str]) -> dict[str, datetime]:
        """Still-resolved tickets among `ticket_ids` (the mapping's resolved query), in batches of 100."""
        field, table, out = self.mapping.resolved.field, self.mapping.table or "incident", {}
        for start in range(0, len(ticket_ids), 100):
            chunk = ticket_ids[start:start + 100]
            query = "^".join(p for p in (self._base_query(), f"sys_idIN{','.join(chunk)}") if p)
            rows = self._get(table, {"sysparm_query": query, "sysparm_fields": f"sys_id,{field}",
                                     "sysparm_limit": str(len(chunk)), "sysparm_no_count": "true",
                                     "sysparm_exclude_reference_link": "true"})
            for row in rows:
                at = parse_datetime(row.get(field))
                if at is not None:
                    out[str(row["sys_id"])] = at
        return out

    def pull_native(self, since: datetime, native: NativeSurvey) -> Iterator[NativePage]:
        """Completed survey answers about this table's records: asmt_metric_result rows of the score
        question, joined to their asmt_assessment_instance (whose trigger_id is the ticket), keyset on the
        result's creation time. Comments come from the comment question of the same instances."""
        table = self.mapping.table or "incident"
        base = (f"{_by_name_or_id('metric', native.metric)}^instance.state=complete"
                f"^instance.trigger_table={table}")
        fields = "sys_id,sys_created_on,actual_value,instance,instance.trigger_id,instance.taken_on"
        position = Cursor(since, "")
        while True:
            rows = self._get("asmt_metric_result", {
                "sysparm_query": keyset_query(base, "sys_created_on", position), "sysparm_fields": fields,
                "sysparm_limit": str(self.page_size), "sysparm_no_count": "true",
                "sysparm_exclude_reference_link": "true"})
            if not rows:
                return
            comments = self._survey_comments([str(r.get("instance", "")) for r in rows], native.comment_metric)
            answers = [a for a in (_native_answer(r, comments) for r in rows) if a is not None]
            last = rows[-1]
            at = parse_datetime(last.get("sys_created_on"))
            if at is None:
                raise ResponseError(self.name, f"GET {self.table_url('asmt_metric_result')}",
                                    f"survey answer {last.get('sys_id')} has no sys_created_on")
            position = Cursor(at, str(last["sys_id"]))
            yield NativePage(answers, position)

    def _survey_comments(self, instances: list[str], metric: str | None) -> dict[str, str]:
        if metric is None:
            return {}
        out: dict[str, str] = {}
        wanted = sorted({i for i in instances if i})
        for start in range(0, len(wanted), 100):
            chunk = wanted[start:start + 100]
            rows = self._get("asmt_metric_result", {
                "sysparm_query": f"{_by_name_or_id('metric', metric)}^instanceIN{','.join(chunk)}",
                "sysparm_fields": "instance,string_value", "sysparm_limit": str(len(chunk) * 2),
                "sysparm_no_count": "true", "sysparm_exclude_reference_link": "true"})
            for row in rows:
                text = str(row.get("string_value") or "").strip()
                if text and text != "N/A":  # N/A: the question was left unanswered
                    out[str(row.get("instance"))] = text
        return out

    def write_back(self, items: Iterable[WriteBackItem]) -> Iterator[tuple[int, WriteBackOutcome]]:
        """Field values and the work note of each item in one PATCH, 100 PATCHes per Batch API call,
        calls in parallel up to the system's max_concurrency; outcomes as each call returns."""
        spec = self.mapping.write_back
        if spec is None:
            return
        yield from pipelined(self._batches(items, spec), self._batch, self.config.http.max_concurrency)

    def _batches(self, items: Iterable[WriteBackItem], spec: WriteBack) -> Iterator[_Batch]:
        """Batch API calls ready to send, built in the calling thread while earlier calls are in flight."""
        stream = iter(items)
        while chunk := list(islice(stream, BATCH_ITEMS)):
            yield self._prepare(chunk, spec)

    def _prepare(self, chunk: list[WriteBackItem], spec: WriteBack) -> _Batch:
        batch = _Batch()
        unclear = [i for i in chunk if i.unclear and i.note]
        try:
            noted = self._notes_present(unclear)
        except SystemError_ as exc:
            # Without the look-up a note could be added twice: those items wait for a run that can look.
            batch.decided |= {i.key: WriteBackOutcome(False, error=f"cannot check for an earlier note: {exc}")
                              for i in unclear}
            noted = set()
        table = self.mapping.table or "incident"
        for item in chunk:
            if item.key in batch.decided:
                continue
            body = {name: _sn_value(item.values[value]) for name, value in spec.fields.items()
                    if item.values.get(value) is not None}
            if item.note and item.key not in noted:
                body["work_notes"] = item.note  # internal: `comments` would reach the customer
            if not body:  # nothing left to write: the note is on the ticket already, or none was wanted
                batch.decided[item.key] = WriteBackOutcome(True, note_written=bool(item.note))
                continue
            batch.noted |= {item.key} & noted
            columns = _columns(body)
            headers = [{"name": "Content-Type", "value": "application/json"},
                       {"name": "Accept", "value": "application/json"}]
            if frozenset(columns) in self._columns_seen:  # checked once: the echoed record is not needed again
                headers.append({"name": "X-no-response-body", "value": "true"})
            batch.waiting[str(item.key)] = (item, body, {
                "id": str(item.key), "method": "PATCH", "exclude_response_headers": True,
                "url": f"/api/now/v2/table/{table}/{_sys_id(item.ticket_id)}"
                       f"?sysparm_fields={','.join(['sys_id', *columns])}",
                "headers": headers, "body": base64.b64encode(orjson.dumps(body)).decode()})
        return batch

    def _batch(self, batch: _Batch) -> list[tuple[int, WriteBackOutcome]]:
        """One Batch API call; items the instance did not get to (`unserviced_requests`) go again."""
        out = dict(batch.decided)
        waiting = batch.waiting
        for _ in range(BATCH_ROUNDS):
            if not waiting:
                break
            try:
                response = self.caller.request(
                    "POST", f"{self.base_url}/api/now/v1/batch", replay=False, headers=JSON_HEADERS,
                    data=orjson.dumps({"batch_request_id": f"vloop-{min(waiting)}",
                                       "rest_requests": [entry[2] for entry in waiting.values()]}))
            except (TransientError, SystemError_) as exc:
                # A batch that may have been applied: fields are absolute, notes are looked up next time.
                out |= {item.key: WriteBackOutcome(False, error=str(exc)) for item, _, _ in waiting.values()}
                waiting = {}
                break
            answer = self.caller.json(response, "POST")
            for result in answer.get("serviced_requests") or []:
                entry = waiting.pop(str(result.get("id")), None)
                if entry is not None:
                    out[entry[0].key] = self._item_outcome(entry[0], entry[1], result)
        for item, _, _ in waiting.values():
            out[item.key] = WriteBackOutcome(False, error="the instance left the request unserviced "
                                             f"{BATCH_ROUNDS} times (Batch API busy)")
        # A note found on the ticket is written, whatever became of the fields this time.
        return [(k, replace(o, note_written=True) if k in batch.noted else o) for k, o in out.items()]

    def _item_outcome(self, item: WriteBackItem, body: dict[str, Any], result: dict[str, Any]) -> WriteBackOutcome:
        status = int(result.get("status_code") or 0)
        table = self.mapping.table or "incident"
        if 200 <= status < 300:
            columns = frozenset(_columns(body))
            if columns in self._columns_seen:  # a table's columns do not come and go within a run
                return WriteBackOutcome(True, note_written="work_notes" in body)
            # The Table API ignores fields a table does not have; what comes back shows what was kept.
            try:
                echoed = orjson.loads(base64.b64decode(result.get("body") or "")).get("result") or {}
            except ValueError:
                echoed = {}
            missing = [c for c in columns if c not in echoed]
            if not missing:
                self._columns_seen.add(columns)
            else:
                return WriteBackOutcome(False, note_written="work_notes" in body, error=(
                    f"{self.name}: {table} has no field {', '.join(sorted(missing))} (or the integration user cannot "
                    "read it); add it or fix the mapping's write_back (vloop setup servicenow --check)"))
            return WriteBackOutcome(True, note_written="work_notes" in body)
        message = str(result.get("error_message") or result.get("status_text") or "")
        hint = {403: "the integration user may not write these fields or the work note; a closed incident "
                     "accepts only a few fields: add a write ACL for them (docs/servicenow.md, section 10 "
                     "\"Write-back fields\")",
                404: "the record is gone or not readable"}.get(status, "see the message")
        return WriteBackOutcome(False, error=f"{self.name}: PATCH {table}/{item.ticket_id} (batch): HTTP {status} "
                                             f"{redact(message)[:200]}; {hint}")

    def _notes_present(self, items: list[WriteBackItem]) -> set[int]:
        """Which of these items' notes are already on their tickets (an earlier attempt had an unclear end)."""
        found: set[int] = set()
        for start in range(0, len(items), 100):
            chunk = items[start:start + 100]
            ids = ",".join(sorted({_sys_id(i.ticket_id) for i in chunk}))
            rows = self._get("sys_journal_field", {
                "sysparm_query": f"element=work_notes^element_idIN{ids}^valueLIKE(ref vloop-",
                "sysparm_fields": "element_id,value", "sysparm_limit": "1000", "sysparm_no_count": "true"})
            texts: dict[str, list[str]] = {}
            for row in rows:
                texts.setdefault(str(row.get("element_id")), []).append(str(row.get("value", "")))
            found |= {i.key for i in chunk if any(i.reference in t for t in texts.get(i.ticket_id, []))}
        return found

    def create_follow_up(self, request: FollowUpRequest) -> FollowUpRef:
        """An incident_task (or the configured table) under the ticket, owned by the ticket's group."""
        target = self.config.follow_up
        existing = self._get(target.table, {
            "sysparm_query": f"correlation_id={request.correlation.replace('^', '')}",
            "sysparm_fields": "sys_id,number,sys_created_on", "sysparm_limit": "1", "sysparm_no_count": "true"})
        if not existing:
            body: dict[str, Any] = {
                target.parent_field: _sys_id(request.ticket_id), "short_description": request.summary,
                "description": request.description, "due_date": sn_time(request.due_at),
                "correlation_id": request.correlation, "correlation_display": "Virtuous Loop"}
            group = self._group_id(request.group)
            if group:
                body["assignment_group"] = group
            response = self.caller.request("POST", self.table_url(target.table), replay=False, json=body,
                                           params={"sysparm_fields": "sys_id,number,sys_created_on"})
            existing = [self.caller.json(response, "POST").get("result") or {}]
        row = existing[0]
        return FollowUpRef(remote_id=str(row.get("sys_id")), number=str(row.get("number") or ""),
                           created_at=parse_datetime(row.get("sys_created_on")) or datetime.now(UTC))

    def _group_id(self, name: str | None) -> str | None:
        if not name:
            return None
        if name not in self._groups:
            rows = self._get("sys_user_group", {"sysparm_query": f"name={name.replace('^', '')}",
                                                "sysparm_fields": "sys_id", "sysparm_limit": "1"})
            self._groups[name] = str(rows[0]["sys_id"]) if rows else None
        return self._groups[name]

    def follow_up_states(self, remote_ids: list[str]) -> dict[str, FollowUpState]:
        """Closed when the task is no longer active (Closed Complete / Incomplete / Skipped)."""
        table, out = self.config.follow_up.table, {}
        for start in range(0, len(remote_ids), 100):
            chunk = [_sys_id(i) for i in remote_ids[start:start + 100]]
            rows = self._get(table, {"sysparm_query": f"sys_idIN{','.join(chunk)}",
                                     "sysparm_fields": "sys_id,state,active,closed_at,close_notes,sys_updated_on",
                                     "sysparm_display_value": "all", "sysparm_limit": str(len(chunk)),
                                     "sysparm_no_count": "true"})
            for row in rows:
                state, active = _field(row, "state"), _field(row, "active")
                closed = active == "false" or state in TASK_CLOSED
                at = parse_datetime(_field(row, "closed_at")) or parse_datetime(_field(row, "sys_updated_on"))
                label = _field(row, "state", display=True)
                notes = _field(row, "close_notes")
                out[_field(row, "sys_id")] = FollowUpState(
                    _field(row, "sys_id"), at if closed else None,
                    (f"{label}: {notes}" if notes else label)[:300] if closed else None)
        return out

    def open_tickets_of(self, requester_ids: list[str], since: datetime) -> list[OpenTicket]:
        """Active records of the mapping's table opened since `since` by these callers."""
        table = self.mapping.table or "incident"
        caller = self.mapping.fields["requester_id"].source if "requester_id" in self.mapping.fields else "caller_id"
        out = []
        for start in range(0, len(requester_ids), 100):
            chunk = [_sys_id(i) for i in requester_ids[start:start + 100]]
            rows = self._get(table, {
                "sysparm_query": f"active=true^opened_at>={sn_time(since)}^{caller}IN{','.join(chunk)}",
                "sysparm_fields": f"sys_id,number,opened_at,{caller}", "sysparm_limit": "1000",
                "sysparm_no_count": "true", "sysparm_exclude_reference_link": "true"})
            out += [OpenTicket(str(r["sys_id"]), str(r.get("number") or ""), str(r.get(caller) or ""),
                               parse_datetime(r.get("opened_at")) or since) for r in rows]
        return out

    def post_comment(self, ticket_id: str, body: str) -> None:
        """An Additional comment (`comments`, customer-visible; `work_notes` are internal) on the record."""
        table = self.mapping.table or "incident"
        self.caller.request("PATCH", f"{self.table_url(table)}/{_sys_id(ticket_id)}", replay=False,
                            params={"sysparm_fields": "sys_id"}, json={"comments": body})

    def find_comment(self, ticket_id: str, marker: str) -> bool:
        """Journal entries are rows of sys_journal_field; the record's own `comments` reads back empty."""
        query = f"element_id={_sys_id(ticket_id)}^element=comments^valueLIKE{marker.replace('^', '')}"
        rows = self._get("sys_journal_field", {"sysparm_query": query, "sysparm_fields": "sys_id,value",
                                               "sysparm_limit": "20", "sysparm_no_count": "true"})
        return any(marker in str(r.get("value", "")) for r in rows)

    def missing_fields(self) -> list[str]:
        """Mapping sources whose first segment is not a column of the table (sys_dictionary)."""
        table = self.mapping.table or "incident"
        # Task-derived tables (incident, sc_req_item, ...) inherit most columns from `task`.
        rows = self._get("sys_dictionary", {"sysparm_query": f"nameIN{table},task", "sysparm_fields": "element",
                                            "sysparm_limit": "10000", "sysparm_no_count": "true"})
        known = {r.get("element") for r in rows}
        if not known - {None, ""}:
            raise RequestError(self.name, f"GET {self.table_url('sys_dictionary')}",
                               f"no dictionary entries readable for {table}; the mapped fields cannot be checked",
                               hint="grant the integration user read on sys_dictionary, or check the table name")
        return [s for s in self.mapping.source_paths() if s.split(".")[0] not in known]
