"""What pytest reported of each item a gate owns, reconciled into one outcome per item.

pytest can end, repeat or never run an item in many ways: a failed setup or teardown, a skip,
an xfail, a crashed pytest-xdist worker (the controller makes a failed report of its own),
a rerun plugin (pytest-rerunfailures logs the failed attempt as ``rerun``; flaky-style plugins
log only the last attempt), ``--dist each`` (every worker runs the item), a conftest that
rewrites a report after it was made. The rules here are the same for all of them:

- **Every report counts, the worst wins.** A later pass never replaces an earlier failure of
  the same phase, whichever process or attempt it came from. A rerun is a failure; an xfail
  and a non-strict xpass are skips (the test's own mark says its pass proves nothing).
- **Every attempt counts, logged or not.** The process that runs an item keeps what it made
  of each of the item's reports (:class:`Attempts`) and every later report carries it, so an
  attempt a plugin never logged, or a report changed after it was made, still counts.
- **A YAML check passes only with its own result**: a check item whose call passed without
  the CheckResult its check code produced is an error.

:class:`ItemRecord` is the controller's side: one per node id, fed with every report.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from .model import Outcome
from .redact import Redactor

__all__ = ["SEVERITY", "Attempts", "ItemRecord", "seen_outcome", "short_message"]

#: how bad an outcome is, to combine reports and a check's own result
SEVERITY = {
    Outcome.PASSED: 0,
    Outcome.SKIPPED: 1,
    Outcome.INCONCLUSIVE: 2,  # its item fails in pytest: that failure is the same news
    Outcome.FAILED: 2,
    Outcome.ERROR: 3,
}
#: how bad one report's outcome is (as :func:`seen_outcome` reads it)
_RANK = {"passed": 0, "skipped": 1, "failed": 2}
#: the phases pytest runs; any other ``when`` (xdist's crash report says ``???``) is a crash
_PHASES = ("setup", "call", "teardown")


def seen_outcome(report: pytest.TestReport) -> str:
    """One report's outcome as the gate reads it: passed, skipped or failed.

    ``rerun`` (pytest-rerunfailures) and an outcome pytest does not know are failures; an
    xfail (also one that passed: a non-strict xpass) is a skip.
    """
    outcome = report.outcome
    if outcome == "passed":
        return "skipped" if getattr(report, "wasxfail", None) is not None else "passed"
    if outcome == "skipped":
        return "skipped"
    return "failed"


def _phase(when: str) -> str:
    return when if when in _PHASES else "crash"


def short_message(report: pytest.TestReport, redactor: Redactor) -> str:
    """The first line of a report's failure or skip text, masked, at most 500 characters."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = str(crash.message)
    elif isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
    else:
        text = str(report.longrepr or "")
    text = redactor.text(text)  # before cutting: a cut could leave part of a secret
    text = text.removeprefix("Failed: ")  # pytest.fail(...)'s own word
    first = text.strip().splitlines()[0] if text.strip() else report.outcome
    return first[:500]


def _worse_result(kept: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """The worse of two CheckResults (JSON); the earlier one on a tie."""
    if new is None:
        return kept
    if kept is None:
        return new
    rank_new = SEVERITY.get(_result_outcome(new), 3)
    return new if rank_new > SEVERITY.get(_result_outcome(kept), 3) else kept


def _result_outcome(result: dict[str, Any]) -> Outcome:
    try:
        return Outcome(str(result.get("outcome")))
    except ValueError:
        return Outcome.ERROR


@dataclasses.dataclass
class Attempts:
    """What the process running an item made of its reports, attempt after attempt."""

    #: reports made per phase: more than one means the item ran again
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    #: the worst outcome made per phase
    worst: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the message of the first report that did not pass
    message: str = ""
    #: the worst CheckResult (JSON) the item's check produced in any attempt
    result: dict[str, Any] | None = None

    def add(
        self, when: str, outcome: str, message: str | None, result: dict[str, Any] | None
    ) -> None:
        phase = _phase(when)
        self.counts[phase] = self.counts.get(phase, 0) + 1
        if phase not in self.worst or _RANK[outcome] > _RANK[self.worst[phase]]:
            self.worst[phase] = outcome
        if outcome != "passed" and not self.message and message:
            self.message = message
        self.result = _worse_result(self.result, result)

    def telling(self) -> bool:
        """Whether a report must carry this: the item ran again, or did not simply pass."""
        return any(n > 1 for n in self.counts.values()) or any(
            o != "passed" for o in self.worst.values()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": max(self.counts.values(), default=0),
            "worst": dict(self.worst),
            "message": self.message,
            "result": self.result,
        }


@dataclasses.dataclass
class ItemRecord:
    """Every report of one node id (all attempts, all workers), reconciled."""

    members: list[tuple[str, str, str]]
    #: worst outcome per phase (setup, call, teardown, crash)
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the worst CheckResult (JSON) the item's check produced
    result: dict[str, Any] | None = None
    measured: dict[str, float] = dataclasses.field(default_factory=dict)
    #: what recorded values were measured from (counts, samples), by value name
    support: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: figure -> check type, for values a check measured for a marked test (gate_check)
    measured_by: dict[str, str] = dataclasses.field(default_factory=dict)
    #: why values a marked test recorded do not count (a missed standard, an owned figure)
    problems: list[str] = dataclasses.field(default_factory=list)
    message: str = ""
    #: rank of the outcome ``message`` belongs to (a worse report's message replaces it)
    message_rank: int = 0
    duration: float = 0.0
    location: str = ""
    #: a YAML check (a GateItem), which must report a CheckResult
    is_check: bool = False
    #: call reports seen, and the most attempts one process made
    runs: int = 0
    attempts: int = 0
    #: a call of a check item passed without the check's result
    unproven: bool = False

    def _see(self, phase: str, outcome: str, message: str) -> None:
        rank = _RANK[outcome]
        if rank >= _RANK[self.outcomes.get(phase, "passed")]:
            self.outcomes[phase] = outcome
        if rank > self.message_rank or (rank and rank == self.message_rank and not self.message):
            self.message, self.message_rank = message, rank

    def add(self, report: pytest.TestReport, data: dict[str, Any], redactor: Redactor) -> None:
        """Take one report (``data``: what it carries for the gate, possibly nothing)."""
        outcome = seen_outcome(report)
        made = data.get("made")  # the outcome it had when it was made, if it was worse
        if made is not None and _RANK.get(made, 2) > _RANK[outcome]:
            outcome = made if made in _RANK else "failed"
        if data.get("judged"):
            # pytest's outcome of a marked test the verdict's judgment of its recorded values
            # gave it: the test itself passed, and the verdict judges the values again
            outcome = "passed"
        phase = _phase(report.when)
        message = short_message(report, redactor) if outcome != "passed" else ""
        self._see(phase, outcome, message)
        self.duration += report.duration
        if phase == "call":
            self.runs += 1
        if data.get("check"):
            self.is_check = True
        result = data.get("result")
        self.result = _worse_result(self.result, result)
        if self.is_check and phase == "call" and outcome == "passed" and result is None:
            self.unproven = True
        if data.get("measured"):
            self.measured.update(data["measured"])
            by = data.get("measured_by") or {}
            for key in data["measured"]:
                if key in by:
                    self.measured_by[key] = str(by[key])
                else:
                    self.measured_by.pop(key, None)  # the test recorded it itself
        if data.get("support"):
            self.support.update(data["support"])
        for problem in data.get("problems") or ():
            if problem not in self.problems:
                self.problems.append(str(problem))
        attempts = data.get("attempts")
        if attempts:
            self.attempts = max(self.attempts, int(attempts.get("runs") or 0))
            for earlier_phase, earlier in (attempts.get("worst") or {}).items():
                if earlier in _RANK:
                    self._see(str(earlier_phase), earlier, str(attempts.get("message") or ""))
            self.result = _worse_result(self.result, attempts.get("result"))
        if phase == "call" or outcome != "passed":
            self.location = f"{report.location[0]}:{(report.location[1] or 0) + 1}"

    def merge(self, other: ItemRecord) -> None:
        """Take the reports another record of the same node id collected."""
        for phase, outcome in other.outcomes.items():
            self._see(phase, outcome, other.message)
        self.result = _worse_result(self.result, other.result)
        self.measured.update(other.measured)
        self.measured_by.update(other.measured_by)
        self.support.update(other.support)
        self.problems.extend(p for p in other.problems if p not in self.problems)
        self.duration += other.duration
        self.runs += other.runs
        self.attempts = max(self.attempts, other.attempts)
        self.is_check = self.is_check or other.is_check
        self.unproven = self.unproven or other.unproven
        self.location = self.location or other.location

    def outcome(self) -> tuple[Outcome, str]:
        """pytest's view of the item, and why (the first message of its worst report)."""
        outcomes = self.outcomes
        message = self.message
        if any(o == "failed" for phase, o in outcomes.items() if phase != "call"):
            outcome = Outcome.ERROR  # setup, teardown, or a crash report of xdist
        elif outcomes.get("call") == "failed":
            outcome = Outcome.FAILED
        elif outcomes.get("call") == "passed" and not any(
            o == "skipped" for o in outcomes.values()
        ):
            outcome = Outcome.PASSED
        else:
            outcome = Outcome.SKIPPED
            message = message or "did not run to the end"
        if self.is_check and outcome is Outcome.PASSED and (self.result is None or self.unproven):
            # only the check's own result can pass it (a no-op runtest cannot)
            return (
                Outcome.ERROR,
                "the check reported no result: its test item did not run the check",
            )
        if outcome is not Outcome.PASSED:
            message += self.repeat_note()
        return outcome, message

    def repeat_note(self) -> str:
        """Said of an item that ran more than once (reruns, ``--dist each``)."""
        runs = max(self.runs, self.attempts)
        if runs < 2:
            return ""
        return f" (the worst of {runs} runs: a rerun or another run does not undo it)"
