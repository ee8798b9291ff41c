"""The reports of a gate run: terminal table, gate JUnit XML, summary.json, atomic writes."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from pytest_fwgates.fsutil import atomic_write
from pytest_fwgates.model import (
    CheckResult,
    Criterion,
    CriterionDecision,
    CriterionVerdict,
    Gate,
    GateDecision,
    GateVerdict,
    Outcome,
)
from pytest_fwgates.report.junit import build_junit, write_junit
from pytest_fwgates.report.summary import build_summary, overall_verdict, write_summary
from pytest_fwgates.report.terminal import render_table, verdict_color

XSD = Path(__file__).parent / "data" / "junit-10.xsd"
NASTY = 'p95 <&> "quoted" café ✓ 日本 \x00bell\x07 esc\x1b[31m del\x7f \ud800 end'


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def result(criterion: str, check: str, outcome: Outcome, **kw: Any) -> CheckResult:
    gate = kw.pop("gate", "production-readiness")
    return CheckResult(
        nodeid=f"gates/{gate}.yaml::{check}",
        gate=gate,
        criterion=criterion,
        check_id=check,
        outcome=outcome,
        **kw,
    )


def crit(
    cid: str, verdict: CriterionVerdict, reason: str, results: list[CheckResult], **kw: Any
) -> CriterionDecision:
    waived_by = kw.pop("waived_by", None)
    criterion = Criterion(id=cid, title=cid.replace("-", " ").title(), **kw)
    return CriterionDecision(criterion, verdict, reason, results, waived_by=waived_by)


def production_failed() -> GateDecision:
    """A failed gate with every kind of criterion verdict and check outcome."""
    criteria = [
        crit(
            "performance",
            CriterionVerdict.PASS,
            "all 2 checks passed",
            [
                result(
                    "performance",
                    "api-latency",
                    Outcome.PASSED,
                    measured={"p95_ms": 212, "p99_ms": 290.5},
                    thresholds={"p95_ms": "< 300ms", "p99_ms": "< 500ms"},
                    duration=12.5,
                ),
                result(
                    "performance",
                    "home-latency",
                    Outcome.PASSED,
                    measured={"p95_ms": 120},
                    thresholds={"p95_ms": "< 200ms"},
                    duration=1e-7,
                ),
            ],
            standards={"p95_ms": "< 300ms"},
        ),
        crit(
            "deployment-time",
            CriterionVerdict.FAIL,
            "deploy-duration failed: duration_s = 720 s, expected < 10m",
            [
                result(
                    "deployment-time",
                    "deploy-duration",
                    Outcome.FAILED,
                    measured={"duration_s": 720, "restarts": 0},
                    thresholds={"duration_s": "< 10m", "restarts": "== 0"},
                    overrides={"duration_s": ("< 5m", "< 10m")},
                    message=NASTY + "\nsecond line\r\nthird",
                    duration=float("nan"),
                    location="gates/production-readiness.yaml:12",
                )
            ],
            standards={"duration_s": "< 5m"},
            overrides={"duration_s": ("< 5m", "< 10m")},
        ),
        crit(
            "health-endpoint",
            CriterionVerdict.FAIL,
            "health-check errored: connection refused",
            [
                result(
                    "health-endpoint",
                    "health-check",
                    Outcome.ERROR,
                    message="ConnectionRefusedError: [Errno 111] connection refused",
                ),
                result(
                    "health-endpoint",
                    "health-body",
                    Outcome.PASSED,
                    measured={"status_code": 200},
                    thresholds={"status_code": "== 200"},
                ),
            ],
        ),
        crit(
            "backups",
            CriterionVerdict.NOT_EVALUATED,
            "required criterion not evaluated: backup-restore skipped",
            [result("backups", "backup-restore", Outcome.SKIPPED, message="no backup host")],
            standards={"restore_s": "< 15m"},
        ),
        crit("capacity", CriterionVerdict.NOT_EVALUATED, "required criterion has no checks", []),
        crit(
            "error-budget",
            CriterionVerdict.WARN,
            "advisory: failure_ratio = 0.02, expected < 0.01",
            [
                result(
                    "error-budget",
                    "load-errors",
                    Outcome.FAILED,
                    measured={"failure_ratio": 0.02},
                    thresholds={"failure_ratio": "< 0.01"},
                )
            ],
            required=False,
        ),
        crit(
            "tls",
            CriterionVerdict.WAIVED,
            "certificate renewal scheduled <&>",
            [
                result(
                    "tls",
                    "cert-expiry",
                    Outcome.FAILED,
                    measured={"days_left": 3},
                    thresholds={"days_left": "> 14"},
                )
            ],
            waived_by="ops-lead (until 2030-01-31)",
        ),
    ]
    gate = Gate(name="production-readiness", title="Production readiness", status="")
    return GateDecision(
        gate,
        GateVerdict.FAILED,
        "3 required criteria did not pass",
        criteria,
        warnings=["waiver for 'old-check' expired on 2020-01-01 and was ignored"],
    )


def zero_downtime_passed() -> GateDecision:
    criteria = [
        crit(
            "availability",
            CriterionVerdict.PASS,
            "all 1 checks passed",
            [
                result(
                    "availability",
                    "probe",
                    Outcome.PASSED,
                    gate="zero-downtime",
                    measured={"availability_pct": 100.0, "failed_probes": 0},
                    thresholds={"availability_pct": ">= 99.9%", "failed_probes": "== 0"},
                    duration=31.25,
                )
            ],
        )
    ]
    gate = Gate(name="zero-downtime", title="Zero-downtime deployment", status="ZERO_DOWNTIME")
    return GateDecision(
        gate, GateVerdict.PASSED, "1 required criterion passed", criteria, "ZERO_DOWNTIME"
    )


def handoff_review() -> GateDecision:
    criteria = [
        crit(
            "runbook",
            CriterionVerdict.WAIVED,
            "runbook review pending",
            [result("runbook", "runbook-present", Outcome.FAILED, gate="operations-handoff")],
            waived_by="sre-manager",
        )
    ]
    gate = Gate(name="operations-handoff", title="Operations handoff", status="HANDED_OVER")
    return GateDecision(
        gate, GateVerdict.HUMAN_REVIEW_REQUIRED, "passes only under waivers", criteria
    )


def all_decisions() -> list[GateDecision]:
    return [production_failed(), zero_downtime_passed(), handoff_review()]


def suites(xml_text: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml_text.encode("utf-8"))
    assert root.tag == "testsuites"
    return {suite.get("name", ""): suite for suite in root.findall("testsuite")}


def case(suite: ET.Element, name: str) -> ET.Element:
    found = [c for c in suite.findall("testcase") if c.get("name") == name]
    assert len(found) == 1, name
    return found[0]


# -- JUnit -------------------------------------------------------------------------------


def test_junit_validates_against_junit10_schema(schema: xmlschema.XMLSchema) -> None:
    text = build_junit(all_decisions())
    schema.validate(text)
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')


def test_junit_empty_run_validates(schema: xmlschema.XMLSchema) -> None:
    text = build_junit([])
    schema.validate(text)
    assert suites(text) == {}


def test_schema_rejects_what_jenkins_xunit_rejects(schema: xmlschema.XMLSchema) -> None:
    """The schema (tests/data/junit-10.xsd, our transcription of the rules of the xunit
    plugin's JUnit 10 schema) holds what the plugin holds: the rules a gate JUnit must keep."""
    good = (
        '<testsuites><testsuite name="g" tests="1" failures="0" errors="0" time="1,234.5">'
        "{}</testsuite></testsuites>"
    )
    schema.validate(good.format('<testcase name="c" time="0.5" classname="g.c"/>'))
    bad_cases = [
        '<testcase name="c" file="x.py"/>',
        '<testcase name="c" line="3"/>',
        '<testcase name="c"><properties/></testcase>',
        '<testcase classname="g"/>',
        '<properties><property name="a"/></properties>',
        "<properties><other/></properties>",
    ]
    for bad in bad_cases:
        assert not schema.is_valid(good.format(bad)), bad
    suite = '<testsuites><testsuite name="g" tests="0" failures="0" errors="0"{}/></testsuites>'
    assert schema.is_valid(suite.format(' skipped="0" time="0.25"'))
    assert schema.is_valid(suite.format(' time="0.123"'))
    # at most three decimals, no exponent, no sign: what every gate JUnit broke before
    for bad_time in ("0.123456", "1e-05", "-1", "0.5s"):
        assert not schema.is_valid(suite.format(f' time="{bad_time}"')), bad_time
        root = f'<testsuites time="{bad_time}"/>'
        assert not schema.is_valid(root), bad_time
    assert not schema.is_valid(suite.format(' disabled="0"'))
    assert not schema.is_valid(
        '<testsuites><testsuite name="g" tests="0" failures="0"/></testsuites>'
    )


def test_every_time_in_the_gate_junit_has_at_most_three_decimals() -> None:
    decision = zero_downtime_passed()
    decision.criteria[0].results[0].duration = 1.23456789
    root = ET.fromstring(build_junit([decision]))
    times = [e.get("time") for e in root.iter() if e.get("time") is not None]
    assert times and all(len(t.partition(".")[2]) <= 3 for t in times), times
    assert "1.235" in times


def test_failure_message_is_also_the_element_text() -> None:
    suite = suites(build_junit(all_decisions()))["production-readiness"]
    for tag in ("failure", "error", "skipped"):
        for element in suite.iter(tag):
            assert (element.text or "").strip(), (tag, element.get("message"))
            first = (element.get("message") or "").split("; ")[-1][:40]
            assert first in (element.text or "") or element.get("message") in (element.text or "")


def test_evidence_files_are_junit_attachments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    decision = zero_downtime_passed()
    evidence = tmp_path / "evidence" / "deploy" / "timeline.csv"
    decision.criteria[0].results[0].evidence = {"timeline": str(evidence), "odd": "/x]]y"}
    monkeypatch.delenv("CI_PROJECT_DIR", raising=False)
    name = decision.criteria[0].results[0].check_id

    def out_lines() -> list[str]:
        text = build_junit([decision])
        schema.validate(text)
        suite = suites(text)[decision.gate.name]
        return case(suite, name).findtext("system-out", "").splitlines()

    assert f"[[ATTACHMENT|{evidence}]]" in out_lines()
    assert "[[ATTACHMENT|/x] ]y]]" in out_lines()
    # GitLab reads attachment paths relative to the project folder
    monkeypatch.setenv("CI_PROJECT_DIR", str(tmp_path))
    assert "[[ATTACHMENT|evidence/deploy/timeline.csv]]" in out_lines()


def test_junit_is_valid_with_every_kind_of_case(schema: xmlschema.XMLSchema) -> None:
    """Built directly (no junit-xml): no ``disabled`` counts, no exponent times."""
    text = build_junit(all_decisions())
    schema.validate(text)
    assert "disabled" not in text and "e-0" not in text


def test_junit_counts_per_suite() -> None:
    found = suites(build_junit(all_decisions()))
    assert set(found) == {"production-readiness", "zero-downtime", "operations-handoff"}

    prod = found["production-readiness"]
    # 8 check results + 7 criteria + 1 gate
    assert prod.get("tests") == "16"
    # failed checks: deploy-duration (load-errors is advisory: WARN, and cert-expiry is
    # waived: neither is red); criteria: 2 FAIL + 2 NOT_EVALUATED; the gate
    assert prod.get("failures") == "6"
    assert prod.get("errors") == "1"
    assert prod.get("skipped") == "1"

    zero = found["zero-downtime"]
    assert (zero.get("tests"), zero.get("failures"), zero.get("errors")) == ("3", "0", "0")

    handoff = found["operations-handoff"]
    # only the gate (human review required): the waived check and the WAIVED criterion
    # do not fail it
    assert (handoff.get("tests"), handoff.get("failures")) == ("3", "1")


@pytest.mark.parametrize(
    ("decision", "fails"),
    [(production_failed(), True), (zero_downtime_passed(), False), (handoff_review(), True)],
)
def test_gate_case_fails_unless_passed(decision: GateDecision, fails: bool) -> None:
    suite = suites(build_junit([decision]))[decision.gate.name]
    gate_case = case(suite, f"gate:{decision.gate.name}")
    assert gate_case.get("classname") == decision.gate.name
    failure = gate_case.find("failure")
    assert (failure is not None) is fails
    if decision.verdict == GateVerdict.HUMAN_REVIEW_REQUIRED:
        assert failure is not None
        assert failure.get("message") == "human review required: passes only under waivers"
        assert failure.get("type") == "HUMAN_REVIEW_REQUIRED"


def test_junit_properties() -> None:
    suite = suites(build_junit(all_decisions()))["production-readiness"]
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["gate.verdict"] == "FAILED"
    assert props["gate.status"] == ""
    assert props["criterion.performance.verdict"] == "PASS"
    assert props["criterion.backups.verdict"] == "NOT_EVALUATED"
    assert props["criterion.tls.verdict"] == "WAIVED"
    assert props["criterion.error-budget.verdict"] == "WARN"
    assert props["threshold.deployment-time.duration_s"] == "< 10m (overrides standard < 5m)"
    assert props["threshold.deployment-time.restarts"] == "== 0"
    # two checks hold p95_ms to different thresholds: each is named
    assert props["threshold.performance.api-latency.p95_ms"] == "< 300ms"
    assert props["threshold.performance.home-latency.p95_ms"] == "< 200ms"
    # a standard of a criterion whose check did not measure it is still in force
    assert props["threshold.backups.restore_s"] == "< 15m"


def test_junit_check_cases() -> None:
    suite = suites(build_junit(all_decisions()))["production-readiness"]

    passed = case(suite, "api-latency")
    assert passed.get("classname") == "production-readiness.performance"
    assert passed.get("time") == "12.500"
    assert list(passed) == [passed.find("system-out")]
    out = passed.findtext("system-out", "")
    assert "p95_ms = 212 ms (expected < 300ms)" in out.splitlines()
    assert "p99_ms = 290.5 ms (expected < 500ms)" in out.splitlines()

    failed = case(suite, "deploy-duration")
    assert failed.get("time") is None  # NaN duration: no time rather than an invalid one
    failure = failed.find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("duration_s = 720 s, expected < 10m (standard < 5m); ")
    assert (
        'p95 <&> "quoted" café ✓ 日本 \\x00bell\\x07 esc\\x1b[31m del\\x7f \\ud800 end' in message
    )
    assert "second line" in (failure.text or "")
    assert "\r" not in (failure.text or "")
    out = failed.findtext("system-out", "")
    assert "duration_s = 720 s (expected < 10m, overrides standard < 5m)" in out
    assert "restarts = 0 (expected == 0)" in out
    assert "location: gates/production-readiness.yaml:12" in out

    errored = case(suite, "health-check").find("error")
    assert errored is not None
    assert errored.get("message") == "ConnectionRefusedError: [Errno 111] connection refused"

    skipped = case(suite, "backup-restore").find("skipped")
    assert skipped is not None and skipped.get("message") == "no backup host"


def test_junit_criterion_cases() -> None:
    suite = suites(build_junit(all_decisions()))["production-readiness"]
    expected = {
        "performance": False,
        "deployment-time": True,
        "health-endpoint": True,
        "backups": True,
        "capacity": True,
        "error-budget": False,
        "tls": False,
    }
    for cid, fails in expected.items():
        item = case(suite, f"criterion:{cid}")
        assert item.get("classname") == "production-readiness.criteria"
        assert (item.find("failure") is not None) is fails, cid
    capacity = case(suite, "criterion:capacity").find("failure")
    assert capacity is not None
    assert capacity.get("message") == "required criterion has no checks"
    assert capacity.get("type") == "NOT_EVALUATED"
    tls_out = case(suite, "criterion:tls").findtext("system-out", "")
    assert "reason: certificate renewal scheduled <&>" in tls_out
    assert "waived by: ops-lead (until 2030-01-31)" in tls_out


def test_junit_suite_times_have_no_exponent(schema: xmlschema.XMLSchema) -> None:
    decision = zero_downtime_passed()
    decision.criteria[0].results[0].duration = 1e-7
    root = ET.fromstring(build_junit([decision]))
    times = [root.get("time"), *(s.get("time") for s in root.iter("testsuite"))]
    assert times == ["0.000", "0.000"]


def test_write_junit(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    target = tmp_path / "out" / "junit.xml"
    write_junit(target, all_decisions())
    schema.validate(str(target))
    assert os.listdir(target.parent) == ["junit.xml"]


# -- summary.json ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdicts", "overall"),
    [
        ([], GateVerdict.FAILED),
        ([GateVerdict.PASSED], GateVerdict.PASSED),
        (
            [GateVerdict.PASSED, GateVerdict.HUMAN_REVIEW_REQUIRED],
            GateVerdict.HUMAN_REVIEW_REQUIRED,
        ),
        ([GateVerdict.HUMAN_REVIEW_REQUIRED, GateVerdict.FAILED], GateVerdict.FAILED),
    ],
)
def test_overall_verdict(verdicts: list[GateVerdict], overall: GateVerdict) -> None:
    decisions = [GateDecision(Gate(name=f"g{i}", title=""), v, "") for i, v in enumerate(verdicts)]
    assert overall_verdict(decisions) is overall


def test_summary_content() -> None:
    run = {"started": "2024-05-01T10:00:00Z", "exit_status": 1, "hosts": ("a", "b")}
    summary = build_summary(all_decisions(), run)
    assert summary["schema"] == "fwgates-summary/1"
    assert summary["verdict"] == "FAILED"
    assert summary["run"] == {
        "started": "2024-05-01T10:00:00Z",
        "exit_status": 1,
        "hosts": ["a", "b"],
    }
    gates = {gate["name"]: gate for gate in summary["gates"]}
    assert [g["verdict"] for g in gates.values()] == ["FAILED", "PASSED", "HUMAN_REVIEW_REQUIRED"]
    prod = gates["production-readiness"]
    assert prod["warnings"] == ["waiver for 'old-check' expired on 2020-01-01 and was ignored"]
    assert set(prod) == {"name", "title", "verdict", "status", "reason", "warnings", "criteria"}
    criteria = {c["id"]: c for c in prod["criteria"]}
    deploy = criteria["deployment-time"]
    assert deploy["verdict"] == "FAIL"
    assert deploy["required"] is True
    assert deploy["thresholds"] == {"duration_s": "< 10m", "restarts": "== 0"}
    assert deploy["overrides"] == {"duration_s": {"standard": "< 5m", "override": "< 10m"}}
    [check] = deploy["checks"]
    assert check["nodeid"] == "gates/production-readiness.yaml::deploy-duration"
    assert check["outcome"] == "failed"
    assert check["measured"] == {"duration_s": 720, "restarts": 0}
    assert check["thresholds"] == {"duration_s": "< 10m", "restarts": "== 0"}
    assert check["message"].startswith('p95 <&> "quoted"')
    assert check["duration"] == "nan"
    assert criteria["tls"]["waived_by"] == "ops-lead (until 2030-01-31)"
    assert criteria["error-budget"]["required"] is False
    assert criteria["capacity"]["checks"] == []
    assert gates["zero-downtime"]["status"] == "ZERO_DOWNTIME"


def test_summary_empty_run_fails() -> None:
    assert build_summary([], {})["verdict"] == "FAILED"


def test_write_summary(tmp_path: Path) -> None:
    target = tmp_path / "pkg" / "summary.json"
    decisions = all_decisions()
    decisions[1].criteria[0].results[0].measured["odd"] = float("inf")
    write_summary(target, decisions, {"path": Path("/srv/app")})
    raw = target.read_text(encoding="utf-8")
    data = json.loads(raw)  # strict JSON: no NaN or Infinity tokens
    assert data == json.loads(raw, parse_constant=lambda token: pytest.fail(token))
    # one line from the C encoder (indent would fall back to the pure-Python one)
    expected = json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"
    # a lone surrogate is written as its JSON escape, everything else as UTF-8
    assert raw == expected.encode("utf-8", "backslashreplace").decode("utf-8")
    assert data["run"] == {"path": "/srv/app"}
    assert "café ✓ 日本" in raw
    assert os.listdir(target.parent) == ["summary.json"]


# -- atomic_write ------------------------------------------------------------------------


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "report.txt"
    atomic_write(target, "first ✓")
    assert target.read_text(encoding="utf-8") == "first ✓"
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["report.txt"]


def test_atomic_write_keeps_mode_of_replaced_file(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, "new")
    assert target.stat().st_mode & 0o777 == 0o640


def test_atomic_write_failure_mid_write_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old content")
    real_write = os.write

    def half_then_fail(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pytest_fwgates.fsutil.os.write", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new content " * 1000)
    assert target.read_text() == "old content"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_atomic_write_interrupted_before_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "junit.xml"
    target.write_text("old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("pytest_fwgates.fsutil.os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["junit.xml"]


def test_atomic_write_replaces_a_complete_file_from_the_same_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    seen: list[tuple[Path, bytes]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append((Path(src), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr("pytest_fwgates.fsutil.os.replace", spy)
    atomic_write(target, "<html>complete</html>")
    [(src, content)] = seen
    assert src.parent == tmp_path and src != target
    assert content == b"<html>complete</html>"
    assert not src.exists()


# -- terminal table ----------------------------------------------------------------------


def test_table_rows() -> None:
    lines = render_table(all_decisions())
    text = "\n".join(lines)
    assert all(len(line) <= 100 for line in lines), text
    assert lines[0] == "production-readiness  FAILED"
    assert "zero-downtime  PASSED  (ZERO_DOWNTIME)" in lines
    # the status is what a PASSED verdict earns: none here
    assert "operations-handoff  HUMAN_REVIEW_REQUIRED" in lines

    def row(cid: str) -> str:
        [found] = [line for line in lines if line.split()[:1] == [cid]]
        return found

    assert row("performance").split()[1:3] == ["required", "2/2"]
    assert "p95_ms = 212 ms, expected < 300ms" in row("performance")
    assert row("performance").endswith("PASS")
    deploy = row("deployment-time")
    assert "duration_s = 720 s," in deploy
    # a cell too long for its column wraps inside the column, a comparison kept whole
    rest = lines[lines.index(deploy) + 1]
    assert rest == " " * deploy.index("duration_s") + "expected < 10m (standard < 5m)"
    assert deploy.split()[1:3] == ["required", "0/1"]
    assert deploy.endswith("FAIL")
    assert row("health-endpoint").split()[2] == "1/2"
    # the errored check measured nothing: its passing sibling is not shown as the figure
    assert " - " in row("health-endpoint")
    assert row("backups").endswith("NOT_EVALUATED")
    assert "restore_s not measured, expected < 15m" in row("backups")
    assert row("capacity").split()[1:3] == ["required", "0/0"]
    assert row("error-budget").split()[1] == "advisory"
    assert "failure_ratio = 0.02, expected < 0.01" in row("error-budget")
    assert row("error-budget").endswith("WARN")
    assert row("tls").endswith("WAIVED")
    assert "days_left = 3, expected > 14" in row("tls")
    # reasons on the next line, for every verdict but PASS
    assert lines[lines.index(deploy) + 2].strip().startswith("deploy-duration failed:")
    assert "…" not in text
    after = lines[lines.index(row("tls")) + 1]
    assert (
        after.strip() == "waived by ops-lead (until 2030-01-31): certificate renewal scheduled <&>"
    )
    assert lines[lines.index(row("performance")) + 1].split()[0] == "deployment-time"
    assert "  warning: waiver for 'old-check' expired on 2020-01-01 and was ignored" in lines
    assert lines[-1] == "overall: FAILED (3 gates: 1 passed, 1 failed, 1 human review required)"


@pytest.mark.parametrize("width", [80, 100, 200])
def test_table_fits_the_width_and_never_cuts(width: int) -> None:
    decision = production_failed()
    decision.criteria[0].criterion.id = "a-very-long-criterion-identifier-that-does-not-fit-80"
    decision.criteria[1].reason = "the deploy took longer than the standard allows " * 6
    lines = render_table([decision], width=width)
    text = "\n".join(lines)
    assert all(len(line) <= width for line in lines), text
    assert "…" not in text
    # ids in full, on a line of their own when the columns do not fit beside them
    assert any(
        line.strip().startswith("a-very-long-criterion-identifier-that-does-not-fit-80")
        for line in lines
    )
    # every word of a long reason is there, wrapped
    assert " ".join(text.split()).count("the standard allows") == 6
    assert "duration_s = 720 s, expected < 10m (standard < 5m)" in " ".join(text.split())


def test_table_strips_control_characters_and_line_breaks() -> None:
    decision = production_failed()
    decision.criteria[0].criterion.id = "perf\r\noverall: PASSED"
    decision.criteria[1].reason = "x" * 30 + "\x1b[2J\roverall: PASSED"
    decision.gate.name = "production-readiness\noverall: PASSED"
    lines = render_table([decision], width=100)
    assert not any("\x1b" in line or "\n" in line or "\r" in line for line in lines)
    # the only line that starts with "overall:" is the real one, last
    assert [line for line in lines if line.startswith("overall:")] == [lines[-1]]
    assert lines[-1].startswith("overall: FAILED")


FORGED = "overall: PASSED (1 gate: 1 passed)"


@pytest.mark.parametrize("width", [20, 40, 57, 80, 120, 1000])
@pytest.mark.parametrize("field", ["gate", "status", "criterion", "reason", "waiver", "message"])
def test_no_value_can_wrap_into_a_line_of_its_own(width: int, field: str) -> None:
    """Whatever its length, a value that wraps continues indented: no line the run's
    values made starts in column 0, so none can pass for the ``overall:`` line."""
    for filler in range(0, 130, 7):
        value = ("x " * filler) + FORGED
        decision = production_failed()
        if field == "gate":
            decision.gate.name = value
        elif field == "status":
            decision.verdict = GateVerdict.PASSED
            decision.status = value
        elif field == "criterion":
            decision.criteria[1].criterion.id = value
        elif field == "reason":
            decision.criteria[1].reason = value
        elif field == "waiver":
            decision.criteria[1].waived_by = value
        else:
            decision.criteria[1].results[0].message = value
            decision.criteria[1].results[0].measured = {}
        lines = render_table([decision], width=width)
        overall = [line for line in lines if line.startswith("overall")]
        assert overall == [lines[-1]], (filler, "\n".join(lines))
        if field != "status":  # (a gate with a status is PASSED: so is the run)
            assert lines[-1].startswith("overall: FAILED")


def test_table_empty_run() -> None:
    assert render_table([]) == ["overall: FAILED (no gate was decided)"]


@pytest.mark.parametrize(
    ("word", "markup"),
    [
        ("PASS", {"green": True}),
        ("PASSED", {"green": True}),
        ("FAIL", {"red": True}),
        ("FAILED", {"red": True}),
        (CriterionVerdict.NOT_EVALUATED, {"red": True}),
        ("WARN", {"yellow": True}),
        ("WAIVED", {"yellow": True}),
        (GateVerdict.HUMAN_REVIEW_REQUIRED, {"yellow": True}),
        ("", {}),
    ],
)
def test_verdict_color(word: str, markup: dict[str, bool]) -> None:
    assert verdict_color(word) == markup


def test_criterion_thresholds_are_computed_once_and_handed_out_as_copies() -> None:
    """Every report asks for the thresholds of every criterion: they are computed once per
    decision, each caller gets its own copy, and a decision given more results is computed
    again."""
    from pytest_fwgates.report.summary import criterion_thresholds

    first = result("c", "a", Outcome.PASSED, thresholds={"duration_s": "< 5s"})
    decision = crit("c", CriterionVerdict.PASS, "", [first])
    thresholds, overrides = criterion_thresholds(decision)
    assert thresholds == {"duration_s": "< 5s"} and overrides == {}
    thresholds["mutated"] = "yes"
    assert criterion_thresholds(decision)[0] == {"duration_s": "< 5s"}
    decision.results.append(result("c", "b", Outcome.PASSED, thresholds={"duration_s": "< 9s"}))
    assert criterion_thresholds(decision)[0] == {"a.duration_s": "< 5s", "b.duration_s": "< 9s"}


def _figures_decision() -> GateDecision:
    figures = result(
        "real-time-validation",
        "availability-during-deploy",
        Outcome.FAILED,
        measured={"availability_pct": 99.5, "p95_ms": 133.0, "baseline_p95_ms": 100.0},
        thresholds={"availability_pct": ">= 99.9%", "p95_ms": "<= +25%"},
        message="availability_pct = 99.5 %, expected >= 99.9%",
    )
    item = crit("real-time-validation", CriterionVerdict.FAIL, "failed", [figures])
    return GateDecision(
        Gate(name="zero-downtime-deployment", title="z"), GateVerdict.FAILED, "", [item]
    )


@pytest.mark.parametrize("width", range(40, 161, 9))
def test_table_never_breaks_inside_a_value(width: int) -> None:
    lines = render_table([_figures_decision()], width=width)
    text = "\n".join(lines)
    # each figure and each comparison stays on one line, whatever the width
    for phrase in ("availability_pct = 99.5 %", "expected >= 99.9%"):
        assert any(phrase in line for line in lines), text


def test_relative_thresholds_show_their_baseline_and_bound() -> None:
    from pytest_fwgates.report.summary import measure_text

    shown = measure_text("p95_ms", _figures_decision().criteria[0].results[0])
    assert shown == "p95_ms = 133 ms, expected <= +25% of baseline 100 ms (<= 125 ms)"


class _Writer:
    def __init__(self, tty: bool, fullwidth: int = 80) -> None:
        self._file = self
        self.tty = tty
        self.fullwidth = fullwidth

    def isatty(self) -> bool:
        return self.tty


def test_table_width_without_a_terminal_is_120_unless_columns_says() -> None:
    from pytest_fwgates.report.terminal import NO_TERMINAL_WIDTH, table_width

    assert NO_TERMINAL_WIDTH == 120
    assert table_width(_Writer(tty=False), {}) == 120  # a CI log
    assert (
        table_width(
            _Writer(tty=False),
            {"COLUMNS": "90"},
        )
        == 80
    )  # the writer read it
    assert table_width(_Writer(tty=True, fullwidth=70), {}) == 70
    assert table_width(object(), {}) == 120


def test_ci_log_table_has_one_line_per_criterion(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Output to a pipe (a CI log): laid out at 120 columns, no row wrapped at 80."""
    monkeypatch.delenv("COLUMNS", raising=False)  # (pytest-xdist workers set it)
    project.production_ready()
    result = project.run_subprocess("--gate=production-readiness", timeout=120)
    lines = result.stdout.lines
    start = lines.index(next(line for line in lines if "gate verdicts" in line))
    table = lines[start + 1 : lines.index(next(x for x in lines if x.startswith("overall:")))]
    assert all(len(line) <= 120 for line in table)
    rows = [line for line in table if line.startswith("  ") and line.rstrip().endswith("PASS")]
    assert len(rows) == 5 and max(map(len, rows)) > 80
    # no continuation lines under the rows: every measured text fit beside its criterion
    assert not [line for line in table if line.startswith(" " * 20)]


def test_report_html_shows_key_figures_first_and_folds_the_rest() -> None:
    from pytest_fwgates.report.html import build_html

    measured: dict[str, Any] = {"p95_ms": 40.0, "failure_ratio": 0.0, "rps": 210.0}
    for path in ("/a", "/b", "/c"):
        for key in ("p50_ms", "p95_ms", "p99_ms", "requests"):
            measured[f"GET {path}::{key}"] = 5.0
    load = result(
        "performance-verification",
        "mixed-traffic",
        Outcome.PASSED,
        measured=measured,
        thresholds={"p95_ms": "< 300ms", "failure_ratio": "< 1%"},
    )
    item = crit("performance-verification", CriterionVerdict.PASS, "", [load])
    decision = GateDecision(
        Gate(name="production-readiness", title="P"), GateVerdict.PASSED, "", [item]
    )
    page = build_html([decision])
    row = page[page.index('data-check="mixed-traffic"') :]
    row = row[: row.index("</tr>")]
    folded = row[row.index("<details>") :]
    assert row.index("p95_ms = 40 ms, expected &lt; 300ms") < row.index("<details>")
    assert "failure_ratio = 0, expected &lt; 1%" in row[: row.index("<details>")]
    assert "<summary>13 more figures</summary>" in folded
    assert "GET /b::p99_ms = 5 ms" in folded and "rps = 210" in folded
    # the first lines: one per gate and per criterion
    assert (
        page.index('class="gate-line"')
        < page.index('class="criterion-line"')
        < page.index('<section class="gate"')
    )


def test_values_are_shown_as_people_write_them() -> None:
    from pytest_fwgates.report.summary import measure_text, value_text

    assert value_text("endpoints", ["GET /a", "GET /b"]) == "GET /a, GET /b"
    assert value_text("labels", {"job": "app", "codes": [200, 503]}) == "job: app; codes: 200, 503"
    listed = result("c", "k", Outcome.PASSED, measured={"missing": ["AppDown", "HighLatency"]})
    assert measure_text("missing", listed) == "missing = AppDown, HighLatency"
