"""The plugin's part of ``pytest --help`` and ``pytest --markers``, pinned."""

from __future__ import annotations

import pytest


def _help(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    """``pytest --help`` 80 columns wide, where the pinned lines wrap."""
    monkeypatch.setenv("COLUMNS", "80")
    result = pytester.runpytest("--help")
    assert result.ret == 0
    return result


def test_help_lists_the_gate_options(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _help(pytester, monkeypatch)
    result.stdout.fnmatch_lines(
        [
            "quality gates (pytest-fwgates):",
            "  --gate=NAME * run the checks of gate NAME and decide its verdict",
            "*(repeatable); everything else is deselected",
            "  --gate-list * list the known gates and their criteria, then exit",
            "  --gate-dir=DIR * folder of gate files (repeatable; default: ini",
            "*gate_dirs, else gates/ under rootdir)",
            "  --gate-var=NAME=VALUE",
            "*set the gate file variable NAME (repeatable; wins over",
            "*vars: in files)",
            "  --gate-waivers=FILE * waivers file: signed-off exceptions with an expiry date",
            "  --gate-junit=PATH * write the gate JUnit XML here, summary.json beside it",
            "*(default: reports/gates.xml)",
            "  --gate-baseline-dir=DIR",
            "*folder of stored baseline runs for relative thresholds*",
            "*(default: ini gate_baseline_dir, else .fwgates/baselines",
            "*under rootdir)",
            "  --gate-baseline-save *store this run's measured figures as the next baseline*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*configuration options*",
            "  gate_dirs (paths): * folders of gate files",
            "  gate_junit (string): * path of the gate JUnit XML",
            "  gate_waivers (string):",
            "*waivers file used when --gate-waivers is not given",
            "  gate_baseline_dir (string):",
            "*folder of stored baseline runs",
            "  gate_vars (linelist): gate file variables, one NAME=VALUE a line",
        ]
    )


def test_gate_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.gate(name, criterion): the test is evidence for criterion of gate name "
            "(pytest-fwgates)"
        ]
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gate("production-readiness", criterion="rollback-capability")
        def test_rollback():
            pass
        """
    )
    result = pytester.runpytest(
        "--strict-markers", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"
    )
    result.assert_outcomes(passed=1)


def test_help_lists_the_handoff_options(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _help(pytester, monkeypatch)
    result.stdout.fnmatch_lines(
        [
            "  --handoff-package=DIR",
            "*write the handoff package (reports, evidence,",
            "*environment, signed manifest) to DIR after the run; DIR",
            "*holds a whole package or nothing",
            "  --handoff-archive * also write the package as DIR.tar.gz",
            "  --handoff-sign-key=PATH",
            "*Ed25519 private key (PEM) that signs the package",
            "*manifest (fwgates keygen)",
            "  --handoff-deliverable=NAME=PATH",
            "*put a handoff deliverable (file or folder) into the",
            "*package (repeatable); NAME is one of the seven of",
            "*operations-handoff",
            "  --gate-progress=FILE * update the marked block of this progress file with phase",
            "*statuses and verdicts (default:",
            "*.ai_context/framework_progress.md when it exists)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "  handoff_package (string):",
            "*folder of the handoff package",
            "  handoff_archive (bool):",
            "*also write the package as .tar.gz",
            "  handoff_sign_key (string):",
            "*Ed25519 private key that signs the package",
            "  handoff_deliverables (linelist):",
            "*handoff deliverables, one NAME=PATH a line",
            "  gate_progress (string):",
            "*progress file whose fwgates block is updated",
        ]
    )
