"""Baseline comparison fidelity: how often a relative latency threshold (``p95_ms: "<= +0%"``)
fails an unchanged service (A/A false alarms) and how often it fails a service 30 % slower
(A/B detection), each judged against the run before it as a stored baseline.

    python -m bench.baseline_ab [--runs 20] [--ms 20] [--slower 1.3] [--users 4] [--duration 2]
                                [--busy 0]

Against the example stack's app, ``GET /work?ms=N`` (the app sleeps N ms). The runs alternate
A, B, A, B, ... with one more A first: A is ``ms``, B is ``ms * slower``. Each A run is judged
against the A run before it (A/A), each B run against the A run before it (A/B), by the load
check's own judgement (``checks.base._judge``) with the previous run's value and exact
histogram as its baseline, as a stored run gives them. Targets: A/A false alarms <= 5 %,
A/B detection >= 95 %. The measured p95 ratio B / A is printed beside them (the app's own
overhead makes it a little less than ``slower``).

``--busy N`` starts N processes that spin in bursts of random length (0.1-1.5 s on, as long
off, from a fixed seed) for the whole bench: the load bursts of a shared machine, which move
one run's tail and not the next one's, made on purpose.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from examples.stack import Stack
from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Outcome, Source

from .common import Row, print_table

KEY = "p95_ms"
#: one busy process: spins and sleeps in turn, each for 0.1-1.5 s, from its seed
_BUSY = """
import random, sys, time
rng = random.Random(int(sys.argv[1]))
while True:
    end = time.monotonic() + rng.uniform(0.1, 1.5)
    while time.monotonic() < end:
        pass
    time.sleep(rng.uniform(0.1, 1.5))
"""


@contextlib.contextmanager
def _busy(count: int) -> Iterator[None]:
    """``count`` processes making load bursts, stopped (by their ids) at the end."""
    procs = [subprocess.Popen([sys.executable, "-c", _BUSY, str(seed)]) for seed in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)


def _run(
    folder: Path,
    url: str,
    ms: int,
    args: argparse.Namespace,
    index: int,
    baseline: CheckResult | None,
) -> CheckResult:
    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    settings: dict[str, Any] = {
        "load": url,
        "id": f"ab-{index}",
        "paths": [f"/work?ms={ms}"],
        "users": args.users,
        "spawn_rate": args.users,
        "duration": args.duration,
        "expect": {KEY: "<= +0%"},
    }
    spec = loader.spec_from_mapping(None, None, settings, Source(folder / "gate.yaml", 1))

    def value(_spec: Any, key: str) -> float | None:
        return None if baseline is None else float(baseline.measured[key])

    def distribution(_spec: Any, key: str) -> dict[str, Any]:
        if baseline is None:
            return {}
        return {"histogram": dict(baseline.support[key]["histogram"])}

    context = CheckContext(
        rootdir=folder,
        evidence_root=folder / "evidence",
        baseline_lookup=value,
        baseline_distribution_lookup=distribution,
    )
    result = run_check(registry.get("load")(spec, context), "bench-baseline-ab")
    if KEY not in result.measured or "histogram" not in result.support.get(KEY, {}):
        raise SystemExit(f"load run {index} measured no {KEY}: {result.message}")
    return result


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_ab")
    parser.add_argument("--runs", type=int, default=20, help="A/A and A/B comparisons each")
    parser.add_argument("--ms", type=int, default=20, help="the A service's sleep per request")
    parser.add_argument("--slower", type=float, default=1.3, help="B's sleep over A's")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument(
        "--busy", type=int, default=0, help="processes making load bursts during the bench"
    )
    args = parser.parse_args(argv)
    slow_ms = round(args.ms * args.slower)
    print(
        f"load average {os.getloadavg()[0]:.1f}; A = /work?ms={args.ms}, B = /work?ms={slow_ms}, "
        f"{args.users} users for {args.duration:g} s per run, {args.runs} A/A and "
        f"{args.runs} A/B comparisons, {args.busy} busy processes"
    )
    aa: list[Outcome] = []
    ab: list[Outcome] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-ab-") as tmp:
        folder = Path(tmp)
        with Stack(folder / "stack") as stack, _busy(args.busy):
            url = stack.urls["app"]
            previous = _run(folder, url, args.ms, args, 0, None)
            for index in range(1, args.runs + 1):
                slow = _run(folder, url, slow_ms, args, 2 * index - 1, previous)
                same = _run(folder, url, args.ms, args, 2 * index, previous)
                ab.append(slow.outcome)
                aa.append(same.outcome)
                ratios.append(slow.measured[KEY] / previous.measured[KEY])
                for what, result in (("A/B", slow), ("A/A", same)):
                    shown = result.message or result.support[KEY].get("shown", "")
                    print(f"{index:2d} {what}: {result.outcome.value:<12} {shown}", flush=True)
                previous = same
    false_alarms = sum(o is Outcome.FAILED for o in aa) / len(aa)
    detected = sum(o is Outcome.FAILED for o in ab) / len(ab)
    other = [o.value for o in aa + ab if o not in (Outcome.FAILED, Outcome.PASSED)]
    print(
        f"A/A false alarms {false_alarms:.0%}, A/B detection {detected:.0%} "
        f"(measured p95 B/A median {statistics.median(ratios):.2f}, "
        f"min {min(ratios):.2f}); neither passed nor failed: {other or 'none'}"
    )
    return [
        Row("baseline: A/A false alarms (p95 <= +0%)", f"{false_alarms:.0%}", "<= 5 %",
            false_alarms <= 0.05),
        Row(f"baseline: A/B detection (p95 x{statistics.median(ratios):.2f})",
            f"{detected:.0%}", ">= 95 %", detected >= 0.95),
    ]  # fmt: skip


if __name__ == "__main__":
    print_table(main())
