"""Security check types against real endpoints, files and tools.

tls: the example stack's nginx (TLSv1.2+, a throwaway CA) and a TLS server of the test's own
with a certificate that expires in three days and old protocols on. audit_trail: the audit
log the stack's deploy scripts write. scan: pip-audit run for real, and SARIF reports.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from loopback import self_signed_cert

from examples.stack import Stack

if TYPE_CHECKING:
    from conftest import GateProject

pytestmark = pytest.mark.integration


def _security_gate(project: GateProject, criterion: str, checks: str) -> list[dict[str, Any]]:
    body = "\n".join("        " + line for line in checks.strip("\n").splitlines())
    project.gate(
        "security-compliance",
        f"""
    gate: security-compliance
    criteria:
      {criterion}:
{body}
    """,
    )
    project.run("--gate=security-compliance")
    return list(project.criterion("security-compliance", criterion)["checks"])


def _by_id(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in checks}


# --- tls ------------------------------------------------------------------------------------


def test_tls_on_the_example_stack(project: GateProject, example_stack: Stack) -> None:
    urls = example_stack.urls
    checks = _by_id(
        _security_gate(
            project,
            "data-protection",
            f"""
- tls: {urls["tls"]}
  id: verified
  ca: {urls["ca_cert"]}
  expect: {{min_version: TLSv1.2, days_valid: ">= 14"}}
- tls: {urls["tls"]}
  id: untrusted
- tls: {urls["tls"]}
  id: other-name
  ca: {urls["ca_cert"]}
  server_name: www.example.com
- tls: {urls["tls"]}
  id: wants-tls13-only
  ca: {urls["ca_cert"]}
  expect: {{min_version: TLSv1.3}}
""",
        )
    )
    verified = checks["verified"]
    assert verified["outcome"] == "passed", verified["message"]
    assert 29 <= verified["measured"]["days_valid"] <= 30
    assert verified["measured"]["accepted"] == ["TLSv1.2", "TLSv1.3"]
    assert checks["untrusted"]["outcome"] == "failed"
    assert checks["untrusted"]["message"].startswith("chain is not valid (")
    assert checks["other-name"]["message"] == "certificate is not valid for www.example.com"
    assert checks["wants-tls13-only"]["message"] == "accepts TLSv1.2, expected TLSv1.3 or newer"


@pytest.fixture
def weak_tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real TLS server on 127.0.0.1: a 3-day certificate, TLSv1 and TLSv1.1 still on."""
    cert, key = self_signed_cert(tmp_path, days=3)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], cert
    stop.set()
    thread.join(5)
    listener.close()


def test_tls_soon_expired_and_legacy_protocols(
    project: GateProject, weak_tls_server: tuple[int, Path]
) -> None:
    port, cert = weak_tls_server
    checks = _security_gate(
        project, "data-protection", f"- tls: https://127.0.0.1:{port}\n  ca: {cert}"
    )
    check = checks[0]
    assert check["outcome"] == "failed"
    assert 2.9 < check["measured"]["days_valid"] <= 3
    assert check["measured"]["accepted"] == ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    # the catalog's standard for data-protection holds the certificate to 14 days
    assert "accepts TLSv1, TLSv1.1, expected them refused" in check["message"]
    assert "days_valid = 3" in check["message"] and "expected >= 14" in check["message"]


# --- audit_trail ----------------------------------------------------------------------------


def test_audit_trail_of_the_stack_deploys(project: GateProject, live_v1: Stack) -> None:
    log = live_v1.layout.audit_log
    checks = _by_id(
        _security_gate(
            project,
            "audit-trail",
            f"""
- audit_trail: {log}
  id: names-v1
  version: v1
  expect: {{last_entry_age_s: "< 1h"}}
- audit_trail: {log}
  id: names-v2
  version: v2
- audit_trail: {log.parent / "no-such.log"}
  id: missing
""",
        )
    )
    assert checks["names-v1"]["outcome"] == "passed", checks["names-v1"]["message"]
    assert checks["names-v1"]["measured"]["entries"] >= 1
    assert checks["names-v2"]["message"] == "the last entry names version v1, expected v2"
    assert checks["missing"]["outcome"] == "error"
    assert "does not exist" in checks["missing"]["message"]


def test_audit_trail_stale_and_text_lines(project: GateProject, tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat()
    log.write_text(json.dumps({"time": old, "to_version": "v7", "result": "success"}) + "\n")
    text_log = tmp_path / "deploys.txt"
    text_log.write_text("2026-01-01 deployed v6\n2026-01-02 deployed v7 by ci\n")
    checks = _by_id(
        _security_gate(
            project,
            "audit-trail",
            f"""
- audit_trail: {log}
  id: stale
  version: v7
- audit_trail: {text_log}
  id: text
  version: v7
""",
        )
    )
    assert checks["stale"]["message"].startswith("last_entry_age_s = ")
    assert checks["stale"]["message"].endswith("expected < 24h")
    assert checks["text"]["outcome"] == "passed"


# --- scan -----------------------------------------------------------------------------------


def test_pip_audit_for_real_on_a_vulnerable_pin(project: GateProject) -> None:
    """requests 2.19.1 has known vulnerabilities (PYSEC-2018-28, CVE-2018-18074).

    With PyPI's vulnerability data reachable pip-audit reports them and the check fails on
    findings; where it is not (this kind of sandbox: the package is "not found" and skipped)
    the check fails on the unaudited dependency. It never passes.
    """
    project.path.joinpath("requirements.txt").write_text("requests==2.19.1\n")
    options = "--no-deps --disable-pip --format json --progress-spinner off"
    checks = _security_gate(
        project,
        "security-scanning",
        f"""
- scan: "{sys.executable} -m pip_audit -r requirements.txt {options}"
  id: pip-audit
  timeout: 120
""",
    )
    check = checks[0]
    if check["outcome"] == "error":  # nothing audited: a scan of nothing is no evidence
        assert check["message"].startswith("the scanner scanned nothing"), check
        return
    assert check["outcome"] == "failed", check
    measured = check["measured"]
    assert measured["format"] == "pip-audit"
    assert measured["findings_blocking"] > 0
    assert Path(check["evidence"]["report"]).is_file()


def test_pip_audit_json_with_findings(project: GateProject) -> None:
    """A report written by pip-audit's own JSON formatter, with two vulnerabilities."""
    from packaging.version import Version
    from pip_audit._format.json import JsonFormat
    from pip_audit._service.interface import ResolvedDependency, VulnerabilityResult

    dep = ResolvedDependency(name="requests", version=Version("2.19.1"))
    vulns = [
        VulnerabilityResult(
            id=vid,
            description="",
            fix_versions=[Version("2.20.0")],
            aliases={alias},
            published=None,
        )
        for vid, alias in (("PYSEC-2018-28", "CVE-2018-18074"), ("PYSEC-2023-74", "CVE-2023-32681"))
    ]
    report = JsonFormat(output_desc=False, output_aliases=True).format({dep: vulns}, [])
    project.path.joinpath("audit.json").write_text(report)
    checks = _by_id(
        _security_gate(
            project,
            "security-scanning",
            """
- scan: "cat audit.json"
  id: default
- scan: "cat audit.json"
  id: unknown-as-low
  unknown_severity: low
""",
        )
    )
    assert checks["default"]["outcome"] == "failed"
    assert checks["default"]["measured"]["findings"] == 2
    assert checks["default"]["measured"]["unknown"] == 2
    assert checks["default"]["message"] == "findings_blocking = 2, expected == 0"
    assert checks["unknown-as-low"]["outcome"] == "passed"


SARIF = {
    "version": "2.1.0",
    "runs": [
        {
            "tool": {
                "driver": {
                    "name": "scanner",
                    "rules": [
                        {"id": "R1", "properties": {"security-severity": "9.8"}},
                        {"id": "R2", "properties": {"security-severity": "5.0"}},
                        {"id": "R3", "defaultConfiguration": {"level": "note"}},
                    ],
                }
            },
            "results": [
                {"ruleId": "R1", "level": "error", "message": {"text": "rce"}},
                {"ruleId": "R2", "message": {"text": "xss"}},
                {"ruleId": "R3", "message": {"text": "style"}},
                {
                    "ruleId": "R1",
                    "message": {"text": "accepted"},
                    "suppressions": [{"kind": "external"}],
                },
            ],
        }
    ],
}


def test_sarif_findings_by_severity(project: GateProject) -> None:
    project.path.joinpath("source.sarif").write_text(json.dumps(SARIF))
    checks = _by_id(
        _security_gate(
            project,
            "security-scanning",
            """
- scan: "cp source.sarif scan.sarif"
  id: critical-blocks
  report: scan.sarif
- scan: "cp source.sarif scan.sarif"
  id: only-critical-allowed
  report: scan.sarif
  expect: {critical: "<= 1", findings_blocking: "<= 1"}
- scan: "cat source.sarif"
  id: medium-floor
  severity: medium
""",
        )
    )
    blocks = checks["critical-blocks"]
    assert blocks["outcome"] == "failed"
    assert (blocks["measured"]["critical"], blocks["measured"]["medium"]) == (1, 1)
    assert blocks["measured"]["low"] == 1
    assert checks["only-critical-allowed"]["outcome"] == "passed"
    assert checks["medium-floor"]["measured"]["findings_blocking"] == 2


EMPTY_REPORTS = {
    "sarif-no-run": {"version": "2.1.0", "runs": []},
    "sarif-failed-run": {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "scanner"}},
                "invocations": [{"executionSuccessful": False}],
                "results": [],
            }
        ],
    },
    "pip-audit-no-dependency": {"dependencies": [], "fixes": []},
    "pip-audit-nothing-audited": {
        "dependencies": [{"name": "internal-lib", "skip_reason": "not found on PyPI"}],
        "fixes": [],
    },
}


def test_a_scan_that_scanned_nothing_is_an_error_not_a_clean_scan(project: GateProject) -> None:
    for name, report in EMPTY_REPORTS.items():
        project.path.joinpath(f"{name}.json").write_text(json.dumps(report))
    checks = _by_id(
        _security_gate(
            project,
            "security-scanning",
            "".join(f'- scan: "cat {name}.json"\n  id: {name}\n' for name in EMPTY_REPORTS),
        )
    )
    assert {name: c["outcome"] for name, c in checks.items()} == dict.fromkeys(
        EMPTY_REPORTS, "error"
    )
    for name in ("sarif-no-run", "pip-audit-no-dependency", "pip-audit-nothing-audited"):
        assert checks[name]["message"].startswith("the scanner scanned nothing"), name
    assert "a run that did not succeed" in checks["sarif-failed-run"]["message"]
    # one run with no result is a clean scan of something
    clean = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "s"}}, "results": []}]}
    project.path.joinpath("clean.json").write_text(json.dumps(clean))
    [check] = _security_gate(project, "security-scanning", '- scan: "cat clean.json"\n')
    assert check["outcome"] == "passed" and check["measured"]["scanned"] == 1


def test_a_scanner_that_fails_is_an_error(project: GateProject) -> None:
    checks = _by_id(
        _security_gate(
            project,
            "security-scanning",
            """
- scan: "no-such-scanner --json"
  id: missing
- scan: "echo 'not json'"
  id: garbage
- scan: "exit 3"
  id: crashed
- scan: "true"
  id: no-report-file
  report: nowhere.json
""",
        )
    )
    assert {c["outcome"] for c in checks.values()} == {"error"}
    assert checks["missing"]["message"].startswith("scanner failed with exit status 127")
    assert checks["garbage"]["message"].startswith("no readable scan report (exit status 0)")
    assert checks["crashed"]["message"] == "scanner failed with exit status 3"
    assert checks["no-report-file"]["message"].startswith("scanner wrote no report")
