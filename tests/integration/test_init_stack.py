"""``fwgates init`` against the example stack, then the gate it wrote, run for real."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from examples.stack import Stack
from pytest_fwgates.cli import main

if TYPE_CHECKING:
    from conftest import GateProject


def test_init_then_production_readiness_runs_on_the_stack(
    project: GateProject,
    live_v1: Stack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new user's first minutes: init against the stack's URLs, then the gate, unedited.
    What init found passes against the real stack (host, TLS, Locust, Prometheus); the
    rollback it cannot know is a TODO, NOT_EVALUATED, so the gate is FAILED until it is filled."""
    urls = live_v1.urls
    monkeypatch.chdir(project.path)
    code = main(
        [
            "init",
            "--url",
            urls["app"],
            "--prometheus-url",
            urls["prometheus"],
            "--ca",
            urls["ca_cert"],
            "--gate",
            "production-readiness",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0, err
    text = (project.path / "gates" / "production-readiness.yaml").read_text()
    doc = yaml.safe_load(text)
    criteria = doc["criteria"]
    assert doc["vars"]["tls_url"] == urls["tls"]  # found on nginx's other port
    kinds = {c: [next(iter(check)) for check in checks] for c, checks in criteria.items()}
    assert {"package", "process", "socket"} <= set(kinds["infrastructure-validation"])
    assert kinds["security-compliance"][0] == "tls"
    assert kinds["performance-verification"] == ["load"]
    assert {"targets": ["app"]} in [c["prometheus"] for c in criteria["monitoring-operational"][1:]]
    assert "rollback-capability" not in criteria and "# rollback-capability:" in text

    result = project.run_subprocess("-p", "no:randomly", "--gate=production-readiness", timeout=180)
    assert result.ret == 1, result.stdout.str()
    assert project.criteria("production-readiness") == {
        "infrastructure-validation": "PASS",
        "security-compliance": "PASS",
        "performance-verification": "PASS",
        "monitoring-operational": "PASS",
        "rollback-capability": "NOT_EVALUATED",
    }
    assert project.verdicts() == {"production-readiness": "FAILED"}
