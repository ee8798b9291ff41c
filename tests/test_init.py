"""``fwgates init``: starter gate files from a running service (real loopback servers).

What it writes loads, runs, and passes nothing without evidence: a criterion it could not give
a check ends NOT_EVALUATED. Odd services (no metrics, a self-signed certificate, Prometheus
unreachable, credentials in the URL) end in notes and TODO lines, never in a traceback, a leaked
secret or an invented pass.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import http_server, server_context

from pytest_fwgates.cli import main
from pytest_fwgates.init import clean_url

if TYPE_CHECKING:
    from conftest import GateProject

METRICS = (
    b"# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"
    b'http_requests_total{code="200"} 3\n'
)


def _routes(**extra: tuple[int, bytes]) -> dict[str, tuple[int, bytes]]:
    routes = {
        "/health": (200, b'{"status": "ok", "version": "v7"}'),
        "/metrics": (200, METRICS),
    }
    routes.update(extra)
    return routes


def service(
    routes: dict[str, tuple[int, bytes]], tls: ssl.SSLContext | None = None
) -> AbstractContextManager[str]:
    """A real HTTP(S) server on loopback answering ``routes`` (404 elsewhere)."""
    return http_server(lambda path: routes.get(path, (404, b"not found")), tls)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: ``init(*argv)``: the exit code, output and errors of ``fwgates init`` in the project
Init = Callable[..., tuple[int, str, str]]


@pytest.fixture
def init(
    project: GateProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Init:
    """Runs ``fwgates init --timeout 3 *argv`` in the project's folder."""

    def run(*argv: str) -> tuple[int, str, str]:
        monkeypatch.chdir(project.path)
        code = main(["init", "--timeout", "3", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _written(project: GateProject, gate: str) -> str:
    return (project.path / "gates" / f"{gate}.yaml").read_text(encoding="utf-8")


def test_every_catalog_gate_gets_a_file_that_loads(
    project: GateProject,
    init: Init,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with service(_routes(**{"/debug": (404, b"")})) as url:
        code, out, err = init("--url", url, "--no-host")
    assert code == 0, err
    files = sorted(p.stem for p in (project.path / "gates").glob("*.yaml"))
    assert len(files) == 8 and "production-readiness" in files
    for name in files:
        text = _written(project, name)
        assert yaml.safe_load(text)["gate"] == name
        assert "TODO" in text
    monkeypatch.chdir(project.path)
    assert main(["check"]) == 0
    capsys.readouterr()
    readiness = yaml.safe_load(_written(project, "production-readiness"))
    criteria = readiness["criteria"]
    # found: the health endpoint (production-answers elsewhere), the metrics, the load
    assert criteria["monitoring-operational"][0]["http"] == "${url}/metrics"
    assert criteria["monitoring-operational"][0]["expect"]["body_contains"] == [
        "http_requests_total"
    ]
    assert set(criteria["performance-verification"][0]["paths"]) == {"/health"}
    # not found, so not written as checks: no TLS, no host, no Prometheus, no rollback
    assert set(criteria) == {"monitoring-operational", "performance-verification"}
    assert "no TLS found" in out and "# TODO: the command that rolls the service back" in (
        _written(project, "production-readiness")
    )


def test_nothing_passes_without_evidence(project: GateProject, init: Init) -> None:
    """Run the written operations-handoff and security-compliance gates: what init found
    passes on the live service, every criterion it left as TODO is NOT_EVALUATED."""
    with service(_routes(**{"/admin": (403, b"")})) as url:
        code, _, err = init(
            "--url",
            url,
            "--no-host",
            "--gate",
            "security-compliance",
            "--gate",
            "deployment-handoff-validation",
        )
        assert code == 0, err
        result = project.run("--gate=security-compliance", "--gate=deployment-handoff-validation")
    assert result.ret == 1
    assert project.verdicts() == {
        "security-compliance": "FAILED",
        "deployment-handoff-validation": "FAILED",
    }
    assert set(project.criteria("security-compliance").values()) == {"NOT_EVALUATED"}
    answers = project.criteria("deployment-handoff-validation")
    assert answers["production-answers"] == "PASS"  # the health and version checks ran
    checks = project.checks("deployment-handoff-validation", "production-answers")
    assert {c["outcome"] for c in checks.values()} == {"passed"}
    assert any("/version" in c["target"] or "/health" in c["target"] for c in checks.values())


def test_self_signed_tls_is_checked_not_trusted(
    project: GateProject,
    init: Init,
    tmp_path: Path,
) -> None:
    context = server_context(tmp_path, "self-signed.test")
    with service(_routes(), tls=context) as url:
        code, _, err = init("--url", url, "--no-host", "--gate", "security-compliance")
        assert code == 0, err
        text = _written(project, "security-compliance")
        assert "did not verify" in text and "self-signed.test" in text
        result = project.run("--gate=security-compliance")
        assert result.ret == 1
        # the tls check ran against the real server and failed its chain: no pass
        assert project.criteria("security-compliance")["data-protection"] == "FAIL"
        # with the CA given, the same check passes on the same server
        code, _, err = init(
            "--url",
            url,
            "--no-host",
            "--ca",
            str(tmp_path / "cert.pem"),
            "--gate",
            "security-compliance",
            "--force",
        )
        assert code == 0, err
        project.run("--gate=security-compliance")
        assert project.criteria("security-compliance")["data-protection"] == "PASS"
        assert project.verdicts()["security-compliance"] == "FAILED"  # the TODO criteria


def test_odd_services_end_in_notes_and_todos(project: GateProject, init: Init) -> None:
    # no metrics, /debug open, Prometheus unreachable, credentials in both URLs
    routes = {"/healthz": (200, b"ok"), "/debug": (200, b"debug console")}
    with service(routes) as url:
        port = url.rsplit(":", 1)[1]
        secret_url = f"http://ops:s3cr%40t-pw@127.0.0.1:{port}/?token=tok-123"
        prometheus = f"http://admin:prom-pw@127.0.0.1:{_closed_port()}"
        code, out, err = init(
            "--url", secret_url, "--prometheus-url", prometheus, "--gate", "production-readiness"
        )
    assert code == 0, err
    text = _written(project, "production-readiness")
    for secret in ("s3cr", "prom-pw", "tok-123", "ops:", "admin:"):
        assert secret not in text and secret not in out and secret not in err
    assert "credentials in a URL were used to look and are not written" in text
    assert f'url: "http://127.0.0.1:{port}"' in text
    assert "no Prometheus metrics endpoint found" in text
    assert "did not answer its targets API" in text
    doc = yaml.safe_load(text)
    # without TLS the open debug endpoint is a TODO, not a check that carries the criterion
    assert "security-compliance" not in doc["criteria"]
    assert "/debug answers 200" in text
    assert "monitoring-operational" not in doc["criteria"]
    assert doc["criteria"]["performance-verification"][0]["paths"] == {"/healthz": 1}


def test_existing_files_are_kept_without_force(project: GateProject, init: Init) -> None:
    mine = project.gate("production-readiness", "gate: production-readiness\n# mine\n")
    before = mine.read_text()
    with service(_routes()) as url:
        args = ("--url", url, "--no-host", "--gate", "production-readiness")
        code, out, _ = init(*args)
        assert code == 1 and "exists, left as it is" in out
        assert mine.read_text() == before
        code, out, _ = init(*args, "--force")
    assert code == 0 and "# Starter gate file" in mine.read_text()


def test_a_gate_named_twice_is_written_once(project: GateProject, init: Init) -> None:
    with service(_routes()) as url:
        code, out, err = init("--url", url, "--no-host", *["--gate", "security-compliance"] * 2)
    assert code == 0, err
    assert "exists" not in out and out.count("security-compliance.yaml:") == 1


def test_a_link_in_place_of_the_file_is_kept_without_force(
    project: GateProject, init: Init
) -> None:
    """A symlink (also one whose target does not exist yet) counts as an existing file."""
    folder = project.path / "gates"
    folder.mkdir(exist_ok=True)
    link = folder / "production-readiness.yaml"
    link.symlink_to(project.path / "shared" / "production-readiness.yaml")
    with service(_routes()) as url:
        args = ("--url", url, "--no-host", "--gate", "production-readiness")
        code, out, _ = init(*args)
        assert code == 1 and "exists, left as it is" in out
        assert link.is_symlink() and not (project.path / "shared").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "ftp://x"], "expected an http:// or https:// URL"),
        (["--url", "http://127.0.0.1:1/${env:HOME}"], "'$'"),
        (["--url", "http://127.0.0.1:99999"], "--url:"),
        (["--url", "http://127.0.0.1:1", "--gate", "prod-readiness"], "did you mean"),
        (["--url", "http://127.0.0.1:1", "--timeout", "0"], "must be more than 0"),
        (["--url", "https://127.0.0.1:1", "--ca", "/nonexistent/ca.pem"], "--ca /nonexistent"),
        (["--url", "https://127.0.0.1:1", "--ca", "/etc/passwd"], "--ca /etc/passwd: "),
        (["--url", "https://127.0.0.1:1", "--ca", "/"], "--ca /: "),
        (["--url", "http://127.0.0.1:1", "--ca", "/etc/hostname"], "--ca /etc/hostname: "),
    ],
)
def test_usage_errors_are_one_line(
    project: GateProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(project.path)
    code = main(["init", *argv])
    _, err = capsys.readouterr()
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (project.path / "gates").exists()


def test_clean_url_keeps_host_port_path_only() -> None:
    assert clean_url("https://u:p@[::1]:8443/app/?q=1#f") == ("https://[::1]:8443/app", ("u", "p"))
    assert clean_url("http://example.test") == ("http://example.test", None)


def test_comments_cannot_break_out_of_their_line(project: GateProject, init: Init) -> None:
    """A value the service chose (its version) reaches the file as a quoted scalar and
    comments as one printable line: the file still loads and holds no injected key."""
    version = 'v1"\ncriteria: {}\n# '
    routes = _routes(**{"/version": (200, json.dumps({"version": version}).encode())})
    with service(routes) as url:
        code, _, err = init("--url", url, "--no-host", "--gate", "operations-handoff")
    assert code == 0, err
    doc = yaml.safe_load(_written(project, "operations-handoff"))
    checks = doc["criteria"]["production-deployment"]
    assert checks[1]["expect"]["json"] == {"version": version}


def test_a_service_that_never_answers_costs_one_bound(
    project: GateProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        monkeypatch.chdir(project.path)
        code = main(
            ["init", "--url", url, "--no-host", "--timeout", "1", "--gate", "production-readiness"]
        )
        elapsed = time.monotonic() - started
    out, _ = capsys.readouterr()
    assert code == 0 and "did not answer within 1 s" in out
    assert elapsed < 15  # one bound for the service, not one per path
    doc = yaml.safe_load(_written(project, "production-readiness"))
    # nothing found, so only the load check against "/" is written (it fails without answers)
    assert set(doc["criteria"]) == {"performance-verification"}


def test_an_answer_of_any_shape_from_prometheus_is_a_note(project: GateProject, init: Init) -> None:
    shapes = {
        "/api/v1/targets?state=active": (200, b'{"data": [1, 2]}'),
        "/api/v1/rules?type=alert": (200, b'{"data": {"groups": [1, {"rules": "x"}]}}'),
    }
    with service(_routes()) as url, service(shapes) as prometheus:
        code, _, err = init(
            "--url",
            url,
            "--no-host",
            "--prometheus-url",
            prometheus,
            "--gate",
            "production-readiness",
            "--host",
            "ssh://deploy:hunter2-ssh@127.0.0.1:1",
        )
    assert code == 0, err
    text = _written(project, "production-readiness")
    assert "no active target scrapes" in text and "Prometheus has none loaded" in text
    assert "hunter2-ssh" not in text


def test_a_remote_host_is_named_without_its_password(project: GateProject, init: Init) -> None:
    with service(_routes()) as url:
        code, out, err = init(
            "--url",
            url,
            "--host",
            f"ssh://deploy:hunter2-ssh@127.0.0.1:{_closed_port()}",
            "--gate",
            "production-readiness",
        )
    assert code == 0, err
    text = _written(project, "production-readiness")
    assert "hunter2-ssh" not in text + out + err
    assert "host ssh://deploy@127.0.0.1:" in text  # the note names the host it could not reach


def test_values_the_service_chose_are_data_never_variables(
    project: GateProject, init: Init, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version, job or rule name holding ``${...}`` or a quote is written so that it is
    compared as it is: never resolved as a gate variable (``${env:...}`` would put the
    environment into the file's checks), never breaking the PromQL it is quoted into."""
    monkeypatch.setenv("INIT_SECRET_VALUE", "s3cr3t-from-env")
    version = "${env:INIT_SECRET_VALUE}"
    job = 'app"} or vector(1) #${url}'
    routes = _routes(**{"/version": (200, json.dumps({"version": version}).encode())})
    with service(routes) as url:
        port = url.rsplit(":", 1)[1]
        targets = {
            "status": "success",
            "data": {
                "activeTargets": [
                    {"labels": {"job": job}, "scrapeUrl": f"http://127.0.0.1:{port}/metrics"}
                ]
            },
        }
        rules = {
            "data": {
                "groups": [
                    {
                        "rules": [
                            {"type": "alerting", "name": "Down${x}", "query": f'up{{job="{job}"}}'}
                        ]
                    }
                ]
            }
        }
        shapes = {
            "/api/v1/targets?state=active": (200, json.dumps(targets).encode()),
            "/api/v1/rules?type=alert": (200, json.dumps(rules).encode()),
        }
        with service(shapes) as prometheus:
            code, _, err = init(
                "--url",
                url,
                "--no-host",
                "--prometheus-url",
                prometheus,
                "--gate",
                "operations-handoff",
                "--gate",
                "production-readiness",
            )
    assert code == 0, err
    from pytest_fwgates.loader import GateLoader

    loader = GateLoader([project.path / "gates"])
    for name in ("operations-handoff", "production-readiness"):
        gate = loader.load(name)
        for check in gate.checks():
            dumped = json.dumps([check.target, check.options, check.expect], default=str)
            assert "s3cr3t-from-env" not in dumped, check.id
    gate = loader.load("operations-handoff")
    expects = [c.expect.get("json") for c in gate.checks() if c.expect.get("json")]
    assert {"version": version} in expects
    rules = [c for c in loader.load("production-readiness").checks() if c.type == "prometheus"]
    assert any(c.target == {"rules": ["Down${x}"]} for c in rules), [c.target for c in rules]
    # a job name quoted into PromQL stays one string literal
    from pytest_fwgates.init import Discovery, _availability_checks

    found = Discovery(url=url, prometheus="http://127.0.0.1:9", jobs=[job])
    (check,), _ = _availability_checks(found)
    assert check.body["prometheus"] == "100 * min(up{job=" + json.dumps(job) + "})"


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_any_value_from_a_service_reads_back_exactly(value: str) -> None:
    """A scalar init writes reads back through the project's YAML loader and the variable
    expansion as exactly the text the service gave: line separators (U+2028, U+0085), a BOM,
    ``${``, quotes, ``#``, YAML words."""
    import tempfile

    from pytest_fwgates.init import _flow, _q
    from pytest_fwgates.variables import interpolate
    from pytest_fwgates.yamlsrc import load_yaml

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.yaml"
        path.write_text(f"a: {_q(value)}\nb: {_flow({'k': [value]})}\n", encoding="utf-8")
        doc = load_yaml(path)
    assert doc["a"] == doc["b"]["k"][0]
    assert interpolate(str(doc["a"]), {}, {}) == value


def test_what_the_host_shows_never_reaches_a_shell_as_code(
    project: GateProject,
    init: Init,
    tmp_path: Path,
) -> None:
    """The program behind the port is named ``py;touch pwned;`` (anyone who can listen on
    the port chooses it): looking up its package passes the path quoted, nothing runs."""
    import os
    import shutil
    import subprocess
    import sys

    program = tmp_path / "py;touch pwned;"
    shutil.copy(os.path.realpath(sys.executable), program)
    script = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "print(s.getsockname()[1], flush=True)\n"
        "while True:\n"
        "    c, _ = s.accept(); c.recv(4096)\n"
        "    c.sendall(b'HTTP/1.1 404 NF\\r\\nContent-Length: 0\\r\\n'\n"
        "              b'Connection: close\\r\\n\\r\\n')\n"
        "    c.close()\n"
    )
    server = subprocess.Popen(
        [str(program), "-I", "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        code, _, err = init("--url", f"http://127.0.0.1:{port}", "--gate", "production-readiness")
    finally:
        server.kill()
        server.wait(10)
    assert code == 0, err
    assert not (project.path / "pwned").exists() and not (tmp_path / "pwned").exists()
    doc = yaml.safe_load(_written(project, "production-readiness"))
    processes = [
        c["process"] for c in doc["criteria"]["infrastructure-validation"] if "process" in c
    ]
    assert processes and processes[0].startswith("py;touch")
