"""What the host check types share: a testinfra host, a time bound, expected-vs-actual messages.

A host check measures through testinfra's modules (``host.file``, ``host.service``, ...) on the
host named by ``spec.host`` (``local://`` when the run names none). Every measurement is bounded
in time; a host that cannot be reached is an ERROR naming the host, never a pass. Each host
check measures ``mismatches``: how many of its expectations the host does not meet.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..hosts import LOCAL, HostError, bounded, one_line
from .base import Check, CheckError, Measurement

__all__ = ["HOSTS_SCHEMA", "Expectations", "HostCheck", "octal"]

#: ``hosts:`` of a check or a gate file: host specs as testinfra takes them
HOSTS_SCHEMA: dict[str, Any] = {
    "description": "Hosts to run on: a list of testinfra host specs (ssh://user@web1, "
    "paramiko://web2, local://, ansible://group), or one comma-separated string.",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ],
}
STRINGS: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}
MODE: dict[str, Any] = {
    "description": "Octal permission bits as a string: '0600', '644'.",
    "type": "string",
    "pattern": "^0?[0-7]{3,4}$",
}


def octal(value: str | int) -> int:
    return value if isinstance(value, int) else int(str(value), 8)


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


class Expectations:
    """Collects ``what is X, expected Y`` messages and the facts a check saw."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.failures: list[str] = []
        self.facts: dict[str, Any] = {}

    def fact(self, key: str, value: Any) -> Any:
        self.facts[key] = value
        return value

    def equal(self, key: str, actual: Any, expected: Any, label: str | None = None) -> bool:
        self.facts[key] = actual
        if actual == expected:
            return True
        self.fail(f"{label or key} is {shown(actual)}, expected {shown(expected)}")
        return False

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def measurement(self, values: dict[str, float] | None = None) -> Measurement:
        found = dict(values or {})
        found["mismatches"] = float(len(self.failures))
        return Measurement(
            values=found,
            facts=self.facts,
            failures=self.failures,
            explained=frozenset({"mismatches"}),
        )


class HostCheck(Check):
    """A check measured on one host through testinfra; fans out over the run's hosts."""

    host_check = True
    default_timeout = 30.0
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"mismatches"})
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {"hosts": HOSTS_SCHEMA}

    @property
    def host_id(self) -> str:
        return self.spec.host or LOCAL

    def measure(self) -> Measurement:
        hid = self.host_id
        pool = self.context.host_pool
        try:
            host = pool.get(hid)
            measurement = bounded(
                lambda: self.inspect(host), self.timeout, f"{self.type_name} on {hid}"
            )
        except CheckError:
            raise
        except HostError as exc:
            pool.abort(hid)  # a command still under way must not hold the host's shell
            raise CheckError(str(exc)) from None
        except NotImplementedError:
            raise CheckError(f"{self.type_name}: testinfra cannot measure this on {hid}") from None
        except Exception as exc:
            reason = one_line(exc)
            if _lost_connection(exc):
                pool.mark_unreachable(hid, reason)
                raise CheckError(f"host {hid} is unreachable: {reason}") from None
            raise CheckError(f"{hid}: {reason}") from None
        measurement.facts.setdefault("host", hid)
        return measurement

    def inspect(self, host: Any) -> Measurement:
        """Measure on ``host`` (a testinfra Host). Runs in a thread bounded by the timeout."""
        raise NotImplementedError


def _lost_connection(exc: BaseException) -> bool:
    """ssh exits 255 for its own errors; testinfra raises them as RuntimeError(result)."""
    result = exc.args[0] if exc.args else None
    return isinstance(exc, RuntimeError) and getattr(result, "rc", None) == 255
