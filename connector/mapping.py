"""Mappings: which records are resolved tickets and which source field fills each ticket field.

A mapping is plain data with a closed vocabulary: a source path (dot-walk), optional named transforms
(`lower`, `upper`, `strip`, `int`, `bool`, `datetime`, `first`, `join`), an optional value `map` and a
`default`. Jira custom fields may be named by display name in braces (`fields.{Support group}.value`);
they are resolved to ids from `/field` when the system connects. No template engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from connector.config import Strict, validation_problems
from connector.errors import ConfigError, ConfigProblem
from connector.model import PersonRef, Ticket, TicketState
from connector.yamlsource import YamlDoc, load_yaml

Transform = Literal["lower", "upper", "strip", "int", "bool", "datetime", "first", "join"]
TICKET_FIELDS = (
    "id", "number", "title", "state", "status", "opened_at", "resolved_at", "closed_at", "updated_at",
    "requester_email", "requester_name", "requester_id", "requester_language", "requester_timezone",
    "assignee_email", "assignee_name", "assignee_id", "group", "service", "category", "priority",
    "channel", "language", "reopen_count", "reassignment_count",
)
REQUIRED_FIELDS = ("id", "number", "title", "state", "resolved_at")
STATES: tuple[TicketState, ...] = ("open", "resolved", "closed", "canceled")
_DISPLAY_NAME = re.compile(r"\{([^{}]+)\}")
# A Jira write-back target: a custom field by `{Display name}`, or by its id (ids differ per site, but
# an admin who knows theirs can pin the field when several share a name).
JIRA_WRITE_FIELD = re.compile(r"\{(?P<name>[^{}]+)\}|(?P<id>customfield_\d+)")
BUNDLED = Path(__file__).resolve().parent / "mappings"
REPO_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


class FieldSpec(Strict):
    source: str = Field(description="Dot-walked source path, e.g. caller_id.email or fields.reporter.emailAddress")
    transform: list[Transform] = Field(default_factory=list)
    map: dict[str, Any] | None = Field(None, description="Value lookup applied after the transforms.")
    default: Any = Field(None, description="Used when the source is missing or empty (or unmapped by `map`).")

    @field_validator("transform", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("map", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class Resolved(Strict):
    query: str | None = Field(None, description="ServiceNow encoded query selecting resolved records.")
    jql: str | None = Field(None, description="Jira JQL selecting resolved issues.")
    field: str = Field(description="Field holding the resolution time: the pull cursor.")


WriteBackValue = Literal["score", "band", "kind", "survey", "sentiment", "answered_at"]


class WriteBack(Strict):
    """What is written onto a ticket once its customer has answered."""

    fields: dict[str, WriteBackValue] = Field(
        default_factory=dict, description="System field ← value (score, band, kind, survey, sentiment, answered_at); "
        "Jira custom fields by `{Display name}` or by id (`customfield_10042`).")
    note: bool = Field(True, description="Add an internal note with the answer and the comment: ServiceNow "
                       "work_notes, Jira an internal comment (never a public one).")


class Mapping(Strict):
    kind: Literal["servicenow", "jira"]
    table: str | None = Field(None, description="ServiceNow table (incident, sc_req_item, ...).")
    resolved: Resolved
    page_size: int = Field(1000, ge=1, le=10000)
    fields: dict[str, FieldSpec]
    write_back: WriteBack | None = Field(None, description="Scores and a note on the ticket; none: nothing is "
                                         "written to this system.")

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"source": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("write_back")
    @classmethod
    def _jira_fields_are_named(cls, value: WriteBack | None, info: ValidationInfo) -> WriteBack | None:
        if value is None or info.data.get("kind") != "jira":
            return value
        bad = [key for key in value.fields if not JIRA_WRITE_FIELD.fullmatch(key)]
        if bad:
            raise ValueError(f"fields {', '.join(repr(k) for k in bad)}: name each Jira field by its display name "
                             f"in braces, quoted (\"{{{bad[0].strip('{}')}}}\"), or by its id (customfield_10042)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Mapping:
        unknown = sorted(set(self.fields) - set(TICKET_FIELDS))
        if unknown:
            raise ValueError(f"unknown ticket field(s) {', '.join(unknown)}; known: {', '.join(TICKET_FIELDS)}")
        missing = [f for f in REQUIRED_FIELDS if f not in self.fields]
        if missing:
            raise ValueError(f"ticket field(s) {', '.join(missing)} must be mapped")
        if self.kind == "servicenow" and not (self.table and self.resolved.query):
            raise ValueError("a servicenow mapping needs `table` and `resolved.query`")
        if self.kind == "jira" and not self.resolved.jql:
            raise ValueError("a jira mapping needs `resolved.jql`")
        return self

    @cached_property
    def _sources(self) -> tuple[str, ...]:
        return tuple(sorted({spec.source for spec in self.fields.values()}))

    @cached_property
    def _plan(self) -> tuple[tuple[str, str, tuple[Callable[[Any], Any], ...], dict[str, Any] | None, Any], ...]:
        """Per ticket field: (name, source, transform functions, map, default), resolved once."""
        return tuple((name, spec.source, tuple(TRANSFORMS[t] for t in spec.transform), spec.map, spec.default)
                     for name, spec in self.fields.items())

    def source_paths(self) -> list[str]:
        """Every source path the mapping reads, in a stable order."""
        return list(self._sources)

    def display_names(self) -> set[str]:
        """Jira custom field display names used in braces."""
        return {name for spec in self.fields.values() for name in _DISPLAY_NAME.findall(spec.source)}

    def with_field_ids(self, ids: MappingABC[str, str]) -> Mapping:
        """Replace `{Display name}` with field ids; unknown names must be checked by the caller first."""
        fields = {
            name: spec.model_copy(update={"source": _DISPLAY_NAME.sub(lambda m: ids[m.group(1)], spec.source)})
            for name, spec in self.fields.items()
        }
        return self.model_copy(update={"fields": fields})


def jira_field_ref(key: str) -> tuple[str | None, str | None]:
    """A Jira write_back key as (display name, None) for `{Name}` or (None, field id) for `customfield_…`."""
    match = JIRA_WRITE_FIELD.fullmatch(key)
    if match is None:
        raise ValueError(f"not a Jira field reference: {key!r}")  # the mapping's validation refuses these
    return match.group("name"), match.group("id")


def find_mapping_file(ref: str, base_dir: Path) -> Path:
    """A path relative to the config file, else a bundled mapping by file name or bare name."""
    candidate = Path(ref).expanduser()
    if candidate.is_absolute() or (base_dir / candidate).exists():
        return candidate if candidate.is_absolute() else base_dir / candidate
    name = candidate.name if candidate.suffix else f"{candidate.name}.yaml"
    for folder in (BUNDLED, REPO_MAPPINGS):
        if (folder / name).exists():
            return folder / name
    return base_dir / candidate


def load_mapping(ref: str, base_dir: Path, expect_kind: str | None = None) -> Mapping:
    """Load and validate one mapping file; raise ConfigError with every problem."""
    path = find_mapping_file(ref, base_dir)
    doc = load_yaml(path)
    return parse_mapping(doc, expect_kind)


def parse_mapping(doc: YamlDoc, expect_kind: str | None = None) -> Mapping:
    try:
        mapping = Mapping.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc)) from None
    if expect_kind and mapping.kind != expect_kind:
        raise ConfigError([doc.problem(("kind",), f"mapping is for {mapping.kind}, system is {expect_kind}")])
    return mapping


# --- applying a mapping to a raw record -------------------------------------------------------------


class MappingValueError(ValueError):
    """A raw value could not be transformed; names the ticket field and the value."""


def read_path(raw: MappingABC[str, Any], path: str) -> Any:
    """Flat dotted keys first (ServiceNow dot-walked results), else walk nested dicts (Jira JSON)."""
    if path in raw:
        return raw[path]
    value: Any = raw
    for part in path.split("."):
        if isinstance(value, list):
            value = [item.get(part) if isinstance(item, dict) else None for item in value]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
        if value is None:
            return None
    return value


def parse_datetime(value: Any) -> datetime | None:
    """ServiceNow `YYYY-MM-DD HH:MM:SS` (UTC by contract) or ISO 8601 with offset (Jira), to aware UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _join(value: Any) -> Any:
    return ", ".join(str(v) for v in value if v) if isinstance(value, list) else value


def _int(value: Any) -> int | None:
    return int(float(value)) if value != "" else None


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "first": _first,
    "join": _join,
    "datetime": parse_datetime,
    "int": _int,
    "bool": lambda v: str(v).lower() in ("true", "1", "yes"),
    "lower": lambda v: str(v).lower(),
    "upper": lambda v: str(v).upper(),
    "strip": lambda v: str(v).strip(),
}


def field_value(spec: FieldSpec, raw: MappingABC[str, Any], value: Any = ...) -> Any:
    """The ticket field's value from `raw` (or from `value`, already read from `spec.source`)."""
    if value is ...:
        value = read_path(raw, spec.source)
    if value == "" or value == []:
        value = None
    for transform in spec.transform:
        if value is None:
            break
        value = TRANSFORMS[transform](value)
    if spec.map is not None and value is not None:
        value = spec.map.get(str(value), spec.default)
    return spec.default if value is None else value


def to_ticket(mapping: Mapping, system: str, raw: MappingABC[str, Any]) -> Ticket:
    """Build the canonical ticket; raises MappingValueError naming the field that cannot be read."""
    sources = {path: read_path(raw, path) for path in mapping._sources}
    values: dict[str, Any] = {}
    name, source = "", ""
    try:
        # field_value, unrolled over the precompiled plan: this runs for every pulled record.
        for name, source, functions, value_map, default in mapping._plan:
            value = sources[source]
            if value == "" or value == []:
                value = None
            for function in functions:
                if value is None:
                    break
                value = function(value)
            if value_map is not None and value is not None:
                value = value_map.get(str(value), default)
            values[name] = default if value is None else value
    except (ValueError, TypeError) as exc:
        raise MappingValueError(f"field {name} from {source}: {exc}") from None
    state = values.get("state")
    if state not in STATES:
        raise MappingValueError(f"field state: {state!r} is not one of {', '.join(STATES)}; extend its map")
    return Ticket(
        system=system,
        id=str(values["id"]),
        number=str(values["number"]),
        title=str(values.get("title") or ""),
        state=state,
        status=str(values.get("status") or state),
        opened_at=values.get("opened_at"),
        resolved_at=values.get("resolved_at"),
        closed_at=values.get("closed_at"),
        updated_at=values.get("updated_at"),
        requester=_person(system, values, "requester"),
        assignee=_person(system, values, "assignee"),
        group=values.get("group"),
        service=values.get("service"),
        category=values.get("category"),
        priority=values.get("priority"),
        channel=values.get("channel"),
        language=values.get("language") or values.get("requester_language"),
        reopen_count=int(values.get("reopen_count") or 0),
        reassignment_count=int(values.get("reassignment_count") or 0),
        raw=sources,
    )


def _person(system: str, values: dict[str, Any], role: str) -> PersonRef | None:
    email, account = values.get(f"{role}_email"), values.get(f"{role}_id")
    key = PersonRef.make_key(system, email, account)
    if key is None:
        return None
    return PersonRef(
        key=key,
        email=email.strip().lower() if isinstance(email, str) and "@" in email else None,
        name=values.get(f"{role}_name"),
        account_id=account,
        language=values.get(f"{role}_language"),
        timezone=values.get(f"{role}_timezone"),
    )


def check_problem(file: str, message: str) -> ConfigProblem:
    return ConfigProblem(file, None, "", message)
