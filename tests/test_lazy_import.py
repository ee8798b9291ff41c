"""Every pytest run imports the plugin: without --gate it must not import the engine."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

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


def _gate_project(pytester: pytest.Pytester, command: str = "true") -> None:
    pytester.mkdir("gates")
    pytester.path.joinpath("gates", "lazy.yaml").write_text(
        "gate: lazy\ntitle: lazy\ncriteria:\n  c:\n    title: c\n    checks:\n"
        f"      - command: {command!r}\n"
    )
    pytester.makeconftest(
        f"""
        import json, sys

        def pytest_unconfigure(config):
            heavy = {["jsonschema", "jsonschema.validators"]!r}
            loaders = {{n: type(sys.modules[n].__loader__).__name__
                       for n in ("pytest_fwgates", "pytest_fwgates.loader", "pytest_fwgates.run")
                       if n in sys.modules}}
            print("PROBE " + json.dumps({{"heavy": [m for m in heavy if m in sys.modules],
                                          "loaders": loaders}}))
        """
    )


def _probe(result: pytest.RunResult) -> dict[str, Any]:
    line = next(x for x in result.outlines if x.startswith("PROBE "))
    found: dict[str, Any] = json.loads(line[len("PROBE ") :])
    return found


def test_a_valid_gate_never_imports_jsonschema(pytester: pytest.Pytester) -> None:
    """jsonschema is the judge of invalid documents only: a valid gate is accepted by the
    compiled fast path, and the run does not pay for importing jsonschema."""
    _gate_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gate=lazy", timeout=120)
    assert result.ret == 0
    assert _probe(result)["heavy"] == []


def test_an_invalid_gate_still_gets_the_schema_message(pytester: pytest.Pytester) -> None:
    _gate_project(pytester)
    path = pytester.path / "gates" / "lazy.yaml"
    path.write_text(path.read_text().replace("title: c", "title: c\n    colour: red"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gate=lazy", timeout=120)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*lazy.yaml:*unknown key 'colour'*"])
    assert "jsonschema" in _probe(result)["heavy"]


def test_the_engine_is_not_assert_rewritten(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest marks every module of a plugin's distribution for assert rewriting; with an
    installed wheel that is this package. The package takes the mark back: its modules load
    through the ordinary import system (no parse and compile per run when bytecode cannot be
    cached). ``-p mark_fwgates`` marks the package before pytest imports it, as pytest does
    for an installed wheel (an editable install is not marked)."""
    _gate_project(pytester)
    pytester.makepyfile(
        mark_fwgates="import pytest\npytest.register_assert_rewrite('pytest_fwgates')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "mark_fwgates", "--gate=lazy", timeout=120
    )
    assert result.ret == 0
    loaders = _probe(result)["loaders"]
    # the package itself was imported under the mark (so the mark was in place) ...
    assert loaders["pytest_fwgates"] == "AssertionRewritingHook"
    # ... and the engine after it was not rewritten
    assert loaders["pytest_fwgates.loader"] != "AssertionRewritingHook"
    assert loaders["pytest_fwgates.run"] != "AssertionRewritingHook"
