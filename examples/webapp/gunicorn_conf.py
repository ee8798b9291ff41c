"""gunicorn settings and hooks for the example app.

Loaded with ``--config python:examples.webapp.gunicorn_conf``.

- Several gthread workers, so metrics use prometheus_client's multiprocess mode: a worker that
  exits is marked dead so its live gauges go away.
- Draining on SIGTERM: the master creates ``FWGATES_DRAIN_FILE`` (``/health`` then answers 503
  ``draining`` while every other request is still served), waits ``FWGATES_DRAIN_S`` seconds so
  load balancers and probes see it, then stops gracefully (in-flight requests finish within
  ``graceful_timeout``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

workers = int(os.environ.get("APP_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("APP_THREADS", "8"))
graceful_timeout = 5
timeout = 30
keepalive = 2
# gunicorn >= 24 opens a control socket by default; this service has no use for it.
control_socket_disable = True

DRAIN_S = float(os.environ.get("FWGATES_DRAIN_S", "1.0"))


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def when_ready(server: Any) -> None:
    drain_file = os.environ.get("FWGATES_DRAIN_FILE")
    if not drain_file:
        return
    Path(drain_file).unlink(missing_ok=True)

    def drain_then_stop() -> None:
        server.log.info("SIGTERM: draining for %.1fs before the graceful stop", DRAIN_S)
        Path(drain_file).write_text(f"{time.time()}\n")
        time.sleep(DRAIN_S)
        raise StopIteration

    # The master looks its signal handlers up by name on each signal.
    server.handle_term = drain_then_stop


def on_exit(server: Any) -> None:
    drain_file = os.environ.get("FWGATES_DRAIN_FILE")
    if drain_file:
        Path(drain_file).unlink(missing_ok=True)
