"""The example web app: a plain WSGI application in two versions (v1, v2).

Configured from the environment at start (gunicorn passes it on to each worker):

- ``APP_VERSION``: ``v1`` or ``v2`` (default ``v1``).
- ``APP_FAULT``: a deliberate fault: ``500`` (every application request answers 500), ``slow``
  (every application request takes 1.5 s longer), ``crash`` (the process exits soon after start
  and its health never becomes ready). ``/health`` and ``/metrics`` are not application requests:
  a broken build still answers its probes and its exporter, as real ones do.
- ``FAULT_ERROR_RATE`` (0-1), ``FAULT_DELAY_MS``, ``FAULT_CRASH_AFTER``: measured faults of a
  build deployed as a canary or in a rolling deploy: that share of application requests answers
  500, each one takes that many milliseconds longer, the instance exits after that many of
  them (counted in each worker). ``FAULT_GARBLED_RATE`` (0-1): that share answers 200 with an
  HTML body that is not the app's answer (no version in it, the ``X-App-Version`` header kept).
  The other answers carry the version as every other one does;
  ``/version`` (the readiness smoke check), ``/health`` and ``/metrics`` are left alone.
- ``APP_COLOUR``: the deployment slot (``blue``/``green``), reported by ``/version``.
- ``FWGATES_DB``: the SQLite file shared by both versions (default ``app.db``).
- ``FWGATES_DRAIN_FILE``: while this file exists, ``/health`` answers 503 ``draining``
  (the gunicorn config creates it on SIGTERM, before the graceful stop).
- ``APP_WARMUP_S``: ``/health`` answers 503 ``starting`` for this long after start (default 0.3).
- ``PROMETHEUS_MULTIPROC_DIR``: prometheus_client's multiprocess mode (several workers).

Endpoints: ``GET /health``, ``GET /version``, ``GET /metrics``, ``POST /items``,
``GET /items/<id>``, ``GET /work?ms=N``.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

from . import FAULTS, VERSIONS, db

SLOW_FAULT_S = 1.5
CRASH_AFTER_S = 0.5
MAX_WORK_MS = 5000
MAX_BODY_BYTES = 64 * 1024
# Endpoints a deliberate fault leaves alone: the probes and the exporter.
FAULT_EXEMPT = frozenset({"/health", "/metrics"})
# The measured faults leave the readiness smoke check (/version) alone too: such a build is
# deployed and then fails its users, as the ones a canary is for do.
MEASURED_EXEMPT = FAULT_EXEMPT | {"/version"}
FEATURES = {"v1": ["items", "work"], "v2": ["items", "work", "item-version"]}

StartResponse = Callable[..., Any]
Response = tuple[int, bytes, list[tuple[str, str]]]

REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _env_choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if value not in allowed:
        raise RuntimeError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


VERSION = _env_choice("APP_VERSION", "v1", VERSIONS)
FAULT = _env_choice("APP_FAULT", "", ("", *FAULTS)) or None
COLOUR = os.environ.get("APP_COLOUR", "")


def _env_number(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        raise RuntimeError(f"{name}={raw!r}: expected a number") from None
    if value < 0:
        raise RuntimeError(f"{name}={raw!r}: expected a number >= 0")
    return value


ERROR_RATE = min(_env_number("FAULT_ERROR_RATE"), 1.0)
GARBLED_RATE = min(_env_number("FAULT_GARBLED_RATE"), 1.0)
DELAY_S = _env_number("FAULT_DELAY_MS") / 1000
CRASH_AFTER = int(_env_number("FAULT_CRASH_AFTER"))
_served = 0
_served_lock = threading.Lock()
DB_PATH = os.environ.get("FWGATES_DB", "app.db")
DRAIN_FILE = os.environ.get("FWGATES_DRAIN_FILE", "")
WARMUP_S = float(os.environ.get("APP_WARMUP_S", "0.3"))
STARTED = time.monotonic()

# --- metrics -------------------------------------------------------------------------------

# Each carries the version that served the request, so that a canary beside the stable version
# (each instance scraped on its own: job "app_instances") can be told apart in PromQL.
_LABELS = ["method", "endpoint", "status", "version"]
REQUESTS = Counter("http_requests_total", "HTTP requests handled", _LABELS)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent handling HTTP requests",
    _LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0),
)
VERSION_INFO = Gauge(
    "app_version_info", "The running version of the app", ["version"], multiprocess_mode="max"
)
VERSION_INFO.labels(version=VERSION).set(1)


def _metrics_payload() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


# --- storage -------------------------------------------------------------------------------

_local = threading.local()
_schema_lock = threading.Lock()
_schema_ready = False


def _db() -> sqlite3.Connection:
    """This thread's connection; the schema is created once per process."""
    global _schema_ready
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        with _schema_lock:
            if not _schema_ready:
                db.init_db(DB_PATH)
                _schema_ready = True
        conn = db.connect(DB_PATH)
        _local.conn = conn
    return conn


# --- handlers ------------------------------------------------------------------------------


def _json(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    return status, body, [("Content-Type", "application/json"), *(headers or [])]


def health(environ: dict[str, Any]) -> Response:
    if FAULT == "crash":
        return _json(503, {"status": "starting", "version": VERSION})
    if DRAIN_FILE and os.path.exists(DRAIN_FILE):
        return _json(503, {"status": "draining", "version": VERSION})
    if time.monotonic() - STARTED < WARMUP_S:
        return _json(503, {"status": "starting", "version": VERSION})
    try:
        _db().execute("SELECT 1").fetchone()
    except sqlite3.Error as exc:
        return _json(503, {"status": "db-error", "version": VERSION, "error": str(exc)})
    return _json(200, {"status": "ok", "version": VERSION})


def version(environ: dict[str, Any]) -> Response:
    return _json(
        200,
        {
            "version": VERSION,
            "colour": COLOUR,
            "fault": FAULT,
            "features": FEATURES[VERSION],
            "pid": os.getpid(),
        },
    )


def metrics(environ: dict[str, Any]) -> Response:
    return 200, _metrics_payload(), [("Content-Type", CONTENT_TYPE_LATEST)]


def create_item(environ: dict[str, Any]) -> Response:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _json(400, {"error": "bad Content-Length"})
    if length > MAX_BODY_BYTES:
        return _json(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        data = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _json(400, {"error": "body is not JSON"})
    if not isinstance(data, dict):
        return _json(400, {"error": "body must be a JSON object"})
    conn = _db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        cur = conn.execute(
            "INSERT INTO items (data, version, created_at) VALUES (?, ?, ?)",
            (json.dumps(data, separators=(",", ":")), VERSION, time.time()),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    item_id = cur.lastrowid
    # Only now, with the row committed, is the write acknowledged.
    return _json(201, {"id": item_id, "version": VERSION}, [("Location", f"/items/{item_id}")])


def get_item(environ: dict[str, Any], item_id: str) -> Response:
    row = (
        _db()
        .execute("SELECT id, data, version, created_at FROM items WHERE id = ?", (int(item_id),))
        .fetchone()
    )
    if row is None:
        return _json(404, {"error": f"no item {item_id}"})
    payload: dict[str, Any] = {"id": row[0], "data": json.loads(row[1])}
    if VERSION == "v2":
        payload.update(written_by=row[2], created_at=row[3])
    return _json(200, payload)


def work(environ: dict[str, Any]) -> Response:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        ms = int(query.get("ms", ["0"])[0])
    except ValueError:
        return _json(400, {"error": "ms must be an integer"})
    if ms < 0:
        return _json(400, {"error": "ms must be >= 0"})
    ms = min(ms, MAX_WORK_MS)
    time.sleep(ms / 1000)
    return _json(200, {"slept_ms": ms, "version": VERSION})


def index(environ: dict[str, Any]) -> Response:
    return _json(200, {"service": "fwgates-example", "version": VERSION, "endpoints": ENDPOINTS})


ROUTES: list[tuple[str, re.Pattern[str], str, Callable[..., Response]]] = [
    ("GET", re.compile(r"/health"), "/health", health),
    ("GET", re.compile(r"/version"), "/version", version),
    ("GET", re.compile(r"/metrics"), "/metrics", metrics),
    ("POST", re.compile(r"/items"), "/items", create_item),
    ("GET", re.compile(r"/items/(\d{1,18})"), "/items/{id}", get_item),
    ("GET", re.compile(r"/work"), "/work", work),
    ("GET", re.compile(r"/"), "/", index),
]
ENDPOINTS = [f"{method} {name}" for method, _, name, _ in ROUTES]


def _route(method: str, path: str) -> tuple[str, Callable[..., Response] | Response, list[str]]:
    """The endpoint label and either the handler with its arguments or an early response."""
    allowed: list[str] = []
    endpoint = "other"
    for route_method, pattern, name, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method == method or (method == "HEAD" and route_method == "GET"):
            return name, handler, list(match.groups())
        allowed.append(route_method)
        endpoint = name
    if allowed:
        return (
            endpoint,
            _json(405, {"error": "method not allowed"}, [("Allow", ", ".join(allowed))]),
            [],
        )
    return endpoint, _json(404, {"error": "not found"}), []


def _send(start_response: StartResponse, method: str, response: Response) -> Iterable[bytes]:
    status, body, headers = response
    headers = [*headers, ("Content-Length", str(len(body))), ("X-App-Version", VERSION)]
    start_response(f"{status} {REASONS.get(status, 'Unknown')}", headers)
    return [b""] if method == "HEAD" else [body]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    started = time.perf_counter()
    method = environ.get("REQUEST_METHOD", "GET")
    endpoint, target, args = _route(method, environ.get("PATH_INFO") or "/")
    response: Response
    try:
        if isinstance(target, tuple):
            response = target
        else:
            if FAULT == "slow" and endpoint not in FAULT_EXEMPT:
                time.sleep(SLOW_FAULT_S)
            measured = endpoint not in MEASURED_EXEMPT
            if measured and (ERROR_RATE or DELAY_S or CRASH_AFTER):
                _measured_faults()
            broken = FAULT == "500" and endpoint not in FAULT_EXEMPT
            if broken or (measured and ERROR_RATE and random.random() < ERROR_RATE):
                response = _json(500, {"error": "deliberate fault", "version": VERSION})
            elif measured and GARBLED_RATE and random.random() < GARBLED_RATE:
                # a 200 whose body is not the app's answer (a template bug): no version in it
                response = (200, b"<html>welcome</html>\n", [("Content-Type", "text/html")])
            else:
                response = target(environ, *args)
    except Exception as exc:
        response = _json(500, {"error": type(exc).__name__})
    status = str(response[0])
    REQUESTS.labels(method=method, endpoint=endpoint, status=status, version=VERSION).inc()
    LATENCY.labels(method=method, endpoint=endpoint, status=status, version=VERSION).observe(
        time.perf_counter() - started
    )
    return _send(start_response, method, response)


def _measured_faults() -> None:
    """The delay of a slower build; the exit of a build that crashes after some requests."""
    global _served
    if DELAY_S:
        time.sleep(DELAY_S)
    if CRASH_AFTER:
        with _served_lock:
            _served += 1
            if _served > CRASH_AFTER:
                os._exit(3)  # the request is cut; gunicorn's master stops the instance


def _crash_soon() -> None:
    time.sleep(CRASH_AFTER_S)
    # Exit status 3 is gunicorn's "worker failed to boot": the whole server stops.
    os._exit(3)


if FAULT == "crash":
    threading.Thread(target=_crash_soon, name="deliberate-crash", daemon=True).start()
