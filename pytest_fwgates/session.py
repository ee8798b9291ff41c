"""One remote shell per ssh host: testinfra's commands without an ssh session each.

testinfra's ssh backend starts ``ssh host CMD`` for every command; even over a shared
ControlMaster connection each one opens a session, forks a login shell and costs a round trip
with setup on both ends. :class:`ShellSession` keeps one ``ssh host /bin/sh`` open per host and
sends each command down its stdin (its length, then its bytes: no text of it is parsed by the
loop); the command runs in ``/bin/sh -c`` of its own with stdin from ``/dev/null``, its output
goes to files on the host, and a header line with the exit status and the byte counts is
followed by exactly those bytes. testinfra's modules still build every
command; only the transport changes.

A session that breaks (the connection drops, a read times out) is closed and the next command
opens a new one; the command that was under way raises, like ssh's own errors do.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import subprocess
import threading
import time
import uuid
from typing import Any

__all__ = ["SessionError", "ShellSession", "attach"]

#: the remote loop: a byte count, then exactly that many bytes of command text (read with dd,
#: which takes no byte more from the pipe); output to files, then a header and the bytes
_LOOP = (
    "umask 077; T=$(mktemp -d) || exit 1; trap 'rm -rf \"$T\"' EXIT; "
    "echo {mark}-ready; "
    "while IFS= read -r n; do "
    'c=$(dd bs=1 count="$n" 2>/dev/null); '
    '/bin/sh -c "$c" </dev/null >"$T/o" 2>"$T/e"; r=$?; '
    'echo "{mark} $r $(wc -c <"$T/o") $(wc -c <"$T/e")"; '
    'cat "$T/o" "$T/e"; '
    "done\n"
)


class SessionError(RuntimeError):
    """The remote shell is gone or did not answer."""


class ShellSession:
    """A persistent ``/bin/sh`` on a host reached by ``argv`` (an ssh command line)."""

    def __init__(self, argv: list[str], read_timeout: float = 600.0) -> None:
        self.argv = argv
        self.read_timeout = read_timeout
        self.mark = f"FWG{uuid.uuid4().hex[:12]}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._buffer = b""
        self._aborted = False

    # -- lifecycle ---------------------------------------------------------------------------
    def _open(self, timeout: float) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [*self.argv, "/bin/sh"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._proc, self._buffer = proc, b""
        assert proc.stdin is not None
        proc.stdin.write(_LOOP.format(mark=self.mark).encode())
        proc.stdin.flush()
        line = self._read_line(timeout)
        if line != f"{self.mark}-ready".encode():
            self.close()
            raise SessionError("the remote shell did not start")
        return proc

    def abort(self) -> None:
        """Stop the remote shell from another thread: a command under way fails at once."""
        proc = self._proc
        if proc is not None:
            self._aborted = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    # -- reading -----------------------------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise SessionError("the remote shell did not answer in time")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            raise SessionError("the remote shell did not answer in time")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            detail = b""
            if proc.stderr is not None and proc.poll() is not None:
                detail = proc.stderr.read() or b""
            text = detail.decode("utf-8", "replace").strip().splitlines()
            raise SessionError(text[-1] if text else "the remote shell closed the connection")
        self._buffer += chunk

    def _read_line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            self._fill(deadline)
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _read_bytes(self, count: int, deadline: float) -> bytes:
        while len(self._buffer) < count:
            self._fill(deadline)
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    # -- running -----------------------------------------------------------------------------
    def run(self, command: str, connect_timeout: float) -> tuple[int, bytes, bytes]:
        """Run ``command`` (shell text) on the host: (exit status, stdout, stderr)."""
        with self._lock:
            if self._aborted:
                self.close()
                self._aborted = False
            proc = self._proc
            if proc is None or proc.poll() is not None:
                proc = self._open(connect_timeout + 5)
            assert proc.stdin is not None
            data = command.encode()
            try:
                proc.stdin.write(b"%d\n" % len(data) + data)
                proc.stdin.flush()
                header = self._read_line(self.read_timeout).split()
                if len(header) != 4 or header[0] != self.mark.encode():
                    raise SessionError("the remote shell answered out of step")
                rc, n_out, n_err = (int(x) for x in header[1:])
                deadline = time.monotonic() + self.read_timeout
                out = self._read_bytes(n_out, deadline)
                err = self._read_bytes(n_err, deadline)
            except (OSError, ValueError, SessionError) as exc:
                self.close()
                if isinstance(exc, SessionError):
                    raise
                raise SessionError(f"the remote shell broke: {exc}") from None
            return rc, out, err


def attach(backend: Any, connect_timeout: float) -> None:
    """Route testinfra ssh ``backend``'s commands through one persistent shell on its host."""
    from testinfra.backend.ssh import SshBackend

    if type(backend) is not SshBackend:
        return  # safe-ssh and other backends keep their own transport
    cmd, args = backend._build_ssh_command("")
    # testinfra's last words are "%s %s" for (host, command): keep the host, drop the command
    text = backend.quote(" ".join([*cmd[:-1], "%s"]), *args[:-1])
    argv = shlex.split(text)
    session = ShellSession(argv)

    def run(command: str, *cmd_args: str, **kwargs: Any) -> Any:
        text = backend.get_command(command, *cmd_args)
        try:
            rc, out, err = session.run(text, connect_timeout)
        except SessionError as exc:
            result = backend.result(255, backend.encode(text), b"", str(exc).encode())
            raise RuntimeError(result) from None
        return backend.result(rc, backend.encode(text), out, err)

    backend.run = run
    backend.fwgates_session = session
