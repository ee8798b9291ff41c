"""``rollback``: trigger a rollback and time it until the service is healthy on the expected
version, while the background prober measures the downtime during it.

    - rollback: examples/deploy/rollback            # a command (shell text)
      health: ${url}/health
      version: {json: version, expect: v1}
      expect: {recovery_s: "< 2m"}

    - rollback: POST ${url}/admin/rollback          # an HTTP call
      via: http

    - rollback: examples/deploy/deploy-bluegreen v2 --fault crash
      automatic: true                               # a bad deploy; the tooling must recover
      version: {json: version, expect: v1}

``recovery_s`` runs from the trigger to the first answer of a run of good probes on the
expected version that lasts ``stable`` seconds and reaches past the end of the trigger. A
command that fails (unless ``automatic``), or a service that does not recover within
``settle_timeout`` after the trigger, fails the check.
"""

from __future__ import annotations

import http.client
import time
from typing import Any, ClassVar

from ..probe import ProbeError, _Connection, _path_of
from ..process import ProcessResult
from .base import CheckError, Measurement
from .timed import PROBE_KEYS, PROBE_OPTIONS, TimedCheck, exit_value

__all__ = ["RollbackCheck"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class RollbackCheck(TimedCheck):
    type_name = "rollback"
    summary = (
        "Trigger a rollback (command or HTTP call) and time it until the service is healthy "
        "on the expected version: recovery_s, downtime during it."
    )
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "recovery_s",
            *PROBE_KEYS,
            "exit_status",
            "trigger_s",
            "success_ratio",
            "max_recovery_s",
        }
    )
    history_only: ClassVar[frozenset[str]] = frozenset({"success_ratio", "max_recovery_s"})
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **PROBE_OPTIONS,
        "via": {"enum": ["command", "http"], "description": "what the target is (command)"},
        "automatic": {
            "type": "boolean",
            "description": "the target deploys a bad version; the tooling must roll back itself",
        },
    }
    default_timeout = 300.0

    def measure(self) -> Measurement:
        deadline = time.monotonic() + self.timeout
        rule = self.version_rule()
        expected = rule.expect if rule else None
        automatic = bool(self.option("automatic", False))
        measurement = Measurement()
        result: ProcessResult | None = None
        prober = self.prober(rule, limit_s=self.timeout + 5.0)
        with prober:
            prober.wait_for(lambda p: len(p) >= 3, 2.0)
            before = prober.last_good()
            measurement.facts["version_before"] = before.version if before else None
            started = prober.mark("automatic: bad deploy" if automatic else "rollback start")
            left = deadline - time.monotonic()
            if self.option("via", "command") == "http":
                status, why = self._http_trigger(min(left, 60.0))
                measurement.values["exit_status"] = 0.0 if why is None else 1.0
                measurement.facts["trigger_status"] = status
            else:
                result = self.run(self.spec.target, left, "rollback")
                why = self.failed_command("rollback", result, left)
                measurement.values["exit_status"] = exit_value(result)
                if automatic and why and not result.timed_out:
                    measurement.facts["deploy_failed"] = why  # expected of a bad deploy
                    why = None
            ended = prober.mark("trigger end")
            measurement.values["trigger_s"] = round(ended - started, 3)
            recovered: float | None = None
            if why:
                measurement.failures.append(why)
            else:
                recovered = self.wait_settled(
                    prober, since=started, version=expected, until=ended, deadline=deadline
                )
                if recovered is not None:
                    prober.mark("healthy")
            stopped = prober.now()
        figures = prober.figures(start=started, end=stopped)
        measurement.values.update(
            {k: v for k, v in figures.values().items() if k not in ("probes", "p95_latency_ms")}
        )
        measurement.support.update(
            {k: v for k, v in figures.support().items() if k in measurement.values}
        )
        after = prober.last_good()
        measurement.facts["version_after"] = after.version if after else None
        measurement.facts["versions_seen"] = figures.versions
        measurement.facts["probes"] = figures.probes
        if recovered is not None:
            measurement.values["recovery_s"] = round(max(recovered - started, 0.0), 3)
        elif not why:
            seen = measurement.facts["version_after"]
            on = f" on {expected}" if expected else ""
            measurement.failures.append(
                f"the service was not healthy{on} for {self.stable_s:g} s within "
                f"{self.settle_s:g} s after the rollback"
                + (f" (last good answer: {seen})" if seen else " (no good answer)")
            )
        self.keep_output(measurement, "rollback", result)
        self.keep_timeline(measurement, prober, figures, title=f"rollback {self.spec.id}")
        return measurement

    def _http_trigger(self, timeout: float) -> tuple[int, str | None]:
        """Call ``[METHOD] URL`` (POST when no method is given); a non-2xx answer fails."""
        words = self.spec.display_target.split()
        method = "POST"
        if len(words) == 2 and words[0].upper() in _METHODS:
            method, url = words[0].upper(), words[1]
        elif len(words) == 1:
            url = words[0]
        else:
            raise CheckError("rollback via http: the target is '[METHOD] URL'")
        try:
            conn = _Connection(url, max(timeout, 0.1), self.verify())
        except ProbeError as exc:
            raise CheckError(f"rollback via http: {exc}") from None
        try:
            status, _, body = conn.request(method, path=_path_of(url), body=b"")
        except (OSError, http.client.HTTPException) as exc:
            return 0, f"rollback call failed: {type(exc).__name__}: {exc}"
        finally:
            conn.close()
        if not 200 <= status < 300:
            text = self.context.redactor.text(body.decode("utf-8", "replace").strip()[:200])
            return status, f"rollback call answered {status}" + (f": {text}" if text else "")
        return status, None
