"""Jira Service Management's `servicedeskapi` request resources: a request's comments (public and
internal, paged with `start`/`limit`, authors in JSM's user shape) and the experimental CSAT feedback
resource, which needs the `X-ExperimentalApi: opt-in` header and lets only the reporter give or remove
an answer. Errors use JSM's own body (`errorMessage` with an i18n key), not the platform's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from connector.sandbox.jira.issues import _add_comment
from connector.sandbox.jira.model import _Comment, _Feedback, _Issue, _User
from connector.sandbox.jira.render import _date_dto, _View
from connector.sandbox.jira.web import (
    EXPERIMENTAL_OPT_IN,
    _bool_arg,
    _HTTPError,
    _int_arg,
    _jsm_error,
    _json_body,
    _no_route,
)

if TYPE_CHECKING:
    from connector.sandbox.jira.simulator import JiraSimulator


def _servicedesk(sim: JiraSimulator, request: Request, rest: list[str], view: _View) -> tuple[int, Any]:
    if len(rest) != 3 or rest[0] != "request":
        raise _no_route(request)
    _, id_or_key, resource = rest
    if resource == "feedback" and request.headers.get("X-ExperimentalApi", "").lower() != "opt-in":
        raise _jsm_error(412, EXPERIMENTAL_OPT_IN, "sd.api.experimental.optin.required")
    issue = sim._by_key.get(id_or_key.upper()) or (
        sim._by_num.get(int(id_or_key)) if id_or_key.isdigit() else None)
    if issue is None or not sim._is_service_project(issue.project):
        raise _jsm_error(404, "The request could not be found or you do not have permission to view it.",
                         "sd.request.error.notfound")
    method = request.method
    if resource == "comment" and method == "GET":
        return 200, _jsm_comments(sim, request, issue, view)
    if resource == "comment" and method == "POST":
        return 201, _jsm_add_comment(sim, request, issue, view)
    if resource == "feedback" and method in ("GET", "POST", "DELETE"):
        return _feedback(sim, request, issue, view)
    raise _HTTPError(405, None)


def _jsm_user(sim: JiraSimulator, user: _User, view: _View) -> dict[str, Any]:
    out: dict[str, Any] = {"displayName": user.display_name, "active": True, "timeZone": user.timezone,
                           "_links": {"jiraRest": f"{view.base}/rest/api/2/user?accountId={user.account_id}",
                                      "avatarUrls": {"48x48": f"{view.base}/secure/useravatar?size=48x48"},
                                      "self": f"{view.base}/rest/api/2/user?accountId={user.account_id}"}}
    if sim.cloud:
        out["accountId"] = user.account_id
    else:
        out["name"], out["key"] = user.name, user.key
    if not (sim.cloud and user.email_hidden):
        out["emailAddress"] = user.email
    return out


def _jsm_comment_json(sim: JiraSimulator, issue: _Issue, c: _Comment, view: _View) -> dict[str, Any]:
    return {"_expands": ["attachment", "renderedBody"], "id": str(c.id), "body": c.body, "public": c.public,
            "author": _jsm_user(sim, c.author, view), "created": _date_dto(c.created_ms, view.tz),
            "_links": {"self": f"{view.base}/rest/servicedeskapi/request/{issue.num}/comment/{c.id}"}}


def _jsm_comments(sim: JiraSimulator, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
    public = _bool_arg(request.args.get("public"), True)
    internal = _bool_arg(request.args.get("internal"), True)
    start = max(0, _int_arg(request.args.get("start"), "start", 0))
    limit = max(1, min(_int_arg(request.args.get("limit"), "limit", 50), 100))
    wanted = [c for c in issue.comments or [] if (public and c.public) or (internal and not c.public)]
    page = wanted[start:start + limit]
    base = f"{view.base}/rest/servicedeskapi/request/{issue.num}/comment"
    links: dict[str, str] = {"base": f"{view.base}/rest/servicedeskapi", "context": "",
                             "self": f"{base}?start={start}&limit={limit}"}
    if start + limit < len(wanted):
        links["next"] = f"{base}?start={start + limit}&limit={limit}"
    if start > 0:
        links["prev"] = f"{base}?start={max(0, start - limit)}&limit={limit}"
    return {"_expands": [], "size": len(page), "start": start, "limit": limit,
            "isLastPage": start + limit >= len(wanted), "_links": links,
            "values": [_jsm_comment_json(sim, issue, c, view) for c in page]}


def _jsm_add_comment(sim: JiraSimulator, request: Request, issue: _Issue, view: _View) -> dict[str, Any]:
    body = _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"].strip():
        raise _jsm_error(400, "The comment body is required.", "sd.comment.body.required")
    if not isinstance(body.get("public"), bool):
        raise _jsm_error(400, "The 'public' field is required.", "sd.comment.public.required")
    comment = _add_comment(sim, issue, view.user, body["body"], public=body["public"])
    return _jsm_comment_json(sim, issue, comment, view)


# --------------------------------------------------------------------------------------------- feedback


def _feedback(sim: JiraSimulator, request: Request, issue: _Issue, view: _View) -> tuple[int, Any]:
    if request.method == "GET":
        if issue.feedback is None:
            raise _jsm_error(404, "No feedback was found for this request.", "sd.feedback.notfound")
        return 200, _feedback_json(issue.feedback)
    if view.user is not issue.reporter:
        raise _jsm_error(403, "Only the reporter of the request can give or delete feedback.",
                         "sd.feedback.reporter.only")
    if request.method == "DELETE":
        if issue.feedback is None:
            raise _jsm_error(404, "No feedback was found for this request.", "sd.feedback.notfound")
        _set_feedback(sim, issue, None)
        return 204, None
    body = _json_body(request)
    rating = body.get("rating") if isinstance(body, dict) else None
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise _jsm_error(400, "The rating must be an integer between 1 and 5.", "sd.feedback.rating.invalid")
    comment = body.get("comment")
    text = comment.get("body") if isinstance(comment, dict) else None
    _set_feedback(sim, issue, _Feedback(rating, text if isinstance(text, str) else None, sim.now_ms()))
    return 201, _feedback_json(issue.feedback)


def _set_feedback(sim: JiraSimulator, issue: _Issue, feedback: _Feedback | None) -> None:
    issue.feedback = feedback
    issue.updated_ms = sim.now_ms()
    sim._touch(sim._role_field("satisfaction"), sim._role_field("satisfaction_date"), "updated")
    sim._notify(issue, "feedback_added", customer=False, watchers=True)


def _feedback_json(feedback: _Feedback | None) -> dict[str, Any]:
    if feedback is None:
        return {}
    out: dict[str, Any] = {"type": "csat", "rating": feedback.rating}
    if feedback.comment is not None:
        out["comment"] = {"body": feedback.comment}
    return out
