"""Canary against stable: is the new version worse than the one it replaces, from what the
prober saw of each over the same window?

    verdict = judge(canary, stable, rules, alpha=0.05)
    verdict.outcome        # "pass", "fail" or "inconclusive" (too few answers to judge)

- **Failure rate**: failed answers of each version, Fisher's exact test (one-sided: the canary
  fails more often), and the increase of its rate over the stable one against the allowed
  ``max_increase`` (``"0.5%"``). It fails when the increase is beyond the allowed one *and*
  significant at ``alpha``, as Kayenta's judge asks for a real, large enough effect.
- **Latency** of good answers: the canary's p95 against the stable p95 plus the allowed
  increase (``"+20%"`` relative, ``"+50ms"``/``50`` absolute), and Mann-Whitney U (one-sided,
  normal approximation with tie and continuity corrections) of the canary's latencies against
  the stable ones *raised by the allowed increase*: it fails only when the canary is slower
  beyond the allowance, significantly - a small systematic shift (a fresh process on a busy
  machine) that thousands of answers make "significant" is not a regression.
- **Enough answers**: a significant failure shows at any size (the exact test holds for small
  samples), but a pass needs ``min_answers`` answers of each version (good ones, for the
  latency rule): fewer is inconclusive - never a pass.

Fisher's test is :func:`pytest_fwgates.stats.fisher_greater` (scipy, imported when a look
needs it); the Mann-Whitney test here works on the raw latencies of two samples.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import stats

__all__ = [
    "Increase",
    "Sample",
    "Verdict",
    "judge",
    "mann_whitney_greater",
    "parse_increase",
    "percentile",
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


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided p-value of the Mann-Whitney U test that ``x`` tends to be larger than ``y``
    (normal approximation, tie-corrected, with continuity correction)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = rank
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    r1 = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    mean = n1 * n2 / 2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return 1.0
    z = (u1 - mean - 0.5) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) by the nearest-rank rule: a value that was seen."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


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
        return percentile(self.latencies_ms, 0.95)

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

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"verdict": self.outcome, "reasons": list(self.reasons)}
        if self.failure_p is not None:
            found["failure_rate_p"] = round(self.failure_p, 6)
        if self.latency_p is not None:
            found["latency_p"] = round(self.latency_p, 6)
        return found


def judge(
    canary: Sample,
    stable: Sample,
    *,
    failure_rate: Increase | None,
    p95: Increase | None,
    alpha: float,
    min_answers: int,
) -> Verdict:
    """The canary against the stable version over one window; see the module docstring."""
    verdict = Verdict("pass")
    if failure_rate is not None and canary.answers and stable.answers:
        p = stats.fisher_greater(canary.failed, canary.answers, stable.failed, stable.answers)
        verdict.failure_p = p
        increase = canary.failure_rate - stable.failure_rate
        if increase > failure_rate.amount and p < alpha:
            verdict.failed_rules.append("failure_rate")
            verdict.reasons.append(
                f"failure rate {canary.failure_rate:.2%} ({canary.failed}/{canary.answers}) "
                f"against {stable.failure_rate:.2%} ({stable.failed}/{stable.answers}) stable: "
                f"+{increase:.2%}, more than {failure_rate.amount:.2%} allowed "
                f"(Fisher p = {p:.2g} < {alpha:.3g})"
            )
    good_c, good_s = len(canary.latencies_ms), len(stable.latencies_ms)
    if p95 is not None and min(good_c, good_s) >= _LATENCY_FLOOR:
        # the canary against the stable latencies raised by the allowed increase: a shift
        # within the allowance is no evidence, however many answers show it
        allowed = [p95.limit(v) for v in stable.latencies_ms]
        p = mann_whitney_greater(canary.latencies_ms, allowed)
        verdict.latency_p = p
        limit = p95.limit(stable.p95_ms)
        verdict.slow_ms = limit
        if canary.p95_ms > limit and p < alpha:
            verdict.failed_rules.append("p95_ms")
            verdict.reasons.append(
                f"p95 latency {canary.p95_ms:.1f} ms against {stable.p95_ms:.1f} ms stable, "
                f"above the allowed {limit:.1f} ms ({p95}; Mann-Whitney p = {p:.2g} < "
                f"{alpha:.3g})"
            )
    if verdict.failed_rules:
        verdict.outcome = "fail"
        return verdict
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
        verdict.outcome = "inconclusive"
        verdict.reasons = short

    return verdict
