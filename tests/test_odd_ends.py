"""Mistakes and odd inputs end in one line and a clean exit, never a traceback: a baseline
folder that cannot be one, a dry run with nothing selected, numbers no float can hold, YAML
nested too deeply."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_fwgates.model import EXIT_FAILED
from pytest_fwgates.report.summary import value_text
from pytest_fwgates.thresholds import format_value, number, parse
from pytest_fwgates.yamlsrc import SourceError, load_yaml

if TYPE_CHECKING:
    from conftest import GateProject

HUGE = 10**400


@pytest.mark.parametrize("folder", ["/dev/null", "/dev/null/below"])
def test_baseline_dir_that_cannot_be_a_folder(project: GateProject, folder: str) -> None:
    project.production_ready()
    result = project.run_subprocess(
        "--gate=production-readiness", f"--gate-baseline-dir={folder}", "--gate-baseline-save"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "PASSED" not in text
    assert f"--gate-baseline-dir {folder}: " in text and "is not a folder" in text
    assert not (project.path / "reports" / "summary.json").exists()


def test_baseline_that_cannot_be_saved_fails_the_run(project: GateProject) -> None:
    project.production_ready()
    result = project.run_subprocess(
        "--gate=production-readiness", "--gate-baseline-dir=/proc/1/nope", "--gate-baseline-save"
    )
    assert result.ret == EXIT_FAILED
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text
    result.stdout.fnmatch_lines(["gate baselines not saved: *"])


@pytest.mark.parametrize("option", ["--setup-plan", "--setup-only", "--co"])
def test_dry_run_with_nothing_selected_exits_0(project: GateProject, option: str) -> None:
    project.production_ready()
    result = project.run("--gate=production-readiness", option, "-k", "nothing_matches")
    assert result.ret == pytest.ExitCode.OK
    assert not (project.path / "reports" / "summary.json").exists()


@pytest.mark.parametrize("value", [HUGE, -HUGE, math.inf, -math.inf, math.nan, 2**1023 * 3])
def test_numbers_no_float_holds(value: Any) -> None:
    for text in ("< 300ms", ">= 1", "== 5", "!= 0", "<= +10%"):
        threshold = parse(text)
        holds = threshold.holds("p95_ms", value, 100.0)
        assert holds in (True, False, None)
        if math.isnan(number(value)):
            assert holds is None  # never decided, never a pass
    assert format_value("p95_ms", value).endswith(" ms")
    assert value_text("p95_ms", value)


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.integers(min_value=-(10**500), max_value=10**500),
        st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_any_number_is_judged_without_raising(value: Any) -> None:
    assert parse("< 300ms").holds("p95_ms", value) in (True, False, None)
    format_value("p95_ms", value)


HUGE_CHECK = """
    from pytest_fwgates.checks import Check, Measurement


    class Huge(Check):
        type_name = "huge"
        summary = "A figure no float can hold, for the test."
        threshold_keys = frozenset({"free_pct"})
        default_timeout = 5.0

        def measure(self):
            return Measurement(values={"free_pct": int(self.spec.target) * 10**400})


    def pytest_fwgates_register_checks(registry):
        registry.register("huge", Huge)
"""


def test_huge_measured_value_is_judged(project: GateProject) -> None:
    project.pytester.makeconftest(HUGE_CHECK)
    project.gate(
        "storage",
        """
        gate: storage
        criteria:
          disk-space:
            thresholds: {free_pct: ">= 10%"}
            checks:
              - huge: "1"
              - huge: "-1"
        """,
    )
    result = project.run("--gate", "storage", "--gate-baseline-save")
    text = result.stdout.str()
    assert "Traceback" not in text and "OverflowError" not in text
    assert result.ret == EXIT_FAILED  # the second is -inf %: below 10 %
    checks = project.criterion("storage", "disk-space")["checks"]
    assert [c["outcome"] for c in checks] == ["passed", "failed"]
    json.dumps(project.summary(), allow_nan=False)  # plain JSON


def test_yaml_nested_too_deeply_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: 1\nb:\n" + "".join(" " * (i + 1) + "- \n" for i in range(1500)))
    for fast in (True, False):
        with pytest.raises(SourceError) as info:
            load_yaml(path, fast=fast)
        assert "nested too deeply" in str(info.value)
        assert info.value.line is not None and info.value.line > 2
    flow = tmp_path / "flow.yaml"
    flow.write_text("a: 1\nb: " + "[" * 5000 + "]" * 5000 + "\n")
    for fast in (True, False):
        with pytest.raises(SourceError) as info:
            load_yaml(flow, fast=fast)
        assert info.value.line == 2


@pytest.mark.parametrize(
    ("signame", "xdist"), [("SIGINT", True), ("SIGTERM", True), ("SIGINT", False)]
)
def test_late_signal_is_one_line(project: GateProject, signame: str, xdist: bool) -> None:
    """Ctrl-C or SIGTERM while the run ends (here: as the verdict is decided, xdist workers
    still to be waited for): one line, exit 2, the reports complete; no traceback."""
    project.production_ready()
    project.pytester.makeconftest(
        f"""
        import os, signal

        def pytest_fwgates_gate_decided(decision, config):
            os.kill(os.getpid(), signal.{signame})
        """
    )
    args = ["-n", "2"] if xdist else ["-p", "no:xdist"]
    result = project.run_subprocess("--gate=production-readiness", *args)
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"{signame} while the run was ending: its reports are complete"])
    assert project.verdicts() == {"production-readiness": "PASSED"}


PATH_VALUES = ["", "/dev/null", "/dev/null/x", "/proc/1/nope", "/", "x" * 300, "ü", "a\nb", "gates"]
PATH_OPTIONS = [
    "--gate-dir",
    "--gate-waivers",
    "--gate-junit",
    "--handoff-package",
    "--handoff-sign-key",
    "--gate-progress",
    "--gate-baseline-dir",
    "--junitxml",
]


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    options=st.lists(
        st.tuples(st.sampled_from(PATH_OPTIONS), st.sampled_from(PATH_VALUES)),
        min_size=1,
        max_size=3,
    ),
    flag=st.sampled_from(["", "--gate-baseline-save", "--handoff-archive", "--co"]),
)
def test_option_mistakes_are_one_line(
    project: GateProject, options: list[tuple[str, str]], flag: str
) -> None:
    """Options naming paths that cannot be used end the run in one line (usage error, or a
    failed gate), never with a traceback or an internal error."""
    if not (project.path / "gates").exists():
        project.production_ready()
    args = [f"{option}={value}" for option, value in options] + ([flag] if flag else [])
    result = project.run("--gate=production-readiness", *args)
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text, (args, text[-2000:])
    assert result.ret in (0, 1, 2, 4, 5, 6, 7), args
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode), args  # never replaced by a report
