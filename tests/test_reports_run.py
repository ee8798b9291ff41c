"""What a gate run writes: the terminal table, gate JUnit XML, summary.json, --junitxml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import xmlschema

from pytest_fwgates.model import EXIT_FAILED

if TYPE_CHECKING:
    from conftest import GateProject

XSD = Path(__file__).parent / "data" / "junit-10.xsd"

RELEASE = """
    gate: release
    title: Release gate
    criteria:
      build:
        title: The build works
        checks:
          - command: "true"
            id: compile
          - command: "exit 3"
            id: unit-tests
      performance:
        title: Fast enough
        thresholds:
          duration_s: "< 30s"
        checks:
          - command: "true"
            id: quick
      docs:
        title: Docs are built
        required: false
        checks:
          - command: "false"
            id: docs-build
      capacity:
        title: Capacity is planned
"""


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def suites(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {suite.get("name", ""): suite for suite in root.iter("testsuite")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {f"{case.get('classname')}::{case.get('name')}": case for case in suite.iter("testcase")}


def failure_message(case: ET.Element) -> str | None:
    failure = case.find("failure")
    assert failure is not None
    return failure.get("message")


def test_terminal_table(project: GateProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    project.gate("release", RELEASE)
    result = project.run("--gate", "release")
    assert result.ret == EXIT_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= gate verdicts =*",
            "release  FAILED",
            "  criterion    kind      checks  measured vs threshold * verdict",
            "  build        required     1/2  exit_status = 3, expected == 0 * FAIL",
            "      unit-tests failed: exit_status = 3, expected == 0",
            "  performance  required     1/1  duration_s = * s, expected < 30s * PASS",
            "  docs         advisory     0/1  exit_status = 1, expected == 0 * WARN",
            "      advisory: docs-build failed: exit_status = 1, expected == 0",
            "  capacity     required     0/0  - * NOT_EVALUATED",
            "      no checks",
            "  required criteria: build FAIL, capacity NOT_EVALUATED",
            "",
            "overall: FAILED (1 gate: 1 failed)",
            f"gate report: {project.path / 'reports' / 'gates.xml'}",
            f"gate report: {project.path / 'reports' / 'summary.json'}",
        ]
    )


def test_gate_junit_is_valid_and_complete(
    project: GateProject, junit_schema: xmlschema.XMLSchema
) -> None:
    project.gate("release", RELEASE)
    project.production_ready()
    result = project.run(
        "--gate", "release", "--gate", "production-readiness", "--gate-junit", "out/ci.xml"
    )
    assert result.ret == EXIT_FAILED
    path = project.path / "out" / "ci.xml"
    junit_schema.validate(str(path))
    assert (project.path / "out" / "summary.json").is_file()
    assert not (project.path / "reports").exists()

    found = suites(path)
    assert list(found) == ["release", "production-readiness"]
    release = found["release"]
    properties = {p.get("name"): p.get("value") for p in release.iter("property")}
    assert properties["gate.verdict"] == "FAILED"
    assert properties["criterion.build.verdict"] == "FAIL"
    assert properties["criterion.docs.verdict"] == "WARN"
    assert properties["criterion.capacity.verdict"] == "NOT_EVALUATED"
    assert properties["threshold.performance.duration_s"] == "< 30s"

    release_cases = cases(release)
    assert list(release_cases) == [
        "release.build::compile",
        "release.build::unit-tests",
        "release.performance::quick",
        "release.docs::docs-build",
        "release.criteria::criterion:build",
        "release.criteria::criterion:performance",
        "release.criteria::criterion:docs",
        "release.criteria::criterion:capacity",
        "release::gate:release",
    ]
    failed = {name for name, case in release_cases.items() if case.find("failure") is not None}
    # only what fails the gate is red: docs-build failed, but docs is advisory (WARN)
    assert failed == {
        "release.build::unit-tests",
        "release.criteria::criterion:build",
        "release.criteria::criterion:capacity",
        "release::gate:release",
    }
    unit = release_cases["release.build::unit-tests"]
    assert failure_message(unit) == "exit_status = 3, expected == 0"
    out = unit.findtext("system-out") or ""
    assert "exit_status = 3 (expected == 0)" in out
    assert "node: gates/release.yaml::build::unit-tests" in out
    gate_case = release_cases["release::gate:release"]
    assert failure_message(gate_case) == (
        "gate release failed: required criteria: build FAIL, capacity NOT_EVALUATED"
    )
    docs = release_cases["release.docs::docs-build"]
    assert docs.find("error") is None
    docs_out = docs.findtext("system-out") or ""
    assert docs_out.startswith("outcome: failed (does not fail the gate: advisory criterion, WARN)")
    assert "message: exit_status = 1, expected == 0" in docs_out
    assert (release.get("tests"), release.get("failures")) == ("9", "4")

    passed = cases(found["production-readiness"])
    assert passed["production-readiness::gate:production-readiness"].find("failure") is None
    assert all(case.find("failure") is None for case in passed.values())


def test_gate_junit_from_ini_and_default(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.run("--gate", "release")
    assert (project.path / "reports" / "gates.xml").is_file()
    assert (project.path / "reports" / "summary.json").is_file()

    project.pytester.makeini("[pytest]\ngate_junit = build/gate-results.xml\n")
    sub = project.pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        project.run("--gate", "release", "..")
    # relative to the rootdir, not to where pytest was started
    assert (project.path / "build" / "gate-results.xml").is_file()
    assert (project.path / "build" / "summary.json").is_file()


def test_human_review_gate_case_fails_too(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          sign-off:
            title: Read by a person
            human_review: true
            checks:
              - command: "true"
        """,
    )
    project.run("--gate", "release")
    release = cases(suites(project.path / "reports" / "gates.xml")["release"])
    failure = release["release::gate:release"].find("failure")
    assert failure is not None
    assert failure.get("type") == "HUMAN_REVIEW_REQUIRED"
    # said once, not "human review required: human review required: ..."
    assert failure.get("message") == "human review required: sign-off marked"


def test_summary_json(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.run("--gate", "release")
    summary = project.summary()
    assert summary["schema"] == "fwgates-summary/1"
    assert summary["verdict"] == "FAILED"
    assert summary["run"]["requested"] == ["release"]
    assert summary["run"]["gates"] == ["release"]
    [gate] = summary["gates"]
    assert (gate["name"], gate["title"], gate["verdict"]) == ("release", "Release gate", "FAILED")
    assert [(c["id"], c["required"], c["verdict"]) for c in gate["criteria"]] == [
        ("build", True, "FAIL"),
        ("performance", True, "PASS"),
        ("docs", False, "WARN"),
        ("capacity", True, "NOT_EVALUATED"),
    ]
    build = gate["criteria"][0]
    assert build["reason"] == "unit-tests failed: exit_status = 3, expected == 0"
    unit = build["checks"][1]
    assert unit["nodeid"] == "gates/release.yaml::build::unit-tests"
    assert unit["outcome"] == "failed"
    assert unit["measured"]["exit_status"] == 3
    assert unit["thresholds"] == {"exit_status": "== 0"}
    assert unit["message"] == "exit_status = 3, expected == 0"
    assert unit["location"] == f"{project.path / 'gates' / 'release.yaml'}:9"
    quick = gate["criteria"][1]["checks"][0]
    assert quick["thresholds"] == {"duration_s": "< 30s", "exit_status": "== 0"}
    assert 0 <= quick["measured"]["duration_s"] < 30


def test_pytest_junitxml_reports_gate_items(
    project: GateProject, junit_schema: xmlschema.XMLSchema
) -> None:
    project.gate("release", RELEASE)
    result = project.run("--gate", "release", "--junitxml", "pytest.xml")
    assert result.ret == EXIT_FAILED
    path = project.path / "pytest.xml"
    junit_schema.validate(str(path))
    [suite] = suites(path).values()
    found = cases(suite)
    assert list(found) == [
        "gates.release.yaml.build::compile",
        "gates.release.yaml.build::unit-tests",
        "gates.release.yaml.performance::quick",
        "gates.release.yaml.docs::docs-build",
        "gate::release",  # the gate's verdict: it did not pass
    ]
    verdict = found["gate::release"].find("failure")
    assert verdict is not None
    assert verdict.get("message", "").startswith("gate release FAILED: required criteria: ")
    failure = found["gates.release.yaml.build::unit-tests"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith(
        f"{project.path / 'gates' / 'release.yaml'}:9: FAILED: exit_status = 3, expected == 0"
    )
    assert found["gates.release.yaml.build::compile"].find("failure") is None


SECRET_COMMANDS = """
    gate: release
    criteria:
      api:
        title: The API answers
        checks:
          - command: "sh show-header.sh"
            id: header
          - command: "echo token is ${api_token}; exit 1"
            id: token
          - command: "echo ${api_token}"
            id: token-ok
"""


@pytest.mark.parametrize("verbosity", [[], ["-vv", "-rA"]], ids=["default", "verbose"])
def test_no_secret_in_any_output(project: GateProject, verbosity: list[str]) -> None:
    project.gate("release", SECRET_COMMANDS)
    project.pytester.path.joinpath("show-header.sh").write_text(
        'echo "GET /health"\necho "Authorization: Bearer abc123secret"\nexit 1\n'
    )
    result = project.run(
        "--gate",
        "release",
        "--gate-var",
        "api_token=tok-9f8e7d6c",
        "--junitxml",
        "pytest.xml",
        *verbosity,
    )
    assert result.ret == EXIT_FAILED
    result.stdout.fnmatch_lines(["  stdout = GET /health", "Authorization: Bearer [*][*][*]"])
    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        "junit": (project.path / "reports" / "gates.xml").read_text(),
        "summary": (project.path / "reports" / "summary.json").read_text(),
        "pytest junit": (project.path / "pytest.xml").read_text(),
    }
    for name, text in outputs.items():
        assert "abc123secret" not in text, name
        assert "tok-9f8e7d6c" not in text, name
    [header, token, token_ok] = project.criterion("release", "api")["checks"]
    assert header["measured"]["stdout"] == "GET /health\nAuthorization: Bearer ***"
    assert token["measured"]["stdout"] == "token is ***"
    assert token_ok["measured"]["stdout"] == "***"


def test_a_secret_written_in_a_command_is_masked_in_its_check_id(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          api:
            title: The API answers
            checks:
              - command: "echo Authorization: Bearer abc123secret"
        """,
    )
    result = project.run("--gate", "release", "-rA")
    assert result.ret == 0
    everything = (
        result.stdout.str()
        + (project.path / "reports" / "gates.xml").read_text()
        + (project.path / "reports" / "summary.json").read_text()
    )
    assert "abc123secret" not in everything
    assert "command[echo Authorization: Bearer ***]" in everything
