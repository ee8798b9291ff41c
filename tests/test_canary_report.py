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


def test_canary_picture_shows_each_version_in_its_colour_the_weights_and_the_marks() -> None:
    from pytest_fwgates.canary_picture import canary_svg
    from pytest_fwgates.probe import Probe
    from pytest_fwgates.timeline import version_colour

    probes = []
    for i in range(600):
        t = i * 0.01
        canary = i % 10 == 0 and 1.0 <= t < 4.0
        failed = canary and i % 20 == 0
        probes.append(
            Probe(t, t + 0.005, 500 if failed else 200, not failed, "v2" if canary else "v1")
        )
    marks = [("step 1: 10%", 1.0), ("abort: step 1", 4.0), ("stable on v1", 4.5)]
    svg = canary_svg(probes, marks, new="v2", steps=[(1.0, 10.0)], start=0.0, end=6.0, title="<d>")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert f'fill="{version_colour("v1")}"' in svg and f'fill="{version_colour("v2")}"' in svg
    assert 'fill="#c62828"' in svg  # the canary's failed answers
    for label, _ in marks:
        assert label in svg
    assert 'stroke-dasharray="5 3"' in svg  # the weight the step asked for
    assert "&lt;d&gt;" in svg and "<d>" not in svg
    assert "v2: 30 answers, 15 failed" in svg  # described in words
    assert canary_svg([], [], new="v2", steps=[], start=0.0, end=0.0).startswith("<svg")
