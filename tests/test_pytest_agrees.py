"""pytest's own outcome agrees with the gate's, in the terminal and in ``--junitxml``: a
failure that fails no gate (an advisory criterion, a waiver) is an expected failure (xfail),
a check that could not measure (a timeout) is an error, a check that missed its threshold a
failure. CI dashboards read pytest's JUnit too."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.model import EXIT_FAILED, EXIT_HUMAN_REVIEW, EXIT_PASSED

if TYPE_CHECKING:
    from conftest import GateProject

GATE = """
    gate: release
    criteria:
      build:
        title: The build works
        checks:
          - command: "true"
            id: compile
      docs:
        title: Docs are built
        required: {required}
        checks:
          - command: "{command}"
            id: docs-check
            timeout: 0.5
"""
PYTHON_TARGET = """
import pytest


@pytest.mark.gate("release", criterion="docs")
def test_docs():
    assert False, "docs missing"
"""
WAIVERS = """
    waivers:
      - gate: release
        criterion: docs
        {check}
        justification: docs move to the new site next sprint
        approved_by: docs-lead
        expires: 2099-12-31
"""


def pytest_cases(path: str) -> dict[str, ET.Element]:
    """Test case name -> element of pytest's own JUnit."""
    return {case.get("name", ""): case for case in ET.parse(path).getroot().iter("testcase")}


def build(project: GateProject, kind: str, required: bool, command: str = "false") -> str:
    """The gate with its ``docs`` criterion failing through a YAML check or a marked test;
    returns the pytest JUnit test case name of the failing item."""
    project.gate(
        "release",
        GATE.format(
            required="true" if required else "false",
            command=command if kind == "yaml" else "true",
        ),
    )
    if kind == "python":
        project.pytester.makepyfile(test_docs=PYTHON_TARGET)
        return "test_docs"
    return "docs-check"


@pytest.mark.parametrize("kind", ["yaml", "python"])
@pytest.mark.parametrize("why", ["advisory", "criterion-waiver", "check-waiver"])
def test_a_failure_that_fails_no_gate_is_an_xfail_in_pytest(
    project: GateProject, kind: str, why: str
) -> None:
    name = build(project, kind, required=why != "advisory")
    args = ["--gate", "release", "--junitxml", "pytest.xml", "-rx"]
    if why != "advisory":
        check_id = name if kind == "yaml" else "test_docs.py::test_docs"
        check = f"check: {check_id}" if why == "check-waiver" else ""
        project.waivers(WAIVERS.format(check=check))
        args += ["--gate-waivers", "waivers.yaml"]
    result = project.run(*args)
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and outcomes.get("xfailed") == 1, outcomes
    if why == "advisory":
        assert result.ret == EXIT_PASSED
        assert project.criteria("release")["docs"] == "WARN"
        result.stdout.fnmatch_lines(["XFAIL*does not fail the gate (advisory criterion*"])
    else:
        assert result.ret == EXIT_HUMAN_REVIEW
        assert project.criteria("release")["docs"] == "WAIVED"
        result.stdout.fnmatch_lines(["XFAIL*does not fail the gate (waived: *docs-lead*"])
    case = pytest_cases(str(project.path / "pytest.xml"))[name]
    assert case.find("failure") is None and case.find("error") is None
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("type") == "pytest.xfail"
    assert "does not fail the gate" in (skipped.get("message") or "")
    # the gate still holds the failure itself
    check_id = name if kind == "yaml" else "test_docs.py::test_docs"
    assert project.checks("release", "docs")[check_id]["outcome"] == "failed"


@pytest.mark.parametrize("kind", ["yaml", "python"])
def test_runxfail_shows_the_failure_and_keeps_the_verdict(project: GateProject, kind: str) -> None:
    build(project, kind, required=False)
    result = project.run("--gate", "release", "--runxfail")
    result.assert_outcomes(passed=1 if kind == "yaml" else 2, failed=1)
    assert result.ret == EXIT_PASSED  # the gate's exit: an advisory failure blocks nothing
    assert project.criteria("release")["docs"] == "WARN"


@pytest.mark.parametrize("kind", ["yaml", "python"])
def test_a_required_failure_is_a_failure_in_pytest_too(project: GateProject, kind: str) -> None:
    name = build(project, kind, required=True)
    result = project.run("--gate", "release", "--junitxml", "pytest.xml")
    result.assert_outcomes(passed=1 if kind == "yaml" else 2, failed=1)
    assert result.ret == EXIT_FAILED
    assert pytest_cases(str(project.path / "pytest.xml"))[name].find("failure") is not None


def test_a_timeout_is_an_error_in_pytest_junit(project: GateProject) -> None:
    build(project, "yaml", required=True, command="sleep 5")
    result = project.run("--gate", "release", "--junitxml", "pytest.xml")
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == EXIT_FAILED
    case = pytest_cases(str(project.path / "pytest.xml"))["docs-check"]
    error = case.find("error")
    assert case.find("failure") is None and error is not None
    assert "did not finish within 0.5 s" in (error.get("message") or "")
    [check] = project.criterion("release", "docs")["checks"]
    assert check["outcome"] == "error"
    # and in the gate JUnit
    gate_case = pytest_cases(str(project.path / "reports" / "gates.xml"))["docs-check"]
    assert gate_case.find("error") is not None and gate_case.find("failure") is None


def test_a_check_error_in_a_fixture_is_an_error_of_the_test(project: GateProject) -> None:
    """The pytest way for a marked test: measure in a fixture, judge in the test."""
    project.gate("release", GATE.format(required="true", command="true"))
    project.pytester.makepyfile(
        test_docs="""
        import pytest


        @pytest.fixture
        def measured(gate_check):
            return gate_check("command", "sleep 5", timeout=0.5)


        @pytest.mark.gate("release", criterion="docs")
        def test_docs(measured):
            assert measured.measured["exit_status"] == 0
        """
    )
    result = project.run("--gate", "release")
    result.assert_outcomes(passed=2, errors=1)
    checks = project.checks("release", "docs")
    assert checks["test_docs.py::test_docs"]["outcome"] == "error"


@pytest.mark.parametrize("option", ["--setup-only", "--setup-plan"])
def test_runs_that_only_set_up_run_no_check(project: GateProject, option: str) -> None:
    """Checks measure in their items' setup: a run of setups only must not run them."""
    project.release_gate('- command: "touch ran-it"')
    result = project.run("--gate", "release", option)
    assert result.ret == pytest.ExitCode.OK
    assert not (project.path / "ran-it").exists()
    assert not (project.path / "reports" / "summary.json").exists()
