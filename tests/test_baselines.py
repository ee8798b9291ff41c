"""Baselines and load figures without a service: the store, references, percentiles, the CLI,
saving at the end of a gate run (controller only, measured results only), bad load checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates import cli
from pytest_fwgates.baseline import BaselineStore, reference, savable
from pytest_fwgates.locust_run import figures_from_histogram, percentile, weighted_paths
from pytest_fwgates.model import CheckResult, CheckSpec, Outcome, Source
from pytest_fwgates.thresholds import parse

if TYPE_CHECKING:
    from conftest import GateProject


def _result(outcome: Outcome = Outcome.PASSED, **measured: float) -> CheckResult:
    return CheckResult(
        nodeid="n",
        gate="g",
        criterion="c",
        check_id="load[x]",
        outcome=outcome,
        measured=dict(measured),
    )


def test_percentiles_are_nearest_rank_at_1_ms() -> None:
    hist = {196: 95, 204: 5}
    assert percentile(hist, 100, 95) == 196
    assert percentile(hist, 100, 96) == 204
    assert percentile({7: 1}, 1, 50) == 7
    figures = figures_from_histogram({1: 1, 2: 1, 1000: 2}, total_ms=2003.5, max_ms=1000.4)
    assert figures == {
        "avg_ms": 500.875,
        "p50_ms": 2.0,
        "p90_ms": 1000.0,
        "p95_ms": 1000.0,
        "p99_ms": 1000.0,
        "max_ms": 1000.4,
    }


def test_paths_as_list_or_weights_with_optional_method() -> None:
    assert weighted_paths(["/a", "POST /items"]) == [("GET", "/a", 1), ("POST", "/items", 1)]
    assert weighted_paths({"/items": 3, "/work?ms=20": 1}) == [
        ("GET", "/items", 3),
        ("GET", "/work?ms=20", 1),
    ]


def test_store_numbers_runs_and_finds_the_reference(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    for p95 in (100.0, 300.0, 200.0, 120.0):
        store.save(_result(p95_ms=p95, rps=50), target="http://t", machine={}, commit={})
    runs = store.runs("g", "c", "load[x]")
    assert [r.number for r in runs] == [1, 2, 3, 4]
    assert runs[0].path is not None and runs[0].path.name.startswith("0001_")
    assert reference(runs, "p95_ms") == 120.0
    assert reference(runs, "p95_ms", "median", 3) == 200.0
    assert reference(runs, "nope") is None
    spec = CheckSpec(
        type="load",
        target="http://t",
        id="load[x]",
        gate="g",
        criterion="c",
        source=Source(Path("g.yaml"), 1),
        options={"baseline": {"compare": "median", "last": 4}},
    )
    assert store.lookup(spec, "p95_ms") == 160.0
    spec.options = {}
    assert store.lookup(spec, "p95_ms") == 120.0
    # a relative threshold against it
    assert parse("<= +10%").holds("p95_ms", 130.0, store.lookup(spec, "p95_ms")) is True
    assert parse("<= +10%").holds("p95_ms", 133.0, store.lookup(spec, "p95_ms")) is False


def test_only_measured_results_are_savable() -> None:
    assert savable(_result(Outcome.PASSED, p95_ms=1))
    assert savable(_result(Outcome.FAILED, p95_ms=1))
    assert savable(_result(Outcome.SKIPPED, p95_ms=1))  # undecided for want of a baseline
    assert not savable(_result(Outcome.ERROR, p95_ms=1))
    assert not savable(_result(Outcome.SKIPPED))


def test_cli_lists_shows_and_compares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = BaselineStore(tmp_path)
    for p95 in (100.0, 110.0, 150.0):
        store.save(
            _result(p95_ms=p95, rps=10), target="http://t", machine={}, commit={"id": "abc123456"}
        )
    assert cli.main(["baseline", "list", "--dir", str(tmp_path)]) == 0
    assert "g::c::load[x]: 3 run(s), newest #3" in capsys.readouterr().out
    assert cli.main(["baseline", "show", "load[x]", "--dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "150 ms" in shown and "abc12345" in shown
    assert cli.main(["baseline", "compare", "load[x]", "--dir", str(tmp_path)]) == 0
    assert "p95_ms: 110 ms -> 150 ms (+36.4%)" in capsys.readouterr().out
    args = ["baseline", "compare", "g::c::load[x]", "--compare", "median", "--last", "2"]
    assert cli.main([*args, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "p95_ms: 105 ms -> 150 ms (+42.9%)" in out
    assert "against the median of the 2 run(s) before\n" in out
    # more runs asked for than there are: the reference says what it is made of
    args[-1] = "5"
    assert cli.main([*args, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "the median of the 2 run(s) before (--last 5 asked for more; only 2 earlier)" in out
    with pytest.raises(SystemExit):
        cli.main([*args[:-1], "0", "--dir", str(tmp_path)])
    assert "must be more than 0" in capsys.readouterr().err
    assert cli.main(["baseline", "show", "nothing", "--dir", str(tmp_path)]) == 1
    assert "no baseline runs match 'nothing'" in capsys.readouterr().err


def test_saved_on_the_controller_only_and_never_for_errors(project: GateProject) -> None:
    project.release_gate(
        """
        - command: "true"
          id: quick
        - command: "no-such-command-fwgates"
          id: broken
        """,
        "speed",
        "Speed",
    )
    project.pytester.makepyfile(
        test_speed="""
        import pytest

        @pytest.mark.gate("release", criterion="speed")
        def test_recorded(gate_record):
            gate_record("page_p95_ms", 42.0)
        """
    )
    result = project.run_subprocess(
        "--gate=release", "--gate-baseline-save", "--gate-baseline-dir=store", "-n", "2"
    )
    assert result.ret == 1  # the broken command errored
    result.stdout.fnmatch_lines(["gate baselines: 2 run(s) saved in *store"])
    runs = sorted(
        p.relative_to(project.path / "store") for p in project.path.glob("store/**/*.json")
    )
    assert [str(p.parent) for p in runs] == [
        "release/speed/quick",
        "release/speed/test_speed.py_test_recorded",
    ]
    data = json.loads((project.path / "store" / runs[1]).read_text())
    assert data["values"] == {"page_p95_ms": 42.0}
    assert data["check"] == "test_speed.py::test_recorded"
    assert "exit_status" in json.loads((project.path / "store" / runs[0]).read_text())["values"]


def _stored_run(folder: Path, number: int, duration_s: float) -> None:
    """Run ``number`` of release::speed::quick in the store ``folder``, as saved."""
    run = {"number": number, "gate": "release", "criterion": "speed", "check": "quick"}
    text = json.dumps({**run, "values": {"duration_s": duration_s}})
    (folder / f"{number:04d}_x_nogit.json").write_text(text)


def _quick_against_baseline(
    project: GateProject, command: str, bound: str, store: str, duration_s: float
) -> Path:
    """Gate release, criterion speed: the command check ``quick`` held to ``duration_s
    <bound>`` (relative), with one run of it in the baseline store ``store``; its folder."""
    project.release_gate(
        f"""
        - command: "{command}"
          id: quick
          expect: {{duration_s: "{bound}"}}
        """,
        "speed",
        "Speed",
    )
    folder = project.path / store / "release" / "speed" / "quick"
    folder.mkdir(parents=True)
    _stored_run(folder, 1, duration_s)
    return folder


def test_relative_threshold_of_any_check_type_uses_the_store(project: GateProject) -> None:
    folder = _quick_against_baseline(project, "true", "<= +0%", ".fwgates/baselines", 60)
    # one stored run shows no spread: met, not proven
    assert project.run("--gate=release").ret == 7
    assert "2 more baseline runs needed" in project.criterion("release", "speed")["reason"]
    _stored_run(folder, 2, 58)
    _stored_run(folder, 3, 61)
    assert project.run("--gate=release").ret == 0
    # the newest five runs, all far quicker than this one: a regression beyond their spread
    for number, seconds in ((4, 0.0001), (5, 0.0002), (6, 0.0001), (7, 0.00015), (8, 0.0001)):
        _stored_run(folder, number, seconds)
    assert project.run("--gate=release").ret == 1
    reason = project.criterion("release", "speed")["reason"]
    assert "beyond the margin 10 %" in reason and "5 baseline runs" in reason


def test_a_relative_threshold_names_its_baseline_and_bound(project: GateProject) -> None:
    """``p95_ms = 133 ms, expected <= +25% of baseline 100 ms (<= 125 ms)``: in the check's
    message, the terminal table and summary.json; the baseline is not stored as a figure."""
    folder = _quick_against_baseline(project, "sleep 0.05", "<= +25%", "store", 0.02)
    result = project.run(
        "--gate=release", "--gate-baseline-dir=store", "--gate-baseline-save", "-p", "no:xdist"
    )
    assert result.ret == 1
    expected = "expected <= +25% of baseline 0.02 s (<= 0.025 s)"
    check = project.checks("release", "speed")["quick"]
    assert expected in check["message"]
    assert check["measured"]["baseline_duration_s"] == 0.02
    assert expected.replace(" ", "") in result.stdout.str().replace(" ", "").replace("\n", "")
    saved = sorted(folder.glob("*.json"))[-1]
    assert "baseline_duration_s" not in json.loads(saved.read_text())["values"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("users: 0", "users: 0 is less than the minimum of 1"),
        (
            'expect: {endpoints: {"/x": {p95: "< 3"}}}',
            "'p95'",
        ),
        ('paths: {"/x": 0}', "paths"),
    ],
)
def test_bad_load_checks_name_file_and_line(
    project: GateProject, option: str, message: str
) -> None:
    project.release_gate(
        f"""
        - load: http://127.0.0.1:9
          paths: ["/"]
          {option}
        """,
        "speed",
        "Speed",
    )
    result = project.run("--gate=release")
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*release.yaml:8: *{message}*"])
    assert "Traceback" not in result.stdout.str()


def test_performance_verification_demands_measured_latency_and_failures(
    project: GateProject,
) -> None:
    """The catalog's measures: a shell command alone cannot carry performance-verification."""
    project.gate(
        "release",
        """
        gate: release
        criteria:
          speed:
            title: Speed
            measures: [page_p95_ms]
            checks:
              - command: "true"
        """,
    )
    project.run("--gate=release")
    speed = project.criterion("release", "speed")
    assert speed["verdict"] == "NOT_EVALUATED"
    assert "page_p95_ms (measured value demanded)" in speed["reason"]
    project.pytester.makepyfile(
        test_speed="""
        import pytest

        @pytest.mark.gate("release", criterion="speed")
        def test_recorded(gate_record):
            gate_record("page_p95_ms", 12.0)
        """
    )
    assert project.run("--gate=release").ret == 0
    # the catalog's production-readiness demands p95_ms and failure_ratio
    result = project.run("--gate-list")
    result.stdout.fnmatch_lines(
        ["*performance-verification*[[]measures p95_ms, failure_ratio; 0 checks[]]"]
    )


def test_cli_prints_the_listener_workers_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["locust-listener"]) == 0
    listener = Path(capsys.readouterr().out.strip())
    assert listener.is_file() and "events.request" in listener.read_text()
    assert cli.main(["locust-listener", "--paths"]) == 0
    assert "FastHttpUser" in Path(capsys.readouterr().out.strip()).read_text()
