"""``load``: run Locust against a host and hold its figures to thresholds.

Locust runs as a process of its own (see :mod:`pytest_fwgates.locust_run`): the user's own
locustfile, or ``paths:`` turned into FastHttpUser tasks. Measured in total and per endpoint:
``requests``, ``failures``, ``failure_ratio``, ``rps``, ``avg_ms``, ``p50_ms``, ``p90_ms``,
``p95_ms``, ``p99_ms``, ``max_ms``; response times exact to 1 ms. Per-endpoint figures are
named ``"GET /items::p95_ms"`` and held to ``expect: {endpoints: {/items: {p95_ms: ...}}}``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from ..bounds import count_support, histogram_mean_support, quantile_support, time_batches
from ..exclusive import LockTimeout, exclusive
from ..locust_run import (
    FIGURES,
    PERCENTILES,
    STOP_TIMEOUT,
    LoadError,
    LoadPlan,
    LoadRun,
    progress_line,
    run_locust,
    weighted_paths,
)
from ..thresholds import Threshold, ThresholdError, parse, parse_duration
from .base import Check, CheckError, Measurement

__all__ = ["LoadCheck", "endpoint_name"]

_THRESHOLD: dict[str, Any] = {"type": ["string", "number"]}
_ENDPOINT_EXPECT: dict[str, Any] = {
    "type": "object",
    "properties": {key: _THRESHOLD for key in FIGURES},
    "additionalProperties": False,
    "minProperties": 1,
}
_PATH: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 2000}
DEFAULT_DURATION_S = 10.0
#: slot of wall-clock time in which the listener keeps response times in order (seconds)
BATCH_SLOT_S = 0.1
DEFAULT_USERS = 10


def endpoint_name(name: str) -> str:
    """``/items`` -> ``GET /items``; ``POST /items`` stays: how Locust names an entry."""
    name = name.strip()
    method, _, rest = name.partition(" ")
    if rest and method.isalpha() and method.isupper():
        return f"{method} {rest.strip()}"
    return f"GET {name}"


class LoadCheck(Check):
    type_name = "load"
    summary = (
        "Run Locust against the host URL (a locustfile or paths:), measure rps, failures and "
        "exact latency percentiles, in total and per endpoint."
    )
    target_schema: ClassVar[dict[str, Any]] = {"type": "string", "minLength": 1}
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "locustfile": {"type": "string", "minLength": 1},
        "paths": {
            "anyOf": [
                {"type": "array", "items": _PATH, "minItems": 1},
                {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "minProperties": 1,
                },
            ]
        },
        "users": {"type": "integer", "minimum": 1, "maximum": 100000},
        "spawn_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000},
        "duration": {"type": ["string", "number"]},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "wait": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 3600},
            "minItems": 2,
            "maxItems": 2,
        },
        "processes": {"type": "integer", "minimum": 1, "maximum": 256},
        "workers": {"type": "integer", "minimum": 1, "maximum": 10000},
        "master_bind": {"type": "string", "pattern": r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$"},
        "progress": {"type": "number", "minimum": 0.5, "maximum": 3600},
    }
    threshold_keys: ClassVar[frozenset[str]] = frozenset(FIGURES)
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "endpoints": {"type": "object", "additionalProperties": _ENDPOINT_EXPECT},
    }
    default_timeout = DEFAULT_DURATION_S + STOP_TIMEOUT + 30.0

    def __init__(self, spec: Any, context: Any) -> None:
        super().__init__(spec, context)
        self._problem: str | None = None
        for endpoint, wanted in (spec.expect.get("endpoints") or {}).items():
            for key, text in wanted.items():
                name = f"{endpoint_name(str(endpoint))}::{key}"
                try:
                    threshold: Threshold = parse(text)
                    threshold.check_key(key)
                except ThresholdError as exc:
                    self._problem = f"expect.endpoints.{endpoint}.{key}: {exc}"
                    continue
                spec.thresholds[name] = threshold

    def plan(self) -> LoadPlan:
        options = self.spec.options
        if self._problem:
            raise CheckError(self._problem)
        locustfile = options.get("locustfile")
        paths = options.get("paths")
        if bool(locustfile) == bool(paths):
            raise CheckError("a load check needs either locustfile: or paths: (one of them)")
        try:
            duration = parse_duration(options.get("duration", DEFAULT_DURATION_S))
        except ThresholdError as exc:
            raise CheckError(f"duration: {exc}") from None
        users = int(options.get("users", DEFAULT_USERS))
        processes = int(options.get("processes", 0))
        workers = int(options.get("workers", 0))
        if processes and workers:
            raise CheckError("processes: and workers: exclude each other")
        if options.get("master_bind") and not workers:
            raise CheckError("master_bind: needs workers:")
        grace = 30.0 + (30.0 if workers else 0.0)
        if self.spec.timeout is not None:
            grace = max(self.spec.timeout - duration - STOP_TIMEOUT, 5.0)
        wait = options.get("wait") or [0, 0]
        return LoadPlan(
            host=self.spec.target.rstrip("/"),
            workdir=self.context.evidence_dir(self.spec),
            users=users,
            spawn_rate=float(options.get("spawn_rate", users)),
            duration_s=duration,
            locustfile=self._locustfile(str(locustfile)) if locustfile else None,
            paths=weighted_paths(paths) if paths else [],
            tags=[str(t) for t in options.get("tags") or []],
            wait_s=(float(wait[0]), float(wait[1])),
            processes=processes,
            workers=workers,
            master_bind=str(options.get("master_bind") or ""),
            grace_s=grace,
            progress_s=float(options.get("progress", 3.0)),
            # response times in time order too: a comparison with a stored baseline tells a
            # load burst of the machine (clustered in time) from a slower tail (spread out)
            slot_s=BATCH_SLOT_S,
        )

    def _locustfile(self, given: str) -> Path:
        path = Path(given)
        candidates = (
            [path]
            if path.is_absolute()
            else [self.context.rootdir / path, self.spec.source.path.parent / path]
        )
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise CheckError(f"locustfile not found: {given}")

    def measure(self) -> Measurement:
        plan = self.plan()
        progress = self.context.progress
        name = self.spec.id

        def show(state: dict[str, Any]) -> None:
            if progress is not None:
                progress(progress_line(name, state, plan.duration_s))

        # one load (or deploy, rollback, drill) check at a time, also across xdist workers
        bound = plan.duration_s + STOP_TIMEOUT + plan.grace_s
        try:
            with exclusive(self.context.rootdir, wait_s=bound) as waited:
                run = run_locust(
                    plan, progress=show if progress else None, mask=self.context.redactor.text
                )
        except (LoadError, LockTimeout) as exc:
            raise CheckError(str(exc)) from None
        measurement = self._measurement(run, plan)
        if waited >= 1.0:
            measurement.facts["waited_for_other_checks_s"] = f"{waited:.1f}"
        return measurement

    def _measurement(self, run: LoadRun, plan: LoadPlan) -> Measurement:
        # a figure that could not be computed (NaN) is left out: held to a threshold it fails
        values = {k: v for k, v in run.total.items() if not math.isnan(v)}
        for endpoint, figures in run.endpoints.items():
            for key, value in figures.items():
                if not math.isnan(value):
                    values[f"{endpoint}::{key}"] = value
        failures = []
        if run.exceptions:
            failures.append(f"the locustfile raised: {run.exceptions[0]}")
        facts: dict[str, Any] = {
            "endpoints": sorted(run.endpoints),
            "load": f"{plan.users} users for {plan.duration_s:g} s",
        }
        if plan.processes:
            facts["mode"] = f"{plan.processes} local Locust processes"
        if plan.workers:
            facts["mode"] = f"master with {plan.workers} workers"
        if run.errors:
            facts["errors"] = run.errors[:10]
        return Measurement(
            values=values,
            facts=facts,
            failures=failures,
            evidence=dict(run.evidence),
            support=self._support(run, values),
        )

    def _support(self, run: LoadRun, values: dict[str, float]) -> dict[str, dict[str, Any]]:
        """Counts behind each failure ratio; order-statistic bounds of each percentile held
        to a threshold and the n, mean and sd behind each ``avg_ms`` (from the exact
        histograms)."""
        confidence = self.context.confidence(self.spec)
        support: dict[str, dict[str, Any]] = {}
        for endpoint, figures in [("", run.total), *run.endpoints.items()]:
            prefix = f"{endpoint}::" if endpoint else ""
            requests = int(figures.get("requests") or 0)
            if f"{prefix}failure_ratio" in values:
                failed = int(figures.get("failures") or 0)
                support[f"{prefix}failure_ratio"] = count_support(
                    failed, requests, "requests", "failed"
                )
            hist = run.histograms.get(endpoint)
            if hist and f"{prefix}avg_ms" in values:
                # the mean's n and spread from the same exact histogram (kept for a baseline)
                support[f"{prefix}avg_ms"] = histogram_mean_support(
                    hist, mean=values[f"{prefix}avg_ms"]
                )
            for key, pct in PERCENTILES.items():
                name = f"{prefix}{key}"
                if hist and name in values and name in self.spec.thresholds:
                    support[name] = quantile_support(hist, pct / 100, confidence)
                    if not endpoint and run.slots:
                        support[name]["batches"] = time_batches(run.slots)
        return support
