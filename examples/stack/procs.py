"""Processes, ports and HTTP for the example stack: everything bounded in time.

A started process is recorded with its pid, its start time (field 22 of ``/proc/PID/stat``) and a
marker its command line contains (the stack directory). Before a signal is sent, the pid is checked
against both, so a recycled pid is never signalled. Each service runs in its own session and process
group, so its workers go with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
EXEC_TIMEOUT_S = 10.0


class StackError(RuntimeError):
    """A stack command could not do what it was asked; the message says why."""


# Processes this interpreter started: polled (reaped) when their liveness is asked.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
# Exit statuses of those that ended (negative: killed by that signal).
_EXITED: dict[int, int] = {}


@dataclass(frozen=True)
class ProcRecord:
    name: str
    pid: int
    starttime: int
    marker: str
    argv: list[str]
    log: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcRecord:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            starttime=int(data["starttime"]),
            marker=str(data["marker"]),
            argv=[str(a) for a in data["argv"]],
            log=str(data["log"]),
        )


# --- /proc ---------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state first), or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def starttime(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_running(pid: int, start: int | None = None) -> bool:
    """True while the process exists and is not a zombie (and started at ``start`` if given)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _EXITED[pid] = int(child.returncode)
        del _CHILDREN[pid]
        return False
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X", "x"):
        return False
    return start is None or int(fields[19]) == start


def owns(rec: ProcRecord) -> bool:
    """The recorded process still runs and is the command the stack started."""
    return is_running(rec.pid, rec.starttime) and rec.marker in cmdline(rec.pid)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X", "x"):
            members.append(int(entry.name))
    return members


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid and fields[0] not in ("Z", "X", "x"):
                found.append(int(entry.name))
    return found


# --- start and stop ------------------------------------------------------------------------


def spawn(
    name: str,
    argv: list[str],
    *,
    env: Mapping[str, str],
    log: Path,
    marker: str,
    cwd: Path | None = None,
) -> ProcRecord:
    """Start ``argv`` in its own session, output appended to ``log``."""
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise StackError(f"{name}: cannot run {argv[0]}: {exc.strerror or exc}") from exc
    _CHILDREN[proc.pid] = proc
    _EXITED.pop(proc.pid, None)
    start = starttime(proc.pid)
    if start is None:
        raise StackError(f"{name}: process {proc.pid} vanished right after start")
    if marker not in " ".join(argv):
        raise StackError(f"{name}: marker {marker!r} not in its command line")
    # Popen returns once exec has begun; the new command line shows a moment later. Wait for it
    # (bounded), so that owns() is true from the first call on.
    deadline = time.monotonic() + EXEC_TIMEOUT_S
    while marker not in cmdline(proc.pid) and is_running(proc.pid, start):
        if time.monotonic() > deadline:
            raise StackError(f"{name}: process {proc.pid} did not finish exec within 10s")
        time.sleep(0.005)
    return ProcRecord(name, proc.pid, start, marker, argv, str(log))


def exit_status(rec: ProcRecord) -> int | None:
    """The exit status when this interpreter started the process and it has ended."""
    child = _CHILDREN.get(rec.pid)
    if child is None:
        return _EXITED.get(rec.pid)
    return child.poll()


def wait_gone(recs: Iterable[ProcRecord], timeout: float) -> list[ProcRecord]:
    """Wait until every process has exited; return those still running at the deadline."""
    pending = list(recs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [r for r in pending if is_running(r.pid, r.starttime)]
        if pending:
            time.sleep(0.05)
    return [r for r in pending if is_running(r.pid, r.starttime)]


def stray_of(rec: ProcRecord, pid: int) -> bool:
    """A process of ``rec``'s group that outlived it (gunicorn workers keep the command line;
    nginx workers rename themselves)."""
    line = cmdline(pid)
    return rec.marker in line or (rec.name == "nginx" and line.startswith("nginx: "))


def leftovers(rec: ProcRecord) -> list[int]:
    """Processes of ``rec`` still running: its leader (if it is still the one recorded), and
    members of its process group that outlived it."""
    found = [rec.pid] if owns(rec) else []
    return found + [p for p in group_members(rec.pid) if p != rec.pid and stray_of(rec, p)]


def stop(
    recs: Iterable[ProcRecord], *, sig: int = signal.SIGTERM, timeout: float = 10.0
) -> dict[str, str]:
    """Signal each process the stack owns, wait (bounded), then SIGKILL its whole group.

    Returns ``name -> outcome`` (``stopped``, ``killed``, ``not running``).
    """
    outcome: dict[str, str] = {}
    signalled: list[ProcRecord] = []
    for rec in recs:
        if not owns(rec):
            # The leader is gone; workers it left behind still carry the stack's command line.
            strays = [p for p in group_members(rec.pid) if stray_of(rec, p)]
            for pid in strays:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            outcome[rec.name] = (
                f"not running ({len(strays)} stray process(es) killed)"
                if strays
                else ("not running")
            )
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec.pid, sig)
        signalled.append(rec)
    left = wait_gone(signalled, timeout)
    for rec in signalled:
        outcome[rec.name] = "killed" if rec in left else "stopped"
        if rec in left:
            # Still running after the bound: the leader was verified above, so its process
            # group (the service and its workers) is the stack's.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec.pid, signal.SIGKILL)
        else:
            for member in group_members(rec.pid):
                if stray_of(rec, member):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(member, signal.SIGKILL)
    wait_gone(signalled, 3.0)
    for rec in signalled:
        child = _CHILDREN.pop(rec.pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1.0)
    return outcome


def reap_finished() -> None:
    """Reap the processes this interpreter started that have ended (no zombies left)."""
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            del _CHILDREN[pid]


def tail(path: str | Path, lines: int = 5) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


# --- ports and HTTP ------------------------------------------------------------------------


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports.

    Every socket stays bound until all are found, so the kernel cannot hand out the same
    port twice (two separate ``free_port()`` calls can return the same number).
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(
    url: str,
    *,
    timeout: float = 2.0,
    method: str = "GET",
    data: bytes | None = None,
    cafile: str | None = None,
) -> tuple[int, bytes]:
    """One bounded request (never through a proxy): ``(status, body)``; raises OSError."""
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Connection", "close")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers) if cafile else _OPENER
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return int(err.code), bytes(err.read())
    except urllib.error.URLError as err:
        reason = err.reason
        raise reason if isinstance(reason, OSError) else OSError(str(reason)) from err


def http_json(url: str, **kwargs: Any) -> tuple[int, Any]:
    status, body = http(url, **kwargs)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def wait_for(
    what: str, probe: Callable[[], str | None], timeout: float, *, every: float = 0.1
) -> None:
    """Call ``probe`` until it returns None (ready); raise TimeoutError with its last reason."""
    deadline = time.monotonic() + timeout
    reason = "no answer yet"
    while True:
        try:
            result = probe()
        except OSError as exc:
            result = f"{type(exc).__name__}: {exc}"
        if result is None:
            return
        reason = result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready within {timeout:.0f}s: {reason}")
        time.sleep(every)
