"""Phase 7 to phase 8 on the real example stack: a signed package from the example gate,
``fwgates verify`` on it, then deployment-handoff-validation against the package and the
still-running production system.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from examples.stack import Stack
from pytest_fwgates.integrity import keygen

from .traffic import ROOT

pytestmark = pytest.mark.integration

PHASE_8 = """
gate: deployment-handoff-validation
vars:
  url: ${env:FWGATES_APP_URL}
criteria:
  production-answers:
    - http: ${url}/version
      id: production answers on v1
      expect: {status: 200, body_contains: '"version":"v1"'}
"""


def _pytest(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_phase_7_package_verifies_and_opens_phase_8(live_v1: Stack, tmp_path: Path) -> None:
    env = live_v1.env
    key = tmp_path / "keys" / "handoff.pem"
    public = tmp_path / "keys" / "handoff.pub"
    keygen(key, public)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"p95_ms": 42}))
    layout = live_v1.layout
    deliverables = {
        "production-system": ROOT / "examples" / "webapp",
        "infrastructure-documentation": ROOT / "examples" / "README.md",
        "monitoring-configuration": layout.prom_dir / "prometheus.yml",
        "security-configuration": layout.nginx_dir / "nginx.conf",
        "performance-baseline": baseline,
        "operations-procedures": ROOT / "examples" / "deploy",
        "incident-response": layout.prom_dir / "rules.yml",
    }
    package = tmp_path / "handoff"
    phase_7 = _pytest(
        [
            "--gate=production-readiness",
            "--gate-dir=examples/gates",
            f"--gate-junit={tmp_path / 'reports' / 'gates.xml'}",
            f"--handoff-package={package}",
            "--handoff-archive",
            f"--handoff-sign-key={key}",
            *(f"--handoff-deliverable={k}={v}" for k, v in deliverables.items()),
            "examples/gates",
        ],
        ROOT,
        env,
    )
    assert phase_7.returncode == 0, phase_7.stdout[-4000:] + phase_7.stderr[-2000:]

    verify = subprocess.run(
        [sys.executable, "-m", "pytest_fwgates.cli", "verify", str(package),
         "--public-key", str(public), "--require-verdict", "PASSED", "--require-deliverables"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout
    assert "signature valid, deliverables missing: none" in verify.stdout
    # the archive too, read by the strict reader: the writer's own form with all the evidence
    archive = subprocess.run(
        [sys.executable, "-m", "pytest_fwgates.cli", "verify", f"{package}.tar.gz",
         "--public-key", str(public), "--require-verdict", "PASSED"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert archive.returncode == 0, archive.stdout

    summary = json.loads((package / "summary.json").read_text())
    assert summary["verdict"] == "PASSED"
    html = (package / "report.html").read_text()
    assert 'id="verdict-word">PASSED<' in html and "roll-back-to-v1" in html

    project = tmp_path / "operations"
    (project / "gates").mkdir(parents=True)
    (project / "gates" / "deployment-handoff-validation.yaml").write_text(PHASE_8)
    phase_8 = _pytest(
        [
            "--gate=deployment-handoff-validation",
            f"--gate-var=package={package}",
            f"--gate-var=public_key={public}",
        ],
        project,
        env,
    )
    assert phase_8.returncode == 0, phase_8.stdout[-4000:]
    decided = json.loads((project / "reports" / "summary.json").read_text())
    (gate,) = decided["gates"]
    assert gate["verdict"] == "PASSED"
    assert {c["id"]: c["verdict"] for c in gate["criteria"]} == {
        "package-integrity": "PASS",
        "package-verdict": "PASS",
        "deliverables-present": "PASS",
        "production-answers": "PASS",
    }
