"""Shared helpers for the pytester tests of gate runs."""

from __future__ import annotations

import http.server
import json
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# pytester takes sys.modules back after each in-process run, and cryptography's compiled core
# cannot be loaded twice in one process (a second ``ec`` module's curves are refused with
# "curve must be an EllipticCurve instance"): its modules are imported once, here, before
# any test takes a snapshot. requests too: a test that imports it in-process (fwgates init)
# would leave the plugin's module-level references to a requests whose http.cookiejar is gone.
import cryptography.hazmat.primitives.asymmetric.ec
import cryptography.x509  # noqa: F401  (imported for its side: loaded once)
import pytest
import requests  # noqa: F401  (imported for its side: loaded once)

# the same for numpy's compiled core, under the scipy distributions the verdict bounds use
import scipy.stats  # noqa: F401  (imported for its side: loaded once)
from loopback import http_server

#: plugins a gate run does not need; hypothesis' would be imported again by every in-process run
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

#: production-readiness with one passing check in each criterion (a host check where the
#: catalog demands a host fact; rollback-capability needs a measured recovery_s: a rollback
#: check against the tests' health server)
PRODUCTION_READY = """
    gate: production-readiness
    criteria:
      infrastructure-validation:
        - file: /
          expect: {type: directory}
      security-compliance:
        - file: /etc
          expect: {type: directory}
      performance-verification:
        - command: "true"
      monitoring-operational:
        - command: "true"
      rollback-capability:
        - rollback: "true"
          health: ${env:FWGATES_TEST_HEALTH}
          stable: 0.1s
"""

#: operations-handoff with a passing check in each criterion of its own (it includes
#: production-readiness, written apart); the stand-in check type measures the owned figures
HANDOFF_READY = """
    gate: operations-handoff
    criteria:
      production-deployment: [{stand_in: {http_status: 200}}]
      monitoring-active: [{command: "true"}]
      security-controls: [{file: /etc}]
      performance-baseline: [{stand_in: {requests: 300}}]
      incident-response: [{stand_in: {alerts_firing: 1}}]
      operations-documentation: [{file: /etc}]
      handoff-deliverables: [{file: /etc}]
"""

#: a check type of the tests' own that reports the figures its target gives and owns them, as
#: a plugin's check type would: outside tests/integration there is no Locust run or
#: Prometheus to measure them, and a Python test cannot record a figure a check type owns
STAND_IN_PLUGIN = """
from typing import Any

from pytest_fwgates.bounds import supported_value
from pytest_fwgates.checks import Check, Measurement

FIGURES = frozenset(
    {"p95_ms", "failure_ratio", "targets_up", "rules_loaded", "mismatches", "success_ratio",
     "lost_writes", "recovery_s", "availability_pct", "duration_s", "version_changed",
     "alerts_firing", "http_status", "requests"}
)


class StandIn(Check):
    type_name = "stand_in"
    target_schema = {"type": "object"}
    threshold_keys = FIGURES
    owns = FIGURES

    @classmethod
    def measures(cls, target: Any, options: dict[str, Any]) -> frozenset[str]:
        return frozenset(target) if isinstance(target, dict) else FIGURES

    def measure(self) -> Measurement:
        # a number, [events, total] for a share from its counts, or {"samples": [...]} for a
        # percentile or mean from its samples
        measurement = Measurement()
        for key, given in self.spec.target.items():
            counts = tuple(given) if isinstance(given, list) else None
            samples = given.get("samples") if isinstance(given, dict) else None
            number = None if counts or samples else float(given)
            value, support = supported_value(key, number, counts, samples)
            measurement.values[key] = value
            if support:
                measurement.support[key] = support
        return measurement


def pytest_fwgates_register_checks(registry):
    registry.register("stand_in", StandIn)
"""

#: the figures performance-verification demands, measured for a marked test
PERFORMANCE_FIGURES = """
import pytest


@pytest.mark.gate("production-readiness", criterion="performance-verification")
def test_performance_figures(gate_check):
    # enough samples for a p95 bound (59)
    gate_check("stand_in", {"p95_ms": {"samples": [120.0] * 100}, "failure_ratio": 0.0})
"""


#: monitoring-operational demands targets_up and rules_loaded, which prometheus checks measure
#: against a real Prometheus (tests/integration); outside it, the stand-in check type does
MONITORING_FIGURES = """
import pytest


@pytest.mark.gate("production-readiness", criterion="monitoring-operational")
@pytest.mark.gate("operations-handoff", criterion="monitoring-active")
def test_monitoring_figures(gate_check):
    gate_check("stand_in", {"targets_up": 1, "rules_loaded": 3})
"""


class GateProject:
    """A pytester project with gate files, run in-process unless asked otherwise."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        self.plugins: list[str] = []

    def stand_in(self) -> None:
        """The ``stand_in`` check type (``STAND_IN_PLUGIN``), loaded with ``-p`` by run()."""
        if "fwgates_stand_in" not in self.plugins:
            self.pytester.makepyfile(fwgates_stand_in=STAND_IN_PLUGIN)
            self.pytester.syspathinsert()
            self.plugins.append("fwgates_stand_in")

    def gate(self, name: str, text: str) -> Path:
        """Write ``gates/<name>.yaml`` (dedented)."""
        return self.pytester.makefile(".yaml", **{f"gates/{name}": textwrap.dedent(text)})

    def release_gate(
        self, checks: str, criterion: str = "build", title: str = "The build works"
    ) -> Path:
        """``gates/release.yaml``: gate ``release`` with one criterion (``build``, The build
        works, unless named) whose checks are ``checks`` (YAML list items, dedented); the
        first check stands on line 6."""
        items = textwrap.indent(textwrap.dedent(checks).strip("\n"), "      ")
        head = f"gate: release\ncriteria:\n  {criterion}:\n    title: {title}\n    checks:\n"
        return self.gate("release", f"{head}{items}\n")

    def criterion_gate(self, gate: str, criterion: str, checks: str) -> Path:
        """``gates/<gate>.yaml`` with one criterion of a catalog gate, ``criterion`` (its title
        and standards from the catalog), holding ``checks`` (YAML list items, dedented); the
        first check stands on line 4."""
        items = textwrap.indent(textwrap.dedent(checks).strip("\n"), "    ")
        return self.gate(gate, f"gate: {gate}\ncriteria:\n  {criterion}:\n{items}\n")

    def production_ready(self, extra: str = "") -> Path:
        """production-readiness with a passing check in each criterion (+ ``extra`` ones).

        performance-verification demands p95_ms and failure_ratio measured, and
        monitoring-operational targets_up and rules_loaded: marked Python tests record them
        (``test_performance_figures.py``, ``test_monitoring_figures.py``: two more passing
        tests).
        """
        self.performance_figures()
        self.monitoring_figures()
        return self.gate("production-readiness", PRODUCTION_READY + extra)

    def handoff_ready(self) -> Path:
        """operations-handoff with a passing check in each criterion of its own
        (``HANDOFF_READY``); production-readiness, which it includes, is the caller's."""
        self.stand_in()
        return self.gate("operations-handoff", HANDOFF_READY)

    def performance_figures(self) -> Path:
        """A marked test recording the p95_ms and failure_ratio performance-verification
        demands (the catalog's ``measures:``)."""
        self.stand_in()
        return self.pytester.makepyfile(test_performance_figures=PERFORMANCE_FIGURES)

    def monitoring_figures(self) -> Path:
        """A marked test recording the figures monitoring-operational (production-readiness)
        and monitoring-active (operations-handoff) demand."""
        self.stand_in()
        return self.pytester.makepyfile(test_monitoring_figures=MONITORING_FIGURES)

    def waivers(self, text: str, name: str = "waivers") -> Path:
        return self.pytester.makefile(".yaml", **{name: textwrap.dedent(text)})

    def _plugin_args(self) -> list[str]:
        return [arg for name in self.plugins for arg in ("-p", name)]

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*QUIET_PLUGINS, *self._plugin_args(), *args)

    def run_subprocess(self, *args: str, timeout: float = 120) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(
            *QUIET_PLUGINS, *self._plugin_args(), *args, timeout=timeout
        )

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

    def checks(self, name: str, cid: str) -> dict[str, dict[str, Any]]:
        """Check id -> summary.json entry of each check of criterion ``cid`` of gate ``name``."""
        return {c["check"]: c for c in self.criterion(name, cid)["checks"]}

    def criterion(self, name: str, cid: str) -> dict[str, Any]:
        for item in self.gate_summary(name)["criteria"]:
            if item["id"] == cid:
                return dict(item)
        raise AssertionError(f"criterion {cid} is not in gate {name}")


@contextmanager
def _serve_body(body: bytes, path: str = "/") -> Iterator[str]:
    """A real HTTP server on loopback answering every GET with ``body``; yields the URL
    of ``path`` and stops the server after the block."""
    with http_server(lambda _: (200, body)) as base:
        yield f"{base}{path}"


@pytest.fixture
def serve_body() -> Any:
    """``with serve_body(b"text", "/path") as url:`` a real loopback server answering every GET
    with that body, stopped after the block."""
    return _serve_body


_HEALTH: list[str] = []


def health_url() -> str:
    """A health endpoint answering 200 on loopback (one per test process, a daemon thread)."""
    if not _HEALTH:

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_POST(self) -> None:  # a rollback trigger: /fail refuses
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(500 if self.path == "/fail" else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="test-health", daemon=True).start()
        _HEALTH.append(f"http://127.0.0.1:{server.server_address[1]}/health")
    return _HEALTH[0]


@pytest.fixture(autouse=True)
def _table_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs inside a test lay their verdict table out for 120 columns (the width without a
    terminal), whatever terminal the suite itself runs in; a test about widths sets its own."""
    monkeypatch.setenv("COLUMNS", "120")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> GateProject:
    monkeypatch.setenv("FWGATES_TEST_HEALTH", health_url())
    return GateProject(pytester)
