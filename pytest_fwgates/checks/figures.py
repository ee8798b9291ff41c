"""Names of the operations figures a value can be reported as (``as: availability_pct``).

The catalog's standards are written against these names, so a prometheus or metric check
that reports its value under one of them is held to the criterion's standard.
"""

from __future__ import annotations

__all__ = ["FIGURES", "as_schema"]

FIGURES: tuple[str, ...] = (
    "availability_pct",
    "error_pct",
    "error_ratio",
    "mttr_s",
    "mttd_s",
    "accuracy_pct",
    "precision_pct",
    "recall_pct",
    "reduction_pct",
    "cost_reduction_pct",
    "prevented_pct",
    "auto_response_pct",
    "forecast_error_pct",
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
