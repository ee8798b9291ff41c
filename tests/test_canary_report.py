"""The HTML report's canary-against-stable table per step."""

from __future__ import annotations

from pytest_fwgates.model import CheckResult, Outcome
from pytest_fwgates.report.canary_html import canary_sections


def _result(steps: object) -> CheckResult:
    return CheckResult(
        nodeid="n",
        gate="zero-downtime-deployment",
        criterion="automated-rollback",
        check_id="deploy[canary]",
        outcome=Outcome.PASSED,
        measured={"steps": steps, "aborted": 1.0, "detect_s": 0.97, "rollback_s": 0.25},
    )


def test_a_row_per_step_with_both_versions_and_the_verdict() -> None:
    step = {
        "step": 1,
        "weight": 10.0,
        "window_s": 3.0,
        "looks": 3,
        "canary": {
            "version": "v2",
            "answers": 31,
            "failed": 14,
            "failure_rate": 0.4516,
            "p95_ms": 5,
        },
        "stable": {"version": "v1", "answers": 267, "failed": 0, "failure_rate": 0.0, "p95_ms": 7},
        "failure_rate_p": 7.2e-16,
        "alpha": 0.00833,
        "verdict": "fail",
        "reasons": ["failure rate <b>45%</b>"],
    }
    (html,) = canary_sections([_result([step, {"step": 2, "weight": 100.0, "looks": 0}])])
    assert html.count("<tr>") == 3  # the head and a row per step
    assert "<td>v2</td><td>14/31</td><td>45.16%</td>" in html
    assert "<td>v1</td><td>0/267</td><td>0.00%</td>" in html
    assert '<td class="w-fail">fail</td>' in html and "not judged" in html
    assert "&lt;b&gt;45%&lt;/b&gt;" in html  # reasons are text, never markup
    assert "aborted 1, detect_s 0.97, rollback_s 0.25" in html


def test_other_checks_and_odd_facts_give_no_table_or_an_empty_one() -> None:
    plain = CheckResult("n", "g", "c", "http[x]", Outcome.PASSED, measured={"status": 200})
    assert canary_sections([plain]) == []
    (html,) = canary_sections([_result(["not a step", {"canary": "odd"}])])
    assert html.count("<tr>") == 2  # the head and the one mapping
