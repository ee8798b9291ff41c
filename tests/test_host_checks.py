"""Host check types against the real state of this machine (testinfra's local backend).

Files are made with given modes, sockets really listen, users, groups, packages, mounts and
kernel parameters are the machine's own.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.checks.package import compare_versions, version_holds

if TYPE_CHECKING:
    from conftest import GateProject


def _gate(project: GateProject, checks: str) -> None:
    project.criterion_gate("security-compliance", "access-control", checks)


def _run(project: GateProject, checks: str, *args: str) -> tuple[pytest.RunResult, list[dict]]:
    _gate(project, checks)
    result = project.run("--gate=security-compliance", "-p", "no:randomly", *args)
    return result, project.criterion("security-compliance", "access-control")["checks"]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_file_mode_owner_contents(project: GateProject, tmp_path: Path) -> None:
    key = tmp_path / "tls.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n")
    key.chmod(0o644)
    digest = hashlib.sha256(key.read_bytes()).hexdigest()
    owner = Path(key).owner()
    result, checks = _run(
        project,
        f"""
- file: {key}
  id: loose
  expect: {{mode: "0600", owner: {owner}}}
- file: {key}
  id: right
  expect: {{type: file, owner: {owner}, contains: "PRIVATE KEY", sha256: {digest}, size: "< 100"}}
- file: {tmp_path / "missing"}
  id: missing
- file: {tmp_path}
  id: dir
  expect: {{type: file}}
""",
    )
    result.assert_outcomes(passed=1, failed=3)
    by_id = {c["check"]: c for c in checks}
    assert by_id["loose"]["message"] == "mode is 0644, expected 0600"
    assert by_id["loose"]["measured"]["mode"] == "0644"
    assert by_id["right"]["outcome"] == "passed"
    assert by_id["right"]["measured"]["size"] == key.stat().st_size
    assert by_id["missing"]["message"] == f"{tmp_path / 'missing'} does not exist"
    assert by_id["dir"]["message"] == "type is directory, expected file"
    assert {c["host"] for c in checks} == {"local://"}
    result.stdout.fnmatch_lines(
        ["*security-compliance.yaml:*: FAILED: mode is 0644, expected 0600"]
    )


def test_file_mode_fixed_passes(project: GateProject, tmp_path: Path) -> None:
    key = tmp_path / "tls.key"
    key.write_text("k")
    key.chmod(0o600)
    result, _ = _run(project, f'- file: {key}\n  expect: {{mode: "0600", exists: true}}')
    result.assert_outcomes(passed=1)


def test_socket_listening_and_closed(project: GateProject, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result, checks = _run(
        project,
        f"""
- socket: tcp://127.0.0.1:{port}
- socket: tcp://127.0.0.1:{closed}
""",
    )
    result.assert_outcomes(passed=1, failed=1)
    assert checks[1]["message"] == f"tcp://127.0.0.1:{closed} is not listening, expected listening"


def test_listening_names_unexpected_ports(project: GateProject) -> None:
    import testinfra

    public = socket.socket()
    public.bind(("0.0.0.0", 0))
    public.listen()
    port = public.getsockname()[1]
    try:
        others = [
            int(url.rsplit(":", 1)[1])
            for url in testinfra.get_host("local://").socket.get_listening_sockets()
            if url.startswith("tcp://") and int(url.rsplit(":", 1)[1]) != port
        ]
        allowed = ", ".join(str(p) for p in others) or ""
        result, checks = _run(
            project,
            f"""
- listening: tcp
  id: strict
  ignore_loopback: true
  expect: {{allowed: [{allowed}]}}
- listening: tcp
  id: allowing
  ignore_loopback: true
  expect: {{allowed: [{", ".join([*allowed.split(", "), str(port)]).strip(", ")}]}}
""",
        )
    finally:
        public.close()
    result.assert_outcomes(passed=1, failed=1)
    assert f"unexpected listeners: tcp://0.0.0.0:{port}" in checks[0]["message"]
    assert checks[0]["measured"]["unexpected"] == 1


def test_process_user_group(project: GateProject) -> None:
    comm = Path("/proc/self/comm").read_text().strip()
    result, checks = _run(
        project,
        f"""
- process: {comm}
  user: root
  expect: {{count: ">= 1"}}
- process: no-such-process-name
- user: root
  expect: {{uid: 0, groups: [root], home: /root}}
- user: no-such-user
- user: root
  id: wrong-shell
  expect: {{shell: /bin/false}}
- group: root
  expect: {{gid: 0}}
- group: no-such-group
  expect: {{exists: false}}
""",
    )
    outcomes = {c["check"]: (c["outcome"], c["message"]) for c in checks}
    assert outcomes[f"process[{comm}]"][0] == "passed"
    assert outcomes["process[no-such-process-name]"] == ("failed", "count = 0, expected >= 1")
    assert outcomes["user[root]"][0] == "passed"
    assert outcomes["user[no-such-user]"] == (
        "failed",
        "user no-such-user does not exist, expected it to exist",
    )
    shell = next(c for c in checks if c["check"] == "wrong-shell")["measured"]["shell"]
    assert outcomes["wrong-shell"] == ("failed", f"shell is {shell}, expected /bin/false")
    assert outcomes["group[root]"][0] == "passed"
    assert outcomes["group[no-such-group]"][0] == "passed"
    result.assert_outcomes(passed=4, failed=3)


def test_sysctl_mount_package(project: GateProject) -> None:
    forward = int(Path("/proc/sys/net/ipv4/ip_forward").read_text())
    root_fs = next(
        line.split()[2]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1] == "/"
    )
    result, checks = _run(
        project,
        f"""
- sysctl: net.ipv4.ip_forward
  expect: {{value: {forward}}}
- sysctl: net.ipv4.ip_forward
  id: forward-threshold
  expect: {{value: "> {forward}"}}
- mount: /
  expect: {{fs: {root_fs}}}
- mount: /
  id: root-noexec
  expect: {{options: [noexec-not-an-option]}}
- package: nginx
  expect: {{installed: true, version: ">= 1.0"}}
- package: nginx
  id: nginx-old
  expect: {{version: "< 1.0"}}
- package: no-such-package-fwgates
""",
    )
    outcomes = {c["check"]: (c["outcome"], c["message"]) for c in checks}
    assert outcomes["forward-threshold"] == (
        "failed",
        f"net.ipv4.ip_forward is {forward}, expected > {forward}",
    )
    assert outcomes["mount[/]"][0] == "passed"
    assert outcomes["root-noexec"][1].startswith("/ is mounted without noexec-not-an-option")
    assert outcomes["package[nginx]"][0] == "passed"
    version = next(c for c in checks if c["check"] == "nginx-old")["measured"]["version"]
    assert outcomes["nginx-old"] == ("failed", f"version is {version}, expected < 1.0")
    assert outcomes["package[no-such-package-fwgates]"] == (
        "failed",
        "package no-such-package-fwgates is not installed, expected installed",
    )
    result.assert_outcomes(passed=3, failed=4)


def test_host_checks_measure_mismatches(project: GateProject, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    path.chmod(0o640)
    _, checks = _run(project, f'- file: {path}\n  expect: {{mode: "0600", type: directory}}')
    assert checks[0]["measured"]["mismatches"] == 2


def test_bad_host_check_input_is_one_line(project: GateProject) -> None:
    _gate(project, '- file: /etc/passwd\n  expect: {mode: "rw-r--r--"}')
    result = project.run("--gate=security-compliance")
    result.stdout.fnmatch_lines(["*security-compliance.yaml:*: expect.mode: *"])
    assert "Traceback" not in result.stdout.str()


def test_an_unknown_connection_is_a_file_error(project: GateProject) -> None:
    _gate(project, "- file: /etc/passwd\n  hosts: [nosuch://web1]")
    result = project.run("--gate=security-compliance")
    result.stdout.fnmatch_lines(["*security-compliance.yaml:*: host 'nosuch://web1': *"])


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.22.1-9+deb12u11", "1.22", 1),
        ("1.0~rc1", "1.0", -1),
        ("2:1.0", "1:9.9", 1),
        ("1.2.10", "1.2.9", 1),
        ("1.0-1", "1.0-1", 0),
        ("1.0a", "1.0", 1),
    ],
)
def test_debian_version_order(a: str, b: str, order: int) -> None:
    assert compare_versions(a, b) == order
    assert compare_versions(b, a) == -order


def test_version_constraints() -> None:
    assert version_holds("1.22.1-9", ">= 1.22")
    assert version_holds("1.22.1-9", "1.22.1-9")
    assert not version_holds("1.22.1-9", "< 1.22")
    assert version_holds("1.22.1-9", "!= 1.21")


def test_gate_check_fixture_runs_host_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_passwd(gate_check):
            result = gate_check("file", "/etc/passwd", expect={"owner": "root"})
            assert result.host == "local://"
            assert result.measured["mismatches"] == 0

        def test_testinfra_host_fixture_still_works(host):
            assert host.file("/etc/passwd").exists
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_command_true_cannot_carry_the_catalog(project: GateProject) -> None:
    """The criteria demand values only host, tls, scan and audit_trail checks measure."""
    project.gate(
        "security-compliance",
        """
        gate: security-compliance
        criteria:
          security-scanning: [{command: "true"}]
          compliance-validation: [{command: "true"}]
          access-control: [{command: "true"}]
          data-protection: [{command: "true"}]
          audit-trail: [{command: "true"}]
        """,
    )
    project.gate(
        "production-readiness",
        """
        gate: production-readiness
        criteria:
          infrastructure-validation: [{command: "true"}]
          security-compliance: [{command: "true"}]
          performance-verification: [{command: "true"}]
          monitoring-operational: [{command: "true"}]
          rollback-capability: [{command: "true"}]
        """,
    )
    result = project.run("--gate=security-compliance", "--gate=production-readiness")
    result.assert_outcomes(passed=10)
    assert project.verdicts() == {"security-compliance": "FAILED", "production-readiness": "FAILED"}
    assert set(project.criteria("security-compliance").values()) == {"NOT_EVALUATED"}
    assert project.criteria("production-readiness")["infrastructure-validation"] == (
        "NOT_EVALUATED"
    )


def test_a_password_in_a_host_spec_never_shows(project: GateProject) -> None:
    _gate(project, "- file: /etc/passwd")
    secret = "s3cret-pass-word"
    result = project.run(
        "--gate=security-compliance",
        f"--hosts=ssh://deploy:{secret}@127.0.0.1:1",
        "--gate-connect-timeout=3",
        "-v",
    )
    result.stdout.fnmatch_lines(["*file?/etc/passwd??ssh://deploy@127.0.0.1:1? ERROR*"])
    assert secret not in result.stdout.str()
    assert secret not in (project.path / "reports/summary.json").read_text()
    assert secret not in (project.path / "reports/gates.xml").read_text()


@pytest.mark.parametrize("scheme", ["ssh", "paramiko"])
def test_a_silent_host_fails_within_the_connect_timeout(
    project: GateProject, listener: socket.socket, scheme: str
) -> None:
    """A port that accepts TCP but never speaks SSH: the host fails within its bound."""
    import time

    port = listener.getsockname()[1]
    _gate(project, "- file: /etc/passwd\n- user: root")
    started = time.monotonic()
    result = project.run_subprocess(
        "--gate=security-compliance",
        f"--hosts={scheme}://root@127.0.0.1:{port}",
        "--gate-connect-timeout=2",
        timeout=120,
    )
    elapsed = time.monotonic() - started
    result.assert_outcomes(errors=2)  # an unreachable host: nothing measured
    host = f"{scheme}://root@127.0.0.1:{port}"
    result.stdout.fnmatch_lines([f"*ERROR: host {host} is unreachable: *"])
    assert elapsed < 40  # 2 s to connect, + 5 s margin, once for the host, + pytest start-up


def test_testinfra_host_fixture_serves_a_criterion(project: GateProject) -> None:
    project.production_ready()
    project.pytester.makepyfile(
        test_infra="""
        import pytest

        @pytest.mark.gate("production-readiness", criterion="infrastructure-validation")
        def test_passwd_owned_by_root(host):
            assert host.file("/etc/passwd").user == "root"
        """
    )
    result = project.run("--gate=production-readiness", "--hosts=local://", "-v")
    result.stdout.fnmatch_lines(["*test_passwd_owned_by_root?local? PASSED*"])
    assert project.verdicts() == {"production-readiness": "PASSED"}
    checks = project.criterion("production-readiness", "infrastructure-validation")["checks"]
    assert len(checks) == 2


@pytest.mark.parametrize(
    "spec",
    [
        "ssh://-oProxyCommand=touch canary",
        "ssh://user@%2DoProxyCommand=touch%20canary:22",
        "-oProxyCommand=touch canary",
        "ssh://web1%20-oProxyCommand=touch%20canary",
    ],
)
def test_a_host_name_is_never_an_option(project: GateProject, spec: str) -> None:
    """A host named by a value (here ``--gate-var``) reaches ssh as an argument of its command
    line: a name that starts with '-' would be an option there (``-oProxyCommand`` runs a
    command on this machine). Such a name is a file error; ssh never starts."""
    _gate(project, '- command: "true"\n  hosts: ["${target}"]')
    result = project.run("--gate=security-compliance", f"--gate-var=target={spec}")
    result.stdout.fnmatch_lines(["*security-compliance.yaml:*: host *is not a host name*"])
    assert result.ret != 0 and "Traceback" not in result.stdout.str()
    assert not (project.path / "canary").exists()
