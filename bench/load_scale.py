"""Load and verdict scale: one gate file of N checks loaded, N results decided.

Loading: a user file extending ``production-readiness`` with N command checks spread over
its criteria (one of them holding half), through :class:`GateLoader`, with libyaml and
with the pure-Python parser. Deciding: N results in criteria of 100 checks and in one
criterion of N checks. Prints the median of ``--repeat`` runs of each, in seconds.
No tracemalloc: the figures are times only.

    python -m bench.load_scale --checks 50000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_fwgates import yamlsrc
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, CheckSpec, Criterion, Gate, Outcome, Source
from pytest_fwgates.thresholds import parse
from pytest_fwgates.verdict import decide_all
from pytest_fwgates.waivers import WaiverSet

CRITERIA = [
    "infrastructure-validation",
    "security-compliance",
    "performance-verification",
    "monitoring-operational",
    "rollback-capability",
]


def write_gate(folder: Path, checks: int) -> Path:
    lines = ["gate: production-readiness", "criteria:"]
    half = checks // 2
    per_other = max(1, (checks - half) // (len(CRITERIA) - 1))
    counts = [half] + [per_other] * (len(CRITERIA) - 1)
    counts[-1] += checks - sum(counts)
    index = 0
    for criterion, count in zip(CRITERIA, counts, strict=True):
        lines.append(f"  {criterion}:")
        for _ in range(count):
            lines.append(f"    - command: echo {index}")
            lines.append("      expect: {exit_status: 0}")
            index += 1
    path = folder / "production-readiness.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def results_for(count: int, per_criterion: int) -> tuple[Gate, list[CheckResult]]:
    gate = Gate(name="scale", title="scale", status="PRODUCTION_READY")
    source = Source(Path("gates/scale.yaml"), 1)
    out = []
    for index in range(count):
        crit_id = f"c-{index // per_criterion}"
        criterion = gate.criteria.setdefault(crit_id, Criterion(id=crit_id, title=crit_id))
        check_id = f"command[echo {index}]"
        spec = CheckSpec("command", "true", check_id, "scale", crit_id, source)
        spec.thresholds = {"exit_status": parse("== 0")}
        criterion.checks.append(spec)
        out.append(
            CheckResult(
                nodeid=f"gates/scale.yaml::{crit_id}::{check_id}",
                gate="scale",
                criterion=crit_id,
                check_id=check_id,
                outcome=Outcome.PASSED,
                measured={"exit_status": 0, "duration_s": 0.004},
                thresholds={"exit_status": "== 0"},
            )
        )
    return gate, out


def median_time(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
        folder = Path(tmp) / "gates"
        folder.mkdir()
        path = write_gate(folder, args.checks)
        size = path.stat().st_size

        def load() -> None:
            gate = GateLoader([folder], environ={}).load("production-readiness")
            assert len(gate.checks()) == args.checks

        fast = median_time(load, args.repeat)
        saved = yamlsrc._CLoader
        yamlsrc._CLoader = None
        try:
            pure = median_time(load, args.repeat)
        finally:
            yamlsrc._CLoader = saved
    print(f"load {args.checks} checks ({size} bytes), libyaml:      {fast:.3f} s")
    print(f"load {args.checks} checks ({size} bytes), pure Python:  {pure:.3f} s")
    for per in (100, args.checks):
        gate, results = results_for(args.checks, per)
        took = median_time(
            lambda gate=gate, results=results: decide_all([gate], results, WaiverSet.empty()),
            args.repeat,
        )
        print(f"decide {args.checks} results, {per} per criterion:   {took:.3f} s")


if __name__ == "__main__":
    main()
