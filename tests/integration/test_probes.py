"""The availability window, the http_probe fixture, and secrets planted in headers and the
environment that must not reach any output. Against the real example stack."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from examples.stack import Stack

from .quiet import wait_quiet
from .traffic import ROOT

if TYPE_CHECKING:
    from conftest import GateProject

pytestmark = pytest.mark.integration


def test_availability_window_and_a_metric_over_its_timeline(
    project: GateProject, stack_env: Stack
) -> None:
    project.gate(
        "operations-excellence",
        """
        gate: operations-excellence
        criteria:
          system-availability:
            - availability: ${env:FWGATES_APP_URL}/health
              id: health-window
              window: 2s
              interval: 0.1s
              expect: {p95_ms: "< 1000", json: {status: ok}}
            - availability: ${env:FWGATES_APP_URL}/version
              id: wrong-expectation
              window: 0.5s
              interval: 0.1s
              expect: {status: 404}
        """,
    )
    result = project.run("--gate", "operations-excellence")
    result.assert_outcomes(failed=1)
    assert result.parseoutcomes()["inconclusive"] == 1  # health-window, in pytest too
    checks = project.checks("operations-excellence", "system-availability")
    health = checks["health-window"]
    measured = health["measured"]
    # 20 good probes meet > 99.9 % and p95 < 1 s, but prove neither at 95 % confidence
    assert health["outcome"] == "inconclusive"
    assert health["message"].startswith(
        f"availability_pct {measured['probes']:g}/{measured['probes']:g} probes good: >= "
    )
    assert "p95_ms = " in health["message"] and "59 samples needed" in health["message"]
    assert health["support"]["availability_pct"]["count"] == [measured["probes"]] * 2
    assert health["thresholds"] == {"availability_pct": "> 99.9%", "p95_ms": "< 1000"}
    assert measured["availability_pct"] == 100
    assert measured["errors"] == 0
    assert 17 <= measured["probes"] <= 20  # every 100 ms for 2 s, however busy the machine
    assert 0 < measured["p50_ms"] <= measured["p95_ms"] <= measured["p99_ms"] <= measured["max_ms"]
    assert measured["interval"] == "0.1 s"
    wrong = checks["wrong-expectation"]
    assert wrong["outcome"] == "failed"
    assert wrong["message"] == "availability_pct = 0 %, expected > 99.9%"
    assert wrong["measured"]["first_error"] == "200 status 200, expected 404"

    timeline = Path(health["evidence"]["timeline"])
    rows = list(csv.DictReader(timeline.open()))
    assert len(rows) == measured["probes"]
    assert {row["ok"] for row in rows} == {"1"}

    # the probe timeline is a records file: the metric check computes the same figure from it
    project.gate(
        "operations-excellence",
        f"""
        gate: operations-excellence
        criteria:
          system-availability:
            - metric: {timeline}
              compute: availability
        """,
    )
    again_run = project.run("--gate", "operations-excellence")
    assert again_run.parseoutcomes()["inconclusive"] == 1
    [again] = project.criterion("operations-excellence", "system-availability")["checks"]
    assert again["outcome"] == "inconclusive"
    assert again["support"]["availability_pct"]["count"] == [measured["probes"]] * 2
    assert again["measured"]["availability_pct"] == 100
    assert again["measured"]["records"] == measured["probes"]


PROBE_TESTS = """
import pytest


@pytest.mark.gate("production-readiness", criterion="security-compliance")
def test_no_debug_endpoint(http_probe):
    assert http_probe.get("/debug").status_code == 404
    result = http_probe.check(
        "/health", expect={"status": 200, "json": {"status": "ok"}, "latency_ms": "< 2s"}
    )
    assert result.measured["tries"] == 1


@pytest.mark.gate("production-readiness", criterion="security-compliance")
def test_expected_a_maintenance_page(http_probe):
    http_probe.check("/health", expect={"status": 503})
"""


def test_http_probe_fixture_runs_the_http_check(project: GateProject, stack_env: Stack) -> None:
    project.pytester.makepyfile(test_http_probe_use=PROBE_TESTS)
    project.pytester.makeini(f"[pytest]\ngate_base_url = {stack_env.urls['app']}\n")
    result = project.run("--gate", "production-readiness")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*http[[]*/health[]]: status 200, expected 503"])
    checks = {
        c["nodeid"]: c
        for c in project.criterion("production-readiness", "security-compliance")["checks"]
    }
    good = checks["test_http_probe_use.py::test_no_debug_endpoint"]
    assert good["outcome"] == "passed"
    assert 0 < good["measured"]["latency_ms"] < 2000
    # without a gate run, the fixture works as a plain HTTP client
    project.pytester.makepyfile(
        test_plain=f"""
        def test_plain(http_probe):
            response = http_probe.get("{stack_env.urls["app"]}/version")
            assert response.status_code == 200
            assert response.json()["version"] == "v1"
            assert response.headers["content-type"].startswith("application/json")
        """
    )
    project.run("test_plain.py").assert_outcomes(passed=1)


HEADER_SECRET = "hdr-planted-7f3a91"
ENV_SECRET = "env-planted-c42d18"

SECRET_GATE = f"""
gate: release
criteria:
  api:
    title: The API answers
    checks:
      - http: ${{env:FWGATES_APP_URL}}/nowhere
        id: header-token
        headers: {{X-Api-Key: {HEADER_SECRET}, Authorization: "Bearer ${{env:PLANTED_VALUE}}"}}
        expect: {{status: 200}}
      - http: ${{env:FWGATES_APP_URL}}/health?probe=${{env:PLANTED_VALUE}}
        id: env-in-url
        expect: {{body_contains: something else}}
      - http: http://127.0.0.1:1/?k=${{env:PLANTED_VALUE}}
        id: env-in-refused-url
        timeout: 2
      - availability: ${{env:FWGATES_APP_URL}}/health?k=${{env:PLANTED_VALUE}}
        id: window-with-header
        window: 0.3s
        interval: 0.1s
        headers: {{X-Api-Key: {HEADER_SECRET}}}
        expect: {{status: 418, availability_pct: "== 100%"}}
      - metric: ${{env:FWGATES_APP_URL}}/health?k=${{env:PLANTED_VALUE}}
        id: metric-over-http
        path: version
      - prometheus: 'up{{job="${{env:PLANTED_VALUE}}"}}'
        id: prometheus-with-token
        server: ${{env:FWGATES_PROMETHEUS_URL}}
        token: {HEADER_SECRET}
"""

SECRET_TEST = f"""
import os

import pytest


@pytest.mark.gate("release", criterion="api")
def test_probe_with_secrets(http_probe):
    key = os.environ["PLANTED_VALUE"]
    response = http_probe.get("/health", headers={{"X-Api-Key": "{HEADER_SECRET}", "X-Key": key}})
    print("sent", key, "{HEADER_SECRET}")
    assert response.status_code == 404, f"got {{response.status_code}} with {{key}}"
"""


@pytest.mark.parametrize("verbosity", [[], ["-vv", "-rA", "-l"]], ids=["default", "verbose"])
def test_planted_secrets_reach_no_output(
    project: GateProject, stack_env: Stack, monkeypatch: pytest.MonkeyPatch, verbosity: list[str]
) -> None:
    monkeypatch.setenv("PLANTED_VALUE", ENV_SECRET)  # a name that does not look secret
    gate = project.gate("release", SECRET_GATE)
    test = project.pytester.makepyfile(test_secrets=SECRET_TEST)
    project.pytester.makeini(f"[pytest]\ngate_base_url = {stack_env.urls['app']}\n")
    result = project.run(
        "--gate",
        "release",
        "--junitxml=pytest.xml",
        "--log-level=DEBUG",
        "--log-file=run.log",
        "--log-file-level=DEBUG",
        "-o",
        "log_cli=true",
        "--log-cli-level=DEBUG",
        *verbosity,
    )
    result.assert_outcomes(passed=0, failed=4, errors=3)  # errors: nothing was measured
    terminal = result.stdout.str() + result.stderr.str()
    assert "***" in terminal
    produced = [p for p in project.path.rglob("*") if p.is_file() and p not in (gate, test)]
    names = {p.relative_to(project.path).as_posix() for p in produced}
    assert {"reports/gates.xml", "reports/summary.json", "pytest.xml", "run.log"} <= names
    assert any(name.startswith("reports/evidence/") for name in names)
    assert "GET /health?probe=***" in (project.path / "run.log").read_text()  # urllib3's log
    for secret in (HEADER_SECRET, ENV_SECRET):
        assert secret not in terminal
        for path in produced:
            text = path.read_text(errors="replace")
            assert secret not in text, path


def test_example_operations_excellence_gate_on_the_stack(
    project: GateProject, stack_env: Stack
) -> None:
    """The copyable gate under examples/gates, with its sample records, on the live stack.

    Prometheus' availability window is shortened to the quiet time this test waits for: the
    drills of other tests take the app down on purpose."""
    wait_quiet(stack_env, seconds=15)
    result = project.run(
        "--gate",
        "operations-excellence",
        "--gate-var=prometheus_window=15s",
        f"--gate-dir={ROOT / 'examples' / 'gates'}",
        f"--gate-var=records={ROOT / 'examples' / 'records'}",
    )
    # availability passes on 3500 probes; the sample records are too few to prove the shares
    # of threats answered and anomalies found at 95 % confidence (INCONCLUSIVE, exit 7); the
    # Prometheus share has no counts (an advisory WARN)
    assert result.ret == 7, result.stdout.str()
    assert project.verdicts() == {"operations-excellence": "INCONCLUSIVE"}
    criteria = project.criteria("operations-excellence")
    [window] = project.criterion("operations-excellence", "system-availability")["checks"]
    assert window["support"]["availability_pct"]["count"][1] == 3500
    if window["outcome"] == "inconclusive":
        # a probe lost to a stall of this busy machine: 3499 of 3500 cannot show > 99.9 %
        assert "probes with no more than" in window["message"]
        criteria["system-availability"] = "PASS"
    assert criteria == {
        "system-availability": "PASS",
        "availability-seen-by-monitoring": "WARN",
        "incident-response": "PASS",
        "performance-optimization": "PASS",
        "cost-management": "PASS",
        "security-operations": "INCONCLUSIVE",
        "anomaly-detection": "INCONCLUSIVE",
    }
    figures = {
        check["check"]: check["measured"]
        for criterion in project.gate_summary("operations-excellence")["criteria"]
        for check in criterion["checks"]
    }
    assert figures["mttr-from-incident-records"]["mttr_s"] == 83
    assert figures["anomaly-accuracy"]["accuracy_pct"] == 98.5
    assert figures["anomaly-accuracy"]["recall_pct"] == 95
    assert figures["cost-reduction"]["cost_reduction_pct"] == 25
    assert figures["availability-by-probe-window"]["availability_pct"] == 100
    assert figures["availability-by-prometheus"]["availability_pct"] > 99.9


def test_metric_from_an_http_json_endpoint(project: GateProject, stack_env: Stack) -> None:
    import requests

    app = stack_env.urls["app"]
    created = requests.post(f"{app}/items", json={"errors": 3, "total": 4000}, timeout=5)
    item = created.json()["id"]
    project.gate(
        "release",
        f"""
        gate: release
        criteria:
          errors:
            title: Few errors
            checks:
              - metric: {app}/items/{item}
                path: data.errors
                expect: {{value: "<= 5"}}
              - metric: {app}/items/{item}
                id: missing-path
                path: data.warnings
              - metric: {app}/items/999999999
                id: not-found
                path: data.errors
        """,
    )
    result = project.run("--gate", "release")
    result.assert_outcomes(passed=1, errors=2)  # a path that is not there, a 404
    checks = project.checks("release", "errors")
    first = checks[f"metric[{app}/items/{item}]"]
    assert first["measured"]["value"] == 3
    assert first["measured"]["source"] == f"{app}/items/{item}"
    assert checks["missing-path"]["message"].endswith(
        "data.warnings: $.data has no key 'warnings' (keys: errors, total)"
    )
    assert checks["not-found"]["message"] == f"GET {app}/items/999999999: status 404 Not Found"
