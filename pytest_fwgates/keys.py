"""Stash keys shared by the hooks, the fixtures and the engine.

Kept apart so that ``plugin.py`` and the fixtures can use them without importing the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .baselines_run import BaselineRecorder
    from .model import CheckResult
    from .run import GateRun

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "finished_key",
    "measured_by_key",
    "measures_key",
    "record_problems_key",
    "recorder_key",
    "result_key",
    "run_key",
    "support_key",
]

#: values a marked Python test recorded with ``gate_record``
measures_key: pytest.StashKey[dict[str, float]] = pytest.StashKey()
#: what those values were measured from (counts, samples; see bounds.py), by value name
support_key: pytest.StashKey[dict[str, dict[str, Any]]] = pytest.StashKey()
#: figure -> check type, for values a check measured for a marked test (gate_check, ...)
measured_by_key: pytest.StashKey[dict[str, str]] = pytest.StashKey()
#: why values a marked test recorded do not count (a missed standard, an owned figure, ...)
record_problems_key: pytest.StashKey[list[str]] = pytest.StashKey()
#: set once the item's last report is made: a value recorded later comes too late
finished_key: pytest.StashKey[bool] = pytest.StashKey()
#: the gate run of a session started with ``--gate``
run_key: pytest.StashKey[GateRun] = pytest.StashKey()
#: the CheckResult of a YAML check item
result_key: pytest.StashKey[CheckResult] = pytest.StashKey()
#: the baseline store of a gate run
recorder_key: pytest.StashKey[BaselineRecorder] = pytest.StashKey()

#: seconds a host may take to connect unless --gate-connect-timeout says otherwise
DEFAULT_CONNECT_TIMEOUT = 10.0
