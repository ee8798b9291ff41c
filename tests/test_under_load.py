"""How ``under_load:`` splits Locust's per-0.1 s figures at a deploy's start and end."""

from __future__ import annotations

import pytest

from pytest_fwgates.checks.base import CheckError
from pytest_fwgates.checks.under_load import origin, phase_figures


def _slot(n: int, fail: int, ms: int) -> dict[str, object]:
    return {"n": n, "fail": fail, "hist": {ms: n}}


def test_phases_split_at_the_deploy_start_and_end() -> None:
    # slot k covers [k/10, (k+1)/10) s of wall-clock time; the deploy runs from 100.0 to 100.5
    slots = {
        999: _slot(10, 0, 5),  # 99.9-100.0: before
        1000: _slot(4, 1, 50),  # 100.0-100.1: during
        1004: _slot(6, 6, 400),  # 100.4-100.5: during
        1005: _slot(8, 0, 7),  # 100.5-100.6: after
    }
    values = phase_figures(slots, 100.0, 100.5)
    assert values["load_requests_before"] == 10 and values["load_failures_before"] == 0
    assert values["load_requests_during"] == 10 and values["load_failures_during"] == 7
    assert values["load_requests_after"] == 8 and values["load_failures_after"] == 0
    assert values["p95_ms_before"] == 5
    assert values["p95_ms_during"] == 400
    assert values["p95_ms_after"] == 7


def test_a_phase_without_answers_has_no_p95_and_fails_a_threshold_on_it() -> None:
    values = phase_figures({1: {"n": 3, "fail": 3, "hist": {}}}, 0.0, 1.0)
    assert values["load_failures_during"] == 3
    assert "p95_ms_during" not in values  # a threshold on it: "was not measured" (fails)
    assert values["load_requests_before"] == values["load_requests_after"] == 0


def test_the_default_target_is_the_health_urls_origin() -> None:
    assert origin("https://127.0.0.1:8443/health?x=1") == "https://127.0.0.1:8443"
    with pytest.raises(CheckError, match="no http"):
        origin("ftp://host/x")
