"""Every pytest run imports the plugin: without --gate it must not import the engine."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: what a run without --gate must not import (the engine and its libraries)
HEAVY = (
    "yaml",
    "jsonschema",
    "junit_xml",
    "requests",
    "testinfra",
    "pytest_fwgates.loader",
    "pytest_fwgates.schema",
    "pytest_fwgates.yamlsrc",
    "pytest_fwgates.run",
    "pytest_fwgates.collect",
    "pytest_fwgates.checks",
    "pytest_fwgates.report",
)

#: other installed plugins that import some of HEAVY themselves
OTHER_PLUGINS = ("-p", "no:pytest11.testinfra", "-p", "no:locust", "-p", "no:hypothesispytest")


def _imported(code: str) -> list[str]:
    listed = f"[m for m in {HEAVY!r} if m in sys.modules]"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({listed}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_importing_the_plugin_imports_no_engine() -> None:
    assert _imported("import pytest_fwgates.plugin") == []


def test_the_package_names_are_still_importable() -> None:
    assert _imported("from pytest_fwgates import Check, GateVerdict") != []
    assert _imported("import pytest_fwgates") == []


def test_a_marked_test_without_gate_imports_no_engine(pytester: pytest.Pytester) -> None:
    """gate_record and the gate marker work in a plain run without loading the engine."""
    pytester.makepyfile(
        textwrap.dedent(
            f"""
            import json, sys
            import pytest

            @pytest.mark.gate("production-readiness", criterion="performance-verification")
            def test_timed(gate_record):
                gate_record("duration_s", 1.5)

            def test_zz_nothing_heavy_was_imported():
                heavy = [m for m in {HEAVY!r} if m in sys.modules]
                assert heavy == []
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", *OTHER_PLUGINS, "--strict-markers", "-v", timeout=120
    )
    result.assert_outcomes(passed=2)


def test_gate_check_without_gate_imports_the_engine_in_the_fixture(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_check(gate_check):
            result = gate_check("command", "echo hello", expect={"stdout_contains": "hello"})
            assert result.outcome == "passed"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1)
