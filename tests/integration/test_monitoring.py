"""http, prometheus, metric and availability checks against the real example stack: the app
through nginx (HTTP and TLS) and its real Prometheus. Nothing is mocked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from examples.stack import Stack, procs

from .quiet import wait_history, wait_quiet
from .traffic import ROOT, Prober

if TYPE_CHECKING:
    from conftest import GateProject

pytestmark = pytest.mark.integration


HTTP_GATE = """
gate: production-readiness
vars:
  url: ${env:FWGATES_APP_URL}
  tls: ${env:FWGATES_TLS_URL}
criteria:
  infrastructure-validation:
    - http: ${url}/health
      id: health
      expect:
        status: 200
        json: {status: ok, version: v1}
        headers: {Content-Type: application/json, X-Powered-By: null}
        latency_ms: "< 2s"
    - http: ${url}/items
      id: create-item
      method: POST
      json: {name: probe, n: 1}
      expect: {status: 201, json: {id: "> 0"}, headers: {Location: /items/}}
    - http: ${url}/items
      id: raw-body
      method: POST
      body: '{"name": "raw"}'
      headers: {Content-Type: application/json, X-Request-Token: tok-raw-body-1234}
      expect: {status: 201, headers: {Content-Type: application/json}}
    - http: ${url}/work
      id: query-and-head
      method: HEAD
      query: {ms: 1}
    - http: ${url}/metrics
      id: metrics
      expect:
        body_contains: [http_requests_total, app_version_info]
        body_matches: 'app_version_info\\{[^}]*version="v1"'
        body_not_contains: Traceback
    - http: ${tls}/health
      id: tls-with-ca
      ca: ${env:FWGATES_CA_CERT}
      expect: {status: 200, headers: {Strict-Transport-Security: max-age=}}
    - http: ${tls}/health
      id: tls-unverified-on-request
      verify: false
  security-compliance:
    - http: ${tls}/health
      id: tls-without-ca
    - http: ${url}/health
      id: wrong-version
      expect: {json: {version: v9, missing.key: 1}}
    - http: ${url}/nowhere
      id: retried-404
      retry: {within: 1.5s, every: 0.3s}
      expect: {status: 200}
    - http: ${url}/work
      id: too-slow
      query: {ms: 300}
      expect: {latency_ms: "< 100ms"}
    - http: http://127.0.0.1:1/health
      id: refused
      timeout: 2
"""


def test_http_checks_pass_and_fail_for_real_reasons(project: GateProject, stack_env: Stack) -> None:
    project.gate("production-readiness", HTTP_GATE)
    result = project.run("--gate", "production-readiness")
    result.assert_outcomes(passed=7, failed=3, errors=2)  # TLS refused, connection refused
    passed = project.checks("production-readiness", "infrastructure-validation")
    assert {c["outcome"] for c in passed.values()} == {"passed"}, passed
    health = passed["health"]["measured"]
    assert health["status"] == 200 and health["tries"] == 1
    assert 0 < health["latency_ms"] < 2000
    assert passed["create-item"]["measured"]["status"] == 201
    response = Path(passed["raw-body"]["evidence"]["response"]).read_text()
    assert "Content-Type: application/json" in response  # a content type is not a secret
    assert passed["tls-with-ca"]["measured"]["url"].startswith("https://")
    assert Path(passed["health"]["evidence"]["response"]).read_text().startswith("GET http://")

    failed = project.checks("production-readiness", "security-compliance")
    outcome = {name: (c["outcome"], c["message"]) for name, c in failed.items()}
    assert outcome["tls-without-ca"][0] == "error"
    assert "TLS failed: certificate verify failed" in outcome["tls-without-ca"][1]
    assert outcome["wrong-version"] == (
        "failed",
        "json version = 'v1', expected 'v9'; json missing.key: $ has no key 'missing' "
        "(keys: status, version)",
    )
    kind, message = outcome["retried-404"]
    assert kind == "failed"
    assert message.startswith("status 404, expected 200 (after ")
    assert failed["retried-404"]["measured"]["tries"] >= 3
    assert Path(failed["retried-404"]["evidence"]["tries"]).read_text().count("\n") >= 4
    assert outcome["too-slow"][0] == "failed"
    assert "latency_ms = " in outcome["too-slow"][1]
    assert "expected < 100ms" in outcome["too-slow"][1]
    assert outcome["refused"][0] == "error"
    assert "connection failed" in outcome["refused"][1]
    assert "Connection refused" in outcome["refused"][1]


def test_retry_waits_for_a_service_that_settles(
    project: GateProject, stack_env: Stack, tmp_path: Path
) -> None:
    """A service that answers only after a while: the check retries until it holds."""
    port = procs.free_port()
    root = tmp_path / "late"
    (root / "docs").mkdir(parents=True)
    (root / "ready").write_text("ready\n")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>\n")
    server = (
        f"import time, http.server, functools; time.sleep(1.5); "
        f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), functools.partial("
        f"http.server.SimpleHTTPRequestHandler, directory={str(root)!r})).serve_forever()"
    )
    rec = procs.spawn(
        "late-server",
        [sys.executable, "-c", server, str(root)],
        env=os.environ,
        log=tmp_path / "late.log",
        marker=str(root),
    )
    try:
        project.gate(
            "release",
            f"""
            gate: release
            criteria:
              settles:
                title: The service settles after a deploy
                checks:
                  - http: http://127.0.0.1:{port}/ready
                    retry: {{within: 30s, every: 0.25s}}
                    expect: {{status: 200, body_contains: ready}}
                  - http: http://127.0.0.1:{port}/docs
                    id: redirect-followed
                    expect: {{status: 200, body_contains: <h1>docs</h1>}}
                  - http: http://127.0.0.1:{port}/docs
                    id: redirect-not-followed
                    redirects: false
                    expect: {{status: [301, 302], headers: {{Location: /docs/}}}}
                  - http: http://127.0.0.1:{port}/ready
                    id: two-bodies
                    method: POST
                    json: {{a: 1}}
                    body: raw
            """,
        )
        result = project.run("--gate", "release")
        result.assert_outcomes(passed=3, errors=1)  # two bodies: nothing was sent
        checks = project.checks("release", "settles")
        assert checks[f"http[http://127.0.0.1:{port}/ready]"]["measured"]["tries"] >= 2
        assert checks["redirect-followed"]["measured"]["redirects"] == 1
        assert checks["redirect-followed"]["measured"]["url"].endswith("/docs/")
        assert checks["redirect-not-followed"]["outcome"] == "passed"
        two = checks["two-bodies"]
        assert (two["outcome"], two["message"]) == ("error", "give one request body: json or body")
    finally:
        procs.stop([rec])


PROMETHEUS_GATE = """
gate: production-readiness
vars:
  prometheus: ${env:FWGATES_PROMETHEUS_URL}
criteria:
  monitoring-operational:
    - prometheus: 'up{job="app"}'
      id: app-up
      expect: {value: ">= 1"}
    - prometheus: {targets: [app, prometheus]}
      id: targets
    - prometheus: {rules: [AppDown, HighErrorRate, HighLatency]}
      id: rules
    - prometheus: {alert: AppDown}
      id: app-down-not-firing
      expect: {firing: false}
    - prometheus: '100 * avg_over_time(up{job="prometheus"}[10s])'
      id: availability-instant
      as: availability_pct
      expect: {availability_pct: ">= 99%"}
    - prometheus: 'up{job="prometheus"}'
      id: availability-window
      server: ${prometheus}
      window: 5s
      step: 1s
      over: min
      expect: {value: "== 1"}
    - prometheus: 'up{job="prometheus"}'
      id: thirty-day-window
      window: 30d
      step: 1h
      expect: {value: "== 1"}
  broken:
    title: Queries that cannot pass
    required: false
    checks:
      - prometheus: {rules: [AppDown, NoSuchRule]}
        id: missing-rule
      - prometheus: {targets: [nojob]}
        id: unknown-job
      - prometheus: 'up{job="app"'
        id: bad-query
      - prometheus: 'up{job="nojob"}'
        id: empty-result
      - prometheus: '0/0'
        id: nan
      - prometheus: {alert: NoSuchAlert}
        id: unknown-alert
      - prometheus: {alert: AppDown}
        id: app-down-firing
      - prometheus: 'up'
        id: unreachable
        server: http://127.0.0.1:1
        timeout: 2
      - prometheus: 'up{job=~"app|prometheus"}'
        id: every-series-held
        expect: {value: "> 1"}
"""


def test_prometheus_checks_against_the_real_server(project: GateProject, stack_env: Stack) -> None:
    wait_quiet(stack_env)  # after a drill of another test, AppDown takes a moment to resolve
    wait_history(stack_env, "prometheus", 6)  # the 5 s window is covered by its samples
    project.gate("production-readiness", PROMETHEUS_GATE)
    project.pytester.makeini(f"[pytest]\ngate_prometheus_url = {stack_env.urls['prometheus']}\n")
    result = project.run("--gate", "production-readiness")
    good = project.checks("production-readiness", "monitoring-operational")
    # a share read from a query has no counts to bound it; 30 days of a fresh Prometheus are
    # not covered by its samples: neither can pass, neither fails
    assert {n: c["outcome"] for n, c in good.items() if c["outcome"] != "passed"} == {
        "availability-instant": "inconclusive",
        "thirty-day-window": "inconclusive",
    }
    assert "with no counts behind it" in good["availability-instant"]["message"]
    assert "% of the 30 d window; 90 % needed" in good["thirty-day-window"]["message"]
    assert project.criteria("production-readiness")["monitoring-operational"] == "INCONCLUSIVE"
    assert good["targets"]["measured"]["targets_up"] == 2
    assert good["targets"]["thresholds"] == {"targets_up": ">= 1"}  # the catalog's standard
    assert good["rules"]["measured"]["rules_loaded"] == 3
    assert good["rules"]["thresholds"] == {"rules_loaded": ">= 1"}
    assert good["app-up"]["thresholds"] == {"value": ">= 1"}  # no standard on a query's value
    assert good["availability-instant"]["measured"]["availability_pct"] == 100
    assert good["availability-window"]["measured"]["window"] == "5 s"
    assert good["thirty-day-window"]["measured"]["window"] == "30 d"

    bad = project.checks("production-readiness", "broken")
    outcome = {name: (c["outcome"], c["message"]) for name, c in bad.items()}
    assert outcome["missing-rule"] == ("failed", "rule NoSuchRule is not loaded")
    assert outcome["unknown-job"][0] == "error"
    assert outcome["unknown-job"][1].startswith("job nojob has no scrape targets (jobs: ")
    assert outcome["bad-query"][0] == "error"
    assert outcome["bad-query"][1].startswith("Prometheus bad_data: invalid parameter")
    assert outcome["empty-result"] == ("error", 'the query returned no series: up{job="nojob"}')
    assert outcome["nan"] == ("error", "the query returned NaN for scalar: 0/0")
    assert outcome["unknown-alert"][0] == "error"
    assert outcome["unknown-alert"][1].startswith("alert rule NoSuchAlert is not loaded")
    assert outcome["app-down-firing"] == ("failed", "alert AppDown is not firing (inactive)")
    assert outcome["unreachable"][0] == "error"
    assert "Prometheus at http://127.0.0.1:1 is unreachable" in outcome["unreachable"][1]
    kind, message = outcome["every-series-held"]
    assert kind == "failed"
    assert 'up{instance="127.0.0.1:' in message
    assert "value = 1, expected > 1" in message
    assert project.criteria("production-readiness")["broken"] == "WARN"
    assert result.ret == 1  # the other catalog criteria have no checks here


def test_monitoring_criterion_needs_the_prometheus_figures(
    project: GateProject, stack_env: Stack
) -> None:
    """An http check on /metrics alone does not make monitoring-operational pass."""
    project.gate(
        "production-readiness",
        """
        gate: production-readiness
        criteria:
          monitoring-operational:
            - http: ${env:FWGATES_APP_URL}/metrics
              expect: {body_contains: http_requests_total}
        """,
    )
    project.run("--gate", "production-readiness").assert_outcomes(passed=1)
    criterion = project.criterion("production-readiness", "monitoring-operational")
    assert criterion["verdict"] == "NOT_EVALUATED"
    assert "standard not measured by any check: targets_up" in criterion["reason"]


@pytest.fixture
def fault_500(stack_env: Stack) -> Iterator[Stack]:
    """The 500 build deployed with the naive deploy script; v1 restored afterwards."""
    completed = subprocess.run(
        ["examples/deploy/deploy-naive", "v2", "--fault", "500"],
        cwd=ROOT,
        env={**os.environ, **stack_env.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        # the naive deploy stops v1 first, then finds the new build answering 500: it says so
        # and leaves the broken build serving, which is what this fixture wants
        assert completed.returncode == 1, completed.stderr[-2000:]
        assert "/version answered 500" in completed.stderr
        yield stack_env
    finally:
        stack_env.deploy("v1", "bluegreen")


def test_an_alert_fires_after_the_500_build_is_deployed(
    project: GateProject, fault_500: Stack, prober: Callable[..., Prober]
) -> None:
    project.gate(
        "operations-handoff",
        """
        gate: operations-handoff
        criteria:
          incident-response:
            - http: ${env:FWGATES_APP_URL}/version
              id: the-fault-is-live
              expect: {status: 500}
            - prometheus: {alert: HighErrorRate}
              id: error-rate-alert-fires
              server: ${env:FWGATES_PROMETHEUS_URL}
              retry: {within: 60s, every: 1s}
              expect: {firing: true}
            - prometheus: {alert: AppDown}
              id: app-still-scraped
              server: ${env:FWGATES_PROMETHEUS_URL}
              expect: {firing: false}
        """,
    )
    with prober("/version", interval=0.05):  # user traffic that now fails
        result = project.run("--gate", "operations-handoff")
    result.assert_outcomes(passed=3)
    checks = project.checks("operations-handoff", "incident-response")
    fired = checks["error-rate-alert-fires"]["measured"]
    assert fired["alerts_firing"] >= 1
    assert fired["tries"] >= 1
    print(f"\n[figures] HighErrorRate fired after {fired['tries']:.0f} tries (1 s apart)")


def test_prometheus_stopped_mid_run_makes_its_checks_error(
    project: GateProject, example_stack: Stack, tmp_path: Path
) -> None:
    """A Prometheus of this test's own, stopped by a check of the run: the checks after it
    are errors that say the server is unreachable, and the gate fails."""
    prometheus = example_stack.binaries()[1]
    port = procs.free_port()
    data = tmp_path / "prometheus"
    (data / "data").mkdir(parents=True)
    conf = data / "prometheus.yml"
    conf.write_text(
        textwrap.dedent(
            f"""\
            global: {{scrape_interval: 1s, evaluation_interval: 1s}}
            scrape_configs:
              - job_name: self
                static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
            """
        )
    )
    rec = procs.spawn(
        "prometheus-test",
        [
            prometheus,
            f"--config.file={conf}",
            f"--storage.tsdb.path={data / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        env=os.environ,
        log=data / "prometheus.log",
        marker=str(data),
    )
    try:

        def ready() -> str | None:
            status, _ = procs.http_json(f"http://127.0.0.1:{port}/-/ready", timeout=1.0)
            return None if status == 200 else f"status {status}"

        procs.wait_for("test Prometheus", ready, timeout=45)
        project.gate(
            "release",
            f"""
            gate: release
            criteria:
              monitored:
                title: The service is monitored
                checks:
                  - prometheus: prometheus_build_info
                    id: before-the-stop
                    retry: {{within: 30s, every: 0.5s}}
                  - command: >-
                      kill {rec.pid} && for i in $(seq 100); do
                      curl -s --max-time 1 -o /dev/null http://127.0.0.1:{port}/-/ready
                      || exit 0; sleep 0.1; done; exit 1
                    id: prometheus-stops
                  - prometheus: prometheus_build_info
                    id: after-the-stop
                  - prometheus: {{targets: [self]}}
                    id: targets-after-the-stop
            """,
        )
        project.pytester.makeini(f"[pytest]\ngate_prometheus_url = http://127.0.0.1:{port}\n")
        started = time.monotonic()
        result = project.run("--gate", "release")
        assert time.monotonic() - started < 60
        assert result.ret == 1
        checks = project.checks("release", "monitored")
        assert checks["before-the-stop"]["outcome"] == "passed"
        assert checks["prometheus-stops"]["outcome"] == "passed"
        for name in ("after-the-stop", "targets-after-the-stop"):
            assert checks[name]["outcome"] == "error"
            assert checks[name]["message"].startswith(
                f"Prometheus at http://127.0.0.1:{port} is unreachable: GET "
            )
            assert "Connection refused" in checks[name]["message"]
        assert project.verdicts() == {"release": "FAILED"}
        result.stdout.fnmatch_lines(
            ["*after-the-stop errored: Prometheus at http://127.0.0.1:* is*"]
        )
    finally:
        procs.stop([rec])
