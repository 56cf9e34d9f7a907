"""Issue JSON for search pages and `GET issue`: which fields a request selects (`fields`, `*all`,
`*navigable`, `-x`), the `names`/`schema` expansions, and one encoder per field role that writes the
field's JSON text straight from the `_Issue`. A page is serialised as one list of fragments joined once,
with each field's key prefix and encoder looked up once per page (the cached plan), not once per issue;
this is what keeps a 100-issue page at a few milliseconds. Optional fields (`parent`) are left out of
an issue that has no value for them, as Jira does, on a slower path taken only when one is selected."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from connector.sandbox.jira.model import _FieldDef, _Issue
from connector.sandbox.jira.render import (
    _adf,
    _comments_page,
    _component_json,
    _dumps,
    _frag,
    _issue_ref_json,
    _issuetype_json,
    _links_json,
    _option_frag,
    _priority_json,
    _project_json,
    _request_type_json,
    _resolution_json,
    _status_json,
    _user_frag,
    _View,
)
from connector.sandbox.jira.web import _split_list

if TYPE_CHECKING:
    from connector.sandbox.jira.simulator import JiraSimulator


def _field_selection(sim: JiraSimulator, raw: Any, default: str) -> tuple[list[str], bool]:
    """Resolve `fields` (list, `*all`, `*navigable`, `-x`) to ordered field ids; True when only `id`."""
    tokens = _split_list(raw) or [default]
    include: set[str] = set()
    exclude = {t[1:] for t in tokens if t.startswith("-")}
    positive = [t for t in tokens if not t.startswith("-")]
    if not positive:
        positive = ["*navigable"]
    known = {f.id: f for f in sim._fields.values() if f.in_issue}
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


def _names_schema(sim: JiraSimulator, expand: list[str], fids: list[str]) -> str:
    out = ""
    if "names" in expand:
        out += ',"names":' + _dumps({fid: sim._fields[fid].name for fid in fids})
    if "schema" in expand:
        out += ',"schema":' + _dumps({fid: sim._fields[fid].schema for fid in fids if sim._fields[fid].schema})
    return out


def _issue_json(sim: JiraSimulator, issue: _Issue, fids: Sequence[str], view: _View, *, id_only: bool = False,
                properties: Sequence[str] = ()) -> str:
    return _issues_json(sim, [issue], fids, view, id_only=id_only, properties=properties)


def _issues_json(sim: JiraSimulator, issues: Sequence[_Issue], fids: Sequence[str], view: _View, *,
                 id_only: bool = False, properties: Sequence[str] = ()) -> str:
    """Comma-separated issue objects, built as one list of fragments joined once (one copy per page)."""
    if id_only:
        return ",".join([f'{{"id":"{issue.num}"}}' for issue in issues])
    plan = _plan(sim, fids)
    sparse = any(fd.optional for _, _, fd in plan)
    head = f'{{"expand":"{sim._expand}","id":"'
    self_url = f'","self":"{view.base}/rest/api/{view.v}/issue/'
    out: list[str] = []
    add = out.append
    for n, issue in enumerate(issues):
        add(f'{head if n == 0 else "," + head}{issue.num}{self_url}{issue.num}","key":"{issue.project}-'
            f'{issue.seq}","fields":{{')
        if sparse:
            add(_sparse_fields(sim, issue, view, plan))
        else:
            for prefix, encode, fd in plan:
                add(prefix)
                add(encode(sim, issue, view, fd))
        if properties:
            stored = issue.properties or {}
            wanted = stored if "*all" in properties else {k: stored[k] for k in properties if k in stored}
            add('},"properties":' + _dumps(wanted) + "}")
        else:
            add("}}")
    return "".join(out)


def _sparse_fields(sim: JiraSimulator, issue: _Issue, view: _View,
                   plan: list[tuple[str, _Encoder, _FieldDef]]) -> str:
    """The fields of one issue without the optional ones it has no value for."""
    parts = []
    for prefix, encode, fd in plan:
        text = encode(sim, issue, view, fd)
        if not (fd.optional and text == "null"):
            parts.append(prefix.lstrip(",") + text)
    return ",".join(parts)


def _plan(sim: JiraSimulator, fids: Sequence[str]) -> list[tuple[str, _Encoder, _FieldDef]]:
    """Per field: its JSON key prefix, encoder and definition (looked up once per page, not per issue)."""
    key = tuple(fids)
    plan = sim._plans.get(key)
    if plan is None:
        plan = [(f'{"," if n else ""}"{fid}":', _encoder(sim._fields[fid]), sim._fields[fid])
                for n, fid in enumerate(fids)]
        if len(sim._plans) > 256:
            sim._plans.clear()
        sim._plans[key] = plan
    return plan


# --------------------------------------------------------------------------------------------- encoders

_Encoder = Callable[["JiraSimulator", _Issue, _View, _FieldDef], str]


def _enc_summary(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return encode_basestring(i.summary)


def _enc_description(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(_adf(i.description) if view.v == "3" else i.description)


def _enc_issuetype(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.frags.get(("issuetype", i.issuetype)) or _frag(
        view, ("issuetype", i.issuetype), lambda: _issuetype_json(i.issuetype, view))


def _enc_project(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.frags.get(("project", i.project)) or _frag(
        view, ("project", i.project), lambda: _project_json(sim, i.project, view))


def _enc_status(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return view.frags.get(("status", i.status)) or _frag(
        view, ("status", i.status), lambda: _status_json(i.status, view))


def _enc_resolution(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    name = i.resolution
    if name is None:
        return "null"
    return view.frags.get(("resolution", name)) or _frag(
        view, ("resolution", name), lambda: _resolution_json(name, view))


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
    return view.frags.get(("priority", i.priority)) or _frag(
        view, ("priority", i.priority), lambda: _priority_json(i.priority, view))


def _enc_components(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return "[" + ",".join(_component_frag(sim, c, view) for c in i.components) + "]"


def _component_frag(sim: JiraSimulator, name: str, view: _View) -> str:
    return view.frags.get(("component", name)) or _frag(
        view, ("component", name), lambda: _component_json(sim, name, view))


def _enc_labels(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(i.labels)


def _enc_user(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _user_frag(sim, getattr(i, fd.id), view)


def _enc_links(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(_links_json(i, view)) if i.links else "[]"


def _enc_parent(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return "null" if i.parent is None else _dumps(_issue_ref_json(i.parent, view))


def _enc_subtasks(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps([_issue_ref_json(s, view) for s in i.subtasks]) if i.subtasks else "[]"


def _enc_comment(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(_comments_page(sim, i, view))


def _enc_select(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _option_frag(fd, getattr(i, fd.role), view)


def _enc_language(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return "null" if i.language is None else encode_basestring(i.language)


def _enc_request_type(sim: JiraSimulator, i: _Issue, view: _View, fd: _FieldDef) -> str:
    return _dumps(_request_type_json(i, view))


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
    if fd.role == "extra_datetime":  # stored as epoch ms, rendered in the caller's time zone
        return view.clock.quoted(value)
    return _option_frag(fd, value, view) if fd.role == "extra_select" else _dumps(value)


_ENCODERS: dict[str, _Encoder] = {
    "summary": _enc_summary, "description": _enc_description, "issuetype": _enc_issuetype,
    "project": _enc_project, "status": _enc_status, "resolution": _enc_resolution,
    "priority": _enc_priority, "components": _enc_components, "labels": _enc_labels, "user": _enc_user,
    "issuelinks": _enc_links, "parent": _enc_parent, "subtasks": _enc_subtasks, "comment": _enc_comment,
    "support_group": _enc_select, "category": _enc_select,
    "language": _enc_language, "request_type": _enc_request_type, "satisfaction": _enc_satisfaction,
    "satisfaction_date": _enc_satisfaction_date, "extra_number": _enc_extra, "extra_text": _enc_extra,
    "extra_select": _enc_extra, "extra_datetime": _enc_extra,
}
