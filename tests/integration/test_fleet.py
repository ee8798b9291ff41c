"""Host checks over ssh against a real sshd: fan-out over a fleet of aliases, a dead host.

Both testinfra backends that speak ssh run here: the ``ssh`` command (with a shared
ControlMaster connection per host) and paramiko.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from .sshd import SshFleet

if TYPE_CHECKING:
    from conftest import GateProject

pytestmark = pytest.mark.integration

FLEET_GATE = """
    gate: production-readiness
    criteria:
      infrastructure-validation:
        - file: /etc/passwd
          expect: {exists: true, owner: root, mode: "0644"}
        - user: root
          expect: {uid: 0}
"""


@pytest.mark.parametrize("scheme", ["ssh", "paramiko"])
def test_host_checks_fan_out_over_the_fleet(
    project: GateProject, sshd_fleet: SshFleet, scheme: str
) -> None:
    project.gate("production-readiness", FLEET_GATE)
    result = project.run_subprocess(
        "--gate=production-readiness", *sshd_fleet.args(scheme), "-v", timeout=180
    )
    for alias in sshd_fleet.aliases:
        result.stdout.fnmatch_lines(
            [f"*infrastructure-validation::file?/etc/passwd??{scheme}://{alias}? PASSED*"]
        )
    result.assert_outcomes(passed=6)
    checks = project.criterion("production-readiness", "infrastructure-validation")["checks"]
    hosts = sorted({c["host"] for c in checks})
    assert hosts == sorted(f"{scheme}://{a}" for a in sshd_fleet.aliases)
    junit = ET.parse(project.path / "reports/gates.xml")
    outs = [e.text or "" for e in junit.iter("system-out")]
    assert any(f"host: {scheme}://web2" in text for text in outs)


@pytest.mark.parametrize("scheme", ["ssh", "paramiko"])
def test_unreachable_host_fails_alone_and_fast(
    project: GateProject, sshd_fleet: SshFleet, scheme: str
) -> None:
    project.gate("production-readiness", FLEET_GATE)
    hosts = sshd_fleet.hosts(scheme, "web1", sshd_fleet.down, "web3")
    started = time.monotonic()
    result = project.run_subprocess(
        "--gate=production-readiness",
        f"--hosts={hosts}",
        f"--ssh-config={sshd_fleet.config}",
        "--gate-connect-timeout=5",
        timeout=180,
    )
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=4, errors=2)  # the unreachable host: nothing measured
    result.stdout.fnmatch_lines([f"*ERROR: host {scheme}://down is unreachable: *"])
    checks = project.criterion("production-readiness", "infrastructure-validation")["checks"]
    failed = {c["host"] for c in checks if c["outcome"] != "passed"}
    assert failed == {f"{scheme}://down"}
    # a refused port is known at once: well within one connect timeout
    assert elapsed < 60


def test_gate_file_names_its_hosts(project: GateProject, sshd_fleet: SshFleet) -> None:
    project.gate(
        "production-readiness",
        """
        gate: production-readiness
        hosts: [ssh://web1, ssh://web2]
        criteria:
          infrastructure-validation:
            - file: /etc/hostname
            - group: root
              hosts: ssh://web3
              expect: {gid: 0}
        """,
    )
    result = project.run_subprocess(
        "--gate=production-readiness", f"--ssh-config={sshd_fleet.config}", "-v", timeout=120
    )
    result.stdout.fnmatch_lines(
        [
            "*file?/etc/hostname??ssh://web1? PASSED*",
            "*file?/etc/hostname??ssh://web2? PASSED*",
            "*group?root??ssh://web3? PASSED*",
        ]
    )
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize("scheme", ["ssh", "paramiko"])
def test_command_runs_on_the_hosts_it_names(
    project: GateProject, sshd_fleet: SshFleet, scheme: str
) -> None:
    project.gate(
        "production-readiness",
        f"""
        gate: production-readiness
        vars:
          word: "a b; echo INJECTED $(id -u)"
        criteria:
          infrastructure-validation:
            - command: echo "${{word}}"; hostname
              hosts: [{scheme}://web1, {scheme}://web2]
              expect: {{stdout_contains: "a b; echo INJECTED $(id -u)"}}
            - command: "echo local"
              id: stays-local
            - command: "exit 3"
              id: remote-status
              hosts: {scheme}://web3
              expect: {{exit_status: 3}}
        """,
    )
    result = project.run_subprocess(
        "--gate=production-readiness", f"--ssh-config={sshd_fleet.config}", "-v", timeout=120
    )
    result.assert_outcomes(passed=4)
    checks = project.criterion("production-readiness", "infrastructure-validation")["checks"]
    hosts = {c["check"]: c["host"] for c in checks}
    assert hosts["stays-local"] == ""
    assert hosts["remote-status[" + scheme + "://web3]"] == f"{scheme}://web3"
    remote = next(c for c in checks if c["host"].endswith("web1"))
    assert "INJECTED 0" not in remote["measured"]["stdout"]


def test_one_shell_per_ssh_host_carries_any_command(sshd_fleet: SshFleet) -> None:
    """The persistent remote shell: multi-line text, binary and large output, status, stdin."""
    from pytest_fwgates.hosts import HostOptions, HostPool

    pool = HostPool(HostOptions(ssh_config=str(sshd_fleet.config)))
    try:
        [hid] = pool.expand(["ssh://web1"])
        host = pool.get(hid)
        heredoc = host.run("cat <<'EOF'\nline one\n$HOME 'quoted'\nEOF")
        assert heredoc.stdout == "line one\n$HOME 'quoted'\n"
        assert host.run("printf '\\000\\377'; exit 7").stdout_bytes == b"\x00\xff"
        assert host.run("exit 7").rc == 7
        big = host.run("head -c 300000 /dev/zero | tr '\\0' x; echo err >&2")
        assert len(big.stdout_bytes) == 300000 and big.stderr == "err\n"
        assert host.run("cat").stdout == ""  # a command reads /dev/null, not the session
        assert host.run("echo %s", "a b; c").stdout == "a b; c\n"
        assert host.run("echo $$").stdout != host.run("echo $$").stdout  # a shell per command
        assert host.file("/etc/passwd").user == "root"
        session = host.backend.fwgates_session
        session.abort()  # a broken shell is replaced by the next command
        assert host.run("true").rc == 0
    finally:
        pool.close()
