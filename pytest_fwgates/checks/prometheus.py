"""``prometheus``: PromQL values, scrape targets, loaded rules and alerts, via the HTTP API.

```yaml
- prometheus: 'up{job="app"}'            # an instant value (every series is held to it)
  expect: {value: ">= 1"}
- prometheus: '100 * avg_over_time(up{job="app"}[1m])'
  as: availability_pct                   # also reported under a figure name
- prometheus: 'sum(rate(http_requests_total[1m]))'
  window: 10m                            # a range query, reduced over the window
  over: avg
- prometheus: {targets: [app]}           # every target of the jobs is up
- prometheus: {rules: [AppDown, HighErrorRate]}
- prometheus: {alert: AppDown}
  expect: {firing: false}
```

The server is ``server:`` or the ini option ``gate_prometheus_url``. An unreachable server,
an error answer, an empty result or NaN is an ERROR with the reason, never a pass.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

from ..bounds import coverage_support
from ..deadline import Deadline
from ..owners import PROMETHEUS_FIGURES
from ..thresholds import ThresholdError, parse_duration
from .base import Check, CheckContext, CheckError, Measurement
from .figures import FIGURES, SpanError, as_schema, format_span, parse_span

__all__ = ["PrometheusCheck", "api_get", "instant_query"]

_NAMES: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ]
}
_DURATION = {"type": ["string", "number"]}
_REDUCERS = ("avg", "min", "max", "last", "sum")
_MAX_POINTS = 11000  # Prometheus refuses range queries with more points per series


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


class PrometheusCheck(Check):
    type_name = "prometheus"
    mask_env = True
    summary = "Query Prometheus: a PromQL value (instant or over a window), targets, rules, alerts."
    target_schema: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"type": "string", "minLength": 1, "description": "a PromQL expression"},
            {
                "type": "object",
                "properties": {"targets": _NAMES},
                "required": ["targets"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"rules": _NAMES},
                "required": ["rules"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"alert": {"type": "string", "minLength": 1}},
                "required": ["alert"],
                "additionalProperties": False,
            },
        ]
    }
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "server": {"type": "string", "minLength": 1, "description": "Prometheus base URL"},
        "token": {"type": "string", "description": "bearer token (masked in every output)"},
        "window": {**_DURATION, "description": "range query over this window, ending now"},
        "step": {**_DURATION, "description": "resolution of the range query"},
        "over": {"enum": list(_REDUCERS), "description": "how a window is reduced (avg)"},
        "as": as_schema(),
        "verify": {"type": "boolean"},
        "ca": {"type": "string", "minLength": 1},
        "retry": {
            "type": "object",
            "properties": {"within": _DURATION, "every": _DURATION},
            "required": ["within"],
            "additionalProperties": False,
        },
    }
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"value", *PROMETHEUS_FIGURES, *FIGURES})
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "firing": {"type": "boolean", "description": "for {alert: NAME}: firing or not (true)"},
    }
    default_timeout = 10.0

    @classmethod
    def measures(cls, target: Any, options: dict[str, Any]) -> frozenset[str]:
        if isinstance(target, dict):
            if "targets" in target:
                return frozenset({"targets_up", "targets_down", "targets_total"})
            if "rules" in target:
                return frozenset({"rules_loaded", "rules_missing"})
            return frozenset({"alerts_firing", "alerts_pending"})
        figure = options.get("as")
        return frozenset({"value", "series", *([str(figure)] if figure else [])})

    # -- the API ---------------------------------------------------------------------------
    def _server(self) -> str:
        server = self.spec.options.get("server") or self.context.settings.get("prometheus_url")
        if not server:
            raise CheckError(
                "no Prometheus server: give 'server:' in the check or the ini option "
                "gate_prometheus_url"
            )
        return str(server).rstrip("/")

    def _api(self, path: str, params: dict[str, Any] | None = None) -> Any:
        from . import _web

        return api_get(
            self.context,
            self._server(),
            path,
            params,
            timeout=self.timeout,
            token=self.spec.options.get("token"),
            verify=_web.tls_verify(self.context, self.spec.options),
        )

    # -- measuring -------------------------------------------------------------------------
    def measure(self) -> Measurement:
        retry = self.spec.options.get("retry")
        if not retry:
            return self._measure_once()
        try:
            within = parse_duration(retry["within"])
            every = min(parse_duration(retry.get("every", 1.0)), within)
        except ThresholdError as exc:
            raise CheckError(f"retry: {exc}") from None
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            error: CheckError | None = None
            try:
                measurement = self._measure_once()
            except CheckError as exc:
                error = exc
            else:
                if not measurement.failures and self._thresholds_hold(measurement):
                    break
            if time.monotonic() - started + every > within:
                break
            time.sleep(every)
        waited = f" (after {tries} tries in {time.monotonic() - started:.1f} s)"
        if error is not None:
            raise CheckError(f"{error}{waited}")
        measurement.values["tries"] = float(tries)
        if measurement.failures:
            measurement.failures[-1] += waited
        return measurement

    def _thresholds_hold(self, measurement: Measurement) -> bool:
        for key, threshold in self.spec.thresholds.items():
            if key in measurement.values:
                baseline = self.context.baseline_for(self.spec, key)
                if threshold.holds(key, measurement.values[key], baseline) is False:
                    return False
        return True

    def _measure_once(self) -> Measurement:
        # all the API calls of one attempt (a rule's state, then the alerts) end within the
        # timeout together: each fetch's own deadline ends no later than this one
        with Deadline(self.timeout):
            return self._measure_attempt()

    def _measure_attempt(self) -> Measurement:
        target: Any = self.spec.target
        if isinstance(target, dict):
            if "targets" in target:
                return self._targets(_names(target["targets"]))
            if "rules" in target:
                return self._rules(_names(target["rules"]))
            return self._alert(str(target["alert"]))
        return self._query(str(target))

    def _query(self, query: str) -> Measurement:
        window = self.spec.options.get("window")
        facts: dict[str, Any] = {"query": query, "server": self._server()}
        points: dict[str, list[float]] = {}
        seconds = step = 0.0
        if window is None:
            data = self._api("/api/v1/query", {"query": query})
            series = _instant_series(data)
        else:
            try:
                seconds = parse_span(window)
                step = parse_span(self.spec.options.get("step", max(1.0, seconds / 250)))
            except SpanError as exc:
                raise CheckError(f"window/step: {exc}") from None
            if seconds / step > _MAX_POINTS:
                step = seconds / _MAX_POINTS
            end = time.time()
            data = self._api(
                "/api/v1/query_range",
                {"query": query, "start": end - seconds, "end": end, "step": f"{step:g}"},
            )
            over = str(self.spec.options.get("over", "avg"))
            series = _range_series(data, over, points)
            facts.update(window=format_span(seconds), step=format_span(step), over=over)
        if not series:
            raise CheckError(f"the query returned no series: {query}")
        nan = [labels for labels, value in series if math.isnan(value)]
        if nan:
            raise CheckError(f"the query returned NaN for {nan[0]}: {query}")
        value, failures = self._worst(series)
        values: dict[str, float] = {"value": value, "series": float(len(series))}
        figure = self.spec.options.get("as")
        if figure:
            values[str(figure)] = value
        facts["results"] = {labels: v for labels, v in series[:20]}
        support: dict[str, dict[str, Any]] = {}
        if points:
            support = {key: _range_support(points, seconds, step) for key in values}
            support.pop("series", None)
        return Measurement(values=values, facts=facts, failures=failures, support=support)

    def _worst(self, series: list[tuple[str, float]]) -> tuple[float, list[str]]:
        """The value the thresholds are held to: the only series, else the worst one.

        Every series must hold: the failing ones are named; ``value`` is the series farthest
        on the wrong side (the lowest for ``>``, the highest for ``<``).
        """
        if len(series) == 1:
            return series[0][1], []
        key = str(self.spec.options.get("as") or "value")
        threshold = self.spec.thresholds.get(key) or self.spec.thresholds.get("value")
        if threshold is None:
            return min(v for _, v in series), []
        baseline = self.context.baseline_for(self.spec, key)
        bad = [(labels, v) for labels, v in series if threshold.holds(key, v, baseline) is False]
        failures = [f"{labels} = {v:g}" for labels, v in bad[:5]]
        if len(bad) > 5:
            failures.append(f"and {len(bad) - 5} more series")
        pick = min if threshold.op in (">", ">=") else max
        return pick(v for _, v in (bad or series)), failures

    def _targets(self, jobs: list[str]) -> Measurement:
        data = self._api("/api/v1/targets", {"state": "active"})
        active = (data or {}).get("activeTargets") or []
        by_job: dict[str, list[dict[str, Any]]] = {}
        for target in active:
            labels = target.get("labels") or {}
            job = labels.get("job") or target.get("scrapePool") or ""
            by_job.setdefault(str(job), []).append(target)
        missing = [job for job in jobs if not by_job.get(job)]
        if missing:
            known = ", ".join(sorted(by_job)) or "none"
            raise CheckError(f"job {missing[0]} has no scrape targets (jobs: {known})")
        up = down = 0
        failures: list[str] = []
        seen: dict[str, str] = {}
        for job in jobs:
            for target in by_job[job]:
                instance = (target.get("labels") or {}).get("instance") or target.get("scrapeUrl")
                health = str(target.get("health") or "unknown")
                seen[f"{job}/{instance}"] = health
                if health == "up":
                    up += 1
                else:
                    down += 1
                    reason = target.get("lastError") or "not scraped yet"
                    failures.append(f"target {job}/{instance} is {health}: {reason}")
        return Measurement(
            values={
                "targets_up": float(up),
                "targets_down": float(down),
                "targets_total": float(up + down),
            },
            facts={"targets": seen, "server": self._server()},
            failures=failures,
        )

    def _loaded_rules(self) -> dict[str, dict[str, Any]]:
        data = self._api("/api/v1/rules")
        rules: dict[str, dict[str, Any]] = {}
        for group in (data or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                rules.setdefault(str(rule.get("name")), {**rule, "group": group.get("name")})
        return rules

    def _rules(self, names: list[str]) -> Measurement:
        rules = self._loaded_rules()
        failures: list[str] = []
        loaded = 0
        for name in names:
            rule = rules.get(name)
            if rule is None:
                failures.append(f"rule {name} is not loaded")
                continue
            loaded += 1
            if rule.get("health") not in (None, "ok", "unknown"):
                error = rule.get("lastError") or rule.get("health")
                failures.append(f"rule {name} does not evaluate: {error}")
        return Measurement(
            values={"rules_loaded": float(loaded), "rules_missing": float(len(names) - loaded)},
            facts={
                "rules": {n: rules[n].get("type", "") for n in names if n in rules},
                "loaded_total": len(rules),
                "server": self._server(),
            },
            failures=failures,
        )

    def _alert(self, name: str) -> Measurement:
        rules = self._loaded_rules()
        rule = rules.get(name)
        if rule is None or rule.get("type") != "alerting":
            known = ", ".join(sorted(n for n, r in rules.items() if r.get("type") == "alerting"))
            raise CheckError(f"alert rule {name} is not loaded (alert rules: {known or 'none'})")
        data = self._api("/api/v1/alerts")
        alerts = [
            a
            for a in (data or {}).get("alerts") or []
            if (a.get("labels") or {}).get("alertname") == name
        ]
        firing = sum(1 for a in alerts if a.get("state") == "firing")
        pending = sum(1 for a in alerts if a.get("state") == "pending")
        want = self.spec.expect.get("firing", True)
        failures: list[str] = []
        if want and not firing:
            state = "pending" if pending else "inactive"
            failures.append(f"alert {name} is not firing ({state})")
        if not want and firing:
            failures.append(f"alert {name} is firing ({firing} instance(s))")
        return Measurement(
            values={"alerts_firing": float(firing), "alerts_pending": float(pending)},
            facts={"alert": name, "expected": "firing" if want else "not firing"},
            failures=failures,
        )


def api_get(
    context: CheckContext,
    server: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    timeout: float,
    token: str | None = None,
    verify: bool | str = True,
) -> Any:
    """``GET server + path`` of Prometheus's HTTP API, bounded by ``timeout`` as a whole; its
    ``data``. A bearer ``token`` is masked in every output. An unreachable server, an answer
    that is not JSON or not ``success`` is a :class:`CheckError` with the reason."""
    from . import _web

    server = server.rstrip("/")
    headers: dict[str, str] = {"Accept": "application/json"}
    if token:
        _web.register_secrets(context.redactor, token)
        headers["Authorization"] = f"Bearer {token}"
    try:
        fetched = _web.fetch(
            _web.session_for(context),
            "GET",
            f"{server}{path}",
            timeout=timeout,
            headers=headers,
            params=params,
            verify=verify,
        )
    except _web.FetchError as exc:
        raise CheckError(f"Prometheus at {server} is unreachable: {exc}") from None
    try:
        answer = fetched.json()
    except CheckError:
        raise CheckError(
            f"Prometheus at {server}: {path} answered {fetched.status} without JSON "
            "(is this a Prometheus server?)"
        ) from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        if isinstance(answer, dict) and answer.get("error"):
            kind = answer.get("errorType") or "error"
            raise CheckError(f"Prometheus {kind}: {answer['error']}")
        raise CheckError(f"Prometheus at {server}: {path} answered {fetched.status}")
    return answer.get("data")


def instant_query(
    context: CheckContext,
    server: str,
    query: str,
    *,
    timeout: float,
    token: str | None = None,
    verify: bool | str = True,
) -> list[tuple[str, float]]:
    """An instant query's series as ``(labels, value)``, evaluated now; Prometheus is asked to
    give up at ``timeout`` too. An error, a range vector or a string is a :class:`CheckError`;
    an empty result is an empty list (the caller decides what that means)."""
    params = {"query": query, "timeout": f"{max(timeout, 0.001):.3f}"}  # seconds
    data = api_get(
        context, server, "/api/v1/query", params, timeout=timeout, token=token, verify=verify
    )
    return _instant_series(data)


def _labels(metric: dict[str, Any]) -> str:
    if not metric:
        return "{}"
    name = metric.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise CheckError(f"Prometheus returned a value that is not a number: {text!r}") from None


def _instant_series(data: Any) -> list[tuple[str, float]]:
    body: dict[str, Any] = data if isinstance(data, dict) else {}
    kind = body.get("resultType")
    result: Any = body.get("result")
    if kind == "scalar":
        return [("scalar", _number(result[1]))]
    if kind == "vector":
        return [(_labels(s.get("metric") or {}), _number(s["value"][1])) for s in result or []]
    if kind == "matrix":
        raise CheckError("the query returns a range vector: give 'window:' or use a function")
    raise CheckError(f"the query returns a {kind or 'unknown'} result, not a number")


def _range_support(points: dict[str, list[float]], seconds: float, step: float) -> dict[str, Any]:
    """How well the samples of a range query cover its window (the sparsest series).

    The samples are no counted events: at a step finer than the scrape interval they repeat
    one scrape, so a share read from them (``as: availability_pct``) has no counts to be
    bounded with, and cannot pass a one-sided standard alone."""
    expected = int(seconds // step) + 1
    fewest = min(len(p) for p in points.values())
    return coverage_support(seconds * min(fewest / expected, 1.0), seconds, fewest)


def _range_series(
    data: Any, over: str, kept: dict[str, list[float]] | None = None
) -> list[tuple[str, float]]:
    series: list[tuple[str, float]] = []
    for item in (data or {}).get("result") or []:
        points = [_number(v) for _, v in item.get("values") or []]
        if not points:
            continue
        if kept is not None:
            kept[_labels(item.get("metric") or {})] = points
        if over == "min":
            value = min(points)
        elif over == "max":
            value = max(points)
        elif over == "last":
            value = points[-1]
        elif over == "sum":
            value = math.fsum(points)
        else:
            value = math.fsum(points) / len(points)
        series.append((_labels(item.get("metric") or {}), value))
    return series
