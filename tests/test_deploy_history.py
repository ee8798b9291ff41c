"""The deploy history: outcomes appended across runs, success_ratio judged over a window."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_fwgates.history import HistoryError, HistoryStore, parse_period, window

if TYPE_CHECKING:
    from conftest import GateProject

GATE = "deploy-history"
CRITERION = "reliability"
STORE = "store"
OUTCOMES_ALL = ("ok", "failed", "error")


def _gate(project: GateProject, command: str, extra: str = "", kind: str = "deploy") -> None:
    project.gate(
        GATE,
        f"""\
        gate: {GATE}
        criteria:
          {CRITERION}:
            - {kind}: {json.dumps(command)}
              id: ship
              health: ${{env:FWGATES_TEST_HEALTH}}
              stable: 0.1s
        """.replace("\n        ", "\n").removeprefix("        ")
        + "".join(f"      {line}\n" for line in extra.splitlines()),
    )


def _history(project: GateProject) -> Path:
    return HistoryStore(project.path / STORE).path(GATE, CRITERION, "ship")


def _lines(project: GateProject) -> list[dict[str, Any]]:
    text = _history(project).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _record(project: GateProject, outcomes: list[tuple[str, float]]) -> None:
    """Write recorded outcomes: (outcome, days ago)."""
    now = dt.datetime.now(dt.UTC)
    path = _history(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            json.dumps(
                {
                    "time": (now - dt.timedelta(days=ago)).isoformat(),
                    "outcome": outcome,
                    "type": "deploy",
                    "duration_s": 1.0,
                    "id": f"{i:016x}",
                }
            )
            + "\n"
            for i, (outcome, ago) in enumerate(outcomes)
        ),
        encoding="utf-8",
    )


def _run(project: GateProject, *args: str) -> pytest.RunResult:
    return project.run(f"--gate={GATE}", f"--gate-baseline-dir={STORE}", *args)


def _check(project: GateProject) -> dict[str, Any]:
    return project.checks(GATE, CRITERION)["ship"]


def test_outcomes_are_appended_across_runs_with_their_time_and_run_id(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    _gate(project, "true")
    _run(project, "--gate-baseline-save")
    monkeypatch.setenv("FWGATES_RUN_ID", "ci-42")
    _gate(project, "false")
    result = _run(project, "--gate-baseline-save")
    result.stdout.fnmatch_lines(["*deploy history: 1 outcome(s) appended*"])
    first, second = _lines(project)
    assert first["outcome"] == "ok" and second["outcome"] == "failed"
    assert first["type"] == "deploy" and "duration_s" in first
    assert "run_id" not in first and second["run_id"] == "ci-42"
    assert "deploy failed" in second["reason"] or "exit" in second["reason"]
    for line in (first, second):
        assert dt.datetime.fromisoformat(line["time"]).tzinfo is not None
    # without --gate-baseline-save nothing is appended
    _run(project)
    assert len(_lines(project)) == 2


def test_a_deploy_that_could_not_be_measured_is_recorded_as_an_error(
    project: GateProject,
) -> None:
    project.gate(
        GATE,
        f"""\
        gate: {GATE}
        criteria:
          {CRITERION}:
            - deploy: "true"
              id: ship
              health: http://127.0.0.1:9/health
              settle_timeout: 1s
              timeout: 5s
        """,
    )
    _run(project, "--gate-baseline-save")
    (line,) = _lines(project)
    assert line["outcome"] == "error" and line["reason"]


def test_last_n_counts_this_run_and_the_newest_recorded(project: GateProject) -> None:
    # one failure long ago, outside the newest 3000; 2999 successes since
    _record(project, [("failed", 30), *[("ok", 1)] * 2999])
    _gate(project, "true", 'history: {last: 3000}\nexpect: {success_ratio: ">= 99.9%"}')
    _run(project)
    check = _check(project)
    assert check["outcome"] == "passed", check
    assert check["support"]["success_ratio"]["count"] == [3000, 3000]
    shown = check["support"]["success_ratio"]["shown"]
    assert "success_ratio 3000/3000 deploys successful of the last 3000 recorded" in shown
    assert ">= 0.999 at 95 % confidence" in shown


def test_a_failed_deploy_in_the_window_keeps_it_from_passing(project: GateProject) -> None:
    _record(project, [("failed", 30), *[("ok", 1)] * 2999])
    _gate(project, "true", 'history: {last: 3001}\nexpect: {success_ratio: ">= 99.9%"}')
    _run(project)
    check = _check(project)
    assert check["outcome"] == "inconclusive", check
    assert check["support"]["success_ratio"]["count"] == [3000, 3001]
    assert "not successful show >= 99.9%" in check["message"]


def test_an_error_in_history_counts_as_a_failure(project: GateProject) -> None:
    _record(project, [("error", 1), *[("ok", 1)] * 3])
    _gate(project, "true", 'history: {last: 10}\nexpect: {success_ratio: ">= 90%"}')
    _run(project)
    check = _check(project)
    assert check["support"]["success_ratio"]["count"] == [4, 5]
    assert check["outcome"] == "failed", check


def test_since_keeps_the_period_only(project: GateProject) -> None:
    _record(project, [*[("failed", 200)] * 5, *[("ok", 10)] * 2995])
    _gate(project, "true", 'history: {since: 90d}\nexpect: {success_ratio: ">= 99.9%"}')
    _run(project)
    check = _check(project)
    assert check["outcome"] == "passed", check
    assert "2996/2996 deploys successful over 90 days" in check["support"]["success_ratio"]["shown"]
    _gate(project, "true", 'history: {since: 365d}\nexpect: {success_ratio: ">= 99.9%"}')
    _run(project)
    assert _check(project)["outcome"] == "failed"


def test_too_few_recorded_deploys_never_pass(project: GateProject) -> None:
    _gate(project, "true", 'history: {since: 90d}\nexpect: {success_ratio: ">= 99.9%"}')
    _run(project, "--gate-baseline-save")
    check = _check(project)
    assert check["outcome"] == "inconclusive", check
    assert "1/1 deploys successful over 90 days" in check["message"]
    assert len(_lines(project)) == 1


@pytest.mark.parametrize(
    "line",
    [
        "{not json",
        '["a list"]',
        '{"time": "2026-01-01T00:00:00+00:00", "outcome": "maybe"}',
        '{"time": "yesterday", "outcome": "ok"}',
        '{"time": "2026-01-01T00:00:00", "outcome": "ok"}',
        '{"outcome": "ok"}',
    ],
)
def test_an_unreadable_history_line_is_an_error_naming_file_and_line(
    project: GateProject, line: str
) -> None:
    _record(project, [("ok", 1)] * 2)
    with _history(project).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    _gate(project, "true", 'history: {last: 100}\nexpect: {success_ratio: ">= 50%"}')
    result = _run(project, "--gate-baseline-save")
    check = _check(project)
    assert check["outcome"] == "error", check
    assert f"{_history(project)}:3: not a recorded outcome" in check["message"]
    assert "Traceback" not in result.stdout.str()
    # the deploy ran: its own outcome is still recorded
    text = _history(project).read_text(encoding="utf-8").splitlines()
    assert text[2] == line and json.loads(text[3])["outcome"] == "ok"


def test_rollback_history_gives_the_slowest_recovery(project: GateProject) -> None:
    now = dt.datetime.now(dt.UTC).isoformat()
    path = _history(project)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"time": now, "outcome": "ok", "type": "rollback", "recovery_s": 42.5}) + "\n"
    )
    _gate(
        project,
        "true",
        'history: {last: 5}\nexpect: {max_recovery_s: "< 60", success_ratio: ">= 50%"}',
        kind="rollback",
    )
    _run(project)
    check = _check(project)
    assert check["measured"]["max_recovery_s"] == 42.5
    assert check["support"]["success_ratio"]["count"] == [2, 2]
    assert "rollbacks successful" in check["support"]["success_ratio"]["shown"]


def test_window_and_period_units() -> None:
    assert parse_period("90d") == 90 * 86400
    assert parse_period("2w") == 14 * 86400
    assert parse_period("2h") == 7200
    now = dt.datetime.now(dt.UTC)
    recorded = [{"outcome": "ok", "_time": now - dt.timedelta(days=d)} for d in (100, 50, 10)]
    current = [{"outcome": "failed"}]
    assert window(recorded, current, {"last": 2}).entries == [recorded[-1], current[0]]
    assert len(window(recorded, current, {"since": "60d"}, now).entries) == 3


def test_appends_keep_whole_lines(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    path = store.path("g", "c", "x")
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"time": "2026-01-01T00:00:00+00:00", "outcome": "ok"}')  # no newline
    store.append("g", "c", "x", [{"time": "2026-01-02T00:00:00+00:00", "outcome": "failed"}])
    assert [e["outcome"] for e in store.read("g", "c", "x")] == ["ok", "failed"]
    path.write_bytes(b"\xff\n")
    with pytest.raises(HistoryError, match="cannot be read"):
        store.read("g", "c", "x")


def test_only_the_controller_appends_under_xdist(project: GateProject) -> None:
    project.gate(
        GATE,
        f"""\
        gate: {GATE}
        criteria:
          {CRITERION}:
            - deploy: "true"
              id: ship
              health: ${{env:FWGATES_TEST_HEALTH}}
              stable: 0.1s
              history: {{last: 10}}
              expect: {{success_ratio: ">= 10%"}}
            - rollback: "true"
              id: back
              health: ${{env:FWGATES_TEST_HEALTH}}
              stable: 0.1s
        """,
    )
    for _ in range(2):
        project.run_subprocess(
            "-n", "2", f"--gate={GATE}", f"--gate-baseline-dir={STORE}", "--gate-baseline-save"
        )
    store = HistoryStore(project.path / STORE)
    assert [e["outcome"] for e in store.read(GATE, CRITERION, "ship")] == ["ok", "ok"]
    assert [e["type"] for e in store.read(GATE, CRITERION, "back")] == ["rollback"] * 2
    # the worker that ran the check read the history the controller had written
    assert _check(project)["support"]["success_ratio"]["count"] == [2, 2]


def test_history_figures_are_measured_only_with_a_window() -> None:
    from pytest_fwgates.checks.drill import DrillCheck
    from pytest_fwgates.checks.rollback import RollbackCheck

    assert "success_ratio" not in RollbackCheck.measures("x", {})
    assert "max_mttr_s" not in DrillCheck.measures("x", {})
    assert {"success_ratio", "max_recovery_s"} <= RollbackCheck.measures(
        "x", {"history": {"last": 5}}
    )


@given(
    outcomes=st.lists(st.sampled_from(OUTCOMES_ALL), max_size=40),
    current=st.lists(st.sampled_from(OUTCOMES_ALL), min_size=1, max_size=5),
    last=st.integers(min_value=1, max_value=60),
)
def test_a_last_window_counts_the_newest_and_only_ok_as_success(
    outcomes: list[str], current: list[str], last: int
) -> None:
    now = dt.datetime.now(dt.UTC)
    recorded = [
        {"outcome": o, "_time": now - dt.timedelta(hours=len(outcomes) - i)}
        for i, o in enumerate(outcomes)
    ]
    this = [{"outcome": o} for o in current]
    chosen = window(recorded, this, {"last": last})
    everything = [*outcomes, *current]
    assert chosen.total == min(last, len(everything))
    assert chosen.succeeded == everything[-last:].count("ok")
    # this run's outcomes are always in a window that has room for them
    assert chosen.entries[-len(current[-last:]) :] == this[-last:]
    every = window(recorded, this, {"since": "30d"})
    assert every.total == len(everything)


@pytest.mark.parametrize(
    "policy", [{"since": "0d"}, {"since": "soon"}, {"last": 0}, {}, {"last": 5, "since": "1d"}]
)
def test_a_bad_window_fails_at_load(tmp_path: Path, policy: dict[str, Any]) -> None:
    from pytest_fwgates.checks import CheckRegistry
    from pytest_fwgates.loader import GateLoader
    from pytest_fwgates.model import Source

    loader = GateLoader([], registry=CheckRegistry())
    with pytest.raises(Exception, match="history"):
        loader.spec_from_mapping(
            None,
            None,
            {"deploy": "true", "health": "http://127.0.0.1:9/", "history": policy},
            Source(tmp_path / "g.yaml", 1),
        )
