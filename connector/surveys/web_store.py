"""Reads the survey page needs beyond `SurveyStore`: who an opt-out is for, and a health probe.

Kept apart from `connector/store/surveys.py` so the page can evolve without touching the outbox code.
"""

from __future__ import annotations

from sqlalchemy import Engine, select, text

from connector.store.schema import invitations


def optout_key(engine: Engine, invitation_id: int) -> str | None:
    """The key the opt-out list is matched on: the person key, else the invitation's email address."""
    stmt = select(invitations.c.person_key, invitations.c.email).where(invitations.c.id == invitation_id)
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        return None
    key = row.person_key or row.email
    return str(key).strip().lower() if key else None


def database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        # Health checks report, they do not raise: the caller answers 503.
        return False
