"""A canary step is promoted only when the evidence proves it within the allowances: the pass
side of the judge against scipy's exact bounds, over random counts; the answers it says
would show the allowance, exactly; and simulated deploys (seeded, no network) with the real
look schedule and error budget: a canary worse than allowed is promoted in at most
``1 - confidence`` of them, a good one with enough answers is promoted."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import stats
from pytest_fwgates.canary_judge import Increase, Sample, Verdict, judge, proof_answers
from pytest_fwgates.checks.base import CheckContext, Measurement, _judge
from pytest_fwgates.checks.progressive import (
    MAX_PROOF_LOOKS,
    UNPROVEN_MOOT,
    Analysis,
    Step,
    parse_analysis,
)
from pytest_fwgates.checks.progressive import _judge as judge_by
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


@settings(max_examples=300, deadline=None)
@given(counts, counts, allowances, alphas)
def test_an_abort_is_scipys_binomial_test_against_the_stable_bound_plus_the_allowance(
    canary: tuple[int, int], stable: tuple[int, int], allowance: float, alpha: float
) -> None:
    """The null hypothesis of an abort is "the canary is within the allowance": the exact
    one-sample test of its failures against the stable's upper bound + the allowance, the
    look's alpha split in halves (the stable bound, the test)."""
    (nc, fc), (ns, fs) = canary, stable
    verdict = judge(
        Sample(nc, fc),
        Sample(ns, fs),
        failure_rate=Increase(allowance, relative=False),
        p95=None,
        alpha=alpha,
        min_answers=20,
    )
    if nc == 0 or ns == 0:
        assert verdict.outcome != "fail"
        return
    limit = min(_cp(fs, ns, alpha)[1] + allowance, 1.0)
    p = scipy_stats.binomtest(fc, nc, limit, alternative="greater").pvalue
    assert verdict.failure_p == pytest.approx(p, abs=1e-9)
    if abs(p - alpha / 2) > 1e-9:
        assert (verdict.outcome == "fail") == (p < alpha / 2)
    if verdict.outcome == "fail":  # the canary's own exact lower bound is beyond the limit
        assert _cp(fc, nc, alpha)[0] > limit - 1e-9


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

    def look(answers: list[float], failure_rate: Increase | None, proof_alpha: float) -> Verdict:
        return judge(
            Sample(len(answers), 0, answers),
            Sample(9000, 0, stable),
            failure_rate=failure_rate,
            p95=Increase(0.2, True),
            alpha=0.05,
            min_answers=20,
            proof_alpha=proof_alpha,
        )

    verdict = look(canary, Increase(0.01, False), 0.005)
    assert verdict.outcome == "pass", verdict.reasons
    # a slow tail on 10 % of the answers: the median is the same, the p95 is not
    slow = [v + (30 if i % 10 == 0 else 0) for i, v in enumerate(canary)]
    verdict = look(slow, Increase(0.01, False), 0.005)
    assert verdict.outcome != "pass"
    # too few good answers to bound a p95 at all
    verdict = look(canary[:40], None, 0.05)
    assert verdict.outcome == "inconclusive"
    assert "too few to bound p95 latency" in verdict.reasons[0]
    assert "at least 72 good answers" in verdict.reasons[0]


def test_the_good_answers_said_to_show_the_p95_are_exact() -> None:
    """A canary 2 % of whose good answers are beyond the limit: the count the reason names
    passes at that share, one fewer does not."""

    def look(n: int) -> tuple[str, list[str]]:
        fast = math.floor(0.98 * n + 1e-9)
        canary = [10.0] * fast + [100.0] * (n - fast)
        verdict = judge(
            Sample(n, 0, canary),
            Sample(20_000, 0, [10.0] * 20_000),
            failure_rate=None,
            p95=Increase(0.2, True),
            alpha=0.05,
            min_answers=20,
            proof_alpha=0.0025,
        )
        return verdict.outcome, verdict.reasons

    outcome, reasons = look(300)
    assert outcome == "inconclusive"
    needed = int(reasons[0].split("about ")[1].split()[0])
    assert "98 % of them within it" in reasons[0]
    assert look(needed)[0] == "pass"
    assert look(needed - 1)[0] == "inconclusive"


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


#: one answer of a version: None when it failed, else its latency in ms
Draw = Callable[[random.Random], "float | None"]


def _rate(rate: float) -> Draw:
    return lambda rng: None if rng.random() < rate else 10.0


def _simulate(
    analysis: Analysis,
    step: Step,
    canary: Draw,
    stable: Draw,
    per_s: float,
    share: float,
    rng: random.Random,
    prove: bool = True,
) -> str:
    """One analysed step, answers arriving at ``per_s`` a second (``share`` of them the
    canary's), looked at as the deploy check does: every ``every`` s for a regression, at the
    proof times for proof (``prove=False``: never promoted, watched to the end, which only
    adds chances of a false abort). Its outcome: fail, pass, or unproven."""
    samples = {True: Sample(), False: Sample()}
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
            is_canary = rng.random() < share
            sample = samples[is_canary]
            latency = (canary if is_canary else stable)(rng)
            sample.answers += 1
            if latency is None:
                sample.failed += 1
            elif analysis.p95 is not None:
                sample.latencies_ms.append(latency)
        proof = prove and any(abs(at - t) < 1e-6 for t in proofs)
        verdict = judge_by(analysis, samples[True], samples[False], proof=proof)
        if verdict.outcome == "fail":
            return "fail"
        if proof and verdict.outcome == "pass":
            return "pass"
    return "unproven"


def _deploys(raw: dict[str, object], canary: Draw, stable: Draw, seed: str, **kw: float) -> dict:
    step = Step(1, 20.0, None, kw.get("pause", 20.0))
    analysis = parse_analysis(raw, [step, Step(2, 100.0, None, 0.0)], 0.95)
    assert analysis is not None
    rng = random.Random(seed)
    runs = int(kw.get("runs", 150))
    per_s, share, prove = kw.get("per_s", 100.0), kw.get("share", 0.2), bool(kw.get("prove", 1))
    outcomes = [
        _simulate(analysis, step, canary, stable, per_s, share, rng, prove) for _ in range(runs)
    ]
    return {o: outcomes.count(o) / runs for o in ("fail", "pass", "unproven")}


@pytest.mark.parametrize(
    ("canary", "stable", "promoted", "aborted"),
    [
        # worse than allowed (2 %) by a little: the hardest case to keep from promotion
        (0.025, 0.0, (0.0, 0.05), (0.0, 1.0)),
        (0.032, 0.01, (0.0, 0.05), (0.0, 1.0)),
        (0.05, 0.0, (0.0, 0.05), (0.0, 1.0)),
        # good: clean, or within the allowance by a margin, with enough answers
        (0.0, 0.0, (0.95, 1.0), (0.0, 0.05)),
        (0.004, 0.002, (0.8, 1.0), (0.0, 0.05)),
        # within the allowance, up to its edge, watched to the end (never promoted): aborted
        # in at most 1 - confidence of deploys (a test of p_c <= p_s, as Fisher's was, aborted
        # them in 15 %, 71 % and 77 %)
        (0.01, 0.0, None, (0.0, 0.05)),
        (0.02, 0.0, None, (0.0, 0.05)),
        (0.03, 0.01, None, (0.0, 0.05)),
        # well beyond: caught
        (0.08, 0.0, (0.0, 0.05), (0.95, 1.0)),
        (0.12, 0.02, (0.0, 0.05), (0.95, 1.0)),
    ],
)
def test_simulated_deploys_abort_only_beyond_the_allowance_and_promote_only_within(
    canary: float,
    stable: float,
    promoted: tuple[float, float] | None,
    aborted: tuple[float, float],
) -> None:
    raw = {"failure_rate": {"max_increase": "2%"}, "every": "2s"}
    prove = promoted is not None
    # fewer runs where every proof look of every run computes bounds over a failing stable
    runs = 60 if prove and stable else 150
    seen = _deploys(raw, _rate(canary), _rate(stable), f"{canary}-{stable}", prove=prove, runs=runs)
    if promoted is not None:
        assert promoted[0] <= seen["pass"] <= promoted[1], seen
    assert aborted[0] <= seen["fail"] <= aborted[1], seen


def _stable_ms(rng: random.Random) -> float:
    return 10.0 + rng.expovariate(1.0)  # p95 10 + ln 20 = 13.0 ms; the limit at +20 %: 15.6


def _slow_bulk(rng: random.Random) -> float:
    # 95 % of the answers between 14.8 and 15.6 ms (the stable's slowest 5 % are faster):
    # the p95 exactly at the limit, so within the allowance, with every answer slower
    return 15.6 * (0.95 + 0.05 * rng.uniform(0.0, 1 / 0.95))


@pytest.mark.parametrize(
    ("name", "canary", "aborted"),
    [
        ("unchanged", _stable_ms, (0.0, 0.05)),
        ("+20 % (at the limit)", lambda rng: 1.2 * _stable_ms(rng), (0.0, 0.05)),
        # Mann-Whitney against the raised stable plus the point p95 aborted this nearly always
        ("bulk slower, p95 at the limit", _slow_bulk, (0.0, 0.05)),
        ("+50 %", lambda rng: 1.5 * _stable_ms(rng), (0.95, 1.0)),
        ("+5 ms", lambda rng: 5.0 + _stable_ms(rng), (0.95, 1.0)),
    ],
)
def test_simulated_deploys_abort_on_p95_only_beyond_the_allowance(
    name: str, canary: Draw, aborted: tuple[float, float]
) -> None:
    raw = {"p95_ms": {"max_increase": "+20%"}, "every": "2s"}
    seen = _deploys(
        raw, canary, _stable_ms, name, pause=10.0, runs=100, per_s=60.0, share=0.5, prove=0
    )
    assert aborted[0] <= seen["fail"] <= aborted[1], seen


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
