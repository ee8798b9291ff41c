"""The hosts host checks run on: testinfra's own options, backends and connections.

``--hosts``, ``--connection``, ``--ssh-config``, ``--ssh-identity-file``, ``--ssh-extra-args``,
``--sudo``, ``--sudo-user`` and ``--ansible-inventory`` are pytest-testinfra's options; a gate
file may name ``hosts:`` too. A :class:`HostPool` turns host specs into testinfra hosts, keeps
one connection per host for the whole run (ssh: a ControlMaster socket in a private folder when
the user's ssh config names no ``ControlPath``), tries each host once within the connect
timeout, and remembers a host that cannot be reached so its other checks fail at once.

testinfra is imported lazily: only runs with host checks pay for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .keys import DEFAULT_CONNECT_TIMEOUT

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "LOCAL",
    "HostError",
    "HostOptions",
    "HostPool",
    "bounded",
    "one_line",
    "shown_spec",
    "spec_password",
    "split_hosts",
]

T = TypeVar("T")

#: the id of the machine pytest runs on
LOCAL = "local://"
_SSH_CONNECTIONS = ("ssh", "safe-ssh")
_TIMEOUT_CONNECTIONS = ("ssh", "safe-ssh", "paramiko")
_CONTROLPATH = re.compile(r"^\s*controlpath\b", re.IGNORECASE | re.MULTILINE)


class HostError(Exception):
    """A host could not be reached or did not answer within its bound."""


_PASSWORD = re.compile(r"^(?P<head>(?:[a-z-]+://)?[^:@/]+):(?P<password>[^@/]+)@")


def spec_password(spec: str) -> str | None:
    """The password in a host spec (``ssh://user:secret@host``), to be masked everywhere."""
    match = _PASSWORD.match(spec)
    return match.group("password") if match else None


def shown_spec(spec: str) -> str:
    """A host spec fit for messages: its password replaced by ``***``."""
    return _PASSWORD.sub(lambda m: f"{m.group('head')}:***@", spec)


def split_hosts(value: str | Sequence[str] | None) -> list[str]:
    """Host specs from ``--hosts`` text (comma separated) or a list, blanks dropped."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


@dataclass(frozen=True)
class HostOptions:
    """pytest-testinfra's connection options, plus the connect timeout of pytest-fwgates."""

    hosts: tuple[str, ...] = ()
    connection: str | None = None
    ssh_config: str | None = None
    ssh_identity_file: str | None = None
    ssh_extra_args: str | None = None
    sudo: bool = False
    sudo_user: str | None = None
    ansible_inventory: str | None = None
    force_ansible: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @classmethod
    def from_option(cls, option: Any, connect_timeout: float | None = None) -> HostOptions:
        """From ``config.option`` (testinfra's dests); absent options take their defaults."""

        def get(name: str) -> Any:
            return getattr(option, name, None)

        return cls(
            hosts=tuple(split_hosts(get("hosts"))),
            connection=get("connection"),
            ssh_config=get("ssh_config"),
            ssh_identity_file=get("ssh_identity_file"),
            ssh_extra_args=get("ssh_extra_args"),
            sudo=bool(get("sudo")),
            sudo_user=get("sudo_user"),
            ansible_inventory=get("ansible_inventory"),
            force_ansible=bool(get("force_ansible")),
            connect_timeout=connect_timeout or DEFAULT_CONNECT_TIMEOUT,
        )

    def testinfra_kwargs(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "connection": self.connection,
            "ssh_config": self.ssh_config,
            "ssh_identity_file": self.ssh_identity_file,
            "ssh_extra_args": self.ssh_extra_args,
            "sudo": self.sudo,
            "sudo_user": self.sudo_user,
            "ansible_inventory": self.ansible_inventory,
            "force_ansible": self.force_ansible,
        }
        return {k: v for k, v in found.items() if v not in (None, False)}


def host_id(backend: Any) -> str:
    """A readable, password-free id: ``ssh://user@name:port``, ``local://``."""
    name = backend.get_connection_type()
    if name == "local":
        return LOCAL
    spec = getattr(backend, "host", None)
    if spec is not None and hasattr(spec, "name"):
        user = f"{spec.user}@" if getattr(spec, "user", None) else ""
        port = f":{spec.port}" if getattr(spec, "port", None) else ""
        return f"{name}://{user}{spec.name}{port}"
    return str(backend.get_pytest_id())


def bounded(call: Callable[[], T], seconds: float, what: str) -> T:
    """Run ``call`` in a thread and give up after ``seconds`` (testinfra has no timeouts)."""
    holder: dict[str, Any] = {}

    def run() -> None:
        try:
            holder["value"] = call()
        except BaseException as exc:  # re-raised in the caller's thread
            holder["error"] = exc

    worker = threading.Thread(target=run, name=f"fwgates-{what}"[:60], daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise HostError(f"{what} did not finish within {seconds:g} s")
    if "error" in holder:
        raise holder["error"]
    value: T = holder["value"]
    return value


def _user_ssh_config(options: HostOptions) -> Path:
    if options.ssh_config:
        return Path(options.ssh_config).expanduser()
    return Path.home() / ".ssh" / "config"


def _names_controlpath(options: HostOptions) -> bool:
    if options.ssh_extra_args and "controlpath" in options.ssh_extra_args.lower():
        return True
    try:
        text = _user_ssh_config(options).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(_CONTROLPATH.search(text))


@dataclass
class _Entry:
    host: Any
    reachable: bool | None = None
    reason: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class HostPool:
    """testinfra hosts by id, connected once per run; unreachable hosts remembered."""

    def __init__(self, options: HostOptions | None = None) -> None:
        self.options = options or HostOptions()
        self._entries: dict[str, _Entry] = {}
        #: host spec -> the host ids it names (an ansible group: several)
        self._resolved: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._control_dir: Path | None = None

    # -- which hosts ---------------------------------------------------------------------
    def expand(self, specs: Iterable[str]) -> list[str]:
        """Host ids for host specs (an ansible group becomes its hosts), each once."""
        ids: list[str] = []
        for spec in specs:
            for hid in self._resolve(spec):
                if hid not in ids:
                    ids.append(hid)
        return ids

    def _resolve(self, spec: str) -> list[str]:
        known = self._resolved.get(spec)
        if known is not None:
            return list(known)
        import testinfra.backend

        kwargs = self._kwargs_for(spec)
        try:
            backends = testinfra.backend.get_backends([spec], **kwargs)
        except Exception as exc:
            raise HostError(f"host {shown_spec(spec)!r}: {exc}") from None
        ids = []
        for backend in backends:
            _check_name(spec, backend)
            hid = host_id(backend)
            with self._lock:
                if hid not in self._entries:
                    self._entries[hid] = _Entry(self._make_host(backend))
            ids.append(hid)
        self._resolved[spec] = list(ids)
        return ids

    def _kwargs_for(self, spec: str) -> dict[str, Any]:
        import testinfra.backend

        kwargs = self.options.testinfra_kwargs()
        _, given = testinfra.backend.parse_hostspec(spec)
        connection = given.get("connection") or kwargs.get("connection")
        if connection is None and spec and "://" not in spec:
            connection = "paramiko"  # testinfra's default for a bare name
        if connection in _TIMEOUT_CONNECTIONS:
            kwargs.setdefault("timeout", max(1, round(self.options.connect_timeout)))
        if connection in _SSH_CONNECTIONS:
            extra = kwargs.get("ssh_extra_args") or ""
            if "serveralive" not in extra.lower():
                # a host that stops answering is noticed, not waited for forever
                alive = "-o ServerAliveInterval=5 -o ServerAliveCountMax=3"
                kwargs["ssh_extra_args"] = f"{extra} {alive}".strip()
            if not _names_controlpath(self.options) and "controlpath" not in given:
                kwargs["controlpath"] = str(self._control_path(spec))
        return kwargs

    def _control_path(self, spec: str) -> Path:
        """A socket path of our own: ssh shares one connection per host through it."""
        if self._control_dir is None:
            self._control_dir = Path(tempfile.mkdtemp(prefix="fwgates-ssh-"))
            os.chmod(self._control_dir, 0o700)
        digest = hashlib.sha256(spec.encode()).hexdigest()[:16]
        return self._control_dir / digest

    def _make_host(self, backend: Any) -> Any:
        import testinfra.host

        from .session import attach

        host = testinfra.host.Host(backend)
        backend.set_host(host)
        attach(backend, self.options.connect_timeout)
        return host

    # -- using a host --------------------------------------------------------------------
    def get(self, hid: str) -> Any:
        """The connected testinfra host ``hid``; :class:`HostError` if it cannot be reached."""
        entry = self._entries.get(hid)
        if entry is None:
            self._resolve(hid)
            entry = self._entries.get(hid)
            if entry is None:
                raise HostError(f"host {hid}: no such host")
        with entry.lock:
            if entry.reachable is None:
                entry.reachable, entry.reason = self._connect(hid, entry.host)
        if not entry.reachable:
            raise HostError(f"host {hid} is unreachable: {entry.reason}")
        return entry.host

    def _connect(self, hid: str, host: Any) -> tuple[bool, str]:
        seconds = self.options.connect_timeout + 5
        try:
            result = bounded(lambda: host.run("true"), seconds, f"connecting to {hid}")
        except HostError:
            return False, f"no answer within {self.options.connect_timeout:g} s"
        except Exception as exc:
            return False, one_line(exc)
        if result.rc != 0:
            detail = one_line(result.stderr) or f"exit status {result.rc}"
            return False, detail
        return True, ""

    def abort(self, hid: str) -> None:
        """Stop what runs on host ``hid`` now (a check past its bound); it reconnects later."""
        entry = self._entries.get(hid)
        session = getattr(getattr(entry, "host", None), "backend", None)
        session = getattr(session, "fwgates_session", None)
        if session is not None:
            session.abort()

    def mark_unreachable(self, hid: str, reason: str) -> None:
        entry = self._entries.get(hid)
        if entry is not None:
            entry.reachable, entry.reason = False, reason

    def close(self) -> None:
        """Stop the ssh connections this pool shared and remove their sockets."""
        for entry in self._entries.values():
            session = getattr(entry.host.backend, "fwgates_session", None)
            if session is not None:
                session.close()
        folder, self._control_dir = self._control_dir, None
        if folder is None:
            return
        for socket in folder.iterdir():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "fwgates"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=10,
                    check=False,
                )
        shutil.rmtree(folder, ignore_errors=True)


_BAD_NAME = re.compile(r"^-|[\s\x00-\x1f\x7f]")


def _check_name(spec: str, backend: Any) -> None:
    """Refuse a host name that a transport would read as something else: ssh, docker, kubectl
    and the others get the name as an argument of their own command line, where a name that
    starts with ``-`` is an option (``-oProxyCommand=...`` runs a command on this machine), and
    no host name holds blanks or control characters."""
    names = (
        getattr(backend, "hostname", None),
        getattr(getattr(backend, "host", None), "name", None),
    )
    for name in names:
        if not isinstance(name, str) or not _BAD_NAME.search(name):
            continue
        raise HostError(
            f"host {shown_spec(spec)!r}: {name!r} is not a host name "
            "(a name never starts with '-' nor holds blanks or control characters)"
        )


def one_line(value: object) -> str:
    """The telling line of an error: ssh and testinfra put the reason on the last line."""
    if isinstance(value, BaseException) and value.args and hasattr(value.args[0], "stderr"):
        value = value.args[0]  # testinfra raises RuntimeError(CommandResult) for ssh errors
    text = str(getattr(value, "stderr", None) or value).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # ssh puts the reason last ("ssh: connect to host ... Connection refused")
    reason = lines[-1] if lines else type(value).__name__
    return reason[:300]
