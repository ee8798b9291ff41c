"""Canary fidelity: faulty builds deployed as a canary of the example stack at a small weight,
judged canary against stable by the deploy check; how often each is caught, how fast, and how
many bad answers users got first; how often a good build is aborted by mistake, promoted, or
stopped unproven (the evidence did not show it within the allowances by ``max_pause``).

    python -m bench.canary [--runs 20] [--weight 10] [--pause 20] [--max-pause 60] [--every 2]
                           [--allowance 0.5%] [--builds errors=5%,errors=50%,delay=5ms,good]

Each run is one ``deploy`` check as a gate file would give it: ``examples/deploy/deploy-canary``
at ``--weight`` % then 100 %, the prober on ``/work?ms=10`` (an application request of about
10 ms, so ``delay=5ms`` is +50 % latency) every 10 ms, the analysis ``failure_rate: {max_increase:
--allowance}`` and ``p95_ms: {max_increase: "+20%"}`` looking every ``--every`` seconds, the step
watched until proven up to ``--max-pause`` seconds, and ``on_abort: examples/deploy/rollback``.
After each run v1 serves again (the rollback, or a blue/green deploy after a promoted canary).

Figures per build: detection rate (aborted for a regression in the analysed step), median
``detect_s``, median ``bad_answers``, median ``rollback_s``, the share promoted and the share
stopped unproven; for the good build the aborts are false ones. Targets: detection >= 95 %, a
faulty build never promoted, false aborts <= 5 %.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from examples.stack import Stack
from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Source

from .common import ROOT, Row, print_table

PROBE_PATH = "/work?ms=10"


def _run(stack: Stack, folder: Path, build: str, args: argparse.Namespace) -> CheckResult:
    fault = "" if build == "good" else f" --fault {build}"
    settings: dict[str, Any] = {
        "deploy": f"examples/deploy/deploy-canary v2{fault}",
        "health": stack.urls["app"] + PROBE_PATH,
        "version": {"json": "version", "expect": "v2"},
        "interval": "10ms",
        "settle_timeout": "5s",
        "steps": [{"weight": args.weight, "pause": f"{args.pause}s"}, {"weight": 100}],
        "analysis": {
            "failure_rate": {"max_increase": args.allowance},
            "p95_ms": {"max_increase": "+20%"},
            "every": f"{args.every}s",
            "max_pause": f"{args.max_pause}s",
        },
        "on_abort": "examples/deploy/rollback",
        "timeout": args.max_pause + 120,
    }
    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    spec = loader.spec_from_mapping(None, None, settings, Source(folder / "gate.yaml", 1))
    context = CheckContext(rootdir=ROOT, redactor=loader.redactor, evidence_root=folder)
    return run_check(registry.get("deploy")(spec, context), "bench-canary")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):g}" if values else "-"


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench.canary")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--weight", type=float, default=10.0, help="the canary's share, %%")
    parser.add_argument("--pause", type=float, default=20.0, help="the analysed step's pause, s")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between looks")
    parser.add_argument(
        "--max-pause", type=float, default=60.0, help="the longest the step is watched, s"
    )
    parser.add_argument("--allowance", default="0.5%", help="failure_rate max_increase")
    parser.add_argument("--builds", default="errors=5%,errors=50%,delay=5ms,good")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    busy = load > 1.0
    print(
        f"{args.runs} runs per build at {args.weight:g} % for {args.pause:g} s (until proven: "
        f"up to {args.max_pause:g} s), failure rate allowance {args.allowance}, a look every "
        f"{args.every:g} s, probing {PROBE_PATH} every 10 ms; load average {load:.2f} on "
        f"{os.cpu_count()} cores at the start" + (" (BUSY: figures not final)" if busy else ""),
        flush=True,
    )

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a timeout, a cancelled job): still stop the stack

    signal.signal(signal.SIGTERM, interrupt)
    rows: list[Row] = []
    note = " (busy)" if busy else ""
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
        stack = Stack(Path(tmp) / "stack")
        os.environ["FWGATES_STACK_DIR"] = str(stack.layout.root)
        os.environ["FWGATES_PYTHON"] = sys.executable
        try:
            stack.up()
            print(
                f"\n  {'build':<12} {'aborted':>8} {'detect_s':>9} {'bad':>5} {'rollback_s':>10} "
                f"{'promoted':>9} {'unproven':>9}"
            )
            for build in args.builds.split(","):
                aborted, promoted, unproven = 0, 0, 0
                detect: list[float] = []
                bad: list[float] = []
                rollback: list[float] = []
                other: list[str] = []
                started = time.monotonic()
                for run in range(args.runs):
                    stack.deploy("v1", "bluegreen")  # v1 serves alone before each run
                    folder = Path(tmp) / f"{build.replace('%', 'pct')}-{run}"
                    folder.mkdir()
                    result = _run(stack, folder, build, args)
                    m = result.measured
                    reason = str(m.get("abort_reason", result.message))
                    if m.get("aborted") == 0 and m.get("version_after") == "v2":
                        promoted += 1
                    elif reason.startswith("unproven"):
                        unproven += 1
                        other.append(reason[:200])
                    elif m.get("aborted") == 1 and m.get("aborted_at_step") == 1:
                        aborted += 1
                        if "detect_s" in m:
                            detect.append(float(m["detect_s"]))
                        bad.append(float(m.get("bad_answers", 0)))
                        if "rollback_s" in m:
                            rollback.append(float(m["rollback_s"]))
                        if build == "good":
                            other.append(reason[:200])
                    else:
                        other.append(f"{result.outcome.name}: {result.message[:200]}")

                def pct(n: int) -> str:
                    return f"{100.0 * n / args.runs:.0f}%"

                print(
                    f"  {build:<12} {pct(aborted):>8} {_median(detect):>9} {_median(bad):>5} "
                    f"{_median(rollback):>10} {pct(promoted):>9} {pct(unproven):>9}   "
                    f"({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
                for why in other[:3]:
                    false = build == "good" and not why.startswith("unproven")
                    print(f"      {'(false abort) ' if false else ''}{why}")
                rate = 100.0 * aborted / args.runs
                if build == "good":
                    rows.append(
                        Row(
                            f"canary good at {args.weight:g}%{note}",
                            f"false aborts {rate:.0f} % ({aborted}/{args.runs}), promoted "
                            f"{pct(promoted)}, unproven {pct(unproven)}",
                            "false aborts <= 5 %",
                            rate <= 5.0,
                        )
                    )
                else:
                    rows.append(
                        Row(
                            f"canary {build} at {args.weight:g}%{note}",
                            f"caught {rate:.0f} %, detect {_median(detect)} s, bad "
                            f"{_median(bad)}, promoted {promoted}",
                            ">= 95 %, never promoted",
                            rate >= 95.0 and promoted == 0,
                        )
                    )
        finally:
            stack.down()
    return rows


if __name__ == "__main__":
    print_table(main(sys.argv[1:]))
