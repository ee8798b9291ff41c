"""``command``: run a command through testinfra's host, check exit status, output and time."""

from __future__ import annotations

import shlex
import threading
import time
from typing import Any, ClassVar

from .base import Check, CheckError, Measurement

_OUTPUT_KEPT = 2000
_STRINGS: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}
#: exit status of coreutils' timeout when it had to stop the command
_TIMED_OUT = 124


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _first_word(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes
        words = command.split()
    return words[0] if words else command


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _OUTPUT_KEPT else "…" + text[-_OUTPUT_KEPT:]


class CommandCheck(Check):
    type_name = "command"
    summary = "Run a shell command on the host: exit status, output, duration."
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"exit_status", "duration_s"})
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "stdout_contains": _STRINGS,
        "stdout_not_contains": _STRINGS,
        "stderr_contains": _STRINGS,
    }
    default_expect: ClassVar[dict[str, Any]] = {"exit_status": 0}
    default_timeout = 60.0
    shell_target = True

    def measure(self) -> Measurement:
        import testinfra  # lazily: only runs that have command checks pay for it

        host = testinfra.get_host("local://")
        timeout = self.timeout
        seconds = f"{timeout:g}"
        command = self.spec.target
        holder: dict[str, Any] = {}

        def run() -> None:
            try:
                holder["result"] = host.run(
                    "cd %s && exec timeout -k 5 %s /bin/sh -c %s",
                    str(self.context.rootdir),
                    seconds,
                    command,
                )
            except Exception as exc:  # reported as the check's error below
                holder["error"] = exc

        started = time.monotonic()
        worker = threading.Thread(target=run, name=f"fwgates-command-{self.spec.id}", daemon=True)
        worker.start()
        worker.join(timeout + 15)
        duration = time.monotonic() - started
        if worker.is_alive():
            raise CheckError(f"command did not finish within {seconds} s")
        if "error" in holder:
            raise CheckError(f"command could not be run: {holder['error']}")
        result = holder["result"]
        # output that is not UTF-8 is kept with replacement characters, not an error
        stdout = result.stdout_bytes.decode("utf-8", "replace")
        stderr = result.stderr_bytes.decode("utf-8", "replace")
        # a command may exit 124 itself: only a run as long as the timeout timed out
        if result.rc in (_TIMED_OUT, 128 + 9) and duration >= timeout:
            raise CheckError(f"command timed out after {seconds} s")
        if result.rc == 127 and "not found" in stderr:
            raise CheckError(f"command not found: {_first_word(command)}")

        failures: list[str] = []
        expect = self.spec.expect
        for text in _as_list(expect.get("stdout_contains")):
            if text not in stdout:
                failures.append(f"stdout does not contain {text!r}")
        for text in _as_list(expect.get("stdout_not_contains")):
            if text in stdout:
                failures.append(f"stdout contains {text!r}")
        for text in _as_list(expect.get("stderr_contains")):
            if text not in stderr:
                failures.append(f"stderr does not contain {text!r}")
        return Measurement(
            values={"exit_status": float(result.rc), "duration_s": round(duration, 3)},
            facts={"stdout": _tail(stdout), "stderr": _tail(stderr)},
            failures=failures,
        )
