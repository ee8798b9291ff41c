"""A real OpenSSH server on a free 127.0.0.1 port, with throwaway host and client keys.

``sshd_fleet`` starts Debian's sshd (``openssh-server``) once per session (per xdist worker)
and writes an ssh config in which the aliases ``web1``, ``web2`` and ``web3`` all reach it
as root with the throwaway client key, and ``down`` points at a port nothing listens on.
Both testinfra backends (``ssh://``, ``paramiko://``) read that config through
``--ssh-config``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from examples.stack import procs

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
FLEET = ("web1", "web2", "web3")
DOWN = "down"


@dataclass
class SshFleet:
    port: int
    closed_port: int
    config: Path
    identity: Path
    aliases: tuple[str, ...] = FLEET
    down: str = DOWN

    def hosts(self, scheme: str = "ssh", *aliases: str) -> str:
        """``--hosts`` text: ``ssh://web1,ssh://web2,...``."""
        return ",".join(f"{scheme}://{alias}" for alias in (aliases or self.aliases))

    def args(self, scheme: str = "ssh", *aliases: str) -> list[str]:
        return [f"--hosts={self.hosts(scheme, *aliases)}", f"--ssh-config={self.config}"]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fwgates-test", "-f", str(path)],
        check=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with status {proc.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {seconds:g} s")


@contextlib.contextmanager
def running_sshd(folder: Path) -> Iterator[SshFleet]:
    """Start sshd with keys and configs in ``folder`` (mode 0700); stop it on exit."""
    if not os.path.exists(SSHD):
        raise RuntimeError("sshd is missing: install the Debian package openssh-server")
    os.chmod(folder, 0o700)
    host_key, client_key = folder / "host_key", folder / "client_key"
    _keygen(host_key)
    _keygen(client_key)
    authorized = folder / "authorized_keys"
    authorized.write_text((folder / "client_key.pub").read_text())
    port, closed_port = procs.free_ports(2)
    config = folder / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1:{port}\n"
        f"HostKey {host_key}\n"
        f"PidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "MaxSessions 50\n"
        "MaxStartups 50:30:100\n"
        "LogLevel ERROR\n"
    )
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {(folder / 'host_key.pub').read_text()}")
    client = folder / "ssh_config"
    common = (
        "  HostName 127.0.0.1\n"
        "  User root\n"
        f"  IdentityFile {client_key}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        "  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        "  LogLevel ERROR\n"
    )
    blocks = [f"Host {alias}\n  Port {port}\n{common}" for alias in FLEET]
    blocks.append(f"Host {DOWN}\n  Port {closed_port}\n{common}")
    client.write_text("\n".join(blocks))
    # sshd insists on its privilege separation directory
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with open(folder / "sshd.log", "wb") as log:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            _wait_listening(port, proc, 15)
            yield SshFleet(port, closed_port, client, client_key)
        finally:
            _stop(proc)


@pytest.fixture(scope="session")
def sshd_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshFleet]:
    """A real sshd on 127.0.0.1 and an ssh config with three aliases of it and one dead host."""
    try:
        with running_sshd(tmp_path_factory.mktemp("sshd")) as fleet:
            yield fleet
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop sshd and the session processes it forked (its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue
