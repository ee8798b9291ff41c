"""Report scale: 10,000 check results to a verdict, the gate JUnit and summary.json.

Prints seconds and peak Python memory (tracemalloc) for each step, and the total last.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from pytest_fwgates.model import CheckResult, CheckSpec, Criterion, Gate, Outcome, Source
from pytest_fwgates.report.junit import write_junit
from pytest_fwgates.report.summary import write_summary
from pytest_fwgates.thresholds import parse
from pytest_fwgates.verdict import decide_all
from pytest_fwgates.waivers import WaiverSet


def _gate(results: int, per_criterion: int) -> tuple[Gate, list[CheckResult]]:
    gate = Gate(name="scale", title="report scale", status="PRODUCTION_READY")
    out: list[CheckResult] = []
    source = Source(Path("gates/scale.yaml"), 1)
    for index in range(results):
        crit_id = f"criterion-{index // per_criterion}"
        criterion = gate.criteria.setdefault(crit_id, Criterion(id=crit_id, title=crit_id))
        check_id = f"command[check {index}]"
        threshold = {"duration_s": parse("< 5s")}
        spec = CheckSpec("command", "true", check_id, "scale", crit_id, source, threshold)
        criterion.checks.append(spec)
        failed = index % 97 == 0
        out.append(
            CheckResult(
                nodeid=f"gates/scale.yaml::{crit_id}::{check_id}",
                gate="scale",
                criterion=crit_id,
                check_id=check_id,
                outcome=Outcome.FAILED if failed else Outcome.PASSED,
                measured={"exit_status": 0.0, "duration_s": 6.1 if failed else 0.004},
                thresholds={"duration_s": "< 5s", "exit_status": "== 0"},
                message="duration_s = 6.1 s, expected < 5s" if failed else "",
                duration=0.004,
            )
        )
    return gate, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=int, default=10_000)
    args = parser.parse_args(argv)
    gate, results = _gate(args.results, per_criterion=100)
    tracemalloc.start()
    started = time.perf_counter()
    decisions = decide_all([gate], results, WaiverSet.empty())
    decided = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
        write_junit(Path(tmp) / "gates.xml", decisions)
        junit = time.perf_counter()
        write_summary(Path(tmp) / "summary.json", decisions, {"bench": "report_scale"})
        summary = time.perf_counter()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"verdict:      {decided - started:6.2f} s")
    print(f"gate JUnit:   {junit - decided:6.2f} s")
    print(f"summary.json: {summary - junit:6.2f} s")
    print(f"output size:  {size / 1e6:6.1f} MB")
    print(f"{args.results} results: {summary - started:.2f} s, peak memory {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
