"""The statistics module against scipy's own routines and the definitions they implement."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import stats

scipy_stats = pytest.importorskip("scipy.stats")

CONFIDENCES = st.sampled_from([0.9, 0.95, 0.99])


def test_the_rule_of_three_figures() -> None:
    # 80 good probes of 80: 96.3 %; 2995 show 99.9 %, 2994 do not
    assert stats.binomial_lower(80, 80) == pytest.approx(0.9632, abs=1e-4)
    assert stats.binomial_lower(2995, 2995) >= 0.999 > stats.binomial_lower(2994, 2994)
    assert stats.trials_needed(80, 80, 0.999) == 2995
    assert stats.binomial_lower(4, 4) == pytest.approx(0.4729, abs=1e-4)
    assert stats.binomial_lower(19, 20) == pytest.approx(0.7839, abs=1e-4)


COUNTS = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@settings(max_examples=150, deadline=None)
@given(COUNTS, CONFIDENCES)
def test_clopper_pearson_matches_scipy(counts: tuple[int, int], confidence: float) -> None:
    k, n = counts
    result = scipy_stats.binomtest(k, n, alternative="greater").proportion_ci(
        confidence_level=confidence, method="exact"
    )
    assert stats.binomial_lower(k, n, confidence) == pytest.approx(result.low, abs=1e-9)
    upper = scipy_stats.binomtest(k, n, alternative="less").proportion_ci(
        confidence_level=confidence, method="exact"
    )
    assert stats.binomial_upper(k, n, confidence) == pytest.approx(upper.high, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1000, 10**6),
    st.integers(0, 250),
    st.booleans(),
    st.sampled_from([0.9, 0.95, 0.99, 0.999, 0.99875]),
)
def test_clopper_pearson_of_many_trials_with_few_events_matches_scipy(
    n: int, few: int, failures: bool, confidence: float
) -> None:
    """Probes and requests by the thousand with a few failed (or a few counted): the bound
    found here by bisection, without scipy, is scipy's beta quantile."""
    k = n - few if failures else few
    expected = 0.0 if k == 0 else float(scipy_stats.beta.ppf(1 - confidence, k, n - k + 1))
    assert stats.binomial_lower(k, n, confidence) == pytest.approx(expected, abs=1e-11, rel=1e-9)


def test_few_failures_among_many_are_bounded_without_importing_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pytest_fwgates import stats; "
        "assert stats.binomial_lower(4998, 5000) > 0.998; "
        "assert stats.trials_needed(3499, 3500, 0.999) == 4742; "
        "print('scipy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20), st.sampled_from([0.9, 0.99, 0.999]), CONFIDENCES)
def test_trials_needed_is_the_smallest(failures: int, target: float, confidence: float) -> None:
    needed = stats.trials_needed(failures, failures * 2 + 1, target, confidence, lower=False)
    assert needed is not None
    assert stats.binomial_upper(failures, needed, confidence) <= target
    if needed > failures * 2 + 1:
        assert stats.binomial_upper(failures, needed - 1, confidence) > target


@settings(max_examples=120, deadline=None)
@given(st.integers(1, 3000), st.sampled_from([0.5, 0.9, 0.95, 0.99]), CONFIDENCES)
def test_quantile_ranks_are_the_tightest_exact_ones(n: int, q: float, confidence: float) -> None:
    low, high = stats.quantile_ranks(n, q, confidence)
    binom = scipy_stats.binom
    eps = 1e-9  # ties with the level, summed in floating point
    if high is not None:
        # P(X_(r) >= x_q) = P(Bin(n, q) <= r - 1): at least the confidence, and not for r - 1
        assert binom.cdf(high - 1, n, q) >= confidence - eps
        assert high == 1 or binom.cdf(high - 2, n, q) < confidence + eps
    else:
        assert binom.cdf(n - 1, n, q) < confidence + eps
    if low is not None:
        assert binom.sf(low - 1, n, q) >= confidence - eps
        assert low == n or binom.sf(low, n, q) < confidence + eps
    else:
        assert binom.sf(0, n, q) < confidence + eps


@pytest.mark.parametrize("n", [5, 59, 300, 20000])
def test_exact_sums_and_scipy_give_the_same_ranks(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    exact = stats.quantile_ranks(n, 0.95)
    monkeypatch.setattr(stats, "_EXACT_CDF_MAX", 0)
    assert stats.quantile_ranks(n, 0.95) == exact


def test_quantile_bounds_of_a_histogram() -> None:
    hist = {ms: 10 for ms in range(1, 101)}  # 1000 requests, 10 at each of 1..100 ms
    low, high = stats.quantile_bounds(hist, 0.95)
    assert low <= 95 <= high
    assert high - low <= 4
    # 20 samples cannot bound a p99 from above
    assert stats.quantile_bounds({5: 20}, 0.99)[1] == math.inf


def test_quantile_bound_covers_in_simulation() -> None:
    rng = __import__("random").Random(7)
    misses = 0
    for _ in range(400):
        sample = [rng.expovariate(1.0) for _ in range(200)]
        hist: dict[float, int] = {}
        for v in sample:
            hist[v] = hist.get(v, 0) + 1
        _, high = stats.quantile_bounds(hist, 0.95)
        misses += high < -math.log(0.05)  # the true p95 of Exp(1)
    assert misses <= 400 * 0.05 + 15


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=50), CONFIDENCES)
def test_mean_bounds_match_scipy(values: list[float], confidence: float) -> None:
    n, mean, sd = stats.sample_stats(values)
    low, high = stats.mean_bounds(n, mean, sd, confidence)
    if sd == 0:
        assert low == pytest.approx(mean) and high == pytest.approx(mean)
        return
    ref = scipy_stats.t.interval(2 * confidence - 1, n - 1, loc=mean, scale=sd / math.sqrt(n))
    assert low == pytest.approx(ref[0], rel=1e-9, abs=1e-9)
    assert high == pytest.approx(ref[1], rel=1e-9, abs=1e-9)


def test_a_single_sample_has_no_mean_bound() -> None:
    assert stats.mean_bounds(1, 5.0, math.nan) == (-math.inf, math.inf)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(1, 30), min_size=1, max_size=60),
    st.lists(st.integers(1, 30), min_size=1, max_size=60),
)
def test_mann_whitney_matches_scipy(new: list[int], base: list[int]) -> None:
    if len(set(new) | set(base)) < 2:
        return  # all values equal: no test
    hist_new: dict[float, int] = {}
    hist_base: dict[float, int] = {}
    for v in new:
        hist_new[v] = hist_new.get(v, 0) + 1
    for v in base:
        hist_base[v] = hist_base.get(v, 0) + 1
    ours = stats.mann_whitney(hist_new, hist_base)
    for alternative, p in (("greater", ours.p_greater), ("less", ours.p_less)):
        ref = scipy_stats.mannwhitneyu(
            new, base, alternative=alternative, method="asymptotic", use_continuity=True
        )
        assert ours.u == pytest.approx(ref.statistic)
        assert p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)


def test_fisher_matches_scipy() -> None:
    p = stats.fisher_greater(5, 100, 0, 100)
    ref = scipy_stats.fisher_exact([[5, 95], [0, 100]], alternative="greater").pvalue
    assert p == pytest.approx(ref)
    assert stats.fisher_greater(0, 0, 0, 10) == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: stats.binomial_lower(3, 2),
        lambda: stats.binomial_lower(1, 2, 1.0),
        lambda: stats.quantile_ranks(10, 1.0),
        lambda: stats.mann_whitney({}, {1: 1}),
    ],
)
def test_bad_input_is_refused(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]
