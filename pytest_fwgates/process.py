"""Running local commands, bounded in time and output, and stopped as a whole.

Every command runs in a process group of its own (``process_group=0``; a group rather than
a new session, so that CPython can start it with ``vfork``, which costs a fraction of a
``fork`` of a large pytest process), read in the calling thread (no thread per command): its
output pipes and a pidfd of the process are watched with one selector until the process ends
or the bound passes.

- **Time.** At the bound the process group gets SIGTERM, then SIGKILL after a short grace;
  the result says ``timed_out`` and has no exit status: a stopped command is never judged by
  the status a signal gave it. An interrupt (Ctrl-C, or SIGTERM turned into one) stops the
  command the same way and is raised again.
- **Everything it started.** When the command ends, its process group is killed (background
  jobs ``cmd &``). When it is stopped (bound or interrupt), every process that inherited its
  marker variable ``FWGATES_RUN_TOKEN`` is killed too, also those that left the group or the
  session (``set -m``, ``setsid``): the way Jenkins finds the processes of a build. A
  command that ends by itself may leave a daemon it detached on purpose (starting a service is
  a legitimate step); nothing of a stopped command survives.
- **Output.** Read incrementally; a bounded head and tail of each stream are kept, the middle
  is counted and dropped. Known secrets are masked before the text is cut, and a partial
  secret at a cut edge is trimmed away.
- **A killed run.** Should pytest itself be killed (SIGKILL), a watchdog process stops every
  process the run started (:mod:`pytest_fwgates.watchdog`).
- **Pipes held by children.** Once the command has ended, the pipes are drained for a short
  moment only: a child that keeps them open cannot stretch the bound.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .watchdog import ensure_watchdog

__all__ = [
    "DEFAULT_KEPT",
    "TOKEN_VAR",
    "ProcessResult",
    "run_argv",
    "run_shell",
]

#: bytes of each stream kept at most (a head of a sixteenth, the rest from the end)
DEFAULT_KEPT = 1024 * 1024
#: the variable that marks every process a command started
TOKEN_VAR = "FWGATES_RUN_TOKEN"
_TOKEN_KEY = TOKEN_VAR.encode()
#: seconds between SIGTERM and SIGKILL when a command is stopped
KILL_GRACE = 2.0
#: seconds the pipes are drained after the command ended
_DRAIN = 0.2
_READ = 65536
_Selector: type[selectors.BaseSelector] = getattr(
    selectors, "PollSelector", selectors.DefaultSelector
)


@dataclass
class ProcessResult:
    """How a command ended, and what it wrote (bounded, masked)."""

    #: the exit status; a negative number is the signal that ended it; None if it was stopped
    exit_status: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    #: bytes written to stdout and stderr in all, and whether some were dropped
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    truncated: bool = False


class _Kept:
    """A bounded head and tail of a byte stream."""

    def __init__(self, limit: int) -> None:
        self.head_limit = max(limit // 16, 1)
        self.tail_limit = max(limit - self.head_limit, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    def text(self, mask: Callable[[str], str], longest_secret: int) -> tuple[str, bool]:
        if len(self.tail) > self.tail_limit:
            del self.tail[: len(self.tail) - self.tail_limit]
        dropped = self.total - len(self.head) - len(self.tail)
        head = mask(self.head.decode("utf-8", "replace"))
        if dropped <= 0:
            return mask((self.head + self.tail).decode("utf-8", "replace")), False
        tail = mask(self.tail.decode("utf-8", "replace"))
        # a secret cut in two at an edge is masked by neither part: trim the edges
        trim = max(longest_secret - 1, 0)
        if trim:
            head, tail = head[: max(len(head) - trim, 0)], tail[trim:]
        return f"{head}\n… [{dropped} bytes not kept] …\n{tail}", True


def _no_mask(text: str) -> str:
    return text


def run_shell(
    command: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float,
    max_output: int = DEFAULT_KEPT,
    mask: Callable[[str], str] = _no_mask,
    longest_secret: int = 0,
) -> ProcessResult:
    """Run ``command`` with ``/bin/sh -c``; values reach it only through ``env``.

    A command without values inherits this process's environment as it is, and the shell
    exports the marker variable before the command's first word (the marker is a constant of
    hex digits: no value is ever put in the text). That spares ``subprocess`` encoding the whole
    environment again for every command (about 30 µs each); the command's own text, line
    numbers and ``$0`` are unchanged.
    """
    token = _token()
    if env:
        argv, environ = ["/bin/sh", "-c", command], _environment(env, token)
    else:
        argv, environ = ["/bin/sh", "-c", f"export {TOKEN_VAR}={token}; {command}"], None
    return _run(argv, environ, token, cwd, timeout, max_output, mask, longest_secret)


def run_argv(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float,
    max_output: int = DEFAULT_KEPT,
    mask: Callable[[str], str] = _no_mask,
    longest_secret: int = 0,
) -> ProcessResult:
    """Run ``argv`` (no shell) bounded by ``timeout`` seconds; see the module docstring.

    ``env`` is added to this process's environment. Raises :class:`OSError` when the program
    cannot be started (missing, not executable).
    """
    token = _token()
    environ = _environment(env, token)
    return _run(argv, environ, token, cwd, timeout, max_output, mask, longest_secret)


def _token() -> str:
    """A command's marker: hex digits only, so that a shell may be given it as text."""
    return os.urandom(16).hex()


def _run(
    argv: Sequence[str],
    environ: Mapping[bytes, bytes] | None,
    token: str,
    cwd: Path | str | None,
    timeout: float,
    max_output: int,
    mask: Callable[[str], str],
    longest_secret: int,
) -> ProcessResult:
    """Run ``argv`` with ``environ`` (None: this process's, the marker already in ``argv``)."""
    started = time.monotonic()
    deadline = started + max(timeout, 0.0)
    out, err = _Kept(max_output), _Kept(max_output)
    with _started(argv, environ, cwd, token) as proc:
        status: int | None = None
        timed_out = False
        try:
            status = _pump(proc, out, err, deadline)
            if status is None:
                timed_out = True
                _stop(proc, token)
        except BaseException:
            _stop(proc, token)
            raise
        finally:
            _kill_group(proc.pid)
        duration = time.monotonic() - started
    stdout, cut_out = out.text(mask, longest_secret)
    stderr, cut_err = err.text(mask, longest_secret)
    return ProcessResult(
        exit_status=None if timed_out else status,
        stdout=stdout,
        stderr=stderr,
        duration_s=duration,
        timed_out=timed_out,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        truncated=cut_out or cut_err,
    )


def _environment(extra: Mapping[str, str] | None, token: str) -> dict[bytes, bytes]:
    """This process's environment, with ``extra`` and the marker, already encoded.

    CPython keeps the encoded form of ``os.environ`` (``_data``): copying it costs a
    microsecond, where decoding and encoding each variable again cost some 40 per command.
    """
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):
        environ: dict[bytes, bytes] = dict(data)
    else:  # another implementation: encode it here
        environ = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
    if extra:
        for key, value in extra.items():
            environ[os.fsencode(key)] = os.fsencode(value)
    environ[_TOKEN_KEY] = token.encode()
    return environ


@contextlib.contextmanager
def _started(
    argv: Sequence[str], environ: Mapping[bytes, bytes] | None, cwd: Path | str | None, token: str
) -> Iterator[subprocess.Popen[bytes]]:
    """The started process; whatever ends the block (an interrupt arriving before the
    caller's own guard too), a process still running is stopped as a whole."""
    ensure_watchdog()  # marks it, and what it starts, for a sweep should pytest be killed
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=environ,
        process_group=0,
    )
    try:
        yield proc
    finally:
        try:
            if proc.poll() is None:
                _stop(proc, token)
        finally:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            with contextlib.suppress(Exception):
                proc.wait(timeout=KILL_GRACE + 5)


def _pump(proc: subprocess.Popen[bytes], out: _Kept, err: _Kept, deadline: float) -> int | None:
    """Read both streams until the process ends (its status) or the deadline (None)."""
    assert proc.stdout is not None and proc.stderr is not None
    sinks = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    pidfd = _pidfd(proc.pid)
    status: int | None = None
    drain_until: float | None = None
    # poll: for three descriptors, cheaper to set up than epoll (no descriptor of its own)
    with _Selector() as selector:
        for fd in sinks:
            selector.register(fd, selectors.EVENT_READ)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ)
        try:
            # until the process has ended and its pipes are closed (or drained for a moment)
            while status is None or sinks:
                now = time.monotonic()
                if drain_until is not None:
                    if now >= drain_until:
                        break
                    wait = drain_until - now
                else:
                    if now >= deadline:
                        return None
                    wait = deadline - now
                    if pidfd is None:
                        wait = min(wait, 0.01)
                for key, _ in selector.select(wait):
                    fd = int(key.fd)
                    if fd == pidfd:
                        selector.unregister(fd)
                        continue
                    data = os.read(fd, _READ)
                    if data:
                        sinks[fd].add(data)
                    else:
                        selector.unregister(fd)
                        del sinks[fd]
                if status is None:
                    status = proc.poll()
                    if status is not None and sinks:
                        # background jobs die with the group; a pipe still held is drained briefly
                        _kill_group(proc.pid)
                        drain_until = time.monotonic() + _DRAIN
        finally:
            if pidfd is not None:
                os.close(pidfd)
    return status


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop(proc: subprocess.Popen[bytes], token: str) -> None:
    """SIGTERM to the group, SIGKILL after the grace, then everything the command started."""
    _kill_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE)
    _kill_group(proc.pid)
    for pid in _descendants(proc.pid, token):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE)


def _descendants(group: int, token: str) -> list[int]:
    """Processes of ``group`` and processes whose environment carries ``token``."""
    marker = f"{TOKEN_VAR}={token}".encode()
    found = []
    own = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == own:
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
            # after the command name in parentheses: state ppid pgrp session
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[2]) == group:
                found.append(pid)
                continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return found
