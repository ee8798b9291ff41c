"""Ready-made access-control checks against this machine's real accounts, files and sshd."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

NO_LOGIN = ("nologin", "/false", "/sync", "/shutdown", "/halt")


def _access(project: GateProject, checks: str) -> dict[str, dict[str, Any]]:
    project.criterion_gate("security-compliance", "access-control", checks)
    project.run("--gate=security-compliance")
    found = project.criterion("security-compliance", "access-control")["checks"]
    return {c["check"]: c for c in found}


def _login_users() -> list[str]:
    out = subprocess.run(["getent", "passwd"], capture_output=True, text=True, check=True)
    users = []
    for line in out.stdout.splitlines():
        fields = line.split(":")
        if fields[6] and not fields[6].endswith(NO_LOGIN):
            users.append(fields[0])
    return sorted(users)


@pytest.fixture
def sshd_config(tmp_path: Path) -> Path:
    # sshd -T needs its privilege separation directory, which only a started sshd (or
    # systemd) makes: without it the check reads the config file instead
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host_key")],
        check=True,
        timeout=30,
    )
    return tmp_path


def test_sshd_refuses_root_and_passwords(project: GateProject, sshd_config: Path) -> None:
    strict = sshd_config / "strict_config"
    strict.write_text(
        f"HostKey {sshd_config / 'host_key'}\nPermitRootLogin no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
    )
    loose = sshd_config / "loose_config"
    loose.write_text(f"HostKey {sshd_config / 'host_key'}\nPermitRootLogin yes\n")
    checks = _access(
        project,
        f"""
- sshd: {strict}
  id: strict
- sshd: {loose}
  id: loose
- sshd: {strict}
  id: settings
  expect: {{settings: {{x11forwarding: "yes"}}}}
""",
    )
    assert checks["strict"]["outcome"] == "passed", checks["strict"]["message"]
    assert checks["strict"]["measured"]["source"] == "sshd -T"
    assert checks["loose"]["message"] == (
        "PermitRootLogin is yes, expected no; password logins are allowed, expected them refused"
    )
    assert checks["settings"]["message"] == "x11forwarding is no, expected yes"


def test_login_users_and_sudo_members(project: GateProject) -> None:
    users = _login_users()
    allowed = ", ".join(users)
    fewer = ", ".join(users[1:]) or ""
    checks = _access(
        project,
        f"""
- login_users: [{allowed}]
  id: exact
- login_users: [{fewer}]
  id: one-too-many
- sudo_members: [fwgates-no-such-admin]
  id: sudo
""",
    )
    assert checks["exact"]["outcome"] == "passed"
    assert checks["one-too-many"]["message"] == (
        f"users with a login shell beyond the allowed ones: {users[0]}"
    )
    members = checks["sudo"]["measured"]["sudo_members"]
    assert checks["sudo"]["message"] == (
        f"sudo members are [{', '.join(members)}], expected [fwgates-no-such-admin]"
    )


def test_no_world_readable_private_key(project: GateProject, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "ok.key").write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    (keys / "ok.key").chmod(0o600)
    (keys / "public.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (keys / "public.pem").chmod(0o644)
    checks = _access(project, f"- private_keys: [{keys}]\n  id: tight")
    assert checks["tight"]["outcome"] == "passed"
    leaked = keys / "id_ed25519"
    leaked.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")
    leaked.chmod(0o644)
    checks = _access(project, f"- private_keys: [{keys}]\n  id: loose")
    assert checks["loose"]["message"] == f"private keys readable by others: {leaked}"
    assert checks["loose"]["measured"]["readable_keys"] == 1


def test_private_keys_on_a_folder_that_is_not_there_is_an_error(
    project: GateProject, tmp_path: Path
) -> None:
    """A folder that does not exist (a typo) or is a file was never searched: no pass."""
    (tmp_path / "a-file").write_text("not a folder\n")
    checks = _access(
        project,
        f"- private_keys: [{tmp_path / 'no-such-keys'}]\n  id: missing\n"
        f"- private_keys: [{tmp_path / 'a-file'}]\n  id: file\n",
    )
    assert checks["missing"]["outcome"] == "error"
    assert "no-such-keys does not exist on" in checks["missing"]["message"]
    assert checks["file"]["outcome"] == "error"
    assert "a-file is not a folder on" in checks["file"]["message"]
