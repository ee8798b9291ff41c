"""Stored baselines: numbered JSON runs of measured figures, per gate and check.

Laid out the way pytest-benchmark stores its runs (``storage/file.py``): one folder per check,
``<dir>/<gate>/<criterion>/<check>/0001_20260101T120000_1a2b3c4d.json``, numbered in order,
each run with the machine, the time, the git commit and the target it measured. Any numeric
figure a check measured is kept (a load check's p95, a deploy's duration, a rollback's
recovery time), so relative thresholds (``<= +10%``) work for every check type.

A check chooses its reference with ``baseline: {compare: last}`` (the default: the newest
run) or ``baseline: {compare: median, last: 5}`` (the median of the newest five). Without a
stored run a relative threshold cannot be decided and its criterion is NOT_EVALUATED.

A run also keeps what a statistical comparison needs (``distributions``): the exact latency
histogram behind each thresholded percentile, the counts behind each share and the n, mean
and sd behind each mean (``avg_ms``, ``mttr_s``). A relative threshold on a percentile, a share or a
mean is decided on them (pooled over the reference runs), one on any other figure on the
spread of the stored runs' values, by :func:`pytest_fwgates.bounds.judge_against_baseline`; a
run stored without them still reads, and makes such a threshold INCONCLUSIVE.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import re
import statistics
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import stats
from .bounds import SPREAD_RUNS, histogram_of
from .fsutil import atomic_write
from .model import CheckResult, CheckSpec, Outcome
from .thresholds import BASELINE_PREFIX, number

__all__ = [
    "BASELINE_SCHEMA",
    "DEFAULT_DIR",
    "BaselineRun",
    "BaselineStore",
    "distributions_of",
    "git_info",
    "machine_info",
    "reference",
    "reference_distribution",
    "reference_values",
    "savable",
]

DEFAULT_DIR = ".fwgates/baselines"
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")
_RUN_NAME = re.compile(r"^(\d{4,})_.*\.json$")

#: JSON Schema fragment of a check's ``baseline:`` option
BASELINE_SCHEMA: dict[str, Any] = {
    "description": "How relative thresholds find their reference in the stored baseline runs: "
    "compare with the last run (default) or the median of the last N.",
    "type": "object",
    "properties": {
        "compare": {"enum": ["last", "median"]},
        "last": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    "additionalProperties": False,
}


def _slug(text: str) -> str:
    return _SAFE.sub("_", text).strip("._")[:100] or "_"


@dataclass
class BaselineRun:
    """One stored run of one check."""

    number: int
    gate: str
    criterion: str
    check: str
    saved: str
    values: dict[str, float]
    target: str = ""
    outcome: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    commit: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: what a figure was measured from, for a statistical comparison: the exact latency
    #: histogram of a percentile (``{"histogram": {"12": 40, ...}}``) or the counts of a
    #: share (``{"count": [failed, requests]}``); runs stored before this have none
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.gate}::{self.criterion}::{self.check}"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "number": self.number,
            "gate": self.gate,
            "criterion": self.criterion,
            "check": self.check,
            "saved": self.saved,
            "target": self.target,
            "outcome": self.outcome,
            "machine": self.machine,
            "commit": self.commit,
            "values": self.values,
            "distributions": self.distributions,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path | None = None) -> BaselineRun:
        values = {
            str(k): float(v)
            for k, v in (data.get("values") or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return cls(
            number=int(data["number"]),
            gate=str(data["gate"]),
            criterion=str(data["criterion"]),
            check=str(data["check"]),
            saved=str(data.get("saved") or ""),
            values=values,
            target=str(data.get("target") or ""),
            outcome=str(data.get("outcome") or ""),
            machine=dict(data.get("machine") or {}),
            commit=dict(data.get("commit") or {}),
            path=path,
            distributions=_distributions(data.get("distributions")),
        )


def numeric_values(measured: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers among ``measured`` (text facts, NaN and the baselines a relative
    threshold was held to are left out)."""
    return {
        key: number(value)
        for key, value in measured.items()
        if not key.startswith(BASELINE_PREFIX)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(number(value))
    }


def _distributions(data: object) -> dict[str, dict[str, Any]]:
    """The readable distributions of a stored run (anything malformed is left out)."""
    if not isinstance(data, Mapping):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for key, entry in data.items():
        if not isinstance(entry, Mapping):
            continue
        histogram = histogram_of(entry.get("histogram"))
        count = entry.get("count")
        mean = _mean_entry(entry.get("mean"))
        if histogram:
            found[str(key)] = {"histogram": histogram}
        elif mean is not None:
            found[str(key)] = {"mean": mean}
        elif (
            isinstance(count, list)
            and len(count) == 2
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in count)
            and count[0] <= count[1]
        ):
            found[str(key)] = {"count": [int(count[0]), int(count[1])]}
    return found


def _mean_entry(data: object) -> dict[str, Any] | None:
    """A stored ``{"n", "mean", "sd"}`` of a mean, or None when it is not one."""
    if not isinstance(data, Mapping):
        return None
    n, mean, sd = data.get("n"), data.get("mean"), data.get("sd")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return None
    if isinstance(mean, bool) or not isinstance(mean, int | float) or not math.isfinite(mean):
        return None
    if sd is not None and (
        isinstance(sd, bool) or not isinstance(sd, int | float) or not math.isfinite(sd) or sd < 0
    ):
        return None
    return {"n": n, "mean": float(mean), "sd": None if sd is None else float(sd)}


def distributions_of(result: CheckResult) -> dict[str, dict[str, Any]]:
    """The histograms and counts behind ``result``'s figures, as a baseline run keeps them."""
    found: dict[str, dict[str, Any]] = {}
    for key, support in result.support.items():
        if not isinstance(support, Mapping):
            continue
        histogram = histogram_of(support.get("histogram"))
        mean = _mean_entry(support.get("mean"))
        if histogram:
            found[key] = {"histogram": {_key_text(v): c for v, c in sorted(histogram.items())}}
        elif mean is not None:
            found[key] = {"mean": mean}
        elif isinstance(support.get("count"), list | tuple) and len(support["count"]) == 2:
            found[key] = {"count": [int(support["count"][0]), int(support["count"][1])]}
    return found


def _key_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def reference_distribution(
    runs: list[BaselineRun], key: str, compare: str = "last", last: int = 1
) -> dict[str, Any]:
    """What the reference runs of ``key`` hold behind it, pooled: the newest run's, or the
    newest ``last`` runs' histograms (or counts) added up. ``{}`` when a reference run holds
    none (stored before distributions were kept): the comparison is then not possible."""
    chosen = [run for run in runs if key in run.values]
    chosen = chosen[-max(last, 1) :] if compare == "median" else chosen[-1:]
    if not chosen or any(key not in run.distributions for run in chosen):
        return {}
    entries = [run.distributions[key] for run in chosen]
    if all("histogram" in e for e in entries):
        pooled: Counter[float] = Counter()
        for entry in entries:
            pooled.update(entry["histogram"])
        return {"histogram": dict(pooled), "runs": len(entries)}
    if all("count" in e for e in entries):
        return {
            "count": [sum(e["count"][0] for e in entries), sum(e["count"][1] for e in entries)],
            "runs": len(entries),
        }
    if all("mean" in e for e in entries):
        n, mean, sd = stats.pooled_stats(
            [
                (
                    e["mean"]["n"],
                    e["mean"]["mean"],
                    math.nan if e["mean"]["sd"] is None else e["mean"]["sd"],
                )
                for e in entries
            ]
        )
        return {
            "mean": {"n": n, "mean": mean, "sd": sd if math.isfinite(sd) else None},
            "runs": len(entries),
        }
    return {}


def _sd(value: float | None) -> float:
    return math.nan if value is None else float(value)


def reference_values(
    runs: list[BaselineRun], key: str, compare: str = "last", last: int = 1
) -> list[float]:
    """The values of ``key`` in the newest stored runs, whose spread judges a figure that is
    one number per run: the newest ``last`` under ``compare: median``, else the newest
    :data:`~pytest_fwgates.bounds.SPREAD_RUNS`."""
    values = [run.values[key] for run in runs if key in run.values]
    count = max(last, 1) if compare == "median" else SPREAD_RUNS
    return values[-count:]


def savable(result: CheckResult) -> bool:
    """Whether a result belongs in the baseline: it measured (passed or failed on its figures,
    or was left undecided only for want of a baseline), never an error or a check that did
    not run."""
    if not numeric_values(result.measured):
        return False
    return result.outcome in (Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED)


def reference(
    runs: list[BaselineRun], key: str, compare: str = "last", last: int = 1
) -> float | None:
    """The reference value of ``key``: the newest run's, or the median of the newest ``last``."""
    values = [run.values[key] for run in runs if key in run.values]
    if not values:
        return None
    if compare == "median":
        return float(statistics.median(values[-max(last, 1) :]))
    return values[-1]


def machine_info() -> dict[str, Any]:
    return {
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def git_info(folder: Path) -> dict[str, Any]:
    """The commit, branch and dirtiness of the git work tree at ``folder`` (bounded)."""
    from .process import run_argv

    def git(*args: str) -> str | None:
        try:
            result = run_argv(["git", *args], cwd=folder, timeout=5.0, max_output=65536)
        except OSError:
            return None
        if result.exit_status != 0:
            return None
        return result.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"id": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "id": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
    }


class BaselineStore:
    """The baseline folder: numbered runs per check."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, gate: str, criterion: str, check: str) -> Path:
        return self.root / _slug(gate) / _slug(criterion) / _slug(check)

    def runs(self, gate: str, criterion: str, check: str) -> list[BaselineRun]:
        """The stored runs of one check, oldest first (unreadable files are left out)."""
        return self._read_folder(self.folder(gate, criterion, check), (gate, criterion, check))

    def _read_folder(
        self, folder: Path, expected: tuple[str, str, str] | None = None
    ) -> list[BaselineRun]:
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            if not _RUN_NAME.match(path.name):
                continue
            try:
                run = BaselineRun.from_json(json.loads(path.read_text(encoding="utf-8")), path)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if expected is None or (run.gate, run.criterion, run.check) == expected:
                found.append(run)
        return sorted(found, key=lambda r: r.number)

    def checks(self) -> Iterator[tuple[str, list[BaselineRun]]]:
        """Every stored check as ("gate::criterion::check", runs), sorted."""
        if not self.root.is_dir():
            return
        folders = sorted({path.parent for path in self.root.glob("*/*/*/*.json")})
        by_key: dict[str, list[BaselineRun]] = {}
        for folder in folders:
            for run in self._read_folder(folder):
                by_key.setdefault(run.key, []).append(run)
        for key in sorted(by_key):
            yield key, sorted(by_key[key], key=lambda r: r.number)

    def save(
        self,
        result: CheckResult,
        *,
        target: str,
        machine: dict[str, Any],
        commit: dict[str, Any],
        saved: dt.datetime | None = None,
    ) -> Path:
        """Store ``result``'s numeric figures as the next numbered run of its check."""
        folder = self.folder(result.gate, result.criterion, result.check_id)
        previous = self.runs(result.gate, result.criterion, result.check_id)
        existing = [int(m.group(1)) for p in _list(folder) if (m := _RUN_NAME.match(p.name))]
        number = max([0, *existing, *(r.number for r in previous)]) + 1
        when = (saved or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        short = (commit.get("id") or "nogit")[:8]
        run = BaselineRun(
            number=number,
            gate=result.gate,
            criterion=result.criterion,
            check=result.check_id,
            saved=when.isoformat(),
            values=numeric_values(result.measured),
            distributions=distributions_of(result),
            target=target,
            outcome=str(result.outcome),
            machine=machine,
            commit=commit,
        )
        path = folder / f"{number:04d}_{when.strftime('%Y%m%dT%H%M%S')}_{_slug(short)}.json"
        atomic_write(path, json.dumps(run.to_json(), indent=2, sort_keys=True) + "\n")
        return path

    def lookup(self, spec: CheckSpec, key: str) -> float | None:
        """The reference of ``key`` for ``spec`` under its ``baseline:`` policy (None if no
        stored run has it); what ``CheckContext.baseline_lookup`` calls."""
        policy = spec.options.get("baseline") or {}
        compare = str(policy.get("compare", "last"))
        last = int(policy.get("last", 5 if compare == "median" else 1))
        return reference(self.references(spec), key, compare, last)

    def references(self, spec: CheckSpec) -> list[BaselineRun]:
        """The stored runs of ``spec`` a new run is compared with: every run but those that
        FAILED. A regressed run is stored (``fwgates baseline`` shows it), but never becomes
        the reference: saved after every run, it would let the same regression pass against
        itself the next time."""
        runs = self.runs(spec.gate, spec.criterion, spec.id)
        return [run for run in runs if run.outcome != str(Outcome.FAILED)]

    def distribution(self, spec: CheckSpec, key: str) -> dict[str, Any]:
        """What the reference runs hold behind ``key`` (see :func:`reference_distribution`);
        what ``CheckContext.baseline_distribution_lookup`` calls."""
        policy = spec.options.get("baseline") or {}
        compare = str(policy.get("compare", "last"))
        last = int(policy.get("last", 5 if compare == "median" else 1))
        runs = self.references(spec)
        found = reference_distribution(runs, key, compare, last)
        return {**found, "values": reference_values(runs, key, compare, last)}


def _list(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []
