"""pytest-fwgates: quality gates as pytest runs, decided fail-closed.

The names below are imported on first use, so that the pytest plugin (imported by every
pytest run) costs next to nothing when no gate is asked for.

PYTEST_DONT_REWRITE: this package asserts nothing a test reports (see ``_keep_asserts``).
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


def _keep_asserts() -> None:
    """Leave this package's modules to the ordinary import system under pytest.

    pytest rewrites the ``assert`` statements of every module of a plugin's distribution,
    so that a helper's failing assert reads well in a test report. This package has no such
    helpers: its checks fail through results, and its few asserts only narrow types. Rewriting
    costs a parse and a compile of each module on every run whose bytecode cannot be cached
    (``PYTHONDONTWRITEBYTECODE``, a read-only site-packages): some 50 ms per gate run, the
    largest fixed cost a gate had (docs/architecture.md, "Where the time goes"). pytest marks
    the package before it imports the plugin; this takes the mark back when pytest's import
    hook has the shape known here, and does nothing otherwise.
    """
    import sys

    for finder in sys.meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        if isinstance(marked, set) and __name__ in marked:
            marked.discard(__name__)
            cache = getattr(finder, "_marked_for_rewrite_cache", None)
            if isinstance(cache, dict):
                cache.clear()


_keep_asserts()

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
