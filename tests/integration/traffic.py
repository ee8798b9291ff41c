"""Background traffic for the integration tests, and a check that nothing was left running."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from examples.stack import procs

ROOT = Path(__file__).resolve().parents[2]
PROBE_TIMEOUT_S = 1.0
LOOP_LIMIT_S = 120.0  # a background loop stops by itself after this, whatever happens


def http_session() -> requests.Session:
    """A session that never goes through a proxy and opens a new connection per request."""
    session = requests.Session()
    session.trust_env = False
    session.headers["Connection"] = "close"
    return session


@dataclass
class Loop:
    """A bounded background loop: one action every ``interval`` seconds until stopped."""

    interval: float
    results: list[tuple[float, bool, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def action(self, session: requests.Session) -> tuple[bool, str]:
        raise NotImplementedError

    def _run(self) -> None:
        session = http_session()
        ends = time.monotonic() + LOOP_LIMIT_S
        while not self._stop.is_set() and time.monotonic() < ends:
            started = time.monotonic()
            try:
                ok, detail = self.action(session)
            except requests.RequestException as exc:
                ok, detail = False, type(exc).__name__
            self.results.append((started, ok, detail))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> Loop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=PROBE_TIMEOUT_S * 5)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> int:
        return sum(1 for _, ok, _ in self.results if not ok)

    def failures(self) -> list[str]:
        return [detail for _, ok, detail in self.results if not ok]

    def downtime_s(self) -> float:
        """From the first failed probe to the next success (summed over outages)."""
        total, down_since = 0.0, None
        for started, ok, _ in self.results:
            if not ok and down_since is None:
                down_since = started
            elif ok and down_since is not None:
                total += started - down_since
                down_since = None
        if down_since is not None:
            total += self.results[-1][0] - down_since
        return total


@dataclass
class Prober(Loop):
    """GET ``url`` (``/version`` through nginx) every ~20 ms; a 200 is a success."""

    url: str = ""
    versions: list[str] = field(default_factory=list)

    def action(self, session: requests.Session) -> tuple[bool, str]:
        response = session.get(self.url, timeout=PROBE_TIMEOUT_S)
        if response.status_code != 200:
            return False, str(response.status_code)
        version = str(response.json().get("version", "?"))
        self.versions.append(version)
        return True, version


@dataclass
class Writer(Loop):
    """POST ``/items`` every ~50 ms; remembers every write the app acknowledged (201)."""

    url: str = ""
    acked: dict[int, dict[str, Any]] = field(default_factory=dict)

    def action(self, session: requests.Session) -> tuple[bool, str]:
        payload = {"token": uuid.uuid4().hex, "seq": len(self.results)}
        response = session.post(f"{self.url}/items", json=payload, timeout=PROBE_TIMEOUT_S * 2)
        if response.status_code != 201:
            return False, str(response.status_code)
        self.acked[int(response.json()["id"])] = payload
        return True, "201"


def assert_stopped(records: list[procs.ProcRecord], ports: list[int]) -> None:
    """No recorded process (nor a worker of its group) is left, and every port refuses."""
    deadline = time.monotonic() + 5.0
    while True:
        alive = {r.name: left for r in records if (left := procs.leftovers(r))}
        listening = [p for p in ports if procs.port_open(p, 0.2)]
        if not alive and not listening:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: processes {alive}, listening ports {listening}")
        time.sleep(0.1)
