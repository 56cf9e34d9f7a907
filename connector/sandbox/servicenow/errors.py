"""Errors in the Table API's envelope: ``{"error": {"message", "detail"}, "status": "failure"}``.

`ApiError` is what any layer raises to answer with that envelope (the store raises it for the ACL on closed
incidents, the HTTP layer for bad requests and missing records); `envelope` builds the body, and
`servicenow_error_body` the body of faults injected in front of the simulator.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES


class ApiError(Exception):
    """An error the Table API reports in its envelope."""

    def __init__(self, status: int, message: str, detail: str | None = None,
                 headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, list(headers)


def servicenow_error_body(status: int) -> dict[str, Any]:
    """The error envelope for faults injected in front of the simulator (429 as in reference §6.1)."""
    if status == 429:
        return envelope("Rate limit exceeded", "Rate limit of 100 requests per hour for Table API exceeded")
    return envelope(HTTP_STATUS_CODES.get(status, "Error"), None)


def envelope(message: str, detail: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}
