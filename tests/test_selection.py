"""What a gate run selects: --gate, markers, included gates, --gate-list, gate folders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.model import EXIT_FAILED, EXIT_PASSED

if TYPE_CHECKING:
    from conftest import GateProject

CATALOG_GATES = sorted(p.stem for p in (Path(__file__).parent.parent / "gates").glob("*.yaml"))

RELEASE = """
    gate: release
    criteria:
      build:
        title: The build works
        checks:
          - command: "true"
      smoke:
        title: Smoke tests pass
"""

TESTS = """
    import pytest

    @pytest.mark.gate("release", criterion="smoke")
    def test_smoke():
        pass

    @pytest.mark.gate("production-readiness", criterion="rollback-capability")
    def test_rollback(gate_record):
        gate_record("rollback_drills", 1)

    def test_unrelated():
        pass
"""


def test_gate_runs_its_yaml_checks_and_marked_tests_only(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(test_app=TESTS)
    project.pytester.mkdir("tests").joinpath("test_more.py").write_text(
        "def test_more():\n    pass\n"
    )
    result = project.run("--gate", "release", "-v")
    assert result.ret == EXIT_PASSED
    result.assert_outcomes(passed=2, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "gates/release.yaml::build::command?true? PASSED*",
            "test_app.py::test_smoke PASSED*",
        ]
    )
    result.stdout.no_fnmatch_line("*test_unrelated*PASSED*")
    assert project.criteria("release") == {"build": "PASS", "smoke": "PASS"}
    [smoke] = project.criterion("release", "smoke")["checks"]
    assert (smoke["nodeid"], smoke["outcome"]) == ("test_app.py::test_smoke", "passed")


def test_gate_files_join_path_arguments(project: GateProject) -> None:
    """Only the tests named on the command line, plus the gate's own checks."""
    project.gate("release", RELEASE)
    project.pytester.makepyfile(test_app=TESTS, test_other="def test_other():\n    pass\n")
    result = project.run("--gate", "release", "test_other.py")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == EXIT_FAILED
    assert project.criteria("release") == {"build": "PASS", "smoke": "NOT_EVALUATED"}


def test_gate_option_is_repeatable(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.production_ready()
    project.pytester.makepyfile(test_app=TESTS)
    result = project.run("--gate", "release", "--gate", "production-readiness", "--gate=release")
    result.assert_outcomes(passed=10, deselected=1)
    assert result.ret == EXIT_PASSED
    assert project.verdicts() == {"release": "PASSED", "production-readiness": "PASSED"}
    result.stdout.fnmatch_lines(["overall: PASSED (2 gates: 2 passed)"])


def test_without_gate_option_nothing_changes(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(test_app=TESTS)
    result = project.run()
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*gate verdicts*")
    assert not (project.path / "reports").exists()


def test_unknown_gate_is_a_usage_error(project: GateProject) -> None:
    result = project.run("--gate=production-readines")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --gate: unknown gate 'production-readines' "
            "(did you mean 'production-readiness'?); known gates: " + ", ".join(CATALOG_GATES)
        ]
    )
    result = project.run("--gate=unknown")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gate: unknown gate 'unknown'; known gates: *"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            '"relase", criterion="smoke"',
            "test_bad.py:2: unknown gate 'relase' (did you mean 'release'?); known gates: *",
        ),
        (
            '"release", criterion="smok"',
            "test_bad.py:2: unknown criterion 'smok' of gate release; criteria: build, smoke",
        ),
        ('"release"', "test_bad.py:2: @pytest.mark.gate('release') needs criterion='ID'"),
        ("", "test_bad.py:2: @pytest.mark.gate needs a gate name: gate('NAME', criterion='ID')"),
    ],
    ids=["gate", "criterion", "no-criterion", "no-gate"],
)
def test_bad_marker_is_a_one_line_error(project: GateProject, marker: str, message: str) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(
        test_bad=f"""
        import pytest
        @pytest.mark.gate({marker})
        def test_it():
            pass
        """
    )
    result = project.run("--gate", "release")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad.py*", message])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert project.verdicts() == {"release": "FAILED"}


def test_bad_marker_under_xdist_is_the_same_error(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(
        test_bad="""
        import pytest
        @pytest.mark.gate("release", criterion="smok")
        def test_it():
            pass
        """
    )
    result = project.run_subprocess("--gate", "release", "-n", "2")
    result.stdout.fnmatch_lines(
        ["test_bad.py:2: unknown criterion 'smok' of gate release; criteria: build, smoke"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.INTERNAL_ERROR)
    assert project.verdicts() == {"release": "FAILED"}


def test_marker_of_another_gate_is_deselected(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makepyfile(test_app=TESTS)
    result = project.run("--gate", "production-readiness")
    result.assert_outcomes(passed=1, deselected=2)
    assert result.ret == EXIT_FAILED
    rollback = project.criterion("production-readiness", "rollback-capability")
    [check] = rollback["checks"]
    assert (check["outcome"], check["measured"]) == ("passed", {"rollback_drills": 1.0})
    # the test ran, but recovery_s is evidence only a rollback check gives
    assert rollback["verdict"] == "NOT_EVALUATED"
    assert "recovery_s < 2m (measured only by rollback checks)" in rollback["reason"]


def test_gate_list(project: GateProject) -> None:
    project.gate("release", RELEASE)
    result = project.run("--gate-list")
    assert result.ret == 0
    lines = result.stdout.lines
    listed = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert listed == sorted([*CATALOG_GATES, "release"])
    result.stdout.fnmatch_lines(
        [
            "operations-excellence  (phase 8, earns EXCELLENCE_ACHIEVED)",
            "  Operations excellence   [catalog]",
            "  - system-availability * required  System availability is above 99.9 %"
            "  ?availability_pct > 99.9%; 0 checks?",
            "*cost-management * advisory *",
            "operations-handoff  (phase 7->8, earns OPERATIONS_HANDOFF_READY)",
            "  - production-readiness * includes  included gate production-readiness passes",
            "production-readiness  (phase 7, earns PRODUCTION_READY)",
            "  - infrastructure-validation  required *",
            "  - rollback-capability * required *",
            "release",
            f"  release   [{project.path / 'gates' / 'release.yaml'}]",
            "  - build  required  The build works  [1 checks]",
            "  - smoke  required  Smoke tests pass  [0 checks]",
        ]
    )
    result.stdout.no_fnmatch_line("*test session starts*")


def test_gate_list_with_a_broken_gate_file(project: GateProject) -> None:
    project.gate("release", "gate: release\ncriteria: [oops]\n")
    result = project.run("--gate-list")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["release  (cannot be loaded)", "  error: *release.yaml:2: criteria: must be a mapping*"]
    )


def test_including_gate_decides_the_included_one(project: GateProject) -> None:
    project.production_ready()
    project.handoff_ready()
    project.pytester.makepyfile(
        test_rollback="""
        import pytest

        @pytest.mark.gate("production-readiness", criterion="rollback-capability")
        def test_rollback():
            pass
        """
    )
    result = project.run("--gate", "operations-handoff")
    result.assert_outcomes(passed=15)
    assert result.ret == EXIT_PASSED
    assert project.verdicts() == {
        "production-readiness": "PASSED",
        "operations-handoff": "PASSED",
    }
    handoff = project.gate_summary("operations-handoff")
    assert handoff["status"] == "OPERATIONS_HANDOFF_READY"
    assert handoff["criteria"][0]["id"] == "production-readiness"
    assert handoff["criteria"][0]["verdict"] == "PASS"
    result.stdout.fnmatch_lines(
        [
            "production-readiness  PASSED  (PRODUCTION_READY)",
            "operations-handoff  PASSED  (OPERATIONS_HANDOFF_READY)",
            "*production-readiness*required*PASS",
        ]
    )

    result = project.run("--gate", "operations-handoff", "--deselect", "test_rollback.py")
    assert result.ret == EXIT_FAILED
    assert project.verdicts() == {
        "production-readiness": "FAILED",
        "operations-handoff": "FAILED",
    }
    included = project.criterion("operations-handoff", "production-readiness")
    assert included["verdict"] == "FAIL"
    assert included["reason"] == (
        "gate production-readiness: required criteria: rollback-capability NOT_EVALUATED"
    )


def test_gate_dir_option_and_ini(project: GateProject) -> None:
    project.pytester.makefile(".yaml", **{"quality/release": RELEASE})
    result = project.run("--gate", "release")
    assert result.ret == pytest.ExitCode.USAGE_ERROR

    result = project.run("--gate", "release", "--gate-dir", "quality")
    result.assert_outcomes(passed=1)
    assert project.criteria("release") == {"build": "PASS", "smoke": "NOT_EVALUATED"}

    result = project.run("--gate", "release", "--gate-dir", "missing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gate-dir missing: no such folder"])

    project.pytester.makeini("[pytest]\ngate_dirs = quality\n")
    result = project.run("--gate", "release")
    result.assert_outcomes(passed=1)


def test_gate_vars_from_option_and_ini(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        vars:
          word: from-file
        criteria:
          build:
            title: The build works
            checks:
              - command: "echo ${word} ${other}"
                expect: {stdout_contains: "${word} ${other}"}
        """,
    )
    project.pytester.makeini("[pytest]\ngate_vars =\n    other=from-ini\n")
    result = project.run("--gate", "release")
    result.assert_outcomes(passed=1)
    [check] = project.criterion("release", "build")["checks"]
    assert check["measured"]["stdout"] == "from-file from-ini"

    result = project.run("--gate", "release", "--gate-var", "word=from-option")
    result.assert_outcomes(passed=1)
    [check] = project.criterion("release", "build")["checks"]
    assert check["measured"]["stdout"] == "from-option from-ini"

    result = project.run("--gate", "release", "--gate-var", "no-equals-sign")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gate-var: expected NAME=VALUE, got 'no-equals-sign'"])


def test_collect_only_decides_nothing(project: GateProject) -> None:
    project.gate("release", RELEASE)
    result = project.run("--gate", "release", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["gates/release.yaml::build::command?true?"])
    result.stdout.no_fnmatch_line("*gate verdicts*")
    assert not (project.path / "reports").exists()
