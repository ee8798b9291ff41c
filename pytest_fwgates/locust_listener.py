# mypy: ignore-errors
"""Locust listener of pytest-fwgates: exact response times and a progress file.

NOT imported by pytest-fwgates (importing Locust patches the standard library through gevent):
it is passed to Locust as a second locustfile (``-f user.py,locust_listener.py``) and runs in
the Locust process only. Stdlib and Locust only.

- Every request's response time, per endpoint (``"GET /path"``), into a histogram at 1 ms
  resolution (milliseconds rounded to the nearest integer), with the exact sum and maximum.
  Locust's own statistics round into buckets of 10 ms from 100 ms and 100 ms from 1 s; these
  figures do not.
- In master/worker mode (``--processes`` or ``--worker`` on other machines) each worker sends
  what it recorded since its last report with Locust's own stats report (``report_to_master``),
  and the master merges it (``worker_report``): the same messages Locust aggregates its own
  figures from, so both count the same requests.
- The master (or the single local process) writes the histogram file when Locust quits
  (``FWGATES_LOAD_EXACT``), after the workers' final reports, and a small progress file
  every ``FWGATES_LOAD_PROGRESS_S`` seconds (``FWGATES_LOAD_PROGRESS``).
- With ``FWGATES_LOAD_SLOT_S`` (seconds, e.g. 0.1) it also keeps the requests, failures and
  response times per slot of wall-clock time (when each request ended), written into the
  histogram file as ``slots``: what users felt before, during and after a deploy.
- With ``FWGATES_LOAD_VERSION_HEADER`` (a response header's name, e.g. ``X-App-Version``) it
  also counts requests, failures and the exact histogram of the good answers' response times
  per value of that header (the version that answered), in the progress file as
  ``versions``: at most ``_MAX_VERSIONS`` distinct values (truncated to ``_VERSION_CHARS``
  characters) are kept, later ones as ``"other"``; an answer without the header as ``""``.
- With ``FWGATES_LOAD_STOP`` (a path) the run quits, as at the end of ``--run-time``, as soon
  as that file exists: a load that lasts as long as something else does.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

import gevent
from locust import events
from locust.runners import WorkerRunner

_EXACT = os.environ.get("FWGATES_LOAD_EXACT", "")
_PROGRESS = os.environ.get("FWGATES_LOAD_PROGRESS", "")
_PROGRESS_S = float(os.environ.get("FWGATES_LOAD_PROGRESS_S", "3") or 3)
_STOP = os.environ.get("FWGATES_LOAD_STOP", "")
_SLOT_S = float(os.environ.get("FWGATES_LOAD_SLOT_S", "0") or 0)
_VERSION_HEADER = os.environ.get("FWGATES_LOAD_VERSION_HEADER", "").strip()
_KEY = "fwgates_exact"
#: distinct versions kept (the rest count as "other"), and the characters kept of each
_MAX_VERSIONS = 4
_VERSION_CHARS = 64
_OTHER = "other"
#: distinct failure messages kept per endpoint
_MAX_ERRORS = 20

#: endpoint -> {hist: {ms: count}, n, none, fail, sum, max, errors: {message: count}}
_totals: dict = {}
#: what a worker recorded since its last report to the master
_pending: dict = {}
_state = {"worker": False, "env": None, "started": None}
#: exceptions raised in user code (tasks): message -> count; a worker's since its last report
_user_errors: dict = {}
_pending_user_errors: dict = {}
#: slot (int(end time / _SLOT_S)) -> {n, fail, hist}; a worker's since its last report
_slots: dict = {}
_pending_slots: dict = {}
#: version -> {n, fail, hist (good answers only)}; a worker's since its last report
_versions: dict = {}
_pending_versions: dict = {}


def _version_entry(table: dict, version: str) -> dict:
    version = version[:_VERSION_CHARS]
    if version not in table and version != _OTHER:
        named = sum(1 for key in table if key != _OTHER)
        if named >= _MAX_VERSIONS:
            version = _OTHER
    entry = table.get(version)
    if entry is None:
        entry = table[version] = {"n": 0, "fail": 0, "hist": {}}
    return entry


def _answer_version(response) -> str:
    headers = getattr(response, "headers", None)
    if headers is None:
        return ""
    try:
        value = headers.get(_VERSION_HEADER)
    except Exception:
        return ""
    return str(value).strip() if value else ""


def _count_version(table: dict, response, exception, response_time) -> None:
    entry = _version_entry(table, _answer_version(response))
    entry["n"] += 1
    if exception is not None or response_time is None:
        entry["fail"] += 1
        return
    ms = int(float(response_time) + 0.5)
    entry["hist"][ms] = entry["hist"].get(ms, 0) + 1


def _merge_versions(table: dict, other: dict) -> None:
    for version, data in other.items():
        entry = _version_entry(table, str(version))
        entry["n"] += int(data["n"])
        entry["fail"] += int(data["fail"])
        hist = entry["hist"]
        for ms, count in data["hist"].items():
            hist[int(ms)] = hist.get(int(ms), 0) + int(count)


def _entry(table: dict, key: str) -> dict:
    entry = table.get(key)
    if entry is None:
        entry = table[key] = {
            "hist": {},
            "n": 0,
            "none": 0,
            "fail": 0,
            "sum": 0.0,
            "max": 0.0,
            "errors": {},
            # wall-clock start of the first request and end of the last (the real window)
            "first": None,
            "last": None,
        }
    return entry


def _widen(entry: dict, first, last) -> None:
    if first is not None and (entry["first"] is None or first < entry["first"]):
        entry["first"] = first
    if last is not None and (entry["last"] is None or last > entry["last"]):
        entry["last"] = last


def _merge(table: dict, key: str, other: dict) -> None:
    entry = _entry(table, key)
    hist = entry["hist"]
    for ms, count in other["hist"].items():
        ms = int(ms)
        hist[ms] = hist.get(ms, 0) + int(count)
    entry["n"] += int(other["n"])
    entry["none"] += int(other.get("none", 0))
    entry["fail"] += int(other["fail"])
    entry["sum"] += float(other["sum"])
    entry["max"] = max(entry["max"], float(other["max"]))
    _widen(entry, other.get("first"), other.get("last"))
    errors = entry["errors"]
    for text, count in (other.get("errors") or {}).items():
        if text in errors or len(errors) < _MAX_ERRORS:
            errors[text] = errors.get(text, 0) + int(count)


@events.request.add_listener
def _on_request(request_type, name, response_time, exception=None, response=None, **_kwargs):
    table = _pending if _state["worker"] else _totals
    if _VERSION_HEADER:
        versions = _pending_versions if _state["worker"] else _versions
        _count_version(versions, response, exception, response_time)
    if _SLOT_S > 0:
        _count_slot(_pending_slots if _state["worker"] else _slots, exception, response_time)
    entry = _entry(table, f"{request_type} {name}")
    # Locust fires the event when the request ended; it started response_time ms before
    end = time.time()
    elapsed = float(response_time) / 1000 if response_time is not None else 0.0
    _widen(entry, end - elapsed, end)
    if exception is not None:
        entry["fail"] += 1
        errors = entry["errors"]
        text = f"{type(exception).__name__}: {exception}"[:300]
        if text in errors or len(errors) < _MAX_ERRORS:
            errors[text] = errors.get(text, 0) + 1
    if response_time is None:
        entry["none"] += 1
        return
    value = float(response_time)
    ms = int(value + 0.5)
    entry["hist"][ms] = entry["hist"].get(ms, 0) + 1
    entry["n"] += 1
    entry["sum"] += value
    entry["max"] = max(entry["max"], value)


def _count_slot(table: dict, exception, response_time) -> None:
    slot = int(time.time() / _SLOT_S)
    entry = table.get(slot)
    if entry is None:
        entry = table[slot] = {"n": 0, "fail": 0, "hist": {}}
    entry["n"] += 1
    if exception is not None:
        entry["fail"] += 1
    if response_time is not None:
        ms = int(float(response_time) + 0.5)
        entry["hist"][ms] = entry["hist"].get(ms, 0) + 1


def _merge_slots(table: dict, other: dict) -> None:
    for slot, data in other.items():
        slot = int(slot)
        entry = table.get(slot)
        if entry is None:
            entry = table[slot] = {"n": 0, "fail": 0, "hist": {}}
        entry["n"] += int(data["n"])
        entry["fail"] += int(data["fail"])
        hist = entry["hist"]
        for ms, count in data["hist"].items():
            hist[int(ms)] = hist.get(int(ms), 0) + int(count)


@events.user_error.add_listener
def _on_user_error(user_instance, exception, tb=None, **_kwargs):
    table = _pending_user_errors if _state["worker"] else _user_errors
    text = f"{type(exception).__name__}: {exception}"[:300]
    if text in table or len(table) < _MAX_ERRORS:
        table[text] = table.get(text, 0) + 1


@events.init.add_listener
def _on_init(environment, **_kwargs):
    _state["env"] = environment
    _state["worker"] = isinstance(environment.runner, WorkerRunner)
    if not _state["worker"] and _PROGRESS:
        gevent.spawn(_progress_loop)
    if not _state["worker"] and _STOP:
        gevent.spawn(_stop_loop)


@events.report_to_master.add_listener
def _on_report_to_master(client_id, data, **_kwargs):
    global _pending, _pending_user_errors, _pending_slots, _pending_versions
    data[_KEY] = _pending
    data[_KEY + "_user_errors"] = _pending_user_errors
    data[_KEY + "_slots"] = _pending_slots
    data[_KEY + "_versions"] = _pending_versions
    _pending = {}
    _pending_versions = {}
    _pending_user_errors = {}
    _pending_slots = {}


@events.worker_report.add_listener
def _on_worker_report(client_id, data, **_kwargs):
    for key, other in (data.get(_KEY) or {}).items():
        _merge(_totals, key, other)
    for text, count in (data.get(_KEY + "_user_errors") or {}).items():
        if text in _user_errors or len(_user_errors) < _MAX_ERRORS:
            _user_errors[text] = _user_errors.get(text, 0) + int(count)
    _merge_slots(_slots, data.get(_KEY + "_slots") or {})
    _merge_versions(_versions, data.get(_KEY + "_versions") or {})


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    if _state["started"] is None:
        _state["started"] = time.time()


def _write(path: str, payload: object) -> None:
    temp = f"{path}.tmp{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, separators=(",", ":"))
    os.replace(temp, path)


def _progress_loop() -> None:
    while True:
        gevent.sleep(_PROGRESS_S)
        environment = _state["env"]
        runner = getattr(environment, "runner", None)
        if runner is None:
            continue
        total = runner.stats.total
        try:
            p95 = total.get_current_response_time_percentile(0.95)
        except Exception:  # no window yet
            p95 = None
        started = _state["started"]
        with contextlib.suppress(OSError):
            _write(
                _PROGRESS,
                {
                    "elapsed_s": round(time.time() - started, 1) if started else 0.0,
                    "users": runner.user_count,
                    "workers": len(getattr(runner, "clients", {}) or {}),
                    "requests": total.num_requests,
                    "failures": total.num_failures,
                    # over the run so far (Locust's current_rps lags its window by seconds)
                    "rps": round(total.num_requests / max(time.time() - total.start_time, 1e-3), 1),
                    "p95_ms": p95,
                    **({"versions": _versions_json()} if _VERSION_HEADER else {}),
                },
            )


def _versions_json() -> dict:
    return {
        version: {
            "n": data["n"],
            "fail": data["fail"],
            "hist": {str(ms): n for ms, n in sorted(data["hist"].items())},
        }
        for version, data in _versions.items()
    }


def _stop_loop() -> None:
    while not os.path.exists(_STOP):
        gevent.sleep(0.1)
    runner = getattr(_state["env"], "runner", None)
    if runner is not None:
        runner.quit()


@events.quit.add_listener
def _on_quit(**_kwargs):
    if _state["worker"] or not _EXACT:
        return
    _write(
        _EXACT,
        {
            "format": 1,
            "user_errors": _user_errors,
            "endpoints": {
                key: {**entry, "hist": {str(ms): n for ms, n in sorted(entry["hist"].items())}}
                for key, entry in _totals.items()
            },
            **(
                {
                    "slot_s": _SLOT_S,
                    "slots": {
                        str(slot): {**data, "hist": {str(ms): n for ms, n in data["hist"].items()}}
                        for slot, data in sorted(_slots.items())
                    },
                }
                if _SLOT_S > 0
                else {}
            ),
        },
    )
