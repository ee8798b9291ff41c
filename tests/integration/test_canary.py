"""Canary deploys of the real example stack (gunicorn, nginx split_clients by reload), judged
canary against stable by the prober, aborted and rolled back when the new build is faulty.

Pauses are short (a few seconds) and the canary's share large enough to judge in them even
when a busy machine slows the prober down; the allowed latency increase is generous (the
machine is shared), the faulty builds far beyond it. A faulty build is aborted at the first
look that shows it, so its pause is only an upper bound.
"""

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
from pytest_fwgates.model import CheckResult, Outcome

from .test_deploy_checks import _check
from .traffic import ROOT

pytestmark = pytest.mark.integration

#: allowances a good canary proves in a few hundred answers (a pause of seconds at 50 %): a
#: failure rate within 5 % needs about 120 clean answers at the proof looks' confidence, a p95
#: a few hundred good ones; the faulty builds are far beyond them
ANALYSIS = {
    "failure_rate": {"max_increase": "5%"},
    "p95_ms": {"max_increase": "+100%"},
    "min_answers": 20,
}


def _canary(
    stack: Stack, tmp_path: Path, fault: str = "", target: str = "", **settings: Any
) -> CheckResult:
    target = target or "examples/deploy/deploy-canary v2" + (f" --fault {fault}" if fault else "")
    options: dict[str, Any] = {
        "health": stack.urls["app"] + "/work?ms=10",
        "version": {"json": "version", "expect": "v2"},
        "interval": "10ms",
        "steps": [{"weight": 50, "pause": "6s"}, {"weight": 100}],
        "analysis": ANALYSIS,
        "on_abort": "examples/deploy/rollback",
        "timeout": 90,
    }
    options.update(settings)
    options = {k: v for k, v in options.items() if v is not None}
    result = _check(tmp_path, "deploy", target, **options)
    numbers = {k: v for k, v in result.measured.items() if isinstance(v, int | float)}
    print(f"\n[figures] canary {fault or 'good'}: {result.outcome.name} {numbers}")
    return result


def _routing(stack: Stack) -> str:
    return (stack.layout.nginx_dir / "routing.conf").read_text()


def test_good_canary_is_judged_and_promoted(stack_env: Stack, tmp_path: Path) -> None:
    result = _canary(stack_env, tmp_path, expect={"aborted": "== 0", "duration_s": "< 5m"})
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert measured["aborted"] == 0
    assert measured["version_before"] == "v1" and measured["version_after"] == "v2"
    assert measured["version_changed"] == 1
    assert measured["canary_answers"] >= 20
    assert measured["bad_answers"] == 0
    assert measured["analysis_looks"] >= 1
    step = measured["steps"][0]
    assert step["verdict"] == "pass" and step["weight"] == 50
    assert step["canary"]["answers"] >= 20 and step["stable"]["answers"] >= 20
    assert "app_canary" not in _routing(stack_env)
    svg = Path(result.evidence["timeline_svg"]).read_text()
    assert "step 1: 50%" in svg and "v2" in svg
    picture = Path(result.evidence["canary_svg"]).read_text()
    assert "step 1: 50%" in picture and "v1 -&gt; v2 by version" in picture


#: the slow build judged against an absolute allowance far below its delay. The abort needs an
#: upper bound of the stable p95 at a look's level (about 0.0005 a side with max_pause 30s:
#: about 150 stable answers, its bound their largest or second largest) and canary answers
#: slower than it plus the allowance: 6 of 16 already show it (P(Bin(16, 0.05) >= 6) = 1e-4).
#: Against a relative allowance a busy machine's stable tail raises the limit with the load
#: (+100 % of a 60 ms hiccup is beyond a 40 ms delay); here a canary answer (at least 260 ms)
#: is slower than the limit unless the stable's slowest answers exceed 210 ms. At 10 % the
#: one-connection prober gets about 20 stable answers a second, 2 of the canary.
SLOW = {
    "steps": [{"weight": 10, "pause": "6s"}, {"weight": 100}],
    "analysis": {**ANALYSIS, "p95_ms": {"max_increase": "+50ms"}, "max_pause": "30s"},
}


@pytest.mark.parametrize(
    ("fault", "rule", "settings"),
    [
        ("errors=50%", "failure_rate", {}),
        ("delay=250ms", "p95_ms", SLOW),
        ("crash-after=50", "failure_rate", {}),
    ],
    ids=["errors=50%-failure_rate", "delay=250ms-p95_ms", "crash-after=50-failure_rate"],
)
def test_faulty_canary_is_aborted_and_rolled_back(
    stack_env: Stack, tmp_path: Path, fault: str, rule: str, settings: dict[str, Any]
) -> None:
    result = _canary(
        stack_env,
        tmp_path,
        fault,
        expect={"aborted": "== 1", "rollback_s": "< 2m"},
        **settings,
    )
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert measured["aborted"] == 1 and measured["aborted_at_step"] == 1
    assert measured["version_changed"] == 0  # an aborted canary deployed nothing
    assert 0 <= measured["rollback_s"] < 120
    assert 0 <= measured["detect_s"] < (30 if settings else 10)
    assert measured["version_after"] == "v1"
    assert measured["on_abort_exit_status"] == 0
    assert rule in measured["abort_reason"].replace("failure rate", "failure_rate").replace(
        "p95 latency", "p95_ms"
    )
    if rule == "failure_rate":
        assert measured["bad_answers"] > 0
    assert measured["steps"][0]["verdict"] == "fail"
    assert "app_canary" not in _routing(stack_env)  # every request back on v1
    assert stack_env.status()["version"] == "v1"
    svg = Path(result.evidence["timeline_svg"]).read_text()
    assert "abort: step 1" in svg and "stable on v1" in svg


def test_crash_before_any_analysis_is_caught(stack_env: Stack, tmp_path: Path) -> None:
    # the build dies during its warm-up: every answer of its share is nginx's 502 as v2
    result = _canary(stack_env, tmp_path, "crash-after=2", expect={"aborted": "== 1"})
    assert result.outcome is Outcome.PASSED, result.message
    assert result.measured["bad_answers"] > 0
    assert result.measured["version_after"] == "v1"


def test_canary_without_traffic_is_never_a_pass(stack_env: Stack, tmp_path: Path) -> None:
    # a deploy command that sends nothing to the new version: nothing to judge it by
    result = _check(
        tmp_path,
        "deploy",
        "true",
        health=stack_env.urls["app"] + "/",
        version={"json": "version", "expect": "v2"},
        interval="20ms",
        steps=[{"weight": 10, "pause": "1s"}, {"weight": 100}],
        analysis={**ANALYSIS, "max_pause": "1s"},
        expect={"aborted": "== 1"},  # even an expected abort does not pass an unjudged canary
    )
    assert result.outcome is Outcome.INCONCLUSIVE, result.message
    assert "unproven, not promoted: step 1 (weight 10 %)" in result.message
    assert "the canary answered 0 times" in result.message


def test_canary_too_short_to_prove_is_inconclusive_and_taken_out(
    stack_env: Stack, pytester: pytest.Pytester
) -> None:
    # a good build, watched for a second: a few dozen clean answers cannot show a failure
    # rate within 0.5 % (that takes about 740 at 95 %), so it is not promoted: on_abort takes
    # it out, and the gate says INCONCLUSIVE (exit 7) whatever the check's expect says -
    # neither a pass nor a detected regression - in the terminal, summary and JUnit, with the
    # one-line reason
    pytester.makefile(
        ".yaml",
        **{
            "gates/canary-proof": textwrap.dedent(
                f"""
                gate: canary-proof
                criteria:
                  canary:
                    - deploy: {ROOT}/examples/deploy/deploy-canary v2
                      id: short-canary
                      health: {stack_env.urls["app"]}/work?ms=10
                      version: {{json: version, expect: v2}}
                      interval: 10ms
                      steps: [{{weight: 50, pause: 1s}}, {{weight: 100}}]
                      analysis: {{failure_rate: {{max_increase: "0.5%"}}, max_pause: 1s}}
                      on_abort: {ROOT}/examples/deploy/rollback
                      expect: {{aborted: "== 0"}}
                      timeout: 60
                """
            )
        },
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--gate=canary-proof"
    )
    out = result.stdout.str()
    assert result.ret == 7, out[-3000:]
    result.stdout.fnmatch_lines(["canary-proof  INCONCLUSIVE*"])
    assert "unproven, not promoted: step 1 (weight 50 %)" in out
    summary = json.loads((pytester.path / "reports/summary.json").read_text())
    criterion = summary["gates"][0]["criteria"][0]
    assert criterion["verdict"] == "INCONCLUSIVE"
    check = criterion["checks"][0]
    assert check["outcome"] == "inconclusive"
    why = check["message"]
    assert why.startswith("unproven, not promoted: step 1 (weight 50 %): canary ")
    assert "clean answers show <= 0.50 %" in why or "needed to judge" in why
    measured = check["measured"]
    assert measured["abort_reason"].startswith("unproven")
    assert measured["aborted"] == 1 and measured["aborted_at_step"] == 1
    assert "detect_s" not in measured  # no regression was detected
    assert measured["on_abort_exit_status"] == 0
    assert measured["version_after"] == "v1" and measured["version_changed"] == 0
    assert measured["steps"][0]["verdict"] == "inconclusive"
    junit = (pytester.path / "reports/gates.xml").read_text()
    assert "unproven, not promoted: step 1 (weight 50 %)" in junit
    assert "app_canary" not in _routing(stack_env)
    assert stack_env.status()["version"] == "v1"


def test_unreadable_version_label_is_an_error(stack_env: Stack, tmp_path: Path) -> None:
    result = _check(
        tmp_path,
        "deploy",
        "examples/deploy/deploy-canary v2",
        health=stack_env.urls["app"] + "/",
        version={"json": "no.such.field", "expect": "v2"},
        steps=[{"weight": 10, "pause": "1s"}, {"weight": 100}],
        analysis=ANALYSIS,
    )
    assert result.outcome is Outcome.ERROR
    assert "no stable version to judge v2 against" in result.message
    assert "app_canary" not in _routing(stack_env)  # nothing was deployed


@pytest.mark.parametrize(
    ("on_abort", "why"),
    [("exit 3", "on_abort command failed (exit 3)"), ("sleep 30", "did not finish within 1 s")],
)
def test_failing_on_abort_fails_the_check(
    stack_env: Stack, tmp_path: Path, on_abort: str, why: str
) -> None:
    try:
        result = _canary(
            stack_env,
            tmp_path,
            "errors=50%",
            on_abort=on_abort,
            on_abort_timeout="1s",
            settle_timeout="2s",
            expect={"aborted": "== 1"},
        )
    finally:
        stack_env.rollback()
    assert result.outcome is Outcome.FAILED
    assert why in result.message
    assert "not stable on v1" in result.message  # the canary still had its share


def test_interrupted_canary_takes_the_new_version_out(stack_env: Stack, tmp_path: Path) -> None:
    # the run's bound after Ctrl-C: the step's command stopped (SIGTERM, SIGKILL after 2 s),
    # on_abort (on_abort_timeout), the prober joined; well within the 60 s waited here. A run
    # that does not end dumps every thread's stack (SIGUSR1) into the failure message.
    script = textwrap.dedent(
        f"""
        import faulthandler, signal, sys
        from pathlib import Path
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        sys.path.insert(0, {str(ROOT)!r})
        from tests.integration.test_deploy_checks import _check
        _check(
            Path({str(tmp_path)!r}),
            "deploy",
            "examples/deploy/deploy-canary v2",
            health={stack_env.urls["app"] + "/"!r},
            version={{"json": "version", "expect": "v2"}},
            steps=[{{"weight": 30, "pause": "60s"}}, {{"weight": 100}}],
            on_abort="examples/deploy/rollback",
            on_abort_timeout="20s",
            timeout=120,
        )
        """
    )
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=sink)

    def stopped(why: str) -> str:
        if proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)  # where it waits, into its stderr
            time.sleep(1.0)
            proc.kill()
            proc.wait(10)
        return f"{why}; its stderr:\n{errors.read_text(errors='replace')[-6000:]}"

    try:
        deadline = time.monotonic() + 60
        while "app_canary" not in _routing(stack_env):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(stopped("the canary never took its share"))
            time.sleep(0.1)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)  # Ctrl-C during the step or its pause
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(stopped("the run did not end within 60 s of Ctrl-C"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    print(f"\n[figures] interrupted canary: ended {time.monotonic() - sent:.2f} s after Ctrl-C")
    assert status != 0
    assert "app_canary" not in _routing(stack_env)
    state = json.loads(stack_env.layout.state_file.read_text())
    assert not state.get("canary")
    assert stack_env.status()["version"] == "v1"


def test_canary_that_is_never_ready_fails_and_keeps_the_stable_version(
    stack_env: Stack, tmp_path: Path
) -> None:
    stack_env.deploy("v2", "bluegreen")
    stack_env.deploy("v1", "bluegreen")  # an older version is on record to roll back to
    result = _canary(stack_env, tmp_path, "crash", expect={"aborted": "== 1"})
    assert result.outcome is Outcome.FAILED
    assert "step 1: deploy command failed" in result.message
    assert "failed its readiness checks" in result.message
    # on_abort took the (never routed) canary out, and did not go back to another version
    assert result.measured["on_abort_exit_status"] == 0
    assert result.measured["version_after"] == "v1"
    assert stack_env.status()["version"] == "v1"
    assert "app_canary" not in _routing(stack_env)


def _rolling(stack: Stack, tmp_path: Path, fault: str = "", **settings: Any) -> CheckResult:
    steps = [{"instance": 1, "pause": "5s"}, {"instance": 2, "pause": "4s"}, {"instance": 3}]
    target = "examples/deploy/deploy-rolling v2 --instances 3" + (
        f" --fault {fault}" if fault else ""
    )
    return _canary(stack, tmp_path, fault, target=target, steps=steps, **settings)


def test_good_rolling_deploy_replaces_every_instance(stack_env: Stack, tmp_path: Path) -> None:
    result = _rolling(stack_env, tmp_path, expect={"aborted": "== 0", "capacity_pct": ">= 99%"})
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert [s["instance"] for s in measured["steps"]] == [1, 2, 3]
    assert all(s["verdict"] == "pass" for s in measured["steps"][:2])
    assert measured["version_after"] == "v2"
    assert measured["capacity_pct"] == 100
    status = stack_env.status()
    versions = {
        p["version"] for n, p in status["parts"].items() if p.get("live") and "version" in p
    }
    assert versions == {"v2"}


def test_faulty_rolling_deploy_is_aborted_and_rolled_back(stack_env: Stack, tmp_path: Path) -> None:
    result = _rolling(
        stack_env, tmp_path, "errors=50%", expect={"aborted": "== 1", "rollback_s": "< 2m"}
    )
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert measured["aborted_at_step"] == 1 and measured["bad_answers"] > 0
    assert measured["version_after"] == "v1"
    status = stack_env.status()
    versions = {
        p["version"] for n, p in status["parts"].items() if p.get("live") and "version" in p
    }
    assert versions == {"v1"}


LOAD = {"paths": ["/work?ms=10"], "users": 3, "wait": [0.02, 0.05], "warmup": "1s", "cooldown": 0}


def test_under_load_thresholds_abort_a_canary(stack_env: Stack, tmp_path: Path) -> None:
    # only Locust's figures judge this canary: its users' failures abort it (k6's abortOnFail)
    result = _canary(
        stack_env,
        tmp_path,
        "errors=50%",
        analysis={"load": {"failure_ratio": "< 2%"}, "min_answers": 5},
        under_load=LOAD,
        expect={"aborted": "== 1", "rollback_s": "< 2m"},
        timeout=120,
    )
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert "under load: failure_ratio" in measured["abort_reason"]
    load = measured["steps"][0]["load"]
    assert load["requests"] > 0 and load["failures"] > 0
    assert measured["load_failures_during"] > 0
    assert measured["version_after"] == "v1"


def test_good_canary_under_load_passes(stack_env: Stack, tmp_path: Path) -> None:
    result = _canary(
        stack_env,
        tmp_path,
        # a proof look needs Locust's failure ratio shown by its bound: at < 5 % about 100
        # clean requests in the step (< 1 % would need some 500, near what 3 users make)
        analysis={**ANALYSIS, "load": {"failure_ratio": "< 5%"}},
        under_load=LOAD,
        expect={"aborted": "== 0", "load_failures_during": "== 0"},
        timeout=120,
    )
    assert result.outcome is Outcome.PASSED, result.message
    assert result.measured["steps"][0]["load"]["requests"] > 0
    assert result.measured["load_requests_during"] > 0


def test_rollback_that_leaves_the_canary_in_is_not_stable(stack_env: Stack, tmp_path: Path) -> None:
    # on_abort "succeeds" but takes nothing out: the canary keeps its 10 % share. A short run of
    # stable answers is likely by chance at that share (0.9^10 = 35 % for ten probes); the run
    # that proves the rollback must be long enough that the share would have shown in it among
    # every answer the settling scans: 42 at 100 ms within 3 s, more than the ~31 answers the
    # settling can see, so the verdict does not depend on chance (a single run's 29 did, 5 %).
    try:
        result = _canary(
            stack_env,
            tmp_path,
            "errors=100%",
            interval="100ms",
            steps=[{"weight": 10, "pause": "15s"}, {"weight": 100}],
            on_abort="true",
            settle_timeout="3s",
            expect={"aborted": "== 1", "rollback_s": "< 2m"},
        )
    finally:
        stack_env.rollback()
    assert result.measured["aborted"] == 1
    assert result.outcome is Outcome.FAILED, result.message
    assert "not stable on v1" in result.message
    assert "rollback_s" not in result.measured


def test_failures_that_name_no_version_are_the_canarys_blast_radius(
    stack_env: Stack, tmp_path: Path
) -> None:
    # the canary is so slow that its answers time out: failed answers with no version. The
    # analysis counts them against the canary; the blast radius and detect_s must too.
    result = _canary(
        stack_env,
        tmp_path,
        "delay=1500ms",
        probe_timeout="300ms",
        expect={"aborted": "== 1", "rollback_s": "< 2m"},
    )
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert measured["steps"][0]["unattributed"] > 0
    assert measured["bad_answers"] >= measured["steps"][0]["unattributed"] > 0
    assert measured["detect_s"] >= 0


def test_good_answers_that_show_no_version_are_the_canarys_failures(
    stack_env: Stack, tmp_path: Path
) -> None:
    # a fifth of the canary's answers are 200s whose body is not the app's (no version in
    # it): not the stable version's answers, so they are the canary's, and bad ones
    result = _canary(
        stack_env,
        tmp_path,
        "garbled=20%",
        expect={"aborted": "== 1", "detect_s": "< 1m"},
    )
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert measured["aborted"] == 1 and measured["aborted_at_step"] == 1
    step = measured["steps"][0]
    assert step["verdict"] == "fail" and step["unattributed"] > 0
    assert step["canary"]["failed"] >= step["unattributed"]
    assert measured["bad_answers"] >= step["unattributed"]
    assert measured["version_after"] == "v1"


def test_steps_without_analysis_prove_no_abort(stack_env: Stack, tmp_path: Path) -> None:
    # nothing judged the new version, so "it was not aborted" is no evidence of anything
    result = _canary(
        stack_env,
        tmp_path,
        steps=[{"weight": 50, "pause": "1s"}, {"weight": 100}],
        analysis=None,
        expect={"aborted": "== 0"},
    )
    assert result.outcome is Outcome.FAILED, result.message
    assert "aborted was not measured" in result.message
    assert result.measured["analysis_looks"] == 0
    assert result.measured["version_after"] == "v2"


def test_an_abort_nobody_expected_fails_the_check(stack_env: Stack, tmp_path: Path) -> None:
    # the deploy did not happen: unless the check expects an abort (a known-bad build deployed
    # on purpose), the canary it rolled back is a failed deploy, whatever else holds
    result = _canary(stack_env, tmp_path, "errors=50%", expect={"duration_s": "< 5m"})
    assert result.measured["aborted"] == 1
    assert result.outcome is Outcome.FAILED, result.message
    assert "aborted at step 1" in result.message
    assert result.measured["version_after"] == "v1"


def test_sigterm_mid_canary_takes_the_new_version_out(stack_env: Stack, tmp_path: Path) -> None:
    # what a CI runner sends on cancel, to a real `pytest --gate` run during a step's pause
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "canary-cancel.yaml").write_text(
        textwrap.dedent(
            f"""
            gate: canary-cancel
            criteria:
              canary:
                - deploy: {ROOT}/examples/deploy/deploy-canary v2
                  health: {stack_env.urls["app"]}/
                  version: {{json: version, expect: v2}}
                  steps: [{{weight: 30, pause: 60s}}, {{weight: 100}}]
                  analysis: {{failure_rate: {{max_increase: "0.5%"}}}}
                  on_abort: {ROOT}/examples/deploy/rollback
                  timeout: 120
            """
        )
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"]
    proc = subprocess.Popen(
        [*command, "-q", "--gate=canary-cancel"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if "app_canary" in _routing(stack_env):
                break
            time.sleep(0.1)
        assert "app_canary" in _routing(stack_env), "the canary took its share"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode != 0, out.decode(errors="replace")[-2000:]
    assert "app_canary" not in _routing(stack_env), out.decode(errors="replace")[-2000:]
    assert not json.loads(stack_env.layout.state_file.read_text()).get("canary")
    assert stack_env.status()["version"] == "v1"


def test_under_load_the_canarys_own_locust_answers_abort_it(
    stack_env: Stack, tmp_path: Path
) -> None:
    # the prober reads only /health, which the fault leaves alone: its answers of both versions
    # are clean. Locust's requests (/work) split by the X-App-Version header show the canary
    # failing half of them against a clean stable version: the same judge aborts the deploy.
    result = _canary(
        stack_env,
        tmp_path,
        "errors=50%",
        health=stack_env.urls["app"] + "/health",
        version={"header": "X-App-Version", "expect": "v2"},
        under_load=LOAD,
        expect={"aborted": "== 1", "rollback_s": "< 2m"},
        timeout=120,
    )
    assert result.outcome is Outcome.PASSED, result.message
    measured = result.measured
    assert "under load, v2 against v1: " in measured["abort_reason"], measured["abort_reason"]
    step = measured["steps"][0]
    assert step["canary"]["failed"] == 0 and step["stable"]["failed"] == 0
    split = step["load"]["by_version"]
    assert split["verdict"] == "fail"
    assert split["canary"]["version"] == "v2" and split["canary"]["failed"] > 0
    assert split["stable"]["version"] == "v1" and split["stable"]["failed"] == 0
    assert measured["version_after"] == "v1"
