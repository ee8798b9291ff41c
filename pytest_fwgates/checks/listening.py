"""``listening``: nothing listens on the host beyond the ports the gate allows."""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from .base import Measurement
from .host import Expectations, HostCheck

_ALLOWED: dict[str, Any] = {
    "description": "ports (443) or sockets (tcp://127.0.0.1:8080) allowed to listen",
    "type": "array",
    "items": {"type": ["integer", "string"]},
}


def _split(url: str) -> tuple[str, str, int | None]:
    scheme, _, rest = url.partition("://")
    address, _, port = rest.rpartition(":")
    return scheme, address.strip("[]"), int(port) if port.isdigit() else None


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _allowed(url: str, allowed: list[Any]) -> bool:
    scheme, _, port = _split(url)
    for entry in allowed:
        if isinstance(entry, int) or str(entry).isdigit():
            if port == int(entry):
                return True
        elif str(entry) == url or str(entry) == f"{scheme}://*:{port}":
            return True
    return False


class ListeningCheck(HostCheck):
    type_name = "listening"
    summary = "Nothing listens beyond the allowed ports (target: tcp, udp or all)."
    target_schema: ClassVar[dict[str, Any]] = {"enum": ["tcp", "udp", "all"]}
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"mismatches", "unexpected"})
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **HostCheck.options_schema,
        "ignore_loopback": {
            "type": "boolean",
            "description": "leave out sockets bound to loopback addresses (127.0.0.0/8, ::1)",
        },
    }
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {"allowed": _ALLOWED}

    def inspect(self, host: Any) -> Measurement:
        protocol = self.spec.target
        allowed = list(self.spec.expect.get("allowed") or [])
        skip_loopback = bool(self.spec.options.get("ignore_loopback"))
        sockets = []
        for url in host.socket.get_listening_sockets():
            scheme, address, _ = _split(url)
            if scheme == "unix" or (protocol != "all" and scheme != protocol):
                continue
            if skip_loopback and _loopback(address):
                continue
            sockets.append(url)
        seen = Expectations(protocol)
        seen.fact("listening", sorted(sockets))
        unexpected = sorted(url for url in sockets if not _allowed(url, allowed))
        if unexpected:
            seen.fail(
                f"unexpected listeners: {', '.join(unexpected)} "
                f"(allowed: {', '.join(str(a) for a in allowed) or 'none'})"
            )
        return seen.measurement({"unexpected": float(len(unexpected))})
