"""One gate run: the plugin object that selects, records reports and decides verdicts.

Registered in ``pytest_configure`` when ``--gate`` is given and kept in ``config.stash``.
Under pytest-xdist every worker has one (it collects and runs checks); only the controller
decides verdicts and writes reports, from the reports of all workers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from .checks import CheckContext, CheckRegistry
from .collect import GateItem
from .loader import GateLoader
from .model import (
    EXIT_FAILED,
    EXIT_HUMAN_REVIEW,
    EXIT_PASSED,
    CheckResult,
    Gate,
    GateDecision,
    GateVerdict,
    Outcome,
)
from .report.junit import write_junit
from .report.summary import write_summary
from .report.terminal import table_lines, verdict_color
from .verdict import decide_all, overall
from .waivers import WaiverSet
from .yamlsrc import SourceError

__all__ = ["GateRun", "measures_key", "run_key"]

measures_key = pytest.StashKey[dict[str, float]]()
run_key = pytest.StashKey["GateRun"]()

_VERDICT_EXIT = {
    GateVerdict.PASSED: EXIT_PASSED,
    GateVerdict.FAILED: EXIT_FAILED,
    GateVerdict.HUMAN_REVIEW_REQUIRED: EXIT_HUMAN_REVIEW,
}


@dataclasses.dataclass
class _Phases:
    members: list[tuple[str, str, str]]
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)
    result: dict[str, Any] | None = None
    measured: dict[str, float] = dataclasses.field(default_factory=dict)
    message: str = ""
    duration: float = 0.0
    location: str = ""


class GateRun:
    def __init__(
        self,
        config: pytest.Config,
        names: list[str],
        loader: GateLoader,
        registry: CheckRegistry,
        waivers: WaiverSet,
        junit_path: Path | None,
    ) -> None:
        self.config = config
        self.requested = names
        self.loader = loader
        self.registry = registry
        self.waivers = waivers
        self.junit_path = junit_path
        self.context = CheckContext(rootdir=config.rootpath, redactor=loader.redactor)
        self.is_worker = hasattr(config, "workerinput")
        self.selected: list[str] = []
        self.load_errors: list[str] = []
        self.collect_errors = 0
        self.interrupted = False
        self.reports: dict[str, _Phases] = {}
        self.decisions: list[GateDecision] = []
        self.written: list[Path] = []
        self._resolve()

    # -- selection -------------------------------------------------------------------------
    def _resolve(self) -> None:
        selected: list[str] = []
        for name in self.requested:
            try:
                closure = self.loader.closure([name])
            except SourceError as exc:
                # the broken file is reported at collection; the verdict fails closed
                self.load_errors.append(str(exc))
                closure = [name]
            selected.extend(n for n in closure if n not in selected)
        self.selected = selected

    def gate_files(self) -> list[Path]:
        return [path for name in self.selected for path in self.loader.user_files(name)]

    def gates(self) -> list[Gate]:
        gates = []
        for name in self.selected:
            try:
                gates.append(self.loader.load(name))
            except SourceError as exc:
                if str(exc) not in self.load_errors:
                    self.load_errors.append(str(exc))
        return gates

    def memberships(self, item: pytest.Item) -> list[tuple[str, str, str]]:
        """(gate, criterion, check id) for each selected gate ``item`` serves."""
        if isinstance(item, GateItem):
            spec = item.spec
            return [(spec.gate, spec.criterion, spec.id)] if spec.gate in self.selected else []
        found = []
        for marker in item.iter_markers("gate"):
            gate, criterion = _marker_args(marker)
            if gate in self.selected and criterion:
                found.append((gate, criterion, item.nodeid))
        return found

    def validate_marker(self, item: pytest.Item) -> str | None:
        """A one-line error for a ``gate`` marker that names no known gate or criterion."""
        path, line, _ = item.location
        where = f"{path}:{(line or 0) + 1}"
        for marker in item.iter_markers("gate"):
            gate, criterion = _marker_args(marker)
            if not gate:
                return f"{where}: @pytest.mark.gate needs a gate name: gate('NAME', criterion='ID')"
            if gate not in self.loader.known():
                return f"{where}: {self.loader.unknown_gate_message(gate)}"
            if not criterion:
                return f"{where}: @pytest.mark.gate('{gate}') needs criterion='ID'"
            if gate in self.selected:
                try:
                    loaded = self.loader.load(gate)
                except SourceError:
                    continue  # reported at collection
                own = [c for c, spec in loaded.criteria.items() if spec.include is None]
                if criterion not in own:
                    return (
                        f"{where}: unknown criterion '{criterion}' of gate {gate}; "
                        f"criteria: {', '.join(own)}"
                    )
        return None

    # -- reports from this process or from xdist workers -----------------------------------
    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors += 1

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "fwgates", None)
        if not data:
            return
        phases = self.reports.setdefault(
            report.nodeid, _Phases(members=[tuple(m) for m in data["members"]])
        )
        outcome = "skipped" if getattr(report, "wasxfail", None) is not None else report.outcome
        phases.outcomes[report.when] = outcome
        phases.duration += report.duration
        if data.get("result"):
            phases.result = data["result"]
        if data.get("measured"):
            phases.measured.update(data["measured"])
        if report.when == "call" or outcome != "passed":
            phases.location = f"{report.location[0]}:{(report.location[1] or 0) + 1}"
            if outcome != "passed" and not phases.message:
                phases.message = _short_message(report)

    @pytest.hookimpl
    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def results(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        seen: set[tuple[str, str, str]] = set()
        redact = self.loader.redactor
        for nodeid, phases in self.reports.items():
            outcome = _outcome(phases.outcomes)
            for gate, criterion, check_id in phases.members:
                seen.add((gate, criterion, check_id))
                if phases.result is not None and outcome is not Outcome.ERROR:
                    result = CheckResult.from_json(phases.result)
                    results.append(dataclasses.replace(result, duration=phases.duration))
                    continue
                results.append(
                    CheckResult(
                        nodeid=nodeid,
                        gate=gate,
                        criterion=criterion,
                        check_id=check_id,
                        outcome=outcome,
                        measured=dict(phases.measured),
                        message=redact.text(phases.message),
                        duration=phases.duration,
                        location=phases.location,
                    )
                )
        for loaded in self.gates():
            for spec in loaded.checks():
                if (spec.gate, spec.criterion, spec.id) not in seen:
                    results.append(
                        CheckResult(
                            nodeid=f"{spec.source.path}::{spec.criterion}::{spec.id}",
                            gate=spec.gate,
                            criterion=spec.criterion,
                            check_id=spec.id,
                            outcome=Outcome.SKIPPED,
                            thresholds={k: str(v) for k, v in spec.thresholds.items()},
                            message="did not run (deselected, interrupted or not collected)",
                            location=str(spec.source),
                        )
                    )
        return results

    # -- the verdict -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
        gates = self.gates()
        problems = [f"gate file error: {error}" for error in self.load_errors]
        if self.collect_errors:
            problems.append(f"{self.collect_errors} collection error(s)")
        if self.interrupted:
            problems.append("the run was interrupted")
        self.decisions = decide_all(gates, self.results(), self.waivers, problems)
        missing = [name for name in self.selected if name not in {g.name for g in gates}]
        for decision in self.decisions:
            self.config.hook.pytest_fwgates_gate_decided(decision=decision, config=self.config)
        self._write_reports(missing)
        verdict = overall(self.decisions) if not missing else GateVerdict.FAILED
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED,
                          pytest.ExitCode.NO_TESTS_COLLECTED):  # fmt: skip
            session.exitstatus = _VERDICT_EXIT[verdict]

    def _write_reports(self, missing: list[str]) -> None:
        if self.junit_path is None:
            return
        run_info = {
            "requested": self.requested,
            "gates": self.selected,
            "unloadable": missing,
            "problems": self.load_errors,
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "pytest": pytest.__version__,
            "platform": platform.platform(),
            "host": platform.node(),
            "rootdir": str(self.config.rootpath),
            "xdist_workers": int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0),
        }
        summary_path = self.junit_path.with_name("summary.json")
        write_junit(self.junit_path, self.decisions)
        write_summary(summary_path, self.decisions, run_info)
        self.written = [self.junit_path, summary_path]

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or (not self.decisions and not self.load_errors):
            return
        tr = terminalreporter
        tr.write_sep("=", "gate verdicts")
        width = max(shutil.get_terminal_size((100, 24)).columns, 100)
        for line, word in table_lines(self.decisions, width=width):
            tr.write_line(line, **verdict_color(word))
        for error in self.load_errors:
            tr.write_line(f"gate file error: {error}", red=True)
        for path in self.written:
            tr.write_line(f"gate report: {path}")


def _marker_args(marker: pytest.Mark) -> tuple[str, str]:
    gate = marker.args[0] if marker.args else marker.kwargs.get("name", "")
    criterion = marker.kwargs.get("criterion") or (marker.args[1] if len(marker.args) > 1 else "")
    return str(gate or ""), str(criterion or "")


def _outcome(outcomes: dict[str, str]) -> Outcome:
    if outcomes.get("setup") == "failed" or outcomes.get("teardown") == "failed":
        return Outcome.ERROR
    call = outcomes.get("call")
    if call == "failed":
        return Outcome.FAILED
    if call == "passed":
        return Outcome.PASSED
    return Outcome.SKIPPED


def _short_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = str(crash.message)
    elif isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
    else:
        text = str(report.longrepr or "")
    first = text.strip().splitlines()[0] if text.strip() else report.outcome
    return first[:500]
