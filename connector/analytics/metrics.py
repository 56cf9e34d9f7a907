"""Survey metrics with their margins of error, and the inner loop's follow-up metrics.

Pure functions over plain inputs: no I/O, no clock, no state store. Each number comes as an `Estimate`
with its n, its confidence interval and whether it is reportable (n at least `min_n`). Units are the
ones people read: NPS in points (-100 to 100), shares in percent (0 to 100), CSAT and CES means on
their own scales (1-5, 1-7), times as `timedelta`.

Intervals (formulas, worked examples and sources in docs/metrics.md):

- NPS: normal approximation with the variance of the per-answer variable +1 / 0 / -1.
- Proportions (CSAT top-2-box, CES % agree, loop rates): Wilson score interval.
- Means (CSAT mean, CES mean): Student's t interval with n - 1 degrees of freedom.
- Optional finite-population correction (`population`): the standard error, or Wilson's z, is
  multiplied by sqrt((N - n) / (N - 1)).

Bands come from `connector.surveys.definitions.SCALES`, so a survey's scale and its metrics agree.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from scipy import stats

from connector.surveys.definitions import SCALES

DEFAULT_MIN_N = 30
DEFAULT_CONFIDENCE = 0.95

MetricKind = Literal["nps", "csat", "ces"]


@dataclass(frozen=True)
class Estimate:
    """A number with its n and its confidence interval.

    `value` is None only when n == 0. `low` and `high` bound the interval; they are None when n == 0,
    and for a mean of a single answer (no spread to measure). `margin` is the "±" people read: z·SE
    (NPS) or t·SE (means) before the bounds are clipped to the scale, and half the interval's width for
    Wilson intervals, which are not centred on the value. Below `min_n` the numbers are still filled
    in but `reportable` is False: show `label()` ("not reportable (n = 12 < 30)"), not the bare value.
    """

    value: float | None
    low: float | None
    high: float | None
    margin: float | None
    n: int
    reportable: bool
    min_n: int
    confidence: float = DEFAULT_CONFIDENCE

    def label(self, spec: str = ".0f", unit: str = "") -> str:
        """The estimate as a person should read it, e.g. ``+42 ± 12 (n = 120)``.

        Args:
            spec: format spec for the value (``"+.0f"`` for NPS); the margin drops any sign.
            unit: appended to value and margin, e.g. ``" %"``.

        Returns:
            The value with its margin and n, or why it is not shown.
        """
        if self.value is None:
            return "no answers (n = 0)"
        if not self.reportable:
            return f"not reportable (n = {self.n} < {self.min_n})"
        text = f"{format(self.value, spec)}{unit}"
        if self.margin is not None:
            text += f" ± {format(self.margin, spec.replace('+', ''))}{unit}"
        return f"{text} (n = {self.n})"


@dataclass(frozen=True)
class NpsResult:
    """NPS in points (-100 to 100) with the counts of each band."""

    nps: Estimate
    promoters: int
    passives: int
    detractors: int
    kind: Literal["nps"] = "nps"

    @property
    def n(self) -> int:
        return self.nps.n

    @property
    def headline(self) -> Estimate:
        """The one number a report or an improvement rule compares: the NPS."""
        return self.nps


@dataclass(frozen=True)
class CsatResult:
    """CSAT as top-2-box percent (answers 4-5 of 1-5) and as the mean answer."""

    top2: Estimate
    mean: Estimate
    satisfied: int
    kind: Literal["csat"] = "csat"

    @property
    def n(self) -> int:
        return self.top2.n

    @property
    def headline(self) -> Estimate:
        """The one number a report or an improvement rule compares: the top-2-box percent."""
        return self.top2


@dataclass(frozen=True)
class CesResult:
    """CES 2.0 as the mean answer (1-7) and as the percent who agree (5-7)."""

    mean: Estimate
    agree: Estimate
    agreeing: int
    kind: Literal["ces"] = "ces"

    @property
    def n(self) -> int:
        return self.mean.n

    @property
    def headline(self) -> Estimate:
        """The one number a report or an improvement rule compares: the mean, as CES 2.0 is usually read."""
        return self.mean


MetricResult = NpsResult | CsatResult | CesResult


# --- building blocks -------------------------------------------------------------------------------


def z_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile: 1.959964 for 0.95."""
    _check_confidence(confidence)
    return float(stats.norm.ppf(0.5 + confidence / 2))


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student t quantile with `df` degrees of freedom: 2.776445 for 0.95 and df 4."""
    _check_confidence(confidence)
    if df < 1:
        raise ValueError(f"degrees of freedom {df} must be at least 1")
    return float(stats.t.ppf(0.5 + confidence / 2, df))


def fpc(n: int, population: int | None) -> float:
    """The finite-population correction sqrt((N - n) / (N - 1)) on a standard error; 1.0 without N.

    Args:
        n: answers in the sample.
        population: N, everyone who could have answered (e.g. invitations sent, or resolutions in the
            period), or None to treat the answers as a sample of an unending process.

    Returns:
        The factor, 0.0 when everyone answered (N == n).

    Raises:
        ValueError: N is smaller than n.
    """
    if population is None:
        return 1.0
    population = operator.index(population)
    if population < n:
        raise ValueError(
            f"population {population} is smaller than the {n} answers: it must count everyone who could have answered"
        )
    if population == n:
        return 0.0
    return math.sqrt((population - n) / (population - 1))


def wilson(
    successes: int, n: int, *, confidence: float = DEFAULT_CONFIDENCE, population: int | None = None
) -> tuple[float, float]:
    """The Wilson score interval for a proportion, as fractions 0..1.

    With `population`, z is multiplied by `fpc(n, population)`: the score interval inverted with the
    without-replacement variance P(1 - P)/n · (N - n)/(N - 1) (see docs/metrics.md).

    Args:
        successes: answers that count (e.g. CSAT 4 or 5).
        n: all answers; at least 1.
        confidence: e.g. 0.95.
        population: N for the finite-population correction, or None.

    Returns:
        (low, high), within 0..1.

    Raises:
        ValueError: n < 1, successes outside 0..n, confidence outside (0, 1), population < n.
    """
    if n < 1:
        raise ValueError(f"a proportion needs at least one answer, got n = {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} must be between 0 and n = {n}")
    z = z_quantile(confidence) * fpc(n, population)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # NOTE: at 0 or n successes the exact bound is 0 or 1; rounding would leave it a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def mean_t(
    values: Sequence[float], *, confidence: float = DEFAULT_CONFIDENCE, population: int | None = None
) -> tuple[float, float | None]:
    """The mean and its margin t(1 - a/2, n - 1) · s/sqrt(n) · fpc.

    Args:
        values: the answers; at least one.
        confidence: e.g. 0.95.
        population: N for the finite-population correction, or None.

    Returns:
        (mean, margin); the margin is None for a single answer, whose spread cannot be estimated.

    Raises:
        ValueError: no values, confidence outside (0, 1), population < n.
    """
    n = len(values)
    if n < 1:
        raise ValueError("a mean needs at least one answer")
    _check_confidence(confidence)
    correction = fpc(n, population)
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, t_quantile(confidence, n - 1) * math.sqrt(variance / n) * correction


def proportion_estimate(
    successes: int,
    n: int,
    *,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = DEFAULT_CONFIDENCE,
    population: int | None = None,
) -> Estimate:
    """A share in percent (0..100) with its Wilson interval; value None when n == 0."""
    _check_common(min_n, confidence, n, population)
    if n == 0:
        return _empty(min_n, confidence)
    low, high = wilson(successes, n, confidence=confidence, population=population)
    return Estimate(
        value=100 * successes / n,
        low=100 * low,
        high=100 * high,
        margin=100 * (high - low) / 2,
        n=n,
        reportable=_reportable(n, min_n),
        min_n=min_n,
        confidence=confidence,
    )


def mean_estimate(
    values: Sequence[float],
    *,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = DEFAULT_CONFIDENCE,
    population: int | None = None,
    bounds: tuple[float, float] | None = None,
) -> Estimate:
    """A mean with its t interval, the bounds clipped to `bounds` (the scale) when given."""
    n = len(values)
    _check_common(min_n, confidence, n, population)
    if n == 0:
        return _empty(min_n, confidence)
    mean, margin = mean_t(values, confidence=confidence, population=population)
    low = high = None
    if margin is not None:
        low, high = mean - margin, mean + margin
        if bounds is not None:
            low, high = max(bounds[0], low), min(bounds[1], high)
    return Estimate(mean, low, high, margin, n, _reportable(n, min_n), min_n, confidence)


# --- survey metrics --------------------------------------------------------------------------------


def nps(
    scores: Sequence[int],
    *,
    min_n: int = DEFAULT_MIN_N,
    population: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> NpsResult:
    """Net Promoter Score: percent promoters (9-10) minus percent detractors (0-6), in points.

    Margin: z · sqrt((p + d - (p - d)²) / n) · fpc · 100, the normal approximation for the mean of the
    per-answer variable +1 (promoter) / 0 (passive) / -1 (detractor); the bounds are clipped to ±100.

    Args:
        scores: answers on 0-10.
        min_n: fewest answers for the NPS to be reportable.
        population: N for the finite-population correction (e.g. invitations sent), or None.
        confidence: e.g. 0.95.

    Returns:
        The NPS estimate and the counts of promoters, passives and detractors.

    Raises:
        ValueError: a score outside 0-10 or not a whole number (the message names it), a bad
            `min_n`, `confidence` or `population`.
    """
    bands = _bands("nps", scores)
    n = len(bands)
    _check_common(min_n, confidence, n, population)
    promoters, passives, detractors = bands.count("promoter"), bands.count("passive"), bands.count("detractor")
    if n == 0:
        return NpsResult(_empty(min_n, confidence), 0, 0, 0)
    p, d = promoters / n, detractors / n
    value = 100 * (p - d)
    variance = max(0.0, p + d - (p - d) ** 2)
    margin = 100 * z_quantile(confidence) * math.sqrt(variance / n) * fpc(n, population)
    estimate = Estimate(
        value=value,
        low=max(-100.0, value - margin),
        high=min(100.0, value + margin),
        margin=margin,
        n=n,
        reportable=_reportable(n, min_n),
        min_n=min_n,
        confidence=confidence,
    )
    return NpsResult(estimate, promoters, passives, detractors)


def csat(
    scores: Sequence[int],
    *,
    min_n: int = DEFAULT_MIN_N,
    population: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> CsatResult:
    """CSAT: percent of answers 4-5 on 1-5 (top-2-box, Wilson interval) and the mean (t interval).

    Args and Raises: as for `nps`, with scores on 1-5.
    """
    values = _validated("csat", scores)
    satisfied = sum(1 for v in values if SCALES["csat"].band(v) == "satisfied")
    return CsatResult(
        top2=proportion_estimate(satisfied, len(values), min_n=min_n, confidence=confidence, population=population),
        mean=mean_estimate(values, min_n=min_n, confidence=confidence, population=population, bounds=_bounds("csat")),
        satisfied=satisfied,
    )


def ces(
    scores: Sequence[int],
    *,
    min_n: int = DEFAULT_MIN_N,
    population: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> CesResult:
    """CES 2.0: the mean of 1-7 (t interval) and the percent who agree, 5-7 (Wilson interval).

    Args and Raises: as for `nps`, with scores on 1-7.
    """
    values = _validated("ces", scores)
    agreeing = sum(1 for v in values if SCALES["ces"].band(v) == "easy")
    return CesResult(
        mean=mean_estimate(values, min_n=min_n, confidence=confidence, population=population, bounds=_bounds("ces")),
        agree=proportion_estimate(agreeing, len(values), min_n=min_n, confidence=confidence, population=population),
        agreeing=agreeing,
    )


def summarize(
    kind: str,
    scores: Sequence[int],
    *,
    min_n: int = DEFAULT_MIN_N,
    population: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> MetricResult:
    """The metric of a survey kind: `nps`, `csat` or `ces` (see each for the arguments).

    Raises:
        ValueError: an unknown kind, or as the metric's function raises.
    """
    if kind == "nps":
        return nps(scores, min_n=min_n, population=population, confidence=confidence)
    if kind == "csat":
        return csat(scores, min_n=min_n, population=population, confidence=confidence)
    if kind == "ces":
        return ces(scores, min_n=min_n, population=population, confidence=confidence)
    raise ValueError(f"unknown survey kind {kind!r}: expected one of {', '.join(SCALES)}")


# --- inner-loop metrics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpFacts:
    """What the inner loop knows about one detractor answer; every datetime timezone-aware.

    Attributes:
        detractor_at: when the detractor answer was recorded.
        created_at: when its follow-up was created in the system; None if none was.
        closed_at: when the follow-up was closed; None while open.
        recovered: the re-survey after the follow-up: True if the customer is no longer a detractor,
            False if still one, None if not re-surveyed or not answered.
    """

    detractor_at: datetime
    created_at: datetime | None = None
    closed_at: datetime | None = None
    recovered: bool | None = None

    def __post_init__(self) -> None:
        for name in ("detractor_at", "created_at", "closed_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} {value!r} is naive: follow-up facts need timezone-aware datetimes")
        if self.created_at is None and (self.closed_at is not None or self.recovered is not None):
            raise ValueError("a follow-up that was never created cannot be closed or have a recovery outcome")
        if self.created_at is not None and self.created_at < self.detractor_at:
            raise ValueError(f"follow-up created at {self.created_at}, before the detractor answer {self.detractor_at}")
        if self.closed_at is not None and self.created_at is not None and self.closed_at < self.created_at:
            raise ValueError(f"follow-up closed at {self.closed_at} before it was created at {self.created_at}")


@dataclass(frozen=True)
class MedianTime:
    """A median duration with its n; `value` None when n == 0, `reportable` False below `min_n`."""

    value: timedelta | None
    n: int
    reportable: bool
    min_n: int


@dataclass(frozen=True)
class LoopMetrics:
    """The inner loop over a set of detractor answers (see the functions of the same names)."""

    detractors: int
    follow_up_rate: Estimate
    median_time_to_follow_up: MedianTime
    closure_rate: Estimate
    median_time_to_close: MedianTime
    on_time_rate: Estimate | None
    recovery_rate: Estimate


def follow_up_rate(
    facts: Sequence[FollowUpFacts], *, min_n: int = DEFAULT_MIN_N, confidence: float = DEFAULT_CONFIDENCE
) -> Estimate:
    """Percent of detractor answers that got a follow-up; n = detractor answers."""
    followed = sum(1 for f in facts if f.created_at is not None)
    return proportion_estimate(followed, len(facts), min_n=min_n, confidence=confidence)


def closure_rate(
    facts: Sequence[FollowUpFacts], *, min_n: int = DEFAULT_MIN_N, confidence: float = DEFAULT_CONFIDENCE
) -> Estimate:
    """Percent of follow-ups that are closed; n = follow-ups created."""
    created = [f for f in facts if f.created_at is not None]
    closed = sum(1 for f in created if f.closed_at is not None)
    return proportion_estimate(closed, len(created), min_n=min_n, confidence=confidence)


def on_time_rate(
    facts: Sequence[FollowUpFacts],
    *,
    due_in: timedelta,
    as_of: datetime,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Estimate:
    """Percent of follow-ups closed within `due_in` of their creation.

    n counts the follow-ups whose outcome is known at `as_of`: those closed, and those open past their
    due time. One still open and not yet due is left out rather than counted as late.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of!r} is naive: pass a timezone-aware datetime")
    on_time = known = 0
    for f in facts:
        if f.created_at is None:
            continue
        due_at = f.created_at + due_in
        if f.closed_at is not None and f.closed_at <= due_at:
            on_time += 1
            known += 1
        elif f.closed_at is not None or as_of > due_at:
            known += 1
    return proportion_estimate(on_time, known, min_n=min_n, confidence=confidence)


def recovery_rate(
    facts: Sequence[FollowUpFacts], *, min_n: int = DEFAULT_MIN_N, confidence: float = DEFAULT_CONFIDENCE
) -> Estimate:
    """Percent of re-surveyed detractors who are no longer detractors; n = re-survey answers."""
    outcomes = [f.recovered for f in facts if f.recovered is not None]
    return proportion_estimate(sum(outcomes), len(outcomes), min_n=min_n, confidence=confidence)


def median_time_to_follow_up(facts: Sequence[FollowUpFacts], *, min_n: int = DEFAULT_MIN_N) -> MedianTime:
    """Median time from the detractor answer to the follow-up's creation; n = follow-ups created."""
    return _median_time([f.created_at - f.detractor_at for f in facts if f.created_at is not None], min_n)


def median_time_to_close(facts: Sequence[FollowUpFacts], *, min_n: int = DEFAULT_MIN_N) -> MedianTime:
    """Median time from the detractor answer to the follow-up's closure; n = follow-ups closed.

    Open follow-ups are left out, so over a recent window this reads short: prefer a window that
    ended at least the due time ago.
    """
    return _median_time([f.closed_at - f.detractor_at for f in facts if f.closed_at is not None], min_n)


def loop_metrics(
    facts: Sequence[FollowUpFacts],
    *,
    due_in: timedelta | None = None,
    as_of: datetime | None = None,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = DEFAULT_CONFIDENCE,
) -> LoopMetrics:
    """All inner-loop metrics at once; `on_time_rate` only when both `due_in` and `as_of` are given."""
    _check_common(min_n, confidence, 0, None)
    return LoopMetrics(
        detractors=len(facts),
        follow_up_rate=follow_up_rate(facts, min_n=min_n, confidence=confidence),
        median_time_to_follow_up=median_time_to_follow_up(facts, min_n=min_n),
        closure_rate=closure_rate(facts, min_n=min_n, confidence=confidence),
        median_time_to_close=median_time_to_close(facts, min_n=min_n),
        on_time_rate=(
            on_time_rate(facts, due_in=due_in, as_of=as_of, min_n=min_n, confidence=confidence)
            if due_in is not None and as_of is not None
            else None
        ),
        recovery_rate=recovery_rate(facts, min_n=min_n, confidence=confidence),
    )


# --- helpers ---------------------------------------------------------------------------------------


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r} must be between 0 and 1, e.g. 0.95")


def _check_common(min_n: int, confidence: float, n: int, population: int | None) -> None:
    if isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 0:
        raise ValueError(f"min_n {min_n!r} must be a whole number of at least 0")
    _check_confidence(confidence)
    fpc(n, population)


def _reportable(n: int, min_n: int) -> bool:
    return n >= max(min_n, 1)


def _empty(min_n: int, confidence: float) -> Estimate:
    return Estimate(None, None, None, None, 0, False, min_n, confidence)


def _bounds(kind: str) -> tuple[float, float]:
    return float(SCALES[kind].low), float(SCALES[kind].high)


def _validated(kind: str, scores: Sequence[int]) -> list[int]:
    """The scores as ints, refusing the first that is not a whole number on the kind's scale."""
    scale = SCALES[kind]
    values = []
    for position, score in enumerate(scores):
        try:
            if isinstance(score, bool):
                raise TypeError
            value = operator.index(score)
        except TypeError:
            raise ValueError(f"{kind} score {score!r} (answer {position + 1}) is not a whole number") from None
        if not scale.low <= value <= scale.high:
            raise ValueError(f"{kind} score {value} (answer {position + 1}) is outside {scale.low}-{scale.high}")
        values.append(value)
    return values


def _bands(kind: str, scores: Sequence[int]) -> list[str]:
    return [SCALES[kind].band(v) for v in _validated(kind, scores)]


def _median_time(durations: list[timedelta], min_n: int) -> MedianTime:
    n = len(durations)
    if n == 0:
        return MedianTime(None, 0, False, min_n)
    ordered = sorted(durations)
    middle = n // 2
    value = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return MedianTime(value, n, _reportable(n, min_n), min_n)
