"""``process``: how many processes of a name (and user) run on the host."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Measurement
from .host import Expectations, HostCheck


class ProcessCheck(HostCheck):
    type_name = "process"
    summary = "Processes on the host by command name (and user): count."
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"mismatches", "count"})
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **HostCheck.options_schema,
        "user": {"type": "string", "minLength": 1, "description": "only processes of this user"},
    }
    default_expect: ClassVar[dict[str, Any]] = {"count": ">= 1"}

    def inspect(self, host: Any) -> Measurement:
        name = self.spec.target
        criteria: dict[str, Any] = {"comm": name}
        if self.spec.options.get("user"):
            criteria["user"] = str(self.spec.options["user"])
        found = host.process.filter(**criteria)
        seen = Expectations(name)
        seen.fact("pids", sorted(int(p.pid) for p in found)[:50])
        return seen.measurement({"count": float(len(found))})
