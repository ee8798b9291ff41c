"""Deploy, rollback and drill checks never overlap, also across pytest-xdist workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

STEP = "echo start $(date +%s.%N) >> steps.log; sleep 0.4; echo end $(date +%s.%N) >> steps.log"


@pytest.fixture
def health_url(serve_body: Any) -> Iterator[str]:
    with serve_body(b"ok", "/health") as url:
        yield url


def test_state_changing_checks_take_turns_under_xdist(
    project: GateProject, health_url: str
) -> None:
    kinds = ["deploy", "rollback", "deploy", "rollback", "deploy", "deploy"]
    lines = ["gate: zero-downtime-deployment", "criteria:", "  deployment-time:"]
    for n, kind in enumerate(kinds):
        lines += [
            f"    - {kind}: {STEP!r}",
            f"      id: step-{n}",
            f"      health: {health_url}",
            "      stable: 0.1s",
        ]
    project.gate("zero-downtime-deployment", "\n".join(lines) + "\n")
    result = project.run_subprocess("-n", "2", "-v", "--gate=zero-downtime-deployment", timeout=180)
    workers = {line[1:4] for line in result.outlines if line.startswith("[gw")}
    log = (project.path / "steps.log").read_text().split()
    events = sorted((float(log[i + 1]), log[i]) for i in range(0, len(log), 2))
    assert len(events) == 2 * len(kinds), result.stdout.str()
    # start, end, start, end, ...: no two steps ever ran at the same time
    assert [kind for _, kind in events] == ["start", "end"] * len(kinds)
    assert workers == {"gw0", "gw1"}, "both workers ran steps"
