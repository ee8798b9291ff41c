"""The parts of the example stack: the app's two colours, nginx in front, Prometheus.

Each start is bounded and retried on a fresh port if another process took the one picked.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..webapp import fault_env
from . import config, procs
from .procs import LOOPBACK, ProcRecord, StackError

REPO_ROOT = Path(__file__).resolve().parents[2]
COLOURS = ("blue", "green")
INSTALL_HINT = "apt-get install -y nginx prometheus"
SMOKE_LATENCY_S = 1.0
SMOKE_PASSES = 3
SMOKE_STRIKES = 3
PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class Layout:
    """Where everything of one stack lives: all of it under ``root``."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def env_file(self) -> Path:
        return self.root / "stack.env"

    @property
    def lock_file(self) -> Path:
        return self.root / "stack.lock"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.log"

    @property
    def db(self) -> Path:
        return self.root / "data" / "app.db"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def nginx_dir(self) -> Path:
        return self.root / "nginx"

    @property
    def prom_dir(self) -> Path:
        return self.root / "prometheus"

    @property
    def instances_file(self) -> Path:
        """Prometheus's list of the app's running instances (file_sd)."""
        return self.prom_dir / "instances.json"

    def colour_dir(self, colour: str) -> Path:
        return self.root / colour

    @property
    def generated(self) -> list[Path]:
        """Everything ``up`` creates, which ``down`` removes (the audit log stays)."""
        return [
            self.state_file,
            self.env_file,
            self.root / "data",
            self.tls_dir,
            self.nginx_dir,
            self.prom_dir,
            *(self.colour_dir(c) for c in COLOURS),
            *sorted(p for p in self.root.glob("r[0-9]*") if p.is_dir()),
        ]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def find_binary(name: str, env_var: str, default: str) -> str:
    path = os.environ.get(env_var) or shutil.which(name) or default
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise StackError(f"{name} not found (looked for {path}): install it with `{INSTALL_HINT}`")
    return path


def _address_in_use(log: str) -> bool:
    text = procs.tail(log, 30).lower()
    return "address already in use" in text or "address in use" in text


# --- the app, one colour -------------------------------------------------------------------


def start_colour(
    layout: Layout,
    colour: str,
    version: str,
    fault: str | None,
    *,
    python: str,
    port: int | None = None,
    drain_s: float = 1.0,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Start gunicorn for ``colour`` and wait (bounded) until it listens or exits."""
    cdir = layout.colour_dir(colour)
    cdir.mkdir(parents=True, exist_ok=True)
    metrics_dir = cdir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    (cdir / "draining").unlink(missing_ok=True)
    # a colour is started only when none of it runs (the stack knows its processes by their
    # records, not by this file): a pid file left by an instance killed before it was
    # recorded would make gunicorn refuse to start once its PID is reused by any process
    (cdir / "gunicorn.pid").unlink(missing_ok=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("APP_", "PROMETHEUS_", "FAULT_"))
    }
    try:
        env.update(fault_env(fault))
    except ValueError as exc:
        raise StackError(str(exc)) from None
    env.update(
        APP_VERSION=version,
        APP_COLOUR=colour,
        FWGATES_DB=str(layout.db),
        FWGATES_DRAIN_FILE=str(cdir / "draining"),
        FWGATES_DRAIN_S=str(drain_s),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
    )
    last = ""
    for attempt in range(PORT_ATTEMPTS):
        use_port = port if (port and attempt == 0) else procs.free_port()
        argv = [
            python,
            "-m",
            "gunicorn",
            "--bind",
            f"{LOOPBACK}:{use_port}",
            "--pid",
            str(cdir / "gunicorn.pid"),
            "--config",
            "python:examples.webapp.gunicorn_conf",
            # With setproctitle installed, gunicorn retitles its processes with this name:
            # the stack directory stays in their command line, which is how they are recognised.
            "--name",
            f"fwgates-{colour} {layout.root}",
            "--chdir",
            str(REPO_ROOT),
            "examples.webapp.app:app",
        ]
        log = cdir / "gunicorn.log"
        rec = procs.spawn(f"app-{colour}", argv, env=env, log=log, marker=str(layout.root))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if procs.port_open(use_port, 0.2) or not procs.owns(rec):
                break
            time.sleep(0.05)
        entry = {
            "colour": colour,
            "version": version,
            "fault": fault,
            "port": use_port,
            "proc": rec.to_json(),
            "started_at": now_iso(),
        }
        if procs.owns(rec) or not _address_in_use(str(log)):
            return entry
        last = procs.tail(log)
    raise StackError(f"app {colour}: no free port after {PORT_ATTEMPTS} attempts: {last}")


def colour_proc(entry: dict[str, Any] | None) -> ProcRecord | None:
    return ProcRecord.from_json(entry["proc"]) if entry else None


def colour_running(entry: dict[str, Any] | None) -> bool:
    rec = colour_proc(entry)
    return rec is not None and procs.owns(rec)


def colour_ready(entry: dict[str, Any], timeout: float) -> str | None:
    """Wait until the colour is healthy and passes a smoke check; None, or why it is not.

    Ready means: ``/health`` answers 200 for the expected version, and ``/version`` answers 200
    for it within SMOKE_LATENCY_S, SMOKE_PASSES times in a row. A process that exits, or
    SMOKE_STRIKES smoke failures once healthy, end the wait early.
    """
    rec = colour_proc(entry)
    assert rec is not None
    base = f"http://{LOOPBACK}:{entry['port']}"
    want = entry["version"]
    deadline = time.monotonic() + timeout
    passes = strikes = 0
    reason = "no answer yet"
    while time.monotonic() < deadline:
        if not procs.owns(rec):
            status = procs.exit_status(rec)
            code = f" with status {status}" if status is not None else ""
            return f"the process exited{code}: {procs.tail(rec.log, 3)}"
        try:
            status, body = procs.http_json(f"{base}/health", timeout=1.0)
        except OSError as exc:
            reason = f"/health: {type(exc).__name__}: {exc}"
            time.sleep(0.1)
            continue
        if status != 200 or not isinstance(body, dict) or body.get("version") != want:
            passes = 0
            reason = f"/health answered {status} {body}"
            time.sleep(0.1)
            continue
        started = time.monotonic()
        try:
            status, body = procs.http_json(f"{base}/version", timeout=SMOKE_LATENCY_S)
            took = time.monotonic() - started
            if status != 200:
                reason = f"/version answered {status}"
            elif not isinstance(body, dict) or body.get("version") != want:
                reason = f"/version reports {body!r}, expected {want}"
            elif took > SMOKE_LATENCY_S:
                reason = f"/version took {took:.2f}s (limit {SMOKE_LATENCY_S}s)"
            else:
                reason = ""
        except OSError as exc:
            reason = f"/version: {type(exc).__name__}: {exc} (limit {SMOKE_LATENCY_S}s)"
        if reason:
            passes = 0
            strikes += 1
            if strikes >= SMOKE_STRIKES:
                return f"healthy but the smoke check failed {strikes} times: {reason}"
        else:
            passes += 1
            if passes >= SMOKE_PASSES:
                return None
        time.sleep(0.1)
    return f"not ready within {timeout:.0f}s: {reason}"


def warm_up(entry: dict[str, Any], requests: int = 48, timeout: float = 10.0) -> None:
    """A few rounds of the app's own requests on every worker thread before it takes traffic
    (first requests of a fresh process are slower: imports, metric files, thread start)."""
    from concurrent.futures import ThreadPoolExecutor

    base = f"http://{LOOPBACK}:{entry['port']}"
    deadline = time.monotonic() + timeout

    def one(i: int) -> None:
        if time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                procs.http(f"{base}/work?ms={i % 3}" if i % 2 else f"{base}/", timeout=2.0)

    with ThreadPoolExecutor(max_workers=16) as pool:  # every thread of both workers
        list(pool.map(one, range(requests)))


def stop_colour(entry: dict[str, Any] | None, *, drain_s: float, quick: bool = False) -> str:
    """SIGTERM: the app drains (``/health`` 503) for drain_s, then stops gracefully.

    ``quick`` (SIGQUIT, no drain) is for a colour that never received traffic.
    """
    rec = colour_proc(entry)
    if rec is None:
        return "not running"
    sig = signal.SIGQUIT if quick else signal.SIGTERM
    return procs.stop([rec], sig=sig, timeout=drain_s + 8.0)[rec.name]


# --- nginx ---------------------------------------------------------------------------------


def _nginx_argv(nginx: str, layout: Layout, *extra: str) -> list[str]:
    ndir = layout.nginx_dir
    return [
        nginx,
        "-p",
        f"{ndir}/",
        "-c",
        str(ndir / "nginx.conf"),
        "-e",
        str(ndir / "error.log"),
        *extra,
    ]


def nginx_test(nginx: str, layout: Layout) -> None:
    try:
        result = subprocess.run(
            _nginx_argv(nginx, layout, "-t", "-q"),
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError("nginx -t did not finish within 15s") from exc
    if result.returncode != 0:
        detail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise StackError(f"nginx rejects its generated configuration: {detail}")


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_pool(layout: Layout, entries: list[dict[str, Any]]) -> str:
    """Every request to the pool of ``entries`` (round robin); returns the routing's
    generation. An answer nginx makes for an instance that is down names its version."""
    servers = "".join(f"server 127.0.0.1:{e['port']};\n" for e in entries)
    _write(layout.nginx_dir / "upstream.conf", f"# pool of {len(entries)} instances\n{servers}")
    generation = f"{time.time_ns()}"
    _write(layout.nginx_dir / "routing.conf", config.pool_routing_conf(entries, generation))
    return generation


def write_upstream(layout: Layout, entry: dict[str, Any]) -> None:
    """Every request to ``entry`` (a blue/green switch; no canary share left)."""
    _write(
        layout.nginx_dir / "upstream.conf",
        config.upstream_conf(entry["colour"], entry["port"], entry["version"]),
    )
    write_routing(layout, entry)


def write_routing(
    layout: Layout, live: dict[str, Any], canary: dict[str, Any] | None = None, weight: float = 0
) -> str:
    """``weight`` % of the requests to ``canary``, the rest to the live colour."""
    share = (canary["port"], canary["version"], weight) if canary else None
    generation = f"{time.time_ns()}"
    _write(
        layout.nginx_dir / "routing.conf", config.routing_conf(live["version"], share, generation)
    )
    return generation


def reload_routing(
    layout: Layout, nginx: str, nginx_entry: dict[str, Any], generation: str, timeout: float
) -> None:
    """Reload nginx with the routing written (``generation``), and wait (bounded) until it
    serves with it and its workers of the previous configuration are gone: every new request
    is routed the new way."""
    nginx_test(nginx, layout)
    rec = signal_reload(nginx_entry)
    url = f"http://{LOOPBACK}:{nginx_entry['http_port']}/fwgates-routing"
    seen = 0

    def reloaded() -> str | None:
        nonlocal seen
        status, body = procs.http(url, timeout=2.0)
        if status == 200 and body.decode(errors="replace").strip() == generation:
            seen += 1
            return None if seen >= 3 else "reloading"
        seen = 0
        return "nginx still routes the previous way"

    try:
        procs.wait_for("nginx reload", reloaded, timeout, every=0.02)
        procs.wait_for(
            "nginx old workers",
            lambda: f"{n} old workers" if (n := len(nginx_old_workers(rec.pid))) else None,
            timeout,
            every=0.05,
        )
    except TimeoutError as exc:
        raise StackError(str(exc)) from exc


def start_nginx(
    layout: Layout, nginx: str, live: dict[str, Any], tls: dict[str, str], timeout: float = 20.0
) -> dict[str, Any]:
    """Start nginx on two free ports (HTTP, HTTPS) in front of ``live``; wait until it proxies."""
    ndir = layout.nginx_dir
    (ndir / "tmp").mkdir(parents=True, exist_ok=True)
    last = ""
    for _ in range(PORT_ATTEMPTS):
        http_port, https_port = procs.free_ports(2)
        (ndir / "nginx.conf").write_text(
            config.nginx_conf(
                ndir,
                http_port=http_port,
                https_port=https_port,
                cert=Path(tls["cert"]),
                key=Path(tls["key"]),
            )
        )
        write_upstream(layout, live)
        nginx_test(nginx, layout)
        rec = procs.spawn(
            "nginx",
            _nginx_argv(nginx, layout),
            env=os.environ,
            log=ndir / "nginx.log",
            marker=str(layout.root),
        )

        def proxies(rec: ProcRecord = rec, port: int = http_port) -> str | None:
            if not procs.owns(rec):
                return "exited"
            status, _ = procs.http(f"http://{LOOPBACK}:{port}/health", timeout=1.0)
            return None if status == 200 else f"/health through nginx answered {status}"

        try:
            procs.wait_for("nginx", proxies, timeout)
        except TimeoutError as exc:
            log = str(ndir / "error.log")
            if not procs.owns(rec) and _address_in_use(log):
                last = procs.tail(log, 2)
                continue
            procs.stop([rec], timeout=5.0)
            raise StackError(f"{exc} ({procs.tail(log, 3)})") from exc
        return {"proc": rec.to_json(), "http_port": http_port, "https_port": https_port}
    raise StackError(f"nginx: no free ports after {PORT_ATTEMPTS} attempts: {last}")


def nginx_old_workers(master: int) -> list[int]:
    """Workers of the previous configuration, still finishing their requests after a reload."""
    return [pid for pid in procs.children(master) if "shutting down" in procs.cmdline(pid)]


def signal_reload(nginx_entry: dict[str, Any]) -> ProcRecord:
    """SIGHUP to the nginx master the stack started: new workers, old ones finish gracefully."""
    rec = ProcRecord.from_json(nginx_entry["proc"])
    if not procs.owns(rec):
        raise StackError(f"nginx (pid {rec.pid}) is not running: run `down` then `up`")
    os.kill(rec.pid, signal.SIGHUP)
    return rec


def reload_nginx(
    layout: Layout,
    nginx: str,
    nginx_entry: dict[str, Any],
    target: dict[str, Any],
    timeout: float = 15.0,
) -> None:
    """Point the upstream at ``target``, reload, and wait until nginx serves it.

    Waits (bounded) for the old workers to finish their in-flight requests, so the colour they
    proxied to can be stopped without cutting any request.
    """
    write_upstream(layout, target)
    nginx_test(nginx, layout)
    rec = signal_reload(nginx_entry)
    url = f"http://{LOOPBACK}:{nginx_entry['http_port']}/version"
    seen = 0

    def switched() -> str | None:
        nonlocal seen
        status, body = procs.http_json(url, timeout=2.0)
        got = (body or {}).get("colour") if isinstance(body, dict) else None
        if status == 200 and got == target["colour"]:
            seen += 1
            return None if seen >= 3 else "switching"
        seen = 0
        return f"nginx still serves {got or status}"

    try:
        procs.wait_for("nginx switch", switched, timeout, every=0.05)
        procs.wait_for(
            "nginx old workers",
            lambda: f"{n} old workers" if (n := len(nginx_old_workers(rec.pid))) else None,
            timeout,
            every=0.05,
        )
    except TimeoutError as exc:
        raise StackError(str(exc)) from exc


# --- Prometheus ----------------------------------------------------------------------------


def write_instances(layout: Layout, colours: dict[str, Any]) -> None:
    """Every instance on record, for Prometheus to scrape on its own (atomic: Prometheus
    watches the file and never reads half of it)."""
    entries = [e for e in colours.values() if e and e.get("port")]
    path = layout.instances_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(config.instance_targets(entries))
    os.replace(tmp, path)


def start_prometheus(
    layout: Layout, prometheus: str, app_port: int, timeout: float = 45.0
) -> dict[str, Any]:
    """Start Prometheus scraping the app through nginx; wait until ``up{job="app"}`` is 1."""
    pdir = layout.prom_dir
    (pdir / "data").mkdir(parents=True, exist_ok=True)
    rules = pdir / "rules.yml"
    rules.write_text(config.RULES)
    last = ""
    for _ in range(PORT_ATTEMPTS):
        port = procs.free_port()
        conf = pdir / "prometheus.yml"
        conf.write_text(
            config.prometheus_yml(
                app_target=f"{LOOPBACK}:{app_port}",
                self_target=f"{LOOPBACK}:{port}",
                rules=rules,
                instances=layout.instances_file,
            )
        )
        argv = [
            prometheus,
            f"--config.file={conf}",
            f"--storage.tsdb.path={pdir / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        log = pdir / "prometheus.log"
        rec = procs.spawn("prometheus", argv, env=os.environ, log=log, marker=str(layout.root))
        base = f"http://{LOOPBACK}:{port}"

        def scraping(rec: ProcRecord = rec, base: str = base) -> str | None:
            if not procs.owns(rec):
                return "exited"
            status, body = procs.http_json(
                f"{base}/api/v1/query?query=up%7Bjob%3D%22app%22%7D", timeout=1.0
            )
            result = (body or {}).get("data", {}).get("result", []) if status == 200 else []
            if result and result[0]["value"][1] == "1":
                return None
            return f'up{{job="app"}} is {result[0]["value"][1] if result else "not scraped yet"}'

        try:
            procs.wait_for("prometheus", scraping, timeout, every=0.2)
        except TimeoutError as exc:
            if not procs.owns(rec) and _address_in_use(str(log)):
                last = procs.tail(log, 2)
                continue
            procs.stop([rec], timeout=5.0)
            raise StackError(f"{exc} ({procs.tail(log, 3)})") from exc
        return {"proc": rec.to_json(), "port": port}
    raise StackError(f"prometheus: no free port after {PORT_ATTEMPTS} attempts: {last}")
