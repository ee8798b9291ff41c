"""``fwgates baseline list|show|compare``: stored baseline runs and their trend."""

from __future__ import annotations

import argparse
import math
import sys

from .baseline import BaselineRun, BaselineStore, reference
from .thresholds import format_value

__all__ = ["baseline_command"]

#: figures shown when --value is not given (those a run has)
MAIN_VALUES = ("rps", "p50_ms", "p95_ms", "p99_ms", "failure_ratio", "duration_s", "recovery_s")


def _commit(run: BaselineRun) -> str:
    commit = run.commit.get("id") or "-"
    return commit[:8] + ("+" if run.commit.get("dirty") else "")


def _values(runs: list[BaselineRun], wanted: list[str]) -> list[str]:
    if wanted:
        return wanted
    present = {key for run in runs for key in run.values}
    main = [key for key in MAIN_VALUES if key in present]
    return main or sorted(present)[:6]


def _matching(store: BaselineStore, pattern: str) -> list[tuple[str, list[BaselineRun]]]:
    found = list(store.checks())
    exact = [(key, runs) for key, runs in found if key == pattern]
    return exact or [(key, runs) for key, runs in found if pattern in key]


def _shown(key: str, value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else format_value(key, value)


def baseline_command(args: argparse.Namespace) -> int:
    store = BaselineStore(args.dir)
    out = sys.stdout
    if args.action == "list":
        checks = list(store.checks())
        if not checks:
            out.write(f"no baseline runs in {store.root}\n")
            return 0
        for key, runs in checks:
            newest = runs[-1]
            out.write(
                f"{key}: {len(runs)} run(s), newest #{newest.number} {newest.saved} "
                f"commit {_commit(newest)} target {newest.target}\n"
            )
        return 0
    matches = _matching(store, args.check)
    if not matches:
        sys.stderr.write(f"fwgates: no baseline runs match {args.check!r} in {store.root}\n")
        return 1
    for key, runs in matches:
        values = _values(runs, args.value)
        out.write(f"{key}\n")
        if args.action == "show":
            out.write("  #     saved                      commit     " + "  ".join(values) + "\n")
            for run in runs:
                shown = "  ".join(_shown(v, run.values.get(v)) for v in values)
                out.write(f"  {run.number:<5} {run.saved:<26} {_commit(run):<10} {shown}\n")
            continue
        newest, before = runs[-1], runs[:-1]
        if args.compare == "last":
            how = "the run before"
        else:
            used = min(args.last, len(before))
            how = f"the median of the {used} run(s) before"
            if used < args.last:
                # say what the reference really is: fewer runs than asked for exist
                how += f" (--last {args.last} asked for more; only {len(before)} earlier)"
        out.write(f"  newest #{newest.number} ({newest.saved}) against {how}\n")
        if not before:
            out.write("  no earlier run to compare with\n")
            continue
        for value in values:
            ref = reference(before, value, args.compare, args.last)
            now = newest.values.get(value)
            if ref is None or now is None:
                out.write(f"  {value}: {_shown(value, now)} (no reference)\n")
                continue
            change = f"{(now - ref) / ref * 100:+.1f}%" if ref else "n/a"
            out.write(f"  {value}: {_shown(value, ref)} -> {_shown(value, now)} ({change})\n")
    return 0
