"""The whole story in one command: start the example stack, gate it, stop it.

    python -m examples.demo [--dir DIR] [--timeout 300] [--reports reports]

Starts the stack (nginx, TLS, Prometheus, the app in v1) on free loopback ports, makes an
Ed25519 key pair (``fwgates keygen``), runs

    python -m pytest -p no:cacheprovider --gate=production-readiness \\
        --gate-dir=examples/gates --gate-junit=reports/gates.xml \\
        --handoff-package=reports/handoff --handoff-archive \\
        --handoff-sign-key=reports/keys/handoff.pem --handoff-deliverable=NAME=PATH ... \\
        examples/gates

with the stack's FWGATES_* variables in its environment (bounded in time), shows its output with
the verdict table, stops the stack whatever happens, and ends with

    fwgates verify reports/handoff --public-key reports/keys/handoff.pem.pub \\
        --require-verdict PASSED

Exits with pytest's exit status, or verify's when the gate passed.
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

from pytest_fwgates.integrity import keygen

from .stack import Stack, StackError

ROOT = Path(__file__).resolve().parents[1]
GATE = "production-readiness"
EXIT_INTERRUPTED = 2  # pytest's own status for a run that did not finish


def _plugin_installed() -> bool:
    return any(ep.name == "fwgates" for ep in metadata.entry_points(group="pytest11"))


def key_paths(reports: Path) -> tuple[Path, Path]:
    return reports / "keys" / "handoff.pem", reports / "keys" / "handoff.pem.pub"


def deliverables(stack: Stack) -> list[str]:
    """The handoff deliverables the example has (the performance baseline is missing)."""
    layout = stack.layout
    given = {
        "production-system": ROOT / "examples" / "webapp" / "app.py",
        "infrastructure-documentation": ROOT / "examples" / "README.md",
        "monitoring-configuration": layout.prom_dir / "prometheus.yml",
        "security-configuration": layout.nginx_dir / "nginx.conf",
        "operations-procedures": ROOT / "examples" / "deploy",
        "incident-response": layout.prom_dir / "rules.yml",
    }
    return [f"--handoff-deliverable={name}={path}" for name, path in given.items()]


def gate_command(reports: Path, extra: list[str] | None = None) -> list[str]:
    private, _ = key_paths(reports)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--gate={GATE}",
        "--gate-dir=examples/gates",
        f"--gate-junit={reports / 'gates.xml'}",
        f"--handoff-package={reports / 'handoff'}",
        "--handoff-archive",
        f"--handoff-sign-key={private}",
        *(extra or []),
        # the gate's own folder as the path: the project's test suite is not collected
        "examples/gates",
    ]
    if not _plugin_installed():  # a source checkout without `pip install -e .`
        command[3:3] = ["-p", "pytest_fwgates.plugin"]
    return command


def verify(package: Path, public: Path) -> int:
    """``fwgates verify`` on the package, as the next stage of a pipeline would run it."""
    command = [sys.executable, "-m", "pytest_fwgates.cli", "verify", str(package),
               "--public-key", str(public), "--require-verdict", "PASSED"]  # fmt: skip
    print(f"\n== verifying the signed handoff package\n$ {shlex.join(command)}", flush=True)
    try:
        done = subprocess.run(command, cwd=ROOT, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        print("error: fwgates verify did not finish within 120s")
        return EXIT_INTERRUPTED
    print(f"== fwgates verify exit status: {done.returncode}")
    return done.returncode


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

        private, public = key_paths(reports)
        if not private.exists():
            print(f"\n== making the key pair that signs the handoff package: {private}")
            fingerprint = keygen(private, public)
            print(f"   public key {public} ({fingerprint})")
        command = gate_command(reports, deliverables(stack))
        print(f"\n== running the {GATE} gate (at most {args.timeout:.0f}s)", flush=True)
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
        handoff = reports / "handoff"
        for path in (reports / "gates.xml", reports / "summary.json", handoff,
                     handoff / "report.html", reports / "handoff.tar.gz"):  # fmt: skip
            print(f"   {path}" + ("" if path.exists() else " (not written)"))
        if stack.layout.audit_log.exists():
            reports.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stack.layout.audit_log, reports / "audit.log")
            print(f"   {reports / 'audit.log'} (deploy and rollback audit records)")
        print(f"\n== gate run exit status: {status}")
        verified = verify(reports / "handoff", public)
        return status or verified
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
