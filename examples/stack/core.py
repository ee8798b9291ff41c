"""The example stack: one object that starts, reports on, deploys to and stops everything.

    with Stack(tmp_dir) as stack:          # up() ... down()
        requests.get(stack.urls["app"] + "/version")
        stack.deploy("v2", strategy="bluegreen")
        stack.rollback()

Every command takes an exclusive lock on the stack directory, so a deploy run from a script and
one run from a test never interleave. All state is in ``DIR/stack.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from . import components as comp
from . import procs
from .components import COLOURS, Layout
from .procs import LOOPBACK, ProcRecord, StackError

DEFAULT_DIR = ".fwgates-stack"
LOCK_TIMEOUT_S = 180.0


def default_dir() -> Path:
    return Path(os.environ.get("FWGATES_STACK_DIR") or DEFAULT_DIR)


class Stack:
    """A stack in ``directory`` (default ``$FWGATES_STACK_DIR`` or ``./.fwgates-stack``)."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        version: str = "v1",
        drain_s: float = 1.0,
        python: str | None = None,
    ) -> None:
        self.layout = Layout(Path(directory or default_dir()).resolve())
        self.initial_version = version
        self.drain_s = drain_s
        self.python = python or sys.executable
        self._state: dict[str, Any] = {}

    # --- state and lock --------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.layout.root

    def load(self) -> dict[str, Any]:
        try:
            self._state = json.loads(self.layout.state_file.read_text())
        except FileNotFoundError:
            self._state = {}
        except ValueError as exc:
            raise StackError(f"{self.layout.state_file} is not valid JSON: {exc}") from exc
        return self._state

    def save(self) -> None:
        path = self.layout.state_file
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self._state, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        if "colours" in self._state:
            # an instance is on record from its start on: scraped before it takes traffic
            comp.write_instances(self.layout, self._state["colours"])

    @property
    def state(self) -> dict[str, Any]:
        return self._state

    @contextlib.contextmanager
    def locked(self, *, create: bool = False) -> Iterator[None]:
        """Exclusive lock on the stack directory (bounded wait)."""
        if create:
            self.layout.root.mkdir(parents=True, exist_ok=True)
        elif not self.layout.root.is_dir():
            raise StackError(f"no stack in {self.layout.root}: run `python -m examples.stack up`")
        fd = os.open(self.layout.root, os.O_RDONLY)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as exc:
                    if time.monotonic() >= deadline:
                        raise StackError(
                            f"another stack command has held {self.layout.root} for "
                            f"{LOCK_TIMEOUT_S:.0f}s"
                        ) from exc
                    time.sleep(0.1)
            self.load()
            yield
        finally:
            os.close(fd)

    # --- what a client needs ---------------------------------------------------------------

    @property
    def urls(self) -> dict[str, str]:
        state = self._state or self.load()
        if not state.get("nginx") or not state.get("prometheus"):
            raise StackError(f"no stack is up in {self.layout.root}")
        return {
            "app": f"http://{LOOPBACK}:{state['nginx']['http_port']}",
            "tls": f"https://{LOOPBACK}:{state['nginx']['https_port']}",
            "prometheus": f"http://{LOOPBACK}:{state['prometheus']['port']}",
            "ca_cert": state["tls"]["ca_cert"],
        }

    @property
    def env(self) -> dict[str, str]:
        urls = self.urls
        return {
            "FWGATES_APP_URL": urls["app"],
            "FWGATES_TLS_URL": urls["tls"],
            "FWGATES_PROMETHEUS_URL": urls["prometheus"],
            "FWGATES_CA_CERT": urls["ca_cert"],
            "FWGATES_STACK_DIR": str(self.layout.root),
            "FWGATES_DB": str(self.layout.db),
            "FWGATES_PYTHON": self._state.get("python", self.python),
        }

    def records(self) -> dict[str, ProcRecord]:
        """Every process the stack started and still has on record, by name."""
        state = self._state or self.load()
        found: dict[str, ProcRecord] = {}
        for entry in state.get("colours", {}).values():
            rec = comp.colour_proc(entry)
            if rec:
                found[rec.name] = rec
        for part in ("nginx", "prometheus"):
            if state.get(part):
                found[part] = ProcRecord.from_json(state[part]["proc"])
        return found

    def ports(self) -> list[int]:
        state = self._state or self.load()
        ports = [c["port"] for c in state.get("colours", {}).values() if c]
        if state.get("nginx"):
            ports += [state["nginx"]["http_port"], state["nginx"]["https_port"]]
        if state.get("prometheus"):
            ports.append(state["prometheus"]["port"])
        return ports

    def binaries(self) -> tuple[str, str]:
        return (
            comp.find_binary("nginx", "FWGATES_NGINX", "/usr/sbin/nginx"),
            comp.find_binary("prometheus", "FWGATES_PROMETHEUS", "/usr/bin/prometheus"),
        )

    # --- up, down, status ------------------------------------------------------------------

    def up(self) -> dict[str, str]:
        """Start everything (bounded); returns the FWGATES_* variables. Idempotent."""
        nginx, prometheus = self.binaries()
        with self.locked(create=True):
            if self._state and self._front_running():
                from . import deploy

                # what a killed deploy left: a canary's share, a stopped instance on record;
                # when that cannot be undone in place, everything starts afresh
                try:
                    deploy.reset_stale(self)
                except StackError:
                    self._teardown()
            if self._state and all(procs.owns(r) for r in self.records().values()):
                live = self._state["colours"].get(self._state.get("live", ""))
                if live and self._state.get("prometheus"):
                    return self.env
            if self._state:
                self._teardown()
            try:
                self._start(nginx, prometheus)
            except BaseException as exc:
                self._teardown()
                if isinstance(exc, OSError):
                    raise StackError(f"the stack did not start: {exc}") from exc
                raise
            self._write_env()
            return self.env

    def _front_running(self) -> bool:
        """nginx and Prometheus on record and running (the stack is up, whatever its app)."""
        recs = self.records()
        return all(n in recs and procs.owns(recs[n]) for n in ("nginx", "prometheus"))

    def _start(self, nginx: str, prometheus: str) -> None:
        from ..webapp.db import init_db
        from .tls import make_certs

        layout = self.layout
        for path in layout.generated:
            if path.is_dir():
                shutil.rmtree(path)
        layout.db.parent.mkdir(parents=True, exist_ok=True)
        tls = make_certs(layout.tls_dir)
        init_db(str(layout.db))
        self._state = {
            "schema": 1,
            "dir": str(layout.root),
            "python": self.python,
            "nginx_bin": nginx,
            "prometheus_bin": prometheus,
            "created_at": comp.now_iso(),
            "drain_s": self.drain_s,
            "tls": {
                "ca_cert": str(tls.ca_cert),
                "cert": str(tls.cert),
                "key": str(tls.key),
                "not_after": tls.not_after,
            },
            "db": str(layout.db),
            "colours": {c: None for c in COLOURS},
            "live": COLOURS[0],
            "nginx": None,
            "prometheus": None,
            "last_good": None,
            "rollback_to": None,
        }
        self.save()
        entry = comp.start_colour(
            layout, COLOURS[0], self.initial_version, None, python=self.python, drain_s=self.drain_s
        )
        self._state["colours"][COLOURS[0]] = entry
        self.save()
        reason = comp.colour_ready(entry, timeout=30.0)
        if reason:
            raise StackError(f"app {COLOURS[0]} ({self.initial_version}): {reason}")
        self._state["last_good"] = {"version": self.initial_version, "fault": None}
        self._state["nginx"] = comp.start_nginx(layout, nginx, entry, self._state["tls"])
        self.save()
        self._check_tls()
        self._state["prometheus"] = comp.start_prometheus(
            layout, prometheus, self._state["nginx"]["http_port"]
        )
        self.save()

    def _check_tls(self) -> None:
        url = f"https://{LOOPBACK}:{self._state['nginx']['https_port']}/health"
        status, _ = procs.http(url, timeout=3.0, cafile=self._state["tls"]["ca_cert"])
        if status != 200:
            raise StackError(f"{url} answered {status} through TLS")

    def _write_env(self) -> None:
        lines = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        tmp = self.layout.env_file.with_suffix(".env.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.layout.env_file)

    def down(self) -> dict[str, str]:
        """Stop exactly the processes the stack started; remove its files (not audit.log)."""
        if not self.layout.root.exists():
            return {}
        with self.locked():
            return self._teardown()

    def _teardown(self) -> dict[str, str]:
        recs = self.records()
        outcome: dict[str, str] = {}
        # Front first: Prometheus and nginx, then both colours together (each drains).
        front = [recs[n] for n in ("prometheus", "nginx") if n in recs]
        outcome.update(procs.stop(front, timeout=10.0))
        apps = [r for n, r in recs.items() if n.startswith("app-")]
        outcome.update(procs.stop(apps, timeout=self.drain_s + 8.0))
        procs.reap_finished()
        for path in self.layout.generated:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._state = {}
        with contextlib.suppress(OSError):
            self.layout.root.rmdir()  # only when nothing (no audit.log) is left
        return outcome

    def status(self) -> dict[str, Any]:
        """Health of every part, as seen from outside (HTTP), plus the pids on record."""
        state = self.load()
        if not state:
            return {"dir": str(self.layout.root), "up": False, "healthy": False, "parts": {}}
        parts: dict[str, dict[str, Any]] = {}
        pool = state.get("pool") or []
        for colour, entry in state["colours"].items():
            if not entry:
                continue
            part = _part(comp.colour_proc(entry), f"http://{LOOPBACK}:{entry['port']}/health")
            part.update(version=entry["version"], fault=entry["fault"], port=entry["port"])
            part["live"] = colour == state.get("live") or colour in pool
            parts[f"app-{colour}"] = part
        if state.get("nginx"):
            ngx = state["nginx"]
            rec = ProcRecord.from_json(ngx["proc"])
            parts["nginx"] = _part(rec, f"http://{LOOPBACK}:{ngx['http_port']}/health")
            parts["nginx-tls"] = _part(
                rec,
                f"https://{LOOPBACK}:{ngx['https_port']}/health",
                cafile=state["tls"]["ca_cert"],
            )
        if state.get("prometheus"):
            port = state["prometheus"]["port"]
            rec = ProcRecord.from_json(state["prometheus"]["proc"])
            parts["prometheus"] = _part(rec, f"http://{LOOPBACK}:{port}/-/ready")
        needed = [p for n, p in parts.items() if not n.startswith("app-") or p.get("live")]
        live = state["colours"].get(state.get("live", "")) or {}
        return {
            "dir": str(self.layout.root),
            "up": True,
            "live": state.get("live"),
            "version": live.get("version"),
            "fault": live.get("fault"),
            "rollback_to": state.get("rollback_to"),
            "healthy": bool(needed) and all(p["healthy"] for p in needed),
            "parts": parts,
        }

    # --- deploy and rollback ---------------------------------------------------------------

    def deploy(
        self,
        version: str,
        strategy: str = "bluegreen",
        *,
        fault: str | None = None,
        timeout: float = 120.0,
    ) -> Any:
        """Deploy ``version``; returns a DeployResult, raises DeployError when it fails."""
        from . import deploy

        with self.locked():
            return deploy.deploy(self, version, strategy, fault=fault, timeout=timeout)

    def canary(
        self, version: str, weight: float, *, fault: str | None = None, timeout: float = 120.0
    ) -> Any:
        """Send ``weight`` % of the requests to ``version`` (100 promotes it, 0 takes it out);
        returns a DeployResult, raises DeployError when it fails."""
        from . import deploy

        with self.locked():
            return deploy.canary(self, version, weight, fault=fault, timeout=timeout)

    def rolling(
        self,
        version: str,
        instance: int | None = None,
        *,
        instances: int = 3,
        fault: str | None = None,
        timeout: float = 120.0,
    ) -> Any:
        """Replace instance ``instance`` (1-based; all, one at a time, when None) of a pool of
        ``instances`` with ``version``; returns a DeployResult, raises DeployError."""
        from . import deploy

        with self.locked():
            return deploy.rolling(
                self, version, instance, instances=instances, fault=fault, timeout=timeout
            )

    def rollback(self, *, timeout: float = 120.0) -> Any:
        """Take a canary out, else go back to the version the last deploy replaced; returns a
        DeployResult."""
        from . import deploy

        with self.locked():
            return deploy.rollback(self, timeout=timeout)

    # --- context manager -------------------------------------------------------------------

    def __enter__(self) -> Stack:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()


def _part(rec: ProcRecord | None, url: str, *, cafile: str | None = None) -> dict[str, Any]:
    running = rec is not None and procs.owns(rec)
    part: dict[str, Any] = {"pid": rec.pid if rec else None, "running": running, "url": url}
    if not running:
        return {**part, "healthy": False, "health": "not running"}
    try:
        status, body = procs.http(url, timeout=2.0, cafile=cafile)
    except OSError as exc:
        return {**part, "healthy": False, "health": f"{type(exc).__name__}: {exc}"}
    text = " ".join(body.decode(errors="replace").split())[:80]
    return {**part, "healthy": status == 200, "health": f"{status} {text}"}
