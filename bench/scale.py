"""Scale: loading 50,000 checks, deciding 50,000 results, reports for 10,000 and 50,000,
and the reports plus a signed handoff package for 10,000. Every result carries a counted
figure (availability over a few thousand probes, judged on its confidence bound when its check
ran): the reports hold it to its standard again and show its counts.

Each figure is the median of a few runs in a fresh process of the minimal venv; peak memory
(RSS) comes from a separate run of the same work, never timed. Targets: 50,000 checks load
in under 5 s, 50,000 results decide in under 0.2 s, verdict + JUnit + summary.json for
10,000 results in under 0.4 s and for 50,000 in under 2 s; the same for 10,000 plus a signed
handoff package (junit.xml, summary.json, summary.md, report.html, environment.json, MANIFEST.json
and MANIFEST.sig, every text through the redactor) in under 2 s and 200 MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__:
    from .common import Row, minimal_venv
else:  # run as a script in the minimal venv (worker mode)
    Row = minimal_venv = None  # type: ignore[assignment,misc]

FILES = 5  # a gate file is at most 1 MiB: 50,000 checks are spread over several gate folders


def _write_gate(root: Path, checks: int) -> list[Path]:
    folders = []
    per_file = checks // FILES
    for f in range(FILES):
        folder = root / f"gates{f}"
        folder.mkdir()
        lines = ["gate: scale", "title: scale", "criteria:"]
        for c in range(per_file // 100):
            lines.append(f"  c{f}-{c}:")
            lines.append(f"    title: criterion {f}-{c}")
            lines.append("    checks:")
            for i in range(100):
                lines.append(f'      - command: "true"\n        id: k{i}')
        (folder / "scale.yaml").write_text("\n".join(lines) + "\n")
        folders.append(folder)
    return folders


def _results(count: int) -> tuple[Any, list[Any]]:
    from pytest_fwgates.model import CheckResult, CheckSpec, Criterion, Gate, Outcome, Source
    from pytest_fwgates.thresholds import parse

    gate = Gate(name="scale", title="report scale", status="PRODUCTION_READY")
    out = []
    source = Source(Path("gates/scale.yaml"), 1)
    for index in range(count):
        crit_id = f"criterion-{index // 100}"
        criterion = gate.criteria.setdefault(crit_id, Criterion(id=crit_id, title=crit_id))
        check_id = f"command[check {index}]"
        limit = {"duration_s": parse("< 5s")}
        spec = CheckSpec("command", "true", check_id, "scale", crit_id, source, limit)
        criterion.checks.append(spec)
        failed = index % 97 == 0
        out.append(
            CheckResult(
                nodeid=f"gates/scale.yaml::{crit_id}::{check_id}",
                check_type="command",
                gate="scale",
                criterion=crit_id,
                check_id=check_id,
                outcome=Outcome.FAILED if failed else Outcome.PASSED,
                measured={"exit_status": 0, "duration_s": 6.1 if failed else 0.004},
                thresholds={"duration_s": "< 5s", "exit_status": "== 0"},
                message="duration_s = 6.1 s, expected < 5s" if failed else "",
                duration=0.004,
            )
        )
        _counted(out[-1], index)
    return gate, out


def _counted(result: Any, index: int) -> None:
    """A counted figure as a probing check leaves it: availability over 3000 probes and more,
    0 to 2 of them failed, its bound judged when the check ran (not timed here): the reports
    hold it to the standard again and show its counts."""
    from pytest_fwgates.bounds import count_support, judge
    from pytest_fwgates.thresholds import parse

    probes, failed = 3000 + index % 500 * 7, index % 3
    value = round((probes - failed) / probes * 100, 6)
    support = count_support(probes - failed, probes, "probes", "good")
    judge("availability_pct", parse("> 99.9%"), value, support)
    result.measured["availability_pct"] = value
    result.thresholds["availability_pct"] = "> 99.9%"
    result.support["availability_pct"] = support


def _worker(kind: str, count: int) -> dict[str, float]:
    """One measurement in this process; prints JSON."""
    from pytest_fwgates.waivers import WaiverSet

    figures: dict[str, float] = {}
    if kind == "load":
        from pytest_fwgates.loader import GateLoader

        with tempfile.TemporaryDirectory() as tmp:
            folders = _write_gate(Path(tmp), count)
            started = time.perf_counter()
            gate = GateLoader(folders).load("scale")
            figures["seconds"] = time.perf_counter() - started
            assert len(gate.checks()) == count, len(gate.checks())
    else:
        from pytest_fwgates.report.junit import write_junit
        from pytest_fwgates.report.summary import write_summary
        from pytest_fwgates.verdict import decide_all

        gate, results = _results(count)
        key = None
        if kind == "package":
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            key = Ed25519PrivateKey.generate()
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            decisions = decide_all([gate], results, WaiverSet.empty())
            decided = time.perf_counter()
            if kind in ("reports", "package"):
                write_junit(Path(tmp) / "gates.xml", decisions)
                write_summary(Path(tmp) / "summary.json", decisions, {"bench": "scale"})
            if kind == "package":
                _package(Path(tmp), decisions, key)
            done = time.perf_counter()
            if kind == "package":  # not timed: the package is whole and verifies
                from pytest_fwgates.integrity import verify_package

                assert key is not None
                assert verify_package(Path(tmp) / "package", public_key=key.public_key()).ok
        figures["seconds"] = (decided - started) if kind == "decide" else (done - started)
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's over exec
    with open("/proc/self/status", encoding="ascii") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    figures["rss_mib"] = peak_kib / 1024
    print(json.dumps(figures))
    return figures


def _package(folder: Path, decisions: list[Any], key: Any) -> None:
    """What --handoff-package adds after the run's reports: a signed package."""
    from pytest_fwgates.handoff import HandoffOptions, write_package
    from pytest_fwgates.redact import Redactor

    reports = {
        "junit.xml": (folder / "gates.xml").read_text(encoding="utf-8"),
        "summary.json": (folder / "summary.json").read_text(encoding="utf-8"),
    }
    write_package(
        HandoffOptions(folder / "package"),
        decisions,
        run_info={"bench": "scale"},
        environment={"started": "2026-01-01T00:00:00+00:00"},
        redactor=Redactor(["not-in-any-report-0123"]),
        rootdir=folder,
        key=key,
        reports=reports,
    )


def _run(python: Path, kind: str, count: int) -> dict[str, float]:
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--worker", kind, str(count)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    if done.returncode != 0:
        raise SystemExit(f"scale worker {kind} {count} failed:\n{done.stderr[-3000:]}")
    data: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


CASES = [
    ("load", 50_000, 5.0, "load 50,000 checks"),
    ("decide", 50_000, 0.2, "decide 50,000 results"),
    ("reports", 10_000, 0.4, "verdict+JUnit+summary 10,000"),
    ("reports", 50_000, 2.0, "verdict+JUnit+summary 50,000"),
    ("package", 10_000, 2.0, "reports + signed package 10,000"),
]
#: peak RSS target of the package case (MiB)
PACKAGE_RSS = 200.0


def main(argv: list[str] | None = None) -> list[Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "COUNT"))
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], int(args.worker[1]))
        return []
    python = minimal_venv()
    rows = []
    for kind, count, target, label in CASES:
        seconds = statistics.median(_run(python, kind, count)["seconds"] for _ in range(args.runs))
        rss = _run(python, kind, count)["rss_mib"]  # a pass of its own for memory
        print(f"{label}: {seconds:.3f} s (median of {args.runs}), peak RSS {rss:.0f} MiB")
        rows.append(
            Row(
                f"scale: {label}",
                f"{seconds:.3f} s, peak RSS {rss:.0f} MiB",
                f"< {target:g} s" + (f", < {PACKAGE_RSS:g} MB" if kind == "package" else ""),
                seconds < target and (kind != "package" or rss < PACKAGE_RSS),
            )
        )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
