"""``deploy`` with ``under_load:``: real Locust through a real deploy of the example stack.

A few users for a few seconds: blue/green keeps every request answered, the naive deploy's
outage reaches Locust's users too. The check holds the project lock while Locust runs in a
thread of its own: a deadlock would hang here (bounded by the check's timeout).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from examples.stack import Stack
from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Outcome, Source

from .traffic import ROOT

pytestmark = pytest.mark.integration

LOAD = {
    "paths": ["/health", "/version"],
    "users": 3,
    "wait": [0.02, 0.05],
    "warmup": "1s",
    "cooldown": 1,
}


def _deploy(tmp_path: Path, target: str, **settings: Any) -> CheckResult:
    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    spec = loader.spec_from_mapping(
        None, None, {"deploy": target, **settings}, Source(tmp_path / "gate.yaml", 1)
    )
    context = CheckContext(rootdir=ROOT, redactor=loader.redactor, evidence_root=tmp_path)
    return run_check(registry.get("deploy")(spec, context), "deploy-under-load")


def _phases(result: CheckResult) -> dict[str, Any]:
    figures = {k: v for k, v in result.measured.items() if k.startswith(("load_", "p95_ms_"))}
    print(f"\n[figures] {result.outcome.name}: {figures}")
    return figures


def test_bluegreen_deploy_under_load_loses_no_request(stack_env: Stack, tmp_path: Path) -> None:
    url = stack_env.urls["app"]
    result = _deploy(
        tmp_path,
        "examples/deploy/deploy-bluegreen v2",
        health=f"{url}/health",
        version={"json": "version", "expect": "v2"},
        under_load=LOAD,
        expect={"load_failures_during": "== 0", "downtime_ms": "== 0"},
        timeout=120,
    )
    figures = _phases(result)
    assert result.outcome is Outcome.PASSED, result.message
    assert figures["load_failures_during"] == 0
    for phase in ("before", "during", "after"):
        assert figures[f"load_requests_{phase}"] > 0, phase
        assert figures[f"p95_ms_{phase}"] >= 0
    assert figures["load_failures_before"] == figures["load_failures_after"] == 0
    # Locust's own files are kept, with the per-0.1 s split
    evidence = result.evidence
    assert Path(evidence["load_stats_history_csv"]).stat().st_size > 0
    assert Path(evidence["load_report_html"]).is_file()
    with Path(evidence["load_timeline_csv"]).open() as handle:
        phases = {row["phase"] for row in csv.DictReader(handle)}
    assert phases == {"before", "during", "after"}
    assert "load start" in Path(evidence["timeline_csv"]).read_text()


def test_naive_deploy_under_load_fails_its_users(stack_env: Stack, tmp_path: Path) -> None:
    url = stack_env.urls["app"]
    result = _deploy(
        tmp_path,
        "examples/deploy/deploy-naive v2",
        health=f"{url}/health",
        version={"json": "version", "expect": "v2"},
        under_load={**LOAD, "url": url},
        expect={"load_failures_during": "== 0"},
        timeout=120,
    )
    figures = _phases(result)
    assert result.outcome is Outcome.FAILED
    assert "load_failures_during = " in result.message and "expected == 0" in result.message
    assert figures["load_failures_during"] > 0
    assert figures["load_failures_before"] == 0
    assert figures["load_requests_during"] > figures["load_failures_during"]
    assert result.measured["load_errors"]
