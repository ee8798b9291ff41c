"""Relative thresholds on percentiles and counted figures, decided against the stored baseline
by a statistical test with a practical margin (bounds.judge_against_baseline)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import stats
from pytest_fwgates.baseline import BaselineStore, distributions_of, reference_distribution
from pytest_fwgates.bounds import (
    DEFAULT_MARGIN,
    MAX_BATCHES,
    MIN_COMPARED,
    clustered_excess,
    clustered_shift,
    judge,
    quantile_support,
    supported_value,
    time_batches,
)
from pytest_fwgates.model import CheckResult, Outcome
from pytest_fwgates.thresholds import parse

if TYPE_CHECKING:
    from conftest import GateProject

NO_REGRESSION = parse("<= +0%")

histograms = st.dictionaries(
    st.integers(min_value=1, max_value=3000), st.integers(min_value=1, max_value=400), min_size=1
)


def _p(histogram: dict[float, int], q: float) -> float:
    return stats.histogram_rank(histogram, max(1, round(q * sum(histogram.values()))))


def _judge(new: dict[float, int], base: dict[float, int], key: str = "p95_ms", text: str = ""):
    threshold = parse(text) if text else NO_REGRESSION
    return judge(
        key,
        threshold,
        _p(new, 0.95),
        {"histogram": new},
        0.95,
        _p(base, 0.95),
        reference={"histogram": base},
    )


def _sample(rng: random.Random, n: int, scale: float = 1.0) -> dict[float, int]:
    """``n`` latencies in whole ms, log-normal around 40 ms (a service's shape), times ``scale``."""
    return dict(Counter(int(rng.lognormvariate(3.7, 0.5) * scale) + 1 for _ in range(n)))


@settings(max_examples=60, deadline=None)
@given(histograms)
def test_the_same_samples_never_fail_and_pass_only_with_enough_of_them(hist: dict) -> None:
    judged = _judge(hist, hist)
    n = sum(hist.values())
    # and only where the baseline's samples bound its p95 (72 of them at 97.5 %)
    bounded = stats.quantile_ranks(n, 0.95, 0.975)[1] is not None
    assert judged.state == ("pass" if n >= MIN_COMPARED and bounded else "inconclusive"), (
        judged.text
    )
    assert "vs baseline" in judged.text and f"margin {DEFAULT_MARGIN * 100:g} %" in judged.text


@settings(max_examples=60, deadline=None)
@given(histograms, st.floats(min_value=1.3, max_value=5))
def test_every_sample_slower_by_far_more_than_the_margin_fails(hist: dict, factor: float) -> None:
    n = sum(hist.values())
    if n < 100:
        hist = {v: c * (100 // n + 1) for v, c in hist.items()}
    slower = dict(Counter({v * factor * 1.01: c for v, c in hist.items()}))
    judged = _judge(slower, hist)
    assert judged.state == "fail", judged.text
    assert "beyond the margin 10 %" in judged.text and "expected <= +0%" in judged.text


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_independent_runs_of_one_service_rarely_fail_and_30_percent_slower_ones_fail(
    seed: int,
) -> None:
    """A/A and A/B in simulation: 40 pairs of 400-request runs each (the real rates against a
    service: ``python -m bench baseline_ab``)."""
    rng = random.Random(seed)
    false_alarms = sum(
        _judge(_sample(rng, 400), _sample(rng, 400)).state == "fail" for _ in range(40)
    )
    detected = sum(
        _judge(_sample(rng, 400, 1.3), _sample(rng, 400)).state == "fail" for _ in range(40)
    )
    # the expected rates are about 0 % and 99 % (checked over 200 pairs); the bounds leave
    # room for an unlucky seed (P(more than 4 of 40 missed at 99 %) < 1e-4)
    assert false_alarms <= 2
    assert detected >= 36


def test_the_message_shows_baseline_new_value_margin_and_p() -> None:
    rng = random.Random(7)
    base, new = _sample(rng, 600), _sample(rng, 600)
    judged = _judge(new, base, text="<= +20%")
    assert judged.state == "pass"
    assert judged.text.startswith("p95_ms ") and " vs baseline " in judged.text
    assert "margin 20 %, within noise: p = " in judged.text
    assert "600 vs 600 samples" in judged.text


def test_a_tail_regression_alone_fails() -> None:
    """The median unchanged, the slowest 10 % three times slower: Mann-Whitney U barely sees
    it, the order-statistic bounds of p95 do."""
    base = {20.0: 900, 40.0: 100}
    new = {20.0: 900, 120.0: 100}
    judged = _judge(new, base)
    assert judged.state == "fail", judged.text
    assert "p95 >= " in judged.text


def _judge_batches(batches: list[dict[float, int]], base: dict[float, int]):
    new: Counter[float] = Counter()
    for batch in batches:
        new.update(batch)
    return judge(
        "p95_ms",
        NO_REGRESSION,
        _p(dict(new), 0.95),
        {"histogram": dict(new), "batches": batches},
        0.95,
        _p(base, 0.95),
        reference={"histogram": base},
    )


def test_a_tail_regression_spread_over_the_run_fails_a_load_burst_does_not() -> None:
    """The same samples, the slowest 10 % three times slower: spread over the run's 20 time
    batches it is a slower tail (FAIL); all in two of them it is a load burst of the machine,
    which the tail test sets aside (the whole distribution is still tested)."""
    base = {20.0: 900, 40.0: 100}
    spread = [{20.0: 45, 120.0: 5} for _ in range(20)]
    judged = _judge_batches(spread, base)
    assert judged.state == "fail", judged.text
    assert "p95 >= 120 ms" in judged.text
    burst = [{20.0: 50} for _ in range(18)] + [{120.0: 50} for _ in range(2)]
    judged = _judge_batches(burst, base)
    # not a regression shown, and no proof of none either: the p95 itself is 120 ms, and a
    # version that stalls now and then is clustered in time as a load burst is
    assert judged.state == "inconclusive", judged.text
    assert "; p95 clustered in time, a load burst over 20 time batches)" in judged.text


def test_a_shift_in_a_few_moments_is_a_load_burst_a_shift_throughout_the_run_fails() -> None:
    """Every sample of four of the 20 batches four times slower tips Mann-Whitney U and the
    p95 bounds taken on independent samples; asked with the batches as their units, it is a
    burst. A slowdown spread over every batch fails."""
    rng = random.Random(1)
    base = _sample(rng, 800)
    burst = [_sample(rng, 40, 4.0 if index in (6, 7, 8, 9) else 1.0) for index in range(20)]
    judged = _judge_batches(burst, base)
    assert (
        stats.mann_whitney(
            dict(sum((Counter(b) for b in burst), Counter())), {v * 1.1: c for v, c in base.items()}
        ).p_greater
        < 0.025
    )
    assert judged.state == "inconclusive", judged.text
    assert "; p95 and the shift clustered in time, a load burst over 20 time batches)" in (
        judged.text
    )
    spread = [_sample(rng, 40, 1.45) for _ in range(20)]
    judged = _judge_batches(spread, base)
    assert judged.state == "fail", judged.text


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.floats(min_value=0.97, max_value=1.08))
def test_clustered_shift_of_independent_batches_is_mann_whitneys_z(seed: int, scale: float) -> None:
    """Batches drawn independently (nothing clustered), near no shift: the statistic is
    scipy's Mann-Whitney U z (without continuity correction) up to the sampling noise of the
    batches' spread and DeLong's error against the null one."""
    from scipy.stats import mannwhitneyu, norm

    rng = random.Random(seed)
    base = _sample(rng, 400)
    batches = [_sample(rng, 20, scale) for _ in range(20)]
    new = [v for b in batches for v, c in b.items() for _ in range(c)]
    old = [v for v, c in base.items() for _ in range(c)]
    z = float(norm.isf(mannwhitneyu(new, old, alternative="greater", use_continuity=False).pvalue))
    t = clustered_shift(batches, base)
    assert abs(t - z) <= 0.3 + 0.15 * abs(z), (t, z)


def test_too_few_time_batches_judge_the_tail_on_independent_samples() -> None:
    base = {20.0: 900, 40.0: 100}
    burst = [{20.0: 450}, {20.0: 450, 120.0: 100}]
    assert _judge_batches(burst, base).state == "fail"


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.integers(min_value=-50, max_value=400),
        st.dictionaries(
            st.integers(min_value=1, max_value=500), st.integers(min_value=0, max_value=30)
        ),
        min_size=1,
    ),
    st.integers(min_value=1, max_value=40),
)
def test_time_batches_keep_every_sample_in_order(slots: dict, most: int) -> None:
    batches = time_batches(slots, most)
    assert len(batches) <= most
    assert all(batches)
    total: Counter[float] = Counter()
    for batch in batches:
        total.update(batch)
    expected: Counter[float] = Counter()
    for hist in slots.values():
        expected.update({float(v): c for v, c in hist.items() if c})
    assert total == expected
    # in time order: a value only the first (last) slot holds is in the first (last) batch
    first, last = min(slots), max(slots)
    if len(batches) > 1 and slots[first] and slots[last]:
        assert set(slots[first]) - {v for v, c in slots[first].items() if not c} <= set(batches[0])
        assert {v for v, c in slots[last].items() if c} <= set(batches[-1])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=60), min_size=2, max_size=MAX_BATCHES),
    st.floats(min_value=0.01, max_value=0.99),
    st.floats(min_value=0.01, max_value=0.5),
)
def test_clustered_error_is_never_smaller_than_the_binomial_one(
    sizes: list[int], found: float, share: float
) -> None:
    """Batches with one share each (nothing clustered) give the binomial error; any batches
    give an error at least as large (a smaller excess in standard errors)."""
    above = [round(n * found) for n in sizes]
    batches = [{10.0: n - a, 99.0: a} for n, a in zip(sizes, above, strict=True)]
    batches = [{v: c for v, c in b.items() if c} for b in batches]
    n, e = sum(sizes), sum(above)
    p_hat = e / n
    t = clustered_excess(batches, 50.0, share)
    if 0 < p_hat < 1:
        binomial = (p_hat - share) / math.sqrt(p_hat * (1 - p_hat) / n)
        assert abs(t) <= abs(binomial) + 1e-9


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_runs_with_load_bursts_rarely_fail_and_slower_ones_still_fail(seed: int) -> None:
    """A/A and A/B in simulation as a shared machine makes them: 400-request runs in 20 time
    batches, in each run a burst slows every request of one to three batches two to four
    times; 40 pairs each. Over 200 pairs: A/A false alarms about 0.5 % (6 % with the tail
    taken as independent samples), 50 % slower runs detected 100 %."""
    rng = random.Random(seed)

    def run(scale: float) -> list[dict[float, int]]:
        slow = set(rng.sample(range(20), rng.randint(1, 3)))
        factor = rng.uniform(2, 4)
        return [_sample(rng, 20, scale * (factor if index in slow else 1.0)) for index in range(20)]

    def pooled(batches: list[dict[float, int]]) -> dict[float, int]:
        total: Counter[float] = Counter()
        for batch in batches:
            total.update(batch)
        return dict(total)

    false_alarms = sum(
        _judge_batches(run(1.0), pooled(run(1.0))).state == "fail" for _ in range(40)
    )
    detected = sum(_judge_batches(run(1.5), pooled(run(1.0))).state == "fail" for _ in range(40))
    assert false_alarms <= 2  # P(3 or more of 40 at 0.5 %) < 0.1 %
    assert detected >= 38


def test_few_samples_are_inconclusive_not_a_pass() -> None:
    judged = _judge({20.0: 10}, {20.0: 10})
    assert judged.state == "inconclusive"
    assert "50 samples each side needed" in judged.text


def test_a_baseline_without_a_distribution_is_inconclusive() -> None:
    judged = judge(
        "p95_ms", NO_REGRESSION, 30.0, {"histogram": {30: 100}}, 0.95, 40.0, reference={}
    )
    assert judged.state == "inconclusive"
    assert "the baseline holds no latency distribution" in judged.text
    judged = judge(
        "failure_ratio", NO_REGRESSION, 0.0, {"count": [0, 100]}, 0.95, 0.0, reference={}
    )
    assert judged.state == "inconclusive" and "holds no counts" in judged.text
    # with no store looked up (reference None) nothing backs a relative threshold either
    assert judge("p95_ms", NO_REGRESSION, 30.0, None, 0.95, 40.0).state == "inconclusive"


def test_failure_ratio_by_fishers_exact_test() -> None:
    def ratio(new: tuple[int, int], base: tuple[int, int]):
        return judge(
            "failure_ratio",
            NO_REGRESSION,
            new[0] / new[1],
            {"count": list(new)},
            0.95,
            base[0] / base[1],
            reference={"count": list(base)},
        )

    assert ratio((12, 1000), (10, 1000)).state == "pass"
    assert ratio((50, 1000), (10, 1000)).state == "fail"
    assert "50/1000 vs 10/1000" in ratio((50, 1000), (10, 1000)).text
    assert ratio((0, 20), (0, 20)).state == "inconclusive"
    # the test runs on the baseline's count scaled by the margin (10 -> 11)
    p = stats.fisher_greater(22, 1000, 11, 1000)
    assert (ratio((22, 1000), (10, 1000)).state == "fail") == (p < 0.05)


def test_other_relative_thresholds_need_the_spread_of_stored_runs() -> None:
    # a duration is one number per run: judged on the spread of the stored runs
    one_run = judge("duration_s", NO_REGRESSION, 9.0, None, 0.95, 10.0, reference={})
    assert one_run.state == "inconclusive" and "3 more baseline runs needed" in one_run.text
    runs = {"values": [10.0, 10.2, 9.9, 10.1]}
    judged = judge("duration_s", NO_REGRESSION, 9.0, None, 0.95, 10.0, reference=runs)
    assert judged.state == "pass" and "4 baseline runs" in judged.text
    # runs too far apart to see a 10 % regression: "within noise" proves nothing
    wide = {"values": [10.0, 11.0, 9.5, 10.4]}
    judged = judge("duration_s", NO_REGRESSION, 9.0, None, 0.95, 10.0, reference=wide)
    assert judged.state == "inconclusive"
    assert "the runs vary too much to show a 10 % regression" in judged.text
    # a ">=" relative threshold on a percentile: the mirror test, and no samples no pass
    bigger = parse(">= -10%")
    assert judge("p95_ms", bigger, 95.0, None, 0.95, 100.0, reference={}).state == "inconclusive"


def test_stored_runs_keep_histograms_and_counts_and_old_runs_stay_readable(
    tmp_path: Path,
) -> None:
    store = BaselineStore(tmp_path)
    result = CheckResult(
        nodeid="n",
        gate="g",
        criterion="c",
        check_id="load",
        outcome=Outcome.PASSED,
        measured={"p95_ms": 40.0, "failure_ratio": 0.01},
        support={
            "p95_ms": {"quantile": {"q": 0.95}, "histogram": {30: 90, 40: 10}},
            "failure_ratio": {"count": [1, 100], "of": "requests", "event": "failed"},
        },
    )
    assert distributions_of(result) == {
        "p95_ms": {"histogram": {"30": 90, "40": 10}},
        "failure_ratio": {"count": [1, 100]},
    }
    for _ in range(2):
        path = store.save(result, target="t", machine={}, commit={})
    data = json.loads(path.read_text())
    assert data["distributions"]["p95_ms"]["histogram"] == {"30": 90, "40": 10}
    runs = store.runs("g", "c", "load")
    assert reference_distribution(runs, "p95_ms") == {"histogram": {30.0: 90, 40.0: 10}, "runs": 1}
    pooled = reference_distribution(runs, "p95_ms", "median", 3)
    assert pooled == {"histogram": {30.0: 180, 40.0: 20}, "runs": 2}
    assert reference_distribution(runs, "failure_ratio", "median", 3)["count"] == [2, 200]
    # a run stored before distributions were kept: its value is read, it holds no distribution
    del data["distributions"]
    path.write_text(json.dumps(data))
    runs = store.runs("g", "c", "load")
    assert runs[-1].values["p95_ms"] == 40.0 and runs[-1].distributions == {}
    assert reference_distribution(runs, "p95_ms") == {}
    assert reference_distribution(runs, "p95_ms", "median", 3) == {}  # one of them holds none
    # malformed distributions are left out, never an error
    data["distributions"] = {"p95_ms": {"histogram": {"x": 1}}, "failure_ratio": {"count": [5, 1]}}
    path.write_text(json.dumps(data))
    assert store.runs("g", "c", "load")[-1].distributions == {}


def _samples_gate(project: GateProject, p95: list[float], failures: list[int]) -> None:
    project.release_gate(
        f"""
        - stand_in: {{p95_ms: {{samples: {json.dumps(p95)}}}, failure_ratio: {failures}}}
          id: quick
          expect: {{p95_ms: "<= +0%", failure_ratio: "<= +0%"}}
        """,
        "speed",
        "Speed",
    )


def _quick(project: GateProject) -> dict:
    for criterion in project.gate_summary("release")["criteria"]:
        for result in criterion["checks"]:
            if result["check"] == "quick":
                return dict(result)
    raise AssertionError("no result for quick")


def test_gate_runs_against_stored_baselines_old_and_new(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saved run keeps the samples and counts; the same figures pass against it, 50 %
    slower latencies or six times the failures fail, and a run stored without them is
    INCONCLUSIVE (exit 7)."""
    monkeypatch.setenv("COLUMNS", "300")  # the measured text on one line, the verdict after it
    project.stand_in()
    base = [float(100 + i % 100) for i in range(200)]
    _samples_gate(project, base, [5, 1000])
    assert project.run("--gate=release", "--gate-baseline-save").ret == 1  # no baseline yet
    stored = project.path / ".fwgates" / "baselines" / "release" / "speed" / "quick"
    (path,) = stored.glob("*.json")
    saved = json.loads(path.read_text())
    assert sum(saved["distributions"]["p95_ms"]["histogram"].values()) == 200
    assert saved["distributions"]["failure_ratio"] == {"count": [5, 1000]}
    # the same figures: no regression, with the baseline, the change and p shown
    same = project.run("--gate=release")
    assert same.ret == 0
    # the verdict table shows the comparison, not a point bound
    table = " ".join(same.stdout.str().split())
    assert "expected <= +0%: 194 ms vs baseline 194 ms (+0 %, margin 10 %" in table, table
    shown = _quick(project)["support"]["p95_ms"]["shown"]
    assert shown.startswith("p95_ms 194 ms vs baseline 194 ms (+0 %, margin 10 %, within noise")
    # 50 % slower latencies fail
    _samples_gate(project, [v * 1.5 for v in base], [5, 1000])
    assert project.run("--gate=release").ret == 1
    assert "beyond the margin 10 %" in _quick(project)["message"]
    compared = _quick(project)["support"]["p95_ms"]["compared"]
    assert compared.startswith("p95_ms 291 ms vs baseline 194 ms (+50 %, beyond the margin 10 %")
    # six times the failures fail
    _samples_gate(project, base, [30, 1000])
    assert project.run("--gate=release").ret == 1
    assert "failure_ratio 0.03 vs baseline 0.005" in _quick(project)["message"]
    # a baseline stored before distributions were kept cannot show "no regression"
    del saved["distributions"]
    path.write_text(json.dumps(saved))
    _samples_gate(project, base, [5, 1000])
    assert project.run("--gate=release").ret == 7
    message = _quick(project)["message"]
    assert "the baseline holds no latency distribution" in message
    assert "the baseline holds no counts" in message


def test_every_percentile_support_carries_its_samples() -> None:
    """Whatever check type ranks a percentile (load, availability, under-load phases, probe
    figures, recorded samples), its support keeps the histogram a baseline run stores."""
    support = quantile_support({12.5: 3, 10.0: 2, 11.0: 0}, 0.95)
    assert support["histogram"] == {10.0: 2, 12.5: 3}
    _value, recorded = supported_value("p95_ms", None, samples=[3.0, 1.0, 3.0])
    assert recorded["histogram"] == {1.0: 1, 3.0: 2}
    assert quantile_support({}, 0.5) == {
        "quantile": {"q": 0.5, "n": 0, "low": None, "high": None, "confidence": 0.95}
    }
