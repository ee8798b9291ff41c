"""pytest-fwgates: quality gates as pytest runs, decided fail-closed.

The names below are imported on first use, so that the pytest plugin (imported by every
pytest run) costs next to nothing when no gate is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_LAZY = {
    **dict.fromkeys(("Check", "CheckContext", "CheckError", "Measurement"), ".checks"),
    **dict.fromkeys(
        (
            "CheckResult",
            "CheckSpec",
            "Criterion",
            "CriterionVerdict",
            "Gate",
            "GateDecision",
            "GateVerdict",
            "Outcome",
        ),
        ".model",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
