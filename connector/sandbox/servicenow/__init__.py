"""ServiceNow instance simulator: Table API, Batch API and OAuth over WSGI, built from a synthetic World.

Faithful to reference/servicenow-api.md, including its pitfalls, because the connector must survive them:
every value is a string; references are ``{"link", "value"}`` objects or ``""``; journal fields read back as
``""``; misspelled query fields are silently ignored; ``sysparm_fields`` drops unknown names; v1 answers an
empty list with 404; closed and canceled incidents are read-only except for a documented field list.

The package re-exports the public names. By concern: `schema` (FieldSpec, SCHEMAS, value formats),
`incident` (state codes, business rules), `store` (tables, writes, sorted indexes), `query` (query checks
and rendering), `errors` (the error envelope), `app` (WSGI routing, Table / Batch / OAuth endpoints) and
`simulator` (ServiceNowSimulator, its Python controls, make_servicenow_server).

    sim = ServiceNowSimulator(build_world(tickets=500))
    with make_servicenow_server(sim) as server:
        requests.get(f"{server.base_url}/api/now/v2/table/incident", auth=(sim.user, sim.password))
"""

from connector.sandbox.servicenow.app import DEFAULT_LIMIT, TOKEN_TTL_S, StartResponse
from connector.sandbox.servicenow.errors import ApiError, servicenow_error_body
from connector.sandbox.servicenow.incident import (
    CANCELED,
    CLOSED,
    CLOSED_WRITABLE,
    OPEN_STATES,
    RESOLVED,
    STATE_BY_WORLD,
    SUBCATEGORY,
)
from connector.sandbox.servicenow.schema import (
    CHOICES,
    DATETIME_FORMAT,
    DEFAULTS,
    NUMBER_PREFIX,
    SCHEMAS,
    SYSTEM_FIELDS,
    USER,
    B,
    D,
    FieldSpec,
    J,
    N,
    Row,
    S,
    format_datetime,
    parse_datetime,
    ref,
)
from connector.sandbox.servicenow.simulator import (
    DEFAULT_OAUTH_CLIENTS,
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    PREBUILT_ORDERS,
    ServiceNowSimulator,
    make_servicenow_server,
)
from connector.sandbox.servicenow.store import SYS_ID_LENGTH

__all__ = [
    "CANCELED", "CHOICES", "CLOSED", "CLOSED_WRITABLE", "DATETIME_FORMAT", "DEFAULTS", "DEFAULT_LIMIT",
    "DEFAULT_OAUTH_CLIENTS", "DEFAULT_PASSWORD", "DEFAULT_USER", "NUMBER_PREFIX", "OPEN_STATES",
    "PREBUILT_ORDERS", "RESOLVED", "SCHEMAS", "STATE_BY_WORLD", "SUBCATEGORY", "SYSTEM_FIELDS", "SYS_ID_LENGTH",
    "TOKEN_TTL_S", "USER", "ApiError", "B", "D", "FieldSpec", "J", "N", "Row", "S", "ServiceNowSimulator",
    "StartResponse", "format_datetime", "make_servicenow_server", "parse_datetime", "ref",
    "servicenow_error_body",
]
