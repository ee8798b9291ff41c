"""Report scale: 10,000 check results to a verdict, the gate JUnit, summary.json and a signed
handoff package (junit.xml, summary.json, summary.md, report.html, environment.json,
MANIFEST.json, MANIFEST.sig), then ``fwgates verify`` on it.

Times are taken without tracemalloc (median of ``--repeat`` runs); the peak resident memory
is measured in a separate pass, in a fresh process that does the same work once. The total
(reports plus the signed package) is printed last; target: under 2 s and 200 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_fwgates.handoff import HandoffOptions, write_package
from pytest_fwgates.integrity import keygen, load_private_key, load_public_key, verify_package
from pytest_fwgates.model import CheckResult, CheckSpec, Criterion, Gate, Outcome, Source
from pytest_fwgates.redact import Redactor
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


def _once(results: int, folder: Path, key_path: Path) -> dict[str, float]:
    """One pass: what a gate run with --handoff-package does after its checks. Seconds."""
    gate, checks = _gate(results, per_criterion=100)
    key = load_private_key(key_path)
    redactor = Redactor(["not-in-any-report-0123"])
    marks = [("start", time.perf_counter())]
    decisions = decide_all([gate], checks, WaiverSet.empty())
    marks.append(("verdict", time.perf_counter()))
    reports = folder / "reports"
    write_junit(reports / "gates.xml", decisions)
    marks.append(("gate JUnit", time.perf_counter()))
    run_info = {"bench": "report_scale", "finished": "2026-01-01T00:00:00+00:00"}
    write_summary(reports / "summary.json", decisions, run_info)
    marks.append(("summary.json", time.perf_counter()))
    texts = {
        "junit.xml": (reports / "gates.xml").read_text(encoding="utf-8"),
        "summary.json": (reports / "summary.json").read_text(encoding="utf-8"),
    }
    write_package(
        HandoffOptions(folder / "package"),
        decisions,
        run_info=run_info,
        environment={"started": "2026-01-01T00:00:00+00:00"},
        redactor=redactor,
        rootdir=folder,
        key=key,
        reports=texts,
    )
    marks.append(("signed package", time.perf_counter()))
    return {name: end - marks[i][1] for i, (name, end) in enumerate(marks[1:])}


def _peak_rss_mib(results: int) -> float:
    """Peak resident memory of a fresh process that does one pass (MiB)."""
    code = (
        "import resource, sys, tempfile; from pathlib import Path; "
        "from bench import report_scale as r; "
        "d = Path(tempfile.mkdtemp(prefix='fwgates-bench-rss-')); "
        "r.keygen(d / 'k.pem', d / 'k.pub'); "
        f"r._once({results}, d, d / 'k.pem'); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
        base = Path(tmp)
        keygen(base / "k.pem", base / "k.pub")
        for index in range(args.repeat):
            folder = base / f"run-{index}"
            folder.mkdir()
            runs.append(_once(args.results, folder, base / "k.pem"))
        package = base / f"run-{args.repeat - 1}" / "package"
        size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
        started = time.perf_counter()
        verified = verify_package(package, public_key=load_public_key(base / "k.pub"))
        verify_s = time.perf_counter() - started
        manifest = json.loads((package / "MANIFEST.json").read_text())
    rss = _peak_rss_mib(args.results)
    medians = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    for name, seconds in medians.items():
        print(f"{name + ':':16}{seconds:6.2f} s")
    print(f"{'fwgates verify:':16}{verify_s:6.2f} s ({'ok' if verified.ok else verified.problems})")
    print(f"package:        {size / 1e6:6.1f} MB in {len(manifest['files']) + 2} files")
    total = sum(medians.values())
    print(
        f"{args.results} results to reports plus a signed package: {total:.2f} s "
        f"(median of {args.repeat}), peak RSS {rss:.0f} MiB (target: < 2 s, < 200 MB)"
    )


if __name__ == "__main__":
    main()
