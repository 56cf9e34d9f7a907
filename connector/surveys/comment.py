"""The survey invitation as a customer-visible ticket comment, for sites where the ITSM tool mails people.

Plain text only: ServiceNow shows comments as text and links bare URLs; Jira renders wiki markup, so
nothing from the ticket goes in (the ticket is right above the comment) and the reference is written in
parentheses, which neither system formats. The reference lets a later run see whether a send whose
outcome was unclear (a timeout, a crash) did store the comment, so it is never posted twice.
"""

from __future__ import annotations

import re

from connector.surveys.email import header_ticket
from connector.surveys.i18n import pick_language, text


def marker(survey: str, invitation_id: int, reminder: int = 0) -> str:
    """`(ref vloop-csat-12)`; reminders get their own (`-r1`) so they never look like the invitation."""
    suffix = f"-r{reminder}" if reminder else ""
    return f"(ref vloop-{re.sub(r'[^A-Za-z0-9_]', '_', survey)}-{invitation_id}{suffix})"


def comment_body(*, language: str | None, kind: str, ticket_number: str, survey_url: str, optout_url: str,
                 reference: str, reminder: bool = False) -> str:
    lang = pick_language(language)
    question = re.sub(r"\s+([?.!])", r"\1", text(lang, f"question.{kind}", ticket=header_ticket(ticket_number)))
    intro = text(lang, "ticket_comment.reminder_intro" if reminder else "ticket_comment.intro")
    return "\n".join([
        intro, "", question, f"{text(lang, 'ticket_comment.answer')}: {survey_url}", "",
        f"{text(lang, 'ticket_comment.optout')}: {optout_url}", reference,
    ])
