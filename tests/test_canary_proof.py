"""A canary step is promoted only when the evidence proves it within the allowances: the pass
side of the judge against scipy's exact bounds, over random counts; the answers it says
would show the allowance, exactly; and simulated deploys (seeded, no network) with the real
look schedule and error budget: a canary worse than allowed is promoted in at most
``1 - confidence`` of them, a good one with enough answers is promoted."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import stats
from pytest_fwgates.canary_judge import Increase, Sample, judge, proof_answers
from pytest_fwgates.checks.base import CheckContext, Measurement, _judge
from pytest_fwgates.checks.progressive import (
    MAX_PROOF_LOOKS,
    UNPROVEN_MOOT,
    Analysis,
    Step,
    parse_analysis,
)
from pytest_fwgates.model import Outcome

scipy_stats = pytest.importorskip("scipy.stats")


def _cp(failed: int, answers: int, alpha: float) -> tuple[float, float]:
    """scipy's exact interval at 1 - alpha: each side a one-sided bound at 1 - alpha / 2."""
    if answers == 0:
        return 0.0, 1.0
    ci = scipy_stats.binomtest(failed, answers).proportion_ci(1 - alpha, method="exact")
    return float(ci.low), float(ci.high)


def _rate_only(nc: int, fc: int, ns: int, fs: int, allowance: float, alpha: float = 0.05) -> str:
    return judge(
        Sample(nc, fc),
        Sample(ns, fs),
        failure_rate=Increase(allowance, relative=False),
        p95=None,
        alpha=alpha,
        min_answers=20,
        proof_alpha=alpha,
    ).outcome


counts = st.integers(0, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))
allowances = st.sampled_from([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3])
alphas = st.sampled_from([0.05, 0.01, 0.005, 0.0005])


@settings(max_examples=300, deadline=None)
@given(counts, counts, allowances, alphas)
def test_never_a_pass_unless_scipys_exact_bounds_show_the_allowance(
    canary: tuple[int, int], stable: tuple[int, int], allowance: float, alpha: float
) -> None:
    (nc, fc), (ns, fs) = canary, stable
    outcome = _rate_only(nc, fc, ns, fs, allowance, alpha)
    upper = _cp(fc, nc, alpha)[1]
    lower = _cp(fs, ns, alpha)[0]
    if outcome == "pass":
        assert upper <= lower + allowance + 1e-9
        assert min(nc, ns) >= 20
    elif outcome == "inconclusive" and min(nc, ns) >= 20:
        # and the other way round: shown bounds are a pass unless a regression is significant
        assert upper > lower + allowance - 1e-9


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 40), st.integers(1, 5000), alphas)
def test_bounds_are_scipys(failed: int, answers: int, alpha: float) -> None:
    failed = min(failed, answers)
    low, high = _cp(failed, answers, alpha)
    assert stats.binomial_upper(failed, answers, 1 - alpha / 2) == pytest.approx(high, abs=1e-9)
    assert stats.binomial_lower(failed, answers, 1 - alpha / 2) == pytest.approx(low, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(allowances, alphas, st.integers(0, 3))
def test_the_answers_said_to_show_the_allowance_are_exact(
    allowance: float, alpha: float, failed: int
) -> None:
    needed = proof_answers(allowance, alpha / 2, failed)
    assert needed is not None
    # with a clean, large stable side (its lower bound 0), `needed` answers pass and one
    # fewer does not
    assert _rate_only(max(needed, 20), failed, 100_000, 0, allowance, alpha) == "pass"
    if needed - 1 >= max(20, failed):
        assert _rate_only(needed - 1, failed, 100_000, 0, allowance, alpha) == "inconclusive"


def test_the_worked_example_of_the_docs() -> None:
    # 0.5 % allowed, 95 % confidence, one look: 736 clean answers (the bound at 97.5 %)
    assert proof_answers(0.005, 0.025) == 736 == math.ceil(math.log(0.025) / math.log(0.995))
    verdict = judge(
        Sample(212, 0),
        Sample(2000, 0),
        failure_rate=Increase(0.005, False),
        p95=None,
        alpha=0.05,
        min_answers=20,
        proof_alpha=0.05,
    )
    assert verdict.outcome == "inconclusive"
    assert verdict.reasons == [
        "canary 212 answers, 0 failed: failure rate <= 1.8 % at 97.5 % confidence; "
        "about 736 clean answers show <= 0.50 %"
    ]


def test_a_clean_canary_with_enough_answers_passes_latency_too() -> None:
    rng = random.Random(3)
    stable = [10 + rng.expovariate(1.0) for _ in range(9000)]
    canary = [10 + rng.expovariate(1.0) for _ in range(1000)]
    verdict = judge(
        Sample(1000, 0, canary),
        Sample(9000, 0, stable),
        failure_rate=Increase(0.01, False),
        p95=Increase(0.2, True),
        alpha=0.05,
        min_answers=20,
        proof_alpha=0.005,
    )
    assert verdict.outcome == "pass", verdict.reasons
    # a slow tail on 10 % of the answers: the median is the same, the p95 is not
    slow = [v + (30 if i % 10 == 0 else 0) for i, v in enumerate(canary)]
    verdict = judge(
        Sample(1000, 0, slow),
        Sample(9000, 0, stable),
        failure_rate=Increase(0.01, False),
        p95=Increase(0.2, True),
        alpha=0.05,
        min_answers=20,
        proof_alpha=0.005,
    )
    assert verdict.outcome != "pass"
    # too few good answers to bound a p95 at all
    verdict = judge(
        Sample(40, 0, canary[:40]),
        Sample(9000, 0, stable),
        failure_rate=None,
        p95=Increase(0.2, True),
        alpha=0.05,
        min_answers=20,
        proof_alpha=0.05,
    )
    assert verdict.outcome == "inconclusive"
    assert "too few to bound p95 latency" in verdict.reasons[0]
    assert "at least 72 good answers" in verdict.reasons[0]


def test_a_look_that_is_no_proof_look_never_passes() -> None:
    verdict = judge(
        Sample(10_000, 0),
        Sample(10_000, 0),
        failure_rate=Increase(0.01, False),
        p95=None,
        alpha=0.05,
        min_answers=20,
    )
    assert verdict.outcome == "inconclusive"


# --- the look schedule and the error budget --------------------------------------------------


@pytest.mark.parametrize(
    ("pause", "every", "max_pause", "proofs"),
    [(20.0, 2.0, None, 10), (6.0, 1.0, None, 10), (20.0, 20.0, None, 3), (5.0, 1.0, 5.0, 1)],
)
def test_proof_looks_are_few_and_end_at_max_pause(
    pause: float, every: float, max_pause: float | None, proofs: int
) -> None:
    steps = [Step(1, 10.0, None, pause), Step(2, 100.0, None, 0.0)]
    raw = {"failure_rate": {"max_increase": "1%"}, "every": every}
    if max_pause is not None:
        raw["max_pause"] = max_pause
    analysis = parse_analysis(raw, steps, 0.95)
    assert analysis is not None
    times = analysis.proof_times(steps[0])
    assert len(times) == proofs <= MAX_PROOF_LOOKS
    assert times[0] == pause and times[-1] == pytest.approx(steps[0].max_pause_s)
    assert steps[0].max_pause_s == (3 * pause if max_pause is None else max_pause)
    assert analysis.proof_looks_planned == proofs
    assert analysis.proof_alpha == pytest.approx(0.05 / proofs)
    assert analysis.looks_planned >= math.ceil(steps[0].max_pause_s / every) + proofs


def test_default_max_pause_stays_within_the_timeout() -> None:
    steps = [Step(1, 10.0, None, 20.0), Step(2, 50.0, None, 20.0)]
    parse_analysis({"failure_rate": {"max_increase": "1%"}}, steps, 0.95, budget_s=60.0)
    assert [s.max_pause_s for s in steps] == [30.0, 30.0]
    parse_analysis({"failure_rate": {"max_increase": "1%"}}, steps, 0.95, budget_s=30.0)
    assert [s.max_pause_s for s in steps] == [20.0, 20.0]  # no room: the pause alone


def _simulate(
    analysis: Analysis,
    step: Step,
    rate_canary: float,
    rate_stable: float,
    per_s: float,
    share: float,
    rng: random.Random,
) -> str:
    """One analysed step, answers arriving at ``per_s`` a second (``share`` of them the
    canary's), looked at as the deploy check does: every ``every`` s for a regression, at the
    proof times for proof. Its outcome: fail, pass, or unproven."""
    assert analysis.failure_rate is not None
    canary, stable = Sample(), Sample()
    proofs = analysis.proof_times(step)
    looks = sorted(
        {
            round(analysis.every_s * i, 6)
            for i in range(1, int(step.max_pause_s / analysis.every_s) + 1)
        }
        | {round(t, 6) for t in proofs}
    )
    now = 0.0
    for at in looks:
        answers = round(per_s * (at - now))
        now = at
        for _ in range(answers):
            sample, rate = (canary, rate_canary) if rng.random() < share else (stable, rate_stable)
            sample.answers += 1
            sample.failed += rng.random() < rate
        proof = any(abs(at - t) < 1e-6 for t in proofs)
        verdict = judge(
            canary,
            stable,
            failure_rate=analysis.failure_rate,
            p95=None,
            alpha=analysis.alpha,
            min_answers=analysis.min_answers,
            proof_alpha=analysis.proof_alpha if proof else None,
        )
        if verdict.outcome == "fail":
            return "fail"
        if proof and verdict.outcome == "pass":
            return "pass"
    return "unproven"


@pytest.mark.parametrize(
    ("canary", "stable", "promoted_at_most", "promoted_at_least"),
    [
        # worse than allowed (2 %) by a little: the hardest case to keep from promotion
        (0.025, 0.0, 0.05, 0.0),
        (0.032, 0.01, 0.05, 0.0),
        (0.05, 0.0, 0.05, 0.0),
        # good: clean, or within the allowance by a margin, with enough answers
        (0.0, 0.0, 1.0, 0.95),
        (0.004, 0.002, 1.0, 0.8),
    ],
)
def test_simulated_deploys_promote_a_bad_canary_rarely_and_a_good_one(
    canary: float, stable: float, promoted_at_most: float, promoted_at_least: float
) -> None:
    step = Step(1, 20.0, None, 20.0)
    raw = {"failure_rate": {"max_increase": "2%"}, "every": "2s"}
    analysis = parse_analysis(raw, [step, Step(2, 100.0, None, 0.0)], 0.95)
    assert analysis is not None
    rng = random.Random(f"{canary}-{stable}")
    runs = 150
    outcomes = [_simulate(analysis, step, canary, stable, 100.0, 0.2, rng) for _ in range(runs)]
    promoted = outcomes.count("pass") / runs
    assert promoted <= promoted_at_most, outcomes
    assert promoted >= promoted_at_least, outcomes


# --- the check's outcome ----------------------------------------------------------------------


def test_an_unproven_deploy_is_inconclusive_whatever_its_expect_says(tmp_path: object) -> None:
    from pathlib import Path

    from pytest_fwgates.checks import CheckRegistry
    from pytest_fwgates.loader import GateLoader
    from pytest_fwgates.model import Source

    loader = GateLoader([], registry=CheckRegistry())
    for expect in ({"aborted": "== 0"}, {"aborted": "== 1"}, {"aborted_at_step": "== 1"}):
        spec = loader.spec_from_mapping(
            None,
            None,
            {"deploy": "true", "health": "http://127.0.0.1:9/", "expect": expect},
            Source(Path(str(tmp_path)) / "g.yaml", 1),
        )
        context = CheckContext(rootdir=Path(str(tmp_path)))
        m = Measurement(values={"aborted": 1.0, "aborted_at_step": 1.0, "steps_done": 0.0})
        m.inconclusive.append("unproven, not promoted: step 1 (weight 10 %): canary ...")
        m.moot = UNPROVEN_MOOT
        outcome, messages = _judge(spec, m, context)
        assert outcome is Outcome.INCONCLUSIVE
        assert messages == ["unproven, not promoted: step 1 (weight 10 %): canary ..."]
        # something that failed outright still fails
        m.failures.append("on_abort command failed (exit 3)")
        assert _judge(spec, m, context)[0] is Outcome.FAILED
