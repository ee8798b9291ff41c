"""One gate run: the plugin object that selects, records reports and decides verdicts.

Registered in ``pytest_configure`` when ``--gate`` is given and kept in ``config.stash``.
Under pytest-xdist every worker has one (it collects and runs checks); only the controller
decides verdicts and writes reports, from the reports of all workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import logging
import os
import platform
import signal
import sys
import threading
from collections.abc import Generator, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from .bounds import DEFAULT_CONFIDENCE, parse_confidence
from .checks import CheckContext, CheckRegistry
from .collect import GateFile, GateItem
from .fsutil import atomic_write_all
from .keys import measured_by_key, measures_key, record_problems_key, run_key, support_key
from .loader import GateLoader
from .model import (
    EXIT_FAILED,
    EXIT_HUMAN_REVIEW,
    EXIT_INCONCLUSIVE,
    EXIT_PASSED,
    CheckResult,
    CheckSpec,
    CriterionVerdict,
    Gate,
    GateDecision,
    GateVerdict,
    Outcome,
)
from .outcomes import SEVERITY, ItemRecord, seen_outcome, short_message
from .redact import Redactor
from .report.junit import build_junit
from .report.paths import SUMMARY_NAME, path_problem, remove_stale, resolve_junit, summary_path
from .report.summary import summary_bytes
from .report.terminal import clean_line, table_lines, table_width, verdict_color
from .thresholds import ThresholdError, format_value, parse
from .verdict import decide_all, hold_to_standards, overall
from .waivers import WaiverSet
from .yamlsrc import SourceError

__all__ = ["EndGuard", "GateRun", "measures_key", "prepare_reports", "run_key"]


_VERDICT_EXIT = {
    GateVerdict.PASSED: EXIT_PASSED,
    GateVerdict.FAILED: EXIT_FAILED,
    GateVerdict.HUMAN_REVIEW_REQUIRED: EXIT_HUMAN_REVIEW,
    GateVerdict.INCONCLUSIVE: EXIT_INCONCLUSIVE,
}


#: how bad the verdict's judgment of recorded values is (its own order: a failure, then a
#: value it cannot judge, then one its evidence does not prove)
JUDGED_RANK = {
    Outcome.PASSED: 0,
    Outcome.INCONCLUSIVE: 1,
    Outcome.SKIPPED: 2,
    Outcome.FAILED: 3,
    Outcome.ERROR: 3,
}


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
_REDACTED_LOGGERS = ("testinfra", "urllib3.connectionpool", "urllib3.util.retry")


def check_settings(config: pytest.Config) -> dict[str, str]:
    """The ini options check types read (``CheckContext.settings``)."""
    return {
        "prometheus_url": str(config.getini("gate_prometheus_url") or ""),
        "base_url": str(config.getini("gate_base_url") or ""),
        "confidence": repr(run_confidence(config)),
    }


def run_confidence(config: pytest.Config) -> float:
    """The run's confidence level (ini ``gate_confidence``, default 95 %); a usage error if
    it is no level."""
    text = str(config.getini("gate_confidence") or "").strip()
    if not text:
        return DEFAULT_CONFIDENCE
    try:
        return parse_confidence(text)
    except ValueError as exc:
        raise pytest.UsageError(f"ini gate_confidence: {exc}") from None


#: how much of a skipped collector's source is read for a gate's name
_SCAN_FILES = 2000
_SCAN_BYTES = 1 << 20

#: pytest options that show or collect without running: such a run decides no verdict
_NO_VERDICT_OPTIONS = (
    "collectonly",
    "showfixtures",
    "show_fixtures_per_test",
    "setuponly",
    "setupplan",
)


def prepare_reports(config: pytest.Config) -> Path:
    """The gate JUnit path, checked before the run starts; an earlier run's reports removed.

    Refuses (usage error) a report path that exists and is not a regular file, a folder
    where nothing can be written, a JUnit named like summary.json, and ``--junitxml`` at
    the gate reports' place.
    """
    given: str | None = config.option.fwgates_junit
    junit = resolve_junit(
        given, str(config.getini("gate_junit")), config.invocation_params.dir, config.rootpath
    )
    summary = summary_path(junit)
    option = "--gate-junit" if given else "gate_junit (ini)"
    if junit.name == SUMMARY_NAME:
        raise pytest.UsageError(
            f"{option} {junit}: {SUMMARY_NAME} is written beside the gate JUnit; "
            "give the JUnit file another name"
        )
    if hasattr(config, "workerinput"):
        return junit  # only the xdist controller writes reports
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath:
        mine = {os.path.abspath(junit), os.path.abspath(summary)}
        theirs = os.path.abspath(os.path.expanduser(str(xmlpath)))
        if theirs in mine or os.path.realpath(theirs) in {os.path.realpath(p) for p in mine}:
            raise pytest.UsageError(
                f"--junitxml {xmlpath}: the gate reports are written there ({option} {junit}); "
                "give pytest's JUnit another path"
            )
    for path, label in ((junit, option), (summary, f"{option} (its {SUMMARY_NAME})")):
        problem = path_problem(path)
        if problem:
            raise pytest.UsageError(f"{label} {path}: {problem}")
    remove_stale([junit, summary])
    return junit


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what a CI runner sends on cancel), raised like Ctrl-C in the main thread."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(f"stopped by signal {signal.Signals(signum).name}")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _on_sigterm_with_workers(signum: int, frame: FrameType | None) -> None:
    """On the xdist controller: pass SIGTERM on to the workers, which stop their commands
    the same way (a worker killed at the end of xdist's wait could not)."""
    for child in _children(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGTERM)
    _on_sigterm(signum, frame)


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
            host_pool=loader.host_pool,
            settings=check_settings(config),
        )
        self.is_worker = hasattr(config, "workerinput")
        self.selected: list[str] = []
        self.load_errors: list[str] = []
        self.collect_errors = 0
        self.interrupted = False
        #: node id -> every report of an item a selected gate owns, reconciled
        self.reports: dict[str, ItemRecord] = {}
        #: node id -> reports that carried no gate data (xdist's crash report, a report a
        #: plugin made itself): placed by node id at the end
        self.orphans: dict[str, ItemRecord] = {}
        #: node ids the xdist workers collected (every one serves a selected gate)
        self.collected: set[str] = set()
        #: node id -> reason of a collector pytest skipped (its tests were never collected)
        self.skipped_collectors: dict[str, str] = {}
        #: reports that no gate check can be told from (set when results are made)
        self.placement_problems: list[str] = []
        #: node id -> (memberships, why it may not run) of every collected or deselected check
        self.expected: dict[str, tuple[list[tuple[str, str, str]], str]] = {}
        self.workers: set[str] = set()
        #: node id -> figures a marked test recorded after its last report
        self.late: dict[str, list[str]] = {}
        self.decisions: list[GateDecision] = []
        #: the session and the exit status its verdict demands, held by hold_exit_status
        self._ended: tuple[pytest.Session, int] | None = None
        self.written: list[Path] = []
        #: facts of the run written into summary.json (the handoff package reuses them)
        self.run_info: dict[str, Any] = {}
        #: why the reports could not be written at the end ("" when they were)
        self.write_error = ""
        #: gate name -> why it could not be loaded
        self.gate_errors: dict[str, str] = {}
        self.terminated = False
        self._old_sigterm: Any = None
        self._old_int: Any = None
        #: the signal that came while the run was ending (noted, not raised), if one did
        self.late_signal: str | None = None
        self._late_lock = threading.Lock()
        self._log_filter = _RedactLogs(loader.redactor)
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)
        self._resolve()

    def start(self) -> None:
        """From now on SIGTERM ends the run like Ctrl-C: commands stopped, FAILED written."""
        if threading.current_thread() is not threading.main_thread():
            return
        controller = not self.is_worker and getattr(self.config.option, "dist", "no") != "no"
        handler = _on_sigterm_with_workers if controller else _on_sigterm
        self._old_sigterm = signal.signal(signal.SIGTERM, handler)

    def defer_signals(self) -> None:
        """From the end of the session on (reports written, xdist workers waited for), Ctrl-C
        and SIGTERM are noted, not raised: the run ends as it was going to, with one line and
        exit status 2 instead of a traceback. A second one acts at once."""
        if threading.current_thread() is not threading.main_thread():
            return

        def note(signum: int, frame: FrameType | None) -> None:
            self.late_signal = signal.Signals(signum).name
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        old = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._old_int = old[signal.SIGINT]
        if self._old_sigterm is None:
            self._old_sigterm = old[signal.SIGTERM]

    def close(self) -> None:
        if self.interrupted or self.terminated or self.late_signal:
            from .watchdog import sweep_at_exit

            sweep_at_exit()  # nothing the run started outlives an interrupted run
        self.loader.host_pool.close()
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._log_filter)
        if threading.current_thread() is not threading.main_thread():
            return
        if self._old_int is not None:
            signal.signal(signal.SIGINT, self._old_int)
            self._old_int = None
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def decides(self) -> bool:
        """False for runs that only show or collect (``--co``, ``--fixtures``, ...)."""
        return not any(getattr(self.config.option, name, False) for name in _NO_VERDICT_OPTIONS)

    # -- selection -------------------------------------------------------------------------
    def _resolve(self) -> None:
        selected: list[str] = []
        for name in self.requested:
            try:
                closure = self.loader.closure([name])
            except SourceError as exc:
                # the broken file is reported at collection; the verdict fails closed
                error = self.loader.redactor.text(str(exc))
                self.gate_errors.setdefault(name, error)
                # one line per mistake (a file's mistakes come together)
                self.load_errors.extend(error.splitlines())
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
                error = self.loader.redactor.text(str(exc))
                self.gate_errors.setdefault(name, error)
                for line in error.splitlines():
                    if line not in self.load_errors:
                        self.load_errors.append(line)
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

    def standard_problem(self, item: pytest.Item, key: str, value: float) -> str | None:
        """Why a value a marked test records misses its criterion's standard, if it does."""
        for gate_name, criterion_id, _ in self.memberships(item):
            try:
                criterion = self.loader.load(gate_name).criteria.get(criterion_id)
            except SourceError:
                continue
            text = criterion.thresholds_in_force().get(key) if criterion else None
            if text is None:
                continue
            try:
                holds = parse(text).holds(key, value)
            except ThresholdError as exc:
                return f"{key}: {exc}"
            if holds is False:
                return (
                    f"{key} = {format_value(key, value)}, expected {text} "
                    f"(standard of {gate_name}/{criterion_id})"
                )
        return None

    def judge_recorded(self, item: pytest.Item) -> tuple[Outcome, str]:
        """What the verdict will make of the values a marked test recorded so far, by its own
        rules (:func:`~pytest_fwgates.verdict.hold_to_standards`): PASSED, or the worst of
        FAILED, SKIPPED (undecided) and INCONCLUSIVE with its reason, naming the criterion.
        pytest's outcome of the test says the same (``plugin.pytest_runtest_makereport``)."""
        problems = item.stash.get(record_problems_key, None)
        if problems:
            return Outcome.FAILED, problems[0]
        measured = item.stash.get(measures_key, None)
        if not measured:
            return Outcome.PASSED, ""
        worst: tuple[Outcome, str] = (Outcome.PASSED, "")
        for gate_name, criterion_id, check_id in self.memberships(item):
            try:
                criterion = self.loader.load(gate_name).criteria.get(criterion_id)
            except SourceError:
                continue  # reported at collection; the verdict fails closed
            if criterion is None:
                continue
            result = recorded_result(
                (item.nodeid, gate_name, criterion_id, check_id),
                Outcome.PASSED,
                measured,
                item.stash.get(measured_by_key, {}),
                item.stash.get(support_key, {}),
                criterion.thresholds_in_force(),
            )
            level = criterion.confidence
            held = hold_to_standards(
                criterion, result, None, level if level is not None else run_confidence(self.config)
            )
            if JUDGED_RANK[held.outcome] > JUDGED_RANK[worst[0]]:
                text = f"{gate_name}/{criterion_id}: {self.loader.redactor.text(held.message)}"
                worst = (held.outcome, text)
        return worst

    def not_blocking(self, item: pytest.Item) -> str | None:
        """Why a failure of ``item`` fails no gate (each criterion it serves is advisory, or a
        valid waiver covers it), or None when it does fail one."""
        why = []
        for gate_name, criterion_id, check_id in self.memberships(item):
            try:
                criterion = self.loader.load(gate_name).criteria.get(criterion_id)
            except SourceError:
                return None
            if criterion is None:
                return None
            if not criterion.required:
                why.append(f"advisory criterion {gate_name}/{criterion_id}")
                continue
            waiver = self.waivers.for_criterion(gate_name, criterion_id) or self.waivers.for_check(
                gate_name, criterion_id, check_id
            )
            if waiver is None:
                return None
            why.append(f"waived: {waiver.describe()}")
        return "; ".join(why) or None

    def late_record(self, item: pytest.Item, key: str) -> None:
        """A marked test recorded ``key`` after its reports were made (from a thread that
        outlived it): the test's result becomes an error (any thread, any process)."""
        with self._late_lock:
            keys = self.late.setdefault(item.nodeid, [])
            if key not in keys:
                keys.append(key)

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
        """A wrong ``gate`` marker is a collection error of its file (also under xdist).

        The catalog's files that carry checks join the session's own collectors here, named
        by the gate's file (``deployment-handoff-validation.yaml::...``), wherever the package
        is installed: a catalog inside a virtual environment under the rootdir is one pytest
        would not collect from a path (and would name by its site-packages path)."""
        report = yield
        if report.passed and isinstance(collector, pytest.Session):
            report.result.extend(self.catalog_files(collector))
        if report.passed:
            for node in report.result:
                if isinstance(node, pytest.Item) and not isinstance(node, GateItem):
                    error = self.validate_marker(node)
                    if error:
                        return pytest.CollectReport(
                            report.nodeid, "failed", error, [], sections=report.sections
                        )
        return report

    def catalog_files(self, session: pytest.Session) -> list[GateFile]:
        """A collector per catalog file that carries checks of the selected gates."""
        catalog = self.loader.catalog.resolve()
        nodes = []
        for path in dict.fromkeys(p.resolve() for p in self.gate_files()):
            if path.parent == catalog:
                node: GateFile = GateFile.from_parent(session, path=path, nodeid=path.name)
                node.run = self
                nodes.append(node)
        return nodes

    def _expect(self, items: list[pytest.Item], why: str) -> None:
        for item in items:
            members = self.memberships(item)
            if members:
                self.expected[item.nodeid] = (members, why)

    @pytest.hookimpl
    def pytest_itemcollected(self, item: pytest.Item) -> None:
        # before any plugin can drop it from the run without a word
        self._expect([item], "did not run: removed from the run before it started")

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
        for nodeid, keys in output.get("fwgates_late", {}).items():
            self.late.setdefault(nodeid, []).extend(keys)

    # -- reports from this process or from xdist workers -----------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collected.update(ids)

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors += 1
        elif report.skipped and report.nodeid not in self.skipped_collectors:
            self.skipped_collectors[report.nodeid] = _skip_reason(report)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "fwgates", None)
        if not data:
            # made on the xdist controller for an item whose worker crashed, or by a plugin
            # without pytest_runtest_makereport: placed by its node id when the run ends. It
            # can only make things worse: a pass pytest's makereport never made proves nothing
            if seen_outcome(report) == "passed":
                return
            record = self.reports.get(report.nodeid) or self.orphans.setdefault(
                report.nodeid, ItemRecord(members=[])
            )
            record.add(report, {}, self.loader.redactor)
            return
        found = self.reports.get(report.nodeid)
        if found is None:
            members = [(str(g), str(c), str(i)) for g, c, i in data["members"]]
            found = self.reports[report.nodeid] = ItemRecord(members=members)
        found.add(report, data, self.loader.redactor)

    @pytest.hookimpl
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.interrupted = True
        if isinstance(excinfo.value, _Terminated):
            self.terminated = True

    def results(self, gates: list[Gate]) -> list[CheckResult]:
        """A result for every check of ``gates``: reported, or known but never run.

        Reports that cannot be placed (a crash report of an item no worker listed) are run
        problems, kept in ``self.placement_problems``.
        """
        results: list[CheckResult] = []
        seen: set[tuple[str, str, str]] = set()
        redact = self.loader.redactor
        specs = {(s.gate, s.criterion, s.id): s for g in gates for s in g.checks()}
        standards = {
            (g.name, c.id): c.thresholds_in_force() for g in gates for c in g.criteria.values()
        }
        spec_nodeids: dict[str, list[tuple[str, str, str]]] = {}
        for key, spec in specs.items():
            spec_nodeids.setdefault(self._nodeid(spec), []).append(key)
        reports, self.placement_problems = self._placed(spec_nodeids)
        # checks that were collected (or deselected) but never reported
        not_run: dict[tuple[str, str, str], str] = {}
        for nodeid, (members, why) in self.expected.items():
            if nodeid in reports:
                continue
            not_run.update((member, why) for member in members)
            python_members = [m for m in members if m not in specs]
            if python_members:
                reports[nodeid] = ItemRecord(members=python_members, message=why)
        for nodeid, record in reports.items():
            if any(member in specs for member in record.members):
                record.is_check = True  # a YAML check passes only with its own result
            outcome, message = record.outcome()
            late = self.late.get(nodeid)
            if not record.is_check and (late or record.problems) and outcome is Outcome.PASSED:
                # recorded values that do not count fail the test whatever pytest saw
                # (a thread swallowed the failure, or the value came after the test ended)
                if record.problems:
                    outcome, message = Outcome.FAILED, record.problems[0]
                else:
                    outcome = Outcome.ERROR
                    message = (
                        f"gate_record({', '.join(late or [])}) came after the test ended "
                        "(from a thread that outlived it): record values before the test "
                        "returns, or join the thread"
                    )
            for gate, criterion, check_id in record.members:
                seen.add((gate, criterion, check_id))
                if record.result is not None:
                    result = CheckResult.from_json(record.result)
                    result = dataclasses.replace(result, duration=record.duration)
                    if SEVERITY[outcome] > SEVERITY[result.outcome]:
                        # pytest saw worse than the check: a hook raised, a phase failed
                        word = "errored" if outcome is Outcome.ERROR else str(outcome)
                        text = f"the check {result.outcome}, but its test {word}: {message}"
                        result = dataclasses.replace(
                            result, outcome=outcome, message=redact.text(text)
                        )
                    elif result.outcome is not Outcome.PASSED and record.repeat_note():
                        text = result.message + record.repeat_note()
                        result = dataclasses.replace(result, message=text)
                    results.append(result)
                    continue
                results.append(
                    recorded_result(
                        (nodeid, gate, criterion, check_id),
                        outcome,
                        record.measured,
                        record.measured_by,
                        record.support,
                        standards.get((gate, criterion), {}),
                        message=redact.text(message),
                        duration=record.duration,
                        location=record.location,
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

    def _placed(
        self, spec_nodeids: dict[str, list[tuple[str, str, str]]]
    ) -> tuple[dict[str, ItemRecord], list[str]]:
        """Every item's record, with the reports that carried no gate data placed by node id
        (what a worker listed, or a YAML check's own node id); and what cannot be placed."""
        reports = dict(self.reports)
        problems: list[str] = []
        for nodeid, orphan in self.orphans.items():
            members = self.expected[nodeid][0] if nodeid in self.expected else None
            members = members or spec_nodeids.get(nodeid) or []
            if nodeid in reports:
                members = reports[nodeid].members
            if members:
                record = ItemRecord(members=list(members))
                if nodeid in reports:
                    record.merge(reports[nodeid])
                record.merge(orphan)
                reports[nodeid] = record
                continue
            outcome, message = orphan.outcome()
            if outcome in (Outcome.FAILED, Outcome.ERROR):
                # in a gate run every item serves a gate: an item that failed unplaced fails it
                problems.append(f"{nodeid} {outcome} and no gate check can be told: {message}")
        # items the xdist workers collected that neither reported nor were listed (a worker
        # that ended without its list): whatever they were evidence for did not run
        known = set(reports) | set(self.expected) | set(spec_nodeids) | set(self.orphans)
        lost = sorted(self.collected - known)
        if lost:
            more = f" (+{len(lost) - 1} more)" if len(lost) > 1 else ""
            problems.append(f"{lost[0]}{more} did not run and no gate check can be told")
        return reports, problems

    def narrowing_problems(self) -> list[str]:
        """What kept tests of the gates from being collected at all."""
        problems = []
        lastfailed = self.config.pluginmanager.get_plugin("lfplugin")
        if getattr(self.config.option, "lf", False) and getattr(lastfailed, "lastfailed", None):
            problems.append(
                "--lf ran only the tests that failed last time: the gate needs all its checks"
            )
        for nodeid, reason in self.skipped_collectors.items():
            if self._names_a_gate(nodeid):
                problems.append(
                    f"{nodeid or '.'} was skipped at collection ({reason}) and names a gate "
                    "of this run: its gate tests never ran"
                )
        return problems

    def _names_a_gate(self, nodeid: str) -> bool:
        """Whether the source of a skipped collector names a selected gate (or a gate mark)."""
        path = self.config.rootpath / nodeid.split("::")[0]
        files: Iterable[Path] = [path]
        if path.is_dir():
            files = itertools.islice(path.rglob("*.py"), _SCAN_FILES)
        words = ["mark.gate", *self.selected]
        for file in files:
            try:
                with open(file, "rb") as handle:
                    text = handle.read(_SCAN_BYTES).decode("utf-8", "replace")
            except OSError:
                continue
            if any(word in text for word in words):
                return True
        return False

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
            output["fwgates_late"] = {nodeid: list(keys) for nodeid, keys in self.late.items()}
            return
        if not self.decides():
            # --co, --fixtures, --setup-plan: nothing was decided, nothing is written, and
            # the run exits 0 (not 5) also when the selection is empty
            if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
                session.exitstatus = pytest.ExitCode.OK
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
        gates = self.gates()
        results = self.results(gates)
        problems = [f"gate file error: {error}" for error in self.load_errors]
        problems += self.placement_problems + self.narrowing_problems()
        if self.collect_errors:
            problems.append(f"{self.collect_errors} collection error(s)")
        if self.terminated:
            problems.append("the run was stopped by SIGTERM")
        elif self.interrupted:
            problems.append("the run was interrupted")
        decisions = decide_all(
            gates,
            results,
            self.waivers,
            problems,
            run_confidence(self.config),
            self.registry.owners(),
        )
        decided = {decision.gate.name for decision in decisions}
        missing = [name for name in self.selected if name not in decided]
        # a gate that could not be loaded is a FAILED decision, so every report shows it
        decisions += [self._unloadable(name) for name in missing]
        self.decisions = decisions
        for decision in self.decisions:
            self.config.hook.pytest_fwgates_gate_decided(decision=decision, config=self.config)
        verdict = overall(self.decisions) if not missing else GateVerdict.FAILED
        try:
            self._write_reports(missing)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            self.write_error = f"{where}{exc.strerror or exc}"
            verdict = GateVerdict.FAILED  # a verdict without its evidence is no pass
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED,
                          pytest.ExitCode.NO_TESTS_COLLECTED):  # fmt: skip
            session.exitstatus = _VERDICT_EXIT[verdict]
        self._tell_pytest(verdict)
        if verdict is not GateVerdict.PASSED:
            self._ended = (session, _VERDICT_EXIT[verdict])

    def _tell_pytest(self, verdict: GateVerdict) -> None:
        """pytest's own outputs name every gate that did not pass: its terminal summary line
        (``3 passed, 1 gate FAILED``: never all green) and its ``--junitxml`` (a test case
        ``gate::NAME``, a failure, or a skip for human review), with the verdict's reason.

        Told to pytest's terminal reporter and JUnit writer only, not as a report of every
        plugin: a gate is no test to rerun, to count towards ``--maxfail`` or ``--lf``."""
        ended = [
            (d.gate.name, d.verdict, _what_is_missing(d))
            for d in self.decisions
            if d.verdict is not GateVerdict.PASSED
        ]
        if not ended and verdict is not GateVerdict.PASSED:
            ended = [("reports", verdict, f"gate reports not written: {self.write_error}")]
        rootdir = self.config.rootpath
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # pragma: no cover (a pytest without it writes no JUnit here)
            xml = None
        else:
            xml = self.config.stash.get(xml_key, None)
        for name, gate_verdict, reason in ended:
            text = clean_line(self.loader.redactor.text(f"gate {name} {gate_verdict}: {reason}"))
            nodeid = f"gate::{name}"
            files = self.loader.user_files(name) if name in self.selected else []
            where = os.path.relpath(files[0], rootdir) if files else nodeid
            location = (where, None, nodeid)
            review = gate_verdict is GateVerdict.HUMAN_REVIEW_REQUIRED
            report = pytest.TestReport(
                nodeid,
                location,
                {},
                "skipped" if review else "failed",
                (where, 1, f"Skipped: {text}") if review else text,
                "call",
            )
            if reporter is not None:
                add = getattr(reporter, "_add_stats", None)  # also sets the line's colour
                if add is not None:
                    add(f"gate {gate_verdict}", [report])
                else:  # pragma: no cover
                    reporter.stats.setdefault(f"gate {gate_verdict}", []).append(report)
            if xml is not None:
                xml.pytest_runtest_logreport(report)
                xml.pytest_runtest_logreport(
                    pytest.TestReport(nodeid, location, {}, "passed", None, "teardown")
                )

    def hold_exit_status(self) -> None:
        """The last word on the exit status (a cleanup of the config, after every
        ``pytest_sessionfinish`` and ``pytest_unconfigure``): a run whose gates did not pass
        never exits 0, whatever a conftest's hook made of ``session.exitstatus`` after the
        verdict (``if exitstatus == 5: session.exitstatus = 0`` helpers, wrappers)."""
        if self._ended is not None:
            session, status = self._ended
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = status

    def _unloadable(self, name: str) -> GateDecision:
        error = self.gate_errors.get(name) or "the gate could not be loaded"
        return GateDecision(
            gate=Gate(name=name, title=name),
            verdict=GateVerdict.FAILED,
            reason=f"gate file error: {error}",
        )

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
        summary = summary_path(self.junit_path)
        atomic_write_all(
            [
                (self.junit_path, build_junit(self.decisions)),
                (summary, summary_bytes(self.decisions, run_info)),
            ]
        )
        self.written = [self.junit_path, summary]

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or (not self.decisions and not self.load_errors):
            return
        tr = terminalreporter
        tr.write_sep("=", "gate verdicts")
        for report in tr.stats.get("inconclusive", ()):
            # pytest's short summary shows failures only: these say why here
            why = short_message(report, self.loader.redactor)
            why = why.split("INCONCLUSIVE: ", 1)[-1]  # (after a YAML check's file and line)
            tr.write_line(clean_line(f"INCONCLUSIVE {report.nodeid} - {why}"), yellow=True)
        width = table_width(self.config.get_terminal_writer(), os.environ)
        # an unloadable gate's error is printed in full below the table, once
        shown = [
            dataclasses.replace(d, reason="its gate file could not be loaded (error below)")
            if d.gate.name in self.gate_errors and not d.criteria
            else d
            for d in self.decisions
        ]
        for line, word in table_lines(shown, width=width):
            tr.write_line(line, **verdict_color(word))
        for name in self.selected:
            if not self.loader.user_files(name) and name not in self.gate_errors:
                tr.write_line(
                    clean_line(f"{name}: no gate file found; looked in: {self._looked_in()}")
                )
        for error in self.load_errors:
            tr.write_line(clean_line(f"gate file error: {error}"), red=True)
        if self.write_error:
            tr.write_line(clean_line(f"gate reports not written: {self.write_error}"), red=True)
        for path in self.written:
            tr.write_line(f"gate report: {path}")

    def _looked_in(self) -> str:
        from .plugin import _gate_dirs

        return ", ".join(str(folder) for folder in _gate_dirs(self.config))


def _what_is_missing(decision: GateDecision) -> str:
    """The reason of a gate's verdict, with the reason of each required criterion that
    blocks it (what was missing, what failed) when the verdict's own reason names them only."""
    details = [
        f"{c.criterion.id}: {c.reason}"
        for c in decision.criteria
        if c.criterion.required
        and c.verdict in (CriterionVerdict.FAIL, CriterionVerdict.NOT_EVALUATED)
        and c.reason
    ]
    if decision.verdict is GateVerdict.FAILED and details:
        return f"{decision.reason} ({'; '.join(details)})"
    return decision.reason


def recorded_result(
    where: tuple[str, str, str, str],
    outcome: Outcome,
    measured: dict[str, Any],
    measured_by: dict[str, str],
    support: dict[str, dict[str, Any]],
    in_force: dict[str, str],
    message: str = "",
    duration: float = 0.0,
    location: str = "",
) -> CheckResult:
    """The result of a marked Python test (``where``: node id, gate, criterion, check id)
    with the values it recorded, held to the standards ``in_force`` it measured and to a
    ``gate_check``'s own thresholds; the verdict judges it (``hold_to_standards``)."""
    nodeid, gate, criterion, check_id = where
    thresholds = {k: v for k, v in in_force.items() if k in measured}
    supports: dict[str, dict[str, Any]] = {}
    for name, given in support.items():
        given = dict(given)
        own = given.pop("threshold", None)  # a gate_check's own expect
        if own is not None and name not in thresholds:
            thresholds[name] = str(own)
        supports[name] = given
    return CheckResult(
        nodeid=nodeid,
        gate=gate,
        criterion=criterion,
        check_id=check_id,
        outcome=outcome,
        measured=dict(measured),
        measured_by=dict(measured_by),
        thresholds=thresholds,
        message=message,
        duration=duration,
        location=location,
        support=supports,
    )


def _skip_reason(report: pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr or "skipped")
    return (
        text.removeprefix("Skipped: ").strip().splitlines()[0][:200] if text.strip() else "skipped"
    )


def _marker_args(marker: pytest.Mark) -> tuple[str, str]:
    gate = marker.args[0] if marker.args else marker.kwargs.get("name", "")
    criterion = marker.kwargs.get("criterion") or (marker.args[1] if len(marker.args) > 1 else "")
    return str(gate or ""), str(criterion or "")


class EndGuard:
    """Around every end-of-session hook (the verdict and reports, xdist's wait for its
    workers, the terminal summary): a late Ctrl-C or SIGTERM is one line and exit status 2,
    not a traceback. Registered beside the GateRun."""

    def __init__(self, run: GateRun) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        run = self.run
        run.defer_signals()
        try:
            return (yield)
        finally:
            if run.late_signal is not None and not run.is_worker:
                reporter = session.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.ensure_newline()
                    reporter.line(
                        f"{run.late_signal} while the run was ending: its reports are complete",
                        red=True,
                    )
                if session.exitstatus == pytest.ExitCode.OK:
                    session.exitstatus = pytest.ExitCode.INTERRUPTED
