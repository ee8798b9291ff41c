"""Nothing a run started outlives it by more than a few seconds, whatever ends it: a real
pytest run with a command that left children behind (a background job, one in a session of
its own) and an earlier one that detached a daemon gets a real SIGKILL, SIGTERM or SIGINT,
then /proc is read for what is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

LONG = """
        - command: >-
            setsid -f sh -c 'echo $$ > daemon.pid; exec sleep 300' > /dev/null 2>&1;
            while [ ! -s daemon.pid ]; do sleep 0.05; done
          id: a daemon detached on purpose
        - command: >-
            sh -c 'echo $$ > bg.pid; exec sleep 300' &
            setsid sh -c 'echo $$ > sid.pid; exec sleep 300' &
            (set -m; sh -c 'echo $$ > job.pid; exec sleep 300' &) ;
            echo $$ > cmd.pid; sleep 300
          timeout: 600s
"""
PIDS = ("daemon.pid", "bg.pid", "sid.pid", "job.pid", "cmd.pid")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] != b"Z"


def _in(folder: Path) -> list[int]:
    """Live processes whose working directory is ``folder`` (all the run started)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():  # pytester made it ours too
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(folder) and _alive(int(entry)):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _pids(folder: Path, deadline: float) -> list[int]:
    while True:
        try:
            texts = [(folder / name).read_text() for name in PIDS]
            if all(t.strip() for t in texts):
                return [int(t) for t in texts]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the command did not start: {os.listdir(folder)}")
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("sig", "xdist"),
    [
        (signal.SIGKILL, False),
        (signal.SIGKILL, True),
        (signal.SIGTERM, False),
        (signal.SIGINT, False),
    ],
    ids=["SIGKILL", "SIGKILL-xdist", "SIGTERM", "SIGINT"],
)
def test_nothing_outlives_a_killed_run(project: GateProject, sig: int, xdist: bool) -> None:
    project.production_ready(LONG)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    argv += ["--gate=production-readiness", *(["-n", "2"] if xdist else ["-p", "no:xdist"])]
    run = subprocess.Popen(
        argv,
        cwd=project.path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        pids = _pids(project.path, time.monotonic() + 30)
        assert all(_alive(pid) for pid in pids)
        time.sleep(0.2)
        os.kill(run.pid, sig)
        run.wait(timeout=30)
        deadline = time.monotonic() + 8
        while _in(project.path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in pids if _alive(p)] == []
        assert _in(project.path) == []
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        for pid in _in(project.path):
            os.kill(pid, signal.SIGKILL)


def _watchdogs() -> list[int]:
    """The watchdogs this process started (its children running the watchdog's code)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            args = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and args[1:4] == [b"-I", b"-S", b"-c"]:
            found.append(int(name))
    return found


def test_one_watchdog_per_process_whatever_reimports_the_plugin(project: GateProject) -> None:
    """Runs in one process that import the plugin afresh each time (pytester's inline runs
    restore sys.modules after each) share one watchdog: none is left idle per run."""
    project.gate(
        "security-compliance",
        """
        gate: security-compliance
        criteria:
          access-control:
            - command: "true"
        """,
    )
    before = set(_watchdogs())
    for _ in range(3):
        project.run("--gate=security-compliance", "-p", "no:randomly")
    assert len(set(_watchdogs()) - before) <= 1
