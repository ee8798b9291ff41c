"""``deploy``: run a deploy command while a background prober watches the service.

    - deploy: examples/deploy/deploy-bluegreen v2
      health: ${url}/health
      version: {json: version, expect: v2}
      writes: {url: "${url}/items", read: "${url}/items/{id}"}
      expect: {duration_s: "< 5m", downtime_ms: "== 0", lost_writes: "== 0"}

The prober starts before the command (the service must answer), runs through it, and until
the service has answered on the expected version for ``stable`` seconds (bounded by
``settle_timeout``). A command that fails, is stopped at the check's timeout, or leaves the
service on another version fails the check with that reason; its output is evidence.

``writes:`` posts a small document every ``interval`` during the deploy and reads each
acknowledged one back afterwards (``lost_writes``); ``data:`` (a command) or ``data_url:``
snapshots the data before and after, and a difference fails the check. ``repeat: N`` deploys
N times, alternating between the expected version and the one found before, or through
``versions:`` in turn (the command gets the version of each run in
``$FWGATES_DEPLOY_VERSION``): ``success_ratio`` is the share of runs that succeeded, and every
run's figures are kept.

``under_load:`` (the load check's options) runs Locust through the whole deploy and splits
what its users felt at the deploy's start and end (see :mod:`.under_load`).

``steps:`` deploys in steps (a canary's traffic weights, a rolling deploy's instances), judged
canary against stable during each pause by ``analysis:`` and stopped with ``on_abort`` when
the new version is worse (see :mod:`.progressive`).
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..bounds import count_support
from ..fsutil import real_folder
from ..locust_run import LoadError
from ..probe import MIN_INTERVAL, ProbeError, Prober, Writer, _Connection, _path_of
from ..process import ProcessResult
from .base import CheckError, Measurement
from .progressive import STEP_KEYS, STEP_OPTIONS, run_steps
from .timed import (
    DURATION,
    PROBE_KEYS,
    PROBE_OPTIONS,
    SHOWN,
    TimedCheck,
    duration,
    exit_value,
    last_line,
)
from .under_load import (
    DEFAULT_LOAD_S,
    UNDER_LOAD_KEYS,
    UNDER_LOAD_OPTION,
    BackgroundLoad,
    find_locustfile,
    phase_figures,
    plan_for,
    write_load_timeline,
)

__all__ = ["DeployCheck"]

VERSION_VAR = "FWGATES_DEPLOY_VERSION"
#: a run's figures, and how they combine over runs (the worst of each)
_RUN_KEYS = ("duration_s", *PROBE_KEYS, "exit_status", "lost_writes")


@dataclass
class RunResult:
    """One deploy run: its figures and why it failed (empty when it succeeded)."""

    index: int
    expected: str | None
    values: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    support: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.index,
            "expected_version": self.expected,
            "ok": self.ok,
            **self.values,
            **{k: v for k, v in self.facts.items() if not k.endswith(("_stdout", "_stderr"))},
            "failures": list(self.failures),
        }


class DeployCheck(TimedCheck):
    type_name = "deploy"
    summary = (
        "Run a deploy command while probing the service: duration, downtime, failed probes, "
        "version switch, acknowledged writes lost."
    )
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {
            *_RUN_KEYS,
            "writes_acknowledged",
            "success_ratio",
            "p95_latency_ms",
            "version_changed",
            *UNDER_LOAD_KEYS,
            *STEP_KEYS,
            "on_abort_exit_status",
        }
    )
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **PROBE_OPTIONS,
        "writes": {
            "description": "a writer during the deploy: POST to url, read back from read/{id}",
            "type": "object",
            "additionalProperties": False,
            "required": ["url", "read"],
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "read": {"type": "string", "pattern": r"\{id\}"},
                "interval": DURATION,
                "id_field": {"type": "string", "minLength": 1},
            },
        },
        "data": {"type": "string", "minLength": 1, "description": "command printing a snapshot"},
        "data_url": {"type": "string", "minLength": 1},
        "repeat": {"type": "integer", "minimum": 1, "maximum": 1000},
        "versions": {
            "description": "with repeat: the versions deployed in turn (default: version.expect "
            "and the version found before the first run)",
            "type": "array",
            "items": {"type": ["string", "number"]},
            "minItems": 1,
        },
        "under_load": UNDER_LOAD_OPTION,
        **STEP_OPTIONS,
    }
    shell_options: ClassVar[frozenset[str]] = frozenset({"data", "on_abort"})
    default_timeout = 600.0

    def measure(self) -> Measurement:
        deadline = time.monotonic() + self.timeout
        if self.option("steps"):
            together = [
                k for k in ("repeat", "versions", "writes", "data", "data_url") if self.option(k)
            ]
            if together:
                raise CheckError(f"steps: not supported together with {', '.join(together)}")
            return run_steps(self, Measurement(), deadline)
        for key in ("analysis", "on_abort"):
            if self.option(key):
                raise CheckError(f"{key}: only with steps (the pauses it is judged in)")
        repeat = int(self.option("repeat", 1))
        versions = [str(v) for v in self.option("versions") or []]
        rule = self.version_rule()
        expected = rule.expect if rule else None
        measurement = Measurement()
        runs: list[RunResult] = []
        first_version: str | None = None
        for index in range(1, repeat + 1):
            if time.monotonic() >= deadline:
                run = RunResult(index, None, failures=["no time left in the check's bound"])
                runs.append(run)
                continue
            target = expected
            if versions:
                target = versions[(index - 1) % len(versions)]
            elif repeat > 1 and index % 2 == 0:
                target = first_version
            try:
                run = self._one(index, target, deadline, measurement, repeat)
            except CheckError as exc:
                if repeat == 1:
                    raise
                # one run that could not even start counts as a failed deploy of the series
                run = RunResult(index, target, failures=[f"could not run: {exc}"])
            if first_version is None:
                first_version = run.facts.get("version_before")
            runs.append(run)
        if repeat == 1:
            only = runs[0]
            measurement.values.update(only.values)
            measurement.support.update(only.support)
            measurement.facts.update(only.facts)
            measurement.failures.extend(only.failures)
            return measurement
        return self._combine(runs, measurement)

    # --- one deploy ------------------------------------------------------------------------

    def _one(
        self,
        index: int,
        expected: str | None,
        deadline: float,
        measurement: Measurement,
        repeat: int,
    ) -> RunResult:
        run = RunResult(index, expected)
        rule = self.version_rule(expected)
        suffix = "" if repeat == 1 else f"-{index}"
        prober = self.prober(rule, limit_s=max(deadline - time.monotonic(), 1.0) + 5.0)
        writer = self._writer(deadline)
        load = self._load(suffix, deadline)
        result: ProcessResult | None = None
        with prober:
            good = self.wait_healthy_before(prober, deadline)
            run.facts["version_before"] = good.version
            snapshot = self._snapshot("before", deadline)
            try:
                if load is not None:
                    self._start_load(load, prober, deadline)
                if writer is not None:
                    writer.__enter__()
                started = prober.mark("deploy start")
                # Locust's clock is the wall clock: prober time + offset
                offset = time.time() - prober.now()
                left = deadline - time.monotonic()
                env = {VERSION_VAR: expected} if expected else None
                result = self.run(self.spec.target, left, "deploy", env)
                ended = prober.mark("deploy end")
                run.values["exit_status"] = exit_value(result)
                why = self.failed_command("deploy", result, left)
                stable_at: float | None = None
                if why:
                    run.failures.append(why)
                    # a short look at what users see after a failed deploy
                    prober.wait_for(lambda p: bool(p) and p[-1].start >= ended + 0.5, 1.5)
                else:
                    stable_at = self.wait_settled(
                        prober, since=started, version=expected, until=ended, deadline=deadline
                    )
                if stable_at is not None:
                    prober.mark("stable")
                if load is not None:
                    # the users' "after": load goes on for cooldown past the deploy's end
                    until = max(ended, stable_at or ended) + self._load_time("cooldown")
                    time.sleep(max(min(until - prober.now(), deadline - time.monotonic()), 0.0))
            finally:
                if writer is not None:
                    writer.stop()
                if load is not None and load.stop() is not None:
                    prober.mark("load stop")
            stopped_at = prober.now()
        figures = prober.figures(start=started, end=stopped_at)
        run.values.update({k: v for k, v in figures.values().items() if k != "probes"})
        run.support.update(figures.support(self.context.confidence(self.spec)))
        end_of_deploy = max(ended, stable_at) if stable_at is not None else ended
        run.values["duration_s"] = round(end_of_deploy - started, 3)
        after = prober.last_good()
        run.facts["version_after"] = after.version if after else None
        if rule is not None:
            # a deploy shows itself by a version switch: the same version before and after
            # (or none read) is a deploy that changed nothing the prober could see
            before = run.facts.get("version_before")
            changed = before is not None and after is not None and before != after.version
            run.values["version_changed"] = 1.0 if changed else 0.0
        run.facts["versions_seen"] = figures.versions
        run.facts["probes"] = figures.probes
        run.facts["interval_ms"] = round(self.interval * 1000, 1)
        if figures.first_new is not None:
            run.facts["first_new_version_s"] = round(figures.first_new - started, 3)
            if figures.versions[:1] != [expected]:
                prober.mark(f"{expected} answers", at=figures.first_new)
        if figures.last_old is not None:
            run.facts["last_old_version_s"] = round(figures.last_old - started, 3)
        if figures.outages:
            run.facts["outages_at_s"] = [
                [round(o.start - started, 3), round(o.ms, 1)] for o in figures.outages[:20]
            ]
        if not run.failures and stable_at is None:
            seen = run.facts["version_after"]
            if expected is not None and seen is not None and seen != expected:
                run.failures.append(
                    f"the service ends on version {seen}, expected {expected} "
                    f"(not stable on {expected} within {self.settle_s:g} s)"
                )
            else:
                run.failures.append(
                    f"the service was not stable{f' on {expected}' if expected else ''} "
                    f"for {self.stable_s:g} s within {self.settle_s:g} s after the deploy"
                )
        if writer is not None:
            self._check_writes(writer, run, deadline)
        if load is not None:
            self._load_figures(
                load, run, measurement, offset + started, offset + end_of_deploy, suffix
            )
        if snapshot is not None:
            self._compare(snapshot, run, deadline)
        self.keep_output(measurement, f"deploy{suffix}", result)
        self.keep_timeline(
            measurement,
            prober,
            figures,
            stem=f"timeline{suffix}",
            title=f"deploy {self.spec.id}" + (f" (run {index})" if suffix else ""),
        )
        if result is not None and (result.timed_out or result.exit_status):
            run.facts["deploy_output"] = (last_line(result) or "")[:SHOWN]
        return run

    # --- under load ------------------------------------------------------------------------

    def _load(self, suffix: str, deadline: float) -> BackgroundLoad | None:
        options = self.option("under_load")
        if not options:
            return None
        try:
            folder = real_folder(self.context.evidence_dir(self.spec), f"load{suffix}", fresh=True)
        except OSError as exc:
            raise CheckError(f"evidence folder: {exc}") from None
        plan = plan_for(
            options,
            health=str(self.option("health")),
            workdir=folder,
            # Locust's own bound: the rest of the check's time; the stop file ends it sooner
            duration_s=max(deadline - time.monotonic(), 1.0) + 10.0,
            locustfile=lambda given: find_locustfile(
                given, self.context.rootdir, self.spec.source.path.parent
            ),
        )
        return BackgroundLoad(plan, mask=self.context.redactor.text)

    def _load_time(self, key: str) -> float:
        given = self.option("under_load").get(key)
        return duration(given, DEFAULT_LOAD_S, f"under_load.{key}")

    def _start_load(self, load: BackgroundLoad, prober: Prober, deadline: float) -> None:
        """Locust running, its first requests answered, then the warm-up (all bounded)."""
        warmup = self._load_time("warmup")
        load.start()
        prober.mark("load start")
        load.wait_flowing(min(30.0, max(deadline - time.monotonic(), 0.1)))
        time.sleep(max(min(warmup, deadline - time.monotonic()), 0.0))

    def _load_figures(
        self,
        load: BackgroundLoad,
        run: RunResult,
        measurement: Measurement,
        start_wall: float,
        end_wall: float,
        suffix: str,
    ) -> None:
        """What Locust's users felt before, during and after the deploy; its files as evidence."""
        plan = load.plan
        run.facts["load"] = f"{plan.users} users on {plan.host}"
        done = load.run
        if done is not None:
            for name, path in done.evidence.items():
                measurement.evidence[f"load{suffix}_{name.removeprefix('locust_')}"] = path
            if done.errors:
                run.facts["load_errors"] = done.errors[:10]
            if done.exceptions:
                run.failures.append(f"under_load: the locustfile raised: {done.exceptions[0]}")
        if load.error or done is None:
            run.failures.append(f"under_load: {load.error or 'Locust gave no figures'}")
            return
        try:
            slots = load.slots()
        except LoadError as exc:
            run.failures.append(f"under_load: {exc}")
            return
        confidence = self.context.confidence(self.spec)
        run.values.update(phase_figures(slots, start_wall, end_wall, run.support, confidence))
        path = plan.workdir / "load-timeline.csv"
        measurement.evidence[f"load{suffix}_timeline_csv"] = write_load_timeline(
            path, slots, start_wall, end_wall
        )

    # --- writes and data -------------------------------------------------------------------

    def _writer(self, deadline: float) -> Writer | None:
        options = self.option("writes")
        if not options:
            return None
        interval = duration(options.get("interval"), self.interval, "writes.interval")
        try:
            return Writer(
                str(options["url"]),
                str(options["read"]),
                interval=max(interval, MIN_INTERVAL),
                id_field=str(options.get("id_field", "id")),
                verify=self.verify(),
                limit_s=max(deadline - time.monotonic(), 1.0) + 5.0,
            )
        except ProbeError as exc:
            raise CheckError(f"writes: {exc}") from None

    def _check_writes(self, writer: Writer, run: RunResult, deadline: float) -> None:
        acknowledged = writer.acknowledged
        lost = writer.read_back(timeout=max(min(60.0, deadline - time.monotonic()), 5.0))
        run.values["lost_writes"] = float(len(lost))
        run.values["writes_acknowledged"] = float(len(acknowledged))
        run.facts["writes_sent"] = len(writer.writes)
        run.facts["writes_not_acknowledged"] = len(writer.writes) - len(acknowledged)
        if not acknowledged:
            run.failures.append("the writer had no write acknowledged: nothing shows data is kept")
        if lost:
            ids = ", ".join(str(w.item_id) for w in lost[:10])
            run.failures.append(
                f"{len(lost)} of {len(acknowledged)} acknowledged writes cannot be read back "
                f"(ids {ids}{', …' if len(lost) > 10 else ''})"
            )

    def _snapshot(self, when: str, deadline: float) -> str | None:
        command, url = self.option("data"), self.option("data_url")
        if not command and not url:
            return None
        bound = max(min(60.0, deadline - time.monotonic()), 1.0)
        if command:
            result = self.run(str(command), bound, "data")
            why = self.failed_command("data", result, bound)
            if why:
                raise CheckError(f"data snapshot {when} the deploy: {why}")
            return result.stdout.strip()
        try:
            conn = _Connection(str(url), min(bound, 10.0), self.verify())
        except ProbeError as exc:
            raise CheckError(f"data_url: {exc}") from None
        try:
            status, _, body = conn.request("GET", path=_path_of(str(url)))
        except (OSError, http.client.HTTPException) as exc:
            raise CheckError(f"data snapshot {when} the deploy: {url}: {exc}") from None
        finally:
            conn.close()
        if status != 200:
            raise CheckError(f"data snapshot {when} the deploy: {url} answered {status}")
        return body.decode("utf-8", "replace").strip()

    def _compare(self, before: str, run: RunResult, deadline: float) -> None:
        after = self._snapshot("after", deadline)
        run.values["data_changed"] = float(after != before)
        run.facts["data_before"] = before[:200]
        run.facts["data_after"] = (after or "")[:200]
        if after != before:
            run.failures.append(
                f"the data snapshot changed during the deploy: {before[:80]!r} -> "
                f"{(after or '')[:80]!r}"
            )

    # --- repeat ----------------------------------------------------------------------------

    def _combine(self, runs: list[RunResult], measurement: Measurement) -> Measurement:
        """Worst figures of all runs, the share that succeeded, every run kept."""
        succeeded = sum(1 for r in runs if r.ok)
        measurement.values["success_ratio"] = round(succeeded / len(runs), 6)
        measurement.support["success_ratio"] = count_support(
            succeeded, len(runs), "deploys", "successful"
        )
        for key in (*_RUN_KEYS, "version_changed"):
            having = [r for r in runs if key in r.values]
            if having:
                # the worst run: the lowest availability or version switch, the highest of
                # anything else
                sign = -1.0 if key in ("availability_pct", "version_changed") else 1.0
                chosen = having[0]
                for r in having[1:]:
                    if sign * r.values[key] > sign * chosen.values[key]:
                        chosen = r
                measurement.values[key] = chosen.values[key]
                if key in chosen.support:
                    measurement.support[key] = chosen.support[key]
        for key in UNDER_LOAD_KEYS:
            having = [r for r in runs if key in r.values]
            if not having:
                continue
            if key.startswith("p95"):
                worst = max(having, key=lambda r: r.values[key])
                measurement.values[key] = worst.values[key]
                if key in worst.support:
                    measurement.support[key] = worst.support[key]
            else:
                measurement.values[key] = sum(r.values[key] for r in having)
        acked = [r.values["writes_acknowledged"] for r in runs if "writes_acknowledged" in r.values]
        if acked:
            measurement.values["writes_acknowledged"] = sum(acked)
            measurement.values["lost_writes"] = sum(r.values.get("lost_writes", 0.0) for r in runs)
        measurement.facts["runs"] = [r.to_json() for r in runs]
        measurement.facts["runs_succeeded"] = succeeded
        measurement.facts["runs_total"] = len(runs)
        # a failed run is no error of the check: the threshold on success_ratio decides,
        # unless no threshold asks for it
        if "success_ratio" not in self.spec.thresholds:
            for r in runs:
                measurement.failures.extend(f"run {r.index}: {f}" for f in r.failures)
        return measurement
