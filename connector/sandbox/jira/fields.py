"""The field catalogue and edits: the system and custom fields the site defines (custom field ids
differ between Cloud and Data Center, so the connector has to discover them through `/field`), the
`/field` and `editmeta` answers, creating a custom field (`POST /field`), and how the
`fields`/`update` operations of an edit or create are validated and normalised per field role (all or
nothing, with Jira's per-field error messages) and then applied to an issue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.sandbox.jira.model import CUSTOM_FIELD_IDS, PRIORITIES, _Feedback, _FieldDef, _Issue, _User
from connector.sandbox.jira.render import (
    _adf_text,
    _component_json,
    _is_adf,
    _ms,
    _priority_json,
    _View,
)
from connector.sandbox.jira.web import _errors, _json_body
from connector.sandbox.world import CATEGORIES

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from connector.sandbox.jira.simulator import JiraSimulator

_CF = "com.atlassian.jira.plugin.system.customfieldtypes:"
# The built-in custom field types the simulator can store, by the `type` key of createCustomField:
# (add_field kind, schema.type, Cloud clause-name suffix, the searchers the spec lists as valid for it).
CREATABLE_TYPES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    f"{_CF}float": ("number", "number", "Number", (f"{_CF}exactnumber", f"{_CF}numberrange")),
    f"{_CF}textfield": ("text", "string", "Short text", (f"{_CF}textsearcher",)),
    f"{_CF}datetime": ("datetime", "datetime", "Date Time Picker", (f"{_CF}datetimerange",)),
    f"{_CF}select": ("select", "option", "Dropdown", (f"{_CF}multiselectsearcher",)),
}
# Wording unverified; Jira's FieldResource answers 400 (not 403) when validateCreate fails, permission
# included, and the platform spec documents that 400.
CREATE_FIELD_NEEDS_ADMIN = "Only Jira administrators can create custom fields."


def _define_fields(sim: JiraSimulator) -> None:
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
        # As Cloud's /field lists them: `parent` without a schema and not "searchable", although JQL
        # takes `parent = KEY`. The parent is set when a sub-task is created, not by an edit.
        _FieldDef("parent", "Parent", "parent", {}, ("parent",), orderable=False, searchable=False,
                  optional=True),
        _FieldDef("subtasks", "Sub-tasks", "subtasks",
                  {"type": "array", "items": "issuelinks", "system": "subtasks"}, ("subtasks",),
                  orderable=False, searchable=False),
        _FieldDef("comment", "Comment", "comment", {"type": "comments-page", "system": "comment"},
                  ("comment",), navigable=False, orderable=False),
        _FieldDef("issuekey", "Key", "issuekey", {}, ("id", "issue", "issuekey", "key"), in_issue=False),
        _FieldDef("statusCategory", "Status Category", "statuscategory", {}, ("statusCategory",),
                  in_issue=False),
    ]
    for f in system:
        sim._fields[f.id] = f
    ids = CUSTOM_FIELD_IDS[sim.mode]
    groups = [g.name for g in sim.world.groups]
    categories = [c.title() for c in CATEGORIES]
    _custom(sim, "Request Type", ids["Request Type"], "request_type",
            "com.atlassian.servicedesk:vp-origin", "sd-customerrequesttype", "Request Type")
    _custom(sim, "Satisfaction", ids["Satisfaction"], "satisfaction",
            "com.atlassian.servicedesk:sd-request-feedback", "sd-feedback", "Satisfaction",
            edit_ops=("set",))
    _custom(sim, "Satisfaction date", ids["Satisfaction date"], "satisfaction_date",
            "com.atlassian.servicedesk:sd-request-feedback-date", "datetime", "Date Time Picker")
    _custom(sim, "Support group", ids["Support group"], "support_group",
            "com.atlassian.jira.plugin.system.customfieldtypes:select", "option", "Dropdown",
            edit_ops=("set",), options=groups)
    _custom(sim, "Category", ids["Category"], "category",
            "com.atlassian.jira.plugin.system.customfieldtypes:select", "option", "Dropdown",
            edit_ops=("set",), options=categories)
    _custom(sim, "Request language", ids["Request language"], "language",
            "com.atlassian.jira.plugin.system.customfieldtypes:textfield", "string", "Short text",
            edit_ops=("set",))


def _custom(sim: JiraSimulator, name: str, number: int, role: str, custom: str, schema_type: str,
            cloud_suffix: str, *, edit_ops: tuple[str, ...] = (), options: Sequence[str] = ()) -> _FieldDef:
    clause = (f"cf[{number}]", name) + ((f"{name}[{cloud_suffix}]",) if sim.cloud else ())
    fd = _FieldDef(f"customfield_{number}", name, role,
                   {"type": schema_type, "custom": custom, "customId": number}, clause, custom_id=number,
                   orderable=role not in ("request_type",), edit_ops=edit_ops)
    for value in options:
        fd.options[str(sim._next_option_id)] = value
        sim._next_option_id += 1
    sim._fields[fd.id] = fd
    return fd


def _field_list(sim: JiraSimulator) -> list[dict[str, Any]]:
    out = []
    for fd in sim._fields.values():
        item: dict[str, Any] = {"id": fd.id, "name": fd.name, "custom": fd.custom_id is not None,
                                "orderable": fd.orderable and fd.in_issue, "navigable": fd.navigable,
                                "searchable": fd.searchable, "clauseNames": list(fd.clause_names)}
        if sim.cloud:
            item["key"] = fd.id
        if fd.schema:
            item["schema"] = fd.schema
        out.append(item)
    return out


def _create_custom_field(sim: JiraSimulator, request: Request, view: _View, admin: bool) -> tuple[int, Any]:
    """createCustomField: *Administer Jira* only. Like Jira's FieldResource, the field gets a global
    context (all projects, all issue types) and is put on no screen, so it is not in editmeta (and
    cannot be set by an edit) until an admin adds it to the edit screen (`JiraSimulator.add_to_screen`)."""
    if not admin:
        raise _errors(400, CREATE_FIELD_NEEDS_ADMIN)
    body = _json_body(request)
    if not isinstance(body, dict):
        raise _errors(400, "Request body must be a JSON object.")
    name, kind = body.get("name"), body.get("type")
    searcher, description = body.get("searcherKey"), body.get("description")
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "The custom field name must be provided."  # wording unverified
    if not isinstance(kind, str) or not kind:
        errors["type"] = "The custom field type must be provided."  # wording unverified
    elif kind not in CREATABLE_TYPES:
        errors["type"] = f"The custom field type '{kind}' is not supported by this sandbox."
    elif searcher is not None and searcher not in CREATABLE_TYPES[kind][3]:
        errors["searcherKey"] = f"The searcher '{searcher}' is not valid for the custom field type '{kind}'."
    if description is not None and not isinstance(description, str):
        errors["description"] = "The description must be a string."
    if errors:
        raise _errors(400, errors=errors)
    assert isinstance(name, str) and isinstance(kind, str)
    role, schema_type, suffix, _ = CREATABLE_TYPES[kind]
    fd = _custom(sim, name.strip(), sim._next_custom_id, f"extra_{role}", kind, schema_type, suffix)
    fd.searchable = searcher is not None  # "If no searcher is provided, the field isn't searchable."
    sim._next_custom_id += 1
    sim._schema_cache = None
    sim._plans.clear()
    return 201, next(item for item in _field_list(sim) if item["id"] == fd.id)


def _editmeta(sim: JiraSimulator, issue: _Issue, view: _View) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for fd in sim._fields.values():
        if not fd.edit_ops:
            continue
        meta: dict[str, Any] = {"required": fd.id == "summary", "schema": fd.schema, "name": fd.name,
                                "key": fd.id, "operations": list(fd.edit_ops)}
        if fd.role == "priority":
            meta["allowedValues"] = [_priority_json(p, view) for p in PRIORITIES]
        elif fd.role == "components":
            meta["allowedValues"] = [_component_json(sim, c, view) for c in sim._components]
        elif fd.options:
            meta["allowedValues"] = [{"self": f"{view.base}/rest/api/{view.v}/customFieldOption/{oid}",
                                      "value": value, "id": oid} for oid, value in fd.options.items()]
        fields[fd.id] = meta
    return {"fields": fields}


# --------------------------------------------------------------------------------------------- edits


def _edit_operations(body: dict[str, Any]) -> list[tuple[str, str, Any]]:
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


def _validate(sim: JiraSimulator, operations: list[tuple[str, str, Any]],
              view: _View) -> tuple[list[tuple[_FieldDef, str, Any]], dict[str, str]]:
    """Check every operation; return normalised changes or per-field errors (applied all or nothing)."""
    changes: list[tuple[_FieldDef, str, Any]] = []
    errors: dict[str, str] = {}
    for fid, verb, value in operations:
        fd = sim._fields.get(fid)
        if fd is None or not fd.edit_ops:
            errors[fid] = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
            continue
        if verb not in fd.edit_ops:
            errors[fid] = f"Field '{fid}' does not support operation '{verb}'."  # wording unverified
            continue
        try:
            changes.append((fd, verb, _normalise(sim, fd, verb, value, view)))
        except ValueError as exc:
            errors[fid] = str(exc)
    return changes, errors


def _normalise(sim: JiraSimulator, fd: _FieldDef, verb: str, value: Any, view: _View) -> Any:
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
        return _priority_value(value)
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
        return [_component_value(sim, x) for x in items]
    if role == "user":
        return _user_value(sim, fd, value)
    if role in ("support_group", "category", "extra_select"):
        return _select_value(fd, value)
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
    if role == "extra_datetime":
        return None if value is None else _datetime_ms(value)
    if role == "satisfaction":
        if value is None:
            return None
        rating = value.get("rating") if isinstance(value, dict) else None
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise ValueError("The rating must be an integer between 1 and 5.")  # wording unverified
        return rating
    raise ValueError(f"Field '{fd.id}' cannot be set. It is not on the appropriate screen, or unknown.")


def _datetime_ms(value: Any) -> int:
    """A Date Time Picker value, `2011-10-19T10:29:29.908+1100`, as epoch ms (an offset is required)."""
    parsed = None
    if isinstance(value, str):
        for parse in (lambda v: datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%f%z"), datetime.fromisoformat):
            try:
                parsed = parse(value)
                break
            except ValueError:
                continue
    if parsed is None or parsed.tzinfo is None:
        # wording unverified
        raise ValueError("Invalid date format. Please enter the date in the format \"yyyy-MM-dd'T'HH:mm:ss.SSSZ\".")
    return _ms(parsed)


def _priority_value(value: Any) -> int:
    if isinstance(value, dict):
        if "id" in value and str(value["id"]).isdigit() and int(value["id"]) in PRIORITIES:
            return int(value["id"])
        names = {v.lower(): k for k, v in PRIORITIES.items()}
        if "name" in value and str(value["name"]).lower() in names:
            return names[str(value["name"]).lower()]
    raise ValueError("Specify the Priority (id or name) in the proper format")


def _component_value(sim: JiraSimulator, value: Any) -> str:
    if isinstance(value, dict):
        if "name" in value and value["name"] in sim._components:
            return str(value["name"])
        by_id = {v: k for k, v in sim._components.items()}
        if "id" in value and str(value["id"]) in by_id:
            return by_id[str(value["id"])]
        if "name" in value:
            raise ValueError(f"Component name '{value['name']}' is not valid")
        raise ValueError(f"Component with id '{value.get('id')}' does not exist.")
    raise ValueError("expected Object containing a 'name' property")


def _user_value(sim: JiraSimulator, fd: _FieldDef, value: Any) -> _User | None:
    if value is None:
        if fd.id == "reporter":
            raise ValueError("Reporter is required.")
        return None
    ident = None
    if isinstance(value, dict):
        ident = value.get("accountId") if sim.cloud else (value.get("name") or value.get("key"))
    user = None
    if isinstance(ident, str):
        candidates = [sim.me, *sim._users.values()]
        user = next((u for u in candidates if ident in ((u.account_id,) if sim.cloud else (u.name, u.key))),
                    None)
    if user is None:
        raise ValueError("Specified user does not exist or you do not have required permissions"
                         if sim.cloud else f"User '{ident}' does not exist.")
    if fd.id == "assignee" and not user.agent:
        raise ValueError(f"User '{user.account_id if sim.cloud else user.name}' cannot be assigned issues.")
    return user


def _select_value(fd: _FieldDef, value: Any) -> str | None:
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


def _apply(sim: JiraSimulator, issue: _Issue, changes: list[tuple[_FieldDef, str, Any]]) -> list[str]:
    changed: list[str] = []
    for fd, verb, value in changes:
        before = _current(issue, fd)
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
            _store(sim, issue, fd, after)
            changed.append(fd.id)
    return changed


def _current(issue: _Issue, fd: _FieldDef) -> Any:
    role = fd.role
    if role == "satisfaction":
        return issue.feedback.rating if issue.feedback else None
    if role.startswith("extra_"):
        return (issue.custom or {}).get(fd.id)
    return getattr(issue, fd.id if role == "user" else role)  # other roles are _Issue attributes


def _store(sim: JiraSimulator, issue: _Issue, fd: _FieldDef, value: Any) -> None:
    role = fd.role
    if role == "satisfaction":
        issue.feedback = _Feedback(value, None, sim.now_ms()) if value is not None else None
        sim._touch(sim._role_field("satisfaction_date"))
    elif role.startswith("extra_"):
        if issue.custom is None:
            issue.custom = {}
        issue.custom[fd.id] = value
    else:
        setattr(issue, fd.id if role == "user" else role, value)
