"""``under_load:`` of the ``deploy`` check: Locust for the whole deploy, and what users felt.

    - deploy: examples/deploy/deploy-bluegreen v2
      health: ${url}/health
      under_load: {paths: [/health, /items], users: 5}
      expect: {load_failures_during: "== 0", p95_ms_during: "< 500"}

Locust runs as a process of its own through :func:`pytest_fwgates.locust_run.run_locust`
(never imported into pytest), in a thread of the check: started before the deploy command
(once its first requests have answered, plus ``warmup``), and told to quit (a stop file the
fwgates listener watches) once the prober has seen the service stable and ``cooldown`` has
passed since the deploy's end; its own run time is the bound (the deploy's timeout plus a
grace). The listener counts requests, failures and exact
response times per 0.1 s of wall-clock time (when each request ended), so the figures are
split at the deploy's start and end: ``load_requests_before|during|after``,
``load_failures_before|during|after``, ``p95_ms_before|during|after``.

The check runs under the project's exclusive lock already (``run_check``); this thread takes
no lock of its own: an ``exclusive()`` in another thread would wait for the deploy that waits
for it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..bounds import DEFAULT_CONFIDENCE, quantile_support
from ..fsutil import write_file
from ..locust_run import (
    STARTUP_GRACE,
    STOP_TIMEOUT,
    LoadError,
    LoadPlan,
    LoadRun,
    percentile,
    weighted_paths,
)
from ..locust_run import run_locust as _run_locust
from ..owners import LOAD_PHASES, UNDER_LOAD_FIGURES
from .base import CheckError
from .load import LoadCheck

__all__ = ["PHASES", "UNDER_LOAD_KEYS", "UNDER_LOAD_OPTION", "BackgroundLoad", "phase_figures"]

#: seconds of one slot of the listener's per-time figures
SLOT_S = 0.1
PHASES = LOAD_PHASES
UNDER_LOAD_KEYS = UNDER_LOAD_FIGURES
_DURATION: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 3600},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$"},
    ],
}
UNDER_LOAD_OPTION: dict[str, Any] = {
    "description": "run Locust through the whole deploy (the load check's options); the "
    "target is the health URL's origin or url:",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "minLength": 1},
        # the load check's own options, so that both accept the same
        **{
            key: LoadCheck.options_schema[key]
            for key in ("locustfile", "paths", "users", "spawn_rate", "tags", "wait")
        },
        "warmup": {**_DURATION, "description": "load before the deploy starts (default 2s)"},
        "cooldown": {**_DURATION, "description": "load after the deploy's end (default 2s)"},
    },
    "oneOf": [{"required": ["locustfile"]}, {"required": ["paths"]}],
}
DEFAULT_USERS = 5
#: default warmup (load before the deploy) and cooldown (load after it), seconds
DEFAULT_LOAD_S = 2.0


def origin(url: str) -> str:
    """``https://host:8443/health`` -> ``https://host:8443``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CheckError(f"under_load: no http(s) URL to load: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


class BackgroundLoad:
    """One Locust run in a thread: :meth:`start`, :meth:`wait_flowing`, :meth:`stop`."""

    def __init__(self, plan: LoadPlan, mask: Callable[[str], str] = str) -> None:
        plan.workdir.mkdir(parents=True, exist_ok=True)
        self.plan = plan
        self.plan.stop_file = plan.workdir / "stop"
        self.plan.slot_s = SLOT_S
        self.plan.progress_s = 0.5
        self.mask = mask
        self.run: LoadRun | None = None
        self.error: str | None = None
        #: Locust's latest progress (cumulative requests and failures, current p95)
        self.latest: dict[str, Any] = {}
        self._flowing = threading.Event()
        self._thread = threading.Thread(target=self._main, name="fwgates-under-load", daemon=True)

    @property
    def exact_file(self) -> Path:
        return self.plan.workdir / "exact.json"

    def _main(self) -> None:
        try:
            self.run = _run_locust(self.plan, progress=self._progress, mask=self.mask)
        except LoadError as exc:
            self.error = str(exc)
        except Exception as exc:  # the thread must report, never die silently
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._flowing.set()

    def _progress(self, state: Mapping[str, Any]) -> None:
        self.latest = dict(state)
        if int(state.get("requests") or 0) > 0:
            self._flowing.set()

    def start(self) -> None:
        assert self.plan.stop_file is not None
        self.plan.stop_file.unlink(missing_ok=True)
        self._thread.start()

    def wait_flowing(self, bound: float = STARTUP_GRACE) -> None:
        """Until Locust's first requests have answered; a :class:`CheckError` if they do not."""
        self._flowing.wait(max(bound, 0.1))
        if self.error or self.run is not None:
            self.stop()
            raise CheckError(f"under_load: {self.error or 'Locust ended before the deploy'}")
        if not self._flowing.is_set():
            self.stop()
            raise CheckError(
                f"under_load: Locust made no request within {bound:g} s ({self.plan.host})"
            )

    def stop(self, bound: float = STOP_TIMEOUT + STARTUP_GRACE) -> LoadRun | None:
        """Tell Locust to quit and wait for its files (bounded); idempotent."""
        if self._thread.ident is None:
            return None
        assert self.plan.stop_file is not None
        if self._thread.is_alive():
            self.plan.stop_file.touch()
            self._thread.join(max(bound, 0.1))
            if self._thread.is_alive():
                # run_argv's own bound (Locust's run time) still ends the process and the thread
                self.error = self.error or f"Locust did not stop within {bound:g} s"
        return self.run

    def slots(self) -> dict[int, dict[str, Any]]:
        """The listener's per-slot figures: slot -> {n, fail, hist}."""
        try:
            data = json.loads(self.exact_file.read_text(encoding="utf-8"))
            raw = data["slots"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LoadError(f"no per-time figures from the fwgates listener: {exc}") from None
        return {
            int(slot): {
                "n": int(entry["n"]),
                "fail": int(entry["fail"]),
                "hist": {int(ms): int(c) for ms, c in entry["hist"].items()},
            }
            for slot, entry in raw.items()
        }


def phase_of(slot: int, start_wall: float, end_wall: float) -> str:
    middle = (slot + 0.5) * SLOT_S
    if middle < start_wall:
        return "before"
    return "during" if middle < end_wall else "after"


def phase_figures(
    slots: Mapping[int, Mapping[str, Any]],
    start_wall: float,
    end_wall: float,
    support: dict[str, dict[str, Any]] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, float]:
    """Requests, failures and p95 before, during and after ``[start_wall, end_wall)``; the
    order-statistic bounds of each p95 go into ``support`` when given."""
    counts = {phase: [0, 0] for phase in PHASES}
    hists: dict[str, dict[int, int]] = {phase: {} for phase in PHASES}
    for slot, entry in slots.items():
        phase = phase_of(slot, start_wall, end_wall)
        counts[phase][0] += int(entry["n"])
        counts[phase][1] += int(entry["fail"])
        hist = hists[phase]
        for ms, count in entry["hist"].items():
            hist[ms] = hist.get(ms, 0) + count
    values: dict[str, float] = {}
    for phase in PHASES:
        values[f"load_requests_{phase}"] = float(counts[phase][0])
        values[f"load_failures_{phase}"] = float(counts[phase][1])
        p95 = percentile(hists[phase], sum(hists[phase].values()), 95)
        if not math.isnan(p95):  # no answered request: left out, a threshold on it fails
            values[f"p95_ms_{phase}"] = p95
            if support is not None:
                support[f"p95_ms_{phase}"] = quantile_support(hists[phase], 0.95, confidence)
    return values


def write_load_timeline(
    path: Path, slots: Mapping[int, Mapping[str, Any]], start_wall: float, end_wall: float
) -> Path:
    """One row per 0.1 s: time from the deploy's start, phase, requests, failures, p95."""
    handle = io.StringIO(newline="")
    out = csv.writer(handle)
    out.writerow(["t_s", "phase", "requests", "failures", "p95_ms"])
    for slot in sorted(slots):
        entry = slots[slot]
        hist = entry["hist"]
        p95 = percentile(hist, sum(hist.values()), 95)
        out.writerow(
            [
                f"{slot * SLOT_S - start_wall:.1f}",
                phase_of(slot, start_wall, end_wall),
                entry["n"],
                entry["fail"],
                "" if math.isnan(p95) else f"{p95:g}",
            ]
        )
    return write_file(path, handle.getvalue())


def find_locustfile(given: str, rootdir: Path, gate_dir: Path) -> Path:
    """A locustfile given in a gate file: absolute, or from the rootdir or the gate's folder."""
    path = Path(given)
    candidates = [path] if path.is_absolute() else [rootdir / path, gate_dir / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise CheckError(f"under_load: locustfile not found: {given}")


def plan_for(
    options: Mapping[str, Any],
    *,
    health: str,
    workdir: Path,
    duration_s: float,
    locustfile: Callable[[str], Path],
) -> LoadPlan:
    """The Locust plan of an ``under_load:`` mapping (validated by its schema at load)."""
    users = int(options.get("users", DEFAULT_USERS))
    wait = options.get("wait") or [0, 0]
    host = str(options["url"]).rstrip("/") if options.get("url") else origin(health)
    given = options.get("locustfile")
    return LoadPlan(
        host=host,
        workdir=workdir,
        users=users,
        spawn_rate=float(options.get("spawn_rate", users)),
        duration_s=duration_s,
        locustfile=locustfile(str(given)) if given else None,
        paths=weighted_paths(options["paths"]) if options.get("paths") else [],
        tags=[str(t) for t in options.get("tags") or []],
        wait_s=(float(wait[0]), float(wait[1])),
        grace_s=STARTUP_GRACE,
    )
