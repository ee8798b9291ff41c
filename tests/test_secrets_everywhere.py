"""Secrets planted in every form reach no output: terminal, gate JUnit, summary.json,
pytest's --junitxml, the handoff package, pytestdebug.log and the evidence files.

The secrets: a token from the environment (in a Prometheus series label: a key, and a bearer
header that a service echoes back), a ``--gate-var db_password``, and the password of a URL
(which a service gives back percent-decoded, as ``base64(user:password)`` and as ``Basic``).
"""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

TOKEN = "tokSECRET7f3a9c"
DB_PASSWORD = "dbSECRET41b2e8"
URL_USER, URL_PASSWORD = "deployer", "p@ss SECRET/8e1"
URL_PASSWORD_QUOTED = urllib.parse.quote(URL_PASSWORD, safe="")
BASIC = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()


def forms() -> dict[str, str]:
    """Every form of every planted secret that must never be written."""
    found = {}
    for name, secret in {
        "token": TOKEN,
        "db_password": DB_PASSWORD,
        "url password": URL_PASSWORD,
        "url password quoted": URL_PASSWORD_QUOTED,
        "basic": BASIC,
    }.items():
        found[name] = secret
        found[f"{name} base64"] = base64.b64encode(secret.encode()).decode().rstrip("=")
    return found


class Echo(http.server.BaseHTTPRequestHandler):
    """Gives back what a careless service gives back: the credentials it was sent."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        body = json.dumps(
            {
                "you sent": auth,
                "password": URL_PASSWORD,  # decoded, as a service shows it
                "basic": f"Basic {BASIC}",
                "b64": BASIC,
                f"key-{TOKEN}": "a token as a key",
            }
        ).encode()
        self.send_response(500)
        self.send_header(f"X-Echo-{TOKEN}", URL_PASSWORD_QUOTED)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus on loopback (no scrape targets: the queries make their series)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "prometheus.yml"
    conf.write_text("global: {scrape_interval: 1h}\n")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={conf}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("prometheus did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_planted_secrets_reach_no_output(
    project: GateProject,
    monkeypatch: pytest.MonkeyPatch,
    echo: str,
    prometheus: str,
) -> None:
    monkeypatch.setenv("API_TOKEN", TOKEN)
    project.production_ready(
        f"""
        - http: http://{URL_USER}:{URL_PASSWORD_QUOTED}@{echo}/echo
          headers: {{Authorization: "Bearer ${{env:API_TOKEN}}"}}
        - prometheus: 'label_replace(vector(1), "tok", "${{env:API_TOKEN}}", "", "")'
          server: {prometheus}
          expect: {{value: "< 0"}}
        - command: >-
            printf "%s|%s|%s" "${{db_password}}" "${{env:API_TOKEN}}" "{URL_PASSWORD}"; exit 1
        """
    )
    project.pytester.makepyfile(
        test_fixture_token=f"""
        import pytest

        @pytest.fixture
        def auth():
            return {{"Authorization": "Bearer {TOKEN}", "password": "{DB_PASSWORD}"}}

        @pytest.mark.gate("production-readiness", criterion="rollback-capability")
        def test_uses_it(auth):
            assert auth
        """
    )
    result = project.run_subprocess(
        "--gate=production-readiness",
        f"--gate-var=db_password={DB_PASSWORD}",
        "--junitxml=pytest-junit.xml",
        "--handoff-package=handoff",
        "--handoff-archive",
        "--debug=pytestdebug.log",
        "-rA",
    )
    outputs = {"terminal": result.stdout.str() + result.stderr.str()}
    assert "Traceback" not in outputs["terminal"]
    for path in project.path.rglob("*"):
        if path.is_file() and path.suffix not in (".py", ".yaml"):
            outputs[str(path.relative_to(project.path))] = path.read_bytes().decode(
                "utf-8", "replace"
            )
            if path.name.endswith(".tar.gz"):
                with tarfile.open(path) as archive:
                    for member in archive.getmembers():
                        extracted = archive.extractfile(member)
                        if extracted is not None:
                            text = extracted.read().decode("utf-8", "replace")
                            outputs[f"{path.name}:{member.name}"] = text
    names = set(outputs)
    # every output was written
    assert {"reports/gates.xml", "reports/summary.json", "pytest-junit.xml"} <= names
    assert "pytestdebug.log" in names
    assert any(n.startswith("reports/evidence/") for n in names), names
    assert any(n.startswith("handoff/") for n in names), names
    # the checks saw the secrets (they are masked, not missing)
    assert "***" in outputs["reports/summary.json"]
    leaks = [
        (form, where)
        for where, text in outputs.items()
        for form, secret in forms().items()
        if secret in text
    ]
    assert leaks == []


def test_a_python_test_of_the_gate_shows_no_secret(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A marked Python test that fails with the token in its locals and message: with
    --showlocals, -rA and --tb=long, neither the terminal nor pytest's --junitxml shows it
    (nor its upper-case form)."""
    project.gate(
        "security-compliance",
        """
        gate: security-compliance
        criteria:
          access-control:
            - command: 'test -n "${env:API_TOKEN}"'
        """,
    )
    project.pytester.makepyfile(
        test_token="""
        import os, sys, pytest

        @pytest.mark.gate("security-compliance", "access-control")
        def test_token():
            token = os.environ["API_TOKEN"]
            headers = {"Authorization": "Bearer " + token}
            print("sent", token)
            assert token.upper() == "nope", headers

        @pytest.mark.gate("security-compliance", "access-control")
        @pytest.mark.skip(reason="not here")
        def test_skipped():
            pass
        """
    )
    secret = "s3cr3tTOKENabc"
    monkeypatch.setenv("API_TOKEN", secret)
    result = project.run(
        "--gate=security-compliance", "-p", "no:randomly", "--showlocals", "-rA",
        "--tb=long", "--junitxml=junit.xml",
    )  # fmt: skip
    outputs = result.stdout.str() + (project.path / "junit.xml").read_text()
    assert "test_token" in outputs and "SKIPPED" in result.stdout.str()
    # the short summary still names the failure's own line, masked
    result.stdout.fnmatch_lines(["FAILED test_token.py::test_token - AssertionError: *"])
    for form in (secret, secret.upper(), base64.b64encode(secret.encode()).decode()):
        assert form not in outputs
