"""PromQL per version in a canary's analysis, against the real example stack and its real
Prometheus (every instance scraped on its own, the app's series labelled with their version);
and a run killed mid-canary, after which the stack's next start leaves no share of the users
on a stopped instance."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from examples.stack import Stack
from examples.stack import components as comp
from pytest_fwgates.canary_prom import parse_template
from pytest_fwgates.checks.base import CheckContext
from pytest_fwgates.checks.prometheus import instant_query
from pytest_fwgates.model import Outcome
from pytest_fwgates.redact import Redactor

from .test_canary import _canary, _routing
from .traffic import ROOT

pytestmark = pytest.mark.integration

#: the canary's failed answers per second in the step's window, from its own instance's counters
ERRORS = (
    'sum(rate(http_requests_total{job="app_instances",version="{{new}}",status=~"5.."}'
    "[{{window}}]))"
)


def test_hostile_versions_reach_prometheus_as_one_label_value(
    example_stack: Stack, tmp_path: Path
) -> None:
    # PromQL's own parser: absent() answers with the labels of its equality matchers, so the
    # value Prometheus read is the one series' label; an injection would parse otherwise
    context = CheckContext(rootdir=tmp_path, redactor=Redactor(), evidence_root=tmp_path)
    template = parse_template('absent(fwgates_no_such_metric{v="{{new}}", w="{{old}}"})')
    server = example_stack.urls["prometheus"]
    # and every instance of the app is a target of its own (the live one at least), once
    # Prometheus has read the targets file and scraped them (each every second; bounded)
    up = 'min(up{job="app_instances"})'
    deadline = time.monotonic() + 15
    while (found := instant_query(context, server, up, timeout=5.0)) != [("{}", 1.0)]:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    for version in ['v2"} or vector(1) #', "a\\b\\", "{{new}}", "\n\t\x00'`", "ü€😀", '"']:
        query = template.render({"new": version, "old": "v1"})
        series = instant_query(context, server, query, timeout=5.0)
        assert series == [(f'{{v="{version}",w="v1"}}', 1.0)], (version, query)


def test_a_faulty_canary_is_aborted_by_the_promql_rule_alone(
    stack_env: Stack, tmp_path: Path
) -> None:
    result = _canary(
        stack_env,
        tmp_path,
        fault="errors=50%",
        steps=[{"weight": 50, "pause": "20s"}, {"weight": 100}],
        analysis={
            "prometheus": {
                "query": ERRORS + " or vector(0)",
                "server": stack_env.urls["prometheus"],
                "name": "canary 5xx/s",
            }
        },
        expect={"aborted": "== 1", "detect_s": "< 20s"},
    )
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert measured["aborted"] == 1 and measured["aborted_at_step"] == 1
    # from the first bad answer of v2 the prober saw, as for the prober's own rules
    assert 0 < measured["detect_s"] < measured["duration_s"]
    assert measured["detect_from"] == "the first bad answer of v2 the prober saw"
    assert measured["version_after"] == "v1"
    step = measured["steps"][0]
    assert step["verdict"] == "fail" and "failure_rate_p" not in step  # no prober rule
    (found,) = step["prometheus"]
    assert found["verdict"] == "fail" and found["value"] > 0 and found["expect"] == "== 0"
    assert 'version="v2"' in found["query"] and found["name"] == "canary 5xx/s"
    assert any(r.startswith("prometheus: canary 5xx/s = ") for r in step["reasons"])
    assert "app_canary" not in _routing(stack_env)

    # at once a good v2 with the same rule: its look must not see the aborted v2's series
    # (stopped a second ago, still within a fixed range), only the step's window
    good = _canary(
        stack_env,
        tmp_path / "good",
        steps=[{"weight": 50, "pause": "3s"}, {"weight": 100}],
        analysis={
            "prometheus": {
                "query": ERRORS + " or vector(0)",
                "server": stack_env.urls["prometheus"],
            },
            "min_answers": 5,
            "max_pause": "4s",
        },
        expect={"aborted": "== 0"},
    )
    assert good.outcome is Outcome.PASSED, good.message
    assert good.measured["version_after"] == "v2"


def test_a_query_that_returns_nothing_never_passes_a_step(stack_env: Stack, tmp_path: Path) -> None:
    # the canary's answers of a status it never gives: without "or vector(0)" the query
    # returns nothing, and nothing is no evidence that the canary is good
    teapots = (
        'sum(rate(http_requests_total{job="app_instances",version="{{new}}",status="418"}[10s]))'
    )
    result = _canary(
        stack_env,
        tmp_path,
        steps=[{"weight": 50, "pause": "3s"}, {"weight": 100}],
        analysis={
            "prometheus": {"query": teapots, "server": stack_env.urls["prometheus"]},
            "min_answers": 5,
            "max_pause": "3s",
        },
        expect={"aborted": "== 0"},
    )
    assert result.outcome is Outcome.INCONCLUSIVE, result.message
    assert "unproven" in result.message and "no series" in result.message
    assert "or vector(0)" in result.message
    measured = result.measured
    assert measured["version_after"] == "v1" and measured["steps_done"] == 0
    (found,) = measured["steps"][0]["prometheus"]
    assert found["verdict"] == "inconclusive" and found["value"] is None


def test_a_run_killed_mid_canary_leaves_no_share_on_a_stopped_instance(
    stack_env: Stack, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "canary-killed.yaml").write_text(
        textwrap.dedent(
            f"""
            gate: canary-killed
            criteria:
              canary:
                - deploy: {ROOT}/examples/deploy/deploy-canary v2
                  health: {stack_env.urls["app"]}/
                  version: {{json: version, expect: v2}}
                  steps: [{{weight: 50, pause: 90s}}, {{weight: 100}}]
                  analysis: {{failure_rate: {{max_increase: "0.5%"}}}}
                  on_abort: {ROOT}/examples/deploy/rollback
                  timeout: 120
            """
        )
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"]
    audit_log = stack_env.layout.audit_log
    audited = len(_audit(audit_log))
    proc = subprocess.Popen(
        [*command, "-q", "--gate=canary-killed"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # killed in the pause, once the step's deploy command is over (audited: nginx serves
        # the share, the state file says so), not while it still writes the routing or the
        # state: routing.conf names the canary before nginx reloaded, and a deploy command
        # outliving the killed run could overwrite what the recovery wrote
        deadline = time.monotonic() + 60
        shifted: list[dict[str, Any]] = []
        while time.monotonic() < deadline and proc.poll() is None and not shifted:
            shifted = [
                r
                for r in _audit(audit_log)[audited:]
                if r.get("strategy") == "canary" and r.get("to_version") == "v2"
            ]
            time.sleep(0.1)
        assert shifted and shifted[0]["result"] == "success", shifted or "no deploy audited"
        assert "app_canary" in _routing(stack_env), "the canary took its share"
        proc.send_signal(signal.SIGKILL)  # nothing of the run can clean up
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    state = json.loads(stack_env.layout.state_file.read_text())
    canary = state["colours"][state["canary"]["colour"]]
    comp.stop_colour(canary, drain_s=0.0, quick=True)  # and then the canary's instance is gone
    urls = stack_env.urls
    before = _answers(urls["app"], 40)
    assert 502 in before, "a share of the users reaches the stopped canary"

    started = time.monotonic()
    assert stack_env.up()["FWGATES_APP_URL"] == urls["app"]  # recovered in place
    took = time.monotonic() - started
    print(f"\n[figures] stale canary taken out at start in {took:.2f} s")
    assert stack_env.urls == urls
    assert "app_canary" not in _routing(stack_env)
    state = json.loads(stack_env.layout.state_file.read_text())
    assert not state.get("canary")
    assert [c for c, e in state["colours"].items() if e] == [state["live"]]
    after = _answers(urls["app"], 200)
    assert after == {200: 200}, after
    audit = (stack_env.layout.root / "audit.log").read_text()
    assert "stale canary taken out at start" in audit


def _audit(path: Path) -> list[dict[str, Any]]:
    """The stack's audit records (complete lines only: one may be being appended)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _answers(app: str, n: int) -> dict[int, int]:
    """The status of ``n`` requests of the application (each bounded): count by status; a
    version other than v1 counts as 0."""
    import requests

    seen: dict[int, int] = {}
    with requests.Session() as session:
        for _ in range(n):
            answer = session.get(f"{app}/work?ms=1", timeout=5)
            status = answer.status_code
            if status == 200 and answer.json().get("version") != "v1":
                status = 0
            seen[status] = seen.get(status, 0) + 1
    return seen
