"""pytest-fwgates: quality gates as pytest runs, decided fail-closed."""

from __future__ import annotations

from .checks import Check, CheckContext, CheckError, Measurement
from .model import (
    CheckResult,
    CheckSpec,
    Criterion,
    CriterionVerdict,
    Gate,
    GateDecision,
    GateVerdict,
    Outcome,
)

__version__ = "0.1.0"

__all__ = [
    "Check",
    "CheckContext",
    "CheckError",
    "CheckResult",
    "CheckSpec",
    "Criterion",
    "CriterionVerdict",
    "Gate",
    "GateDecision",
    "GateVerdict",
    "Measurement",
    "Outcome",
    "__version__",
]
