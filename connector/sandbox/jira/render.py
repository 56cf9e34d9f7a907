"""How the simulator writes Jira's JSON: timestamps in the caller's profile time zone (fast, since a
large pull formats hundreds of thousands), Atlassian Document Format for v3 bodies, the per-request
`_View`, and the JSON of the resources an issue embeds (users, statuses, projects, components,
priorities, issue types, resolutions, links, comments, JSM request types). Fragments that repeat across
issues are encoded once per (base URL, API version) and reused from the view's fragment cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from connector.sandbox.jira.model import (
    _CATEGORIES,
    ISSUE_TYPES,
    PRIORITIES,
    REQUEST_TYPES,
    RESOLUTIONS,
    STATUSES,
    SUBTASK_TYPES,
    _Comment,
    _FieldDef,
    _Issue,
    _LinkType,
    _User,
)

if TYPE_CHECKING:
    from connector.sandbox.jira.simulator import JiraSimulator


class _Clockface:
    """Formats epoch ms in one time zone, fast: paging 100k issues formats 300k timestamps.

    UTC offsets are cached per 15-minute bucket (every real DST transition falls on one) and the
    date part per local day, so a timestamp costs a few integer operations.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[int, tuple[int, str]] = {}
        self._days: dict[int, str] = {}

    def quoted(self, ms: int | None) -> str:
        """The timestamp as a JSON string, or null."""
        return "null" if ms is None else '"' + self.format(ms) + '"'

    def format(self, ms: int) -> str:
        seconds = ms // 1000
        offset = self._offsets.get(seconds // 900)
        if offset is None:
            offset = self._offsets[seconds // 900] = self._offset(seconds)
        day, second = divmod(seconds + offset[0], 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        return prefix + _CLOCK_TIMES[second] + _CLOCK_MILLIS[ms % 1000] + offset[1]

    def _offset(self, seconds: int) -> tuple[int, str]:
        delta = datetime.fromtimestamp(seconds, self.tz).utcoffset()
        total = int(delta.total_seconds()) if delta is not None else 0
        minutes = abs(total) // 60
        return total, f"{'+' if total >= 0 else '-'}{minutes // 60:02d}{minutes % 60:02d}"


_EPOCH = datetime(1970, 1, 1)
# Every "HH:MM:SS" of a day and every ".mmm": table lookups beat formatting integers per timestamp.
_CLOCK_TIMES = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_CLOCK_MILLIS = [f".{n:03d}" for n in range(1000)]
_CLOCKFACES: dict[str, _Clockface] = {}


def _clockface(tz: ZoneInfo) -> _Clockface:
    face = _CLOCKFACES.get(tz.key)
    if face is None:
        face = _CLOCKFACES[tz.key] = _Clockface(tz)
    return face


@dataclass(frozen=True)
class _View:
    """How to render for one request: base URL, API version, the caller, and shared encodings."""

    base: str
    v: str  # "2" | "3"
    tz: ZoneInfo
    user: _User
    clock: _Clockface
    frags: dict[tuple[Any, ...], str]  # pre-encoded JSON of users, statuses, options … for (base, v)


def _view(sim: JiraSimulator, base: str, v: str, user: _User) -> _View:
    frags = sim._frag_sets.setdefault((base, v), {})
    tz = ZoneInfo(user.timezone)
    return _View(base, v, tz, user, _clockface(tz), frags)


# --------------------------------------------------------------------------------------------- formats


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _format_ts(ms: int, tz: ZoneInfo) -> str:
    """Jira's timestamp format: `2022-06-09T16:29:31.871-0700` (offset without a colon)."""
    return _clockface(tz).format(ms)


def _date_dto(ms: int, tz: ZoneInfo) -> dict[str, Any]:
    local = datetime.fromtimestamp(ms // 1000, tz)
    jira_ts = _format_ts(ms, tz)
    return {"iso8601": jira_ts[:19] + jira_ts[23:], "jira": jira_ts,
            "friendly": local.strftime("%d/%b/%y %I:%M %p"), "epochMillis": ms}


def _adf(text: str | None) -> dict[str, Any] | None:
    """Plain text as a minimal Atlassian Document (one paragraph per blank-line-separated block)."""
    if text is None:
        return None
    content = [{"type": "paragraph", "content": [{"type": "text", "text": p}] if p else []}
               for p in text.split("\n\n")]
    return {"type": "doc", "version": 1, "content": content}


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


def _adf_text(doc: dict[str, Any]) -> str:
    def walk(node: Any) -> str:
        if not isinstance(node, dict):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") == "hardBreak":
            return "\n"
        return "".join(walk(child) for child in node.get("content", []) or [])
    return "\n\n".join(walk(block) for block in doc.get("content", []))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# --------------------------------------------------------------------------------------------- fragments


def _frag(view: _View, key: tuple[Any, ...], build: Callable[[], Any]) -> str:
    text = view.frags.get(key)
    if text is None:
        text = view.frags[key] = _dumps(build())
    return text


def _user_frag(sim: JiraSimulator, user: _User | None, view: _View) -> str:
    if user is None:
        return "null"
    text = view.frags.get(("user", user.account_id))
    if text is None:
        text = view.frags[("user", user.account_id)] = _user_text(sim, user, view)
    return text


def _user_text(sim: JiraSimulator, user: _User, view: _View) -> str:
    """`_user_json` encoded by hand: a 100k-issue pull meets every one of 25k users once."""
    avatars = _frag(view, ("avatars",), lambda: _user_json(sim, user, view)["avatarUrls"])
    e = encode_basestring
    if sim.cloud:
        email = "null" if user.email_hidden else e(user.email)
        return (f'{{"self":{e(f"{view.base}/rest/api/{view.v}/user?accountId={user.account_id}")},'
                f'"accountId":{e(user.account_id)},"emailAddress":{email},"avatarUrls":{avatars},'
                f'"displayName":{e(user.display_name)},"active":true,"timeZone":{e(user.timezone)},'
                f'"accountType":{e(user.account_type)}}}')
    return (f'{{"self":{e(f"{view.base}/rest/api/2/user?username={user.name}")},"name":{e(user.name)},'
            f'"key":{e(user.key)},"emailAddress":{e(user.email)},"avatarUrls":{avatars},'
            f'"displayName":{e(user.display_name)},"active":true,"timeZone":{e(user.timezone)}}}')


def _user_json(sim: JiraSimulator, user: _User, view: _View) -> dict[str, Any]:
    avatars = {size: f"{view.base}/secure/useravatar?size={size}&avatarId=10122"
               for size in ("48x48", "24x24", "16x16", "32x32")}
    if sim.cloud:
        return {"self": f"{view.base}/rest/api/{view.v}/user?accountId={user.account_id}",
                "accountId": user.account_id, "emailAddress": None if user.email_hidden else user.email,
                "avatarUrls": avatars, "displayName": user.display_name, "active": True,
                "timeZone": user.timezone, "accountType": user.account_type}
    return {"self": f"{view.base}/rest/api/2/user?username={user.name}", "name": user.name, "key": user.key,
            "emailAddress": user.email, "avatarUrls": avatars, "displayName": user.display_name,
            "active": True, "timeZone": user.timezone}


def _author(user_json: dict[str, Any]) -> dict[str, Any]:
    """UserDetails (comment authors) has no locale/groups; drop a hidden (null) email rather than send null."""
    return {k: v for k, v in user_json.items() if v is not None}


def _option_frag(fd: _FieldDef, value: str | None, view: _View) -> str:
    if value is None:
        return "null"
    text = view.frags.get((fd.id, value))
    if text is None:
        option_id = next((k for k, v in fd.options.items() if v == value), "")
        text = _frag(view, (fd.id, value), lambda: {
            "self": f"{view.base}/rest/api/{view.v}/customFieldOption/{option_id}", "value": value,
            "id": option_id})
    return text


# --------------------------------------------------------------------------------------------- resources


def _status_json(name: str, view: _View) -> dict[str, Any]:
    status = STATUSES[name]
    cat_id, cat_name, color = _CATEGORIES[status.category]
    return {"self": f"{view.base}/rest/api/{view.v}/status/{status.id}", "description": "",
            "iconUrl": f"{view.base}/images/icons/statuses/generic.png", "name": status.name, "id": status.id,
            "statusCategory": {"self": f"{view.base}/rest/api/{view.v}/statuscategory/{cat_id}", "id": cat_id,
                               "key": status.category, "colorName": color, "name": cat_name}}


def _project_json(sim: JiraSimulator, key: str, view: _View) -> dict[str, Any]:
    pid, name, ptype = sim._projects[key]
    return {"self": f"{view.base}/rest/api/{view.v}/project/{pid}", "id": pid, "key": key, "name": name,
            "projectTypeKey": ptype, "simplified": False,
            "avatarUrls": {s: f"{view.base}/secure/projectavatar?size={s}&pid={pid}"
                           for s in ("48x48", "24x24", "16x16", "32x32")}}


def _component_json(sim: JiraSimulator, name: str, view: _View) -> dict[str, Any]:
    cid = sim._components[name]
    return {"self": f"{view.base}/rest/api/{view.v}/component/{cid}", "id": cid, "name": name}


def _priority_json(priority: int, view: _View) -> dict[str, Any]:
    return {"self": f"{view.base}/rest/api/{view.v}/priority/{priority}",
            "iconUrl": f"{view.base}/images/icons/priorities/{PRIORITIES[priority].lower()}.svg",
            "name": PRIORITIES[priority], "id": str(priority)}


def _issuetype_json(name: str, view: _View) -> dict[str, Any]:
    tid = ISSUE_TYPES[name]
    subtask = name in SUBTASK_TYPES
    return {"self": f"{view.base}/rest/api/{view.v}/issuetype/{tid}", "id": tid, "description": "",
            "iconUrl": f"{view.base}/secure/viewavatar?size=medium&avatarId=10553&avatarType=issuetype",
            "name": name, "subtask": subtask, "hierarchyLevel": -1 if subtask else 0}


def _resolution_json(name: str, view: _View) -> dict[str, Any]:
    rid = RESOLUTIONS[name]
    return {"self": f"{view.base}/rest/api/{view.v}/resolution/{rid}", "id": rid, "description": "",
            "name": name}


def _link_type_json(t: _LinkType, view: _View) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "inward": t.inward, "outward": t.outward,
            "self": f"{view.base}/rest/api/{view.v}/issueLinkType/{t.id}"}


def _issue_ref_json(other: _Issue, view: _View) -> dict[str, Any]:
    """Another issue as links, `parent` and `subtasks` embed it: id, key and four of its fields."""
    return {"id": str(other.num), "key": other.key, "self": f"{view.base}/rest/api/{view.v}/issue/{other.num}",
            "fields": {"summary": other.summary, "status": _status_json(other.status, view),
                       "priority": _priority_json(other.priority, view),
                       "issuetype": _issuetype_json(other.issuetype, view)}}


def _links_json(issue: _Issue, view: _View) -> list[dict[str, Any]]:
    out = []
    for link in issue.links or []:
        other, side = (link.outward, "outwardIssue") if link.inward is issue else (link.inward, "inwardIssue")
        out.append({"id": str(link.id), "self": f"{view.base}/rest/api/{view.v}/issueLink/{link.id}",
                    "type": _link_type_json(link.type, view), side: _issue_ref_json(other, view)})
    return out


def _comment_json(sim: JiraSimulator, issue: _Issue, c: _Comment, view: _View) -> dict[str, Any]:
    author = _author(_user_json(sim, c.author, view))
    out: dict[str, Any] = {
        "self": f"{view.base}/rest/api/{view.v}/issue/{issue.num}/comment/{c.id}", "id": str(c.id),
        "author": author, "body": _adf(c.body) if view.v == "3" else c.body, "updateAuthor": author,
        "created": view.clock.format(c.created_ms), "updated": view.clock.format(c.created_ms),
        "jsdPublic": c.public,
    }
    if c.visibility:
        out["visibility"] = c.visibility
    return out


def _comments_page(sim: JiraSimulator, issue: _Issue, view: _View) -> dict[str, Any]:
    comments = issue.comments or []
    return {"comments": [_comment_json(sim, issue, c, view) for c in comments],
            "self": f"{view.base}/rest/api/{view.v}/issue/{issue.num}/comment", "maxResults": len(comments),
            "total": len(comments), "startAt": 0}


def _request_type_json(issue: _Issue, view: _View) -> dict[str, Any] | None:
    if issue.request_type is None:
        return None
    rid, _ = REQUEST_TYPES[issue.request_type]
    status = STATUSES[issue.status]
    return {
        "_links": {"jiraRest": f"{view.base}/rest/api/2/issue/{issue.num}",
                   "web": f"{view.base}/servicedesk/customer/portal/1/{issue.key}",
                   "self": f"{view.base}/rest/servicedeskapi/request/{issue.num}"},
        "requestType": {"_links": {"self": f"{view.base}/rest/servicedeskapi/servicedesk/1/requesttype/{rid}"},
                        "id": rid, "name": issue.request_type, "description": "", "helpText": "",
                        "issueTypeId": ISSUE_TYPES[REQUEST_TYPES[issue.request_type][1]],
                        "serviceDeskId": "1", "portalId": "1", "groupIds": []},
        "currentStatus": {"status": status.name, "statusCategory": status.category.upper(),
                          "statusDate": _date_dto(issue.status_changed_ms, view.tz)},
    }
