"""Waivers: signed-off exceptions that turn a failure into WAIVED and call for review."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.model import EXIT_FAILED, EXIT_HUMAN_REVIEW

if TYPE_CHECKING:
    from conftest import GateProject

FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()
PAST = (dt.date.today() - dt.timedelta(days=1)).isoformat()

RELEASE = """
    gate: release
    criteria:
      build:
        title: The build works
        checks:
          - command: "true"
      security-scan:
        title: No open findings
        checks:
          - command: "exit 2"
            id: scanner
          - command: "false"
            id: licence-check
          - command: "true"
            id: sbom
      load-test:
        title: Load test run
"""


def waiver(criterion: str, **fields: str) -> str:
    entry = {
        "gate": "release",
        "criterion": criterion,
        "justification": "scanner false positive, see ticket SEC-123",
        "approved_by": "jane.doe",
        "expires": FUTURE,
        **fields,
    }
    lines = [
        f"  - {k}: {v}" if i == 0 else f"    {k}: {v}" for i, (k, v) in enumerate(entry.items())
    ]
    return "\n".join(lines) + "\n"


def waivers_file(*entries: str) -> str:
    return "waivers:\n" + "".join(entries)


@pytest.mark.parametrize("missing", ["justification", "approved_by", "expires"])
def test_waiver_without_a_required_field_is_a_usage_error(
    project: GateProject, missing: str
) -> None:
    project.gate("release", RELEASE)
    lines = waivers_file(waiver("load-test"), waiver("security-scan")).splitlines()
    # the second entry starts on line 7; drop the field from it only
    second = [i for i, line in enumerate(lines) if f" {missing}:" in line][1]
    del lines[second]
    path = project.waivers("\n".join(lines) + "\n")
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {path}:7: waivers[1]: missing key '{missing}'"])
    assert not (project.path / "reports").exists()


def test_waiver_with_a_bad_date_names_its_line(project: GateProject) -> None:
    project.gate("release", RELEASE)
    path = project.waivers(waivers_file(waiver("load-test", expires="2026-02-30")))
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {path}:6: expires: not a date: '2026-02-30'"])


def test_missing_waivers_file_is_a_usage_error(project: GateProject) -> None:
    project.gate("release", RELEASE)
    result = project.run("--gate", "release", "--gate-waivers", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gate-waivers nope.yaml: no such file"])


def test_criterion_waiver_turns_fail_and_not_evaluated_into_waived(
    project: GateProject,
) -> None:
    project.gate("release", RELEASE)
    path = project.waivers(waivers_file(waiver("security-scan"), waiver("load-test")))
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == EXIT_HUMAN_REVIEW
    assert project.criteria("release") == {
        "build": "PASS",
        "security-scan": "WAIVED",
        "load-test": "WAIVED",
    }
    scan = project.criterion("release", "security-scan")
    assert scan["waived_by"] == f"release/security-scan approved by jane.doe until {FUTURE}"
    assert scan["reason"].startswith("waived (scanner failed: exit_status = 2, expected == 0")
    assert scan["reason"].endswith("): scanner false positive, see ticket SEC-123")
    gate = project.gate_summary("release")
    assert gate["verdict"] == "HUMAN_REVIEW_REQUIRED"
    assert gate["status"] == "HUMAN_REVIEW_REQUIRED"
    assert gate["reason"] == "human review required: security-scan waived, load-test waived"
    result.stdout.fnmatch_lines(
        [
            "release  HUMAN_REVIEW_REQUIRED",
            "*security-scan*WAIVED",
            "*waived by release/security-scan approved by jane.doe*",
        ]
    )


def test_check_waivers_waive_only_when_every_failing_check_is_waived(
    project: GateProject,
) -> None:
    project.gate("release", RELEASE)
    scanner = waiver("security-scan", check="scanner")
    licence = waiver("security-scan", check="licence-check", approved_by="lee")
    one = project.waivers(waivers_file(scanner, waiver("load-test")), name="one")
    result = project.run("--gate", "release", "--gate-waivers", str(one))
    assert result.ret == EXIT_FAILED
    assert project.criteria("release")["security-scan"] == "FAIL"

    both = project.waivers(waivers_file(scanner, licence, waiver("load-test")), name="both")
    result = project.run("--gate", "release", "--gate-waivers", str(both))
    assert result.ret == EXIT_HUMAN_REVIEW
    scan = project.criterion("release", "security-scan")
    assert scan["verdict"] == "WAIVED"
    assert scan["waived_by"] == (
        f"release/security-scan/scanner approved by jane.doe until {FUTURE}; "
        f"release/security-scan/licence-check approved by lee until {FUTURE}"
    )


def test_check_waiver_does_not_waive_a_criterion_without_checks(project: GateProject) -> None:
    project.gate("release", RELEASE)
    path = project.waivers(
        waivers_file(waiver("security-scan"), waiver("load-test", check="anything"))
    )
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == EXIT_FAILED
    assert project.criteria("release")["load-test"] == "NOT_EVALUATED"


def test_waiver_of_a_python_check_by_node_id(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(
        test_load="""
        import pytest

        @pytest.mark.gate("release", criterion="load-test")
        def test_load():
            assert False, "p95 too high"
        """
    )
    path = project.waivers(
        waivers_file(waiver("security-scan"), waiver("load-test", check="test_load.py::test_load"))
    )
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == EXIT_HUMAN_REVIEW
    assert project.criteria("release")["load-test"] == "WAIVED"


def test_expired_waiver_is_ignored_and_said_so(project: GateProject) -> None:
    project.gate("release", RELEASE)
    path = project.waivers(waivers_file(waiver("security-scan", expires=PAST), waiver("load-test")))
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == EXIT_FAILED
    assert project.criteria("release")["security-scan"] == "FAIL"
    warning = (
        f"waiver expired on {PAST} and was ignored: release/security-scan approved by "
        f"jane.doe until {PAST} ({path}:2)"
    )
    gate = project.gate_summary("release")
    assert gate["warnings"] == [warning]
    assert gate["verdict"] == "FAILED"
    result.stdout.fnmatch_lines([f"  warning: waiver expired on {PAST} and was ignored:*"])


def test_waiver_expiring_today_is_still_valid(project: GateProject) -> None:
    project.gate("release", RELEASE)
    today = dt.date.today().isoformat()
    path = project.waivers(
        waivers_file(waiver("security-scan", expires=today), waiver("load-test", expires=today))
    )
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == EXIT_HUMAN_REVIEW
    assert project.gate_summary("release")["warnings"] == []


def test_waivers_from_the_ini_file(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.waivers(waivers_file(waiver("security-scan"), waiver("load-test")))
    project.pytester.makeini("[pytest]\ngate_waivers = waivers.yaml\n")
    result = project.run("--gate", "release")
    assert result.ret == EXIT_HUMAN_REVIEW
    assert project.verdicts() == {"release": "HUMAN_REVIEW_REQUIRED"}


def test_waived_included_gate_needs_review_in_the_includer(project: GateProject) -> None:
    project.gate(
        "production-readiness",
        """
        gate: production-readiness
        criteria:
          infrastructure-validation: [{file: /}]
          security-compliance: [{file: /etc}]
          performance-verification: [{command: "true"}]
          monitoring-operational: [{command: "true"}]
        """,
    )
    project.monitoring_figures()
    project.handoff_ready()
    project.performance_figures()
    result = project.run("--gate", "operations-handoff")
    assert result.ret == EXIT_FAILED
    assert project.criteria("operations-handoff")["production-readiness"] == "FAIL"

    rollback = waiver("rollback-capability", gate="production-readiness")
    path = project.waivers(waivers_file(rollback))
    result = project.run("--gate", "operations-handoff", "--gate-waivers", str(path))
    assert result.ret == EXIT_HUMAN_REVIEW
    assert project.verdicts() == {
        "production-readiness": "HUMAN_REVIEW_REQUIRED",
        "operations-handoff": "HUMAN_REVIEW_REQUIRED",
    }
    assert project.criteria("production-readiness")["rollback-capability"] == "WAIVED"
    assert project.criteria("operations-handoff")["production-readiness"] == "PASS"


ADVISORY = """
    gate: release
    criteria:
      build:
        title: The build works
        checks:
          - command: "true"
      cost:
        title: Cost goes down
        required: false
        checks:
          - command: "false"
"""


def test_a_waiver_on_an_advisory_failure_leaves_it_a_warning(project: GateProject) -> None:
    project.gate("release", ADVISORY)
    path = project.waivers(waivers_file(waiver("cost")))
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    assert result.ret == 0
    assert project.criteria("release") == {"build": "PASS", "cost": "WARN"}
    assert project.verdicts() == {"release": "PASSED"}


def test_human_review_on_a_failing_advisory_criterion_still_needs_review(
    project: GateProject,
) -> None:
    project.gate(
        "release",
        ADVISORY.replace("required: false", "required: false\n        human_review: true"),
    )
    result = project.run("--gate", "release")
    assert result.ret == EXIT_HUMAN_REVIEW
    assert project.criteria("release")["cost"] == "WARN"
    assert project.gate_summary("release")["reason"] == "human review required: cost marked"


def test_a_waiver_that_matches_nothing_is_reported(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the warnings on one line each
    project.gate("release", RELEASE)
    path = project.waivers(
        waivers_file(waiver("securty-scan"), waiver("security-scan", check="scaner"))
    )
    result = project.run("--gate", "release", "--gate-waivers", str(path))
    result.stdout.fnmatch_lines(
        [
            "*warning: waiver matches no criterion of release: release/securty-scan*",
            "*warning: waiver matches no check of release/security-scan: */scaner*",
        ]
    )
    warnings = project.gate_summary("release")["warnings"]
    assert len(warnings) == 2
