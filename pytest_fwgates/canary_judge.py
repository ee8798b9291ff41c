"""Canary against stable: is the new version worse than the one it replaces, from what the
prober saw of each over the same window - and can the evidence prove it is not?

    verdict = judge(canary, stable, failure_rate=rate, p95=p95, alpha=a, proof_alpha=b,
                    min_answers=20)
    verdict.outcome        # "fail", "pass" or "inconclusive"

Each rule is a dual test against the allowed increase (``max_increase``):

- **fail** only when the evidence *shows* the canary beyond the allowance at ``1 - alpha``:
  the null hypothesis is the canary within it, so a canary within its allowance (not only one
  no worse than the stable version) is aborted at most that rarely; each side at ``alpha / 2``.
  Failure rate: an exact one-sample binomial test of the canary's failures against the
  stable rate's Clopper-Pearson *upper* bound plus ``max_increase``; latency: the sign test of
  the canary's good answers slower than the limit the allowance sets from the stable p95's
  order-statistic *upper* bound (more than 5 % of them: its p95 is above the limit). Both are
  the pass side's bounds mirrored.
- **pass** only when the evidence *shows* the canary within the allowance at ``1 -
  proof_alpha`` (an intersection of one-sided bounds, each at ``proof_alpha / 2``):
  failure rate: the exact (Clopper-Pearson) upper bound of the canary's rate is within the
  *lower* bound of the stable rate plus ``max_increase``. Both versions' rates are unknown;
  with each bound at half the error rate, ``P(upper_c < p_c or lower_s > p_s) <= proof_alpha``,
  so a canary whose true rate is more than ``max_increase`` above the stable's passes with
  probability at most ``proof_alpha`` (taking the stable's point rate instead would let a
  stable version that failed by chance more often in the window lift the limit).
  Latency: the distribution-free upper bound of the canary's p95 (an order statistic of its
  good answers) is within the allowed limit computed from the lower bound of the stable p95.
  It proves what the rule names (the p95), not only that the canary's latencies tend to be
  no larger (Mann-Whitney's non-inferiority direction would pass a canary whose slowest
  5 % doubled); it needs ``log(proof_alpha / 2) / log(0.95)`` good answers of the canary
  (about 72 at 95 %) - far fewer than a failure rate allowance of a fraction of a percent.
- **inconclusive** otherwise: a one-line reason per rule says what the evidence shows and
  how many answers would show the allowance (for the failure rate, computed exactly as for
  any counted figure: :func:`pytest_fwgates.stats.trials_needed`).

A pass also needs ``min_answers`` answers of each version (good ones, for latency). A canary
is promoted when every rule passes: each rule alone bounds the chance of passing a canary
worse than allowed *by that rule* (an intersection-union test needs no split across rules).

The statistics are :mod:`pytest_fwgates.stats`' (Clopper-Pearson, trials needed,
order-statistic bounds on histograms) and the binomial tail (scipy, imported when a look
needs it).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import stats

__all__ = [
    "Increase",
    "Sample",
    "Verdict",
    "judge",
    "parse_increase",
    "proof_answers",
]

#: good answers of each version the latency test needs before it can show anything
_LATENCY_FLOOR = 8
_INCREASE = re.compile(r"^\s*\+?\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|ms|s)?\s*$")


class JudgeError(ValueError):
    """A bad analysis setting."""


@dataclass(frozen=True)
class Increase:
    """An allowed increase: relative (``+20%``) or absolute (``+50ms``, a rate's ``0.5%``)."""

    amount: float
    relative: bool

    def limit(self, base: float) -> float:
        return base * (1 + self.amount) if self.relative else base + self.amount

    def __str__(self) -> str:
        return f"+{self.amount * 100:g}%" if self.relative else f"+{self.amount:g}"


def parse_increase(value: Any, *, rate: bool) -> Increase:
    """``"0.5%"`` for a failure rate (an absolute increase of the share, 0.005); ``"+20%"``
    (relative), ``"+50ms"`` or ``50`` (absolute ms) for a latency."""
    match = _INCREASE.match(str(value))
    if match is None or isinstance(value, bool):
        raise JudgeError(f"max_increase: {value!r} is not an increase like '+20%' or '0.5%'")
    number, unit = float(match.group(1)), match.group(2)
    if rate:
        # a bare number is ambiguous (0.5: half of all answers, or 0.5 %?), and an increase of
        # 100 % of the answers or more can never fail: both are setting errors
        if unit != "%":
            raise JudgeError(
                f"max_increase: {value!r}: a failure rate grows by a share of the answers, "
                f"written with % ('0.5%')"
            )
        if number >= 100:
            raise JudgeError(
                f"max_increase: {value!r}: a failure rate cannot grow by 100 % of the answers "
                f"or more, so this could never fail (did you mean {number / 100:g}%?)"
            )
        return Increase(number / 100, relative=False)
    if unit == "%":
        return Increase(number / 100, relative=True)
    return Increase(number * 1000 if unit == "s" else number, relative=False)


def _histogram(values: Sequence[float]) -> Counter[float]:
    return Counter(values)


def _nearest_rank(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by the nearest-rank rule (a value that was seen); 0 for none."""
    if not values:
        return 0.0
    return stats.histogram_rank(_histogram(values), max(math.ceil(q * len(values)), 1))


def _share(value: float, up: bool) -> str:
    """A share as a percentage to 2 significant digits, rounded the way that claims less."""
    pct = value * 100
    if pct <= 0 or not math.isfinite(pct):
        return f"{pct:g} %"
    digits = max(1 - math.floor(math.log10(pct)), 0)
    scale = 10.0**digits
    shown = (math.ceil if up else math.floor)(round(pct * scale, 9)) / scale
    return f"{shown:.{digits}f} %"


def _level(alpha: float) -> str:
    return f"{(1 - alpha) * 100:.4g} %"


@functools.lru_cache(maxsize=4096)  # a pure function of numbers, asked at every proof look
def proof_answers(target: float, alpha: float, failed: int = 0) -> int | None:
    """How many answers with ``failed`` failures in all show a failure rate ``<= target`` by
    its exact upper bound at ``1 - alpha`` (``None``: more than 10**9)."""
    if target <= 0:
        return None
    if target >= 1:
        return max(failed, 1)
    return stats.trials_needed(failed, max(failed, 1), target, 1 - alpha, lower=False)


@dataclass
class Sample:
    """What the prober saw of one version in a window."""

    answers: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def failure_rate(self) -> float:
        return self.failed / self.answers if self.answers else 0.0

    @property
    def p95_ms(self) -> float:
        return _nearest_rank(self.latencies_ms, 0.95)

    def to_json(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "failed": self.failed,
            "failure_rate": round(self.failure_rate, 6),
            "p95_ms": round(self.p95_ms, 2),
        }


@dataclass
class Verdict:
    outcome: str  # pass | fail | inconclusive
    reasons: list[str] = field(default_factory=list)
    failure_p: float | None = None
    latency_p: float | None = None
    #: the canary latency above which an answer is a bad one (the p95 rule's limit)
    slow_ms: float | None = None
    #: which rule failed: failure_rate, p95_ms
    failed_rules: list[str] = field(default_factory=list)
    #: what the pass side showed: the bounds, limits and answers needed, by rule
    proof: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"verdict": self.outcome, "reasons": list(self.reasons)}
        if self.failure_p is not None:
            found["failure_rate_p"] = round(self.failure_p, 6)
        if self.latency_p is not None:
            found["latency_p"] = round(self.latency_p, 6)
        if self.proof:
            found["proof"] = dict(self.proof)
        return found


def _prove_rate(canary: Sample, stable: Sample, allowed: Increase, alpha: float) -> str | None:
    """None when the canary's failure rate is shown within the allowance at ``1 - alpha``,
    else the one-line reason it is not (what the evidence shows, what would show it)."""
    side = alpha / 2
    upper = stats.binomial_upper(canary.failed, canary.answers, 1 - side)
    lower = stats.binomial_lower(stable.failed, stable.answers, 1 - side)
    limit = lower + allowed.amount
    if upper <= limit:
        return None
    needed = proof_answers(limit, side, canary.failed)
    if needed is None:
        more = f"no number of answers with {canary.failed} failed shows <= {_share(limit, False)}"
    else:
        clean = (
            "clean answers" if canary.failed == 0 else f"answers with only {canary.failed} failed"
        )
        more = f"about {needed} {clean} show <= {_share(limit, False)}"
    stable_said = (
        f"; stable {stable.failed}/{stable.answers} failed: >= {_share(lower, False)}, "
        f"allowed {_share(limit, False)}"
        if stable.failed
        else ""
    )
    return (
        f"canary {canary.answers} answers, {canary.failed} failed: failure rate <= "
        f"{_share(upper, True)} at {_level(side)} confidence{stable_said}; {more}"
    )


def _prove_p95(canary: Sample, stable: Sample, allowed: Increase, alpha: float) -> str | None:
    """None when the canary's p95 is shown within the allowed limit at ``1 - alpha``, else
    the one-line reason it is not."""
    side = alpha / 2
    _, upper = stats.quantile_bounds(_histogram(canary.latencies_ms), 0.95, 1 - side)
    lower, _ = stats.quantile_bounds(_histogram(stable.latencies_ms), 0.95, 1 - side)
    limit = allowed.limit(lower)
    if upper <= limit:
        return None
    n = len(canary.latencies_ms)
    floor = math.ceil(math.log(side) / math.log(0.95))
    if not math.isfinite(upper):
        return (
            f"canary {n} good answers: too few to bound p95 latency at {_level(side)} "
            f"confidence; at least {floor} good answers bound it"
        )
    if not math.isfinite(limit):
        return f"stable {len(stable.latencies_ms)} good answers: too few to bound its p95"
    within = sum(1 for v in canary.latencies_ms if v <= limit) / n
    needed = _p95_answers(within, side)
    more = (
        f"about {needed} good answers with as many within it would show it"
        if needed is not None
        else "more answers show it only if the canary is faster"
    )
    return (
        f"canary {n} good answers: p95 latency <= {upper:.1f} ms at {_level(side)} "
        f"confidence, above the allowed {limit:.1f} ms (stable p95 >= {lower:.1f} ms "
        f"{allowed}); {_share(within, False)} of them within it: {more}"
    )


def _p95_answers(within: float, side: float, most: int = 10**6) -> int | None:
    """How many good canary answers, ``within`` of them at or under the limit, bring the
    upper bound of the p95 (at ``1 - side``) within it (``None``: none up to ``most``). The
    upper bound is the order statistic of rank ``r(n)``; it is within the limit when at least
    ``r(n)`` answers are, and ``r(n) / n`` falls towards 0.95 as ``n`` grows."""

    def shows(n: int) -> bool:
        rank = stats.quantile_ranks(n, 0.95, 1 - side)[1]
        return rank is not None and rank <= math.floor(within * n + 1e-9)

    if within <= 0.95 or not shows(most):
        return None
    low, high = 1, 64
    while not shows(high):
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if shows(mid) else (mid, high)
    return high


def _binomial_p_greater(events: int, trials: int, share: float) -> float:
    """The exact one-sided p-value of "more than ``share`` of the trials are events":
    ``P(Bin(trials, share) >= events)`` (scipy's ``binomtest(..., alternative="greater")``)."""
    if events <= 0:
        return 1.0
    if share <= 0:
        return 0.0
    if share >= 1:
        return 1.0
    from scipy.stats import binom

    return min(float(binom.sf(events - 1, trials, share)), 1.0)


def _regressed_rate(
    canary: Sample, stable: Sample, allowed: Increase, alpha: float, verdict: Verdict
) -> str | None:
    """The one-line reason when the canary's failure rate is shown *beyond* the allowance
    at ``1 - alpha`` (a false abort of a canary within it at most ``alpha``), else None.

    The null hypothesis is "the canary is within the allowance": ``p_c <= p_s + allowance``.
    Half the error rate bounds the stable rate from above (Clopper-Pearson, ``p_s <= U_s``);
    the other half is an exact one-sample binomial test of the canary's failures against
    ``U_s + allowance``. Within the allowance, ``P(abort) <= P(U_s < p_s) + P(test rejects |
    p_c <= U_s + allowance) <= alpha / 2 + alpha / 2``: the mirror image of the pass side."""
    side = alpha / 2
    upper = stats.binomial_upper(stable.failed, stable.answers, 1 - side)
    limit = upper + allowed.amount
    p = _binomial_p_greater(canary.failed, canary.answers, limit)
    verdict.failure_p = p
    if p >= side:
        return None
    lower = stats.binomial_lower(canary.failed, canary.answers, 1 - side)
    return (
        f"failure rate {canary.failure_rate:.2%} ({canary.failed}/{canary.answers}) against "
        f"{stable.failure_rate:.2%} ({stable.failed}/{stable.answers}) stable: >= "
        f"{_share(lower, False)} at {_level(side)} confidence, more than the allowed "
        f"{_share(limit, True)} (stable <= {_share(upper, True)} + {allowed.amount:.2%}; "
        f"binomial p = {p:.2g} < {side:.3g})"
    )


def _regressed_p95(
    canary: Sample, stable: Sample, allowed: Increase, alpha: float, verdict: Verdict
) -> str | None:
    """The one-line reason when the canary's p95 is shown *above* the allowed limit at
    ``1 - alpha``, else None.

    The null hypothesis is the rule's: "the canary p95 is within the allowance of the stable
    p95". Half the error rate bounds the stable p95 from above (an order statistic); the
    limit is the allowance applied to that bound; the other half is the sign test of the
    canary's good answers slower than the limit: under the null at most 5 % of them are, so
    ``P(Bin(n, 0.05) >= slower)`` is the p-value (the order-statistic lower bound of the
    canary p95 above the limit, said as a test). Distribution-free, so a canary whose bulk is
    slower but whose p95 is within the allowance is not aborted for it."""
    side = alpha / 2
    _, upper = stats.quantile_bounds(_histogram(stable.latencies_ms), 0.95, 1 - side)
    if not math.isfinite(upper):
        return None  # too few stable answers to bound its p95 from above: no evidence yet
    limit = allowed.limit(upper)
    n = len(canary.latencies_ms)
    slower = sum(1 for v in canary.latencies_ms if v > limit)
    p = _binomial_p_greater(slower, n, 0.05)
    verdict.latency_p = p
    if p >= side:
        return None
    return (
        f"p95 latency {canary.p95_ms:.1f} ms against {stable.p95_ms:.1f} ms stable: "
        f"{slower} of {n} good canary answers ({slower / n:.0%}) slower than the allowed "
        f"{limit:.1f} ms (stable p95 <= {upper:.1f} ms at {_level(side)} confidence "
        f"{allowed}; binomial p = {p:.2g} < {side:.3g})"
    )


def judge(
    canary: Sample,
    stable: Sample,
    *,
    failure_rate: Increase | None,
    p95: Increase | None,
    alpha: float,
    min_answers: int,
    proof_alpha: float | None = None,
) -> Verdict:
    """The canary against the stable version over one window; see the module docstring.

    ``alpha``: the error rate of a fail (a false abort) at this look; ``proof_alpha``: of a
    pass (promoting a canary worse than allowed); ``None``: this look cannot pass (it looks
    only for a regression), its outcome is fail or inconclusive."""
    verdict = Verdict("pass")
    if failure_rate is not None and canary.answers and stable.answers:
        why = _regressed_rate(canary, stable, failure_rate, alpha, verdict)
        if why:
            verdict.failed_rules.append("failure_rate")
            verdict.reasons.append(why)
    good_c, good_s = len(canary.latencies_ms), len(stable.latencies_ms)
    if p95 is not None and min(good_c, good_s) >= _LATENCY_FLOOR:
        verdict.slow_ms = p95.limit(stable.p95_ms)
        why = _regressed_p95(canary, stable, p95, alpha, verdict)
        if why:
            verdict.failed_rules.append("p95_ms")
            verdict.reasons.append(why)
    if verdict.failed_rules:
        verdict.outcome = "fail"
        return verdict
    verdict.outcome = "inconclusive"
    # a failure is shown by significance at any size; a pass needs enough answers of both
    short = [
        f"{name} answered {n} times (at least {min_answers} needed to judge)"
        for name, n in (("the canary", canary.answers), ("the stable version", stable.answers))
        if n < min_answers
    ]
    if p95 is not None and not short:
        short = [
            f"{name} gave {n} good answers (at least {min_answers} needed to judge latency)"
            for name, n in (("the canary", good_c), ("the stable version", good_s))
            if n < min_answers
        ]
    if short:
        verdict.reasons = short
        return verdict
    if proof_alpha is None:
        return verdict  # a look for a regression only: no pass before the proof looks
    unproven = []
    if failure_rate is not None:
        why = _prove_rate(canary, stable, failure_rate, proof_alpha)
        verdict.proof["failure_rate"] = "shown" if why is None else why
        if why:
            unproven.append(why)
    if p95 is not None:
        why = _prove_p95(canary, stable, p95, proof_alpha)
        verdict.proof["p95_ms"] = "shown" if why is None else why
        if why:
            unproven.append(why)
    if unproven:
        verdict.reasons = unproven
    else:
        verdict.outcome = "pass"
    return verdict
