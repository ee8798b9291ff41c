"""What the timed checks (``deploy``, ``rollback``, ``drill``) share: options of the prober,
running their commands, and the timeline evidence."""

from __future__ import annotations

import datetime as dt
import math
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..bounds import count_support, mean_support
from ..fsutil import write_file
from ..history import HISTORY_SCHEMA, HistoryError, window
from ..owners import PROBE_FIGURES
from ..probe import DEFAULT_INTERVAL, Figures, Probe, ProbeError, Prober, VersionRule
from ..process import ProcessResult
from ..thresholds import ThresholdError, parse_duration
from ..timeline import write_timeline
from .base import Check, CheckError, Measurement

__all__ = ["DURATION", "PROBE_OPTIONS", "TimedCheck"]

#: characters of command output kept in a check's facts (the evidence files keep more)
SHOWN = 2000

DURATION: dict[str, Any] = {
    "description": "Seconds, or a number with a unit: 30, '90s', '2m', '500ms'.",
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$"},
    ],
}
_URL: dict[str, Any] = {"type": "string", "minLength": 1}

#: the prober's figures over a deploy or a rollback, each one a threshold key
PROBE_KEYS = PROBE_FIGURES

PROBE_OPTIONS: dict[str, dict[str, Any]] = {
    "health": {**_URL, "description": "URL probed through the whole check (GET)"},
    "version": {
        "description": "where the version is read, and the one expected at the end",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "json": {"type": "string", "minLength": 1},
            "header": {"type": "string", "minLength": 1},
            "regex": {"type": "string", "minLength": 1},
            "expect": {"type": ["string", "number"]},
        },
        "oneOf": [{"required": ["json"]}, {"required": ["header"]}, {"required": ["regex"]}],
    },
    "interval": {**DURATION, "description": "time between probes (default 50ms, at least 10ms)"},
    "probe_timeout": {**DURATION, "description": "bound of one probe (5 intervals, >= 0.5s)"},
    "stable": {**DURATION, "description": "how long the service must stay good (default 1s)"},
    "settle_timeout": {**DURATION, "description": "bound of the wait to become stable (60s)"},
    "verify": {
        "description": "HTTPS: verify the certificate (true), not (false), or a CA file",
        "type": ["boolean", "string"],
    },
    "history": HISTORY_SCHEMA,
}

#: the figures of one outcome kept in the deploy history, and their figures over a window
HISTORY_FIGURES = ("duration_s", "recovery_s", "mttd_s", "mttr_s", "downtime_ms")
#: the slowest recovery over a history window (rollback: recovery_s, drill: mttr_s)
HISTORY_MAX = {"recovery_s": "max_recovery_s", "mttr_s": "max_mttr_s"}


def duration(value: Any, default: float, name: str) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ThresholdError as exc:
        raise CheckError(f"{name}: {exc}") from None


def last_line(result: ProcessResult) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1][:200] if lines else ""


def exit_value(result: ProcessResult) -> float:
    """A command's exit status as a measured value: -1 when it was stopped."""
    return float(result.exit_status) if result.exit_status is not None else -1.0


class TimedCheck(Check):
    """A check that runs commands while a :class:`~pytest_fwgates.probe.Prober` watches."""

    shell_target = True
    exclusive = True
    required_options: ClassVar[tuple[str, ...]] = ("health",)

    # --- settings --------------------------------------------------------------------------

    #: figures measured only over a deploy history (``history:``): the criterion's standards
    #: on them apply to a check of this type only when it has a window
    history_only: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def measures(cls, target: Any, options: dict[str, Any]) -> frozenset[str]:
        if options.get("history"):
            return cls.threshold_keys
        return cls.threshold_keys - cls.history_only

    def option(self, key: str, default: Any = None) -> Any:
        return self.spec.options.get(key, default)

    # --- deploy history --------------------------------------------------------------------

    def outcomes(self, measurement: Measurement) -> list[dict[str, Any]]:
        """This run's outcomes as the history records them: one per deploy run (``repeat``),
        else one for the check; ``ok`` when it ran and nothing failed."""
        when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        runs = measurement.facts.get("runs")
        if not isinstance(runs, list) or not runs:
            runs = [{**measurement.facts, **measurement.values, "ok": not measurement.failures}]
        found = []
        for run in runs:
            # an aborted deploy in steps deployed nothing, even when its check expected the
            # abort (a known-bad build on purpose): never a successful deploy in the history
            aborted = bool(run.get("aborted"))
            entry: dict[str, Any] = {
                "time": when,
                # its own: a success counts once, however often its line is copied
                "id": secrets.token_hex(8),
                "type": self.type_name,
                "outcome": "ok" if run.get("ok") and not aborted else "failed",
            }
            if aborted and run.get("ok"):
                entry["reason"] = f"aborted: {run.get('abort_reason') or 'by the analysis'}"[:300]
            for key in HISTORY_FIGURES:
                value = run.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    entry[key] = value
            for key, name in (("version_before", "version_from"), ("version_after", "version_to")):
                if run.get(key) is not None:
                    entry[name] = str(run[key])[:200]
            if not run.get("ok") and "reason" not in entry:
                reasons = run.get("failures") or measurement.failures
                if reasons:
                    entry["reason"] = str(reasons[0])[:300]
            found.append(entry)
        return found

    def finish(self, measurement: Measurement) -> None:
        """Keep this run's outcomes for the history; with ``history:``, ``success_ratio`` (and
        the slowest recovery) over the recorded outcomes of the window plus this run's."""
        current = self.outcomes(measurement)
        measurement.facts["history_outcomes"] = current
        policy = self.option("history")
        if not policy:
            return
        lookup = self.context.history_lookup
        if lookup is None:
            measurement.errors.append("history: no store to read the deploy history from")
            return
        try:
            recorded = lookup(self.spec)
            chosen = window(recorded, current, policy)
        except (HistoryError, ThresholdError) as exc:
            measurement.errors.append(f"history: {exc}")
            return
        noun = {"deploy": "deploys", "rollback": "rollbacks", "drill": "drills"}[self.type_name]
        succeeded, total = chosen.succeeded, chosen.total
        measurement.values["success_ratio"] = round(succeeded / total, 6)
        support = count_support(succeeded, total, noun, "successful")
        support["over"] = chosen.over
        measurement.support["success_ratio"] = support
        for key, name in HISTORY_MAX.items():
            having = [
                float(e[key])
                for e in chosen.entries
                if isinstance(e.get(key), int | float) and not isinstance(e.get(key), bool)
            ]
            if having:
                measurement.values[name] = max(having)
        if self.type_name == "drill":
            # MTTR and MTTD are means: over the drills of the window that measured them
            for key in ("mttr_s", "mttd_s"):
                having = [
                    float(e[key])
                    for e in chosen.entries
                    if isinstance(e.get(key), int | float) and not isinstance(e.get(key), bool)
                ]
                if key in measurement.values and having:
                    measurement.facts[f"{key}_this_drill"] = measurement.values[key]
                    measurement.values[key] = round(math.fsum(having) / len(having), 3)
                    mean = mean_support(having, "drills")
                    mean["over"] = chosen.over
                    measurement.support[key] = mean
        times = [e["_time"] for e in chosen.entries if "_time" in e]
        measurement.facts["history"] = {
            "outcomes": total,
            "successful": succeeded,
            "window": chosen.over,
            "oldest": min(times).isoformat() if times else None,
            "recorded": len(recorded),
        }

    @property
    def interval(self) -> float:
        return duration(self.option("interval"), DEFAULT_INTERVAL, "interval")

    @property
    def stable_s(self) -> float:
        return duration(self.option("stable"), 1.0, "stable")

    @property
    def settle_s(self) -> float:
        return duration(self.option("settle_timeout"), 60.0, "settle_timeout")

    def version_rule(self, expect: str | None = None) -> VersionRule | None:
        raw = self.option("version")
        try:
            rule = VersionRule.from_option(raw)
        except ProbeError as exc:
            raise CheckError(str(exc)) from None
        if rule is not None and expect is not None:
            rule = VersionRule(rule.json, rule.header, rule.regex, expect)
        return rule

    def verify(self) -> bool | str:
        value = self.option("verify", True)
        if isinstance(value, str):
            path = Path(value)
            return str(path if path.is_absolute() else self.context.rootdir / path)
        return bool(value)

    def prober(self, version: VersionRule | None, limit_s: float) -> Prober:
        timeout = self.option("probe_timeout")
        try:
            return Prober(
                str(self.option("health")),
                interval=self.interval,
                timeout=duration(timeout, 0.0, "probe_timeout") if timeout else None,
                version=version,
                verify=self.verify(),
                limit_s=limit_s,
                name=f"fwgates-prober[{self.spec.id}]",
            )
        except ProbeError as exc:
            raise CheckError(f"health: {exc}") from None

    # --- steps -----------------------------------------------------------------------------

    def run(
        self, text: str, timeout: float, what: str, extra_env: Mapping[str, str] | None = None
    ) -> ProcessResult:
        """Run shell text (a value reaches it only through ``spec.env``), bounded."""
        env = {**self.spec.env, **(extra_env or {})}
        return self.run_local(text, max(timeout, 0.1), f"{what} command", env)

    def failed_command(self, what: str, result: ProcessResult, timeout: float) -> str | None:
        """Why a command counts as failed (stopped at its bound, non-zero exit), or None."""
        if result.timed_out or result.exit_status is None:
            return f"{what} command did not finish within {timeout:.0f} s and was stopped"
        if result.exit_status != 0:
            tail = last_line(result)
            return f"{what} command failed (exit {result.exit_status})" + (
                f": {tail}" if tail else ""
            )
        return None

    def wait_settled(
        self,
        prober: Prober,
        *,
        since: float,
        version: str | None,
        until: float,
        deadline: float,
        min_probes: int = 0,
    ) -> float | None:
        """When the service became stable (``stable_s`` healthy on ``version``, at least
        ``min_probes`` probes) after ``until``, or None; bounded by ``settle`` and the check's
        deadline."""
        return prober.wait_stable(
            since=since,
            window_s=self.stable_s,
            version=version,
            until=until,
            timeout=min(self.settle_s, max(deadline - time.monotonic(), 0.0)),
            min_probes=min_probes,
        )

    def wait_healthy_before(self, prober: Prober, deadline: float) -> Probe:
        """The first good probe (bounded: 10 s at most); an error when the service is down."""
        bound = min(10.0, max(deadline - time.monotonic(), 0.1))
        prober.wait_for(lambda probes: any(p.ok for p in probes) and len(probes) >= 3, bound)
        good = prober.last_good()
        if good is None:
            seen = prober.probes
            why = seen[-1].error if seen else "no probe finished"
            raise CheckError(
                f"the service is not healthy before the {self.type_name} started "
                f"({self.option('health')}: {why})"
            )
        return good

    # --- evidence --------------------------------------------------------------------------

    def keep_output(
        self, measurement: Measurement, name: str, result: ProcessResult | None
    ) -> None:
        """A command's output in the facts (its end) and, when there is any, as evidence files."""
        if result is None:
            return
        longest = self.context.redactor.longest
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            text = text.strip()
            if not text:
                continue
            shown = text if len(text) <= SHOWN else "…" + text[-SHOWN:][max(longest - 1, 0) :]
            measurement.facts[f"{name}_{stream}"] = shown
            path = write_file(
                self.context.evidence_dir(self.spec) / f"{name}-{stream}.txt",
                text + "\n",
                errors="backslashreplace",
            )
            measurement.evidence[f"{name}_{stream}"] = path

    def keep_timeline(
        self,
        measurement: Measurement,
        prober: Prober,
        figures: Figures,
        stem: str = "timeline",
        title: str = "",
    ) -> None:
        folder = self.context.evidence_dir(self.spec)
        files = write_timeline(
            folder,
            stem,
            prober.probes,
            prober.marks,
            figures,
            title or f"{self.type_name}: {self.spec.id}",
        )
        measurement.evidence.update(files)


def window_figures(prober: Prober, start: float, end: float | None = None) -> Figures:
    """Figures of the probes from ``start`` (the command's start) on."""
    return prober.figures(start=start, end=end)
