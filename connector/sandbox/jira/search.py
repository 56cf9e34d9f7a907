"""Issue search: the JQL schema the simulator's fields present to `jql`, compiling a query in the
caller's time zone, Cloud's enhanced search (`/search/jql` with opaque `nextPageToken`, bounded JQL
only, and `approximate-count`) and Data Center's `startAt` search with its result window. Searches are
cached per (JQL, user, versions of the fields the query reads): a page is a bisect into the cached
sorted list using the search-after key carried in the token, then serialising only the requested
fields from pre-encoded fragments."""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from collections.abc import Callable
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request

from connector.sandbox import jql
from connector.sandbox.jira.encode import _field_selection, _issues_json, _names_schema
from connector.sandbox.jira.model import (
    _CATEGORIES,
    ISSUE_TYPES,
    PRIORITIES,
    REQUEST_TYPES,
    RESOLUTIONS,
    STATUSES,
    _FieldDef,
    _Issue,
    _User,
)
from connector.sandbox.jira.render import _dumps, _View
from connector.sandbox.jira.web import UNBOUNDED_JQL, _errors, _int_arg, _json_body, _split_list

if TYPE_CHECKING:
    from connector.sandbox.jira.simulator import JiraSimulator

_TOKEN_TTL_MS = 7 * 86_400_000  # "This token will expire in 7 days" (spec)

# --------------------------------------------------------------------------------------------- JQL


def _canon_user(sim: JiraSimulator, user: _User | None) -> str | None:
    if user is None:
        return None
    return user.account_id if sim.cloud else user.name.lower()


def _schema(sim: JiraSimulator) -> jql.Schema:
    stamp = f"{len(sim._fields)}:{len(sim._projects)}"
    if sim._schema_cache is None or sim._schema_cache[0] != stamp:
        sim._schema_cache = (stamp, jql.Schema(_jql_fields(sim)))
    return sim._schema_cache[1]


def _jql_fields(sim: JiraSimulator) -> list[jql.FieldSpec]:
    f = jql.FieldSpec
    statuses = {k.lower(): k for k in STATUSES} | {s.id: s.name for s in STATUSES.values()}
    categories: dict[str, str] = {}
    for key, (cid, name, _) in _CATEGORIES.items():
        categories.update({key: key, str(cid): key, name.lower(): key})
    resolutions = {k.lower(): k for k in RESOLUTIONS} | {v: k for k, v in RESOLUTIONS.items()}
    types = {k.lower(): k for k in ISSUE_TYPES} | {v: k for k, v in ISSUE_TYPES.items()}
    priorities = {v.lower(): k for k, v in PRIORITIES.items()} | {str(k): k for k in PRIORITIES}
    components = {k.lower(): k for k in sim._components} | {v: k for k, v in sim._components.items()}
    canon = partial(_canon_user, sim)
    resolve_user = partial(_resolve_user, sim)
    specs = [
        f("issuekey", ("key", "issuekey", "id", "issue"), "key", lambda i: (i.project, i.seq),
          resolve=partial(_resolve_key, sim)),
        f("project", ("project",), "project", attrgetter("project"), resolve=partial(_resolve_project, sim)),
        f("parent", ("parent",), "issueref", lambda i: (i.parent.project, i.parent.seq) if i.parent else None,
          resolve=partial(_resolve_key, sim), sortable=False),
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
        f("assignee", ("assignee",), "user", lambda i: canon(i.assignee), resolve=resolve_user),
        f("reporter", ("reporter",), "user", lambda i: canon(i.reporter), resolve=resolve_user),
        f("creator", ("creator",), "user", lambda i: canon(i.creator), resolve=resolve_user),
    ]
    return specs + [_custom_spec(fd) for fd in sim._fields.values()
                    if fd.custom_id is not None and fd.searchable]


def _custom_spec(fd: _FieldDef) -> jql.FieldSpec:
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
    if role == "extra_datetime":
        return jql.FieldSpec(fid, names, "date", extra, custom_id=fd.custom_id)
    if role == "extra_select":
        return jql.FieldSpec(fid, names, "option", extra, resolve=option, custom_id=fd.custom_id)
    return jql.FieldSpec(fid, names, "text", lambda i: (extra(i) or "").lower() or None,
                         custom_id=fd.custom_id)


def _resolve_key(sim: JiraSimulator, text: str) -> tuple[str, int] | None:
    issue = sim._by_key.get(text.upper())
    if issue is None and text.isdigit():
        issue = sim._by_num.get(int(text))
    return (issue.project, issue.seq) if issue is not None else None


def _resolve_project(sim: JiraSimulator, text: str) -> str | None:
    for key, (pid, name, _) in sim._projects.items():
        if text.upper() == key or text == pid or text.lower() == name.lower():
            return key
    return None


def _resolve_user(sim: JiraSimulator, text: str) -> str | None:
    low = text.lower()
    if low in sim._credentials:
        return _canon_user(sim, sim._credentials[low][1])
    for user in (sim.me, *sim._users.values()):
        if text == user.account_id or low == user.email.lower() or (not sim.cloud and low in (
                user.name.lower(), user.key.lower())):
            return _canon_user(sim, user)
    return None


def _compile(sim: JiraSimulator, text: str, user: _User) -> jql.CompiledQuery:
    try:
        query = jql.parse(text)
        context = jql.Context(ZoneInfo(user.timezone), sim.clock(), _canon_user(sim, user))
        return jql.compile_query(query, _schema(sim), context)
    except jql.JQLError as exc:
        raise _errors(400, *exc.messages) from None


_NUM = attrgetter("num")


def _default_order(i: _Issue) -> tuple[int, int]:
    """Without ORDER BY: newest key first (unverified; the connector always orders explicitly)."""
    return (-i.seq, i.num)


def _ordered(compiled: jql.CompiledQuery) -> Callable[[_Issue], tuple[Any, ...]]:
    """Sort key with the issue id as final tiebreak (search-after needs a total order)."""
    if compiled.order:
        return compiled.key_function(tiebreak=_NUM)
    return _default_order


def _matches(sim: JiraSimulator, text: str, compiled: jql.CompiledQuery, user: _User) -> list[_Issue]:
    deps = tuple(sim._versions.get(fid, 0) for fid in sorted(compiled.fields))
    stamp: tuple[Any, ...] = (sim._issues_version, deps, sim.now_ms() if compiled.uses_now else 0)
    cache_key = (text.strip(), user.account_id)
    hit = sim._search_cache.get(cache_key)
    if hit is not None and hit[0] == stamp:
        sim._search_cache.move_to_end(cache_key)
        return hit[1]
    matches = compiled.matches
    found = [i for i in sim._issues if matches(i)]  # _issues is in id order: the final tiebreak
    # Stable passes from the least significant term compare flat values instead of nested tuples:
    # about three times faster than one sort on the combined key for 100k issues.
    for term in reversed(compiled.term_keys() if compiled.order else [_default_order]):
        found.sort(key=term)
    sim._search_cache[cache_key] = (stamp, found)
    while len(sim._search_cache) > 16:
        sim._search_cache.popitem(last=False)
    return found


def _issue_text(i: _Issue) -> str:
    parts = [i.summary, i.description or "", *(c.body for c in i.comments or [])]
    return " ".join(parts).lower()


# --------------------------------------------------------------------------------------------- page tokens


def _token(sim: JiraSimulator, text: str, compiled: jql.CompiledQuery, last: _Issue) -> str:
    values = compiled.sort_values(last) if compiled.order else ()
    raw = _dumps([1, _jql_hash(text), list(values), last.num, sim.now_ms()])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _token_position(sim: JiraSimulator, token: str, text: str, compiled: jql.CompiledQuery,
                    found: list[_Issue]) -> int:
    invalid = _errors(400, "The provided next page token is invalid or expired.")  # wording unverified
    try:
        version, digest, values, num, issued = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise invalid from None
    if version != 1 or digest != _jql_hash(text) or sim.now_ms() - int(issued) > _TOKEN_TTL_MS:
        raise invalid
    keyfn = _ordered(compiled)
    if compiled.order:
        if len(values) != len(compiled.order):
            raise invalid
        target = (*compiled.key_from_values([_tuples(v) for v in values]), num)
    else:
        issue = sim._by_num.get(num)
        if issue is None:
            raise invalid
        target = keyfn(issue)
    return bisect.bisect_right(found, target, key=keyfn)


def _jql_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def _tuples(value: Any) -> Any:
    """JSON turned sort-key tuples into lists; lists and tuples never compare in Python."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


# --------------------------------------------------------------------------------------------- endpoints


def _search_params(request: Request, allowed: set[str]) -> dict[str, Any]:
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


def _search_jql(sim: JiraSimulator, request: Request, view: _View) -> str:
    params = _search_params(request, {"jql", "nextPageToken", "maxResults", "fields", "expand",
                                      "properties", "fieldsByKeys", "reconcileIssues", "failFast"})
    text = str(params.get("jql") or "")
    max_results = _int_arg(params.get("maxResults"), "maxResults", 50)
    if max_results < 1:
        raise _errors(400, "maxResults must be greater than 0.")  # wording unverified
    reconcile = params.get("reconcileIssues") or []
    if len(reconcile) > 50:
        raise _errors(400, "The number of issues to reconcile cannot exceed 50.")  # wording unverified
    compiled = _compile(sim, text, view.user)
    if not compiled.query.bounded:
        raise _errors(400, UNBOUNDED_JQL)
    if len(compiled.query.order_by) > jql.MAX_ORDER_BY_FIELDS:
        raise _errors(400, "The ORDER BY clause can contain at most 7 fields.")  # wording unverified
    found = _matches(sim, text, compiled, view.user)
    token = params.get("nextPageToken")
    start = _token_position(sim, str(token), text, compiled, found) if token else 0
    page = found[start:start + min(max_results, sim.max_results_cap)]
    is_last = start + len(page) >= len(found)
    fids, id_only = _field_selection(sim, params.get("fields"), default="id")
    props = _split_list(params.get("properties"))
    parts = ['{"issues":[', _issues_json(sim, page, fids, view, id_only=id_only, properties=props), "]"]
    if not is_last and page:
        parts.append(',"nextPageToken":' + _dumps(_token(sim, text, compiled, page[-1])))
    parts.append(',"isLast":' + ("true" if is_last else "false"))
    parts.append(_names_schema(sim, _split_list(params.get("expand")), fids))
    parts.append("}")
    return "".join(parts)


def _search_dc(sim: JiraSimulator, request: Request, view: _View) -> str:
    params = _search_params(request, {"jql", "startAt", "maxResults", "fields", "expand", "properties",
                                      "validateQuery", "fieldsByKeys"})
    text = str(params.get("jql") or "")
    start = max(0, _int_arg(params.get("startAt"), "startAt", 0))
    max_results = min(max(0, _int_arg(params.get("maxResults"), "maxResults", 50)), sim.max_results_cap)
    if start + max_results > sim.result_window:
        raise _errors(400, f"Result window is too large, startAt + maxResults must be less than or equal to: "
                           f"[{sim.result_window}] but was [{start + max_results}].")
    compiled = _compile(sim, text, view.user)
    found = _matches(sim, text, compiled, view.user)
    page = found[start:start + max_results]
    fids, _ = _field_selection(sim, params.get("fields"), default="*navigable")
    props = _split_list(params.get("properties"))
    head = _dumps({"expand": "schema,names", "startAt": start, "maxResults": max_results, "total": len(found)})
    issues = _issues_json(sim, page, fids, view, properties=props)
    names = _names_schema(sim, _split_list(params.get("expand")), fids)
    return head[:-1] + ',"issues":[' + issues + "]" + names + "}"


def _approximate_count(sim: JiraSimulator, request: Request, view: _View) -> dict[str, Any]:
    body = _json_body(request)
    text = str(body.get("jql") or "") if isinstance(body, dict) else ""
    compiled = _compile(sim, text, view.user)
    if not compiled.query.bounded:
        raise _errors(400, UNBOUNDED_JQL)
    return {"count": len(_matches(sim, text, compiled, view.user))}
