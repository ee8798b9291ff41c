"""Names of the operations figures a value can be reported as (``as: availability_pct``).

The catalog's standards are written against these names, so a prometheus or metric check
that reports its value under one of them is held to the criterion's standard.
"""

from __future__ import annotations

import math
import re

from ..bounds import format_span
from ..owners import OPERATIONS_FIGURES

__all__ = ["FIGURES", "SpanError", "as_schema", "format_span", "parse_span"]

_SPAN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
#: the longest span a window may have (a year and a bit)
MAX_SPAN = 400 * 86400.0


class SpanError(ValueError):
    """A time span that does not parse or is out of range."""


def parse_span(value: object) -> float:
    """A measurement window in seconds: ``30``, ``"90s"``, ``"5m"``, ``"24h"``, ``"30d"``,
    ``"2w"`` (at most 400 days)."""
    if isinstance(value, bool):
        raise SpanError(f"not a time span: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _SPAN.match(value)):
        seconds = float(match.group(1)) * _SECONDS[match.group(2) or "s"]
    else:
        raise SpanError(f"not a time span: {value!r} (expected e.g. 90s, 5m, 24h, 30d)")
    if not math.isfinite(seconds):
        raise SpanError(f"not a finite time span: {value!r}")
    if seconds <= 0:
        raise SpanError(f"must be more than 0, got {value!r}")
    if seconds > MAX_SPAN:
        raise SpanError(f"must be at most 400d, got {value!r}")
    return seconds


FIGURES: tuple[str, ...] = (
    *OPERATIONS_FIGURES,
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "latency_ms",
    "rps",
)


def as_schema() -> dict[str, object]:
    return {
        "enum": list(FIGURES),
        "description": "also report the value under this name (held to the criterion's standard)",
    }
