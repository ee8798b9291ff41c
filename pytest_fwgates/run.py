"""One gate run: the plugin object that selects, records reports and decides verdicts.

Registered in ``pytest_configure`` when ``--gate`` is given and kept in ``config.stash``.
Under pytest-xdist every worker has one (it collects and runs checks); only the controller
decides verdicts and writes reports, from the reports of all workers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import platform
import shutil
import sys
from collections.abc import Generator
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
    CheckSpec,
    Gate,
    GateDecision,
    GateVerdict,
    Outcome,
)
from .redact import Redactor
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


class _RedactLogs(logging.Filter):
    """Masks secrets in log records (testinfra logs every command with its output)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = None
        return True


#: loggers whose records can carry a command's output
_REDACTED_LOGGERS = ("testinfra",)


class GateRun:
    def __init__(
        self,
        config: pytest.Config,
        names: list[str],
        loader: GateLoader,
        registry: CheckRegistry,
        waivers: WaiverSet,
        junit_path: Path,
    ) -> None:
        self.config = config
        self.requested = names
        self.loader = loader
        self.registry = registry
        self.waivers = waivers
        self.junit_path = junit_path
        self.context = CheckContext(
            rootdir=config.rootpath,
            redactor=loader.redactor,
            evidence_root=junit_path.parent / "evidence",
        )
        self.is_worker = hasattr(config, "workerinput")
        self.selected: list[str] = []
        self.load_errors: list[str] = []
        self.collect_errors = 0
        self.interrupted = False
        self.reports: dict[str, _Phases] = {}
        #: node id -> (memberships, why it may not run) of every collected or deselected check
        self.expected: dict[str, tuple[list[tuple[str, str, str]], str]] = {}
        self.workers: set[str] = set()
        self.decisions: list[GateDecision] = []
        self.written: list[Path] = []
        #: facts of the run written into summary.json (the handoff package reuses them)
        self.run_info: dict[str, Any] = {}
        self._log_filter = _RedactLogs(loader.redactor)
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)
        self._resolve()

    def close(self) -> None:
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._log_filter)

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
        """The user's files of the selected gates, and catalog files that carry checks."""
        files = [path for name in self.selected for path in self.loader.user_files(name)]
        for name in self.selected:
            try:
                gate = self.loader.load(name)
            except SourceError:
                continue  # reported at collection
            for spec in gate.checks():
                if spec.source.path not in files:
                    files.append(spec.source.path)
        return files

    @functools.cached_property
    def gate_file_set(self) -> frozenset[Path]:
        """The selected gates' files, resolved: what ``pytest_collect_file`` takes."""
        return frozenset(path.resolve() for path in self.gate_files())

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

    # -- what was collected ---------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """A wrong ``gate`` marker is a collection error of its file (also under xdist)."""
        report = yield
        if report.passed:
            for node in report.result:
                if isinstance(node, pytest.Item) and not isinstance(node, GateItem):
                    error = self.validate_marker(node)
                    if error:
                        return pytest.CollectReport(
                            report.nodeid, "failed", error, [], sections=report.sections
                        )
        return report

    def _expect(self, items: list[pytest.Item], why: str) -> None:
        for item in items:
            members = self.memberships(item)
            if members:
                self.expected[item.nodeid] = (members, why)

    @pytest.hookimpl
    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self._expect(items, "did not run: deselected")

    @pytest.hookimpl
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._expect(session.items, "did not run (the run stopped before it)")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the xdist controller: what a worker collected and deselected."""
        self.workers.add(str(getattr(getattr(node, "gateway", None), "id", node)))
        output = getattr(node, "workeroutput", None) or {}
        for nodeid, (members, why) in output.get("fwgates_expected", {}).items():
            self.expected.setdefault(nodeid, ([tuple(m) for m in members], why))

    # -- reports from this process or from xdist workers -----------------------------------
    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors += 1

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "fwgates", None)
        if not data and report.nodeid in self.reports:
            # made on the xdist controller for a check whose worker crashed
            data = {"members": self.reports[report.nodeid].members}
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

    def results(self, gates: list[Gate]) -> list[CheckResult]:
        """A result for every check of ``gates``: reported, or known but never run."""
        results: list[CheckResult] = []
        seen: set[tuple[str, str, str]] = set()
        redact = self.loader.redactor
        specs = {(s.gate, s.criterion, s.id): s for g in gates for s in g.checks()}
        # checks that were collected (or deselected) but never reported
        not_run: dict[tuple[str, str, str], str] = {}
        reports = dict(self.reports)
        for nodeid, (members, why) in self.expected.items():
            if nodeid in self.reports:
                continue
            not_run.update((member, why) for member in members)
            python_members = [m for m in members if m not in specs]
            if python_members:
                reports[nodeid] = _Phases(members=python_members, message=why)
        for nodeid, phases in reports.items():
            outcome = _outcome(phases.outcomes)
            message = phases.message
            if outcome is Outcome.SKIPPED and not message:
                message = "did not run to the end"
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
                        message=redact.text(message),
                        duration=phases.duration,
                        location=phases.location,
                    )
                )
        for key, spec in specs.items():
            if key not in seen:
                results.append(
                    CheckResult(
                        nodeid=self._nodeid(spec),
                        gate=spec.gate,
                        criterion=spec.criterion,
                        check_id=spec.id,
                        outcome=Outcome.SKIPPED,
                        thresholds={k: str(v) for k, v in spec.thresholds.items()},
                        message=not_run.get(
                            key, "did not run (deselected, interrupted or not collected)"
                        ),
                        location=str(spec.source),
                    )
                )
        # the same order however reports arrived (xdist): as declared, then by node id
        order = {key: index for index, key in enumerate(specs)}
        results.sort(
            key=lambda r: (order.get((r.gate, r.criterion, r.check_id), len(order)), r.nodeid)
        )
        return results

    def _nodeid(self, spec: CheckSpec) -> str:
        path = spec.source.path
        try:
            path_id = path.resolve().relative_to(self.config.rootpath.resolve()).as_posix()
        except ValueError:
            path_id = str(path)
        return f"{path_id}::{spec.criterion}::{spec.id}"

    # -- the verdict -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            # the controller learns what never ran from this (sent when the worker finishes)
            output: dict[str, Any] = getattr(self.config, "workeroutput", {})
            output["fwgates_expected"] = {
                nodeid: ([list(m) for m in members], why)
                for nodeid, (members, why) in self.expected.items()
            }
            return
        if self.config.option.collectonly:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
        gates = self.gates()
        problems = [f"gate file error: {error}" for error in self.load_errors]
        if self.collect_errors:
            problems.append(f"{self.collect_errors} collection error(s)")
        if self.interrupted:
            problems.append("the run was interrupted")
        self.decisions = decide_all(gates, self.results(gates), self.waivers, problems)
        missing = [name for name in self.selected if name not in {g.name for g in gates}]
        for decision in self.decisions:
            self.config.hook.pytest_fwgates_gate_decided(decision=decision, config=self.config)
        self._write_reports(missing)
        verdict = overall(self.decisions) if not missing else GateVerdict.FAILED
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED,
                          pytest.ExitCode.NO_TESTS_COLLECTED):  # fmt: skip
            session.exitstatus = _VERDICT_EXIT[verdict]

    def _write_reports(self, missing: list[str]) -> None:
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
            "xdist_workers": len(self.workers),
        }
        self.run_info = run_info
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
    if any(outcome == "failed" for when, outcome in outcomes.items() if when != "call"):
        return Outcome.ERROR  # setup, teardown, or a crash report of xdist
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
