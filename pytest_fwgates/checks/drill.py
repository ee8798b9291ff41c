"""``drill``: an incident drill. Inject a fault, time its detection and the recovery.

    - drill: examples/deploy/deploy-naive v2 --fault 500 || true     # the fault (shell text)
      health: ${url}/version
      version: {json: version, expect: v1}          # recovered: good answers on v1 again
      detect: {alert: HighErrorRate, prometheus: "${prometheus}"}   # or: detect: probe
      remedy: examples/deploy/rollback              # optional: what on-call would run
      restore: examples/deploy/deploy-bluegreen v1  # ALWAYS runs at the end
      expect: {mttd_s: "< 60", mttr_s: "< 2m"}

The service must be healthy before the fault. ``mttd_s`` runs from the start of the fault
command to the detection: the named alert firing in Prometheus (``/api/v1/alerts``), or with
``detect: probe`` the first failed probe. Then ``remedy`` runs when given (else the system's
own automation must heal it); ``mttr_s`` runs from the fault to the first answer of a stable
run of good probes (on the expected version) after the outage. ``restore`` runs whatever
happened: also when the check fails, errors, or the run is interrupted.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..bounds import mean_support
from ..probe import ProbeError, Prober, _Connection
from ..process import ProcessResult
from .base import CheckError, Measurement
from .timed import DURATION, PROBE_OPTIONS, TimedCheck, duration, exit_value

__all__ = ["DrillCheck"]

#: seconds between two queries of the Prometheus alerts API
ALERT_POLL_S = 0.25


class DrillCheck(TimedCheck):
    type_name = "drill"
    summary = (
        "Incident drill: inject a fault, time its detection (Prometheus alert or the prober) "
        "and the recovery: mttd_s, mttr_s. The restore command always runs."
    )
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "mttd_s",
            "mttr_s",
            "mttd_probe_s",
            "downtime_ms",
            "longest_outage_ms",
            "failed_probes",
            "availability_pct",
            "success_ratio",
            "max_mttr_s",
        }
    )
    history_only: ClassVar[frozenset[str]] = frozenset({"success_ratio", "max_mttr_s"})
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **PROBE_OPTIONS,
        "detect": {
            "description": "'probe', or the Prometheus alert that must fire",
            "anyOf": [
                {"const": "probe"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["alert", "prometheus"],
                    "properties": {
                        "alert": {"type": "string", "minLength": 1},
                        "prometheus": {"type": "string", "minLength": 1},
                    },
                },
            ],
        },
        "remedy": {"type": "string", "minLength": 1, "description": "run after detection"},
        "restore": {"type": "string", "minLength": 1, "description": "always runs at the end"},
        "restore_timeout": DURATION,
    }
    shell_options: ClassVar[frozenset[str]] = frozenset({"remedy", "restore"})
    default_timeout = 600.0

    def measure(self) -> Measurement:
        measurement = Measurement()
        restore = self.option("restore")
        try:
            result = self._drill(measurement)
        except CheckError as exc:
            if restore:  # the check errs, and says whether the restore worked too
                kept = len(measurement.failures)
                self._restore(str(restore), measurement)
                if len(measurement.failures) > kept:
                    raise CheckError(f"{exc}; {measurement.failures[-1]}") from None
            raise
        except BaseException:
            if restore:  # an interrupt: restore, then go on stopping
                self._restore(str(restore), measurement)
            raise
        if restore:
            self._restore(str(restore), measurement)
        return result

    def _restore(self, command: str, measurement: Measurement) -> None:
        bound = duration(self.option("restore_timeout"), 120.0, "restore_timeout")
        result = self.run(command, bound, "restore")
        measurement.values["restore_exit_status"] = exit_value(result)
        self.keep_output(measurement, "restore", result)
        why = self.failed_command("restore", result, bound)
        if why:
            measurement.failures.append(why)

    def _drill(self, measurement: Measurement) -> Measurement:
        deadline = time.monotonic() + self.timeout
        rule = self.version_rule()
        expected = rule.expect if rule else None
        detect = self.option("detect", "probe")
        prober = self.prober(rule, limit_s=self.timeout + 5.0)
        results: dict[str, ProcessResult] = {}
        detected: float | None = None
        recovered: float | None = None
        with prober:
            self.wait_healthy_before(prober, deadline)
            if isinstance(detect, dict):
                self._alerts(detect)  # Prometheus answers before the fault is injected
                if self._firing(detect):
                    raise CheckError(f"alert {detect['alert']} is already firing before the fault")
            fault_at = prober.mark("fault")
            left = deadline - time.monotonic()
            results["fault"] = self.run(self.spec.target, left, "fault")
            prober.mark("fault end")
            why = self.failed_command("fault", results["fault"], left)
            if why:
                measurement.failures.append(why)
            else:
                detected = self._detect(prober, detect, fault_at, deadline, measurement)
            if detected is not None:
                remedy = self.option("remedy")
                since = detected
                if remedy:
                    left = deadline - time.monotonic()
                    prober.mark("remedy")
                    results["remedy"] = self.run(str(remedy), left, "remedy")
                    since = prober.mark("remedy end")
                    why = self.failed_command("remedy", results["remedy"], left)
                    if why:
                        measurement.failures.append(why)
                outage = next(
                    (p.start for p in prober.probes if p.start >= fault_at and not p.ok), None
                )
                recovered = prober.wait_stable(
                    since=outage if outage is not None else detected,
                    window_s=self.stable_s,
                    version=expected,
                    until=since,
                    timeout=max(deadline - time.monotonic(), 0.0),
                )
                if recovered is not None:
                    prober.mark("recovered")
                else:
                    on = f" on {expected}" if expected else ""
                    measurement.failures.append(
                        f"the service did not recover (healthy{on} for {self.stable_s:g} s) "
                        f"within the drill's bound of {self.timeout:g} s"
                    )
            stopped = prober.now()
        figures = prober.figures(start=fault_at, end=stopped)
        measurement.values.update(
            {
                k: v
                for k, v in figures.values().items()
                if k not in ("probes", "p95_latency_ms", "outages")
            }
        )
        measurement.support.update(
            {k: v for k, v in figures.support().items() if k in measurement.values}
        )
        if detected is not None:
            measurement.values["mttd_s"] = round(detected - fault_at, 3)
            # one drill: a mean of one sample, which no standard on a mean can pass
            measurement.support["mttd_s"] = mean_support([measurement.values["mttd_s"]], "drills")
        first_failed = next((p for p in prober.probes if p.start >= fault_at and not p.ok), None)
        if first_failed is not None:
            measurement.values["mttd_probe_s"] = round(first_failed.start - fault_at, 3)
        if recovered is not None:
            measurement.values["mttr_s"] = round(recovered - fault_at, 3)
            measurement.support["mttr_s"] = mean_support([measurement.values["mttr_s"]], "drills")
        measurement.facts["versions_seen"] = figures.versions
        measurement.facts["detected_by"] = (
            f"alert {detect['alert']}" if isinstance(detect, dict) else "probe"
        )
        for name, result in results.items():
            self.keep_output(measurement, name, result)
        self.keep_timeline(measurement, prober, figures, title=f"drill {self.spec.id}")
        return measurement

    # --- detection -------------------------------------------------------------------------

    def _detect(
        self,
        prober: Prober,
        detect: Any,
        fault_at: float,
        deadline: float,
        measurement: Measurement,
    ) -> float | None:
        if isinstance(detect, dict):
            while time.monotonic() < deadline:
                if self._firing(detect):
                    return prober.mark(f"alert {detect['alert']}")
                time.sleep(ALERT_POLL_S)
            measurement.failures.append(
                f"alert {detect['alert']} did not fire within the drill's bound of "
                f"{self.timeout:g} s"
            )
            return None
        seen = prober.wait_for(
            lambda probes: any(p.start >= fault_at and not p.ok for p in probes),
            max(deadline - time.monotonic(), 0.0),
        )
        if not seen:
            measurement.failures.append(
                f"the prober saw no failure within the drill's bound of {self.timeout:g} s"
            )
            return None
        first = next(p for p in prober.probes if p.start >= fault_at and not p.ok)
        prober.mark("failure seen")
        return first.end

    def _alerts(self, detect: dict[str, Any]) -> list[dict[str, Any]]:
        """The alerts Prometheus reports (``GET /api/v1/alerts``); an error if unreachable."""
        base = str(detect["prometheus"]).rstrip("/")
        url = f"{base}/api/v1/alerts"
        try:
            conn = _Connection(url, 3.0, self.verify())
        except ProbeError as exc:
            raise CheckError(f"detect.prometheus: {exc}") from None
        try:
            path = (urlsplit(url).path or "/") + ""
            status, _, body = conn.request("GET", path=path)
        except (OSError, http.client.HTTPException) as exc:
            raise CheckError(f"Prometheus {base}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if status != 200:
            raise CheckError(f"Prometheus {base}/api/v1/alerts answered {status}")
        try:
            data = json.loads(body)
            alerts = data["data"]["alerts"]
        except (ValueError, KeyError, TypeError):
            raise CheckError(f"Prometheus {base}/api/v1/alerts: not an alerts answer") from None
        return [a for a in alerts if isinstance(a, dict)]

    def _firing(self, detect: dict[str, Any]) -> bool:
        name = str(detect["alert"])
        return any(
            a.get("state") == "firing" and (a.get("labels") or {}).get("alertname") == name
            for a in self._alerts(detect)
        )
