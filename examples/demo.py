"""The whole story in one command: start the example stack, gate it, stop it.

    python -m examples.demo [--dir DIR] [--timeout 300] [--reports reports]

Starts the stack (nginx, TLS, Prometheus, the app in v1) on free loopback ports, runs

    python -m pytest -p no:cacheprovider --gate=production-readiness \\
        --gate=operations-excellence --gate-dir=examples/gates \\
        --gate-junit=reports/gates.xml examples/gates

with the stack's FWGATES_* variables in its environment (bounded in time), shows its output with
the verdict table, and stops the stack whatever happens. Exits with pytest's exit status.
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
#: production readiness (phase 7), then operations excellence (phase 8) measured from the
#: stack's Prometheus, a probe window and the sample records in examples/records
GATES = ("production-readiness", "operations-excellence")
EXIT_INTERRUPTED = 2  # pytest's own status for a run that did not finish


def _plugin_installed() -> bool:
    return any(ep.name == "fwgates" for ep in metadata.entry_points(group="pytest11"))


def gate_command(reports: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        *(f"--gate={gate}" for gate in GATES),
        "--gate-dir=examples/gates",
        f"--gate-junit={reports / 'gates.xml'}",
        # the gate's own folder as the path: the project's test suite is not collected
        "examples/gates",
    ]
    if not _plugin_installed():  # a source checkout without `pip install -e .`
        command[3:3] = ["-p", "pytest_fwgates.plugin"]
    return command


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

        command = gate_command(reports)
        names = " and ".join(GATES)
        print(f"\n== running the {names} gates (at most {args.timeout:.0f}s)", flush=True)
        print(f"$ {shlex.join(command)}", flush=True)
        try:
            completed = subprocess.run(
                command,
                cwd=ROOT,
                env={**os.environ, **env_vars},
                timeout=args.timeout,
                check=False,
            )
            status = completed.returncode
        except subprocess.TimeoutExpired:
            print(f"\nerror: the gate run did not finish within {args.timeout:.0f}s")
            status = EXIT_INTERRUPTED

        print("\n== reports")
        for path in (reports / "gates.xml", reports / "summary.json"):
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
