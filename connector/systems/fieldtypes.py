"""Which field type can hold which write-back value: the pure rules behind `vloop setup`.

A write-back value (mapping.WriteBackValue, plus `note` for ServiceNow's work notes) goes into a field
whose type is ServiceNow's sys_dictionary `internal_type` or Jira's `/field` `schema.type`. `fits`
says whether it can; `needed` names what would; `missing_options` and `too_short` catch a select list
or a string column that cannot take every value of a closed set (bands, survey kinds). The fields to
create (Jira) or to add by hand (ServiceNow) are described by `JIRA_CREATE` and `servicenow_fields`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from connector.surveys.definitions import SCALES

SystemKind = Literal["servicenow", "jira"]
_TEXT = ("band", "kind", "survey", "sentiment")

# sys_dictionary internal_type values (the labels a Form designer shows are in SERVICENOW_LABELS).
SERVICENOW_TYPES: dict[str, frozenset[str]] = {
    "score": frozenset({"integer", "decimal", "float", "string"}),
    **{value: frozenset({"string", "choice"}) for value in _TEXT},
    "answered_at": frozenset({"glide_date_time"}),
    "note": frozenset({"journal_input", "journal"}),
}
SERVICENOW_LABELS = {"integer": "Integer", "decimal": "Decimal", "float": "Floating Point Number",
                     "string": "String", "choice": "Choice", "glide_date_time": "Date/Time",
                     "journal_input": "Journal Input", "journal": "Journal"}
# Jira /field schema.type values; vloop writes a number, a plain string, {"value": ...} or a date-time.
JIRA_TYPES: dict[str, frozenset[str]] = {
    "score": frozenset({"number", "string"}),
    **{value: frozenset({"string", "option"}) for value in _TEXT},
    "answered_at": frozenset({"datetime"}),
}
JIRA_LABELS = {"number": "Number", "string": "Short text", "option": "Select list (single choice)",
               "datetime": "Date Time Picker"}

_CF = "com.atlassian.jira.plugin.system.customfieldtypes:"


@dataclass(frozen=True)
class JiraFieldSpec:
    """What createCustomField gets for a value: `type`, `searcherKey`, and the name a Jira admin sees."""

    type: str
    searcher: str
    label: str


JIRA_CREATE: dict[str, JiraFieldSpec] = {
    "score": JiraFieldSpec(f"{_CF}float", f"{_CF}numberrange", "Number"),
    **{value: JiraFieldSpec(f"{_CF}textfield", f"{_CF}textsearcher", "Short text (single line)")
       for value in _TEXT},
    "answered_at": JiraFieldSpec(f"{_CF}datetime", f"{_CF}datetimerange", "Date Time Picker"),
}


def fits(system: SystemKind, value: str, field_type: str) -> bool:
    """Whether a field of `field_type` can hold the write-back `value` on this kind of system."""
    table = SERVICENOW_TYPES if system == "servicenow" else JIRA_TYPES
    return field_type in table.get(value, frozenset())


def needed(system: SystemKind, value: str) -> str:
    """The field types that would hold `value`, as an admin reads them: "Integer, Decimal, …"."""
    table, labels = (SERVICENOW_TYPES, SERVICENOW_LABELS) if system == "servicenow" else (JIRA_TYPES, JIRA_LABELS)
    return " or ".join(sorted(labels.get(t, t) for t in table.get(value, frozenset())))


def closed_values(value: str) -> frozenset[str] | None:
    """Every string `value` can take, when that set is fixed (bands and survey kinds); else None."""
    if value == "band":
        return frozenset(band for scale in SCALES.values() for band, _, _ in scale.bands)
    if value == "kind":
        return frozenset(SCALES)
    return None


def missing_options(value: str, options: Iterable[str]) -> list[str]:
    """The values a select list lacks for `value` (empty when it has them all or the set is open)."""
    wanted = closed_values(value)
    return sorted(wanted - set(options)) if wanted is not None else []


def too_short(value: str, max_length: int | None) -> str | None:
    """The longest value of a closed set that does not fit `max_length` characters, if any."""
    wanted = closed_values(value)
    if wanted is None or max_length is None or max_length <= 0:
        return None
    longest = max(sorted(wanted), key=len)
    return longest if len(longest) > max_length else None


# --- ServiceNow: the columns to add by hand ---------------------------------------------------------

COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class ServiceNowField:
    """A column to add to the table (in an update set): name, type as the Form designer shows it, label."""

    name: str
    value: str
    type: str
    label: str
    optional: bool = False

    def describe(self) -> str:
        return f"{self.name}: {self.type}, label \"{self.label}\"" + (" (optional)" if self.optional else "")


SERVICENOW_TYPE_FOR = {"score": "Integer", "band": "String (40)", "kind": "String (10)",
                       "survey": "String (40)", "sentiment": "String (20)", "answered_at": "Date/Time"}
RECOMMENDED_SERVICENOW = (
    ServiceNowField("u_vloop_score", "score", "Integer", "VLoop score"),
    ServiceNowField("u_vloop_band", "band", "String (40)", "VLoop band"),
    ServiceNowField("u_vloop_sentiment", "sentiment", "String (20)", "VLoop sentiment", optional=True),
    ServiceNowField("u_vloop_answered_at", "answered_at", "Date/Time", "VLoop answered at", optional=True),
)


def servicenow_fields(fields: Mapping[str, str]) -> list[ServiceNowField]:
    """The columns a mapping's write_back.fields name (the recommended set when it names none)."""
    if not fields:
        return list(RECOMMENDED_SERVICENOW)
    known = {f.name: f for f in RECOMMENDED_SERVICENOW}
    out = []
    for name, value in fields.items():
        label = known[name].label if name in known else name.removeprefix("u_").replace("_", " ").capitalize()
        out.append(ServiceNowField(name, value, SERVICENOW_TYPE_FOR.get(value, "String (40)"), label))
    return out
