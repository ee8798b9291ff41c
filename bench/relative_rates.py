"""How often the relative-threshold tests decide wrongly, on simulated runs (no services).

``python -m bench relative_rates``: ``duration_s: "<= +0%"`` (margin 10 %) judged on the
spread of 5 stored runs, and ``avg_ms: "<= +0%"`` judged by Welch's t test on skewed
(log-normal) response times, each for an unchanged figure (A/A) and a regression of 30 %
(A/B): how often each FAILS (a false alarm for A/A) and PASSES (a missed regression for A/B).
Seeded: the same figures on every machine.
"""

from __future__ import annotations

import argparse
import random

from pytest_fwgates.bounds import judge, mean_support
from pytest_fwgates.thresholds import parse

from .common import Row

NO_REGRESSION = parse("<= +0%")


def _runs(rng: random.Random, cv: float, shift: float, trials: int) -> tuple[float, float]:
    fails = passes = 0
    for _ in range(trials):
        runs = [rng.gauss(100, 100 * cv) for _ in range(5)]
        value = rng.gauss(100 * (1 + shift), 100 * cv)
        judged = judge(
            "duration_s", NO_REGRESSION, value, None, 0.95, runs[-1], reference={"values": runs}
        )
        fails += judged.state == "fail"
        passes += judged.state == "pass"
    return fails / trials, passes / trials


def _means(rng: random.Random, n: int, shift: float, trials: int) -> tuple[float, float]:
    fails = passes = 0
    for _ in range(trials):
        base = [rng.lognormvariate(3, 0.8) for _ in range(n)]
        new = [rng.lognormvariate(3, 0.8) * (1 + shift) for _ in range(n)]
        judged = judge(
            "avg_ms",
            NO_REGRESSION,
            sum(new) / n,
            mean_support(new, "requests"),
            0.95,
            sum(base) / n,
            reference=mean_support(base, "requests"),
        )
        fails += judged.state == "fail"
        passes += judged.state == "pass"
    return fails / trials, passes / trials


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=400)
    args = parser.parse_args(argv)
    rng = random.Random(20261202)
    rows = []
    for cv in (0.02, 0.05, 0.15):
        aa_fail, aa_pass = _runs(rng, cv, 0.0, args.trials)
        _, ab_pass = _runs(rng, cv, 0.3, args.trials)
        print(
            f"5 runs, sd {cv:.0%} of the mean: A/A fail {aa_fail:.1%} pass {aa_pass:.1%}; "
            f"+30 % passed {ab_pass:.1%}"
        )
        rows.append(
            Row(
                f"relative_rates: one number per run, sd {cv:.0%}",
                f"A/A fail {aa_fail:.1%} pass {aa_pass:.1%}; +30 % passed {ab_pass:.1%}",
                "<= 5 %, <= 5 %",
                aa_fail <= 0.05 and ab_pass <= 0.05,
            )
        )
    for n in (300, 2000):
        aa_fail, aa_pass = _means(rng, n, 0.0, args.trials // 4)
        _, ab_pass = _means(rng, n, 0.3, args.trials // 4)
        print(
            f"means of {n} log-normal response times: A/A fail {aa_fail:.1%} pass "
            f"{aa_pass:.1%}; +30 % passed {ab_pass:.1%}"
        )
        rows.append(
            Row(
                f"relative_rates: Welch, {n} requests each side",
                f"A/A fail {aa_fail:.1%} pass {aa_pass:.1%}; +30 % passed {ab_pass:.1%}",
                "<= 5 %, <= 5 %",
                aa_fail <= 0.05 and ab_pass <= 0.05,
            )
        )
    return rows
