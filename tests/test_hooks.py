"""The plugin's hooks and fixtures, used the way a conftest.py or a test uses them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.model import EXIT_FAILED, EXIT_PASSED

if TYPE_CHECKING:
    from conftest import GateProject

DISK_FREE_CONFTEST = """
    from pytest_fwgates.checks import Check, CheckError, Measurement


    class FakeDiskFree(Check):
        type_name = "disk_free"
        summary = "Free space of a mount point, in percent (from a table, for the test)."
        threshold_keys = frozenset({"free_pct"})
        default_timeout = 5.0
        FREE = {"/var": 42.0, "/tmp": 3.5}

        def measure(self):
            if self.spec.target not in self.FREE:
                raise CheckError(f"no such mount point: {self.spec.target}")
            return Measurement(values={"free_pct": self.FREE[self.spec.target]})


    def pytest_fwgates_register_checks(registry):
        registry.register("disk_free", FakeDiskFree)
"""

DISK_GATE = """
    gate: storage
    criteria:
      disk-space:
        title: Enough free disk space
        thresholds:
          free_pct: ">= 10%"
        checks:
          - disk_free: /var
          - disk_free: /tmp
            id: tmp-space
            expect: {free_pct: ">= 1%"}
"""


def test_register_checks_adds_a_check_type_for_gate_files(project: GateProject) -> None:
    project.pytester.makeconftest(DISK_FREE_CONFTEST)
    project.gate("storage", DISK_GATE)
    result = project.run("--gate", "storage", "-v")
    assert result.ret == EXIT_PASSED
    result.stdout.fnmatch_lines(
        [
            "gates/storage.yaml::disk-space::disk_free?/var? PASSED*",
            "gates/storage.yaml::disk-space::tmp-space PASSED*",
        ]
    )
    checks = project.criterion("storage", "disk-space")["checks"]
    assert [(c["check"], c["measured"], c["thresholds"]) for c in checks] == [
        ("disk_free[/var]", {"free_pct": 42.0}, {"free_pct": ">= 10%"}),
        ("tmp-space", {"free_pct": 3.5}, {"free_pct": ">= 1%"}),
    ]
    assert checks[1]["overrides"] == {"free_pct": {"standard": ">= 10%", "override": ">= 1%"}}


def test_registered_check_type_fails_and_errors_like_a_builtin(project: GateProject) -> None:
    project.pytester.makeconftest(DISK_FREE_CONFTEST)
    project.gate(
        "storage",
        """
        gate: storage
        criteria:
          disk-space:
            title: Enough free disk space
            checks:
              - disk_free: /tmp
                expect: {free_pct: ">= 10%"}
          logs:
            title: Log volume is mounted
            checks:
              - disk_free: /logs
        """,
    )
    result = project.run("--gate", "storage")
    assert result.ret == EXIT_FAILED
    # a check that cannot measure is an error of its setup (pytest's ERRORS come first)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of logs::disk_free*",
            "*gates/storage.yaml:11: ERROR: no such mount point: /logs",
            "*gates/storage.yaml:6: FAILED: free_pct = 3.5 %, expected >= 10%",
        ]
    )
    result.assert_outcomes(failed=1, errors=1)
    assert project.criteria("storage") == {"disk-space": "FAIL", "logs": "FAIL"}
    assert project.criterion("storage", "logs")["checks"][0]["outcome"] == "error"


def test_unregistered_check_type_is_a_gate_file_error(project: GateProject) -> None:
    project.gate("storage", DISK_GATE)
    result = project.run("--gate", "storage")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*gates/storage.yaml:8: unknown check type 'disk_free'*"])


def test_registered_check_type_is_listed_and_usable_from_gate_check(
    project: GateProject,
) -> None:
    project.pytester.makeconftest(DISK_FREE_CONFTEST)
    project.gate("storage", DISK_GATE)
    project.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gate("storage", criterion="disk-space")
        def test_var(gate_check):
            result = gate_check("disk_free", "/var")
            assert result.measured == {"free_pct": 42.0}
            assert result.thresholds == {"free_pct": ">= 10%"}
        """
    )
    result = project.run("--gate-list")
    result.stdout.fnmatch_lines(["storage", "  - disk-space  required  Enough free disk space*"])
    result = project.run("--gate", "storage")
    result.assert_outcomes(passed=3)


def test_check_finished_is_called_for_each_yaml_check(project: GateProject) -> None:
    project.pytester.makeconftest(
        """
        import json

        def pytest_fwgates_check_finished(result):
            with open("finished.jsonl", "a") as out:
                out.write(json.dumps(result.to_json()) + "\\n")
        """
    )
    project.release_gate(
        """
        - command: "true"
        - command: "false"
          id: lint
        """
    )
    project.run("--gate", "release")
    finished = [
        json.loads(line) for line in (project.path / "finished.jsonl").read_text().splitlines()
    ]
    assert [(r["check"], r["outcome"], r["measured"]["exit_status"]) for r in finished] == [
        ("command[true]", "passed", 0.0),
        ("lint", "failed", 1.0),
    ]
    assert finished[1]["nodeid"] == "gates/release.yaml::build::lint"
    assert finished[1]["message"] == "exit_status = 1, expected == 0"


def test_gate_decided_is_called_once_per_gate_before_reports(project: GateProject) -> None:
    project.production_ready()
    project.release_gate('- command: "false"')
    project.pytester.makeconftest(
        """
        import os

        def pytest_fwgates_gate_decided(decision, config):
            reported = os.path.exists(config.rootpath / "reports" / "summary.json")
            criteria = ",".join(f"{c.criterion.id}={c.verdict}" for c in decision.criteria)
            with open("decided.txt", "a") as out:
                out.write(
                    f"{decision.gate.name} {decision.verdict} {decision.status or '-'} "
                    f"{criteria} reported={reported}\\n"
                )
        """
    )
    result = project.run("--gate", "production-readiness", "--gate", "release")
    assert result.ret == EXIT_FAILED
    assert (project.path / "decided.txt").read_text().splitlines() == [
        "production-readiness PASSED PRODUCTION_READY "
        "infrastructure-validation=PASS,security-compliance=PASS,performance-verification=PASS,"
        "monitoring-operational=PASS,rollback-capability=PASS reported=False",
        "release FAILED - build=FAIL reported=False",
    ]


def test_hook_specs_are_pytest_hooks(pytester: pytest.Pytester) -> None:
    """Wrong argument names in an implementation are caught at registration."""
    pytester.makeconftest(
        """
        def pytest_fwgates_gate_decided(decision, cfg):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*pytest_fwgates_gate_decided*cfg*"])


def test_gate_record_values_reach_the_reports(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          performance:
            title: Fast enough
            thresholds:
              page_p95_ms: "< 300ms"
        """,
    )
    project.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gate("release", criterion="performance")
        def test_fast(gate_record):
            gate_record("page_p95_ms", samples=[212] * 100)
            gate_record("orders", 150.5)

        @pytest.mark.gate("release", criterion="performance")
        def test_slow(gate_record):
            gate_record("page_p95_ms", samples=[412] * 100)

        def test_bad_value(gate_record):
            with pytest.raises(TypeError, match="needs a finite number"):
                gate_record("page_p95_ms", float("nan"))
            with pytest.raises(TypeError, match="needs a finite number"):
                gate_record("up", True)
        """
    )
    result = project.run("--gate", "release")
    # a value that misses its standard fails the test itself (pytest and --junitxml too)
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    performance = project.criterion("release", "performance")
    assert performance["verdict"] == "FAIL"
    assert performance["reason"] == (
        "test_gate_record_values_reach_the_reports.py::test_slow failed: "
        "page_p95_ms = 412 ms, expected < 300ms (standard of release/performance)"
    )
    assert [(c["outcome"], c["measured"], c["thresholds"]) for c in performance["checks"]] == [
        ("passed", {"page_p95_ms": 212.0, "orders": 150.5}, {"page_p95_ms": "< 300ms"}),
        ("failed", {"page_p95_ms": 412.0}, {"page_p95_ms": "< 300ms"}),
    ]
    result.stdout.fnmatch_lines(["*performance*required*1/2*page_p95_ms = 412 ms*"])
    result = project.run("-k", "bad_value")
    result.assert_outcomes(passed=1)


def test_gate_check_runs_a_check_from_python(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          build:
            title: The build works
        """,
    )
    project.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gate("release", criterion="build")
        def test_echo(gate_check):
            result = gate_check("command", "echo built", expect={"stdout_contains": "built"})
            assert result.outcome == "passed"
            assert result.measured["stdout"] == "built"

        @pytest.mark.gate("release", criterion="build")
        def test_fails(gate_check):
            gate_check("command", "echo nope; exit 4")
            raise AssertionError("not reached")

        def test_without_gate(gate_check):
            assert gate_check("command", "true").measured["exit_status"] == 0
        """
    )
    result = project.run("--gate", "release")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_fails*", "command?echo nope; exit 4?: exit_status = 4*"])
    result.stdout.no_fnmatch_line("*not reached*")
    build = project.criterion("release", "build")
    assert build["verdict"] == "FAIL"
    assert [c["measured"]["exit_status"] for c in build["checks"]] == [0.0, 4.0]
    result = project.run("-k", "without_gate")
    result.assert_outcomes(passed=1)
