"""`vloop setup`: are the write-back fields there and writable (`--check`); create Jira's (`--create`).

Speaks only through the sources' own request helpers (`ServiceNowSource._get`, `JiraSource.connect`,
`_search` and `_rest`), so retries, pacing, redaction and error mapping stay where they are.

- ServiceNow: sys_dictionary says whether each column exists on the table (or on `task`, which
  incident and the other task tables extend), its `internal_type`, and whether it is read-only. Write
  ACLs cannot be evaluated through the API without writing, and a PATCH of the current values changes
  nothing, so it would not show whether a real change is allowed: write access is left to a manual
  check (docs/servicenow.md). Schema changes belong in an update set: vloop never adds columns.
- Jira: `/field` resolves each `{Display name}` (or field id) and its `schema.type`; `editmeta` of a recently resolved
  issue the system syncs says whether the field is on the edit screen and settable for the integration
  user. `--create` posts the missing fields to `/field` (Administer Jira only); Jira gives a new field a
  global context but puts it on no screen, so adding it to the edit screen is always the next step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from connector.errors import AuthError, RequestError, SystemError_
from connector.mapping import Mapping, jira_field_ref
from connector.systems.fieldtypes import (
    COLUMN_NAME,
    JIRA_CREATE,
    JIRA_LABELS,
    SERVICENOW_LABELS,
    fits,
    missing_options,
    needed,
    servicenow_fields,
    too_short,
)

if TYPE_CHECKING:
    from connector.systems.jira import JiraSource
    from connector.systems.servicenow import ServiceNowSource

FieldStatus = Literal["ok", "missing", "not writable", "wrong type", "unchecked", "created"]
DOCS = {"servicenow": 'docs/servicenow.md, "Write-back fields"', "jira": 'docs/jira.md, "Write-back fields"'}
SCREEN_FIX = ("add it to the edit screen of the project's issue types (Project settings → Screens, or "
              "Jira settings → Issues → Screens) and check the integration user has Edit issues")


@dataclass(frozen=True)
class FieldCheck:
    """One write-back field: as the mapping names it, the value it takes, what was found, and the fix."""

    field: str
    value: str
    status: FieldStatus
    detail: str = ""
    fix: str = ""

    def line(self, system: str) -> str:
        text = f"{system}: {self.field} ({self.value}): {self.status}"
        if self.detail:
            text += f" — {self.detail}"
        return text + (f"; fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class WriteBackCheck:
    """Every write-back field of one system, plus notes that concern them all."""

    system: str
    fields: tuple[FieldCheck, ...]
    notes: tuple[str, ...] = ()
    sample: str | None = None  # the Jira issue whose editmeta was read

    @property
    def ok(self) -> bool:
        return all(f.status in ("ok", "created") for f in self.fields)

    def lines(self) -> list[str]:
        return [f.line(self.system) for f in self.fields] + [f"{self.system}: {n}" for n in self.notes]


def check_write_back(source: ServiceNowSource | JiraSource) -> WriteBackCheck:
    """Whether each field the mapping writes back exists, has a fitting type and can be written."""
    from connector.systems.servicenow import ServiceNowSource

    return _check_servicenow(source) if isinstance(source, ServiceNowSource) else _check_jira(source)


def create_write_back_fields(source: JiraSource) -> WriteBackCheck:
    """Create the Jira custom fields the mapping names and the site lacks; report every field."""
    check = _check_jira(source)
    out: list[FieldCheck] = []
    created: list[str] = []
    stopped: SystemError_ | None = None
    for f in check.fields:
        if f.status != "missing" or _by_id(f.field):  # a field cannot be created with a chosen id
            out.append(f)
            continue
        name, spec = f.field.strip("{}"), JIRA_CREATE[f.value]
        if stopped is not None:
            out.append(replace(f, detail="not created", fix=f"create a {spec.label} field named \"{name}\" by hand"))
            continue
        try:
            field = source._rest("POST", f"{source.url}/rest/api/{source._version}/field", {
                "name": name, "type": spec.type, "searcherKey": spec.searcher,
                "description": f"Virtuous Loop (vloop) writes the {f.value} of the customer's survey answer here."})
        except SystemError_ as exc:
            stopped = exc
            if isinstance(exc, RequestError | AuthError):
                out.append(replace(f, detail=f"Jira refused to create it (HTTP {exc.status})",
                                   fix=f"a Jira administrator creates a {spec.label} field named \"{name}\""))
            else:  # an unclear end: the field may exist now
                out.append(replace(f, detail=f"creating it failed: {exc}",
                                   fix="run vloop setup jira --check before trying again: it may have been created"))
            continue
        created.append(name)
        out.append(FieldCheck(f.field, f.value, "created", f"{field.get('id')}, {spec.label}",
                              "add it to the edit screen (see next)"))
    notes = list(check.notes)
    if created:
        project = f"project {check.sample.rsplit('-', 1)[0]}" if check.sample else "the project"
        notes.append(f"next: add {', '.join(repr(n) for n in created)} to the edit screen of {project}'s issue "
                     "types (Project settings → Screens, or Jira settings → Issues → Screens); Jira created them "
                     "with a global context (all projects and issue types) but on no screen, so they cannot be "
                     "set yet. Then run vloop setup jira --check.")
    if isinstance(stopped, RequestError | AuthError):
        by_hand = [f"\"{f.field.strip('{}')}\" ({JIRA_CREATE[f.value].label})" for f in out
                   if f.status == "missing" and not _by_id(f.field)]
        notes.append(f"Jira refused to create custom fields: {stopped.detail} — creating custom fields needs the "
                     f"Administer Jira global permission. Ask a Jira administrator to create {', '.join(by_hand)} "
                     f"and add them to the edit screen ({DOCS['jira']}).")
    if not check.fields:
        return check
    return WriteBackCheck(check.system, tuple(out), tuple(notes), check.sample)


def servicenow_field_list(system: str, mapping: Mapping) -> list[str]:
    """`vloop setup servicenow --create`: the columns to add by hand (vloop does not change the schema)."""
    table = mapping.table or "incident"
    fields = mapping.write_back.fields if mapping.write_back else {}
    lines = [f"{system}: {table}.{f.describe()}" for f in servicenow_fields(fields)]
    if not fields:
        suggestion = ", ".join(f"{f.name}: {f.value}" for f in servicenow_fields({}) if not f.optional)
        lines.append(f"{system}: then list them in the mapping's write_back.fields, e.g. {{{suggestion}}}")
    return lines


# --- ServiceNow ---------------------------------------------------------------------------------------


def _check_servicenow(source: ServiceNowSource) -> WriteBackCheck:
    spec, table = source.mapping.write_back, source.mapping.table or "incident"
    wanted: dict[str, str] = dict(spec.fields) if spec else {}
    if spec is not None and spec.note:
        wanted.setdefault("work_notes", "note")
    if not wanted:
        return WriteBackCheck(source.name, (), ("the mapping writes nothing back (no write_back fields or note)",))
    names = [n for n in wanted if COLUMN_NAME.fullmatch(n)]
    rows = source._get("sys_dictionary", {
        "sysparm_query": f"nameIN{table},task^elementIN{','.join(names)}",
        "sysparm_fields": "name,element,internal_type,column_label,read_only,max_length",
        "sysparm_limit": "1000", "sysparm_no_count": "true"}) if names else []
    if not rows:
        _require_dictionary(source, table)
    found: dict[str, dict[str, Any]] = {}
    for row in rows:  # the table's own entry wins over the one it inherits from task
        element = str(row.get("element") or "")
        if element not in found or row.get("name") == table:
            found[element] = row
    checks = tuple(_servicenow_field(table, name, value, found.get(name)) for name, value in wanted.items())
    acl = ("write access is not checked: ServiceNow has no API that evaluates ACLs without writing. Check once "
           f"as the integration user that these fields can be written on a Resolved and on a Closed {table} "
           f"record (a Closed incident needs a write ACL for them), or watch vloop sync for refused writes "
           f"({DOCS['servicenow']})")
    return WriteBackCheck(source.name, checks, (acl,))


def _require_dictionary(source: ServiceNowSource, table: str) -> None:
    """No entries at all may mean none of the fields exist, or that sys_dictionary is not readable."""
    if not source._get("sys_dictionary", {"sysparm_query": f"name={table}", "sysparm_fields": "element",
                                          "sysparm_limit": "1", "sysparm_no_count": "true"}):
        raise RequestError(source.name, f"GET {source.table_url('sys_dictionary')}",
                           f"no dictionary entries readable for {table}; the write-back fields cannot be checked",
                           hint="grant the integration user read on sys_dictionary, or check the mapping's table")


def _servicenow_field(table: str, name: str, value: str, row: dict[str, Any] | None) -> FieldCheck:
    if not COLUMN_NAME.fullmatch(name):
        return FieldCheck(name, value, "missing", "not a column name",
                          "name the column (u_…), not its label, in the mapping's write_back.fields")
    if row is None:
        if value == "note":
            return FieldCheck(name, value, "missing", f"{table} has no work notes",
                              "set write_back.note: false, or map a task table (incident, sc_req_item, …)")
        (add,) = servicenow_fields({name: value})
        return FieldCheck(name, value, "missing", f"not a column of {table} or task",
                          f"add {table}.{add.describe()} in an update set ({DOCS['servicenow']})")
    kind = str(row.get("internal_type") or "")
    where = f"{SERVICENOW_LABELS.get(kind, kind)} on {row.get('name') or table}"
    if not fits("servicenow", value, kind):
        return FieldCheck(name, value, "wrong type", where,
                          f"{value} needs {needed('servicenow', value)}: map another column or add one")
    length = str(row.get("max_length") or "")
    longest = too_short(value, int(length)) if length.isdigit() and kind in ("string", "choice") else None
    if longest is not None:
        return FieldCheck(name, value, "wrong type", f"{where}, max length {length}",
                          f"set its Max length to 40: \"{longest}\" does not fit")
    if str(row.get("read_only") or "").lower() == "true":
        return FieldCheck(name, value, "not writable", f"{where}, read only in the dictionary",
                          "clear Read only on its dictionary entry, or map another column")
    return FieldCheck(name, value, "ok", where)


# --- Jira ---------------------------------------------------------------------------------------------


def _check_jira(source: JiraSource) -> WriteBackCheck:
    spec = source.mapping.write_back
    wanted = dict(spec.fields) if spec else {}
    if not wanted:
        return WriteBackCheck(source.name, (), (
            "the mapping lists no write_back fields: answers go into the internal comment only. To add score "
            "fields, list them by display name (e.g. {\"{Customer score}\": score}) and run "
            "vloop setup jira --create",))
    if source.client is None:
        source.connect()
    fields: list[dict[str, Any]] = source._rest("GET", f"{source.url}/rest/api/{source._version}/field") or []
    by_name: dict[str, list[dict[str, Any]]] = {}
    for f in fields:
        by_name.setdefault(str(f.get("name")), []).append(f)
    by_id = {str(f.get("id")): [f] for f in fields}
    issue = _sample_issue(source)
    meta: dict[str, Any] | None = None
    if issue is not None:
        answer = source._rest("GET", f"{source.url}/rest/api/{source._version}/issue/{issue['id']}/editmeta")
        meta = (answer or {}).get("fields") or {}
    key = str(issue.get("key")) if issue is not None else None
    checks = tuple(_jira_field(label, value, _matches(label, by_name, by_id), meta, key)
                   for label, value in wanted.items())
    notes = [] if key is None else [f"editability read from {key} (editmeta)"]
    return WriteBackCheck(source.name, checks, tuple(notes), key)


def _sample_issue(source: JiraSource) -> dict[str, Any] | None:
    """The most recently resolved issue the system syncs (write-backs go to those), else any of its issues."""
    restriction = [f"({p})" for p in (source.config.jql, source.mapping.resolved.jql) if p]
    queries = [" AND ".join(restriction) + f" ORDER BY {source.mapping.resolved.field} DESC"]
    if source.config.jql:
        queries.append(f"({source.config.jql}) ORDER BY key DESC")
    for jql in queries:
        body = source._search("search/jql" if source.cloud else "search",
                              {"jql": jql, "maxResults": 1, "fields": "resolutiondate"})
        if body["issues"]:
            return dict(body["issues"][0])
    return None


def _by_id(label: str) -> bool:
    return jira_field_ref(label)[1] is not None


def _matches(label: str, by_name: dict[str, list[dict[str, Any]]],
             by_id: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The fields a write_back key names: those with its display name (`{Name}`), or the one with its id."""
    name, field_id = jira_field_ref(label)
    return by_name.get(name, []) if name is not None else by_id.get(str(field_id), [])


def _jira_field(label: str, value: str, matches: list[dict[str, Any]], meta: dict[str, Any] | None,
                key: str | None) -> FieldCheck:
    name = label.strip("{}")
    if not matches and _by_id(label):
        return FieldCheck(label, value, "missing", "no field has this id (or the integration user cannot see it)",
                          "correct the id (Jira settings → Issues → Custom fields, or GET /rest/api/3/field), or "
                          "name the field by display name in braces")
    if not matches:
        spec = JIRA_CREATE[value]
        return FieldCheck(label, value, "missing", "no field has this name", (
            f"create a {spec.label} custom field named \"{name}\": vloop setup jira --create (needs Jira admin) "
            "or by hand, then add it to the edit screen"))
    field = matches[0]
    field_id, kind = str(field.get("id")), str((field.get("schema") or {}).get("type"))
    detail = f"{field_id}, {JIRA_LABELS.get(kind, kind)}" if field_id != label else \
        f"\"{field.get('name')}\", {JIRA_LABELS.get(kind, kind)}"
    if len(matches) > 1:
        detail += f"; {len(matches)} fields have this name and vloop writes the first"
    if not fits("jira", value, kind):
        return FieldCheck(label, value, "wrong type", detail,
                          f"{value} needs {needed('jira', value)}: map another field or create one")
    if meta is None:
        return FieldCheck(label, value, "unchecked", f"{detail}; no issue matches the system's jql to read "
                          "editmeta from", "run the check again once the project has an issue")
    edit = meta.get(field_id)
    if not isinstance(edit, dict) or "set" not in (edit.get("operations") or []):
        return FieldCheck(label, value, "not writable", f"{detail}, not on the edit screen of {key}", SCREEN_FIX)
    if kind == "option":
        options = [str(o.get("value")) for o in edit.get("allowedValues") or [] if isinstance(o, dict)]
        lacking = missing_options(value, options)
        if lacking:
            return FieldCheck(label, value, "wrong type", f"{detail}, without the option(s) {', '.join(lacking)}",
                              "add those options to the field's context, or use a Short text field")
    return FieldCheck(label, value, "ok", f"{detail}, editable on {key}")
