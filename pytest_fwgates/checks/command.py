"""``command``: run a shell command on this machine, check exit status, output and time.

The command runs through :mod:`pytest_fwgates.process`: ``/bin/sh -c`` in a session of its
own, bounded by the check's timeout, with gate-file values in its environment only. A
command stopped at the bound is an error, whatever status the signal gave it.
"""

from __future__ import annotations

import shlex
import time
from typing import Any, ClassVar

from ..fsutil import write_file
from ..hosts import LOCAL, HostError, bounded, one_line
from ..process import ProcessResult
from .base import Check, CheckError, Measurement, text_failures
from .host import HOSTS_SCHEMA

#: characters of each stream shown in reports (the evidence file keeps more)
_SHOWN = 2000
_STRINGS: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}


def _first_word(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes
        words = command.split()
    return words[0] if words else command


def _tail(text: str, longest_secret: int) -> str:
    """The end of ``text`` (already masked); a secret cut at the edge is trimmed away."""
    text = text.strip()
    if len(text) <= _SHOWN:
        return text
    return "…" + text[-_SHOWN:][max(longest_secret - 1, 0) :]


class CommandCheck(Check):
    type_name = "command"
    summary = "Run a shell command on the host: exit status, output, duration."
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"exit_status", "duration_s"})
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "stdout_contains": _STRINGS,
        "stdout_not_contains": _STRINGS,
        "stderr_contains": _STRINGS,
    }
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "hosts": {
            **HOSTS_SCHEMA,
            "description": "run on these hosts through testinfra (default: this machine)",
        },
    }
    default_expect: ClassVar[dict[str, Any]] = {"exit_status": 0}
    default_timeout = 60.0
    shell_target = True

    def execute(self) -> ProcessResult:
        """Run the command (bounded); an error if it cannot start or is stopped at the bound."""
        if self.spec.host not in (None, LOCAL):
            return self.execute_remote(str(self.spec.host))
        result = self.run_local(self.spec.target, self.timeout, "command", self.spec.env)
        if result.timed_out or result.exit_status is None:
            raise CheckError(
                f"command did not finish within {self.timeout:g} s and was stopped"
                f"{self._output_note(result)}"
            )
        return result

    def execute_remote(self, hid: str) -> ProcessResult:
        """Run the command on host ``hid`` through its testinfra backend (ssh, paramiko, ...).

        Gate-file values travel as ``env NAME=value`` arguments, each quoted on its own; the
        command text holds only references to them. coreutils' ``timeout`` bounds it on the
        host, and the wait here is bounded too.
        """
        redactor = self.context.redactor
        try:
            host = self.context.host_pool.get(hid)
        except HostError as exc:
            raise CheckError(str(exc)) from None
        assignments = [f"{name}={value}" for name, value in sorted(self.spec.env.items())]
        template = "exec env " + "%s " * len(assignments) + "timeout -k 5 %s /bin/sh -c %s"
        seconds = f"{self.timeout:g}"
        started = time.monotonic()
        try:
            result = bounded(
                lambda: host.run(template, *assignments, seconds, self.spec.target),
                self.timeout + 15,
                f"command on {hid}",
            )
        except HostError:
            raise CheckError(f"command on {hid} did not finish within {seconds} s") from None
        except Exception as exc:
            raise CheckError(f"command could not be run on {hid}: {one_line(exc)}") from None
        duration = time.monotonic() - started
        stdout = redactor.text(result.stdout_bytes.decode("utf-8", "replace"))
        stderr = redactor.text(result.stderr_bytes.decode("utf-8", "replace"))
        timed_out = result.rc in (124, 128 + 9) and duration >= self.timeout
        if timed_out:
            raise CheckError(f"command on {hid} did not finish within {seconds} s and was stopped")
        return ProcessResult(
            exit_status=result.rc,
            stdout=stdout,
            stderr=stderr,
            duration_s=duration,
            stdout_bytes=len(result.stdout_bytes),
            stderr_bytes=len(result.stderr_bytes),
        )

    @staticmethod
    def _output_note(result: ProcessResult) -> str:
        tail = (result.stderr or result.stdout).strip().splitlines()
        return f"; last output: {tail[-1][:200]}" if tail else ""

    def measure(self) -> Measurement:
        result = self.execute()
        status, stdout, stderr = result.exit_status, result.stdout, result.stderr
        assert status is not None  # execute() raised for a stopped command
        if status == 127 and "not found" in stderr:
            raise CheckError(f"command not found: {_first_word(self.spec.display_target)}")
        expect = self.spec.expect
        failures = text_failures("stdout", stdout, expect) + text_failures("stderr", stderr, expect)
        longest = self.context.redactor.longest
        measurement = Measurement(
            values={"exit_status": status, "duration_s": round(result.duration_s, 3)},
            facts={"stdout": _tail(stdout, longest), "stderr": _tail(stderr, longest)},
            failures=failures,
        )
        if result.truncated or len(stdout) > _SHOWN or len(stderr) > _SHOWN:
            # the whole kept output (bounded head and tail, masked) as evidence
            folder = self.context.evidence_dir(self.spec)
            for name, text in (("stdout", stdout), ("stderr", stderr)):
                if text:
                    path = write_file(folder / f"{name}.txt", text, errors="backslashreplace")
                    measurement.evidence[name] = path
        return measurement
