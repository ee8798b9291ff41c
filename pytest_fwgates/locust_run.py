"""Running Locust as a process of its own and rebuilding its figures from its files.

Locust is never imported here: importing it patches the standard library through gevent, which
breaks requests and pytest-xdist workers. ``python -m locust --headless`` runs in a session of
its own through :func:`pytest_fwgates.process.run_argv` (bounded, stopped as a whole), with
:mod:`pytest_fwgates.locust_listener` as a second locustfile that records every response time
exactly. Figures come from the files Locust and the listener write, never from its output:

- requests and failures per endpoint from Locust's ``--json-file``;
- response times (avg, p50, p90, p95, p99, max) from the listener's histogram at 1 ms
  resolution, so a threshold decides to the millisecond where Locust's buckets are 10 or 100 ms
  wide; percentiles are nearest-rank (the smallest time at or under which p % of requests took);
- rps over the real window: from the start of the first request to the end of the last, as
  the listener saw them (Locust's own entries span only the first request's end to the last's,
  so two slow requests side by side would seem to take no time at all).
"""

from __future__ import annotations

import json
import math
import shlex
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .deadline import signals_to_main_thread
from .fsutil import write_file
from .owners import LOCUST_FIGURES
from .process import ProcessResult, run_argv

__all__ = [
    "FIGURES",
    "LISTENER",
    "PATHS_LOCUSTFILE",
    "LoadError",
    "LoadPlan",
    "LoadRun",
    "figures_from_histogram",
    "percentile",
    "run_locust",
]

LISTENER = Path(__file__).with_name("locust_listener.py")
PATHS_LOCUSTFILE = Path(__file__).with_name("locust_paths.py")
#: figures measured in total and per endpoint
FIGURES = LOCUST_FIGURES
PERCENTILES = {"p50_ms": 50, "p90_ms": 90, "p95_ms": 95, "p99_ms": 99}
#: seconds Locust may take beyond its run time: start, spawn, stop, write its files
STARTUP_GRACE = 30.0
#: Locust's own stop timeout: users finish the request they are in
STOP_TIMEOUT = 5.0


class LoadError(Exception):
    """Locust could not run or measure (missing, crashed, hung, host unreachable)."""


@dataclass
class LoadPlan:
    """What to run: the target, the users and how long, and where files go."""

    host: str
    workdir: Path
    users: int = 10
    spawn_rate: float = 10.0
    duration_s: float = 10.0
    locustfile: Path | None = None
    #: (method, path, weight) for the generated FastHttpUser locustfile
    paths: list[tuple[str, str, int]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    wait_s: tuple[float, float] = (0.0, 0.0)
    #: Locust's --processes (local master with N forked workers)
    processes: int = 0
    #: master/worker mode: wait for this many workers (on other machines) ...
    workers: int = 0
    #: ... connecting to this host:port
    master_bind: str = ""
    #: seconds beyond duration (start, spawn, stop, files); workers may need longer to connect
    grace_s: float = STARTUP_GRACE
    progress_s: float = 3.0
    python: str = sys.executable
    #: the run quits early as soon as this file exists (see the listener)
    stop_file: Path | None = None
    #: > 0: the listener keeps requests, failures and times per slot of this many seconds
    slot_s: float = 0.0
    #: a response header naming the version that answered: the listener counts per version
    version_header: str = ""


@dataclass
class LoadRun:
    """A finished Locust run: figures in total and per endpoint, evidence files."""

    total: dict[str, float]
    endpoints: dict[str, dict[str, float]]
    evidence: dict[str, Path]
    exceptions: list[str]
    errors: list[str]
    duration_s: float
    argv: list[str]
    #: the exact response-time histograms ``{ms: requests}``: "" in total, else per endpoint
    histograms: dict[str, dict[int, int]] = field(default_factory=dict)
    #: with ``LoadPlan.slot_s``: every endpoint's response times per slot of wall-clock time
    #: (slot -> histogram), in the order they were answered
    slots: dict[int, dict[int, int]] = field(default_factory=dict)


def percentile(hist: Mapping[int, int], count: int, pct: float) -> float:
    """Nearest-rank percentile of a histogram ``{ms: requests}`` of ``count`` requests."""
    if count <= 0:
        return math.nan
    rank = max(math.ceil(pct / 100 * count), 1)
    seen = 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= rank:
            return float(ms)
    return float(max(hist))


def figures_from_histogram(
    hist: Mapping[int, int], total_ms: float, max_ms: float
) -> dict[str, float]:
    """avg, percentiles and max from a histogram at 1 ms resolution."""
    count = sum(hist.values())
    if count == 0:
        return {key: math.nan for key in ("avg_ms", *PERCENTILES, "max_ms")}
    figures = {"avg_ms": round(total_ms / count, 3)}
    for key, pct in PERCENTILES.items():
        figures[key] = percentile(hist, count, pct)
    figures["max_ms"] = round(max_ms, 3)
    return figures


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reachable(host: str, timeout: float = 5.0) -> None:
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadError(f"target must be an http(s) URL, got {host!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LoadError(f"cannot reach {parts.hostname}:{port}: {reason}") from None


def _split_bind(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LoadError(f"master_bind must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def locust_argv(plan: LoadPlan, prefix: Path) -> list[str]:
    """The Locust command line of ``plan`` (files written under ``prefix``).

    Values of the gate file are joined to their option (``--host=...``): a value that starts
    with ``-`` is never read as an option of its own. A tag cannot be joined (``--tags`` takes
    a list), so a tag that starts with ``-`` is refused: ``-f evil.py`` among the tags would
    make Locust load another locustfile.
    """
    locustfile = plan.locustfile or PATHS_LOCUSTFILE
    for tag in plan.tags:
        if tag.startswith("-"):
            raise LoadError(f"tag {tag!r}: a tag never starts with '-'")
    argv = [
        plan.python,
        "-m",
        "locust",
        f"--locustfile={locustfile},{LISTENER}",
        "--headless",
        f"--host={plan.host}",
        "--users",
        str(plan.users),
        "--spawn-rate",
        f"{plan.spawn_rate:g}",
        "--run-time",
        f"{max(math.ceil(plan.duration_s), 1)}s",
        "--stop-timeout",
        f"{STOP_TIMEOUT:g}",
        "--json-file",
        str(prefix),
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--html",
        f"{prefix}.html",
        "--only-summary",
        "--exit-code-on-error",
        "0",
    ]
    if plan.tags:
        argv += ["--tags", *plan.tags]
    if plan.processes:
        port = free_port()
        argv += [
            "--processes",
            str(plan.processes),
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--master-port",
            str(port),
        ]
    elif plan.workers:
        bind_host, bind_port = _split_bind(plan.master_bind or "127.0.0.1:5557")
        argv += [
            "--master",
            "--master-bind-host",
            bind_host,
            "--master-bind-port",
            str(bind_port),
            "--expect-workers",
            str(plan.workers),
            "--expect-workers-max-wait",
            f"{max(int(plan.grace_s), 1)}",
        ]
    return argv


def run_locust(
    plan: LoadPlan,
    *,
    progress: Callable[[dict[str, Any]], None] | None = None,
    mask: Callable[[str], str] = str,
) -> LoadRun:
    """Run Locust for ``plan``; raise :class:`LoadError` with the reason when it cannot measure."""
    _reachable(plan.host)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    prefix = plan.workdir / "locust"
    exact = plan.workdir / "exact.json"
    progress_file = plan.workdir / "progress.json"
    for stale in (exact, progress_file, Path(f"{prefix}.json")):
        stale.unlink(missing_ok=True)
    env = {
        "FWGATES_LOAD_EXACT": str(exact),
        "FWGATES_LOAD_PROGRESS": str(progress_file) if progress else "",
        "FWGATES_LOAD_PROGRESS_S": f"{plan.progress_s:g}",
        "FWGATES_LOAD_PATHS": json.dumps([list(p) for p in plan.paths]),
        "FWGATES_LOAD_WAIT": json.dumps(list(plan.wait_s)),
        "PYTHONUNBUFFERED": "1",
        "FWGATES_LOAD_STOP": str(plan.stop_file) if plan.stop_file else "",
        "FWGATES_LOAD_SLOT_S": f"{plan.slot_s:g}" if plan.slot_s > 0 else "",
        "FWGATES_LOAD_VERSION_HEADER": plan.version_header,
    }
    argv = locust_argv(plan, prefix)
    timeout = plan.duration_s + STOP_TIMEOUT + plan.grace_s
    watcher = _ProgressWatcher(progress_file, progress, plan.progress_s) if progress else None
    try:
        if watcher:
            watcher.start()
        try:
            result = run_argv(argv, env=env, cwd=plan.workdir, timeout=timeout, mask=mask)
        except OSError as exc:
            raise LoadError(f"Locust could not be started: {exc.strerror or exc}") from None
    finally:
        if watcher:
            watcher.stop()
    log = write_file(
        plan.workdir / "locust.log",
        f"$ {mask(shlex.join(argv))}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n",
        errors="backslashreplace",
    )
    _check_ended(result, timeout)
    return _read_run(plan, prefix, exact, log, result, argv)


def _last_line(result: ProcessResult) -> str:
    for text in (result.stderr, result.stdout):
        lines = [
            line.strip()
            for line in text.strip().splitlines()
            if line.strip() and not line.startswith(" ")
        ]
        if lines:
            return lines[-1][:300]
    return ""


def _check_ended(result: ProcessResult, timeout: float) -> None:
    last = _last_line(result)
    note = f"; last output: {last}" if last else ""
    if result.timed_out or result.exit_status is None:
        raise LoadError(f"Locust did not finish within {timeout:g} s and was stopped{note}")
    if "No module named locust" in result.stderr:
        raise LoadError("Locust is not installed: pip install 'pytest-fwgates[load]'")
    if result.exit_status != 0:
        raise LoadError(f"Locust exited with status {result.exit_status}{note}")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoadError(f"Locust wrote no {what} ({path.name})") from None
    except (OSError, ValueError) as exc:
        raise LoadError(f"unreadable {what} {path.name}: {exc}") from None


def _window(mine: Mapping[str, Any], key: str) -> tuple[float, float]:
    """Wall-clock start of the first request of an endpoint and end of its last."""
    try:
        first, last = float(mine["first"]), float(mine["last"])
    except (KeyError, TypeError, ValueError):
        raise LoadError(f"no request window for {key} from the fwgates listener") from None
    if not (math.isfinite(first) and math.isfinite(last)) or last < first:
        raise LoadError(f"impossible request window for {key}: {first} to {last}")
    return first, last


def _entry_key(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('method') or ''} {entry.get('name') or ''}".strip()


def _read_run(
    plan: LoadPlan,
    prefix: Path,
    exact_path: Path,
    log: Path,
    result: ProcessResult,
    argv: list[str],
) -> LoadRun:
    stats = _read_json(Path(f"{prefix}.json"), "statistics")
    exact = _read_json(exact_path, "response times of the fwgates listener")
    if not isinstance(stats, list) or not isinstance(exact, dict):
        raise LoadError("unexpected statistics format from Locust")
    exact_endpoints: dict[str, Any] = exact.get("endpoints") or {}
    endpoints: dict[str, dict[str, float]] = {}
    total_hist: dict[int, int] = {}
    histograms: dict[str, dict[int, int]] = {}
    total_sum = 0.0
    total_max = 0.0
    starts: list[float] = []
    ends: list[float] = []
    for entry in stats:
        key = _entry_key(entry)
        requests = int(entry.get("num_requests") or 0)
        failures = int(entry.get("num_failures") or 0)
        mine = exact_endpoints.get(key)
        if mine is None:
            raise LoadError(
                f"no exact response times for {key}: every Locust process (workers too) must "
                f"run the fwgates listener ({LISTENER})"
            )
        hist = {int(ms): int(n) for ms, n in mine["hist"].items()}
        counted = int(mine["n"]) + int(mine.get("none", 0))
        if counted != requests:
            raise LoadError(
                f"exact response times cover {counted} of {requests} requests of {key}: "
                "a worker did not run the fwgates listener or its reports were lost"
            )
        start, last = _window(mine, key)
        starts.append(start)
        ends.append(last)
        figures: dict[str, float] = {
            "requests": requests,
            "failures": failures,
            "failure_ratio": round(failures / requests, 6) if requests else math.nan,
            "rps": round(requests / (last - start), 3) if last > start else math.nan,
        }
        figures.update(figures_from_histogram(hist, float(mine["sum"]), float(mine["max"])))
        endpoints[key] = figures
        histograms[key] = hist
        for ms, n in hist.items():
            total_hist[ms] = total_hist.get(ms, 0) + n
        total_sum += float(mine["sum"])
        total_max = max(total_max, float(mine["max"]))
    requests = sum(int(f["requests"]) for f in endpoints.values())
    if requests == 0:
        raise LoadError(f"Locust made no requests to {plan.host}{_first_error(exact_endpoints)}")
    failures = sum(int(f["failures"]) for f in endpoints.values())
    window = (max(ends) - min(starts)) if starts else 0.0
    total: dict[str, float] = {
        "requests": requests,
        "failures": failures,
        "failure_ratio": round(failures / requests, 6),
        "rps": round(requests / window, 3) if window > 0 else math.nan,
    }
    total.update(figures_from_histogram(total_hist, total_sum, total_max))
    evidence = {
        name: path
        for name, path in (
            ("locust_stats_csv", Path(f"{prefix}_stats.csv")),
            ("locust_stats_history_csv", Path(f"{prefix}_stats_history.csv")),
            ("locust_failures_csv", Path(f"{prefix}_failures.csv")),
            ("locust_exceptions_csv", Path(f"{prefix}_exceptions.csv")),
            ("locust_report_html", Path(f"{prefix}.html")),
            ("locust_stats_json", Path(f"{prefix}.json")),
            ("exact_response_times_json", exact_path),
            ("locust_log", log),
        )
        if path.is_file()
    }
    exceptions = [
        f"{count}x {text}"
        for text, count in sorted(
            (exact.get("user_errors") or {}).items(), key=lambda item: -int(item[1])
        )
    ]
    # failure messages from the listener (Locust's failures CSV may lag behind a short run)
    messages = [
        (count, f"{key}: {text}")
        for key, mine in exact_endpoints.items()
        for text, count in (mine.get("errors") or {}).items()
    ]
    errors = [f"{count}x {text}" for count, text in sorted(messages, key=lambda c: -int(c[0]))]
    return LoadRun(
        total=total,
        endpoints=endpoints,
        evidence=evidence,
        exceptions=exceptions,
        errors=errors,
        duration_s=result.duration_s,
        argv=argv,
        histograms={"": total_hist, **histograms},
        slots=_slots(exact.get("slots")),
    )


def _slots(raw: object) -> dict[int, dict[int, int]]:
    """The listener's per-slot histograms (slot -> {ms: requests}); {} when it kept none."""
    if not isinstance(raw, Mapping):
        return {}
    try:
        return {
            int(slot): {int(ms): int(c) for ms, c in entry["hist"].items()}
            for slot, entry in raw.items()
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}


def _first_error(endpoints: Mapping[str, Any]) -> str:
    for mine in endpoints.values():
        for text in mine.get("errors") or {}:
            return f": {text}"
    return ""


class _ProgressWatcher:
    """Reads the listener's progress file in a thread and hands each new state on."""

    def __init__(
        self, path: Path, callback: Callable[[dict[str, Any]], None], interval: float
    ) -> None:
        self.path = path
        self.callback = callback
        self.interval = max(interval, 0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="fwgates-load-progress", daemon=True
        )
        self._last = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        signals_to_main_thread()  # it starts no process: an interrupt is the main thread's
        while not self._stop.wait(self.interval / 2):
            try:
                stamp = self.path.stat().st_mtime
                if stamp == self._last:
                    continue
                self._last = stamp
                state = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(state, dict):
                try:
                    self.callback(state)
                except Exception:  # a progress line must never break the run
                    continue


def weighted_paths(value: Any) -> list[tuple[str, str, int]]:
    """``paths:`` as (method, path, weight): a list (weight 1 each) or a path -> weight map.

    A path may start with a method: ``"POST /items"``; otherwise it is a GET.
    """
    items: Iterable[tuple[Any, Any]]
    items = value.items() if isinstance(value, Mapping) else ((path, 1) for path in value)
    found = []
    for raw, weight in items:
        text = str(raw).strip()
        method, _, rest = text.partition(" ")
        if rest and method.isupper() and method.isalpha():
            path = rest.strip()
        else:
            method, path = "GET", text
        found.append((method, path, int(weight)))
    return found


def describe(total: Mapping[str, float]) -> str:
    """One line of the main figures."""
    parts = []
    for key in ("requests", "rps", "p95_ms", "failure_ratio"):
        value = total.get(key)
        if isinstance(value, int | float) and not math.isnan(value):
            parts.append(f"{key}={value:g}")
    return " ".join(parts)


def progress_line(name: str, state: Mapping[str, Any], duration_s: float) -> str:
    """The live line: elapsed, users, rps, p95, failures."""
    p95 = state.get("p95_ms")
    shown = f"{p95:g} ms" if isinstance(p95, int | float) else "-"
    return (
        f"{name}: {float(state.get('elapsed_s') or 0):.0f}/{duration_s:.0f} s "
        f"users {state.get('users', 0)} rps {float(state.get('rps') or 0):.1f} "
        f"p95 {shown} failures {state.get('failures', 0)}/{state.get('requests', 0)}"
    )
