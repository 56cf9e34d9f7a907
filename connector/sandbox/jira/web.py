"""HTTP plumbing every resource module shares: the exception that carries a non-2xx answer up to the
WSGI entry, Jira's (`errorMessages`/`errors`) and JSM's (`errorMessage`/`i18nErrorMessage`) error
shapes with the product's wording, and the parsing of JSON bodies and query arguments that answers
malformed input with Jira's 400s."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from werkzeug.wrappers import Request

LEGACY_SEARCH_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED_JQL = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
NOTIFY_NEEDS_ADMIN = "To discard the user notification either admin or project admin permissions are required."
EXPERIMENTAL_OPT_IN = (
    "This API is experimental. Experimental APIs are not guaranteed to be stable within the preview period. "
    "You must set the header 'X-ExperimentalApi: opt-in' to opt into using this API."
)


class _HTTPError(Exception):
    def __init__(self, status: int, body: Any = None, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, list(headers)


def _errors(status: int, *messages: str, errors: dict[str, str] | None = None) -> _HTTPError:
    return _HTTPError(status, {"errorMessages": list(messages), "errors": errors or {}})


def _jsm_error(status: int, message: str, i18n_key: str) -> _HTTPError:
    return _HTTPError(status, {"errorMessage": message, "i18nErrorMessage": {"i18nKey": i18n_key, "parameters": []}})


def _no_route(request: Request) -> _HTTPError:
    """The servlet container's answer for a path no resource serves."""
    return _HTTPError(404, {"message": f"null for uri: {request.url}", "status-code": 404})


def _json_body(request: Request) -> Any:
    data = request.get_data(cache=True)
    if not data.strip():
        raise _errors(400, "No content to map due to end-of-input")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise _errors(400, f"Unexpected character in the request body: {exc}") from None


def _bool_arg(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() not in ("false", "0", "no")


def _int_arg(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _errors(400, f"The value '{value}' is not valid for the parameter '{name}'.") from None


def _split_list(values: Iterable[Any] | str | None) -> list[str]:
    """Query/body lists may repeat the parameter and/or comma-separate values."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]
