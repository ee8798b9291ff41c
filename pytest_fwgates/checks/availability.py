"""``availability``: probe an endpoint for a stated window at a stated interval.

```yaml
- availability: ${url}/health
  window: 60s
  interval: 1s
  expect: {availability_pct: ">= 99.9%", p95_ms: "< 200"}
```

Measures availability_pct (probes that met the expectations / probes), errors, probes and
latency percentiles (p50/p95/p99/max, nearest rank). The timeline of every probe is kept as
evidence (``timeline.csv``). "99.9 % uptime", measured with no monitoring system.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any, ClassVar

from ..bounds import count_support, quantile_support
from ..fsutil import write_file
from .base import Check, CheckError, Measurement
from .figures import SpanError, parse_span
from .http import REQUEST_OPTIONS, HttpCheck, HttpRequest, judge_response

__all__ = ["AvailabilityCheck", "percentile"]

_DURATION = {"type": ["string", "number"]}
#: probes at most in one window (a 24 h window at 1 s is 86,400)
_MAX_PROBES = 100_000


def percentile(sorted_values: list[float], pct: float) -> float:
    """The nearest-rank percentile of ascending ``sorted_values``."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


class AvailabilityCheck(Check):
    type_name = "availability"
    mask_env = True
    summary = "Probe an endpoint for a window at an interval: availability %, errors, latency."
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **REQUEST_OPTIONS,
        "window": {**_DURATION, "description": "how long to probe (required)"},
        "interval": {**_DURATION, "description": "time between probe starts (default 1s)"},
        "probe_timeout": {**_DURATION, "description": "bound of one probe (default 2s)"},
    }
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {"availability_pct", "errors", "probes", "p50_ms", "p95_ms", "p99_ms", "max_ms"}
    )
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        key: HttpCheck.expect_schema[key]
        for key in ("status", "body_contains", "body_not_contains", "body_matches", "json")
    }
    default_timeout = 3600.0

    def _span(self, key: str, default: float | None) -> float:
        value = self.spec.options.get(key)
        if value is None:
            if default is None:
                raise CheckError(f"availability needs '{key}:' (e.g. {key}: 60s)")
            return default
        try:
            return parse_span(value)
        except SpanError as exc:
            raise CheckError(f"{key}: {exc}") from None

    def measure(self) -> Measurement:
        from . import _web

        window = self._span("window", None)
        interval = self._span("interval", 1.0)
        probe_timeout = min(self._span("probe_timeout", 2.0), interval * 10, window)
        if window / interval > _MAX_PROBES:
            raise CheckError(f"window / interval is more than {_MAX_PROBES} probes")
        if window + probe_timeout > self.timeout:
            raise CheckError(f"window {window:g} s is longer than the timeout {self.timeout:g} s")
        request = HttpRequest(self.context, self.spec.options, probe_timeout)
        url = str(self.spec.target)
        timeline: list[tuple[float, bool, float, str]] = []
        started = time.monotonic()
        wall = time.time()
        count = 0
        while True:
            planned = started + count * interval
            if planned - started >= window:
                break
            delay = planned - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            count += 1
            at = time.monotonic() - started
            try:
                fetched = request.send(url)
            except _web.FetchError as exc:
                timeline.append((at, False, math.nan, str(exc)))
                continue
            try:
                failures = judge_response(fetched, self.spec.expect)
            except CheckError as exc:
                failures = [str(exc)]
            detail = failures[0] if failures else "ok"
            timeline.append((at, not failures, fetched.latency_ms, f"{fetched.status} {detail}"))
        probes = len(timeline)
        good = sum(1 for _, ok, _, _ in timeline if ok)
        latencies = sorted(ms for _, _, ms, _ in timeline if not math.isnan(ms))
        values: dict[str, float] = {
            "availability_pct": round(good / probes * 100.0, 6),
            "errors": float(probes - good),
            "probes": float(probes),
        }
        support: dict[str, dict[str, Any]] = {
            "availability_pct": count_support(good, probes, "probes", "good")
        }
        if latencies:
            confidence = self.context.confidence(self.spec)
            histogram = Counter(latencies)
            for pct in (50, 95, 99):
                values[f"p{pct}_ms"] = round(percentile(latencies, pct), 3)
                support[f"p{pct}_ms"] = quantile_support(histogram, pct / 100, confidence)
            values["max_ms"] = round(latencies[-1], 3)
        failed = [detail for _, ok, _, detail in timeline if not ok]
        facts: dict[str, Any] = {
            "url": url,
            "window": f"{window:g} s from {_iso(wall)}",
            "interval": f"{interval:g} s",
        }
        if failed:
            facts["first_error"] = failed[0]
        rows = ["at_s,ok,latency_ms,detail"]
        for at, ok, ms, detail in timeline:
            shown = "" if math.isnan(ms) else f"{ms:.3f}"
            text = " ".join(detail.split()).replace('"', "'")
            rows.append(f'{at:.3f},{int(ok)},{shown},"{text}"')
        path = write_file(
            self.context.evidence_dir(self.spec) / "timeline.csv",
            self.context.redactor.text("\n".join(rows)) + "\n",
        )
        return Measurement(values=values, facts=facts, evidence={"timeline": path}, support=support)


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
