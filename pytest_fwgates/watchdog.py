"""Nothing a run started outlives it: a watchdog process that outlives pytest for a moment.

pytest marks its environment with ``FWGATES_RUNS=<id>`` (appended to the ids it inherited:
an xdist worker carries its controller's id and its own), so every process it starts from
then on, and every process those start, carries the mark, whatever group or session it
moves to. The watchdog is started once per pytest process, in a process group of its own
(Ctrl-C and a kill of pytest's group do not reach it), with the read end of a pipe whose
write end only pytest holds.

- pytest ends normally: it writes one byte before it exits, and the watchdog exits without
  doing anything. Commands were stopped by their own bounds; a daemon a command detached on
  purpose stays.
- pytest is interrupted (Ctrl-C, SIGTERM): it stops the running command itself, and at exit
  closes the pipe without the byte, so the watchdog stops what is left, daemons too.
- pytest is killed (SIGKILL, the OOM killer, a signal it does not handle): the kernel closes
  the pipe, the watchdog reads its end, and it stops every process carrying the run's id:
  SIGTERM, SIGKILL a second later, again until none has been seen for a while (a process in
  the middle of a fork or an exec can hide for a moment): a few seconds at most.

Chosen over ``PR_SET_PDEATHSIG`` (it needs code between fork and exec, which rules out the
``vfork`` that keeps starting a command cheap, and it reaches only direct children) and a
cgroup (not writable in most containers and CI runners). Processes that clear their
environment (``env -i``, ``sudo``) carry no mark and are not found.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading

__all__ = ["RUNS_VAR", "ensure_watchdog", "release_watchdog", "sweep_at_exit"]

#: the variable whose comma-separated ids mark the processes of runs
RUNS_VAR = "FWGATES_RUNS"

# the watchdog itself: stdlib only, no site (it starts in some 15 ms)
_CODE = r"""
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
mark = sys.argv[1].encode()
while True:
    try:
        data = os.read(0, 64)
    except InterruptedError:
        continue
    break
if data:
    sys.exit(0)  # the run ended normally
me = os.getpid()
prefix = b"FWGATES_RUNS="

def marked():
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/" + name + "/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        for entry in env.split(b"\0"):
            if entry.startswith(prefix) and mark in entry[len(prefix):].split(b","):
                found.append(int(name))
                break
    return found

start = time.monotonic()
quiet = 0  # passes in a row that found none: a process being forked or exec'd may hide
while True:
    pids = marked()
    late = time.monotonic() - start
    quiet = 0 if pids else quiet + 1
    if quiet >= 10 and late > 1.5:
        break
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL if late > 1.0 else signal.SIGTERM)
        except OSError:
            pass
    if late > 10.0:
        break
    time.sleep(0.05)
"""

_lock = threading.Lock()


class _Holder:
    """This process's watchdog: (pid of the pytest process that started it, the write end of
    its pipe, the watchdog, the run's id), and whether the run was interrupted (then the
    watchdog sweeps at the end too).

    Kept on the ``sys`` module, not in this module: a host that imports the plugin afresh for
    each run in one process (pytester's inline runs, an embedding tool that resets
    ``sys.modules``) would otherwise start one more watchdog per run, each left idle until the
    process ends, and the exit handler of the first would not see a later run's interruption.
    """

    state: tuple[int, int, subprocess.Popen[bytes], str] | None = None
    sweep = False


def _holder() -> _Holder:
    holder: _Holder | None = getattr(sys, "_fwgates_watchdog", None)
    if holder is None:
        holder = _Holder()
        sys._fwgates_watchdog = holder  # type: ignore[attr-defined]
    return holder


def ensure_watchdog() -> None:
    """Start this process's watchdog and mark its environment, once (cheap after that)."""
    state = _holder().state
    if state is not None and state[0] == os.getpid():
        if not os.environ.get(RUNS_VAR, "").endswith(state[3]):
            _mark(state[3])  # someone replaced the environment (a test's patch.dict)
        return
    with _lock:
        _start()


def _mark(run_id: str) -> None:
    inherited = [i for i in os.environ.get(RUNS_VAR, "").split(",") if i and i != run_id]
    os.environ[RUNS_VAR] = ",".join([*inherited, run_id])


def _start() -> None:
    holder = _holder()
    state = holder.state
    if state is not None and state[0] == os.getpid():
        return
    run_id = os.urandom(8).hex()
    read_end, write_end = os.pipe()  # not inherited by commands (close_fds, O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _CODE, run_id],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
        )
    except OSError:
        os.close(write_end)
        return  # no watchdog: commands are still bounded and stopped as they run
    finally:
        os.close(read_end)
    _mark(run_id)  # only now: the watchdog does not carry its own run's id
    holder.state = (os.getpid(), write_end, proc, run_id)
    atexit.register(release_watchdog)


def sweep_at_exit() -> None:
    """The run was interrupted (Ctrl-C, SIGTERM): at exit, the watchdog stops everything the
    run started, daemons that commands detached on purpose too."""
    _holder().sweep = True


def release_watchdog() -> None:
    """Let the watchdog go: it leaves at once after a normal run, and after an interrupted one
    stops what is left of it first (waited for, a few seconds at most)."""
    holder = _holder()
    with _lock:
        state = holder.state
        if state is None or state[0] != os.getpid():
            return
        holder.state = None
        _, write_end, proc, _ = state
        if not holder.sweep:
            with contextlib.suppress(OSError):
                os.write(write_end, b"x")
        os.close(write_end)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        # the id stays in the environment: what was started under it is known by it
