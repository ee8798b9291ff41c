"""A threshold judged on what the evidence behind a figure can prove.

A figure may carry its *support* (what it was measured from), a JSON-able mapping kept with
the result:

- ``{"count": [k, n], "of": "probes", "event": "good"}``: a share of counted events
  (``availability_pct`` = 100 k / n). ``>=``/``>`` are judged on the one-sided
  Clopper-Pearson lower bound, ``<``/``<=`` on the upper bound.
- ``{"quantile": {"q": 0.95, "n": n, "low": L, "high": H, "confidence": c}}``: a percentile
  with its distribution-free order-statistic bounds (``None`` where the sample is too small).
- ``{"mean": {"n": n, "mean": m, "sd": s, "of": "drills"}}``: a mean of ``n`` samples, judged
  on its Student-t bound; a mean figure (:data:`MEANS`: ``avg_ms``, ``mttr_s``, ``mttd_s``)
  without it, or of one sample, cannot pass.
- ``{"coverage": {"share": f, "window_s": w, "samples": m}}``: a figure over a window whose
  samples cover only the share ``f`` of it; under :data:`MIN_COVERAGE` it cannot pass.

A figure whose point estimate meets the threshold while its bound does not is
INCONCLUSIVE, with the evidence still missing named; a point estimate that misses it is a
failure as before. A share of counted events (:data:`COUNTED`) with no counts behind it is
inconclusive too: there is nothing to bound it with; so is a percentile (``pNN_...``) with no
samples behind it.

A relative threshold (``<= +10%``) is always decided against the stored baseline on evidence
(:func:`judge_against_baseline`): samples, counts, n/mean/sd, or the spread of the stored
runs for a figure that is one number per run.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import stats
from .thresholds import Threshold, describe_threshold, format_value, key_unit, number

__all__ = [
    "COUNTED",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_MARGIN",
    "MAX_CONFIDENCE",
    "MEANS",
    "MIN_COMPARED",
    "MIN_COVERAGE",
    "MIN_RUNS",
    "Judged",
    "count_support",
    "coverage_support",
    "evidence_for",
    "figure_kind",
    "histogram_mean_support",
    "histogram_of",
    "is_mean",
    "judge",
    "judge_against_baseline",
    "margin_of",
    "mean_support",
    "needs_bound",
    "parse_confidence",
    "quantile_support",
    "supported_value",
]

DEFAULT_CONFIDENCE = 0.95
#: the highest level accepted: the exact binomial sums of a percentile's bounds resolve an
#: error rate of 1e-9, not one of 1e-12 (a level beyond it would be met by rounding)
MAX_CONFIDENCE = 1 - 1e-9
#: the share of a window its samples must cover for a figure over it to pass
MIN_COVERAGE = 0.9

#: figures that are shares of counted events: judged on their counts, never on the share alone
COUNTED = frozenset(
    {
        "availability_pct",
        "success_ratio",
        "success_pct",
        "failure_ratio",
        "failure_pct",
        "error_ratio",
        "error_pct",
        "pass_ratio",
        "pass_pct",
        "accuracy_pct",
        "precision_pct",
        "recall_pct",
        "share_pct",
        "prevented_pct",
        "auto_response_pct",
        "detected_pct",
        "capacity_pct",
    }
)

#: figures that are means of several samples: judged on n, mean and sd, never on the mean alone
MEANS = frozenset({"avg_ms", "mttr_s", "mttd_s"})

_ONE_SIDED = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Judged:
    """``state`` is ``pass``, ``fail``, ``inconclusive`` or ``undecided`` (no baseline);
    ``text`` says why, and for a pass what the bound shows."""

    state: str
    text: str = ""


def parse_confidence(value: object) -> float:
    """``95%``, ``"99.9 %"``, ``0.95`` or ``95`` as a fraction in [0.5, 1)."""
    if isinstance(value, bool):
        raise ValueError(f"not a confidence level: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            number = float(text.rstrip("%").strip())
        except ValueError:
            raise ValueError(f"not a confidence level: {value!r} (e.g. 95%)") from None
        if percent:
            number /= 100
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ValueError(f"not a confidence level: {value!r} (e.g. 95%)")
    if number >= 1 and not (isinstance(value, str) and value.strip().endswith("%")):
        number /= 100  # 95 means 95 %
    if not (math.isfinite(number) and 0.5 <= number <= MAX_CONFIDENCE):
        raise ValueError(f"confidence level out of range (50% to 99.9999999%): {value!r}")
    return number


#: words that make a ``_pct``/``_ratio``/``_rate`` figure of a team's own a share of counted
#: events (``login_success_pct``, ``uptime_pct``, ``cache_hit_ratio``)
_SHARE_WORDS = frozenset(
    {
        "availability",
        "uptime",
        "success",
        "successful",
        "failure",
        "failures",
        "failed",
        "error",
        "errors",
        "pass",
        "passed",
        "accuracy",
        "precision",
        "recall",
        "hit",
        "miss",
        "detected",
        "prevented",
        "share",
    }
)
#: words that make such a figure a change or an estimate, not a share (``forecast_error_pct``,
#: ``error_reduction_pct``)
_NOT_SHARE_WORDS = frozenset(
    {"forecast", "reduction", "change", "growth", "increase", "decrease", "delta"}
)
#: words that make a figure of a team's own a mean (``checkout_avg_ms``, ``restore_mean_s``)
_MEAN_WORDS = frozenset({"avg", "mean", "mttr", "mttd"})
#: words that make it one extreme or a count instead (``max_mttr_s``)
_NOT_MEAN_WORDS = frozenset({"max", "min", "total", "count", "sum", "this"})


def _words(key: str) -> tuple[str, set[str]]:
    name = key.rsplit("::", 1)[-1]
    return name, set(name.lower().split("_"))


@functools.lru_cache(maxsize=4096)  # by the name alone, asked for every result
def counted(key: str) -> bool:
    """Whether ``key`` (``"GET /a::failure_ratio"`` too) is a share of counted events: a
    figure of :data:`COUNTED`, or one of a team's own named as a share
    (``login_success_pct``, ``checkout_error_ratio``)."""
    name, words = _words(key)
    if name in COUNTED:
        return True
    if not name.endswith(("_pct", "_ratio", "_rate")) or words & _NOT_SHARE_WORDS:
        return False
    return bool(words & _SHARE_WORDS)


@functools.lru_cache(maxsize=4096)  # by the name alone, asked for every result
def is_mean(key: str) -> bool:
    """Whether ``key`` (``"GET /a::avg_ms"`` too) is a mean of several samples: a figure of
    :data:`MEANS`, or one of a team's own named as a mean (``checkout_avg_ms``)."""
    name, words = _words(key)
    if name in MEANS:
        return True
    if words & _NOT_MEAN_WORDS or percentile_of(key) is not None or counted(key):
        return False
    return bool(words & _MEAN_WORDS)


def needs_bound(key: str, support: Mapping[str, Any]) -> bool:
    """Whether a threshold on ``key`` is judged on more than its value: it has support, or
    is a share of counted events, a percentile or a mean (which cannot pass without it)."""
    if key in support:
        return True
    return figure_kind(key) is not None


#: what in a support is evidence of each kind of figure
_EVIDENCE = {"counted": ("count",), "percentile": ("quantile", "histogram"), "mean": ("mean",)}
#: what in a support is evidence of the other kinds than each
_OTHER_EVIDENCE = {
    kind: frozenset(part for other, parts in _EVIDENCE.items() if other != kind for part in parts)
    for kind in _EVIDENCE
}


@functools.lru_cache(maxsize=4096)  # by the name alone, asked for every result
def figure_kind(key: str) -> str | None:
    """``percentile``, ``counted`` or ``mean`` for a figure that needs a bound by its name
    (``p95_ms``, ``availability_pct``, ``mttr_s``), else None."""
    if percentile_of(key) is not None:
        return "percentile"
    if counted(key):
        return "counted"
    if is_mean(key):
        return "mean"
    return None


def evidence_for(key: str, support: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The part of ``support`` that is evidence for ``key``: a figure that needs a bound by
    its name is judged only on evidence of its own kind (a mean reported ``as: p95_ms`` is no
    percentile, a share of counted records reported ``as: mttr_s`` no mean, the p50's bounds
    none of the p95); the rest of ``support`` (coverage, what was shown) stays. ``support``
    itself when all of it fits."""
    support = support or {}
    kind = figure_kind(key)
    if kind is None:
        return support
    drop = set(_OTHER_EVIDENCE[kind])
    if kind == "percentile":
        quantile = support.get("quantile")
        q = percentile_of(key)
        if isinstance(quantile, Mapping):
            try:
                same = q is not None and math.isclose(float(quantile.get("q") or 0.0), q)
            except (TypeError, ValueError):
                same = False
            if not same:
                drop |= {"quantile", "histogram"}
    if not drop & set(support):
        return support
    return {k: v for k, v in support.items() if k not in drop}


def _bounded(key: str, support: Mapping[str, Any]) -> bool:
    """Whether a figure needs a bound: by its name, or by the evidence recorded with it."""
    return figure_kind(key) is not None or any(
        isinstance(support.get(part), Mapping | list | tuple)
        for parts in _EVIDENCE.values()
        for part in parts
    )


def count_support(events: int, total: int, of: str, event: str) -> dict[str, Any]:
    return {"count": [int(events), int(total)], "of": of, "event": event}


def coverage_support(covered_s: float, window_s: float, samples: int) -> dict[str, Any]:
    share = max(0.0, min(1.0, covered_s / window_s)) if window_s > 0 else 0.0
    return {"coverage": {"share": round(share, 6), "window_s": window_s, "samples": samples}}


def mean_support(values: Sequence[float], of: str = "samples") -> dict[str, Any]:
    return _mean_entry(*stats.sample_stats(values), of)


def _mean_entry(n: int, mean: float, sd: float, of: str) -> dict[str, Any]:
    """The stored support of a mean: its n, mean and sd (None where not finite)."""
    return {
        "mean": {
            "n": n,
            "mean": mean if math.isfinite(mean) else None,
            "sd": sd if math.isfinite(sd) else None,
            "of": of,
        }
    }


def histogram_mean_support(
    histogram: stats.Histogram, of: str = "requests", mean: float | None = None
) -> dict[str, Any]:
    """The n, mean and sd behind a mean taken over an exact histogram (a load check's
    ``avg_ms`` over its 1 ms response-time histogram); ``mean`` the exact mean where the
    histogram rounds the samples."""
    n, hist_mean, sd = stats.histogram_stats(histogram)
    return _mean_entry(n, hist_mean if mean is None else mean, sd, of)


def quantile_support(
    histogram: stats.Histogram, q: float, confidence: float = DEFAULT_CONFIDENCE
) -> dict[str, Any]:
    n = sum(histogram.values())
    if n == 0:
        return {"quantile": {"q": q, "n": 0, "low": None, "high": None, "confidence": confidence}}
    # the samples themselves: what a comparison with a stored baseline tests (and stores)
    samples = {v: int(c) for v, c in sorted(histogram.items()) if c}
    low, high = stats.quantile_bounds(histogram, q, confidence)
    return {
        "quantile": {
            "q": q,
            "n": n,
            "low": low if math.isfinite(low) else None,
            "high": high if math.isfinite(high) else None,
            "confidence": confidence,
        },
        "histogram": samples,
    }


def format_span(seconds: float) -> str:
    """``2592000`` -> ``30 d``, ``300`` -> ``5 min``, ``2.5`` -> ``2.5 s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _pct(confidence: float) -> str:
    # every digit given: 99.99999 % is no "100 %" (a certainty no sample gives)
    return f"{confidence * 100:.10g} %"


def _rounded(value: float, down: bool, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits, rounded the way that claims less."""
    if value == 0 or not math.isfinite(value):
        return value
    places = digits - 1 - math.floor(math.log10(abs(value)))
    scale = 10.0**places
    return (math.floor if down else math.ceil)(value * scale - 1e-9 * (1 if down else -1)) / scale


def _show(key: str, value: float, down: bool, threshold: Threshold | None = None) -> str:
    """A bound to 4 significant digits, or as many more as it takes to stay on the side of
    ``threshold`` the bound itself is on (``>= 99.99 %`` for a bound that passes
    ``>= 99.9999%`` would read as a pass without proof)."""
    digits, shown = 4, _rounded(value, down)
    while threshold is not None and digits < 15:
        if threshold.holds(key, shown) == threshold.holds(key, value):
            break
        digits += 1
        shown = _rounded(value, down, digits)
    if digits <= 6:
        return format_value(key, shown)
    unit = key_unit(key)
    text = f"{shown:.{digits}g}"
    return text if unit in (None, "ratio") else f"{text} {unit}"


def judge(
    key: str,
    threshold: Threshold,
    value: float,
    support: Mapping[str, Any] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    baseline: float | None = None,
    min_coverage: float = MIN_COVERAGE,
    reference: Mapping[str, Any] | None = None,
) -> Judged:
    """Judge ``value`` of ``key`` against ``threshold`` on the bound its ``support`` allows.

    ``reference`` is what the stored baseline runs hold behind ``baseline`` (a histogram or
    counts; ``{}`` when they hold none): a relative threshold on a percentile or a counted
    figure is then decided by a statistical test (:func:`judge_against_baseline`)."""
    holds = threshold.holds(key, value, baseline)
    # the value's text only where a message shows it: most values pass and show none
    if holds is None:
        return Judged(
            "undecided", f"{key} = {format_value(key, value)}: {threshold} needs a baseline"
        )
    support = evidence_for(key, support)
    covered = _covered(key, value, support, min_coverage)
    if threshold.relative and baseline is not None:
        compared = judge_against_baseline(
            key, threshold, value, support, reference or {}, baseline, confidence
        )
        if compared.state == "pass" and covered is not None:
            return covered
        return compared
    if not holds:
        return Judged(
            "fail",
            f"{key} = {format_value(key, value)}, "
            f"expected {describe_threshold(key, threshold, baseline)}",
        )
    if covered is not None:
        return covered
    if threshold.op not in _ONE_SIDED:
        if not _bounded(key, support):
            return Judged("pass")
        return _judge_equality(key, threshold, value, support, confidence, min_coverage)
    lower = threshold.op in (">", ">=")
    if "count" in support:
        # judged once, with the check; the verdict and the reports read it back
        memo = support.get("judged")
        text = str(threshold)
        if (
            isinstance(memo, Mapping)
            and memo.get("key") == key
            and memo.get("threshold") == text
            and memo.get("confidence") == confidence
        ):
            return Judged(str(memo.get("state")), str(memo.get("text") or ""))
        fresh = {"key": key, "threshold": text, "confidence": confidence}
        judged = _judge_count(key, threshold, support, confidence, lower)
        if isinstance(support, dict):
            support["judged"] = {**fresh, "state": judged.state, "text": judged.text}
        return judged
    if isinstance(support.get("quantile"), Mapping):
        return _judge_quantile(key, threshold, value, support, confidence, lower)
    if isinstance(support.get("mean"), Mapping):
        return _judge_mean(key, threshold, value, support["mean"], confidence, lower)
    shown = format_value(key, value)
    if is_mean(key):
        return Judged(
            "inconclusive",
            f"{key} = {shown} is a mean with no samples behind it: no bound at "
            f"{_pct(confidence)} confidence (record the samples, their n and spread, with it)",
        )
    if counted(key):
        return Judged(
            "inconclusive",
            f"{key} = {shown} with no counts behind it: no bound at {_pct(confidence)} "
            "confidence (record the counted events with the figure)",
        )
    if percentile_of(key) is not None:
        return Judged(
            "inconclusive",
            f"{key} = {shown} with no samples behind it: no bound at {_pct(confidence)} "
            "confidence (record the samples with the figure)",
        )
    return Judged("pass")


def _judge_equality(
    key: str,
    threshold: Threshold,
    value: float,
    support: Mapping[str, Any],
    confidence: float,
    min_coverage: float,
) -> Judged:
    """``==``/``!=`` met by the point estimate of a figure that needs a bound. No sample
    shows a share, a percentile or a mean equal to a number (``availability_pct: "== 100%"``
    from 3 probes): INCONCLUSIVE. ``!= x`` is shown by the bound on the side the value lies
    on (``> x`` or ``< x``)."""
    if threshold.op == "!=":
        limit = threshold.limit(key)
        side = ">" if limit is not None and value > limit else "<"
        judged = judge(
            key,
            Threshold(side, threshold.value, threshold.unit),
            value,
            support,
            confidence,
            min_coverage=min_coverage,
        )
        if judged.state == "fail":  # the value lies on that side: it is never a miss
            return Judged("inconclusive", judged.text)
        return judged
    return Judged(
        "inconclusive",
        f"{key} = {format_value(key, value)}: no sample can show a "
        f"{figure_kind(key) or 'measured'} figure {threshold} (its bound only narrows it "
        "down): state it with >= or <=",
    )


def _covered(
    key: str, value: float, support: Mapping[str, Any], min_coverage: float
) -> Judged | None:
    """INCONCLUSIVE when the samples of a figure over a window cover too little of it."""
    coverage = support.get("coverage")
    if isinstance(coverage, Mapping) and float(coverage.get("share", 0.0)) < min_coverage:
        window = float(coverage.get("window_s") or 0.0)
        return Judged(
            "inconclusive",
            f"{key} = {format_value(key, value)}: "
            f"{int(coverage.get('samples') or 0)} samples cover "
            f"{float(coverage.get('share', 0.0)) * 100:.3g} % of the "
            f"{format_span(window) if window > 0 else ''} window; "
            f"{min_coverage * 100:g} % needed",
        )
    return None


def _judge_count(
    key: str, threshold: Threshold, support: Mapping[str, Any], confidence: float, lower: bool
) -> Judged:
    events, total = (int(x) for x in support["count"])
    of, event = str(support.get("of") or "events"), str(support.get("event") or "counted")
    what = f"{key} {events}/{total} {of} {event}"
    if support.get("over"):
        what += f" {support['over']}"  # e.g. the period of a deploy history
    if total <= 0:
        return Judged("inconclusive", f"{key}: no {of} counted")
    scale = 100.0 if key_unit(key) == "%" else 1.0
    if lower:
        bound = stats.binomial_lower(events, total, confidence) * scale
    else:
        bound = stats.binomial_upper(events, total, confidence) * scale
    side = ">=" if lower else "<="
    said = f"{what}: {side} {_show(key, bound, lower, threshold)} at {_pct(confidence)} confidence"
    if threshold.holds(key, bound):
        return Judged("pass", said)
    limit = threshold.limit(key)
    needed = None
    if limit is not None:
        needed = stats.trials_needed(events, total, limit / scale, confidence, lower=lower)
        # a strict bound needs the one more trial that moves it off the limit
        while needed is not None and needed < 10**9:
            bound_n = (
                stats.binomial_lower(needed - (total - events), needed, confidence)
                if lower
                else stats.binomial_upper(events, needed, confidence)
            )
            if threshold.holds(key, bound_n * scale):
                break
            needed += 1
    against = total - events if lower else events
    if needed is None:
        more = f"more than 10^9 {of} would be needed to show {threshold}"
    elif lower and against == 0:
        more = f"{needed} {event} {of} show {threshold}"
    elif lower:
        more = f"{needed} {of} with no more than {against} not {event} show {threshold}"
    elif against == 0:
        more = f"{needed} {of} with none {event} show {threshold}"
    else:
        more = f"{needed} {of} with no more than {against} {event} show {threshold}"
    return Judged("inconclusive", f"{said}; {more}")


def _judge_quantile(
    key: str,
    threshold: Threshold,
    value: float,
    support: Mapping[str, Any],
    confidence: float,
    lower: bool,
) -> Judged:
    quantile = support["quantile"]
    q = float(quantile.get("q") or 0.5)
    n = int(quantile.get("n") or 0)
    bound = quantile.get("low" if lower else "high")
    stamped = float(quantile.get("confidence") or 0.0)
    if stamped != confidence:
        # bounded at another level when it was measured: bound it again, at this one, from
        # its samples (a bound at a higher level holds at a lower one too; one at a lower
        # level proves nothing here)
        histogram = histogram_of(support.get("histogram"))
        if histogram and sum(histogram.values()) == n:
            low, high = stats.quantile_bounds(histogram, q, confidence)
            found = low if lower else high
            bound = found if math.isfinite(found) else None
        elif stamped < confidence:
            bound = None
    name = f"p{q * 100:g}"
    if bound is None:
        tail = 1 - q if lower else q
        needed = math.ceil(math.log(1 - confidence) / math.log(tail))
        return Judged(
            "inconclusive",
            f"{key} = {format_value(key, value)} from {n} samples: too few to bound the {name} "
            f"at {_pct(confidence)} confidence; {needed} samples needed",
        )
    said = (
        f"{key} from {n} samples: {'>=' if lower else '<='} {format_value(key, float(bound))} "
        f"at {_pct(confidence)} confidence"
    )
    if threshold.holds(key, float(bound)):
        return Judged("pass", said)
    return Judged(
        "inconclusive", f"{key} = {format_value(key, value)}, but {said}; more samples needed"
    )


def _judge_mean(
    key: str,
    threshold: Threshold,
    value: float,
    mean: Mapping[str, Any],
    confidence: float,
    lower: bool,
) -> Judged:
    n = int(mean.get("n") or 0)
    sd = mean.get("sd")
    of = str(mean.get("of") or "samples")
    spread = float(sd) if sd is not None else math.nan
    low, high = stats.mean_bounds(n, value, spread, confidence)
    bound = low if lower else high
    if not math.isfinite(bound):
        noun = of[:-1] if n == 1 and of.endswith("s") else of
        return Judged(
            "inconclusive",
            f"{key} = {format_value(key, value)} is the mean of {n} {noun}: no bound at "
            f"{_pct(confidence)} confidence; a mean needs at least 2 {of}",
        )
    if of == "requests" and n < MIN_COMPARED:
        # response times are skewed: a t bound from a few dozen of them can undercover
        return Judged(
            "inconclusive",
            f"{key} = {format_value(key, value)} is the mean of {n} {of}: response times "
            f"are skewed, their mean's t bound needs {MIN_COMPARED} {of}",
        )
    said = (
        f"{key} mean of {n} {of}: {'>=' if lower else '<='} {_show(key, bound, lower, threshold)} "
        f"at {_pct(confidence)} confidence"
    )
    if threshold.holds(key, bound):
        return Judged("pass", said)
    limit = threshold.limit(key)
    needed = (
        stats.mean_samples_needed(value, spread, limit, confidence, lower=lower)
        if limit is not None
        else None
    )
    more = (
        f"{needed} {of} with this spread show {threshold}"
        if needed is not None
        else "more samples needed"
    )
    return Judged("inconclusive", f"{key} = {format_value(key, value)}, but {said}; {more}")


#: ``p95_ms``, and a team's own ``page_p95_ms``, ``search_p99.9_ms``
_PERCENTILE = re.compile(r"(?:^|_)p(\d{1,2}(?:\.\d+)?)(?:_|$)")


@functools.lru_cache(maxsize=4096)  # by the name alone, asked for every result
def percentile_of(key: str) -> float | None:
    """The quantile a percentile figure names (``p95_ms`` -> 0.95), or None; of an endpoint's
    figure (``GET /a_p50::p95_ms``) by the figure's name alone."""
    match = _PERCENTILE.search(key.rsplit("::", 1)[-1])
    if match is None:
        return None
    q = float(match.group(1)) / 100
    return q if 0 < q < 1 else None


def supported_value(
    key: str,
    value: float | None,
    counts: tuple[int, int] | None = None,
    samples: Sequence[float] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, dict[str, Any]]:
    """A recorded value and its support: from ``counts`` (events, total) a share, from
    ``samples`` a percentile (for ``pNN_`` names) or a mean; the value computed when None,
    else checked against them. Raises ValueError for anything that does not fit."""
    support: dict[str, Any] = {}
    if counts is not None and samples is not None:
        raise ValueError("give counts or samples, not both")
    if counts is not None:
        events, total = counts
        if any(isinstance(x, bool) or not isinstance(x, int) for x in (events, total)):
            raise ValueError(f"counts must be two whole numbers (events, total), got {counts!r}")
        if not 0 <= events <= total or total == 0:
            raise ValueError(f"counts must have 0 <= events <= total and total > 0: {counts!r}")
        scale = 100.0 if key_unit(key) == "%" else 1.0
        computed = round(events / total * scale, 9)
        support = count_support(events, total, "events", "counted")
    elif samples is not None:
        numbers = [float(v) for v in samples]
        if not numbers or not all(math.isfinite(v) for v in numbers):
            raise ValueError("samples must be a non-empty list of finite numbers")
        q = percentile_of(key)
        if q is not None:
            ordered = sorted(numbers)
            computed = ordered[max(math.ceil(q * len(ordered)) - 1, 0)]  # nearest rank
            support = quantile_support(Counter(ordered), q, confidence)
        else:
            computed = math.fsum(numbers) / len(numbers)
            support = mean_support(numbers)
    else:
        computed = math.nan
    if value is None:
        if not support:
            raise ValueError("needs a value, counts=(events, total) or samples=[...]")
        value = computed
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"needs a finite number, got {value!r}")
    if not math.isfinite(number(value)):
        shown = "an int too large" if isinstance(value, int) else repr(value)
        raise ValueError(f"needs a finite number, got {shown}")
    value = number(value)
    if support and not math.isclose(value, computed, rel_tol=1e-6, abs_tol=1e-9):
        raise ValueError(f"{value!r} is not what the counts or samples give ({computed:g})")
    return float(value), support


#: the smallest practical margin of a relative latency or failure threshold: a ``<= +0%``
#: standard means "no regression beyond 10 %", the least a run-to-run comparison on a shared
#: machine can tell from noise (a larger percentage in the threshold is used as given)
DEFAULT_MARGIN = 0.10
#: samples (requests) each side needs before "no significant regression" can PASS
MIN_COMPARED = 50
#: a run's samples in time order are cut into at most this many batches of equal length
MAX_BATCHES = 20
#: with fewer batches that hold samples, the tail test takes the samples as independent
MIN_BATCHES = 5


def time_batches(
    slots: Mapping[int, Mapping[Any, int]], most: int = MAX_BATCHES
) -> list[dict[float, int]]:
    """Consecutive slots of wall-clock time (slot number -> histogram) joined into at most
    ``most`` batches of equal length, in time order; batches without samples are left out."""
    if not slots or most < 1:
        return []
    first = min(slots)
    span = max(slots) - first + 1
    per = math.ceil(span / most)
    batches: list[Counter[float]] = [Counter() for _ in range(math.ceil(span / per))]
    for slot, hist in slots.items():
        batch = batches[(slot - first) // per]
        for value, count in hist.items():
            if int(count) > 0:
                batch[float(value)] += int(count)
    return [
        {(int(v) if v.is_integer() else v): c for v, c in sorted(b.items())} for b in batches if b
    ]


def clustered_excess(batches: Sequence[Mapping[Any, int]], cut: float, share: float) -> float:
    """How far the share of samples above ``cut`` lies above ``share``, in standard errors that
    count the batches (time slots) as the units of sampling: a t statistic with ``len(batches)
    - 1`` degrees of freedom. The samples of a load burst fall in a few batches, so they widen
    the error; a slower tail shows in every batch. The error is never taken smaller than that
    of independent samples (the binomial one)."""
    sizes, above = [], []
    for batch in batches:
        hist = histogram_of(batch)
        sizes.append(sum(hist.values()))
        above.append(sum(c for v, c in hist.items() if v > cut))
    total, k = sum(sizes), len(sizes)
    if total == 0 or k < 2:
        return -math.inf
    found = sum(above) / total
    spread = sum((a - found * n) ** 2 for a, n in zip(above, sizes, strict=True))
    variance = max(k / (k - 1) * spread / total**2, found * (1 - found) / total)
    if variance <= 0:
        return math.inf if found > share else -math.inf
    return (found - share) / math.sqrt(variance)


def histogram_of(data: object) -> dict[float, int]:
    """A stored ``{value: count}`` histogram (keys as JSON text too); ``{}`` when it is none."""
    if not isinstance(data, Mapping):
        return {}
    found: dict[float, int] = {}
    for value, count in data.items():
        try:
            v, c = float(value), int(count)
        except (TypeError, ValueError):
            return {}
        if not math.isfinite(v) or c < 0:
            return {}
        if c:
            found[v] = found.get(v, 0) + c
    return found


#: stored runs a figure that is one number per run needs before its spread can show "no
#: regression" (the Student-t prediction of one more run has k - 1 degrees of freedom)
MIN_RUNS = 3
#: the newest runs whose spread is used under ``baseline: {compare: last}``
SPREAD_RUNS = 5


def margin_of(threshold: Threshold) -> float:
    """The practical margin of a relative "no regression" threshold (a fraction): its own
    percentage, at least :data:`DEFAULT_MARGIN`."""
    return max(abs(float(threshold.value)) / 100, DEFAULT_MARGIN)


def _change(value: float, baseline: float) -> str:
    if baseline <= 0:
        return "new" if value > 0 else "+0 %"
    change = (value / baseline - 1) * 100
    if change != 0 and abs(change) < 1:
        return f"{change:+.2g} %"  # a share: -0.01 %, not -0 %
    return f"{change:+.0f} %"


def _p(p: float) -> str:
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def _kind(key: str, support: Mapping[str, Any]) -> str:
    kind = figure_kind(key)
    if kind is not None:
        return kind
    if isinstance(support.get("count"), list | tuple):
        return "counted"
    if isinstance(support.get("mean"), Mapping):
        return "mean"
    return "runs"


def _mean_of(entry: object, value: float | None = None) -> tuple[int, float, float] | None:
    """(n, mean, sd) of a ``{"mean": {...}}`` support or stored distribution, or None."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("mean"), Mapping):
        return None
    mean = entry["mean"]
    try:
        n = int(mean.get("n") or 0)
        m = float(mean["mean"]) if mean.get("mean") is not None else value
        sd = float(mean["sd"]) if mean.get("sd") is not None else math.nan
    except (TypeError, ValueError):
        return None
    if m is None or n <= 0 or not math.isfinite(m):
        return None
    return n, float(m), sd


def _placements(values: Mapping[float, int], among: Mapping[float, int]) -> dict[float, float]:
    """Each of ``values``' share of ``among`` below it, ties counting half."""
    keys = sorted(v for v, c in among.items() if c > 0)
    prefix = [0]
    for v in keys:
        prefix.append(prefix[-1] + among[v])
    n = prefix[-1]
    found = {}
    for x in values:
        at = bisect.bisect_left(keys, x)
        tied = among[x] if at < len(keys) and keys[at] == x else 0
        found[x] = (prefix[at] + tied / 2) / n
    return found


def clustered_shift(batches: Sequence[Mapping[Any, int]], base: Mapping[float, int]) -> float:
    """How far the new samples tend to lie above ``base``, in standard errors that count the
    batches (time slots) as the units of sampling: the Mann-Whitney statistic as the mean
    placement of the new samples among the baseline's (0.5: no shift), its error by DeLong's
    two parts, the new side's from the spread of the batches' placements (never smaller than
    for independent samples), the baseline's as independent samples. A t statistic with
    ``len(batches) - 1`` degrees of freedom."""
    hists = [histogram_of(b) for b in batches]
    new: Counter[float] = Counter()
    for hist in hists:
        new.update(hist)
    base = {v: c for v, c in base.items() if c > 0}
    n_new, n_base, k = sum(new.values()), sum(base.values()), len(hists)
    if n_new == 0 or n_base == 0 or k < 2:
        return -math.inf
    placed = _placements(new, base)
    theta = sum(placed[x] * c for x, c in new.items()) / n_new
    spread = sum(
        (sum(placed[x] * c for x, c in hist.items()) - theta * sum(hist.values())) ** 2
        for hist in hists
    )
    independent = sum((placed[x] - theta) ** 2 * c for x, c in new.items()) / max(n_new - 1, 1)
    var_new = max(k / (k - 1) * spread / n_new**2, independent / n_new)
    # the baseline's side: each baseline value's share of the new samples above it
    above = {v: 1 - share for v, share in _placements(base, new).items()}
    mean_base = sum(above[v] * c for v, c in base.items()) / n_base
    var_base = sum((above[v] - mean_base) ** 2 * c for v, c in base.items()) / max(n_base - 1, 1)
    variance = var_new + var_base / n_base
    if variance <= 0:
        return math.inf if theta > 0.5 else -math.inf
    return (theta - 0.5) / math.sqrt(variance)


def _time_batches(support: Mapping[str, Any]) -> list[dict[float, int]]:
    """The new run's time batches that hold samples; none when fewer than :data:`MIN_BATCHES`."""
    raw = support.get("batches")
    found = [h for h in (histogram_of(b) for b in raw) if h] if isinstance(raw, list) else []
    return found if len(found) >= MIN_BATCHES else []


def judge_against_baseline(
    key: str,
    threshold: Threshold,
    value: float,
    support: Mapping[str, Any] | None,
    reference: Mapping[str, Any],
    baseline: float,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Judged:
    """A relative threshold decided by a one-sided test against the stored baseline.

    ``<``/``<=`` say "lower is better", ``>``/``>=`` "higher is better". A threshold that
    allows the figure to get worse (``<= +10%``, ``>= -10%``) asks "no regression beyond the
    margin": the baseline is scaled by the margin (:func:`margin_of`) and the new run tested
    against it; a significant regression FAILS, none PASSES only with enough evidence
    (:data:`MIN_COMPARED` samples each side, :data:`MIN_RUNS` stored runs), else
    INCONCLUSIVE. One that demands an improvement (``<= -10%``, ``>= +5%``) PASSES only when
    the test shows the new run significantly better than the baseline scaled by it; a point
    that misses it FAILS. ``==``/``!=`` cannot be shown by a test: INCONCLUSIVE when met.

    The test by kind of figure: percentiles, Mann-Whitney U on the histograms plus the
    percentile's order-statistic bounds (a regression of the tail alone), each at half the
    error rate; counted figures, Fisher's exact test of the events against the baseline's
    scaled counts; means, Welch's t test from n, mean and sd; any other figure (one number
    per run: ``rps``, ``duration_s``), the Student-t prediction of one more run from the
    stored runs' values."""
    support = evidence_for(key, support)
    reference = evidence_for(key, reference)
    alpha = 1 - confidence
    shown, base_shown = format_value(key, value), format_value(key, baseline)
    head = f"{key} {shown} vs baseline {base_shown} ({_change(value, baseline)}"
    point = threshold.holds(key, value, baseline)
    if threshold.op not in _ONE_SIDED:
        if not point:
            return Judged(
                "fail", f"{key} = {shown}, expected {describe_threshold(key, threshold, baseline)}"
            )
        return Judged(
            "inconclusive",
            f"{head}): no test can show a figure {threshold.op} a share of its baseline "
            "(state it with <= or >=)",
        )
    lower_better = threshold.op in ("<", "<=")
    v = float(threshold.value) / 100
    improve = v < 0 if lower_better else v > 0
    margin = margin_of(threshold)
    if improve:
        factor = 1 + v
        margin_text = f"improvement {abs(v) * 100:g} %"
    else:
        factor = 1 + margin if lower_better else 1 - margin
        margin_text = f"margin {margin * 100:g} %"
    kind = _kind(key, support)
    enough = True
    tail_why = ""
    burst = ""  # what the time batches showed to be a load burst, not a regression
    shift_aside = False
    if kind == "percentile":
        q = percentile_of(key) or 0.5
        new, base = histogram_of(support.get("histogram")), histogram_of(reference.get("histogram"))
        if not base:
            return Judged(
                "inconclusive",
                f"{head}): the baseline holds no latency distribution to compare with "
                "(saved before distributions were stored): save a new baseline",
            )
        if not new:
            return Judged("inconclusive", f"{head}): no samples behind {key} to compare")
        scaled = {x * factor: c for x, c in base.items()}
        n_new, n_base = sum(new.values()), sum(base.values())
        test = stats.mann_whitney(new, scaled)
        p_worse, p_better = (
            (test.p_greater, test.p_less) if lower_better else (test.p_less, test.p_greater)
        )
        if not improve:
            # the tail alone: the new percentile's bound beyond the scaled baseline's
            low_new, high_new = stats.quantile_bounds(new, q, 1 - alpha / 2)
            low_base, high_base = stats.quantile_bounds(scaled, q, 1 - alpha / 2)
            if lower_better and math.isfinite(low_new) and low_new > high_base:
                tail_why = f"p{q * 100:g} >= {format_value(key, low_new)}"
            elif not lower_better and math.isfinite(high_new) and high_new < low_base:
                tail_why = f"p{q * 100:g} <= {format_value(key, high_new)}"
            batches = _time_batches(support) if lower_better else []
            if batches and (tail_why or p_worse < alpha / 2):
                # both tests take the samples as independent; a load burst of the machine
                # slows the requests of a moment together, and a few moments can make a run's
                # tail or tip its ranks. A regression shows across the run's time batches
                # too: each test is asked again with the batches as the units of sampling.
                level = stats.t_ppf(1 - alpha / 2, len(batches) - 1)
                set_aside = []
                if tail_why and not clustered_excess(batches, high_base, 1 - q) > level:
                    tail_why = ""
                    set_aside.append(f"p{q * 100:g}")
                if p_worse < alpha / 2 and not clustered_shift(batches, scaled) > level:
                    shift_aside = True
                    set_aside.append("the shift")
                if set_aside:
                    burst = (
                        f"; {' and '.join(set_aside)} clustered in time, a load burst over "
                        f"{len(batches)} time batches"
                    )
        samples = f"{n_new} vs {n_base} samples{burst}"
        enough = min(n_new, n_base) >= MIN_COMPARED
        need = f"{MIN_COMPARED} samples each side needed"
        if enough and not improve:
            # "not significant" proves nothing where the new percentile itself lies beyond
            # what the baseline with its margin can be (a tail too thin for either test, a
            # slowdown set aside as clustered in time): the point must be within its bound
            allowed = high_base if lower_better else low_base
            if not math.isfinite(allowed):
                enough = False
                need = (
                    f"the baseline's {n_base} samples cannot bound its p{q * 100:g}: "
                    "more samples needed"
                )
            elif (value > allowed) if lower_better else (value < allowed):
                enough = False
                why = (
                    "a load burst of the machine or a version that stalls now and then: "
                    "run it again; more samples or a wider margin needed"
                    if burst
                    else "more samples or a wider margin needed"
                )
                need = (
                    f"p{q * 100:g} {format_value(key, value)} lies beyond the baseline's with "
                    f"the margin ({'<=' if lower_better else '>='} "
                    f"{format_value(key, allowed)}), not significantly: {why}"
                )
    elif kind == "counted":
        new_count, base_count = support.get("count"), reference.get("count")
        if not isinstance(base_count, list | tuple) or len(base_count) != 2:
            return Judged(
                "inconclusive",
                f"{head}): the baseline holds no counts to compare with "
                "(saved before counts were stored): save a new baseline",
            )
        if not isinstance(new_count, list | tuple) or len(new_count) != 2:
            return Judged("inconclusive", f"{head}): no counts behind {key} to compare")
        k_new, n_new = (int(x) for x in new_count)
        k_base, n_base = (int(x) for x in base_count)
        if n_new <= 0 or n_base <= 0:
            return Judged("inconclusive", f"{head}): nothing counted to compare")
        # the events that make the figure worse: the counted ones when lower is better,
        # the others when higher is better (availability: the probes not good)
        bad_new = k_new if lower_better else n_new - k_new
        bad_share = (k_base if lower_better else n_base - k_base) / n_base
        if improve:
            allowed = bad_share * factor if lower_better else 1 - (1 - bad_share) * factor
            scaled_bad = max(0, min(n_base, math.floor(allowed * n_base + 1e-9)))
        else:
            # the bad events may grow by the margin, and as far as the threshold allows
            allowed = bad_share * (1 + margin)
            if not lower_better:
                allowed = max(allowed, 1 - (1 - bad_share) * (1 + v))
            scaled_bad = max(0, min(n_base, math.ceil(allowed * n_base - 1e-9)))
            if not lower_better and bad_share > 0:
                # the margin as the growth of the events against the figure it allows
                other = f"not {support.get('event') or 'counted'}"
                margin_text = f"margin {(allowed / bad_share - 1) * 100:.3g} % more {other}"
        p_worse = stats.fisher_greater(bad_new, n_new, scaled_bad, n_base)
        p_better = stats.fisher_greater(scaled_bad, n_base, bad_new, n_new)
        samples = f"{k_new}/{n_new} vs {k_base}/{n_base}"
        enough = min(n_new, n_base) >= MIN_COMPARED
        need = f"{MIN_COMPARED} samples each side needed"
        if enough and not improve:
            # as for a percentile: the new share must lie within what the baseline's share
            # with the margin can be (its bound), else "not significant" proves nothing
            most = stats.binomial_upper(scaled_bad, n_base, 1 - alpha / 2)
            if bad_new / n_new > most:
                scale = 100.0 if key_unit(key) == "%" else 1.0
                bound = most if lower_better else 1 - most
                enough = False
                need = (
                    f"{key} {format_value(key, value)} lies beyond the baseline's with the "
                    f"margin ({'<=' if lower_better else '>='} "
                    f"{_show(key, bound * scale, not lower_better)}), not significantly: "
                    "more samples or a wider margin needed"
                )
    elif kind == "mean":
        new_mean, base_mean = _mean_of(support, value), _mean_of(reference)
        if base_mean is None:
            return Judged(
                "inconclusive",
                f"{head}): the baseline holds no n, mean and sd of {key} to compare with "
                "(saved before they were stored): save a new baseline",
            )
        if new_mean is None:
            return Judged("inconclusive", f"{head}): no samples behind {key} to compare")
        n_new, m_new, s_new = new_mean
        n_base, m_base, s_base = base_mean
        if min(n_new, n_base) < 2 or not (math.isfinite(s_new) and math.isfinite(s_base)):
            return Judged(
                "inconclusive",
                f"{head}): {n_new} vs {n_base} samples: a comparison of means needs "
                "at least 2 each side",
            )
        p_greater, p_less = stats.welch_p(
            n_new, m_new, s_new, n_base, m_base * factor, s_base * abs(factor)
        )
        p_worse, p_better = (p_greater, p_less) if lower_better else (p_less, p_greater)
        samples = f"means of {n_new} vs {n_base} samples"
        enough = min(n_new, n_base) >= MIN_COMPARED
        need = f"{MIN_COMPARED} samples each side needed"
        # "within noise" means something only where a regression of the margin could be seen
        se = math.sqrt(s_new**2 / n_new + s_base**2 / n_base)
        seen = stats.t_ppf(confidence, min(n_new, n_base) - 1) * se
        if enough and not improve and seen > margin * abs(m_base):
            enough = False
            need = (
                f"the samples vary too much to show a {margin * 100:g} % regression "
                f"(it takes {_show(key, seen, False)}): more samples or a wider margin needed"
            )
    else:
        runs = [float(x) for x in reference.get("values") or () if math.isfinite(float(x))]
        k = len(runs)
        if k < MIN_RUNS:
            if not point:
                return Judged(
                    "fail",
                    f"{key} = {shown}, expected {describe_threshold(key, threshold, baseline)}",
                )
            return Judged(
                "inconclusive",
                f"{head}): {k} baseline run{'' if k == 1 else 's'} of {key}, no spread to "
                f"judge one run by: {MIN_RUNS - k} more baseline run"
                f"{'' if MIN_RUNS - k == 1 else 's'} needed",
            )
        p_greater, p_less = stats.prediction_p(value, [x * factor for x in runs])
        p_worse, p_better = (p_greater, p_less) if lower_better else (p_less, p_greater)
        _, run_mean, run_sd = stats.sample_stats(runs)
        samples = (
            f"{k} baseline runs: mean {format_value(key, float(f'{run_mean:.4g}'))}, "
            f"sd {format_value(key, float(f'{run_sd:.3g}'))}"
        )
        enough = True
        need = ""
        seen = stats.t_ppf(confidence, k - 1) * run_sd * math.sqrt(1 + 1 / k)
        if not improve and seen > margin * abs(run_mean):
            enough = False
            need = (
                f"the runs vary too much to show a {margin * 100:g} % regression "
                f"(it takes {_show(key, seen, False)}): more runs or a wider margin needed"
            )
    if improve:
        if not point:
            return Judged(
                "fail", f"{key} = {shown}, expected {describe_threshold(key, threshold, baseline)}"
            )
        if p_better < alpha and enough:
            return Judged("pass", f"{head}, {margin_text} shown: {_p(p_better)}, {samples})")
        tail = f": {need} to show it" if not enough else ""
        return Judged(
            "inconclusive",
            f"{head}, {margin_text} not shown: {_p(p_better)}, {samples}){tail}",
        )
    if tail_why or (p_worse < (alpha / 2 if kind == "percentile" else alpha) and not shift_aside):
        why = tail_why if tail_why and (p_worse >= alpha / 2 or shift_aside) else _p(p_worse)
        return Judged(
            "fail", f"{head}, beyond the {margin_text}: {why}, {samples}), expected {threshold}"
        )
    if not enough:
        return Judged(
            "inconclusive",
            f"{head}, {margin_text}, not significant: {_p(p_worse)}, {samples}): "
            f"{need}{'' if need.endswith('wider margin needed') else ' to show no regression'}",
        )
    return Judged("pass", f"{head}, {margin_text}, within noise: {_p(p_worse)}, {samples})")
