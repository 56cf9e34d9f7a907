"""Step: score each new (or changed) response: its band, the comment's sentiment and themes, and the
comment with personal data redacted, so reports and rules never need the raw text.

Sentiment is only given in a language the analyser supports (connector/analytics/sentiment.py); the
comment's language is the one the answer was given in (the page's), else the invitation's.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from connector.analytics.pii import redact_personal
from connector.analytics.sentiment import sentiment
from connector.analytics.themes import Taxonomy, load_taxonomy, themes_of
from connector.config import Loaded
from connector.store import Store
from connector.store.repo import upsert
from connector.store.schema import invitations, persons, responses, scores
from connector.surveys.definitions import SCALES

log = logging.getLogger("vloop.score")


@dataclass
class ScoreReport:
    scored: int = 0
    with_sentiment: int = 0
    unscored: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"scored": self.scored, "with_sentiment": self.with_sentiment, "unscored": dict(self.unscored)}


def taxonomy_of(loaded: Loaded) -> Taxonomy:
    path = loaded.config.analytics.themes
    return load_taxonomy(loaded.base_dir / Path(path) if path else None)


def score_row(kind: str, score: int, comment: str | None, language: str | None, names: list[str],
              taxonomy: Taxonomy) -> dict[str, Any] | None:
    """The derived values of one answer; None when its score is off the kind's scale."""
    scale = SCALES.get(kind)
    if scale is None or score not in scale.values():
        return None
    redacted = redact_personal(comment, names=names) if comment and comment.strip() else None
    mood = sentiment(redacted or "", language)
    return {"band": scale.band(score), "sentiment": mood.score, "sentiment_label": mood.label,
            "unscored": None if mood.scored else mood.reason,
            "themes": sorted(themes_of(redacted, mood.language or language, taxonomy)) if redacted else [],
            "comment_redacted": redacted}


def score_responses(store: Store, loaded: Loaded, now: datetime) -> ScoreReport:
    report = ScoreReport()
    kinds = {name: s.kind for name, s in loaded.config.surveys.items()}
    taxonomy = taxonomy_of(loaded)
    stmt = (select(responses.c.id, responses.c.score, responses.c.comment, responses.c.submitted_at,
                   responses.c.language, invitations.c.survey, invitations.c.language.label("invited_in"),
                   persons.c.name)
            .select_from(responses.join(invitations, invitations.c.id == responses.c.invitation_id)
                         .outerjoin(persons, persons.c.key == invitations.c.person_key)
                         .outerjoin(scores, scores.c.response_id == responses.c.id))
            .where(or_(scores.c.response_id.is_(None), scores.c.answered_at != responses.c.submitted_at)))
    with store.engine.begin() as conn:
        rows = []
        for r in conn.execute(stmt).all():
            values = score_row(kinds.get(r.survey, ""), r.score, r.comment, r.language or r.invited_in,
                               [r.name] if r.name else [], taxonomy)
            if values is None:
                continue
            rows.append({"response_id": r.id, "answered_at": r.submitted_at, "scored_at": now, **values})
            report.scored += 1
            if values["sentiment"] is not None:
                report.with_sentiment += 1
            elif r.comment:
                report.unscored[values["unscored"] or "unknown"] += 1
        if rows:
            upsert(conn, scores, rows, ("response_id",))
    return report
