"""The ``load_test`` fixture: a ``load`` check from a marked Python test.

Light at import (pytest and typing only): the check code is reached through ``gate_check``
when the test calls it, and Locust itself only ever runs as a process of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["load_test"]


@pytest.fixture
def load_test(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Run Locust against ``host`` with the same code as a YAML ``load`` check.

    ``load_test("http://127.0.0.1:8080", paths={"/items": 3}, users=20, duration="5s",
    expect={"p95_ms": "< 300ms"})`` returns the :class:`~pytest_fwgates.model.CheckResult`
    (figures in ``result.measured``, Locust's files in ``result.evidence``). A threshold that
    fails fails the test; a Locust that cannot run is an error of the test. The figures count
    for the criterion of the test's ``@pytest.mark.gate``.
    """
    check: Callable[..., Any] = request.getfixturevalue("gate_check")

    def run(host: str, **settings: Any) -> Any:
        __tracebackhide__ = True
        return check("load", host, **settings)

    return run
