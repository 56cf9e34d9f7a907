"""The platform issue resources: `GET` and `PUT` of an issue (`notifyUsers=false` needs admin rights),
create and bulk create (sub-tasks included: a sub-task type, and a parent of a standard type in the same
project), the project's issue types for create (`createmeta`) and the site's (`issuetype`), issue links,
platform comments (public unless the `sd.public.comment` property says internal, or restricted by
`visibility`), and issue properties. Every write stamps `updated`,
bumps the versions of the fields it touched (so cached searches that read them are recomputed) and
records the emails Jira would have sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from connector.sandbox.jira.encode import _field_selection, _issue_json, _names_schema
from connector.sandbox.jira.fields import _apply, _edit_operations, _validate
from connector.sandbox.jira.model import (
    ISSUE_TYPES,
    LINK_TYPES,
    REQUEST_TYPES,
    SUBTASK_TYPES,
    _Comment,
    _Issue,
    _Link,
    _User,
)
from connector.sandbox.jira.render import _adf_text, _comment_json, _is_adf, _issuetype_json, _View
from connector.sandbox.jira.search import _resolve_project
from connector.sandbox.jira.web import (
    NOTIFY_NEEDS_ADMIN,
    _bool_arg,
    _errors,
    _HTTPError,
    _int_arg,
    _json_body,
    _no_route,
    _split_list,
)

if TYPE_CHECKING:
    from connector.sandbox.jira.simulator import JiraSimulator


def _get_issue_json(sim: JiraSimulator, request: Request, issue: _Issue, view: _View) -> str:
    fids, _ = _field_selection(sim, request.args.getlist("fields") or None, default="*all")
    props = _split_list(request.args.getlist("properties"))
    body = _issue_json(sim, issue, fids, view, properties=props)
    return body[:-1] + _names_schema(sim, _split_list(request.args.get("expand")), fids) + "}"


def _edit_issue(sim: JiraSimulator, request: Request, issue: _Issue, view: _View, admin: bool) -> tuple[int, Any]:
    notify = _bool_arg(request.args.get("notifyUsers"), True)
    if not notify and not admin:
        # Observed on Cloud: the whole edit is rejected, not just the flag ignored.
        raise _errors(403, NOTIFY_NEEDS_ADMIN)
    body = _json_body(request)
    if not isinstance(body, dict):
        raise _errors(400, "Request body must be a JSON object.")
    changes, errors = _validate(sim, _edit_operations(body), view)
    if errors:
        raise _errors(400, errors=errors)
    changed = _apply(sim, issue, changes)
    if changed:
        issue.updated_ms = sim.now_ms()
        sim._touch(*changed, "updated")
        sim._notify(issue, "issue_updated", customer=False, watchers=notify)
    if _bool_arg(request.args.get("returnIssue"), False):
        return 200, _issue_json(sim, issue, sim._all_fields(), view)
    return 204, None


# --------------------------------------------------------------------------------------------- create


def _create_issue(sim: JiraSimulator, request: Request, view: _View) -> tuple[int, Any]:
    body = _json_body(request)
    created, errors = _create_one(sim, body, view)
    if created is None:
        raise _errors(400, errors=errors)
    return 201, _created_json(created, view)


def _create_bulk(sim: JiraSimulator, request: Request, view: _View) -> tuple[int, Any]:
    body = _json_body(request)
    updates = body.get("issueUpdates") if isinstance(body, dict) else None
    if not isinstance(updates, list):
        raise _errors(400, "issueUpdates must be a list.")
    if len(updates) > 50:
        raise _errors(400, "The number of issues to create in bulk cannot exceed 50.")  # wording unverified
    issues, failures = [], []
    for n, item in enumerate(updates):
        created, errors = _create_one(sim, item, view)
        if created is None:
            failures.append({"status": 400, "elementErrors": {"errorMessages": [], "errors": errors},
                             "failedElementNumber": n})
        else:
            issues.append(_created_json(created, view))
    return (201 if issues else 400), {"issues": issues, "errors": failures}


def _created_json(issue: _Issue, view: _View) -> dict[str, Any]:
    return {"id": str(issue.num), "key": issue.key, "self": f"{view.base}/rest/api/{view.v}/issue/{issue.num}"}


def _create_one(sim: JiraSimulator, body: Any, view: _View) -> tuple[_Issue | None, dict[str, str]]:
    if not isinstance(body, dict):
        return None, {"issue": "The issue must be a JSON object."}
    fields = dict(body.get("fields") or {})
    errors: dict[str, str] = {}
    project = _project_value(sim, fields.pop("project", None))
    if project is None:
        errors["project"] = "Specify a valid project ID or key"
    issuetype = _issuetype_value(fields.pop("issuetype", None))
    if issuetype is None:
        errors["issuetype"] = "Specify a valid issue type"
    parent_ref = fields.pop("parent", None)
    parent = None
    if project is not None and issuetype is not None:
        parent = _check_hierarchy(sim, project, issuetype, parent_ref, errors)
    if "summary" not in fields:
        errors["summary"] = "You must specify a summary of the issue."
    try:
        operations = _edit_operations({"fields": fields, "update": body.get("update") or {}})
    except _HTTPError:
        return None, {"update": "Invalid update operations."}
    changes, field_errors = _validate(sim, operations, view)
    errors.update(field_errors)
    if errors or project is None or issuetype is None:
        return None, errors
    ms = sim.now_ms()
    issue = sim._new_issue(project, "", issuetype, ms, view.user)
    if sim._is_service_project(project) and parent is None:  # a sub-task is no customer request
        issue.request_type = next((n for n, (_, t) in REQUEST_TYPES.items() if t == issuetype), "Get IT help")
    if parent is not None:
        sim._adopt(parent, issue)
    _apply(sim, issue, changes)
    sim._touch(*(fd.id for fd, _, _ in changes))
    return issue, {}


def _check_hierarchy(sim: JiraSimulator, project: str, issuetype: str, ref: Any,
                     errors: dict[str, str]) -> _Issue | None:
    """The parent of a sub-task, or None; Jira's per-field errors for a type the project's issue type
    scheme lacks, a sub-task without a parent, a parent that cannot have sub-tasks or is elsewhere."""
    if issuetype not in sim._project_types[project]:
        errors["issuetype"] = "The issue type selected is invalid."  # the spec's bulk-create example
        return None
    subtask = issuetype in SUBTASK_TYPES
    if ref is None:
        if subtask:  # observed on Cloud and Data Center
            errors["issuetype"] = "Issue type is a sub-task but parent issue key or id not specified."
        return None
    if not isinstance(ref, dict):
        errors["parent"] = "data was not an object"  # observed (pycontribs/jira#396)
        return None
    text = str(ref.get("key") or ref.get("id") or "")
    parent = sim._by_key.get(text.upper()) or (sim._by_num.get(int(text)) if text.isdigit() else None)
    if parent is None:
        errors["parent"] = "Could not find issue by id or key."  # wording unverified
        return None
    if not subtask or parent.issuetype in SUBTASK_TYPES:
        # Observed on Cloud: a standard issue's parent must be an epic (the sandbox has none), and a
        # sub-task's parent must be a standard issue, never another sub-task.
        errors["parent"] = "Given parent work item does not belong to appropriate hierarchy."
        return None
    if parent.project != project:
        errors["project"] = "Sub-tasks must be created in the same project as the parent."  # the spec's example
        return None
    return parent


def _project_value(sim: JiraSimulator, value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    text = str(value.get("key") or value.get("id") or "")
    key = _resolve_project(sim, text) if text else None
    return key if key is not None and (text.upper() == key or text == sim._projects[key][0]) else None


def _issue_types(sim: JiraSimulator, view: _View) -> list[dict[str, Any]]:
    """getIssueAllTypes: the types of the projects the caller can browse (here: every project)."""
    used = set().union(*sim._project_types.values())
    return [_issuetype_json(name, view) for name in ISSUE_TYPES if name in used]


def _createmeta_types(sim: JiraSimulator, request: Request, project_ref: str, view: _View) -> dict[str, Any]:
    """The issue types a create in the project may use: its issue type scheme, sub-task types included."""
    key = _resolve_project(sim, project_ref)
    if key is None:
        raise _errors(404, f"No project could be found with key '{project_ref}'.")  # wording unverified
    types = [_issuetype_json(n, view) for n in ISSUE_TYPES if n in sim._project_types[key]]
    start = max(0, _int_arg(request.args.get("startAt"), "startAt", 0))
    limit = _int_arg(request.args.get("maxResults"), "maxResults", 50)
    if limit > 200:
        raise _errors(400, "Parameter 'maxResults' must not exceed the limit '200'")
    page = types[start:start + max(limit, 0)]
    if sim.cloud:
        return {"issueTypes": page, "maxResults": limit, "startAt": start, "total": len(types)}
    # Data Center pages as `values` with `isLast` (shape unverified against a live 9.x site).
    return {"values": page, "maxResults": limit, "startAt": start, "total": len(types),
            "isLast": start + len(page) >= len(types)}


def _issuetype_value(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    if "id" in value:
        return next((n for n, i in ISSUE_TYPES.items() if i == str(value["id"])), None)
    name = str(value.get("name", ""))
    return next((n for n in ISSUE_TYPES if n.lower() == name.lower()), None)


# --------------------------------------------------------------------------------------------- links


def _create_link(sim: JiraSimulator, request: Request, view: _View) -> tuple[int, Any]:
    body = _json_body(request)
    if not isinstance(body, dict) or not all(k in body for k in ("type", "inwardIssue", "outwardIssue")):
        raise _errors(400, "The issue link type, inward issue and outward issue are required.")
    wanted = body["type"] if isinstance(body["type"], dict) else {}
    link_type = next((t for t in LINK_TYPES if t.id == str(wanted.get("id")) or t.name == wanted.get("name")),
                     None)
    if link_type is None:
        raise _errors(404, f"No issue link type with name '{wanted.get('name')}' found.")
    inward = _linked(sim, body["inwardIssue"])
    outward = _linked(sim, body["outwardIssue"])
    comment = body.get("comment")
    comment_text = _comment_text(comment.get("body"), view) if isinstance(comment, dict) else None
    visibility = comment.get("visibility") if isinstance(comment, dict) else None
    visibility = visibility if isinstance(visibility, dict) else None
    duplicate = any(link.type is link_type and link.inward is inward and link.outward is outward
                    for link in inward.links or [])
    if not duplicate:
        # A repeated request still answers 201 and creates nothing new (documented).
        link = _Link(sim._next_link_id, link_type, inward, outward)
        sim._next_link_id += 1
        ms = sim.now_ms()
        for issue in (inward, outward):
            issue.links = [*(issue.links or []), link]
            issue.updated_ms = ms
        sim._touch("issuelinks", "updated")
    if comment_text is not None:
        # "optionally add a comment to the from (outward) issue"; added for duplicates too (spec).
        _add_comment(sim, outward, view.user, comment_text, public=visibility is None, visibility=visibility)
    return 201, None


def _linked(sim: JiraSimulator, ref: Any) -> _Issue:
    if not isinstance(ref, dict) or not (ref.get("key") or ref.get("id")):
        raise _errors(400, "An issue key or id is required.")
    return sim._get_issue(str(ref.get("key") or ref.get("id")))


# --------------------------------------------------------------------------------------------- comments


def _list_comments(sim: JiraSimulator, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
    comments = issue.comments or []
    start = max(0, _int_arg(request.args.get("startAt"), "startAt", 0))
    limit = min(max(0, _int_arg(request.args.get("maxResults"), "maxResults", 5000)), 5000)
    page = comments[start:start + limit]
    return {"startAt": start, "maxResults": limit, "total": len(comments),
            "comments": [_comment_json(sim, issue, c, view) for c in page]}


def _add_platform_comment(sim: JiraSimulator, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
    body = _json_body(request)
    if not isinstance(body, dict):
        raise _errors(400, "Request body must be a JSON object.")
    text = _comment_text(body.get("body"), view)
    properties = {str(p.get("key")): p.get("value") for p in body.get("properties") or []
                  if isinstance(p, dict)}
    internal = bool((properties.get("sd.public.comment") or {}).get("internal"))
    visibility = body.get("visibility") if isinstance(body.get("visibility"), dict) else None
    comment = _add_comment(sim, issue, view.user, text, public=not internal and visibility is None,
                           visibility=visibility, properties=properties)
    return _comment_json(sim, issue, comment, view)


def _comment_text(raw: Any, view: _View) -> str:
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


def _add_comment(sim: JiraSimulator, issue: _Issue, author: _User, text: str, *, public: bool,
                 visibility: dict[str, Any] | None = None, properties: dict[str, Any] | None = None) -> _Comment:
    ms = sim.now_ms()
    comment = _Comment(sim._next_comment_id, author, text, ms, public, visibility, dict(properties or {}))
    sim._next_comment_id += 1
    issue.comments = [*(issue.comments or []), comment]
    issue.updated_ms = ms
    sim._touch("comment", "updated")
    # JSM emails the customer on "Public comment added" unless they wrote it themselves.
    sim._notify(issue, "comment_added", customer=public and author is not issue.reporter, watchers=True)
    return comment


# --------------------------------------------------------------------------------------------- properties


def _property_routes(request: Request, issue: _Issue, rest: list[str]) -> tuple[int, Any]:
    stored = issue.properties or {}
    base = request.host_url.rstrip("/")
    if not rest and request.method == "GET":
        return 200, {"keys": [{"key": k, "self": f"{base}/rest/api/2/issue/{issue.num}/properties/{k}"}
                              for k in stored]}
    if len(rest) != 1:
        raise _no_route(request)
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
