"""Shared helpers for the pytester tests of gate runs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

#: plugins a gate run does not need; hypothesis' would be imported again by every in-process run
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

#: production-readiness with one passing command check in each criterion
PRODUCTION_READY = """
    gate: production-readiness
    criteria:
      infrastructure-validation:
        - command: "true"
      security-compliance:
        - command: "echo ok"
          expect: {stdout_contains: ok}
      performance-verification:
        - command: "true"
      monitoring-operational:
        - command: "true"
      rollback-capability:
        - command: "true"
"""

#: the figures performance-verification demands, recorded by a marked test
PERFORMANCE_FIGURES = """
import pytest


@pytest.mark.gate("production-readiness", criterion="performance-verification")
def test_performance_figures(gate_record):
    gate_record("p95_ms", 120.0)
    gate_record("failure_ratio", 0.0)
"""


class GateProject:
    """A pytester project with gate files, run in-process unless asked otherwise."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path

    def gate(self, name: str, text: str) -> Path:
        """Write ``gates/<name>.yaml`` (dedented)."""
        return self.pytester.makefile(".yaml", **{f"gates/{name}": textwrap.dedent(text)})

    def production_ready(self, extra: str = "") -> Path:
        """production-readiness with a passing check in each criterion (+ ``extra`` ones).

        performance-verification demands p95_ms and failure_ratio measured: a marked Python
        test records them (``test_performance_figures.py``, one more passing test).
        """
        self.performance_figures()
        return self.gate("production-readiness", PRODUCTION_READY + extra)

    def performance_figures(self) -> Path:
        """A marked test recording the p95_ms and failure_ratio performance-verification
        demands (the catalog's ``measures:``)."""
        return self.pytester.makepyfile(test_performance_figures=PERFORMANCE_FIGURES)

    def waivers(self, text: str, name: str = "waivers") -> Path:
        return self.pytester.makefile(".yaml", **{name: textwrap.dedent(text)})

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*QUIET_PLUGINS, *args)

    def run_subprocess(self, *args: str, timeout: float = 120) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*QUIET_PLUGINS, *args, timeout=timeout)

    def summary(self, path: str = "reports/summary.json") -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / path).read_text(encoding="utf-8"))
        return data

    def gate_summary(self, name: str, path: str = "reports/summary.json") -> dict[str, Any]:
        for gate in self.summary(path)["gates"]:
            if gate["name"] == name:
                return dict(gate)
        raise AssertionError(f"gate {name} is not in the summary")

    def verdicts(self, path: str = "reports/summary.json") -> dict[str, str]:
        """Gate name -> gate verdict."""
        return {gate["name"]: gate["verdict"] for gate in self.summary(path)["gates"]}

    def criteria(self, name: str, path: str = "reports/summary.json") -> dict[str, str]:
        """Criterion id -> criterion verdict of gate ``name``."""
        return {c["id"]: c["verdict"] for c in self.gate_summary(name, path)["criteria"]}

    def criterion(self, name: str, cid: str) -> dict[str, Any]:
        for item in self.gate_summary(name)["criteria"]:
            if item["id"] == cid:
                return dict(item)
        raise AssertionError(f"criterion {cid} is not in gate {name}")


@pytest.fixture
def project(pytester: pytest.Pytester) -> GateProject:
    return GateProject(pytester)
