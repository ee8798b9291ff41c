"""A threshold judged on what the evidence behind a figure can prove.

A figure may carry its *support* (what it was measured from), a JSON-able mapping kept with
the result:

- ``{"count": [k, n], "of": "probes", "event": "good"}``: a share of counted events
  (``availability_pct`` = 100 k / n). ``>=``/``>`` are judged on the one-sided
  Clopper-Pearson lower bound, ``<``/``<=`` on the upper bound.
- ``{"quantile": {"q": 0.95, "n": n, "low": L, "high": H, "confidence": c}}``: a percentile
  with its distribution-free order-statistic bounds (``None`` where the sample is too small).
- ``{"mean": {"n": n, "sd": s}}``: a mean of ``n`` samples, judged on its Student-t bound.
- ``{"coverage": {"share": f, "window_s": w, "samples": m}}``: a figure over a window whose
  samples cover only the share ``f`` of it; under :data:`MIN_COVERAGE` it cannot pass.

A figure whose point estimate meets the threshold while its bound does not is
INCONCLUSIVE, with the evidence still missing named; a point estimate that misses it is a
failure as before. A share of counted events (:data:`COUNTED`) with no counts behind it is
inconclusive too: there is nothing to bound it with; so is a percentile (``pNN_...``) with no
samples behind it.
"""

from __future__ import annotations

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
    "MIN_COMPARED",
    "MIN_COVERAGE",
    "Judged",
    "count_support",
    "coverage_support",
    "histogram_of",
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
    }
)

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
    if not (math.isfinite(number) and 0.5 <= number < 1):
        raise ValueError(f"confidence level out of range (50% to below 100%): {value!r}")
    return number


def counted(key: str) -> bool:
    """Whether ``key`` (``"GET /a::failure_ratio"`` too) is a share of counted events."""
    return key.rsplit("::", 1)[-1] in COUNTED


def needs_bound(key: str, support: Mapping[str, Any]) -> bool:
    """Whether a threshold on ``key`` is judged on more than its value: it has support, or
    is a share of counted events or a percentile (which cannot pass without support)."""
    if key in support:
        return True
    name = key.rsplit("::", 1)[-1]
    return name in COUNTED or (name[:1] == "p" and percentile_of(name) is not None)


def count_support(events: int, total: int, of: str, event: str) -> dict[str, Any]:
    return {"count": [int(events), int(total)], "of": of, "event": event}


def coverage_support(covered_s: float, window_s: float, samples: int) -> dict[str, Any]:
    share = max(0.0, min(1.0, covered_s / window_s)) if window_s > 0 else 0.0
    return {"coverage": {"share": round(share, 6), "window_s": window_s, "samples": samples}}


def mean_support(values: Sequence[float]) -> dict[str, Any]:
    n, _mean, sd = stats.sample_stats(values)
    return {"mean": {"n": n, "sd": sd if math.isfinite(sd) else None}}


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
    return f"{confidence * 100:g} %"


def _rounded(value: float, down: bool) -> float:
    """``value`` to 4 significant digits, rounded the way that claims less."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = 3 - math.floor(math.log10(abs(value)))
    scale = 10.0**digits
    return (math.floor if down else math.ceil)(value * scale - 1e-9 * (1 if down else -1)) / scale


def _show(key: str, value: float, down: bool) -> str:
    return format_value(key, _rounded(value, down))


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
    if reference is not None and baseline is not None and threshold.relative:
        compared = judge_against_baseline(
            key, threshold, value, support, reference, baseline, confidence
        )
        if compared is not None:
            return compared
    holds = threshold.holds(key, value, baseline)
    shown = format_value(key, value)
    if holds is None:
        return Judged("undecided", f"{key} = {shown}: {threshold} needs a baseline")
    if not holds:
        return Judged(
            "fail", f"{key} = {shown}, expected {describe_threshold(key, threshold, baseline)}"
        )
    support = support or {}
    coverage = support.get("coverage")
    if isinstance(coverage, Mapping) and float(coverage.get("share", 0.0)) < min_coverage:
        window = float(coverage.get("window_s") or 0.0)
        return Judged(
            "inconclusive",
            f"{key} = {shown}: {int(coverage.get('samples') or 0)} samples cover "
            f"{float(coverage.get('share', 0.0)) * 100:.3g} % of the "
            f"{format_span(window) if window > 0 else ''} window; "
            f"{min_coverage * 100:g} % needed",
        )
    if threshold.op not in _ONE_SIDED or threshold.relative:
        return Judged("pass")
    lower = threshold.op in (">", ">=")
    if "count" in support:
        # judged once, with the check; the verdict and the reports read it back
        memo = support.get("judged")
        fresh = {"threshold": str(threshold), "confidence": confidence}
        if isinstance(memo, Mapping) and all(memo.get(k) == v for k, v in fresh.items()):
            return Judged(str(memo.get("state")), str(memo.get("text") or ""))
        judged = _judge_count(key, threshold, support, confidence, lower)
        if isinstance(support, dict):
            support["judged"] = {**fresh, "state": judged.state, "text": judged.text}
        return judged
    if isinstance(support.get("quantile"), Mapping):
        return _judge_quantile(key, threshold, value, support["quantile"], lower)
    if isinstance(support.get("mean"), Mapping):
        return _judge_mean(key, threshold, value, support["mean"], confidence, lower)
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
    said = f"{what}: {side} {_show(key, bound, lower)} at {_pct(confidence)} confidence"
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
    key: str, threshold: Threshold, value: float, quantile: Mapping[str, Any], lower: bool
) -> Judged:
    q = float(quantile.get("q") or 0.5)
    n = int(quantile.get("n") or 0)
    confidence = float(quantile.get("confidence") or DEFAULT_CONFIDENCE)
    bound = quantile.get("low" if lower else "high")
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
    low, high = stats.mean_bounds(n, value, float(sd) if sd is not None else math.nan, confidence)
    bound = low if lower else high
    if not math.isfinite(bound):
        return Judged(
            "inconclusive",
            f"{key} = {format_value(key, value)} is the mean of {n} sample"
            f"{'' if n == 1 else 's'}: no bound at {_pct(confidence)} confidence; "
            "2 or more needed",
        )
    said = (
        f"{key} mean of {n}: {'>=' if lower else '<='} {_show(key, bound, lower)} "
        f"at {_pct(confidence)} confidence"
    )
    if threshold.holds(key, bound):
        return Judged("pass", said)
    return Judged(
        "inconclusive", f"{key} = {format_value(key, value)}, but {said}; more samples needed"
    )


_PERCENTILE = re.compile(r"(?:^|::)p(\d{1,2}(?:\.\d+)?)_")


def percentile_of(key: str) -> float | None:
    """The quantile a percentile figure names (``p95_ms`` -> 0.95), or None."""
    match = _PERCENTILE.search(key)
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


def margin_of(threshold: Threshold) -> float:
    """The practical margin of a relative ``<``/``<=`` threshold (a fraction)."""
    return max(float(threshold.value) / 100, DEFAULT_MARGIN)


def _change(value: float, baseline: float) -> str:
    if baseline <= 0:
        return "new" if value > 0 else "+0 %"
    return f"{(value / baseline - 1) * 100:+.0f} %"


def _p(p: float) -> str:
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def judge_against_baseline(
    key: str,
    threshold: Threshold,
    value: float,
    support: Mapping[str, Any] | None,
    reference: Mapping[str, Any],
    baseline: float,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Judged | None:
    """A relative ``<``/``<=`` threshold on a percentile or a counted figure, decided by a
    one-sided test against the stored baseline with a practical margin (None: judged on the
    value, as other relative thresholds are).

    Percentiles: the new samples against the baseline's scaled by ``1 + margin``, by
    Mann-Whitney U (a shift of the whole distribution) and by order-statistic bounds of the
    percentile itself (a regression of the tail alone), each at half the error rate. Counted
    figures: Fisher's exact test of the new failures against the baseline's scaled by
    ``1 + margin``. A significant regression FAILS; no significant regression PASSES only
    with at least :data:`MIN_COMPARED` samples each side, else INCONCLUSIVE."""
    if threshold.op not in ("<", "<=") or threshold.value < 0:
        return None
    q = percentile_of(key)
    if q is None and not counted(key):
        return None
    support = support or {}
    margin = margin_of(threshold)
    alpha = 1 - confidence
    shown, base_shown = format_value(key, value), format_value(key, baseline)
    head = f"{key} {shown} vs baseline {base_shown} ({_change(value, baseline)}"
    margin_text = f"margin {margin * 100:g} %"
    if q is not None:
        new, base = histogram_of(support.get("histogram")), histogram_of(reference.get("histogram"))
        if not base:
            return Judged(
                "inconclusive",
                f"{head}): the baseline holds no latency distribution to compare with "
                "(saved before distributions were stored): save a new baseline",
            )
        if not new:
            return Judged("inconclusive", f"{head}): no samples behind {key} to compare")
        scaled = {v * (1 + margin): c for v, c in base.items()}
        n_new, n_base = sum(new.values()), sum(base.values())
        p = stats.mann_whitney(new, scaled).p_greater
        low_new, _ = stats.quantile_bounds(new, q, 1 - alpha / 2)
        _, high_base = stats.quantile_bounds(scaled, q, 1 - alpha / 2)
        tail = math.isfinite(low_new) and math.isfinite(high_base) and low_new > high_base
        samples = f"{n_new} vs {n_base} samples"
        if p < alpha / 2 or tail:
            why = _p(p) if p < alpha / 2 else f"p{q * 100:g} >= {format_value(key, low_new)}"
            return Judged(
                "fail", f"{head}, beyond the {margin_text}: {why}, {samples}), expected {threshold}"
            )
    else:
        new_count, base_count = support.get("count"), reference.get("count")
        if not isinstance(base_count, list | tuple) or len(base_count) != 2:
            return Judged(
                "inconclusive",
                f"{head}): the baseline holds no counts to compare with "
                "(saved before counts were stored): save a new baseline",
            )
        if not isinstance(new_count, list | tuple) or len(new_count) != 2:
            return Judged("inconclusive", f"{head}): no counts behind {key} to compare")
        bad_new, n_new = (int(x) for x in new_count)
        bad_base, n_base = (int(x) for x in base_count)
        if n_new <= 0 or n_base <= 0:
            return Judged("inconclusive", f"{head}): nothing counted to compare")
        scaled_bad = min(n_base, math.ceil(bad_base * (1 + margin)))
        p = stats.fisher_greater(bad_new, n_new, scaled_bad, n_base)
        samples = f"{bad_new}/{n_new} vs {bad_base}/{n_base}"
        if p < alpha:
            return Judged(
                "fail",
                f"{head}, beyond the {margin_text}: {_p(p)}, {samples}), expected {threshold}",
            )
    if min(n_new, n_base) < MIN_COMPARED:
        return Judged(
            "inconclusive",
            f"{head}, {margin_text}, not significant: {_p(p)}, {samples}): "
            f"{MIN_COMPARED} samples each side needed to show no regression",
        )
    return Judged("pass", f"{head}, {margin_text}, within noise: {_p(p)}, {samples})")
