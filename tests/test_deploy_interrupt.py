"""An interrupt (Ctrl-C) at each phase of a deploy in steps ends the run within its bound.

A real HTTP server on loopback answers the version a file holds; the step commands and
``on_abort`` are shell commands that write that file and a marker of the phase they are in.
A helper thread sends SIGINT to this process (process-directed, as a terminal does) once the
phase is reached; the check must raise KeyboardInterrupt within a few seconds, and, when the
interrupt came during the steps, must have run ``on_abort`` first.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import Source
from tests.loopback import http_server

#: seconds from the last interrupt to the end of the run, at most (a busy machine included);
#: every phase's own wait is 30 s, so a run that waits it out fails this
BOUND_S = 10.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    version = tmp_path / "version"
    version.write_text("v1")

    def answer(path: str) -> tuple[int, bytes]:
        try:
            shown = version.read_text().strip()
        except OSError:
            shown = "v1"
        return 200, json.dumps({"version": shown or "v1"}).encode()

    with http_server(answer) as url:
        yield url + "/", tmp_path


def _sh(folder: Path, *parts: str) -> str:
    return "; ".join(p.replace("{D}", shlex.quote(str(folder))) for p in parts)


# phase -> (settings, the markers each interrupt waits for, whether on_abort must have ended)
PHASES: dict[str, tuple[dict[str, Any], list[str], bool]] = {
    "during a step's command": (
        {"deploy": ("touch {D}/at", "sleep 30")},
        ["at"],
        True,
    ),
    "during a pause": (
        {"deploy": ("echo v2 > {D}/version", "touch {D}/at")},
        ["at"],
        True,
    ),
    "during on_abort, a second Ctrl-C": (
        {
            "deploy": ("echo v2 > {D}/version", "touch {D}/at"),
            "on_abort": ("touch {D}/abort-at", "sleep 30", "echo v1 > {D}/version"),
        },
        ["at", "abort-at"],
        False,
    ),
    "during an on_abort that hangs, bounded by on_abort_timeout": (
        {
            "deploy": ("echo v2 > {D}/version", "touch {D}/at"),
            "on_abort": ("touch {D}/abort-at", "sleep 30"),
            "on_abort_timeout": "1s",
        },
        ["at"],
        False,
    ),
    "during the settling after the last step": (
        # the command shifts nothing: the service never becomes stable on v2
        {"deploy": ("touch {D}/at",), "steps": [{"weight": 100}]},
        ["at"],
        False,
    ),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_an_interrupt_at_each_phase_of_a_deploy_in_steps_ends_the_run_in_its_bound(
    served: tuple[str, Path], phase: str
) -> None:
    url, folder = served
    settings, markers, aborted = PHASES[phase]
    options: dict[str, Any] = {
        "health": url,
        "version": {"json": "version", "expect": "v2"},
        "steps": [{"weight": 30, "pause": "30s"}, {"weight": 100}],
        "on_abort": ("touch {D}/aborted", "echo v1 > {D}/version"),
        "interval": "20ms",
        "settle_timeout": "30s",
        "timeout": 120,
        **settings,
    }
    options = {"deploy": _sh(folder, *options.pop("deploy")), **options}
    options["on_abort"] = _sh(folder, *options["on_abort"])
    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    spec = loader.spec_from_mapping(None, None, options, Source(folder / "g.yaml", 1))
    context = CheckContext(rootdir=folder, redactor=loader.redactor, evidence_root=folder)
    check = registry.get("deploy")(spec, context)

    armed = True
    sent: list[float] = []
    done = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if armed:  # never after the check: a late signal must not reach the test session
            raise KeyboardInterrupt

    def interrupt() -> None:
        for marker in markers:
            deadline = time.monotonic() + 20
            while not (folder / marker).exists():
                if done.wait(0.02) or time.monotonic() > deadline:
                    return
            if done.wait(0.3):  # into the phase, past its first instant
                return
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    old = signal.signal(signal.SIGINT, handler)
    sender = threading.Thread(target=interrupt, daemon=True)
    try:
        sender.start()
        with pytest.raises(KeyboardInterrupt):
            run_check(check, "interrupt")
        ended = time.monotonic()
    finally:
        done.set()
        sender.join(5)
        armed = False
        signal.signal(signal.SIGINT, old)
    assert len(sent) == len(markers), f"{phase}: the run ended before every interrupt was sent"
    took = ended - sent[-1]
    assert took < BOUND_S, f"{phase}: the run ended {took:.1f} s after the interrupt"
    if aborted:
        assert (folder / "aborted").exists(), f"{phase}: on_abort did not run"
        assert (folder / "version").read_text().strip() == "v1"


def _blocked(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/status") as status:
        for line in status:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError("no SigBlk")


def test_the_prober_and_deadline_threads_leave_ctrl_c_to_the_main_thread(
    served: tuple[str, Path],
) -> None:
    """A process-directed SIGINT the kernel handed to a helper thread would only set Python's
    flag: the main thread, blocked in a command's poll, would not wake until the command
    ended. Helper threads block SIGINT and SIGTERM, so the main thread always gets them."""
    from pytest_fwgates.deadline import _watchdog
    from pytest_fwgates.locust_run import _ProgressWatcher
    from pytest_fwgates.probe import Prober

    url, folder = served
    wanted = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    watcher = _ProgressWatcher(folder / "progress.json", lambda state: None, 0.5)
    watcher.start()
    try:
        with Prober(url, interval=0.02) as prober:
            assert prober.wait_for(lambda probes: len(probes) >= 2, 10)
            time.sleep(0.1)  # the watcher's first line has run
            threads = [prober._thread, _watchdog._thread, watcher._thread]
            for thread in threads:
                assert thread is not None and thread.native_id is not None
                assert _blocked(thread.native_id) & wanted == wanted, thread.name
    finally:
        watcher.stop()
    assert _blocked(threading.main_thread().native_id or 0) & wanted == 0
