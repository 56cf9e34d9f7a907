"""Incident specifics: state codes, how a world ticket becomes an incident row, and the business rules.

The instance treats incident writes specially: `state` and `incident_state` mirror each other, resolving,
closing and reopening fill in or clear the resolution fields (`incident_rules`), and a Closed or Canceled
incident accepts only the fields in `CLOSED_WRITABLE` (enforced by the store on API writes).
"""

from __future__ import annotations

from collections.abc import Mapping

from connector.sandbox.servicenow.schema import Row, format_datetime
from connector.sandbox.world import Ticket

STATE_BY_WORLD = {"new": "1", "in_progress": "2", "on_hold": "3", "resolved": "6", "closed": "7",
                  "canceled": "8"}
RESOLVED, CLOSED, CANCELED = "6", "7", "8"
OPEN_STATES = frozenset({"1", "2", "3"})
# reference §7.2: what even an admin may still change on a Closed or Canceled incident. Work notes are not
# on it (only the work notes *list*): a write-back onto a closed incident needs an ACL exception.
CLOSED_WRITABLE = frozenset({
    "subcategory", "business_service", "service_offering", "description", "contact_type", "watch_list",
    "work_notes_list", "parent", "problem_id", "rfc", "caused_by", "resolved_by", "resolved_at",
    "reassignment_count",
})
SUBCATEGORY = {"software": "email", "hardware": "monitor", "network": "vpn",
               "inquiry": "internal application", "database": "oracle", "security": "access"}


def incident_row(ticket: Ticket) -> Row:
    """One world ticket as an incident row; all values strings, empty references as ""."""
    state = STATE_BY_WORLD[ticket.state]
    resolved = ticket.resolved_at is not None
    # Formatting dominates start-up for 100k tickets; updated_at is always one of the other three.
    opened = format_datetime(ticket.opened_at)
    resolved_at = format_datetime(ticket.resolved_at) if ticket.resolved_at else ""
    closed_at = format_datetime(ticket.closed_at) if ticket.closed_at else ""
    updated = {ticket.opened_at: opened, ticket.resolved_at: resolved_at, ticket.closed_at: closed_at}.get(
        ticket.updated_at) or format_datetime(ticket.updated_at)
    agent = ticket.assignee
    agent_id = agent.id if agent else ""
    done_by = (agent.user_name if agent else "system") if state == RESOLVED else (
        "system" if state == CLOSED else ticket.requester.user_name)
    return {
        "sys_id": ticket.id, "number": ticket.number, "short_description": ticket.title,
        "description": ticket.description, "category": ticket.category,
        "subcategory": SUBCATEGORY.get(ticket.category, ""), "priority": str(ticket.priority),
        "impact": str(ticket.impact), "urgency": str(ticket.urgency), "state": state, "incident_state": state,
        "hold_reason": "1" if state == "3" else "", "caller_id": ticket.requester.id,
        "assigned_to": agent_id, "assignment_group": ticket.group.id, "business_service": ticket.service.id,
        "contact_type": ticket.channel, "opened_at": opened,
        "opened_by": ticket.requester.id,
        "resolved_at": resolved_at,
        "resolved_by": agent_id if resolved else "",
        "closed_at": closed_at,
        "closed_by": agent_id if ticket.closed_at else "", "reopened_time": "",
        "close_code": ticket.close_code if resolved else "",
        "close_notes": f"{ticket.close_code}: {ticket.title}" if resolved else "",
        "reopen_count": str(ticket.reopen_count), "reassignment_count": str(ticket.reassignment_count),
        "active": "false" if state in (CLOSED, CANCELED) else "true", "comments": "", "work_notes": "",
        "sys_created_on": opened, "sys_created_by": ticket.requester.user_name,
        "sys_updated_on": updated, "sys_updated_by": done_by,
        "sys_mod_count": str(ticket.mod_count),
    }


def incident_rules(old: Mapping[str, str], changes: Row, now: str, actor_id: str) -> Row:
    """Business rules the instance runs on incident writes: state mirrors, resolve, close, reopen."""
    out = dict(changes)
    if "incident_state" in out and "state" not in out:
        out["state"] = out["incident_state"]
    new_state = out.get("state", old.get("state", ""))
    if "state" in out:
        out["incident_state"] = new_state
    was = old.get("state", "")
    if new_state == was:
        return {k: v for k, v in out.items() if v != old.get(k)}
    if new_state in (RESOLVED, CLOSED):
        out.setdefault("resolved_at", old.get("resolved_at") or now)
        out.setdefault("resolved_by", old.get("resolved_by") or actor_id)
    if new_state == CLOSED:
        out.setdefault("closed_at", now)
        out.setdefault("closed_by", actor_id)
    if new_state in OPEN_STATES and was in (RESOLVED, CLOSED):
        out.update(resolved_at="", resolved_by="", closed_at="", closed_by="", reopened_time=now,
                   reopen_count=str(int(old.get("reopen_count") or 0) + 1))
    out["active"] = "false" if new_state in (CLOSED, CANCELED) else "true"
    return {k: v for k, v in out.items() if v != old.get(k)}
