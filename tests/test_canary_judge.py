"""The canary judge: exact tests against scipy's, and verdicts that never pass without
evidence (a pass needs the bounds to show the canary within the allowances)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import stats
from pytest_fwgates.canary_judge import (
    Increase,
    JudgeError,
    Sample,
    judge,
    parse_increase,
)
from pytest_fwgates.stats import fisher_greater as _fisher

RATE = Increase(0.005, relative=False)
P95 = Increase(0.2, relative=True)


def _sample(answers: int, failed: int, latency: float = 10.0, spread: float = 1.0) -> Sample:
    rng = random.Random(answers * 7 + failed)
    good = [latency + rng.uniform(-spread, spread) for _ in range(answers - failed)]
    return Sample(answers=answers, failed=failed, latencies_ms=good)


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    return _fisher(a, a + b, c, c + d)


def test_the_latency_abort_is_scipys_sign_test_against_the_stable_p95_bound() -> None:
    """Abort on p95 when more than 5 % of the canary's good answers are slower than the limit
    from the stable p95's upper bound: scipy's exact binomial test, half the look's alpha."""
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(7)
    for _ in range(60):
        shift = rng.uniform(0, 8)
        x = [round(rng.gauss(10 + shift, 3), 1) for _ in range(rng.randint(20, 300))]
        y = [round(rng.gauss(10, 3), 1) for _ in range(rng.randint(150, 600))]
        verdict = judge(
            Sample(len(x), 0, x),
            Sample(len(y), 0, y),
            failure_rate=None,
            p95=P95,
            alpha=0.05,
            min_answers=20,
        )
        _, upper = stats.quantile_bounds(Counter(y), 0.95, 1 - 0.025)
        slower = sum(v > P95.limit(upper) for v in x)
        expected = scipy_stats.binomtest(slower, len(x), 0.05, alternative="greater").pvalue
        assert verdict.latency_p == pytest.approx(expected, abs=1e-9)
        assert (verdict.outcome == "fail") == (expected < 0.025)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=4, max_size=4))
def test_fisher_is_a_probability_that_falls_as_the_canary_fails_more(cells: list[int]) -> None:
    a, b, c, d = cells
    p = fisher_greater(a, b, c, d)
    assert 0.0 <= p <= 1.0
    if b > 0:  # one more failure instead of a success: never less evidence
        assert fisher_greater(a + 1, b - 1, c, d) <= p + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 400), st.integers(0, 400), st.integers(0, 400), st.integers(1, 10_000))
def test_too_few_answers_is_never_a_pass(canary: int, stable: int, failed: int, need: int) -> None:
    c = _sample(canary, min(failed, canary))
    s = _sample(stable, 0)
    verdict = judge(
        c, s, failure_rate=RATE, p95=P95, alpha=0.05, min_answers=need, proof_alpha=0.05
    )
    if canary < need or stable < need:
        assert verdict.outcome != "pass"


@pytest.mark.parametrize(
    ("canary", "stable", "outcome", "rule"),
    [
        (_sample(1200, 0), _sample(12000, 0), "pass", None),
        # no failure in 200 answers: <= 1.8 % at 97.5 %, not yet within 0.5 %
        (_sample(200, 0), _sample(2000, 0), "inconclusive", None),
        (_sample(200, 100), _sample(2000, 0), "fail", "failure_rate"),
        (_sample(200, 10), _sample(2000, 0), "fail", "failure_rate"),
        (_sample(200, 0, latency=15), _sample(2000, 0), "fail", "p95_ms"),
        (_sample(10, 0), _sample(2000, 0), "inconclusive", None),
        (_sample(0, 0), _sample(2000, 0), "inconclusive", None),
        # a failure shows at any size when it is significant
        (_sample(10, 8), _sample(2000, 0), "fail", "failure_rate"),
        # the stable version fails as often: no regression shown, nor the allowance
        (_sample(200, 10), _sample(2000, 100), "inconclusive", None),
        # an increase below the allowed one is no failure, however significant; but 6 of
        # 2000 do not show the rate within 0.5 % either
        (_sample(2000, 6), _sample(20000, 0), "inconclusive", None),
        (_sample(2000, 1), _sample(20000, 0), "pass", None),
        (_sample(2000, 0, latency=10.8), _sample(20000, 0), "pass", None),
    ],
)
def test_verdicts(canary: Sample, stable: Sample, outcome: str, rule: str | None) -> None:
    verdict = judge(
        canary, stable, failure_rate=RATE, p95=P95, alpha=0.05, min_answers=20, proof_alpha=0.05
    )
    assert verdict.outcome == outcome, verdict.reasons
    if rule:
        assert rule in verdict.failed_rules


@pytest.mark.parametrize(
    ("text", "rate", "expected"),
    [
        ("0.5%", True, Increase(0.005, False)),
        ("+20%", False, Increase(0.2, True)),
        ("+50ms", False, Increase(50.0, False)),
        (50, False, Increase(50.0, False)),
        ("1s", False, Increase(1000.0, False)),
    ],
)
def test_increases(text: object, rate: bool, expected: Increase) -> None:
    assert parse_increase(text, rate=rate) == expected


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("-5%", True),
        ("lots", False),
        ("5ms", True),
        # a bare number for a rate: 0.5 would allow half of all answers to fail
        (0.5, True),
        ("0.5", True),
        ("1", True),
        # an increase of 100 % of the answers or more can never fail
        ("100%", True),
        ("+150%", True),
    ],
)
def test_bad_increases(text: str, rate: bool) -> None:
    with pytest.raises(JudgeError):
        parse_increase(text, rate=rate)


def test_p95_is_a_seen_value() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert Sample(100, 0, values).p95_ms == 95.0
    assert Sample(1, 0, [3.0]).p95_ms == 3.0
    assert Sample().p95_ms == 0.0


def test_answers_not_of_the_stable_version_count_against_the_canary() -> None:
    from pytest_fwgates.checks.progressive import _samples
    from pytest_fwgates.probe import Probe

    probes = [
        Probe(0.1, 0.11, 200, True, "v1"),
        Probe(0.2, 0.21, 200, True, "v2"),
        Probe(0.3, 0.31, 0, False, None, "connection refused"),
        Probe(0.4, 0.41, 502, False, None, "HTTP 502"),
        Probe(0.5, 0.51, 200, True, None),  # a good answer of no version: neither
        Probe(0.6, 0.61, 200, True, "v3"),  # another version: neither
        Probe(9.0, 9.01, 500, False, "v2"),  # outside the window
    ]
    canary, stable, neither = _samples(probes, 0.0, 1.0, "v2", "v1")
    # every answer that is not the stable version's and not a good one of the new version is
    # a failure of the canary: refused, a proxy's 502, a body without a version, a third one
    assert (canary.answers, canary.failed) == (5, 4)
    assert (stable.answers, stable.failed) == (1, 0)
    assert len(canary.latencies_ms) == 1
    assert neither == 4


@pytest.mark.parametrize("share", [0.01, 0.05, 0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_rollback_proof_is_long_enough_to_see_the_share(share: float, alpha: float) -> None:
    from pytest_fwgates.checks.progressive import _proof_probes

    n = _proof_probes(share, alpha)
    assert (1 - share) ** n <= alpha < (1 - share) ** (n - 1)
    assert _proof_probes(0.0, alpha) == _proof_probes(0.01, alpha)  # a floor, never zero


def _chance_of_a_run(share: float, n: int, probes: int) -> float:
    """Exactly: the chance that ``probes`` answers, each of the new version with chance
    ``share``, hold ``n`` or more in a row of the old version (a run the settling would take
    for a rollback)."""
    import numpy as np

    # the chance of each length of the current run of old answers (< n)
    states = np.zeros(n)
    states[0] = 1.0
    found = 0.0
    for _ in range(probes):
        found += states[-1] * (1 - share)
        moved = np.empty(n)
        moved[0] = states.sum() * share
        moved[1:] = states[:-1] * (1 - share)
        states = moved
    return float(found)


@given(
    share=st.floats(0.01, 0.95),
    alpha=st.sampled_from([0.05, 0.01, 0.001]),
    probes=st.integers(1, 1500),
)
@settings(max_examples=150, deadline=None)
def test_rollback_proof_holds_among_every_answer_the_settling_scans(
    share: float, alpha: float, probes: int
) -> None:
    # a rollback that left the new version's share in place is taken for stable with chance
    # at most alpha, however long the settling looks for the run (exact, not simulated)
    from pytest_fwgates.checks.progressive import _proof_probes

    n = _proof_probes(share, alpha, probes)
    assert _chance_of_a_run(share, n, probes) <= alpha * (1 + 1e-9)
    assert n >= _proof_probes(share, alpha)
    # a single run's proof is not enough when the run is looked for among many answers
    if probes >= 20 * _proof_probes(share, alpha) and share <= 0.2:
        assert _chance_of_a_run(share, _proof_probes(share, alpha), probes) > alpha


def test_first_bad_answer_is_the_first_of_the_whole_deploy() -> None:
    # a canary that failed once in step 1 (not yet significant) and is aborted in step 2: the
    # bad answer users got in step 1 is where detection time starts, not step 2's first one
    from pytest_fwgates.canary_judge import Verdict
    from pytest_fwgates.checks.progressive import _first_bad
    from pytest_fwgates.probe import Probe

    probes = [
        Probe(0.5, 0.51, 200, True, "v1"),
        Probe(1.0, 1.01, 500, False, "v1"),  # the stable version's failure is not the canary's
        Probe(2.0, 2.01, 500, False, "v2"),  # step 1
        Probe(3.0, 3.01, 200, True, "v2"),
        Probe(6.0, 6.01, 500, False, "v2"),  # step 2
        Probe(7.0, 7.5, 0, False, None),  # a time-out: counted against the canary
    ]
    rate = Verdict("fail", failed_rules=["failure_rate"])
    assert _first_bad(probes, 0.0, "v2", rate) == 2.0
    assert _first_bad(probes, 4.0, "v2", rate) == 6.0
    assert _first_bad(probes[:2] + probes[5:], 0.0, "v2", rate) == 7.0
    slow = Verdict("fail", failed_rules=["p95_ms"], slow_ms=5.0)
    assert _first_bad(probes, 0.0, "v2", slow) == 3.0  # a good answer slower than allowed
    load = Verdict("fail", failed_rules=["load.failure_ratio"])
    assert _first_bad(probes, 0.0, "v2", load) == 2.0
    # a good answer that shows no version (a body that is not the service's) is a bad one of
    # the canary once the stable version is known
    garbled = [probes[0], Probe(1.5, 1.51, 200, True, None), *probes[2:]]
    assert _first_bad(garbled, 0.0, "v2", rate, "v1") == 1.5
    assert _first_bad(garbled, 0.0, "v2", rate) == 2.0  # no stable version known: not counted


def test_first_bad_answer_of_an_abort_by_a_promql_rule() -> None:
    # a PromQL rule may measure anything: every bad answer the prober can see counts for it
    # (failed, slower than the p95 limit); when it saw none, detect_s runs from the new
    # version's first answer, an upper bound
    from pytest_fwgates.canary_judge import Verdict
    from pytest_fwgates.checks.progressive import _detect_from, _first_bad
    from pytest_fwgates.probe import Probe

    good = [
        Probe(0.5, 0.51, 200, True, "v1"),
        Probe(1.0, 1.01, 200, True, "v2"),
        Probe(2.0, 2.003, 200, True, "v2"),
        Probe(3.0, 3.3, 200, True, "v2"),  # slow
        Probe(4.0, 4.01, 500, False, "v2"),
    ]
    prom = Verdict("fail", failed_rules=["prometheus"])
    assert _first_bad(good, 0.0, "v2", prom) == 4.0
    assert "first bad answer of v2" in _detect_from(good, 0.0, "v2", prom)
    prom_slow = Verdict("fail", failed_rules=["prometheus"], slow_ms=100.0)
    assert _first_bad(good, 0.0, "v2", prom_slow) == 3.0
    clean = good[:3]
    assert _first_bad(clean, 0.0, "v2", prom) == 1.0
    assert "upper bound" in _detect_from(clean, 0.0, "v2", prom)
    assert _first_bad(clean[:1], 0.0, "v2", prom) is None  # the new version never answered
    assert "not measured" in _detect_from(clean[:1], 0.0, "v2", prom)
    # the other rules are unchanged: no bad answer, no detect_s
    assert _first_bad(clean, 0.0, "v2", Verdict("fail", failed_rules=["failure_rate"])) is None


@pytest.mark.parametrize(
    ("weights", "last_look", "share"),
    [
        ([90.0, 100.0], None, 0.1),  # a last command that shifts nothing leaves 10 % on v1
        ([10.0, 50.0, 100.0], None, 0.5),
        ([100.0], None, 1.0),  # one step: everything stays on the old version
        ([None, None, None], {"canary": 20, "stable": 10}, 1 / 3),  # instances: the last look
        ([None, None], None, 0.0),  # no look to tell the share: no proof beyond `stable`
    ],
)
def test_promotion_proof_is_long_enough_to_see_the_old_share_left_by_a_last_step_that_did_nothing(
    weights: list[float | None], last_look: dict[str, int] | None, share: float
) -> None:
    # a last step command that exits 0 but shifts nothing: the old version keeps the share the
    # step before left it, and the settling must not take a chance run of new answers for
    # stable (a 10 % share stays hidden in 20 answers 12 % of the time)
    from pytest_fwgates.checks.progressive import Analysis, Step, StepRecord, _proof_probes, _Steps

    steps = _Steps.__new__(_Steps)
    steps.new, steps.old = "v2", "v1"
    steps.analysis = Analysis(None, None, 20, 1.0, 0.95)
    steps.records = []
    for index, weight in enumerate(weights, 1):
        record = StepRecord(Step(index, weight, None if weight else index, 1.0), 0.0)
        steps.records.append(record)
    if last_look is not None:
        steps.records[-2].last = {
            "canary": {"answers": last_look["canary"]},
            "stable": {"answers": last_look["stable"]},
        }
    scanned = 1200
    n = steps._promotion_proof(scanned)
    if share <= 0:
        assert n == 0
        return
    assert n == _proof_probes(share, 0.05, scanned)
    if share < 1:
        assert _chance_of_a_run(share, n, scanned) <= 0.05
