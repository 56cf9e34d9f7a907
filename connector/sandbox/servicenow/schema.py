"""The instance's data dictionary: column types, the standard tables, and the stored value formats.

`FieldSpec` describes one column as sys_dictionary would, and `ref` builds a reference column. `SCHEMAS`
lists the tables every simulator starts with; `CHOICES` holds the display labels of choice fields,
`DEFAULTS` the values a new row starts with, and `NUMBER_PREFIX` the prefix of its number. Every stored
value is a string (`Row`): `format_datetime` / `parse_datetime` convert date-times to and from the Table
API's format, and `to_value` turns JSON or Python input into the stored form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

Row = dict[str, str]

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NUMBER_PREFIX = {"incident": "INC", "incident_task": "TASK", "sn_cim_register": "CIM",
                 "asmt_assessment_instance": "AINST"}


@dataclass(frozen=True)
class FieldSpec:
    """One column as sys_dictionary describes it."""

    # internal_type: string, integer, boolean, glide_date_time, reference, journal_input, GUID, collection
    type: str = "string"
    reference: str = ""  # target table of a reference field
    label: str = ""
    max_length: int = 0  # sys_dictionary max_length; 0: not stated
    read_only: bool = False  # the dictionary's Read only flag (the sandbox does not enforce it)


# Short names keep the schema tables below readable: String, Number (integer), Boolean, Date-time, Journal.
S, N, B = FieldSpec("string"), FieldSpec("integer"), FieldSpec("boolean")
D, J = FieldSpec("glide_date_time"), FieldSpec("journal_input")


def ref(table: str) -> FieldSpec:
    return FieldSpec("reference", table)


SYSTEM_FIELDS: dict[str, FieldSpec] = {
    "sys_id": FieldSpec("GUID"), "sys_created_on": D, "sys_created_by": S, "sys_updated_on": D,
    "sys_updated_by": S, "sys_mod_count": N,
}
USER = ref("sys_user")
SCHEMAS: dict[str, dict[str, FieldSpec]] = {
    "sys_user": {"user_name": S, "name": S, "first_name": S, "last_name": S, "email": S,
                 "preferred_language": S, "time_zone": S, "active": B},
    "sys_user_group": {"name": S, "description": S, "email": S, "active": B},
    "cmdb_ci_service": {"name": S, "operational_status": N},
    "incident": {
        "number": S, "short_description": S, "description": S, "category": S, "subcategory": S, "priority": N,
        "impact": N, "urgency": N, "state": N, "incident_state": N, "hold_reason": N, "caller_id": USER,
        "assigned_to": USER, "assignment_group": ref("sys_user_group"),
        "business_service": ref("cmdb_ci_service"),
        "contact_type": S, "opened_at": D, "opened_by": USER, "resolved_at": D, "resolved_by": USER,
        "closed_at": D, "closed_by": USER, "reopened_time": D, "close_code": S, "close_notes": S,
        "reopen_count": N, "reassignment_count": N, "active": B, "comments": J, "work_notes": J,
    },
    "incident_task": {
        "number": S, "incident": ref("incident"), "short_description": S, "description": S, "state": N,
        "priority": N, "assigned_to": USER, "assignment_group": ref("sys_user_group"), "opened_at": D,
        "closed_at": D, "active": B, "comments": J, "work_notes": J, "due_date": D, "close_notes": S,
        "correlation_id": S, "correlation_display": S,
    },
    "sys_journal_field": {"element_id": FieldSpec("GUID"), "element": S, "value": S, "name": S},
    "asmt_metric_type": {"name": S, "table": S, "active": B},
    "asmt_metric": {"name": S, "question": S, "metric_type": ref("asmt_metric_type"), "datatype": S,
                    "scale_factor": N, "active": B},
    "asmt_assessment_instance": {
        "number": S, "metric_type": S, "user": USER, "state": S, "due_date": D, "expiration_date": D,
        "trigger_table": S, "trigger_id": FieldSpec("GUID"), "taken_on": D, "task_id": ref("incident"),
    },
    "asmt_metric_result": {
        "instance": ref("asmt_assessment_instance"), "metric": ref("asmt_metric"), "data_type": S, "user": USER,
        "source_table": S, "source_id": FieldSpec("GUID"), "actual_value": N, "normalized_value": N,
        "string_value": S, "instance_question": S,
    },
    "sn_cim_register": {
        "number": S, "short_description": S, "description": S, "priority": N, "state": S, "benefit": S,
        "business_service": ref("cmdb_ci_service"), "assigned_to": USER, "source_id": S, "source_table": S,
        "type": S, "cim_estimate": S, "strategic_objective": S, "business_process": S,
        "approver_group": ref("sys_user_group"), "close_notes": S, "active": B, "opened_at": D,
    },
    "sys_dictionary": {"name": S, "element": S, "internal_type": S, "reference": S, "column_label": S,
                       "max_length": N, "read_only": B},
}
CHOICES: dict[tuple[str, str], dict[str, str]] = {
    ("incident", "state"): {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed",
                            "8": "Canceled"},
    ("incident", "priority"): {"1": "1 - Critical", "2": "2 - High", "3": "3 - Moderate", "4": "4 - Low",
                               "5": "5 - Planning"},
    ("incident", "impact"): {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    ("incident", "hold_reason"): {"1": "Awaiting Caller", "3": "Awaiting Problem", "4": "Awaiting Vendor",
                                  "5": "Awaiting Change"},
    ("incident", "contact_type"): {"email": "Email", "phone": "Phone", "self-service": "Self-service",
                                   "chat": "Chat", "walk-in": "Walk-in"},
}
CHOICES[("incident_task", "state")] = {"1": "Open", "2": "Work in Progress", "3": "Closed Complete",
                                       "4": "Closed Incomplete", "7": "Closed Skipped"}
CHOICES[("incident", "incident_state")] = CHOICES[("incident", "state")]
CHOICES[("incident", "urgency")] = CHOICES[("incident", "impact")]
DEFAULTS: dict[str, dict[str, str]] = {
    "incident": {"state": "1", "incident_state": "1", "impact": "3", "urgency": "3", "priority": "5",
                 "active": "true", "reopen_count": "0", "reassignment_count": "0"},
    "incident_task": {"state": "1", "priority": "4", "active": "true"},
    "sn_cim_register": {"state": "1", "priority": "4", "active": "true"},
    "asmt_assessment_instance": {"state": "ready"},
    "sys_user": {"active": "true"},
    "sys_user_group": {"active": "true"},
}


def format_datetime(value: datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS``, the Table API's date-time value format."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(sep=" ")[:19]


def parse_datetime(value: str) -> datetime:
    return datetime.strptime(value, DATETIME_FORMAT).replace(tzinfo=UTC)


def as_field_spec(value: FieldSpec | str) -> FieldSpec:
    """A `FieldSpec` as given, or parsed from an internal_type string such as ``"reference:sys_user"``."""
    if isinstance(value, FieldSpec):
        return value
    kind, _, target = value.partition(":")
    return FieldSpec(kind, target)


def to_value(value: object) -> str:
    """JSON or Python input to the stored string form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):  # a reference echoed back as {"value": ..., "link": ...}
        return to_value(value.get("value"))
    return str(value)
