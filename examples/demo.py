"""The whole story in one command: start the example stack, gate it, stop it.

    python -m examples.demo [--dir DIR] [--timeout 300] [--reports reports]

Starts the stack (nginx, TLS, Prometheus, the app in v1) on free loopback ports, runs

    python -m pytest -p no:cacheprovider --gate=production-readiness \\
        --gate-dir=examples/gates --gate-junit=reports/gates.xml examples/gates

then the same for operations-excellence (reports in reports/operations-excellence/), with the
stack's FWGATES_* variables in their environment (bounded in time), shows their output with the
verdict tables, and stops the stack whatever happens. Exits with pytest's exit status, except
that operations-excellence ending HUMAN_REVIEW_REQUIRED (6) is the expected outcome: the demo
stores no performance baseline, so its gate holds p95 to an absolute bound instead of the
catalog's "no regression against the baseline", and a loosened standard needs a person.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from .stack import Stack, StackError

ROOT = Path(__file__).resolve().parents[1]
GATE = "production-readiness"
#: phase 8, measured from the stack's Prometheus, a probe window and examples/records
OPERATIONS_GATE = "operations-excellence"
EXIT_HUMAN_REVIEW = 6
EXIT_INTERRUPTED = 2  # pytest's own status for a run that did not finish


def _plugin_installed() -> bool:
    return any(ep.name == "fwgates" for ep in metadata.entry_points(group="pytest11"))


def gate_command(reports: Path, gate: str = GATE) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--gate={gate}",
        "--gate-dir=examples/gates",
        f"--gate-junit={reports / 'gates.xml'}",
        # the gate's own folder as the path: the project's test suite is not collected
        "examples/gates",
    ]
    if not _plugin_installed():  # a source checkout without `pip install -e .`
        command[3:3] = ["-p", "pytest_fwgates.plugin"]
    return command


def _run_gate(gate: str, reports: Path, env_vars: dict[str, str], timeout: float) -> int:
    command = gate_command(reports, gate)
    print(f"\n== running the {gate} gate (at most {timeout:.0f}s)", flush=True)
    print(f"$ {shlex.join(command)}", flush=True)
    try:
        completed = subprocess.run(
            command, cwd=ROOT, env={**os.environ, **env_vars}, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"\nerror: the {gate} run did not finish within {timeout:.0f}s")
        return EXIT_INTERRUPTED
    return completed.returncode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    parser.add_argument("--dir", help="stack directory (default: a new temporary directory)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound of the gate run (s)")
    parser.add_argument("--reports", default="reports", help="folder of the gate reports")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stack_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="fwgates-demo-"))
    reports = Path(args.reports)
    if not reports.is_absolute():
        reports = ROOT / reports
    stack = Stack(stack_dir)
    try:
        print(f"== starting the example stack in {stack.dir}", flush=True)
        env_vars = stack.up()
        for key, value in env_vars.items():
            print(f"   {key}={value}")

        status = _run_gate(GATE, reports, env_vars, args.timeout)
        operations_reports = reports / OPERATIONS_GATE
        operations = _run_gate(OPERATIONS_GATE, operations_reports, env_vars, args.timeout)
        if operations == EXIT_HUMAN_REVIEW:
            print(
                f"\n   {OPERATIONS_GATE} needs human review, as expected here: the demo stores no"
                "\n   performance baseline, so performance-optimization holds p95 to an absolute"
                "\n   bound instead of 'no regression against the baseline'."
            )
        elif status == 0:
            status = operations

        print("\n== reports")
        for folder in (reports, operations_reports):
            for path in (folder / "gates.xml", folder / "summary.json"):
                print(f"   {path}" + ("" if path.exists() else " (not written)"))
        if stack.layout.audit_log.exists():
            reports.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stack.layout.audit_log, reports / "audit.log")
            print(f"   {reports / 'audit.log'} (deploy and rollback audit records)")
        print(f"\n== gate run exit status: {status}")
        return status
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        print("== stopping the example stack", flush=True)
        try:
            stack.down()
        finally:
            if not args.dir:
                shutil.rmtree(stack_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
