"""Metrics with margins of error: hand-computed and published cases, edges, and the inner-loop metrics.

Quantiles used in the hand arithmetic: z(0.95) = 1.959964, z(0.90) = 1.644854,
t(0.95, df 2) = 4.302653, t(0.95, df 4) = 2.776445, t(0.95, df 9) = 2.262157, t(0.90, df 9) = 1.833113.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scipy.stats import binomtest

from connector.analytics.metrics import (
    CesResult,
    CsatResult,
    Estimate,
    FollowUpFacts,
    NpsResult,
    ces,
    closure_rate,
    csat,
    follow_up_rate,
    fpc,
    loop_metrics,
    mean_t,
    median_time_to_close,
    median_time_to_follow_up,
    nps,
    on_time_rate,
    recovery_rate,
    summarize,
    t_quantile,
    wilson,
    z_quantile,
)

approx = pytest.approx

# A mixed NPS sample of 10: promoters 10,10,10,9,9 (5), passives 8,7 (2), detractors 6,3,0 (3).
MIXED_NPS = [10, 10, 10, 9, 9, 8, 7, 6, 3, 0]


def typical_desk(n):
    """p = 0.70 promoters, d = 0.10 detractors (NPS +60), the 'typical IT desk' of reference product.md."""
    k = n // 10
    return [10] * (7 * k) + [7] * (2 * k) + [0] * k


# --- quantiles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("confidence", "z"), [(0.95, 1.959964), (0.90, 1.644854), (0.99, 2.575829)])
def test_z_quantile(confidence, z):
    assert z_quantile(confidence) == approx(z, abs=1e-6)


@pytest.mark.parametrize(
    ("confidence", "df", "t"),
    [(0.95, 1, 12.706205), (0.95, 2, 4.302653), (0.95, 4, 2.776445), (0.95, 9, 2.262157), (0.90, 9, 1.833113)],
)
def test_t_quantile(confidence, df, t):
    assert t_quantile(confidence, df) == approx(t, abs=1e-6)


# --- NPS -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "kwargs", "value", "margin", "low", "high", "counts"),
    [
        # p = 5/10 = 0.5, d = 3/10 = 0.3: NPS = 100 · (0.5 - 0.3) = +20.
        # var = p + d - (p - d)² = 0.5 + 0.3 - 0.04 = 0.76; SE = sqrt(0.76 / 10) = 0.275681;
        # margin = 1.959964 · 0.275681 · 100 = 54.0325 → interval -34.03 … 74.03.
        (MIXED_NPS, {}, 20.0, 54.0325, -34.0325, 74.0325, (5, 2, 3)),
        # 90 %: 1.644854 · 0.275681 · 100 = 45.3455.
        (MIXED_NPS, {"confidence": 0.90}, 20.0, 45.3455, -25.3455, 65.3455, (5, 2, 3)),
        # FPC with N = 20: sqrt((20 - 10) / 19) = 0.725476; 54.0325 · 0.725476 = 39.1993.
        (MIXED_NPS, {"population": 20}, 20.0, 39.1993, -19.1993, 59.1993, (5, 2, 3)),
        # Everyone answered (N == n): no sampling error.
        (MIXED_NPS, {"population": 10}, 20.0, 0.0, 20.0, 20.0, (5, 2, 3)),
        # A much larger N changes almost nothing: sqrt(99990 / 99999) = 0.999955.
        (MIXED_NPS, {"population": 100_000}, 20.0, 54.0300, -34.0300, 74.0300, (5, 2, 3)),
        # Reference product.md §5 "NPS margin of error", typical desk (bracket 0.44): n = 30 → ±23.7,
        # n = 100 → ±13.0, n = 400 → ±6.5.
        (typical_desk(30), {}, 60.0, 23.7363, 36.2637, 83.7363, (21, 6, 3)),
        (typical_desk(100), {}, 60.0, 13.0009, 46.9991, 73.0009, (70, 20, 10)),
        (typical_desk(400), {}, 60.0, 6.5005, 53.4995, 66.5005, (280, 80, 40)),
        # Worst case p = d = 0.5: SE = 100 / sqrt(n); n = 100 → ±19.6 (product.md).
        ([10] * 50 + [0] * 50, {}, 0.0, 19.5996, -19.5996, 19.5996, (50, 0, 50)),
        # Unanimous samples: the +1/0/-1 variable has no spread, so the normal approximation gives ±0.
        ([9, 10] * 20, {}, 100.0, 0.0, 100.0, 100.0, (40, 0, 0)),
        ([0, 6] * 20, {}, -100.0, 0.0, -100.0, -100.0, (0, 0, 40)),
        ([7, 8] * 20, {}, 0.0, 0.0, 0.0, 0.0, (0, 40, 0)),
        ([10], {}, 100.0, 0.0, 100.0, 100.0, (1, 0, 0)),
        # Clipping: p = 0.9, d = 0: var = 0.9 - 0.81 = 0.09, SE = 0.3 / sqrt(10) = 0.094868,
        # margin = 18.5938 → upper bound 108.59 clipped to 100; the margin itself is kept.
        ([10] * 9 + [8], {}, 90.0, 18.5938, 71.4062, 100.0, (9, 1, 0)),
    ],
)
def test_nps(scores, kwargs, value, margin, low, high, counts):
    result = nps(scores, **kwargs)
    assert (result.promoters, result.passives, result.detractors) == counts
    assert result.n == len(scores)
    e = result.nps
    assert (e.value, e.margin, e.low, e.high) == (
        approx(value),
        approx(margin, abs=1e-4),
        approx(low, abs=1e-4),
        approx(high, abs=1e-4),
    )
    assert e.confidence == kwargs.get("confidence", 0.95)


def test_nps_of_no_answers_has_no_value():
    result = nps([])
    assert result.nps == Estimate(None, None, None, None, 0, False, 30, 0.95)
    assert (result.promoters, result.passives, result.detractors) == (0, 0, 0)
    assert result.nps.label() == "no answers (n = 0)"


@pytest.mark.parametrize(("n", "min_n", "reportable"), [(29, 30, False), (30, 30, True), (31, 30, True),
                                                        (1, 1, True), (1, 2, False), (5, 0, True)])
def test_min_n_boundary(n, min_n, reportable):
    for result in (nps([9] * n, min_n=min_n).nps, csat([4] * n, min_n=min_n).top2, ces([5] * n, min_n=min_n).mean):
        assert result.reportable is reportable
        assert result.value is not None, "the value is still computed below min_n"


def test_no_answers_are_never_reportable_even_with_min_n_zero():
    assert nps([], min_n=0).nps.reportable is False


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nps([10, 11]), r"nps score 11 \(answer 2\) is outside 0-10"),
        (lambda: nps([-1]), r"nps score -1 \(answer 1\) is outside 0-10"),
        (lambda: nps([7.5]), r"nps score 7.5 \(answer 1\) is not a whole number"),
        (lambda: nps([True]), r"nps score True \(answer 1\) is not a whole number"),
        (lambda: nps(["9"]), r"nps score '9' \(answer 1\) is not a whole number"),
        (lambda: csat([0]), r"csat score 0 \(answer 1\) is outside 1-5"),
        (lambda: csat([5, 6]), r"csat score 6 \(answer 2\) is outside 1-5"),
        (lambda: ces([8]), r"ces score 8 \(answer 1\) is outside 1-7"),
        (lambda: ces([0]), r"ces score 0 \(answer 1\) is outside 1-7"),
        (lambda: nps([9, 10], population=1), r"population 1 is smaller than the 2 answers"),
        (lambda: csat([4, 5], population=1), r"population 1 is smaller than the 2 answers"),
        (lambda: ces([4, 5], population=1), r"population 1 is smaller than the 2 answers"),
        (lambda: nps([9], confidence=95), r"confidence 95 must be between 0 and 1"),
        (lambda: nps([9], confidence=0), r"confidence 0 must be between 0 and 1"),
        (lambda: nps([9], confidence=1.0), r"confidence 1.0 must be between 0 and 1"),
        (lambda: nps([9], min_n=-1), r"min_n -1 must be a whole number"),
        (lambda: nps([], population=-1), r"population -1 is smaller than the 0 answers"),
        (lambda: summarize("happiness", [9]), r"unknown survey kind 'happiness'"),
        (lambda: wilson(0, 0), r"at least one answer"),
        (lambda: wilson(6, 5), r"successes 6 must be between 0 and n = 5"),
        (lambda: mean_t([]), r"at least one answer"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- Wilson ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score, no continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_1998(k, n, low, high):
    assert tuple(round(b, 4) for b in wilson(k, n)) == (low, high)


@pytest.mark.parametrize("confidence", [0.80, 0.90, 0.95, 0.99])
@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 5), (3, 5), (5, 5), (7, 50), (37, 40), (682, 925)])
def test_wilson_agrees_with_scipy(k, n, confidence):
    reference = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert wilson(k, n, confidence=confidence) == (approx(reference.low, abs=1e-12), approx(reference.high, abs=1e-12))


@pytest.mark.parametrize(
    ("k", "n", "kwargs", "low", "high"),
    [
        # 7/10 at 95 %: z² = 3.841459, z²/n = 0.384146;
        # centre = (0.7 + 0.192073) / 1.384146 = 0.644493;
        # half = 1.959964 · sqrt(0.7 · 0.3 / 10 + 3.841459 / 400) / 1.384146 = 0.247715 → 0.396778 … 0.892209.
        (7, 10, {}, 0.396778, 0.892209),
        # FPC, 40/50 with N = 100: z' = 1.959964 · sqrt(50 / 99) = 1.392887, z'² = 1.940133;
        # centre = (0.8 + 0.019401) / 1.038803 = 0.788794;
        # half = 1.392887 · sqrt(0.16 / 50 + 1.940133 / 10000) / 1.038803 = 0.078116 → 0.710678 … 0.866910.
        (40, 50, {"population": 100}, 0.710678, 0.866910),
        # Everyone answered: the interval collapses on the observed share.
        (40, 50, {"population": 50}, 0.8, 0.8),
        (0, 50, {"population": 50}, 0.0, 0.0),
        (50, 50, {"population": 50}, 1.0, 1.0),
        # The bounds at 0 and n successes are exactly 0 and 1.
        (0, 3, {}, 0.0, 0.561497),
        (3, 3, {}, 0.438503, 1.0),
    ],
)
def test_wilson_by_hand(k, n, kwargs, low, high):
    assert wilson(k, n, **kwargs) == (approx(low, abs=1e-6), approx(high, abs=1e-6))


@pytest.mark.parametrize(("n", "population", "factor"), [(10, None, 1.0), (10, 10, 0.0), (10, 20, 0.725476),
                                                        (1, 1, 0.0), (0, 0, 0.0), (50, 100, 0.710669)])
def test_fpc(n, population, factor):
    assert fpc(n, population) == approx(factor, abs=1e-6)


# --- means -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kwargs", "mean", "margin"),
    [
        # Student's sleep data (R datasets::sleep), drug 2 minus drug 1 for 10 patients: R's paired
        # t.test prints the 95 % interval 0.7001142 … 2.4598858 around 1.58.
        ([1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4], {}, 1.58, 2.4598858 - 1.58),
        # [1, 2, 3, 4, 5]: mean 3, s² = (4 + 1 + 0 + 1 + 4) / 4 = 2.5, SE = sqrt(2.5 / 5) = 0.707107,
        # margin = 2.776445 · 0.707107 = 1.963243.
        ([1, 2, 3, 4, 5], {}, 3.0, 1.963243),
        # FPC with N = 10: sqrt(5 / 9) = 0.745356 → 1.963243 · 0.745356 = 1.463315.
        ([1, 2, 3, 4, 5], {"population": 10}, 3.0, 1.463315),
        ([1, 2, 3, 4, 5], {"population": 5}, 3.0, 0.0),
        ([4, 4, 4], {}, 4.0, 0.0),
        ([4], {}, 4.0, None),
    ],
)
def test_mean_t(values, kwargs, mean, margin):
    got_mean, got_margin = mean_t(values, **kwargs)
    assert got_mean == approx(mean)
    assert got_margin == (None if margin is None else approx(margin, abs=1e-6))


# --- CSAT and CES ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "kwargs", "top2", "top2_low", "top2_high", "mean", "mean_margin"),
    [
        # 10 answers, 7 of them 4 or 5: top-2-box 70 %, Wilson 39.68 … 89.22 (see test_wilson_by_hand).
        # Mean 37 / 10 = 3.7; Σ(x - 3.7)² = 3·1.69 + 4·0.09 + 0.49 + 2.89 + 7.29 = 16.1, s² = 16.1 / 9 = 1.788889,
        # SE = sqrt(1.788889 / 10) = 0.422953; margin = 2.262157 · 0.422953 = 0.956785.
        ([5, 5, 5, 4, 4, 4, 4, 3, 2, 1], {}, 70.0, 39.6778, 89.2209, 3.7, 0.956785),
        # 90 %: Wilson with z = 1.644854; mean margin 1.833113 · 0.422953 = 0.775320.
        ([5, 5, 5, 4, 4, 4, 4, 3, 2, 1], {"confidence": 0.90}, 70.0, 44.1700, 87.3123, 3.7, 0.775320),
        # 40 of 40: centre = (1 + 0.048018) / 1.096036 = 0.956189, half = z · sqrt(z² / 6400) / 1.096036 = 0.043811
        # → 0.912378 … 1; no spread, so the mean's margin is 0.
        ([5] * 40, {}, 100.0, 91.2378, 100.0, 5.0, 0.0),
        # 0 of 30: high = 2 · (z²/60) / (1 + z²/30) = 2 · 0.064024 / 1.128049 = 0.113513.
        # Mean 2, s² = (10 · 1 + 10 · 1) / 29 = 0.689655, SE = sqrt(0.689655 / 30) = 0.151620,
        # t(0.95, df 29) = 2.045230 → margin 0.310097.
        ([1, 2, 3] * 10, {}, 0.0, 0.0, 11.3513, 2.0, 0.310097),
    ],
)
def test_csat(scores, kwargs, top2, top2_low, top2_high, mean, mean_margin):
    result = csat(scores, **kwargs)
    assert result.satisfied == round(top2 * len(scores) / 100)
    assert (result.top2.value, result.top2.low, result.top2.high) == (
        approx(top2),
        approx(top2_low, abs=1e-4),
        approx(top2_high, abs=1e-4),
    )
    assert result.top2.margin == approx((result.top2.high - result.top2.low) / 2)
    assert (result.mean.value, result.mean.margin) == (approx(mean), approx(mean_margin, abs=1e-6))
    assert result.n == len(scores) and result.headline is result.top2


@pytest.mark.parametrize(
    ("scores", "kwargs", "mean", "low", "high", "agree", "agreeing"),
    [
        # Mean 5, s² = 2.5, SE = 0.707107, margin 2.776445 · 0.707107 = 1.963243 → 3.0368 … 6.9632;
        # agree 3 of 5 = 60 %.
        ([7, 6, 5, 4, 3], {}, 5.0, 3.036757, 6.963243, 60.0, 3),
        # Mean 20 / 3 = 6.6667, s = 0.57735, SE = 0.333333, margin 4.302653 · 0.333333 = 1.434218:
        # the upper bound 8.10 is clipped to the scale's 7.
        ([7, 7, 6], {}, 6.666667, 5.232449, 7.0, 100.0, 3),
        # Lower bound clipped to 1 the same way.
        ([1, 1, 2], {}, 1.333333, 1.0, 2.767551, 0.0, 0),
        ([7, 6, 5, 4, 3], {"population": 10}, 5.0, 3.536685, 6.463315, 60.0, 3),
        # One answer: a mean but no interval.
        ([4], {}, 4.0, None, None, 0.0, 0),
    ],
)
def test_ces(scores, kwargs, mean, low, high, agree, agreeing):
    result = ces(scores, **kwargs)
    assert result.agreeing == agreeing
    assert result.mean.value == approx(mean, abs=1e-6)
    assert result.mean.low == (None if low is None else approx(low, abs=1e-6))
    assert result.mean.high == (None if high is None else approx(high, abs=1e-6))
    assert result.agree.value == approx(agree)
    low_share, high_share = wilson(agreeing, len(scores), **kwargs)
    assert (result.agree.low, result.agree.high) == (approx(100 * low_share), approx(100 * high_share))
    assert result.headline is result.mean


@pytest.mark.parametrize("function", [csat, ces])
def test_no_answers_give_no_values(function):
    result = function([])
    for estimate in (result.headline, result.mean):
        assert (estimate.value, estimate.low, estimate.high, estimate.margin, estimate.n) == (None,) * 4 + (0,)
        assert estimate.reportable is False


@pytest.mark.parametrize(("kind", "type_"), [("nps", NpsResult), ("csat", CsatResult), ("ces", CesResult)])
def test_summarize_dispatches_on_the_kind(kind, type_):
    scores = [5, 4, 3]
    result = summarize(kind, scores, min_n=3, population=10, confidence=0.9)
    assert isinstance(result, type_) and result.kind == kind
    direct = {"nps": nps, "csat": csat, "ces": ces}[kind](scores, min_n=3, population=10, confidence=0.9)
    assert result == direct and result.headline.reportable


@pytest.mark.parametrize(
    ("estimate", "spec", "unit", "text"),
    [
        (nps(typical_desk(100)).nps, "+.0f", "", "+60 ± 13 (n = 100)"),
        (nps([0] * 40).nps, "+.0f", "", "-100 ± 0 (n = 40)"),
        # 20 of 40: half = 1.959964 · sqrt(0.25 / 40 + 3.841459 / 6400) / 1.096036 = 0.148005
        (csat([5, 4, 3, 2] * 10).top2, ".1f", " %", "50.0 % ± 14.8 % (n = 40)"),
        (nps([9] * 12).nps, "+.0f", "", "not reportable (n = 12 < 30)"),
        (ces([4], min_n=1).mean, ".1f", "", "4.0 (n = 1)"),
        (ces([]).mean, ".1f", "", "no answers (n = 0)"),
    ],
)
def test_label(estimate, spec, unit, text):
    assert estimate.label(spec, unit) == text


# --- inner loop ------------------------------------------------------------------------------------

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def facts(created=None, closed=None, recovered=None, at=T0):
    return FollowUpFacts(
        detractor_at=at,
        created_at=None if created is None else at + created,
        closed_at=None if closed is None else at + closed,
        recovered=recovered,
    )


# Six detractor answers: five followed up (after 1 h, 2 h, 3 h, 30 min, 4 h), four of those closed
# (after 1 d, 3 d, 12 h, 2 d from the answer), three re-surveyed (two recovered).
LOOP = [
    facts(1 * H, 1 * D, True),
    facts(2 * H, 3 * D, False),
    facts(3 * H),
    facts(),
    facts(H / 2, 12 * H, True),
    facts(4 * H, 2 * D),
]


@pytest.mark.parametrize(
    ("metric", "successes", "n"),
    [
        (follow_up_rate, 5, 6),  # 5 of 6 detractors followed up: 83.3 %
        (closure_rate, 4, 5),  # 4 of 5 follow-ups closed: 80 %
        (recovery_rate, 2, 3),  # 2 of 3 re-surveyed recovered: 66.7 %
    ],
)
def test_loop_rates(metric, successes, n):
    result = metric(LOOP, min_n=3)
    low, high = wilson(successes, n)
    assert (result.value, result.n, result.reportable) == (approx(100 * successes / n), n, True)
    assert (result.low, result.high) == (approx(100 * low), approx(100 * high))


@pytest.mark.parametrize(
    ("metric", "median", "n"),
    [
        # sorted 30 min, 1 h, 2 h, 3 h, 4 h → 2 h
        (median_time_to_follow_up, 2 * H, 5),
        # sorted 12 h, 1 d, 2 d, 3 d → (1 d + 2 d) / 2 = 36 h
        (median_time_to_close, 36 * H, 4),
    ],
)
def test_loop_medians(metric, median, n):
    result = metric(LOOP, min_n=5)
    assert (result.value, result.n, result.reportable) == (median, n, n >= 5)


@pytest.mark.parametrize(
    ("rows", "as_of", "on_time", "known"),
    [
        # due in 2 d from creation; closed after 23 h (on time), 70 h (late), 44 h (on time).
        ([facts(H, D), facts(2 * H, 3 * D), facts(4 * H, 2 * D)], T0 + 10 * D, 2, 3),
        # open and overdue counts as late
        ([facts(H, D), facts(H)], T0 + 10 * D, 1, 2),
        # open and not yet due is left out
        ([facts(H, D), facts(H)], T0 + D, 1, 1),
        # closed exactly at the due time is on time
        ([facts(H, 2 * D + H)], T0 + 10 * D, 1, 1),
        # no follow-up, no count
        ([facts()], T0 + 10 * D, 0, 0),
    ],
)
def test_on_time_rate(rows, as_of, on_time, known):
    result = on_time_rate(rows, due_in=2 * D, as_of=as_of, min_n=1)
    assert result.n == known
    assert result.value == (None if known == 0 else approx(100 * on_time / known))


def test_loop_metrics_gathers_them_all():
    result = loop_metrics(LOOP, due_in=2 * D, as_of=T0 + 10 * D, min_n=3, confidence=0.9)
    assert result.detractors == 6
    assert result.follow_up_rate == follow_up_rate(LOOP, min_n=3, confidence=0.9)
    assert result.closure_rate == closure_rate(LOOP, min_n=3, confidence=0.9)
    assert result.recovery_rate == recovery_rate(LOOP, min_n=3, confidence=0.9)
    assert result.median_time_to_follow_up.value == 2 * H
    assert result.median_time_to_close.value == 36 * H
    # on time: 23 h, 11.5 h, 44 h closed within 2 d of creation; 70 h late; the open one overdue.
    assert result.on_time_rate is not None and (result.on_time_rate.value, result.on_time_rate.n) == (60.0, 5)
    assert loop_metrics(LOOP).on_time_rate is None


def test_loop_metrics_of_nothing():
    result = loop_metrics([])
    assert result.detractors == 0
    for estimate in (result.follow_up_rate, result.closure_rate, result.recovery_rate):
        assert (estimate.value, estimate.n, estimate.reportable) == (None, 0, False)
    assert (result.median_time_to_close.value, result.median_time_to_close.n) == (None, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detractor_at": datetime(2025, 3, 3, 9, 0)}, "detractor_at .* is naive"),
        ({"detractor_at": T0, "created_at": datetime(2025, 3, 3, 10, 0)}, "created_at .* is naive"),
        ({"detractor_at": T0, "closed_at": T0 + D}, "never created cannot be closed"),
        ({"detractor_at": T0, "recovered": True}, "never created cannot be closed or have a recovery outcome"),
        ({"detractor_at": T0, "created_at": T0 - H}, "before the detractor answer"),
        ({"detractor_at": T0, "created_at": T0 + H, "closed_at": T0}, "closed at .* before it was created"),
    ],
)
def test_follow_up_facts_refuse_impossible_histories(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FollowUpFacts(**kwargs)


def test_on_time_rate_needs_an_aware_as_of():
    with pytest.raises(ValueError, match=r"as_of .* is naive"):
        on_time_rate(LOOP, due_in=D, as_of=datetime(2025, 3, 10))
