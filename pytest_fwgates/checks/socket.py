"""``socket``: a socket on the host is (or is not) listening: ``tcp://0.0.0.0:443``."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Measurement
from .host import Expectations, HostCheck


class SocketCheck(HostCheck):
    type_name = "socket"
    summary = "A listening socket on the host: tcp://ADDRESS:PORT, udp://..., unix:///path."
    target_schema: ClassVar[dict[str, Any]] = {
        "type": "string",
        "pattern": r"^(tcp|udp|unix)://.+",
    }
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {"listening": {"type": "boolean"}}

    def inspect(self, host: Any) -> Measurement:
        url = self.spec.target
        wanted = self.spec.expect.get("listening", True)
        seen = Expectations(url)
        listening = seen.fact("listening", bool(host.socket(url).is_listening))
        if listening != wanted:
            state = "listening" if listening else "not listening"
            seen.fail(f"{url} is {state}, expected {'listening' if wanted else 'closed'}")
        return seen.measurement()
