"""The threshold grammar: ``< 300ms``, ``>= 99.9%``, ``== 0``, ``<= +10%``.

A threshold is an operator and a number with an optional unit. It is parsed with a
regular expression and compared with plain arithmetic: it is never evaluated as code.

A relative threshold (a signed number with ``%``, e.g. ``<= +10%``) compares a measured
value with the stored baseline: ``measured <= baseline * 1.10``.

Measured values carry their unit in their name: ``p95_ms`` is in milliseconds,
``duration_s`` in seconds, ``failure_ratio`` a fraction, ``availability_pct`` a percentage.
A threshold with a unit is converted into the unit of the value it is held against.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "OPERATORS",
    "Threshold",
    "ThresholdError",
    "domain",
    "key_unit",
    "loosens",
    "parse",
    "vacuous",
]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

#: seconds per time unit
TIME_UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
UNITS = (*TIME_UNITS, "%")

_GRAMMAR = re.compile(
    r"""^\s*
    (?P<op><=|>=|==|!=|<|>)?\s*
    (?P<sign>[+-])?
    (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    \s*(?P<unit>ms|s|m|h|%)?
    \s*$""",
    re.VERBOSE,
)

_MAX_LEN = 64


class ThresholdError(ValueError):
    """A threshold string that does not follow the grammar, or a unit that does not fit."""


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold: ``op`` ``value`` ``unit``; ``relative`` for baseline comparisons."""

    op: str
    value: float
    unit: str | None = None
    relative: bool = False

    def __str__(self) -> str:
        return _threshold_text(self)

    def limit(self, key: str, baseline: float | None = None) -> float | None:
        """The bound in the unit of ``key``; ``None`` for a relative bound without baseline."""
        if self.relative:
            if baseline is None or not math.isfinite(baseline):
                return None
            return float(_exact(baseline) * (1 + _exact(self.value) / 100))
        return convert(self.value, self.unit, key_unit(key))

    def holds(self, key: str, measured: float, baseline: float | None = None) -> bool | None:
        """Whether ``measured`` (in the unit of ``key``) meets the threshold.

        ``None`` when it cannot be decided: a relative threshold with no baseline,
        or a measured value that is not a number (NaN).
        """
        bound = self.limit(key, baseline)
        measured = number(measured)
        if bound is None or math.isnan(measured):
            return None
        return OPERATORS[self.op](measured, bound)

    def same_bound(self, key: str, other: Threshold) -> bool:
        """Whether ``other`` states the same bound for ``key`` (``< 2m`` and ``< 120s``)."""
        if self.op != other.op or self.relative != other.relative:
            return False
        if self.relative:
            return self.value == other.value
        try:
            return self.limit(key) == other.limit(key)
        except ThresholdError:
            return self == other

    def check_key(self, key: str) -> None:
        """Raise :class:`ThresholdError` when the unit cannot apply to ``key``, or when the
        bound cannot fail (or cannot pass) for any value ``key`` can take."""
        if not self.relative:
            bound = convert(self.value, self.unit, key_unit(key))
            if not math.isfinite(bound):
                # 1e308h is beyond every float: "< 1e308h" holds for any value at all
                raise ThresholdError(f"'{self}' is not a finite bound for {key}")
        problem = vacuous(self, key)
        if problem:
            raise ThresholdError(problem)


def loosens(key: str, standard: Threshold, override: Threshold) -> bool:
    """Whether ``override`` lets a value of ``key`` pass that ``standard`` fails.

    Each threshold accepts a set of values (``< 5m``: every value below 300 s); an override
    that accepts only values the standard accepts too tightens it, anything else (a higher
    upper bound, another direction, ``!=`` for ``<``, absolute for relative) loosens it.
    Bounds are compared in the unit of ``key``; relative bounds by their percentage.
    """
    if standard.relative != override.relative:
        return True
    if standard.relative:
        # the baseline is the same for both: bound = baseline * (1 + pct / 100)
        low, high = standard.value, override.value
    else:
        try:
            low, high = standard.limit(key) or 0.0, override.limit(key) or 0.0
        except ThresholdError:
            if standard.unit != override.unit:
                return True
            low, high = standard.value, override.value
    return not _subset(override.op, high, standard.op, low)


def _subset(op: str, bound: float, std_op: str, std_bound: float) -> bool:
    """Whether every x with ``x op bound`` also has ``x std_op std_bound`` (x real)."""
    if op == "==":
        return OPERATORS[std_op](bound, std_bound)
    if op == "!=":
        # everything but one point: only inside '!=' of that same point
        return std_op == "!=" and bound == std_bound
    if std_op == "!=":
        # a half-line misses std_bound unless std_bound lies outside it
        return not OPERATORS[op](std_bound, bound)
    upper = op in ("<", "<=")
    if std_op == "==" or upper != (std_op in ("<", "<=")):
        return False
    if upper:
        # x < b (or x <= b) inside x < s: b <= s, except x <= s inside x < s needs b < s
        return bound < std_bound or (bound == std_bound and not (op == "<=" and std_op == "<"))
    return bound > std_bound or (bound == std_bound and not (op == ">=" and std_op == ">"))


def parse(text: object) -> Threshold:
    """Parse a threshold. A bare number (``0``, ``"5"``) means ``== number``.

    Raises :class:`ThresholdError` with a one-line message for anything else.
    """
    if isinstance(text, bool):
        raise ThresholdError(f"not a threshold: {text!r} (expected e.g. '< 300ms' or '>= 99.9%')")
    if isinstance(text, int | float):
        number = _finite(text)
        if number is None:
            raise ThresholdError(f"not a finite number: {_shown(text)}")
        return Threshold("==", number)
    if not isinstance(text, str):
        raise ThresholdError(
            f"not a threshold: {type(text).__name__} (expected e.g. '< 300ms' or '>= 99.9%')"
        )
    if len(text) > _MAX_LEN:
        raise ThresholdError(f"threshold longer than {_MAX_LEN} characters")
    match = _GRAMMAR.match(text)
    if match is None:
        shown = text if text.isprintable() else repr(text)
        raise ThresholdError(
            f"bad threshold {shown!r}: expected an operator (< <= > >= == !=) and a number "
            "with an optional unit (ms s m h %), e.g. '< 300ms', '>= 99.9%', '<= +10%'"
        )
    op = match["op"] or "=="
    value = float(match["num"])
    if not math.isfinite(value):
        raise ThresholdError(f"bad threshold {text!r}: number out of range")
    unit = match["unit"]
    sign = match["sign"]
    relative = False
    if sign == "-" and unit is None:
        # a plain negative number ('== -1', '> -40'): an absolute bound
        return Threshold(op, -value)
    if sign is not None:
        if unit != "%":
            raise ThresholdError(
                f"bad threshold {text!r}: a signed number is relative to the baseline "
                "and needs '%', e.g. '<= +10%'"
            )
        relative = True
        if sign == "-":
            value = -value
    return Threshold(op, value, unit, relative)


def _threshold_text(threshold: Threshold) -> str:
    # thresholds are few and immutable, and their text is asked for every result
    text = _TEXTS.get(threshold)
    if text is None:
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        text = _TEXTS[threshold] = format_threshold(threshold)
    return text


_TEXTS: dict[Threshold, str] = {}


def format_threshold(threshold: Threshold) -> str:
    """The canonical text of a threshold; ``parse(format_threshold(t)) == t``."""
    number = repr(abs(threshold.value) if threshold.relative else threshold.value)
    if number.endswith(".0"):
        number = number[:-2]
    if threshold.relative:
        number = ("-" if threshold.value < 0 else "+") + number
    return f"{threshold.op} {number}{threshold.unit or ''}"


#: the measured value a check records beside ``key`` when a relative threshold used a baseline
BASELINE_PREFIX = "baseline_"
_RELATIVE_TEXT = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*[+-]")


def describe_threshold(key: str, threshold: Threshold | str, baseline: float | None) -> str:
    """A threshold as a reader needs it: a relative one with the baseline it was held to and
    the bound that made (``<= +25% of baseline 100 ms (<= 125 ms)``); others as written."""
    text = str(threshold)
    if baseline is None or not _RELATIVE_TEXT.match(text):
        return text
    if isinstance(threshold, str):
        try:
            threshold = parse(threshold)
        except ThresholdError:
            return text
    bound = threshold.limit(key, baseline)
    if bound is None:
        return text
    return (
        f"{text} of baseline {format_value(key, baseline)} "
        f"({threshold.op} {format_value(key, bound)})"
    )


#: figures that count things: whole numbers, never negative, whatever their name says
COUNTS = frozenset(
    {
        "mismatches", "unexpected", "readable_keys", "count", "size", "entries",
        "tests", "passed", "failures", "errors", "skipped", "files", "flaky",
        "requests", "outages", "failed_probes", "probes", "lost_writes", "writes_acknowledged",
        "findings", "findings_blocking", "unaudited", "scanned", "critical", "high", "medium",
        "low", "unknown", "targets_up", "targets_down", "targets_total", "rules_loaded",
        "rules_missing", "alerts_firing", "alerts_pending", "series", "incidents", "records",
        "missing_deliverables", "tries", "load_requests_before", "load_requests_during",
        "load_requests_after", "load_failures_before", "load_failures_during",
        "load_failures_after",
    }
)  # fmt: skip
_NO_DOMAIN_PCT = ("change", "growth", "delta", "increase", "diff")


def domain(key: str) -> tuple[float, float] | None:
    """The values a figure can take, by its name: a ratio in [0, 1], a percentage in
    [0, 100] (a reduction can be negative, a forecast error above 100), a duration or a
    count >= 0; None when the name does not tell."""
    name = key.rsplit("::", 1)[-1]
    if name in COUNTS:
        return (0.0, math.inf)
    unit = key_unit(name)
    if unit == "ratio":
        return (0.0, 1.0)
    if unit == "%":
        if any(word in name for word in _NO_DOMAIN_PCT):
            return None
        if "reduction" in name:
            return (-math.inf, 100.0)
        if "error" in name and name != "error_pct":
            return (0.0, math.inf)  # a forecast's error can exceed 100 %
        return (0.0, 100.0)
    if unit in TIME_UNITS:
        return (0.0, math.inf)
    return None


def vacuous(threshold: Threshold, key: str) -> str | None:
    """Why ``threshold`` cannot tell anything about ``key``: it holds for every value the
    figure can take (or for all but its upper end: ``failure_ratio < 1`` fails only when
    every request failed), or for none. None when it can both pass and fail."""
    span = domain(key)
    if span is None:
        return None
    low, high = span
    if threshold.relative:
        return _vacuous_relative(threshold, key, low)
    bound = threshold.limit(key)
    if bound is None:
        return None
    op = threshold.op
    if key.rsplit("::", 1)[-1] in COUNTS and op in ("==", "!=") and not bound.is_integer():
        # a count is a whole number: "!= 0.5" holds for all of them, "== 2.5" for none
        verdict = "can never pass" if op == "==" else "can never fail"
        return f"'{threshold}' {verdict}: {_domain_words(key, low, high)}, a whole number"
    never_fails = {
        "<": high < bound,
        "<=": high <= bound,
        ">": low > bound,
        ">=": low >= bound,
        "==": False,
        "!=": bound < low or bound > high,
    }[op]
    # fails at one end of a bounded range only: "failure_ratio < 1" (every request failed),
    # its mirror "pass_ratio > 0" (nothing passed), "!= 1", "!= 0%"
    bounded = math.isfinite(low) and math.isfinite(high)
    edge: float | None = None
    if op == "<" and math.isfinite(high) and bound == high:
        edge = high
    elif bounded and op == ">" and bound == low:
        edge = low
    elif bounded and op == "!=" and bound in (low, high):
        edge = bound
    edge_only = edge is not None
    never_passes = {
        "<": bound <= low,
        "<=": bound < low,
        ">": bound >= high,
        ">=": bound > high,
        "==": bound < low or bound > high,
        "!=": False,
    }[op]
    if not (never_fails or edge_only or never_passes):
        if (
            op in (">", ">=")
            and threshold.unit is None
            and key_unit(key.rsplit("::", 1)[-1]) == "%"
            and (low, high) == (0.0, 100.0)
            and 0 < bound <= 1
        ):
            # a fraction meant as a percentage: ">= 0.999" is 0.999 %, which 99 of 100 pass
            number = format_threshold(Threshold(op, threshold.value * 100)).split(" ", 1)[1]
            name = key.rsplit("::", 1)[-1]
            return (
                f"'{threshold}' is {bound:g} % for {name}, a percentage: did you mean "
                f"'{op} {number}%'? (write '{op} {threshold.value:g}%' for {bound:g} %)"
            )
        return None
    what = _domain_words(key, low, high)
    if never_passes:
        verdict = "can never pass"
    elif edge_only:
        verdict = f"can fail only at {edge:g}, an end of its range"
    else:
        verdict = "can never fail"
    hint = ""
    if key_unit(key.rsplit("::", 1)[-1]) == "ratio" and threshold.unit is None and bound >= 1:
        number = format_threshold(Threshold(op, threshold.value)).split(" ", 1)[1]
        hint = f"; did you mean '{op} {number}%'?"
    return f"'{threshold}' {verdict}: {what}{hint}"


def _vacuous_relative(threshold: Threshold, key: str, low: float) -> str | None:
    """A relative bound is ``baseline * factor``; on a figure that is never negative (and so
    neither is its baseline), a factor below zero (``-150%``) puts the bound below every
    value, and a factor of zero with ``>=`` at zero: they cannot fail, or cannot pass."""
    if low < 0:
        return None
    factor = 1 + threshold.value / 100
    op = threshold.op
    if (op == ">=" and factor <= 0) or (op in (">", "!=") and factor < 0):
        verdict = "can never fail"
    elif (op == "<" and factor <= 0) or (op in ("<=", "==") and factor < 0):
        verdict = "can never pass"
    else:
        return None
    return f"'{threshold}' {verdict}: it is {factor:g} x the baseline, and {key} is never negative"


def _domain_words(key: str, low: float, high: float) -> str:
    name = key.rsplit("::", 1)[-1]
    if key_unit(name) == "ratio":
        return f"{name} is a ratio in [0, 1]"
    if key_unit(name) == "%":
        if math.isinf(low):
            return f"{name} is a percentage of at most 100"
        if math.isinf(high):
            return f"{name} is a percentage >= 0"
        return f"{name} is a percentage in [0, 100]"
    if name in COUNTS:
        return f"{name} is a count (>= 0)"
    return f"{name} is a duration (>= 0)"


def key_unit(key: str) -> str | None:
    """The unit a measured value's name implies: ``p95_ms`` -> ``ms``; ``None`` if none."""
    suffix = key.rsplit("_", 1)[-1] if "_" in key else ""
    if suffix in TIME_UNITS:
        return suffix
    if suffix in ("pct", "percent"):
        return "%"
    if suffix in ("ratio", "fraction"):
        return "ratio"
    return None


@functools.lru_cache(maxsize=4096)  # pure; a report holds thousands of values to few bounds
def convert(value: float, unit: str | None, target: str | None) -> float:
    """Convert ``value`` from ``unit`` into ``target``; raise if they do not fit."""
    if unit is None or unit == target:
        return value
    # in decimal, so that 99.9 % is exactly the ratio 0.999 and 300 ms exactly 0.3 s
    if unit in TIME_UNITS and target in TIME_UNITS:
        return float(_exact(value) * _exact(TIME_UNITS[unit]) / _exact(TIME_UNITS[target]))
    if unit == "%" and target == "ratio":
        return float(_exact(value) / 100)
    if unit == "%" and target is None:
        # a value named without a unit, held to a percentage: taken as a percentage
        return value
    if unit in TIME_UNITS and target is None:
        raise ThresholdError(
            f"a time threshold needs a value whose name ends in _ms, _s, _m or _h, not a "
            f"unitless one (got '{unit}')"
        )
    raise ThresholdError(f"unit '{unit}' does not apply to a value measured in '{target}'")


def _exact(number: float) -> Decimal:
    """The decimal a float was written as (``0.1`` -> ``Decimal('0.1')``)."""
    return Decimal(repr(float(number)))


def format_value(key: str, value: float) -> str:
    """A measured value with the unit its name implies: ``412 ms``, ``99.95 %``."""
    unit = key_unit(key)
    value = number(value)
    if value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = f"{value:.6g}"
    if unit in (None, "ratio"):
        return text
    return f"{text} {unit}"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: object) -> float:
    """A time span in seconds: ``30``, ``1.5``, ``"90s"``, ``"2m"``, ``"500ms"``."""
    if isinstance(value, bool):
        raise ThresholdError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        number = _finite(value)
        seconds = math.inf if number is None else number
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * TIME_UNITS[match.group(2) or "s"]
    else:
        raise ThresholdError(f"not a duration: {value!r} (expected e.g. 30, '90s', '2m')")
    if not math.isfinite(seconds):
        raise ThresholdError(f"not a finite duration: {_shown(value)}")
    if seconds <= 0:
        raise ThresholdError(f"must be more than 0, got {_shown(value)}")
    if seconds > 86400:
        raise ThresholdError(f"must be at most 24h, got {_shown(value)}")
    return seconds


def number(value: object) -> float:
    """A measured value as a float, whatever number it is: an int too large for a float is an
    infinity of its sign, a bool 0 or 1, and anything that is no number NaN (never decided)."""
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _finite(value: object) -> float | None:
    """``value`` as a finite float, ``None`` for NaN, infinities and ints too large."""
    result = number(value)
    return result if math.isfinite(result) else None


def _shown(value: object) -> str:
    """A short repr: a huge int is not printed digit by digit."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a number too large"
    return repr(value)
