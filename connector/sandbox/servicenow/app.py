"""The HTTP face of the simulator: WSGI routing, authentication, the Table API, Batch API and OAuth endpoints.

`TableApi` adds to a `TableStore` what a request needs: basic-auth and bearer-token authentication, the
Table API's list / read / create / update / delete with their request parsing (sysparm_limit, offset, plain
column filters, JSON bodies, ``X-no-response-body``), error envelopes for `ApiError` and routing failures,
the ``X-Total-Count`` and ``Link`` headers, the Batch API (each item re-dispatched as an inner request), and
the client-credentials grant at ``/oauth_token.do``. Handlers return a `_Reply`, which `_response` serialises.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.wrappers import Request, Response

from connector.sandbox.encoded_query import Condition, parse
from connector.sandbox.servicenow.errors import ApiError, envelope, servicenow_error_body
from connector.sandbox.servicenow.query import prepare, renderer, requested_fields
from connector.sandbox.servicenow.schema import Row, to_value
from connector.sandbox.servicenow.store import TableStore

StartResponse = Callable[..., Any]

DEFAULT_LIMIT = 10000
TOKEN_TTL_S = 1800


@dataclass
class _Reply:
    status: int
    payload: Any = None  # None: no body
    headers: list[tuple[str, str]] = field(default_factory=list)


class TableApi(TableStore):
    """The Table, Batch and OAuth APIs over a `TableStore`, as a WSGI app.

    `ServiceNowSimulator.__init__` sets the attributes declared here.
    """

    user: str
    password: str
    user_sys_id: str
    oauth_clients: dict[str, str]
    invalid_query_returns_no_rows: bool
    batch_max_items: int
    base_url: str | None
    _tokens: dict[str, tuple[str, datetime]]
    _routes: Map

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        reply = self._handle(request, None)
        return _response(reply, request)(environ, start_response)

    def error_body(self, status: int) -> dict[str, Any]:
        return servicenow_error_body(status)

    def _handle(self, request: Request, batch_user: str | None, adapter: MapAdapter | None = None) -> _Reply:
        try:
            if adapter is None:
                endpoint, args = self._routes.bind_to_environ(request.environ).match()
            else:  # a batch item: the outer request's binding, this item's path and method
                endpoint, args = adapter.match(request.path, request.method)
            if endpoint == "oauth":
                return self._oauth(request)
            user = batch_user or self._authenticate(request)
            with self._lock:
                return self._endpoint(str(endpoint), request, user, args)
        except ApiError as err:
            return _Reply(err.status, envelope(err.message, err.detail), err.headers)
        except MethodNotAllowed:
            return _Reply(405, envelope("Method not Supported", f"{request.method} is not supported"))
        except NotFound:
            return _Reply(400, envelope("Requested URI does not represent any resource", None))
        except HTTPException as exc:
            return _Reply(exc.code or 500, envelope(exc.name, exc.description))

    def _endpoint(self, endpoint: str, request: Request, user: str, args: Mapping[str, Any]) -> _Reply:
        if endpoint == "batch":
            return self._batch(request, user)
        table = args["table"]
        if table not in self.tables:
            raise ApiError(400, f"Invalid table {table}")
        version = args.get("version", "v2")
        sys_id = args.get("sys_id")
        reading = request.method in ("GET", "HEAD")  # werkzeug routes HEAD wherever GET is allowed
        if sys_id is None and reading:
            return self._list(request, table, version)
        if sys_id is None:
            return self._create(request, table, user)
        if reading:
            return self._read(request, table, sys_id)
        if request.method == "DELETE":
            self._require(table, sys_id)
            self._delete(table, sys_id)
            return _Reply(204)
        return self._modify(request, table, sys_id, user)

    def _authenticate(self, request: Request) -> str:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            if secrets.compare_digest(f"{auth.username}:{auth.password}", f"{self.user}:{self.password}"):
                return self.user
        elif auth is not None and auth.type == "bearer" and auth.token:
            with self._lock:
                grant = self._tokens.get(auth.token)
                if grant is not None and grant[1] > self.clock():
                    return grant[0]
        raise ApiError(401, "User Not Authenticated", "Required to provide Auth information",
                       [("WWW-Authenticate", 'BEARER realm="Service-now"')])

    def _actor(self, user: str) -> tuple[str, str]:
        """(sys_id, user_name) of the caller; basic auth and OAuth tokens both act as the integration user."""
        return self.user_sys_id, user

    def _list(self, request: Request, table: str, version: str) -> _Reply:
        args = request.args
        limit = _int_arg(args.get("sysparm_limit"), DEFAULT_LIMIT, minimum=1)
        offset = _int_arg(args.get("sysparm_offset"), 0, minimum=0)
        count = not _flag(args.get("sysparm_no_count"))
        query = parse(args.get("sysparm_query", ""))
        # Plain "&active=true" parameters filter too; parameters that are not columns are not conditions.
        plain = [Condition(k, "=", v) for k, v in args.items(multi=True)
                 if not k.startswith("sysparm_") and self.field_spec(table, k) is not None]
        prepared = prepare(self, table, query.and_also(plain),
                           invalid_returns_no_rows=self.invalid_query_returns_no_rows)
        rows: list[Row] = []
        total: int | None = 0 if count else None
        if prepared is not None:
            rows, total = self._select(table, prepared, offset, limit, count)
        if not rows and version == "v1":
            raise ApiError(404, "No Record found", "Records not found")
        render = self._request_renderer(request, table)
        headers: list[tuple[str, str]] = []
        if total is not None:
            headers.append(("X-Total-Count", str(total)))
        if not _flag(args.get("sysparm_suppress_pagination_header")):
            link = _link_header(self._base(request), request, offset, limit, total, len(rows))
            if link:
                headers.append(("Link", link))
        return _Reply(200, {"result": [render(r) for r in rows]}, headers)

    def _request_renderer(self, request: Request, table: str) -> Callable[[Row], dict[str, Any]]:
        return self._renderer_for(request.args, table, self._base(request))

    def _renderer_for(self, args: Mapping[str, str], table: str, base: str) -> Callable[[Row], dict[str, Any]]:
        mode = args.get("sysparm_display_value", "false").lower()
        mode = mode if mode in ("true", "all") else "false"
        links = not _flag(args.get("sysparm_exclude_reference_link"))
        fields = requested_fields(self, table, args.get("sysparm_fields", ""))
        return renderer(self, table, fields, mode, links, base, self._time_zone())

    def _time_zone(self) -> ZoneInfo:
        row = self.tables["sys_user"].get(self.user_sys_id)
        try:
            return ZoneInfo(row["time_zone"] if row and row["time_zone"] else "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def _base(self, request: Request) -> str:
        if self.base_url:
            return self.base_url
        key = (request.environ.get("wsgi.url_scheme", "http"), request.environ.get("HTTP_HOST", ""))
        base = _BASES.get(key)
        if base is None:  # werkzeug rebuilds host_url on every access; a batch asks once per item
            base = _BASES[key] = request.host_url.rstrip("/")
        return base

    def _require(self, table: str, sys_id: str) -> Row:
        row = self.tables[table].get(sys_id)
        if row is None:
            raise ApiError(404, "No Record found",
                           "Record doesn't exist or ACL restricts the record retrieval")
        return row

    def _read(self, request: Request, table: str, sys_id: str) -> _Reply:
        row = self._require(table, sys_id)
        return _Reply(200, {"result": self._request_renderer(request, table)(row)})

    def _create(self, request: Request, table: str, user: str) -> _Reply:
        row = self._insert(table, _body(request), self.clock(), self._actor(user))
        location = f"{self._base(request)}/api/now/table/{table}/{row['sys_id']}"
        return self._written(request, table, row, 201, [("Location", location)])

    def _modify(self, request: Request, table: str, sys_id: str, user: str) -> _Reply:
        self._require(table, sys_id)
        row = self._update(table, sys_id, _body(request), self.clock(), self._actor(user), enforce_acl=True)
        return self._written(request, table, row, 200, [])

    def _written(self, request: Request, table: str, row: Row, status: int,
                 headers: list[tuple[str, str]]) -> _Reply:
        if request.headers.get("X-no-response-body", "").lower() == "true":
            return _Reply(status, None, headers)
        return _Reply(status, {"result": self._request_renderer(request, table)(row)}, headers)

    # ---- OAuth and Batch -------------------------------------------------------------------------------

    def _oauth(self, request: Request) -> _Reply:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return _Reply(400, {"error": "unsupported_grant_type",
                                "error_description": "Only client_credentials is enabled in the sandbox"})
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if request.authorization is not None and request.authorization.type == "basic":  # RFC 6749 §2.3.1
            client_id = request.authorization.username or ""
            secret = request.authorization.password or ""
        expected = self.oauth_clients.get(client_id)
        if expected is None or not secrets.compare_digest(secret, expected):
            return _Reply(401, {"error_description": "access_denied", "error": "server_error"})
        token = secrets.token_urlsafe(48)
        with self._lock:
            now = self.clock()
            self._tokens = {t: g for t, g in self._tokens.items() if g[1] > now}
            self._tokens[token] = (self.user, now + timedelta(seconds=TOKEN_TTL_S))
        return _Reply(200, {"access_token": token, "scope": "useraccount", "token_type": "Bearer",
                            "expires_in": TOKEN_TTL_S})

    def _batch(self, request: Request, user: str) -> _Reply:
        payload = _body(request)
        items = payload.get("rest_requests")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ApiError(400, "Invalid batch request", "rest_requests must be a list of objects")
        adapter = self._routes.bind_to_environ(request.environ)
        renderers: dict[tuple[str, str], Callable[[Row], dict[str, Any]]] = {}  # one per query, for this batch
        serviced = [self._batch_item(request, item, user, adapter, renderers)
                    for item in items[:self.batch_max_items]]
        unserviced = [str(item.get("id", "")) for item in items[self.batch_max_items:]]
        return _Reply(200, {"batch_request_id": payload.get("batch_request_id", ""),
                            "serviced_requests": serviced, "unserviced_requests": unserviced})

    def _batch_item(self, outer: Request, item: Mapping[str, Any], user: str, adapter: MapAdapter,
                    renderers: dict[tuple[str, str], Callable[[Row], dict[str, Any]]]) -> dict[str, Any]:
        started = time.perf_counter()
        item_id = str(item.get("id", ""))
        url, method = str(item.get("url", "")), str(item.get("method", "")).upper()
        if not item_id or not url.startswith("/") or not method or "/batch" in url:
            reply = _Reply(400, envelope("Invalid batch request item",
                                         "id, method and a relative url are required"))
            return _batch_result(item_id, reply, outer, True, started)
        headers = {h.get("name", ""): h.get("value", "")
                   for h in item.get("headers") or [] if isinstance(h, dict)}
        try:
            data = base64.b64decode(item.get("body") or "", validate=True)
        except (binascii.Error, ValueError):
            reply = _Reply(400, envelope("Invalid batch request item", "body is not Base64"))
            return _batch_result(item_id, reply, outer, True, started)
        path, _, query = url.partition("?")
        record = _RECORD.fullmatch(path) if method == "PATCH" else None
        if record is not None and item.get("exclude_response_headers") and record["table"] in self.tables:
            # The write-back's common case, answered as the full path would, without building a request.
            table = record["table"]
            render = renderers.get((table, query))
            if headers.get("X-no-response-body", "").lower() == "true":
                render = None
            elif render is None:
                render = renderers[(table, query)] = self._renderer_for(
                    MultiDict(parse_qsl(query)), table, self._base(outer))
            reply = self._patch_item(table, unquote(record["sys_id"]), data, user, render)
            body = b"" if reply.payload is None else orjson.dumps(reply.payload)
            return _item_result(item_id, reply, body, [], started)
        inner = Request(_inner_environ(outer.environ, method, url, headers, data))
        reply = self._handle(inner, user, adapter)
        return _batch_result(item_id, reply, inner, bool(item.get("exclude_response_headers")), started)

    def _patch_item(self, table: str, sys_id: str, data: bytes, user: str,
                    render: Callable[[Row], dict[str, Any]] | None) -> _Reply:
        """`render` None: the caller asked for no response body (`X-no-response-body`)."""
        try:
            self._require(table, sys_id)
            row = self._update(table, sys_id, _body_of(data), self.clock(), self._actor(user), enforce_acl=True)
        except ApiError as err:
            return _Reply(err.status, envelope(err.message, err.detail), err.headers)
        return _Reply(200, None if render is None else {"result": render(row)})


_BASES: dict[tuple[str, str], str] = {}
_RECORD = re.compile(r"/api/now(?:/v[12])?/table/(?P<table>[A-Za-z0-9_]+)/(?P<sys_id>[^/]+)")


def _inner_environ(outer: dict[str, Any], method: str, url: str, headers: Mapping[str, str],
                   data: bytes) -> dict[str, Any]:
    """The WSGI environ of one batch item: the outer request's server, the item's request line, headers
    and body (what werkzeug's EnvironBuilder makes, without its cost per item)."""
    path, _, query = url.partition("?")
    environ = {k: v for k, v in outer.items() if k.startswith(("wsgi.", "SERVER_", "REMOTE_")) or k == "HTTP_HOST"}
    environ.update({"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": unquote(path), "QUERY_STRING": query,
                    "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)})
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ


def _batch_result(item_id: str, reply: _Reply, request: Request, exclude_headers: bool,
                  started: float) -> dict[str, Any]:
    response = _response(reply, request)
    headers = [] if exclude_headers else [{"name": k, "value": v} for k, v in response.headers.items()]
    return _item_result(item_id, reply, response.get_data(), headers, started)


def _item_result(item_id: str, reply: _Reply, body: bytes, headers: list[dict[str, str]],
                 started: float) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": item_id,
        "status_code": reply.status,
        "status_text": HTTP_STATUS_CODES.get(reply.status, ""),
        "headers": headers,
        "body": base64.b64encode(body).decode(),
        "execution_time": int((time.perf_counter() - started) * 1000),
    }
    if reply.status >= 400 and isinstance(reply.payload, dict) and "error" in reply.payload:
        result["error_message"] = reply.payload["error"].get("message", "")
    return result


def routes() -> Map:
    table, record = "/table/<table>", "/table/<table>/<sys_id>"
    one = ["GET", "PATCH", "PUT", "DELETE"]
    return Map([
        Rule("/oauth_token.do", endpoint="oauth", methods=["POST"]),
        Rule("/api/now/v1/batch", endpoint="batch", methods=["POST"]),
        Rule(f"/api/now{table}", endpoint="table", methods=["GET", "POST"]),
        Rule(f"/api/now/<any(v1,v2):version>{table}", endpoint="table", methods=["GET", "POST"]),
        Rule(f"/api/now{record}", endpoint="table", methods=one),
        Rule(f"/api/now/<any(v1,v2):version>{record}", endpoint="table", methods=one),
    ], strict_slashes=False)


def _response(reply: _Reply, request: Request) -> Response:
    headers = list(reply.headers)
    if reply.payload is None:
        return Response(b"", status=reply.status, headers=headers)
    data = orjson.dumps(reply.payload)
    return Response(data, status=reply.status, headers=headers, content_type="application/json;charset=UTF-8")


def _body(request: Request) -> dict[str, Any]:
    return _body_of(request.get_data())


def _body_of(data: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data or b"{}")
    except ValueError:
        raise ApiError(400, "Exception while reading request", "The payload is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "Exception while reading request", "The payload must be a JSON object.")
    return {k: v if k == "rest_requests" else to_value(v) for k, v in payload.items()}


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _int_arg(value: str | None, default: int, *, minimum: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number >= minimum else default


def _link_header(base: str, request: Request, offset: int, limit: int, total: int | None,
                 returned: int) -> str:
    """first / prev / next / last links as in reference §3.4; absent when everything fits one page.

    With sysparm_no_count there is no total, so "last" is left out and "next" follows a full page.
    """
    if total is not None and offset == 0 and total <= limit:
        return ""
    if total is None and offset == 0 and returned < limit:
        return ""
    params = [(k, v) for k, v in request.args.items(multi=True)
              if k not in ("sysparm_offset", "sysparm_limit")]

    def url(at: int) -> str:
        query = urlencode([*params, ("sysparm_offset", str(at)), ("sysparm_limit", str(limit))])
        return f"<{base}{request.path}?{query}>"

    links = [f'{url(0)};rel="first"']
    if offset > 0:
        links.append(f'{url(max(0, offset - limit))};rel="prev"')
    has_next = offset + limit < total if total is not None else returned >= limit
    if has_next:
        links.append(f'{url(offset + limit)};rel="next"')
    if total is not None:
        links.append(f'{url(max(0, (total - 1) // limit * limit))};rel="last"')
    return ",".join(links)

