"""``deploy`` with ``steps:``: settings that cannot work are errors before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Outcome, Source

# nothing listens here: every case must end before the prober would need an answer
URL = "http://127.0.0.1:9/"
STEPS = [{"weight": 10, "pause": "1s"}, {"weight": 100}]
ANALYSIS = {"failure_rate": {"max_increase": "0.5%"}}


def _run(tmp_path: Path, **settings: Any) -> CheckResult:
    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    options = {"deploy": "true", "health": URL, **settings}
    spec = loader.spec_from_mapping(None, None, options, Source(tmp_path / "g.yaml", 1))
    context = CheckContext(rootdir=tmp_path, redactor=loader.redactor, evidence_root=tmp_path)
    return run_check(registry.get("deploy")(spec, context), "steps")


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"analysis": ANALYSIS}, "analysis: only with steps"),
        ({"on_abort": "true"}, "on_abort: only with steps"),
        ({"steps": STEPS, "repeat": 2}, "steps: not supported together with repeat"),
        (
            {
                "steps": STEPS,
                "analysis": {"load": {"failure_ratio": "< 1%"}},
                "version": {"json": "version", "expect": "v2"},
            },
            "analysis.load: needs under_load",
        ),
        (
            {
                "steps": STEPS,
                "analysis": {**ANALYSIS, "load_version_header": "X-App-Version"},
                "version": {"json": "version", "expect": "v2"},
            },
            "analysis.load_version_header: needs under_load",
        ),
        (
            {
                "steps": [{"weight": 10}, {"weight": 100}],
                "analysis": ANALYSIS,
                "version": {"json": "v"},
            },
            "no step pauses",
        ),
        (
            # a share left on the old version: "stable on the new one" only by a chance run
            {"steps": [{"weight": 10, "pause": "1s"}, {"weight": 90}]},
            "the last step sends 90 % of the requests to the new version",
        ),
        (
            {
                "steps": STEPS,
                "analysis": {"load": {"p95_ms": "< 500"}},
                "version": {"json": "version", "expect": "v2"},
                "under_load": {"paths": ["/"], "users": 1},
            },
            "p95_ms alone can abort a step but never prove one",
        ),
        (
            {"steps": [{"weight": 0}]},
            "the last step sends 0 % of the requests",
        ),
        ({"steps": STEPS, "analysis": ANALYSIS}, "needs version"),
        (
            # at 100 % no stable answer, at 0 % no canary answer: a judged pause could never pass
            {
                "steps": [{"weight": 10, "pause": "1s"}, {"weight": 100, "pause": "1s"}],
                "analysis": ANALYSIS,
                "version": {"json": "version", "expect": "v2"},
            },
            "step 2: weight 100 with a pause",
        ),
        (
            {
                "steps": [{"weight": 0, "pause": "1s"}, {"weight": 100}],
                "analysis": ANALYSIS,
                "version": {"json": "version", "expect": "v2"},
            },
            "step 1: weight 0 with a pause",
        ),
        (
            # the pauses alone outlast the check's bound: it could only end "no time left"
            {
                "steps": [
                    {"weight": 10, "pause": "40s"},
                    {"weight": 50, "pause": "30s"},
                    {"weight": 100},
                ],
                "timeout": 60,
            },
            "the steps' pauses add up to 70 s",
        ),
        (
            # a pause is the least a step is watched
            {
                "steps": [{"weight": 10, "pause": "5s"}, {"weight": 100}],
                "analysis": {**ANALYSIS, "max_pause": "2s"},
                "version": {"json": "version", "expect": "v2"},
            },
            "analysis.max_pause: 2 s is shorter than step 1's pause (5 s)",
        ),
        (
            {
                "steps": [
                    {"weight": 10, "pause": "5s"},
                    {"weight": 50, "pause": "5s"},
                    {"weight": 100},
                ],
                "analysis": {**ANALYSIS, "max_pause": "40s"},
                "version": {"json": "version", "expect": "v2"},
                "timeout": 60,
            },
            "analysis.max_pause: 2 step(s) watched up to 40 s each do not fit",
        ),
        (
            {
                "steps": STEPS,
                "analysis": {"p95_ms": {"max_increase": "lots"}},
                "version": {"json": "version", "expect": "v2"},
            },
            "is not an increase",
        ),
    ],
)
def test_settings_that_cannot_work_are_errors(
    tmp_path: Path, settings: dict[str, Any], why: str
) -> None:
    result = _run(tmp_path, **settings)
    assert result.outcome is Outcome.ERROR
    assert why in result.message


@pytest.mark.parametrize(
    "steps",
    [[], [{"pause": "1s"}], [{"weight": 120}], [{"weight": 10, "pause": "soon"}]],
)
def test_bad_steps_fail_at_load(tmp_path: Path, steps: list[Any]) -> None:
    loader = GateLoader([], registry=CheckRegistry())
    with pytest.raises(Exception, match="steps"):
        loader.spec_from_mapping(
            None, None, {"deploy": "true", "health": URL, "steps": steps}, Source(tmp_path, 1)
        )


def test_an_aborted_deploy_is_never_a_successful_one_in_the_history(tmp_path: Path) -> None:
    # a known-bad canary aborted on purpose passes its check (aborted == 1), but nothing was
    # deployed: the deploy history must not count it towards the success ratio of deploys
    from pytest_fwgates.checks.base import Measurement

    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    options = {
        "deploy": "true",
        "health": URL,
        "steps": STEPS,
        "analysis": ANALYSIS,
        "version": {"json": "version", "expect": "v2"},
        "expect": {"aborted": "== 1"},
    }
    spec = loader.spec_from_mapping(None, None, options, Source(tmp_path / "g.yaml", 1))
    context = CheckContext(rootdir=tmp_path, redactor=loader.redactor, evidence_root=tmp_path)
    check = registry.get("deploy")(spec, context)
    aborted = Measurement(values={"aborted": 1.0, "duration_s": 3.0})
    assert [e["outcome"] for e in check.outcomes(aborted)] == ["failed"]
    promoted = Measurement(values={"aborted": 0.0, "duration_s": 3.0})
    assert [e["outcome"] for e in check.outcomes(promoted)] == ["ok"]


def test_a_bad_max_pause_fails_at_load(tmp_path: Path) -> None:
    loader = GateLoader([], registry=CheckRegistry())
    with pytest.raises(Exception, match="max_pause"):
        loader.spec_from_mapping(
            None,
            None,
            {
                "deploy": "true",
                "health": URL,
                "steps": STEPS,
                "analysis": {**ANALYSIS, "max_pause": "a while"},
            },
            Source(tmp_path, 1),
        )


@pytest.mark.parametrize(
    ("requests", "failures", "threshold", "proof", "outcome"),
    [
        (3, 0, "< 1%", True, "inconclusive"),  # no failure in 3 shows nothing
        (200, 0, "< 1%", True, "inconclusive"),  # <= 1.5 % at 95 %: not shown < 1 %
        (300, 0, "< 1%", True, "pass"),  # <= 0.99 % at 95 %
        (1000, 0, "< 1%", True, "pass"),
        (1000, 30, "< 1%", True, "fail"),  # beyond the threshold: aborts at any look
        (3, 0, "< 1%", False, "pass"),  # a look for a regression only passes nothing itself
        (0, 0, "< 1%", True, "inconclusive"),
    ],
)
def test_a_load_failure_ratio_passes_a_proof_look_only_when_its_bound_shows_it(
    requests: int, failures: int, threshold: str, proof: bool, outcome: str
) -> None:
    from pytest_fwgates.canary_judge import Verdict
    from pytest_fwgates.checks.progressive import Analysis, Step, StepRecord, _Steps
    from pytest_fwgates.thresholds import parse

    steps = _Steps.__new__(_Steps)
    steps.analysis = Analysis(None, None, 20, 1.0, 0.95, load={"failure_ratio": parse(threshold)})

    class Load:
        latest = {"requests": requests + 7, "failures": failures + 1, "p95_ms": 12.0}

    steps.load = Load()  # type: ignore[assignment]
    record = StepRecord(Step(1, 10.0, None, 1.0), 0.0, load_at={"requests": 7, "failures": 1})
    verdict = Verdict("pass")
    steps._judge_load(record, verdict, 0.05 if proof else None)
    assert verdict.outcome == outcome, verdict.reasons
