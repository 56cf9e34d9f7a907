"""Survey kinds and their scales: NPS 0-10, CSAT 1-5, CES 2.0 1-7, and the band of each score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SurveyKind = Literal["nps", "csat", "ces"]


@dataclass(frozen=True)
class Scale:
    low: int
    high: int
    bands: tuple[tuple[str, int, int], ...]  # (band, first score, last score)

    def values(self) -> range:
        return range(self.low, self.high + 1)

    def tone(self, score: int) -> str:
        """negative | neutral | positive: picks the reason choices (texts `reasons.<tone>`)."""
        names = [b[0] for b in self.bands]
        return ("negative", "neutral", "positive")[names.index(self.band(score))]

    def band(self, score: int) -> str:
        for name, first, last in self.bands:
            if first <= score <= last:
                return name
        raise ValueError(f"score {score} is outside {self.low}-{self.high}")


SCALES: dict[str, Scale] = {
    # Promoter 9-10, passive 7-8, detractor 0-6 (Reichheld; shared reference product.md §5).
    "nps": Scale(0, 10, (("detractor", 0, 6), ("passive", 7, 8), ("promoter", 9, 10))),
    # Top-2-box counts as satisfied.
    "csat": Scale(1, 5, (("dissatisfied", 1, 2), ("neutral", 3, 3), ("satisfied", 4, 5))),
    # CES 2.0: agreement with "… made it easy to handle my issue", 5-7 agree.
    "ces": Scale(1, 7, (("difficult", 1, 3), ("neutral", 4, 4), ("easy", 5, 7))),
}


def scale(kind: str) -> Scale:
    return SCALES[kind]
