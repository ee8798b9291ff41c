"""Verdicts of whole gate runs: criteria, gates and the exit status (design §5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.model import EXIT_FAILED, EXIT_HUMAN_REVIEW, EXIT_PASSED

if TYPE_CHECKING:
    from conftest import GateProject

RELEASE = """
    gate: release
    criteria:
      build:
        title: The build works
        checks:
          - command: "true"
      smoke:
        title: Smoke tests pass
        checks:
          - command: "echo ok"
            expect: {stdout_contains: ok}
"""


def test_all_checks_pass_gives_passed_and_exit_0(project: GateProject) -> None:
    project.production_ready()
    result = project.run("--gate", "production-readiness")
    assert result.ret == EXIT_PASSED
    result.assert_outcomes(passed=7)
    summary = project.gate_summary("production-readiness")
    assert (summary["verdict"], summary["status"]) == ("PASSED", "PRODUCTION_READY")
    assert set(project.criteria("production-readiness").values()) == {"PASS"}
    assert project.summary()["verdict"] == "PASSED"


def test_each_criterion_verdict(project: GateProject) -> None:
    """One run, one criterion per rule; the gate fails on the required ones."""
    project.gate(
        "rules",
        """
        gate: rules
        criteria:
          passing:
            title: two passing checks
            checks:
              - command: "true"
              - command: "echo ok"
          failing:
            title: one of two checks fails
            checks:
              - command: "true"
              - command: "exit 3"
          erroring:
            title: a check that cannot measure errors
            checks:
              - command: "no-such-command-fwgates"
          no-checks:
            title: nothing measures it
          skipped-test:
            title: its only check is a skipped Python test
          xfailed-test:
            title: its only check is an xfail Python test
          setup-error:
            title: a Python test whose fixture raises
          advisory:
            title: advisory and failing
            required: false
            checks:
              - command: "false"
          advisory-not-evaluated:
            title: advisory, nothing measures it
            required: false
        """,
    )
    project.pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("no database")

        @pytest.mark.gate("rules", criterion="skipped-test")
        def test_skipped():
            pytest.skip("no staging host")

        @pytest.mark.gate("rules", criterion="xfailed-test")
        @pytest.mark.xfail(reason="known bug")
        def test_xfailed():
            assert 0

        @pytest.mark.gate("rules", criterion="setup-error")
        def test_setup_error(broken):
            pass
        """
    )
    result = project.run("--gate", "rules")
    assert result.ret == EXIT_FAILED
    assert project.criteria("rules") == {
        "passing": "PASS",
        "failing": "FAIL",
        "erroring": "FAIL",
        "no-checks": "NOT_EVALUATED",
        "skipped-test": "NOT_EVALUATED",
        "xfailed-test": "NOT_EVALUATED",
        "setup-error": "FAIL",
        "advisory": "WARN",
        "advisory-not-evaluated": "WARN",
    }
    assert project.criterion("rules", "erroring")["reason"].startswith(
        "command[no-such-command-fwgates] errored: command not found"
    )
    assert project.criterion("rules", "no-checks")["reason"] == "no checks"
    assert "no staging host" in project.criterion("rules", "skipped-test")["reason"]
    gate = project.gate_summary("rules")
    assert gate["verdict"] == "FAILED"
    assert gate["reason"] == (
        "required criteria: failing FAIL, erroring FAIL, no-checks NOT_EVALUATED, "
        "skipped-test NOT_EVALUATED, xfailed-test NOT_EVALUATED, setup-error FAIL"
    )
    result.stdout.fnmatch_lines(["rules  FAILED", "overall: FAILED (1 gate: 1 failed)"])


def test_criterion_without_checks_fails_the_gate(project: GateProject) -> None:
    """You cannot pass production-readiness without evidence of rollback."""
    project.gate(
        "production-readiness",
        """
        gate: production-readiness
        criteria:
          infrastructure-validation:
            - file: /
          security-compliance:
            - file: /etc
          performance-verification:
            - command: "true"
          monitoring-operational:
            - command: "true"
        """,
    )
    project.performance_figures()
    project.monitoring_figures()
    result = project.run("--gate", "production-readiness")
    assert result.ret == EXIT_FAILED
    result.assert_outcomes(passed=6)
    criteria = project.criteria("production-readiness")
    assert criteria.pop("rollback-capability") == "NOT_EVALUATED"
    assert set(criteria.values()) == {"PASS"}


@pytest.mark.parametrize(
    "selection",
    [["-k", "not test_rollback"], ["--deselect", "test_rollback.py::test_rollback"]],
    ids=["-k", "--deselect"],
)
def test_deselected_python_check_is_not_evaluated(
    project: GateProject, selection: list[str]
) -> None:
    """A marked test that did not run counts, even next to a passing YAML check."""
    project.production_ready()
    project.pytester.makepyfile(
        test_rollback="""
        import pytest

        @pytest.mark.gate("production-readiness", criterion="rollback-capability")
        def test_rollback():
            pass
        """
    )
    result = project.run("--gate", "production-readiness", *selection)
    assert result.ret == EXIT_FAILED
    result.assert_outcomes(passed=7, deselected=1)
    rollback = project.criterion("production-readiness", "rollback-capability")
    assert rollback["verdict"] == "NOT_EVALUATED"
    assert "test_rollback.py::test_rollback: did not run: deselected" in rollback["reason"]
    outcomes = {check["nodeid"]: check["outcome"] for check in rollback["checks"]}
    assert outcomes == {
        "gates/production-readiness.yaml::rollback-capability::rollback[true]": "passed",
        "test_rollback.py::test_rollback": "skipped",
    }


def test_deselected_yaml_check_is_not_evaluated(project: GateProject) -> None:
    project.production_ready()
    result = project.run("--gate", "production-readiness", "-k", "not etc")
    assert result.ret == EXIT_FAILED
    result.assert_outcomes(passed=6, deselected=1)
    security = project.criterion("production-readiness", "security-compliance")
    assert security["verdict"] == "NOT_EVALUATED"
    [check] = security["checks"]
    assert check["nodeid"] == "gates/production-readiness.yaml::security-compliance::file[/etc]"
    assert (check["outcome"], check["message"]) == ("skipped", "did not run: deselected")


def test_checks_after_exitfirst_stop_are_not_evaluated(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          first:
            title: fails first
            checks:
              - command: "false"
          later:
            title: never reached
            checks:
              - command: "true"
        """,
    )
    project.pytester.makepyfile(
        test_later="""
        import pytest

        @pytest.mark.gate("release", criterion="later")
        def test_later():
            pass
        """
    )
    result = project.run("--gate", "release", "-x", "gates", "test_later.py")
    assert result.ret == EXIT_FAILED
    result.assert_outcomes(failed=1)
    assert project.criteria("release") == {"first": "FAIL", "later": "NOT_EVALUATED"}
    later = project.criterion("release", "later")
    assert {c["nodeid"]: c["outcome"] for c in later["checks"]} == {
        "gates/release.yaml::later::command[true]": "skipped",
        "test_later.py::test_later": "skipped",
    }
    assert "did not run (the run stopped before it)" in later["reason"]


def test_catalog_standard_must_be_measured(project: GateProject) -> None:
    """A check that passes but measures none of the criterion's standards proves nothing."""
    project.gate(
        "operations-excellence",
        """
        gate: operations-excellence
        criteria:
          system-availability:
            - command: "true"
        """,
    )
    project.run("--gate", "operations-excellence")
    availability = project.criterion("operations-excellence", "system-availability")
    assert availability["verdict"] == "NOT_EVALUATED"
    assert availability["reason"] == (
        "standard not measured by any check: availability_pct > 99.9% (measured only by "
        "availability, deploy, drill, metric, prometheus, rollback checks)"
    )


@pytest.mark.parametrize(
    ("call", "value", "verdict"),
    [
        ("99.95", 99.95, "INCONCLUSIVE"),  # a share without its counts proves nothing
        ("[39990, 40000]", 99.975, "PASS"),
        ("[1999, 2000]", 99.95, "INCONCLUSIVE"),  # 2000 probes cannot show 99.9 %
        ("99.5", 99.5, "FAIL"),
    ],
)
def test_a_value_a_check_measured_for_a_test_is_held_to_the_catalog_standard(
    project: GateProject, call: str, value: float, verdict: str
) -> None:
    """availability_pct is a check's figure: a test gets it measured (here by the tests'
    stand-in check type, with or without counts), and it is held to the standard's bound."""
    project.stand_in()
    project.pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.gate("operations-excellence", criterion="system-availability")
        def test_availability(gate_check):
            gate_check("stand_in", {{"availability_pct": {call}}})
        """
    )
    project.run("--gate", "operations-excellence")
    availability = project.criterion("operations-excellence", "system-availability")
    assert availability["verdict"] == verdict, availability["reason"]
    [check] = availability["checks"]
    assert check["measured"] == {"availability_pct": value}
    assert check["measured_by"] == {"availability_pct": "stand_in"}
    assert check["thresholds"]["availability_pct"] == "> 99.9%"
    if verdict == "FAIL":
        assert "availability_pct = 99.5 %, expected > 99.9%" in availability["reason"]
    if call.startswith("["):
        events, total = (int(n) for n in call.strip("[]").split(","))
        assert check["support"]["availability_pct"]["count"] == [events, total]
    if verdict == "INCONCLUSIVE" and call.startswith("["):
        assert (
            "1999/2000 events counted: >= 99.76 % at 95 % confidence; 4742 events"
            in (availability["reason"])
        )


def test_failing_advisory_check_keeps_the_gate_passed(project: GateProject) -> None:
    project.gate(
        "release",
        RELEASE
        + """
      docs:
        title: Docs are built
        required: false
        checks:
          - command: "false"
    """,
    )
    result = project.run("--gate", "release")
    # pytest agrees with the gate: a failure that fails no gate is an expected failure
    result.assert_outcomes(passed=2, xfailed=1)
    assert result.ret == EXIT_PASSED
    assert project.criteria("release") == {"build": "PASS", "smoke": "PASS", "docs": "WARN"}
    assert project.verdicts() == {"release": "PASSED"}
    result.stdout.fnmatch_lines(["release  PASSED", "*docs*advisory*0/1*WARN"])


def _with_sign_off(project: GateProject, command: str) -> None:
    """RELEASE and a criterion marked for human review whose one check runs ``command``."""
    project.gate(
        "release",
        RELEASE
        + f"""
      sign-off:
        title: Release notes read by a person
        human_review: true
        checks:
          - command: "{command}"
    """,
    )


def test_human_review_on_a_passing_criterion(project: GateProject) -> None:
    _with_sign_off(project, "true")
    result = project.run("--gate", "release")
    assert result.ret == EXIT_HUMAN_REVIEW
    assert project.criteria("release")["sign-off"] == "PASS"
    gate = project.gate_summary("release")
    assert gate["verdict"] == "HUMAN_REVIEW_REQUIRED"
    assert gate["reason"] == "human review required: sign-off marked"
    result.stdout.fnmatch_lines(["overall: HUMAN_REVIEW_REQUIRED*"])


def test_human_review_does_not_hide_a_failure(project: GateProject) -> None:
    _with_sign_off(project, "false")
    result = project.run("--gate", "release")
    assert result.ret == EXIT_FAILED
    assert project.verdicts() == {"release": "FAILED"}


def test_collection_error_never_passes(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(test_broken="import no_such_module_fwgates")
    result = project.run("--gate", "release")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert project.verdicts() == {"release": "FAILED"}
    assert "1 collection error(s)" in project.gate_summary("release")["reason"]

    result = project.run("--gate", "release", "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == EXIT_FAILED
    assert project.criteria("release") == {"build": "PASS", "smoke": "PASS"}
    assert project.gate_summary("release")["reason"] == "1 collection error(s)"


def test_broken_gate_file_is_a_one_line_collection_error(project: GateProject) -> None:
    project.release_gate('- comand: "true"')
    result = project.run("--gate", "release")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*gates/release.yaml:6: unknown check type 'comand' (did you mean 'command'?)*"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.fnmatch_lines(["release  FAILED", "overall: FAILED (1 gate: 1 failed)"])
    summary = project.summary()
    assert summary["verdict"] == "FAILED"
    [gate] = summary["gates"]
    assert (gate["name"], gate["verdict"], gate["criteria"]) == ("release", "FAILED", [])
    assert gate["reason"].startswith("gate file error: ")
    assert "gates/release.yaml:6: unknown check type 'comand'" in gate["reason"]
    assert summary["run"]["unloadable"] == ["release"]


def test_keyboard_interrupt_never_passes(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(
        test_stop="""
        import pytest

        @pytest.mark.gate("release", criterion="smoke")
        def test_stop():
            raise KeyboardInterrupt
        """
    )
    result = project.run_subprocess("--gate", "release", "gates", "test_stop.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["release  FAILED", "*the run was interrupted*"])
    gate = project.gate_summary("release")
    assert gate["verdict"] == "FAILED"
    assert "the run was interrupted" in gate["reason"]
    assert project.criteria("release") == {"build": "PASS", "smoke": "NOT_EVALUATED"}


@pytest.mark.parametrize(
    "args",
    [["--gate", "release", "-k", "nothing_matches"], ["--gate", "security-compliance"]],
    ids=["all-deselected", "catalog-only"],
)
def test_no_check_ran_fails(project: GateProject, args: list[str]) -> None:
    project.gate("release", RELEASE)
    result = project.run(*args)
    assert result.ret == EXIT_FAILED
    [gate] = project.summary()["gates"]
    assert (gate["verdict"], gate["reason"]) == ("FAILED", "no check ran")


def test_xdist_gives_the_same_verdicts_and_summary(project: GateProject) -> None:
    """Decided once on the controller from every worker's reports."""
    project.production_ready(
        """
      extra-advisory:
        title: An advisory extra
        required: false
        checks:
          - command: "false"
    """,
    )
    project.pytester.makepyfile(
        test_python="""
        import pytest

        @pytest.mark.gate("production-readiness", criterion="performance-verification")
        def test_latency(gate_check):
            gate_check("stand_in", {"p95_ms": {"samples": [120] * 100}})

        @pytest.mark.gate("production-readiness", criterion="performance-verification")
        def test_throughput(gate_record):
            gate_record("requests_per_user", 25)

        @pytest.mark.gate("production-readiness", criterion="monitoring-operational")
        def test_deselected():
            pass

        @pytest.mark.gate("production-readiness", criterion="infrastructure-validation")
        def test_skipped():
            pytest.skip("no host")
        """,
        conftest="""
        def pytest_fwgates_gate_decided(decision, config):
            worker = hasattr(config, "workerinput")
            with open("decided.txt", "a") as out:
                out.write(f"{decision.gate.name} {decision.verdict} worker={worker}\\n")
        """,
    )
    args = ["--gate", "production-readiness", "-k", "not deselected"]
    serial = project.run_subprocess(*args, "--gate-junit", "serial/gates.xml")
    parallel = project.run_subprocess(*args, "-n", "2", "--gate-junit", "xdist/gates.xml")
    assert serial.ret == parallel.ret == EXIT_FAILED
    parallel.stdout.fnmatch_lines(["created: 2/2 workers"])
    assert parallel.stdout.str().count("gate report: ") == 2

    def comparable(path: str) -> list[object]:
        gates = project.summary(path)["gates"]
        for gate in gates:
            for criterion in gate["criteria"]:
                for check in criterion["checks"]:
                    check.pop("duration")
                    check["measured"].pop("duration_s", None)
                    if check["check"].startswith("rollback["):  # timed: figures differ
                        check["measured"], check["evidence"], check["support"] = {}, {}, {}
        return list(gates)

    assert comparable("serial/summary.json") == comparable("xdist/summary.json")
    assert project.summary("xdist/summary.json")["run"]["xdist_workers"] == 2
    assert project.summary("serial/summary.json")["run"]["xdist_workers"] == 0
    assert project.criteria("production-readiness", "xdist/summary.json") == {
        "infrastructure-validation": "NOT_EVALUATED",
        "security-compliance": "PASS",
        "performance-verification": "PASS",
        "monitoring-operational": "NOT_EVALUATED",
        "rollback-capability": "PASS",
        "extra-advisory": "WARN",
    }
    decided = (project.path / "decided.txt").read_text().splitlines()
    assert decided == ["production-readiness FAILED worker=False"] * 2


def test_crashed_xdist_worker_fails_its_check(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(
        test_crash="""
        import os
        import pytest

        @pytest.mark.gate("release", criterion="smoke")
        def test_crash():
            os._exit(3)
        """
    )
    result = project.run_subprocess("--gate", "release", "-n", "2")
    assert result.ret == EXIT_FAILED
    smoke = project.criterion("release", "smoke")
    assert smoke["verdict"] == "FAIL"
    crashed = [c for c in smoke["checks"] if c["nodeid"] == "test_crash.py::test_crash"]
    assert crashed[0]["outcome"] == "error"
    assert "crashed while running 'test_crash.py::test_crash'" in crashed[0]["message"]


@pytest.mark.parametrize(("level", "verdict"), [("90%", "PASS"), ("95%", "INCONCLUSIVE")])
def test_gate_confidence_ini_option(project: GateProject, level: str, verdict: str) -> None:
    """The run's level decides the bound: 2500 of 2500 show >= 99.9 % at 90 %, not at 95 %."""
    project.gate(
        "release",
        """
        gate: release
        criteria:
          approvals:
            title: Changes are approved
            thresholds: {approved_pct: ">= 99.9%"}
        """,
    )
    project.pytester.makeini("[pytest]\ngate_confidence = 150%\n")
    result = project.run("--gate", "release")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*ini gate_confidence: confidence level out of range*"])
    project.pytester.makeini(f"[pytest]\ngate_confidence = {level}\n")
    project.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gate("release", criterion="approvals")
        def test_approvals(gate_record):
            gate_record("approved_pct", counts=(2500, 2500))
        """
    )
    project.run("--gate", "release")
    approvals = project.criterion("release", "approvals")
    assert approvals["verdict"] == verdict, approvals["reason"]
    assert approvals["checks"][0]["support"]["approved_pct"]["count"] == [2500, 2500]


@pytest.mark.parametrize(
    ("call", "verdict", "reason"),
    [
        ('"detected_pct", 99.95', "INCONCLUSIVE", "detected_pct = 99.95 % with no counts"),
        ('"detected_pct", counts=(2995, 2995)', "PASS", ""),
        ('"detected_pct", counts=(80, 80)', "INCONCLUSIVE", "2995 counted events show"),
        ('"detected_pct", 99.5', "FAIL", "detected_pct = 99.5 %, expected >= 99.9%"),
        ('"p95_render_ms", 120', "INCONCLUSIVE", "p95_render_ms = 120 ms with no samples"),
        ('"p95_render_ms", samples=[120] * 20', "INCONCLUSIVE", "59 samples needed"),
        ('"p95_render_ms", samples=[120] * 59', "PASS", ""),
    ],
)
def test_recorded_shares_and_percentiles_need_their_evidence(
    project: GateProject, call: str, verdict: str, reason: str
) -> None:
    """A value a Python test records is held to the bound its counts or samples allow."""
    project.gate(
        "release",
        """
        gate: release
        criteria:
          detection:
            title: Detection
            thresholds: {detected_pct: ">= 99.9%"}
          latency:
            title: Latency
            thresholds: {p95_render_ms: "< 300ms"}
        """,
    )
    criterion = "detection" if "detected" in call else "latency"
    project.pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.gate("release", criterion="{criterion}")
        def test_quality(gate_record):
            gate_record({call})
        """
    )
    project.run("--gate", "release")
    decided = project.criterion("release", criterion)
    assert decided["verdict"] == verdict, decided["reason"]
    [check] = decided["checks"]
    assert reason in check["message"]
