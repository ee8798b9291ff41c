"""Ways a run could reach a passing criterion without its evidence, tried as real pytest runs
with ``--gate``: each must end FAILED, NOT_EVALUATED or a clear error."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

MONITORING = """
    gate: production-readiness
    criteria:
      monitoring-operational:
        - command: "true"
"""


@pytest.mark.parametrize(
    "claim",
    [
        'gate_record.measured("targets_up", 5, "prometheus")',
        'getattr(gate_record, "measured", gate_record)("targets_up", 5)',
    ],
    ids=["measured", "getattr"],
)
def test_a_python_test_cannot_claim_an_owning_check_type(project: GateProject, claim: str) -> None:
    project.gate("production-readiness", MONITORING)
    project.pytester.makepyfile(
        test_claim=textwrap.dedent(
            f"""
            import pytest

            @pytest.mark.gate("production-readiness", criterion="monitoring-operational")
            def test_claim(gate_record):
                try:
                    {claim}
                    gate_record.measured("rules_loaded", 3, "prometheus")
                except (AttributeError, TypeError):
                    pass
            """
        )
    )
    project.run("--gate", "production-readiness", "-p", "no:randomly")
    monitoring = project.criterion("production-readiness", "monitoring-operational")
    assert monitoring["verdict"] != "PASS", monitoring


@pytest.mark.parametrize(
    ("key", "text", "why"),
    [
        # a bound beyond every number: holds for every value
        ("duration_s", "< 1e308h", "not a finite"),
        ("page_load_ms", "<= 1e308h", "not a finite"),
        ("page_load_ms", "> 1e308h", "not a finite"),
        # counts are whole numbers
        ("failures", "!= 0.5", "can never fail"),
        ("targets_up", "== 2.5", "can never pass"),
        # relative bounds below the baseline's zero on a figure >= 0
        ("p95_ms", ">= -100%", "can never fail"),
        ("requests", "> -150%", "can never fail"),
        ("p95_ms", "< -100%", "can never pass"),
        ("availability_pct", "<= -120%", "can never pass"),
    ],
)
def test_a_bound_that_cannot_fail_or_pass_for_its_figure_is_refused(
    key: str, text: str, why: str
) -> None:
    from pytest_fwgates.thresholds import ThresholdError, parse

    with pytest.raises(ThresholdError, match=why):
        parse(text).check_key(key)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("failures", "!= 0"),
        ("failures", "< 0.5"),
        ("duration_s", "< 1e300h"),
        ("p95_ms", "<= +10%"),
        ("p95_ms", ">= -90%"),
        ("p95_ms", "> -100%"),  # fails at 0
        ("p95_ms", "<= -100%"),  # passes at 0
        ("reduction_pct", ">= -200%"),  # a reduction can be negative
    ],
)
def test_bounds_that_can_pass_and_fail_are_kept(key: str, text: str) -> None:
    from pytest_fwgates.thresholds import parse

    parse(text).check_key(key)


def test_a_bound_beyond_every_number_is_a_load_error_with_its_line(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          smoke:
            title: Smoke tests pass
            thresholds:
              duration_s: "< 1e308h"
            checks:
              - command: "true"
        """,
    )
    result = project.run("--gate", "release", "-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*release.yaml:6: duration_s*not a finite*"])


RESET_EXIT = {
    "first": """
        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(session, exitstatus):
            session.exitstatus = 0
    """,
    "last": """
        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(session, exitstatus):
            session.exitstatus = 0
    """,
    "wrapper": """
        @pytest.hookimpl(wrapper=True)
        def pytest_sessionfinish(session, exitstatus):
            yield
            session.exitstatus = 0
    """,
    "unconfigure": """
        def pytest_configure(config):
            config.stash[KEY] = None

        def pytest_sessionstart(session):
            session.config.stash[KEY] = session

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            config.stash[KEY].exitstatus = 0
    """,
    # the familiar "no tests is fine" helper
    "no-tests-ok": """
        def pytest_sessionfinish(session, exitstatus):
            if exitstatus in (1, 5):
                session.exitstatus = 0
    """,
}


@pytest.mark.parametrize("way", sorted(RESET_EXIT))
def test_a_conftest_cannot_turn_a_failed_gate_into_exit_status_0(
    project: GateProject, way: str
) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          smoke:
            title: Smoke tests pass
            checks:
              - command: "false"
        """,
    )
    project.pytester.makeconftest(
        "import pytest\n\nKEY = pytest.StashKey()\n" + textwrap.dedent(RESET_EXIT[way])
    )
    result = project.run_subprocess("--gate", "release", "-p", "no:randomly")
    assert project.summary()["verdict"] == "FAILED"
    assert result.ret == 1, result.stdout.str()


def _sarif(*suppressions: dict[str, str]) -> str:
    import json

    result: dict[str, object] = {
        "ruleId": "CVE-1",
        "level": "error",
        "message": {"text": "x"},
        "suppressions": list(suppressions),
    }
    run = {"tool": {"driver": {"name": "scanner"}}, "results": [result]}
    return json.dumps({"version": "2.1.0", "runs": [run]})


@pytest.mark.parametrize(
    ("suppressions", "open_findings"),
    [
        ((), 1),
        (({"kind": "external", "status": "accepted"},), 0),
        (({"kind": "inSource"},), 0),  # no status: accepted
        (({"kind": "external", "status": "underReview"},), 1),
        (({"kind": "external", "status": "rejected"},), 1),
        (({"kind": "inSource"}, {"kind": "external", "status": "rejected"}), 1),
    ],
    ids=["none", "accepted", "no-status", "under-review", "rejected", "one-rejected"],
)
def test_a_sarif_finding_is_closed_only_by_an_accepted_suppression(
    suppressions: tuple[dict[str, str], ...], open_findings: int
) -> None:
    """SARIF 2.1.0: a suppression under review or rejected does not suppress its result."""
    from pytest_fwgates.checks.scan import findings_from_report

    _kind, findings, _unaudited, _scanned = findings_from_report(_sarif(*suppressions))
    assert len(findings) == open_findings


@pytest.mark.parametrize(
    ("key", "text"),
    [
        # the mirror of failure_ratio < 1: fails only when nothing at all succeeded
        ("pass_ratio", "> 0"),
        ("availability_pct", "> 0%"),
        ("success_ratio", "!= 0"),
        ("failure_ratio", "!= 1"),
        ("availability_pct", "!= 100%"),
    ],
)
def test_a_bound_that_fails_only_at_an_end_of_its_range_is_refused(key: str, text: str) -> None:
    from pytest_fwgates.thresholds import ThresholdError, parse

    with pytest.raises(ThresholdError, match="can fail only at"):
        parse(text).check_key(key)


@pytest.mark.parametrize(
    ("key", "text"),
    [("targets_up", "> 0"), ("failures", "!= 0"), ("pass_ratio", "> 0.5"), ("p95_ms", "> 0")],
)
def test_a_bound_at_the_open_end_of_a_count_or_duration_is_kept(key: str, text: str) -> None:
    from pytest_fwgates.thresholds import parse

    parse(text).check_key(key)
