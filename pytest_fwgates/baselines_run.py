"""The baseline store in a gate run, and live progress lines of long checks.

:class:`BaselineRecorder` is registered beside the GateRun when ``--gate`` is given. Every
process (xdist workers too) looks baselines up on demand for relative thresholds; only the
controller saves, at the end, when ``--gate-baseline-save`` is given, the results that
measured (passed, failed on their figures, or left undecided for want of a baseline), never
errors or checks that did not run; with it, the outcomes of deploy, rollback and drill checks
are appended to the deploy history (:mod:`.history`), errors included.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .baseline import DEFAULT_DIR, BaselineStore, git_info, machine_info, savable
from .environment import run_ids
from .history import HISTORY_TYPES, HistoryError, HistoryStore
from .keys import recorder_key
from .model import CheckResult, Outcome

if TYPE_CHECKING:
    from .run import GateRun

__all__ = [
    "BaselineRecorder",
    "baseline_dir",
    "check_baseline_dir",
    "progress_writer",
    "recorder_key",
]


def baseline_dir(config: pytest.Config) -> Path:
    given = config.option.fwgates_baseline_dir
    if given:
        path = Path(given)
        return path if path.is_absolute() else config.invocation_params.dir / path
    text = str(config.getini("gate_baseline_dir") or DEFAULT_DIR)
    path = Path(text)
    return path if path.is_absolute() else config.rootpath / path


def progress_writer(config: pytest.Config) -> Any:
    """A function that writes a live line to the terminal; None under -q and in xdist workers."""
    if hasattr(config, "workerinput") or config.get_verbosity() < 0:
        return None

    lock = threading.Lock()

    def write(line: str) -> None:
        # called from the thread that watches the check (the test's thread waits on Locust):
        # output capture is suspended for the line so that it reaches the terminal or CI log
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        with lock:
            if capture is not None:
                with capture.global_and_fixture_disabled():
                    reporter.write_line(f"[fwgates] {line}")
            else:
                reporter.write_line(f"[fwgates] {line}")

    return write


def check_baseline_dir(config: pytest.Config) -> None:
    """A usage error, before the run, when baselines are to be saved where no folder can be:
    the folder (or the nearest part of its path that exists) is not a folder."""
    if not config.option.fwgates_baseline_save:
        return
    path = baseline_dir(config)
    given = config.option.fwgates_baseline_dir or config.getini("gate_baseline_dir") or path
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                what = "is not a folder" if part == path else f"{part} is not a folder"
                raise pytest.UsageError(f"--gate-baseline-dir {given}: {what}")
            return


class BaselineRecorder:
    def __init__(self, config: pytest.Config, run: GateRun) -> None:
        self.config = config
        self.run = run
        self.store = BaselineStore(baseline_dir(config))
        self.save = bool(config.option.fwgates_baseline_save)
        self.saved: list[Path] = []
        self.history = HistoryStore(self.store.root)
        self.appended = 0
        run.context.baseline_lookup = self.store.lookup
        run.context.baseline_distribution_lookup = self.store.distribution
        run.context.history_lookup = lambda spec: self.history.read(
            spec.gate, spec.criterion, spec.id
        )
        run.context.progress = progress_writer(config)

    def save_runs(self) -> str | None:
        """Store the run's figures (``--gate-baseline-save``): called after the verdict and
        before the handoff package is written, so that the package holds this run's baseline.
        What went wrong (the run then fails), or None."""
        if not self.save or hasattr(self.config, "workerinput") or not self.run.decisions:
            return None
        targets = {
            (spec.gate, spec.criterion, spec.id): spec.display_target or spec.target
            for gate in self.run.gates()
            for spec in gate.checks()
        }
        seen: set[tuple[str, str, str]] = set()
        machine = machine_info()
        commit = git_info(self.config.rootpath)
        for decision in self.run.decisions:
            for criterion in decision.criteria:
                for result in criterion.results:
                    key = (result.gate, result.criterion, result.check_id)
                    if key in seen or not savable(result):
                        continue
                    seen.add(key)
                    target = self.run.loader.redactor.text(targets.get(key, result.nodeid))
                    try:
                        saved = self.store.save(
                            result, target=target, machine=machine, commit=commit
                        )
                    except OSError as exc:
                        return f"gate baselines not saved: {exc.strerror or exc}: {exc.filename}"
                    self.saved.append(saved)
        return self.append_history()

    def append_history(self) -> str | None:
        """Append the outcomes of this run's deploy, rollback and drill checks to their
        history: what each measured, or an ``error`` outcome for one that could not measure
        (it counts as a failure). Checks that did not run add nothing."""
        ids = run_ids(os.environ)
        run_id = next(iter(ids.values()), None)
        seen: set[tuple[str, str, str]] = set()
        for decision in self.run.decisions:
            for criterion in decision.criteria:
                for result in criterion.results:
                    key = (result.gate, result.criterion, result.check_id)
                    if key in seen or result.check_type not in HISTORY_TYPES:
                        continue
                    seen.add(key)
                    entries = _history_entries(result)
                    if not entries:
                        continue
                    if run_id:
                        entries = [{**e, "run_id": run_id} for e in entries]
                    try:
                        self.history.append(*key, entries)
                    except HistoryError as exc:
                        return f"deploy history not saved: {exc}"
                    except OSError as exc:
                        return f"deploy history not saved: {exc.strerror or exc}: {exc.filename}"
                    self.appended += len(entries)
        return None

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.saved:
            terminalreporter.write_line(
                f"gate baselines: {len(self.saved)} run(s) saved in {self.store.root}"
            )
        if self.appended:
            terminalreporter.write_line(
                f"deploy history: {self.appended} outcome(s) appended in {self.history.root}"
            )


def _history_entries(result: CheckResult) -> list[dict[str, Any]]:
    """What a result adds to its check's history: the outcomes it measured; one ``error``
    outcome when it could not measure; nothing when it did not run."""
    found = result.measured.get("history_outcomes")
    if isinstance(found, list) and found and all(isinstance(e, dict) for e in found):
        return [dict(e) for e in found]
    if result.outcome is not Outcome.ERROR:
        return []
    return [
        {
            "time": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "type": result.check_type,
            "outcome": "error",
            "reason": result.message[:300],
        }
    ]
