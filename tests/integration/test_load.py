"""Load checks for real: Locust against the example service behind nginx, nothing mocked.

Each run is short (2-4 s of load); the figures asserted are ones the service guarantees
(``/work?ms=N`` sleeps at least N ms), never ones the machine's speed decides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from examples.stack import DeployError, Stack
from pytest_fwgates.locust_run import LISTENER, PATHS_LOCUSTFILE, free_port

if TYPE_CHECKING:
    from conftest import GateProject

pytestmark = pytest.mark.integration


def _gate(project: GateProject, checks: str, criterion: str = "performance-verification") -> None:
    body = textwrap.indent(textwrap.dedent(checks).strip(), "    ")
    project.gate(
        "production-readiness",
        f"gate: production-readiness\ncriteria:\n  {criterion}:\n{body}\n",
    )


def _result(project: GateProject, check: str) -> dict[str, Any]:
    for gate in project.summary()["gates"]:
        for criterion in gate["criteria"]:
            for result in criterion["checks"]:
                if result["check"] == check:
                    return dict(result)
    raise AssertionError(f"no result for {check}")


def _run(project: GateProject, stack: Stack, *args: str) -> pytest.RunResult:
    return project.run_subprocess(
        "--gate=production-readiness",
        f"--gate-var=url={stack.urls['app']}",
        *args,
        timeout=150,
    )


def test_thresholds_pass_and_fail_for_real_with_progress_and_evidence(
    project: GateProject, live_v1: Stack
) -> None:
    _gate(
        project,
        """
        - load: ${url}
          id: fast-version
          paths: {/version: 3, /health: 1}
          users: 4
          duration: 3s
          progress: 1
          expect: {p95_ms: "< 2000ms", failure_ratio: "< 1%", requests: ">= 10"}
        - load: ${url}
          id: slow-work
          paths: ["/work?ms=300"]
          users: 2
          duration: 3s
          expect: {p95_ms: "< 250ms"}
        """,
    )
    result = _run(project, live_v1)
    assert result.ret == 1, result.stdout.str()
    fast = _result(project, "fast-version")
    slow = _result(project, "slow-work")
    assert fast["outcome"] == "passed", fast["message"]
    assert slow["outcome"] == "failed"
    assert slow["measured"]["p95_ms"] >= 300
    assert "p95_ms = " in slow["message"] and "expected < 250ms" in slow["message"]
    # figures in total and per endpoint
    for key in ("requests", "failures", "failure_ratio", "rps", "avg_ms", "p50_ms", "p90_ms",
                "p95_ms", "p99_ms", "max_ms"):  # fmt: skip
        assert key in fast["measured"]
        assert f"GET /version::{key}" in fast["measured"]
        assert f"GET /health::{key}" in fast["measured"]
    total = fast["measured"]["requests"]
    assert total == (
        fast["measured"]["GET /version::requests"] + fast["measured"]["GET /health::requests"]
    )
    # Locust's CSV stats and HTML report are evidence files of the check
    evidence = fast["evidence"]
    for name in ("locust_stats_csv", "locust_report_html", "exact_response_times_json"):
        assert Path(evidence[name]).is_file(), name
    assert "<html" in Path(evidence["locust_report_html"]).read_text()[:2000].lower()
    # the figures reach the JUnit report too
    junit = (project.path / "reports" / "gates.xml").read_text()
    assert "p95_ms" in junit and "slow-work" in junit
    # a live line every second while Locust runs
    lines = [line for line in result.outlines if line.startswith("[fwgates] fast-version:")]
    assert lines, result.stdout.str()
    assert "users" in lines[-1] and "rps" in lines[-1] and "p95" in lines[-1]


def test_exact_percentiles_decide_on_both_sides_of_a_locust_bucket_edge(
    project: GateProject, live_v1: Stack
) -> None:
    """Locust rounds 1000-9999 ms to 100 ms: 1004 ms is its bucket 1000, 1110 ms its 1100.

    Exact figures decide by the time the service really took (at least the sleep): 1004 ms is
    above 1000 ms, and 1110 ms is not at most 1100 ms, where Locust's buckets say the opposite.
    """
    _gate(
        project,
        """
        - load: ${url}
          id: above-1000
          paths: ["/work?ms=1004"]
          users: 4
          duration: 5s
          expect:
            endpoints:
              "/work?ms=1004": {p50_ms: "> 1000ms"}
        - load: ${url}
          id: above-1100
          paths: ["/work?ms=1110"]
          users: 1
          duration: 3s
          expect:
            endpoints:
              "/work?ms=1110": {p50_ms: "<= 1100ms"}
        """,
    )
    _run(project, live_v1)
    above_1000 = _result(project, "above-1000")
    above_1100 = _result(project, "above-1100")
    assert above_1000["measured"]["GET /work?ms=1004::p50_ms"] >= 1004
    # 4 users make some 12-20 requests: enough for a 95 % lower bound of the median (5)
    assert above_1000["outcome"] == "passed", above_1000["message"]
    assert above_1100["measured"]["GET /work?ms=1110::p50_ms"] >= 1110
    assert above_1100["outcome"] == "failed"
    assert "GET /work?ms=1110::p50_ms = " in above_1100["message"]
    assert "expected <= 1100ms" in above_1100["message"]
    # Locust's own figures are bucketed: every response time it kept is a multiple of 100
    for result in (above_1000, above_1100):
        stats = json.loads(Path(result["evidence"]["locust_stats_json"]).read_text())
        for entry in stats:
            assert all(int(ms) % 100 == 0 for ms in entry["response_times"]), entry["name"]


def test_rps_is_requests_over_the_real_window_never_above_what_slow_requests_allow(
    project: GateProject, live_v1: Stack
) -> None:
    """Requests that each take at least 1.5 s cannot come faster than users / 1.5 s.

    The window is the start of the first request to the end of the last: every request of
    every user lies inside it, so ``rps <= users / 1.5`` whatever the machine's speed (a
    window between the first and the last request's end made two such requests 'thousands
    per second').
    """
    _gate(
        project,
        """
        - load: ${url}
          id: slow
          paths: ["/work?ms=1500"]
          users: 2
          spawn_rate: 2
          duration: 2s
          expect: {rps: "> 0"}
        """,
    )
    _run(project, live_v1)
    result = _result(project, "slow")
    measured = result["measured"]
    assert measured["requests"] >= 1, result["message"]
    assert measured["p50_ms"] >= 1500
    assert 0 < measured["rps"] <= 2 / 1.5, measured
    assert 0 < measured["GET /work?ms=1500::rps"] <= 2 / 1.5, measured


def test_the_500_build_fails_on_its_failure_ratio(project: GateProject, live_v1: Stack) -> None:
    _gate(
        project,
        """
        - load: ${url}
          id: under-500-build
          paths: ["/version"]
          users: 2
          duration: 2s
          expect: {failure_ratio: "< 1%"}
        """,
    )
    with pytest.raises(DeployError):
        live_v1.deploy("v2", "naive", fault="500")
    try:
        _run(project, live_v1)
    finally:
        live_v1.rollback()
    result = _result(project, "under-500-build")
    assert result["outcome"] == "failed"
    assert result["measured"]["failure_ratio"] == 1.0
    assert result["measured"]["failures"] == result["measured"]["requests"] > 0
    assert any("500" in error for error in result["measured"]["errors"])


def test_saved_baseline_makes_a_slower_run_fail_its_relative_threshold(
    project: GateProject, live_v1: Stack
) -> None:
    """Against a stored baseline, the same speed passes and four times slower fails: decided
    by a one-sided Mann-Whitney U test with the threshold's margin over the exact samples, not
    by two point values (which made an unchanged service fail on a busy machine). A stored
    run without samples cannot make it pass."""
    _gate(
        project,
        """
        - load: ${url}
          id: work
          paths: ["/work?ms=${ms}"]
          users: 4
          duration: 3s
          progress: 1
          baseline: {compare: median, last: 3}
          expect: {p50_ms: "<= +50%"}
        """,
    )
    store = project.path / ".fwgates" / "baselines"
    # no baseline yet: the relative threshold cannot be decided, the criterion is not evaluated
    first = _run(project, live_v1, "--gate-var=ms=50", "--gate-baseline-save", "-q")
    assert first.ret == 1
    assert project.criteria("production-readiness")["performance-verification"] == ("NOT_EVALUATED")
    assert "needs a baseline" in _result(project, "work")["message"]
    assert not [line for line in first.outlines if line.startswith("[fwgates]")]  # quiet
    runs = sorted(store.glob("production-readiness/performance-verification/work/*.json"))
    assert len(runs) == 1
    saved = json.loads(runs[0].read_text())
    assert saved["number"] == 1 and saved["target"] == live_v1.urls["app"]
    assert saved["values"]["p50_ms"] >= 50 and "node" in saved["machine"]
    # the exact samples behind the figure are stored with it
    histogram = saved["distributions"]["p50_ms"]["histogram"]
    assert sum(histogram.values()) >= 50 and min(int(ms) for ms in histogram) >= 50
    # the same speed holds against the stored run: no significant regression
    _run(project, live_v1, "--gate-var=ms=50")
    same = _result(project, "work")
    assert same["outcome"] == "passed", same["message"]
    shown = same["support"]["p50_ms"]["shown"]
    assert "vs baseline" in shown and "margin 50 %, within noise: p = " in shown, shown
    # the same samples in time order: time batches of 0.1 s slots, every request in one
    batches = same["support"]["p50_ms"]["batches"]
    assert 5 <= len(batches) <= 20
    assert sum(sum(b.values()) for b in batches) == sum(
        same["support"]["p50_ms"]["histogram"].values()
    )
    # four times as slow fails, significantly
    _run(project, live_v1, "--gate-var=ms=200")
    slower = _result(project, "work")
    assert slower["outcome"] == "failed"
    assert "p50_ms " in slower["message"] and "beyond the margin 50 %" in slower["message"]
    assert "expected <= +50%" in slower["message"]
    assert len(list(store.glob("*/*/*/*.json"))) == 1  # saved only when asked
    # a run stored without samples (an older store) cannot show "no regression"
    del saved["distributions"]
    runs[0].write_text(json.dumps(saved))
    _run(project, live_v1, "--gate-var=ms=50")
    old = _result(project, "work")
    assert old["outcome"] == "inconclusive", old["message"]
    assert "the baseline holds no latency distribution" in old["message"]


def test_locust_that_cannot_start_hangs_or_cannot_reach_is_an_error_task_errors_fail(
    project: GateProject, live_v1: Stack
) -> None:
    project.pytester.makefile(".py", broken_locustfile="import no_such_module_here\n")
    project.pytester.makefile(".py", hanging_locustfile="import time\ntime.sleep(3600)\n")
    project.pytester.makefile(
        ".py",
        raising_locustfile=textwrap.dedent(
            """
            from locust import FastHttpUser, constant, task

            class Raising(FastHttpUser):
                wait_time = constant(0.2)

                @task
                def get(self):
                    self.client.get("/version")
                    raise ValueError("boom in a task")
            """
        ),
    )
    closed = free_port()
    _gate(
        project,
        f"""
        - load: ${{url}}
          id: broken-locustfile
          locustfile: broken_locustfile.py
          users: 1
          duration: 2s
          expect: {{failure_ratio: "< 1%"}}
        - load: ${{url}}
          id: hanging-locustfile
          locustfile: hanging_locustfile.py
          users: 1
          duration: 2s
          timeout: 8s
        - load: ${{url}}
          id: raising-task
          locustfile: raising_locustfile.py
          users: 1
          duration: 2s
        - load: http://127.0.0.1:{closed}
          id: unreachable
          paths: ["/"]
          duration: 2s
          expect: {{failure_ratio: "< 1%"}}
        """,
    )
    started = time.monotonic()
    result = _run(project, live_v1)
    assert time.monotonic() - started < 90
    assert result.ret == 1
    broken = _result(project, "broken-locustfile")
    assert broken["outcome"] == "error"
    assert "Locust exited with status" in broken["message"]
    assert "no_such_module_here" in broken["message"]
    hanging = _result(project, "hanging-locustfile")
    assert hanging["outcome"] == "error"
    assert "Locust did not finish within 12 s and was stopped" in hanging["message"]
    assert hanging["duration"] < 30
    raising = _result(project, "raising-task")
    assert raising["outcome"] == "failed"  # it measured, but user code failed
    assert "the locustfile raised: " in raising["message"]
    assert "ValueError: boom in a task" in raising["message"]
    unreachable = _result(project, "unreachable")
    assert unreachable["outcome"] == "error"
    assert f"cannot reach 127.0.0.1:{closed}" in unreachable["message"]


def test_pytest_is_never_patched_by_locust_also_under_xdist(
    project: GateProject, live_v1: Stack
) -> None:
    """A YAML load check and the load_test fixture in xdist workers: gevent never enters."""
    _gate(
        project,
        """
        - load: ${url}
          id: yaml-load
          paths: ["/version"]
          users: 1
          duration: 2s
          expect: {failure_ratio: "< 1%"}
        """,
    )
    project.pytester.makeconftest(
        """
        import json, socket, sys

        def pytest_sessionfinish(session):
            workerinput = getattr(session.config, "workerinput", None)
            name = workerinput["workerid"] if workerinput else "controller"
            state = {
                "socket_module": socket.socket.__module__,
                "patched": sorted(
                    n for n in sys.modules if n.split(".")[0] in ("gevent", "locust")
                ),
            }
            with open(f"state-{name}.json", "w") as handle:
                json.dump(state, handle)
        """
    )
    project.pytester.makepyfile(
        test_fixture=f"""
        import socket, sys

        import pytest

        @pytest.mark.gate("production-readiness", criterion="performance-verification")
        def test_load_from_python(load_test):
            result = load_test(
                {live_v1.urls["app"]!r},
                paths={{"/version": 2, "/health": 1}},
                users=1,
                duration="2s",
                expect={{"failure_ratio": "< 1%", "p95_ms": "< 5000ms"}},
            )
            assert result.measured["requests"] > 0
            assert result.evidence["locust_stats_csv"]
            with open("python-stats-path.txt", "w") as handle:
                handle.write(result.evidence["locust_stats_json"])
            assert socket.socket.__module__ == "socket"
            assert "gevent" not in sys.modules
        """
    )
    _run(project, live_v1, "-n", "2", "test_fixture.py")
    assert project.criteria("production-readiness")["performance-verification"] == "PASS"
    checks = project.criterion("production-readiness", "performance-verification")["checks"]
    assert {c["outcome"] for c in checks} == {"passed"} and len(checks) == 2
    states = sorted(project.path.glob("state-*.json"))
    assert [p.name for p in states] == ["state-controller.json", "state-gw0.json", "state-gw1.json"]
    for path in states:
        assert json.loads(path.read_text()) == {"socket_module": "socket", "patched": []}, path
    # the two load runs were in different workers, one after the other (the project's lock)
    yaml_stats = Path(_result(project, "yaml-load")["evidence"]["locust_stats_json"])
    python_stats = Path((project.path / "python-stats-path.txt").read_text())
    windows = sorted([_window(yaml_stats), _window(python_stats)])
    assert windows[0][1] <= windows[1][0], windows


def _window(stats: Path) -> tuple[float, float]:
    entries = json.loads(stats.read_text())
    return (
        min(float(e["start_time"]) for e in entries),
        max(float(e["last_request_timestamp"]) for e in entries),
    )


@pytest.fixture
def worker_port() -> int:
    return free_port()


@pytest.fixture
def locust_worker(worker_port: int, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Locust worker on loopback, as one would run on another machine."""
    env = dict(os.environ)
    env["FWGATES_LOAD_PATHS"] = json.dumps([["GET", "/version", 1]])
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(worker_port),
            "-f",
            f"{PATHS_LOCUSTFILE},{LISTENER}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def test_master_worker_and_processes_aggregate_on_the_master(
    project: GateProject, live_v1: Stack, worker_port: int, locust_worker: Any
) -> None:
    _gate(
        project,
        f"""
        - load: ${{url}}
          id: with-worker
          paths: ["/version"]
          users: 2
          duration: 3s
          workers: 1
          master_bind: 127.0.0.1:{worker_port}
          expect: {{failure_ratio: "< 1%", requests: ">= 5"}}
        - load: ${{url}}
          id: two-processes
          paths: ["/version"]
          users: 2
          duration: 3s
          processes: 2
          expect: {{failure_ratio: "< 1%", requests: ">= 5"}}
        """,
    )
    _run(project, live_v1)
    for check in ("with-worker", "two-processes"):
        result = _result(project, check)
        assert result["outcome"] == "passed", (check, result["message"])
        exact = json.loads(Path(result["evidence"]["exact_response_times_json"]).read_text())
        counted = sum(e["n"] + e["none"] for e in exact["endpoints"].values())
        assert counted == result["measured"]["requests"]
