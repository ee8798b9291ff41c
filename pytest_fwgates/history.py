"""Deploy history: every deploy, rollback and drill outcome, appended to the store.

One JSON line per outcome in ``<baseline dir>/history/<gate>/<criterion>/<check>.jsonl``::

    {"time": "2026-12-02T07:01:12+00:00", "outcome": "ok", "type": "deploy",
     "duration_s": 3.2, "version_from": "v1", "version_to": "v2", "run_id": "1234-1",
     "id": "5f1c0a9e2b7d4c36"}

``outcome`` is ``ok``, ``failed`` (the deploy ran and did not succeed) or ``error`` (it could
not be measured); only ``ok`` counts as a success. The controller appends a run's outcomes
(with ``--gate-baseline-save``) under a lock, rewriting the file atomically, so a crash never
leaves half a line and two runs never interleave.

A check with ``history: {last: N}`` or ``history: {since: 90d}`` judges ``success_ratio`` over
the recorded outcomes in that window plus this run's. Each outcome has an ``id`` of its own, so
a success counts once: a line repeated word for word (a file merged with itself) and a success
dated in the future are not counted (a failure always is). A line that cannot be read is an error
naming ``file:line``: a history that cannot be read never passes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import atomic_write, read_regular
from .thresholds import ThresholdError, parse_duration

__all__ = [
    "HISTORY_SCHEMA",
    "HISTORY_TYPES",
    "HistoryError",
    "HistoryStore",
    "Window",
    "parse_period",
    "window",
]

#: the check types whose outcomes are recorded
HISTORY_TYPES = frozenset({"deploy", "rollback", "drill"})
OUTCOMES = ("ok", "failed", "error")
#: seconds a run waits for another run's append to finish
LOCK_WAIT_S = 10.0
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")
_PERIOD = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(d|w)\s*$")
_DAY = 86400.0

#: JSON Schema fragment of the ``history:`` option of deploy, rollback and drill
HISTORY_SCHEMA: dict[str, Any] = {
    "description": "Judge success_ratio over the recorded outcomes of this check: the newest "
    "N (this run's included) or those of a period ('90d', '4w', '12h') plus this run's.",
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "last": {"type": "integer", "minimum": 1, "maximum": 1000000},
        "since": {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {
                    "type": "string",
                    "pattern": r"^\s*(\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$",
                    "not": {"pattern": r"^\s*0*\.?0*\s*[a-z]*\s*$"},
                },
            ]
        },
    },
}


class HistoryError(Exception):
    """A history file that cannot be read or written (the message names file:line)."""


def _slug(text: str) -> str:
    return _SAFE.sub("_", text).strip("._")[:100] or "_"


def parse_period(value: object) -> float:
    """A period in seconds: a duration (``90s``, ``2h``) or days and weeks (``90d``, ``4w``)."""
    if isinstance(value, str) and (match := _PERIOD.match(value)):
        seconds = float(match.group(1)) * (_DAY if match.group(2) == "d" else 7 * _DAY)
        if not math.isfinite(seconds) or seconds <= 0 or seconds > 3660 * _DAY:
            raise ThresholdError(f"must be more than 0 and at most 10 years, got {value!r}")
        return seconds
    return parse_duration(value)


def _period_text(seconds: float) -> str:
    if seconds >= _DAY:
        days = seconds / _DAY
        return f"{days:g} day{'s' if days != 1 else ''}"
    hours = seconds / 3600
    if hours >= 1:
        return f"{hours:g} h"
    return f"{seconds:g} s"


def _time(text: object) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError("time is not a text")
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return when


class HistoryStore:
    """The history folder of a baseline store: one JSON-lines file per check."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "history"

    def path(self, gate: str, criterion: str, check: str) -> Path:
        return self.root / _slug(gate) / _slug(criterion) / f"{_slug(check)}.jsonl"

    def read(self, gate: str, criterion: str, check: str) -> list[dict[str, Any]]:
        """The recorded outcomes, oldest first; :class:`HistoryError` naming file:line for a
        line that is not an outcome."""
        path = self.path(gate, criterion, check)
        try:
            text = read_regular(path).decode("utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise HistoryError(f"{path}: cannot be read: {exc}") from None
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError("not a JSON object")
                if entry.get("outcome") not in OUTCOMES:
                    raise ValueError(f"outcome is not one of {', '.join(OUTCOMES)}")
                entry["_time"] = _time(entry.get("time"))
            except ValueError as exc:
                raise HistoryError(f"{path}:{number}: not a recorded outcome: {exc}") from None
            entries.append(entry)
        return entries

    def append(
        self, gate: str, criterion: str, check: str, entries: Sequence[Mapping[str, Any]]
    ) -> Path:
        """Append ``entries`` (one JSON line each) under a lock; the file is rewritten
        atomically, so readers see it with all of them or none."""
        path = self.path(gate, criterion, check)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(dict(e), sort_keys=True) + "\n" for e in entries)
        with _locked(path.with_name(path.name + ".lock")):
            try:
                old = read_regular(path)
            except FileNotFoundError:
                old = b""
            if old and not old.endswith(b"\n"):
                old += b"\n"
            atomic_write(path, old + lines.encode("utf-8"))
        return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        give_up = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    raise HistoryError(
                        f"{path}: another run held the lock for {LOCK_WAIT_S:g} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass
class Window:
    """The outcomes a ``history:`` policy judges: the recorded ones in it plus this run's."""

    entries: list[dict[str, Any]]
    over: str

    @property
    def succeeded(self) -> int:
        return sum(1 for e in self.entries if e.get("outcome") == "ok")

    @property
    def total(self) -> int:
        return len(self.entries)


def window(
    recorded: list[dict[str, Any]],
    current: list[dict[str, Any]],
    policy: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> Window:
    """The outcomes of ``policy``: ``{last: N}`` the newest N (this run's included),
    ``{since: period}`` the recorded ones of the period and this run's."""
    now = now or dt.datetime.now(dt.UTC)
    recorded, dropped = _countable(recorded, now)
    note = (
        f"; {dropped} recorded success{'es' if dropped != 1 else ''} not counted "
        "(a repeated line or dated in the future)"
        if dropped
        else ""
    )
    if "since" in policy:
        seconds = parse_period(policy["since"])
        start = now - dt.timedelta(seconds=seconds)
        kept = [e for e in recorded if e["_time"] >= start]
        return Window([*kept, *current], f"over {_period_text(seconds)}{note}")
    last = int(policy.get("last", 1))
    chosen = [*recorded, *current][-last:]
    times = [e["_time"] for e in chosen if "_time" in e]
    span = ""
    if times:
        span = f", since {min(times).strftime('%Y-%m-%d')}"
    return Window(chosen, f"of the last {last} recorded{span}{note}")


#: how far a recorded outcome may lie ahead of this machine's clock (another runner's skew)
CLOCK_SKEW = dt.timedelta(minutes=5)


def _countable(
    recorded: list[dict[str, Any]], now: dt.datetime
) -> tuple[list[dict[str, Any]], int]:
    """The recorded outcomes that count, and how many successes do not: a success dated
    after now (beyond :data:`CLOCK_SKEW`) has not happened yet, and a line repeated word for
    word (a history file merged with itself, a line appended twice) is one success, not
    two. A failure always counts: leaving one out could only flatter the ratio."""
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    dropped = 0
    for entry in recorded:
        if entry.get("outcome") == "ok":
            when = entry.get("_time")
            line = json.dumps([entry_json(entry), str(when)], sort_keys=True, default=str)
            if (isinstance(when, dt.datetime) and when > now + CLOCK_SKEW) or line in seen:
                dropped += 1
                continue
            seen.add(line)
        kept.append(entry)
    return kept, dropped


def entry_json(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An outcome as it is stored (without the parsed time)."""
    return {k: v for k, v in entry.items() if not k.startswith("_")}
