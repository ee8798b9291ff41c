"""No figure of any check type passes a threshold on a bare value.

A table over every figure every check type measures, with a relative threshold each way
(``<= +10%``, ``>= -10%``) and an absolute one: without evidence (no samples, no counts, a
single stored run, no stored distribution) none PASSES; with enough evidence each does.
Property tests hold the new tests (Welch, the prediction of one more run, pooled and
histogram statistics) against scipy.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import stats
from pytest_fwgates.bounds import (
    MIN_COMPARED,
    count_support,
    figure_kind,
    histogram_mean_support,
    judge,
    mean_support,
    percentile_of,
    quantile_support,
)
from pytest_fwgates.checks import CheckRegistry
from pytest_fwgates.checks.base import CheckContext, Measurement
from pytest_fwgates.checks.load import LoadCheck
from pytest_fwgates.model import CheckSpec, Source
from pytest_fwgates.thresholds import key_unit, parse


def _every_figure() -> list[tuple[str, str]]:
    """(check type, figure) for every figure a check type can be held to; a load check's
    per-endpoint figures too."""
    registry = CheckRegistry()
    found = []
    for name in registry.names():
        cls = registry.get(name)
        for key in sorted(cls.threshold_keys):
            found.append((name, key))
            if name == "load":
                found.append((name, f"GET /a::{key}"))
    return found


FIGURES = _every_figure()
KINDS = ("percentile", "counted", "mean", "one number per run")


def _kind(key: str) -> str:
    return figure_kind(key) or "one number per run"


def _scale(key: str) -> float:
    return 100.0 if key_unit(key) == "%" else 1.0


def _evidence(key: str, lower_better: bool) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """A value, its support and a stored reference that together show the figure as it was:
    a few hundred samples each side, or five stored runs."""
    kind = _kind(key)
    if kind == "percentile":
        hist = Counter({float(v): 20 for v in range(10, 30)})
        support = quantile_support(hist, percentile_of(key) or 0.5)
        value = stats.histogram_rank(hist, math.ceil((percentile_of(key) or 0.5) * 400))
        return value, support, {"histogram": dict(hist), "values": [value]}
    if kind == "counted":
        k = 2 if lower_better else 998
        value = round(k / 1000 * _scale(key), 9)
        return value, count_support(k, 1000, "events", "counted"), {"count": [k, 1000]}
    if kind == "mean":
        samples = [100.0 + (i % 21) - 10 for i in range(300)]
        value = statistics.fmean(samples)
        support = mean_support(samples)
        return value, support, {**support, "values": [value]}
    return 100.0, {}, {"values": [100.0, 101.0, 99.0, 100.5, 99.5]}


@pytest.mark.parametrize(("check_type", "key"), FIGURES)
@pytest.mark.parametrize("text", ["<= +10%", ">= -10%"])
def test_a_relative_threshold_never_passes_without_evidence(
    check_type: str, key: str, text: str
) -> None:
    threshold = parse(text)
    lower_better = text.startswith("<")
    value, support, reference = _evidence(key, lower_better)
    # the value met the point bound in each case: only the evidence is missing
    bare = [
        judge(key, threshold, value, None, 0.95, value, reference=None),
        judge(key, threshold, value, None, 0.95, value, reference={"values": [value]}),
        judge(key, threshold, value, support, 0.95, value, reference={"values": [value]}),
    ]
    for judged in bare:
        assert judged.state == "inconclusive", (check_type, key, judged)
    # with the evidence: decided by its test, and within noise
    judged = judge(key, threshold, value, support, 0.95, value, reference=reference)
    assert judged.state == "pass", (check_type, key, judged)
    assert f"{key} " in judged.text and " vs baseline " in judged.text
    assert "within noise: p = " in judged.text


@pytest.mark.parametrize(("check_type", "key"), FIGURES)
def test_an_absolute_threshold_passes_only_on_its_bound(check_type: str, key: str) -> None:
    kind = _kind(key)
    for op in ("<=", ">="):
        lower_better = op == "<="
        value, support, _ = _evidence(key, lower_better)
        if kind == "counted":
            limit = (0.05 if lower_better else 0.95) * _scale(key)
        else:
            limit = value * 2 if lower_better else value / 2
        threshold = parse(f"{op} {limit!r}")
        bare = judge(key, threshold, value, None, 0.95)
        if kind == "one number per run":
            # one measurement of this run, the standard's own subject: its value is the evidence
            assert bare.state == "pass", (check_type, key, bare)
        else:
            assert bare.state == "inconclusive", (check_type, key, bare)
        assert judge(key, threshold, value, support, 0.95).state == "pass", (check_type, key)
    if kind in ("percentile", "mean"):
        # too few samples behind it: no pass either
        few = [10.0]
        q = percentile_of(key) or 0.5
        thin = quantile_support(Counter(few), q) if kind == "percentile" else mean_support(few)
        judged = judge(key, parse("<= 1000"), 10.0, thin, 0.95)
        assert judged.state == "inconclusive", (check_type, key, judged)


def test_every_kind_of_figure_is_in_the_table() -> None:
    assert {_kind(key) for _, key in FIGURES} == set(KINDS)
    assert ("load", "avg_ms") in FIGURES and ("drill", "mttr_s") in FIGURES


@pytest.mark.parametrize(
    ("text", "value", "reference", "state", "words"),
    [
        # rps: one number per run, higher is better (the mirror test)
        (">= -10%", 950.0, [1000.0, 990.0, 1010.0, 1005.0], "pass", "within noise"),
        (">= -10%", 700.0, [1000.0, 990.0, 1010.0, 1005.0], "fail", "beyond the margin 10 %"),
        (">= -10%", 950.0, [1000.0, 990.0], "inconclusive", "1 more baseline run needed"),
        (">= -10%", 850.0, [1000.0], "fail", "expected >= -10% of baseline"),
        # an improvement must be shown, not met by one number
        ("<= -10%", 80.0, [100.0, 101.0, 99.0, 100.0], "pass", "improvement 10 % shown"),
        ("<= -10%", 89.0, [100.0, 130.0, 70.0, 100.0], "inconclusive", "not shown"),
        ("<= -10%", 95.0, [100.0, 101.0, 99.0, 100.0], "fail", "expected <= -10%"),
        ("== +0%", 100.0, [100.0, 100.0, 100.0], "inconclusive", "no test can show"),
    ],
)
def test_one_number_per_run_is_judged_on_the_spread_of_the_stored_runs(
    text: str, value: float, reference: list[float], state: str, words: str
) -> None:
    key = "rps" if text.startswith(">") else "duration_s"
    baseline = reference[-1]
    judged = judge(key, parse(text), value, None, 0.95, baseline, reference={"values": reference})
    assert judged.state == state, judged
    assert words in judged.text


def test_within_noise_passes_only_where_the_margin_could_be_seen() -> None:
    """A regression of the margin's size must be detectable at the spread the evidence has."""
    threshold = parse("<= +10%")
    noisy = {"values": [100.0, 130.0, 85.0, 115.0, 95.0]}
    judged = judge("duration_s", threshold, 100.0, None, 0.95, 95.0, reference=noisy)
    assert judged.state == "inconclusive" and "more runs or a wider margin" in judged.text
    wide = judge("duration_s", parse("<= +60%"), 100.0, None, 0.95, 95.0, reference=noisy)
    assert wide.state == "pass"
    spread = mean_support([20.0 * (1 + (i % 9)) for i in range(60)], "requests")
    judged = judge("avg_ms", threshold, 100.0, spread, 0.95, 100.0, reference=spread)
    assert judged.state == "inconclusive" and "the samples vary too much" in judged.text


def test_means_are_compared_by_welch() -> None:
    base = mean_support([100.0 + i % 11 for i in range(200)])
    same = mean_support([101.0 + i % 11 for i in range(200)])
    slower = mean_support([120.0 + i % 11 for i in range(200)])
    threshold = parse("<= +10%")
    reference = dict(base)
    ok = judge("avg_ms", threshold, 106.0, same, 0.95, 105.0, reference=reference)
    assert ok.state == "pass" and "means of 200 vs 200 samples" in ok.text
    bad = judge("avg_ms", threshold, 125.0, slower, 0.95, 105.0, reference=reference)
    assert bad.state == "fail" and "beyond the margin 10 %" in bad.text
    few = mean_support([101.0 + i % 11 for i in range(20)])
    thin = judge("avg_ms", threshold, 106.0, few, 0.95, 105.0, reference=reference)
    assert thin.state == "inconclusive" and f"{MIN_COMPARED} samples each side" in thin.text
    old = judge("avg_ms", threshold, 106.0, same, 0.95, 105.0, reference={"values": [105.0]})
    assert old.state == "inconclusive" and "holds no n, mean and sd" in old.text


def test_higher_is_better_counts_use_the_mirror_test() -> None:
    threshold = parse(">= -0.1%")
    base = {"count": [9990, 10000]}
    kept = count_support(9989, 10000, "probes", "good")
    ok = judge("availability_pct", threshold, 99.89, kept, 0.95, 99.9, reference=base)
    assert ok.state == "pass", ok
    dropped = count_support(9900, 10000, "probes", "good")
    bad = judge("availability_pct", threshold, 99.0, dropped, 0.95, 99.9, reference=base)
    assert bad.state == "fail" and "9900/10000 vs 9990/10000" in bad.text


def test_a_single_drill_cannot_prove_a_mean() -> None:
    judged = judge("mttr_s", parse("< 2m"), 83.0, mean_support([83.0], "drills"), 0.95)
    assert judged.state == "inconclusive"
    assert "is the mean of 1 drill: no bound" in judged.text
    assert "a mean needs at least 2 drills" in judged.text
    spread = mean_support([100.0, 60.0, 110.0], "drills")
    judged = judge("mttr_s", parse("< 2m"), 90.0, spread, 0.95)
    assert judged.state == "inconclusive" and "drills with this spread show < 2m" in judged.text
    needed = int(judged.text.rsplit("; ", 1)[1].split()[0])
    # that many drills with this mean and spread do show it, one fewer does not
    _, high = stats.mean_bounds(needed, 90.0, spread["mean"]["sd"])
    assert high < 120
    _, high = stats.mean_bounds(needed - 1, 90.0, spread["mean"]["sd"])
    assert high >= 120


def test_a_drill_with_history_judges_the_mean_of_the_window(tmp_path: Path) -> None:
    recorded = [
        {"time": "2026-01-01T00:00:00+00:00", "type": "drill", "outcome": "ok", "mttr_s": s}
        for s in (70.0, 80.0, 75.0, 85.0)
    ]
    spec = CheckSpec(
        type="drill",
        target="true",
        id="drill",
        gate="g",
        criterion="c",
        source=Source(Path("g.yaml"), 1),
        options={"health": "http://127.0.0.1:9/", "history": {"last": 10}},
    )
    context = CheckContext(rootdir=tmp_path, history_lookup=lambda spec: recorded)
    check = CheckRegistry().get("drill")(spec, context)
    measurement = Measurement(values={"mttr_s": 78.0})
    measurement.support["mttr_s"] = mean_support([78.0], "drills")
    check.finish(measurement)
    assert measurement.values["mttr_s"] == pytest.approx(77.6)
    assert measurement.facts["mttr_s_this_drill"] == 78.0
    support = measurement.support["mttr_s"]
    assert support["mean"]["n"] == 5 and support["mean"]["of"] == "drills"
    judged = judge("mttr_s", parse("< 2m"), measurement.values["mttr_s"], support, 0.95)
    assert judged.state == "pass" and "mttr_s mean of 5 drills: <= " in judged.text


def test_the_load_checks_mean_carries_its_histograms_n_and_spread(tmp_path: Path) -> None:
    from pytest_fwgates.locust_run import LoadRun

    spec = CheckSpec(
        type="load",
        target="http://127.0.0.1:9",
        id="load",
        gate="g",
        criterion="c",
        source=Source(Path("g.yaml"), 1),
        options={"paths": ["/a"]},
    )
    check = LoadCheck(spec, CheckContext(rootdir=tmp_path))
    hist = {10: 50, 20: 30, 40: 20}
    run = LoadRun(
        total={"requests": 100.0, "failures": 0.0, "avg_ms": 18.9},
        endpoints={"GET /a": {"requests": 100.0, "failures": 0.0, "avg_ms": 18.9}},
        evidence={},
        exceptions=[],
        errors=[],
        duration_s=1.0,
        argv=[],
        histograms={"": hist, "GET /a": hist},
    )
    support = check._support(run, {"avg_ms": 18.9, "GET /a::avg_ms": 18.9})
    for key in ("avg_ms", "GET /a::avg_ms"):
        mean = support[key]["mean"]
        n, _, sd = stats.histogram_stats(hist)
        assert mean["n"] == n == 100 and mean["mean"] == 18.9
        assert mean["sd"] == pytest.approx(sd)
    assert histogram_mean_support(hist)["mean"]["mean"] == pytest.approx(19.0)
    # skewed response times: a t bound from 50 requests on
    passed = judge("avg_ms", parse("< 100"), 18.9, support["avg_ms"], 0.95)
    assert passed.state == "pass" and "avg_ms mean of 100 requests: <= " in passed.text
    few = histogram_mean_support({10: 10, 20: 10}, mean=15.0)
    judged = judge("avg_ms", parse("< 100"), 15.0, few, 0.95)
    assert judged.state == "inconclusive" and "needs 50 requests" in judged.text


# --- the statistics against scipy ------------------------------------------------------

_samples = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False).map(lambda x: round(x, 3)),
    min_size=2,
    max_size=40,
)


def _spread(values: list[float]) -> bool:
    return statistics.stdev(values) > 1e-3


@settings(max_examples=80, deadline=None)
@given(_samples, _samples)
def test_welch_matches_scipy(a: list[float], b: list[float]) -> None:
    from scipy.stats import ttest_ind

    if not (_spread(a) and _spread(b)):
        return
    n1, m1, s1 = stats.sample_stats(a)
    n2, m2, s2 = stats.sample_stats(b)
    greater, less = stats.welch_p(n1, m1, s1, n2, m2, s2)
    want_greater = ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
    want_less = ttest_ind(a, b, equal_var=False, alternative="less").pvalue
    assert greater == pytest.approx(want_greater, rel=1e-6, abs=1e-9)
    assert less == pytest.approx(want_less, rel=1e-6, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.floats(min_value=-2e3, max_value=2e3, allow_nan=False), _samples)
def test_the_prediction_of_one_more_run_matches_scipy(value: float, runs: list[float]) -> None:
    """One more run against k stored ones is Student's two-sample t test with a sample of one
    (its pooled variance is the runs' own, k - 1 degrees of freedom)."""
    from scipy.stats import t, ttest_ind

    if not _spread(runs):
        return
    greater, less = stats.prediction_p(value, runs)
    want = ttest_ind([value], runs, equal_var=True, alternative="greater").pvalue
    assert greater == pytest.approx(want, rel=1e-6, abs=1e-9)
    assert greater + less == pytest.approx(1.0)
    # and the textbook prediction interval: outside it exactly when significant
    k, mean, sd = stats.sample_stats(runs)
    upper = mean + t.ppf(0.95, k - 1) * sd * math.sqrt(1 + 1 / k)
    if abs(value - upper) > 1e-6 * max(1.0, abs(upper)):
        assert (greater < 0.05) == (value > upper)


@settings(max_examples=60, deadline=None)
@given(st.lists(_samples, min_size=1, max_size=5))
def test_pooled_and_histogram_statistics_are_those_of_the_samples(parts: list[list[float]]) -> None:
    together = [x for part in parts for x in part]
    n, mean, sd = stats.pooled_stats([stats.sample_stats(part) for part in parts])
    want_n, want_mean, want_sd = stats.sample_stats(together)
    assert n == want_n and mean == pytest.approx(want_mean, abs=1e-6)
    assert sd == pytest.approx(want_sd, rel=1e-6, abs=1e-6)
    hist = Counter(together)
    assert stats.histogram_stats(hist)[0] == want_n
    assert stats.histogram_stats(hist)[2] == pytest.approx(want_sd, rel=1e-6, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=1, max_value=100),
    st.floats(min_value=0.1, max_value=50),
    st.floats(min_value=0.5, max_value=200),
)
def test_samples_needed_is_the_smallest_n_whose_t_bound_shows_it(
    mean: float, sd: float, gap: float
) -> None:
    from scipy.stats import t

    limit = mean + gap
    n = stats.mean_samples_needed(mean, sd, limit, 0.95)
    if n is None:
        return
    assert mean + t.ppf(0.95, n - 1) * sd / math.sqrt(n) < limit
    if n > 2:
        assert mean + t.ppf(0.95, n - 2) * sd / math.sqrt(n - 1) >= limit


def test_a_saved_run_keeps_the_mean_and_the_store_hands_back_runs_and_pooled_means(
    tmp_path: Path,
) -> None:
    from pytest_fwgates.baseline import BaselineStore
    from pytest_fwgates.model import CheckResult, Outcome

    store = BaselineStore(tmp_path)
    parts = ([10.0, 12.0, 14.0], [11.0, 13.0], [20.0, 22.0, 24.0, 26.0])
    for rps, samples in zip((100.0, 104.0, 98.0), parts, strict=True):
        result = CheckResult(
            nodeid="n",
            gate="g",
            criterion="c",
            check_id="load",
            outcome=Outcome.PASSED,
            measured={"avg_ms": statistics.fmean(samples), "rps": rps},
            support={"avg_ms": mean_support(samples, "requests")},
        )
        store.save(result, target="http://t", machine={}, commit={})
    spec = CheckSpec(
        type="load",
        target="http://t",
        id="load",
        gate="g",
        criterion="c",
        source=Source(Path("g.yaml"), 1),
        options={"baseline": {"compare": "median", "last": 2}},
    )
    pooled = store.distribution(spec, "avg_ms")
    n, mean, sd = stats.sample_stats([*parts[1], *parts[2]])
    assert pooled["mean"]["n"] == n == 6 and pooled["runs"] == 2
    assert pooled["mean"]["mean"] == pytest.approx(mean)
    assert pooled["mean"]["sd"] == pytest.approx(sd)
    assert store.distribution(spec, "rps")["values"] == [104.0, 98.0]
    spec.options = {}
    assert store.distribution(spec, "rps")["values"] == [100.0, 104.0, 98.0]
    assert store.distribution(spec, "avg_ms")["mean"]["n"] == 4


def test_an_http_retry_waits_for_the_answer_never_for_a_fast_enough_request(
    tmp_path: Path,
) -> None:
    """The first answer is slow, the next ones fast: retrying until latency_ms holds would
    report the fastest of several tries."""
    import time

    from loopback import http_server

    from pytest_fwgates.checks.base import run_check
    from pytest_fwgates.loader import GateLoader

    answered: list[float] = []

    def answer(path: str) -> tuple[int, bytes]:
        if not answered:
            time.sleep(0.3)
        answered.append(time.monotonic())
        return 200, b"ok"

    with http_server(answer) as base:
        loader = GateLoader([], registry=CheckRegistry(), environ={})
        mapping = {
            "http": f"{base}/",
            "id": "fast",
            "retry": {"within": "5s", "every": "0.05s"},
            "expect": {"status": 200, "latency_ms": "< 200ms"},
        }
        spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "g.yaml", 1))
        context = CheckContext(rootdir=tmp_path, evidence_root=tmp_path / "evidence")
        result = run_check(CheckRegistry().get("http")(spec, context), "fast")
    assert result.measured["tries"] == 1 and len(answered) == 1
    assert result.measured["latency_ms"] >= 300
    assert str(result.outcome) == "failed" and "latency_ms = " in result.message
