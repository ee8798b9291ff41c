"""The metric check on records files the tests write: computed figures, exact values, and
malformed records reported as file:line errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.checks._web import PathError, lookup, parse_path
from pytest_fwgates.checks.availability import percentile
from pytest_fwgates.checks.figures import SpanError, parse_span
from pytest_fwgates.checks.http import expect_value
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Outcome, Source

if TYPE_CHECKING:
    from conftest import GateProject

INCIDENTS_CSV = """\
id,started,detected,resolved
INC-1,2026-11-01T10:00:00Z,2026-11-01T10:00:20Z,2026-11-01T10:01:30Z
INC-2,2026-11-03T08:00:00Z,2026-11-03T08:00:10Z,2026-11-03T08:00:50Z
INC-3,2026-11-05T23:59:30+01:00,2026-11-05T23:59:45+01:00,2026-11-06T00:01:00+01:00
"""
# recovery 90, 50, 90 s -> 76.667; detection 20, 10, 15 s -> 15


def _run(tmp_path: Path, mapping: dict[str, Any]) -> CheckResult:
    loader = GateLoader([], registry=CheckRegistry(), environ={})
    spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "t.py", 1))
    context = CheckContext(rootdir=tmp_path, evidence_root=tmp_path / "evidence")
    return run_check(CheckRegistry().get(spec.type)(spec, context), "t")


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(textwrap.dedent(text))
    return name


def test_mttr_and_mttd_from_csv(tmp_path: Path) -> None:
    name = _write(tmp_path, "incidents.csv", INCIDENTS_CSV)
    result = _run(tmp_path, {"metric": name, "compute": "mttr", "expect": {"mttr_s": "< 2m"}})
    assert result.outcome is Outcome.PASSED, result.message
    assert result.measured["mttr_s"] == pytest.approx(76.667, abs=1e-3)
    assert result.measured["mttd_s"] == 15.0
    assert result.measured["incidents"] == 3
    assert result.measured["window"] == "2026-11-01T10:00:00Z .. 2026-11-05T23:01:00Z"
    assert result.measured["source"].endswith("incidents.csv")
    slow = _run(tmp_path, {"metric": name, "compute": "mttr", "expect": {"mttr_s": "< 1m"}})
    assert slow.outcome is Outcome.FAILED
    assert "mttr_s = 76.667 s, expected < 1m" in slow.message


def test_mttr_from_json_and_yaml_records(tmp_path: Path) -> None:
    records = [
        {"started": 1000, "resolved": 1030},
        {"started": "2026-11-01T00:00:00", "resolved": "2026-11-01T00:01:00"},
    ]
    _write(tmp_path, "incidents.json", json.dumps(records, indent=2))
    result = _run(tmp_path, {"metric": "incidents.json", "compute": "mttr"})
    assert result.measured["mttr_s"] == 45.0
    _write(
        tmp_path,
        "incidents.yaml",
        """
        incidents:
          - {started: 2026-11-01T00:00:00Z, resolved: 2026-11-01T00:00:10Z}
          - {started: 2026-11-01T01:00:00Z, resolved: 2026-11-01T01:00:30Z}
        """,
    )
    result = _run(tmp_path, {"metric": "incidents.yaml", "compute": "mttr", "records": "incidents"})
    assert result.outcome is Outcome.PASSED, result.message
    assert result.measured["mttr_s"] == 20.0


@pytest.mark.parametrize(("scale", "outcome"), [(10, Outcome.PASSED), (1, Outcome.INCONCLUSIVE)])
def test_accuracy_precision_recall(tmp_path: Path, scale: int, outcome: Outcome) -> None:
    rows = ["window,label,predicted"]
    # per 100: 18 true positives, 1 false positive, 80 true negatives, 1 false negative
    rows += [f"{i},anomaly,anomaly" for i in range(18 * scale)]
    rows += ["x,normal,anomaly", "y,anomaly,normal"] * scale
    rows += [f"{i},normal,normal" for i in range(80 * scale)]
    _write(tmp_path, "predictions.csv", "\n".join(rows) + "\n")
    result = _run(
        tmp_path,
        {
            "metric": "predictions.csv",
            "compute": "accuracy",
            "positive": "anomaly",
            "expect": {"accuracy_pct": ">= 95%", "precision_pct": ">= 90%"},
        },
    )
    assert result.outcome is outcome, result.message
    assert result.measured["accuracy_pct"] == 98.0
    assert result.measured["precision_pct"] == pytest.approx(94.736842)
    assert result.measured["recall_pct"] == pytest.approx(94.736842)
    assert result.measured["records"] == 100 * scale
    assert result.support["accuracy_pct"]["count"] == [98 * scale, 100 * scale]
    assert result.support["precision_pct"]["count"] == [18 * scale, 19 * scale]
    assert result.support["recall_pct"]["count"] == [18 * scale, 19 * scale]
    if outcome is Outcome.INCONCLUSIVE:
        # 98 of 100 correct show only >= 93.83 %: 124 records with at most 2 wrong are needed
        assert result.message.startswith(
            "accuracy_pct 98/100 records correct: >= 93.83 % at 95 % confidence; "
            "124 records with no more than 2 not correct show >= 95%"
        )
        assert "precision_pct 18/19 positives true: >= 77.36 %" in result.message


def test_availability_from_counts_and_from_a_timeline(tmp_path: Path) -> None:
    _write(tmp_path, "counts.csv", "day,successes,total\n1,999,1000\n2,1000,1000\n")
    result = _run(tmp_path, {"metric": "counts.csv", "compute": "availability"})
    assert result.measured["availability_pct"] == 99.95
    assert result.measured["errors"] == 1
    lines = [json.dumps({"at": i, "ok": i != 3}) for i in range(10)]
    _write(tmp_path, "timeline.jsonl", "\n".join(lines) + "\n")
    result = _run(
        tmp_path,
        {"metric": "timeline.jsonl", "compute": "availability", "as": "availability_pct"},
    )
    assert result.measured["availability_pct"] == 90.0
    assert result.outcome is Outcome.PASSED  # no threshold outside a catalog criterion


def test_value_by_path_and_reduction(tmp_path: Path) -> None:
    _write(tmp_path, "costs.json", '{"q1": {"total": 1200}, "q2": {"total": 900}}')
    result = _run(
        tmp_path,
        {
            "metric": "costs.json",
            "compute": "reduction",
            "before": "q1.total",
            "after": "$.q2.total",
            "as": "cost_reduction_pct",
            "expect": {"cost_reduction_pct": ">= 20%"},
        },
    )
    assert result.outcome is Outcome.PASSED, result.message
    assert result.measured["cost_reduction_pct"] == 25.0
    assert (result.measured["before"], result.measured["after"]) == (1200.0, 900.0)
    value = _run(tmp_path, {"metric": "costs.json", "path": "q2.total", "expect": {"value": 900}})
    assert value.outcome is Outcome.PASSED, value.message
    numbers = _run(tmp_path, {"metric": "costs.json", "compute": "reduction", "before": 100,
                              "after": 92, "as": "prevented_pct"})  # fmt: skip
    assert numbers.measured["prevented_pct"] == 8.0


@pytest.mark.parametrize(
    ("name", "text", "settings", "message"),
    [
        ("empty.csv", "", {"compute": "mttr"}, "empty.csv:1: empty"),
        ("header.csv", "started,resolved\n", {"compute": "mttr"}, "header.csv:1: only a header"),
        ("empty.json", "[]", {"compute": "mttr"}, "empty.json:1: no records"),
        (
            "bad-time.csv",
            "started,resolved\n2026-11-01T00:00:00Z,2026-11-01T00:01:00Z\nyesterday,today\n",
            {"compute": "mttr"},
            "bad-time.csv:3: started: not a time: 'yesterday'",
        ),
        (
            "backwards.csv",
            "started,resolved\n2026-11-01T00:10:00Z,2026-11-01T00:01:00Z\n",
            {"compute": "mttr"},
            "backwards.csv:2: resolved before it started",
        ),
        (
            "short-row.csv",
            "started,resolved\n2026-11-01T00:00:00Z\n",
            {"compute": "mttr"},
            "short-row.csv:2: fewer fields",
        ),
        (
            "missing.json",
            '[\n  {"started": 1, "resolved": 2},\n  {"started": 3}\n]',
            {"compute": "mttr"},
            "missing.json:3: no 'resolved' field",
        ),
        (
            "broken.json",
            '[\n  {"label": 1, "predicted": 1},\n  {"label": 1 "predicted": 0}\n]',
            {"compute": "accuracy"},
            "broken.json:3: not valid JSON",
        ),
        (
            "labels.jsonl",
            '{"label": 1, "predicted": 1}\n{"label": "maybe", "predicted": 0}\n',
            {"compute": "accuracy"},
            "labels.jsonl:2: not a yes/no value: 'maybe'",
        ),
        (
            "bad.yaml",
            "- {started: 1, resolved: 2}\n- {started: 3, resolved: [\n",
            {"compute": "mttr"},
            "bad.yaml:3: YAML syntax error",
        ),
        ("nan.json", '{"a": NaN}', {"path": "a"}, "nan.json: not valid JSON: NaN"),
        ("text.json", '{"a": "fast"}', {"path": "a"}, "text.json: a is 'fast', not a number"),
        ("nokey.json", '{"a": {"b": 1}}', {"path": "a.c"}, "has no key 'c' (keys: b)"),
    ],
)
def test_malformed_records_are_errors_with_file_and_line(
    tmp_path: Path, name: str, text: str, settings: dict[str, Any], message: str
) -> None:
    (tmp_path / name).write_text(text)
    result = _run(tmp_path, {"metric": name, **settings})
    assert result.outcome is Outcome.ERROR
    assert message in result.message
    assert "Traceback" not in result.message


def test_missing_file_and_since_window(tmp_path: Path) -> None:
    result = _run(tmp_path, {"metric": "nowhere.csv", "compute": "mttr"})
    assert result.outcome is Outcome.ERROR
    assert "nowhere.csv: no such file" in result.message
    _write(tmp_path, "old.csv", INCIDENTS_CSV)
    old = _run(tmp_path, {"metric": "old.csv", "compute": "mttr", "since": "1h"})
    assert old.outcome is Outcome.ERROR
    assert "no records start after" in old.message


def test_paths_percentiles_and_expectations() -> None:
    assert parse_path("$.a.b[0]['c.d']") == ["a", "b", 0, "c.d"]
    assert lookup({"items": [{"n": 1}, {"n": 2}]}, "items.1.n") == 2
    assert lookup({"items": [{"n": 1}]}, "items[-1].n") == 1
    with pytest.raises(PathError, match="has no item 5"):
        lookup({"items": []}, "items[5]")
    assert percentile([float(v) for v in range(1, 101)], 95) == 95.0
    assert percentile([3.0], 99) == 3.0
    assert (parse_span("30d"), parse_span("2w"), parse_span("500ms")) == (2592000, 1209600, 0.5)
    for bad in ("0s", "401d", "soon", True, -1):
        with pytest.raises(SpanError):
            parse_span(bad)
    assert expect_value("x", "ok", "ok") is None
    assert expect_value("x", 3, "> 2") is None
    assert expect_value("x", 1, "> 2") == "x = 1, expected > 2"
    assert expect_value("x", True, 1) is not None  # true is not the number 1
    assert expect_value("x", 200, "200") is None


def test_metric_in_a_gate_run(project: GateProject) -> None:
    """A figure's standard comes from the catalog: mttr_s < 2 min in operations-excellence."""
    project.pytester.path.joinpath("incidents.csv").write_text(INCIDENTS_CSV)
    project.gate(
        "operations-excellence",
        """
        gate: operations-excellence
        criteria:
          incident-response:
            - metric: incidents.csv
              compute: mttr
        """,
    )
    result = project.run("--gate", "operations-excellence")
    result.assert_outcomes(passed=1)
    check = project.criterion("operations-excellence", "incident-response")["checks"][0]
    assert check["thresholds"] == {"mttr_s": "< 2m"}
    assert check["measured"]["mttr_s"] == pytest.approx(76.667, abs=1e-3)
    assert project.criteria("operations-excellence")["incident-response"] == "PASS"


def test_share_of_records(tmp_path: Path) -> None:
    _write(tmp_path, "threats.csv", "id,auto_responded\n1,yes\n2,yes\n3,no\n4,yes\n")
    result = _run(
        tmp_path,
        {
            "metric": "threats.csv",
            "compute": "share",
            "field": "auto_responded",
            "as": "auto_response_pct",
            "expect": {"auto_response_pct": ">= 95%"},
        },
    )
    assert result.outcome is Outcome.FAILED
    assert result.message == "auto_response_pct = 75 %, expected >= 95%"
    assert (result.measured["records"], result.measured["yes"]) == (4, 3)
    _write(tmp_path, "typo.csv", "id,auto_respond\n1,yes\n")
    typo = _run(tmp_path, {"metric": "typo.csv", "compute": "share", "field": "auto_responded"})
    assert typo.outcome is Outcome.ERROR
    assert typo.message.endswith(
        "typo.csv:2: no 'auto_responded' field (record fields: id, auto_respond)"
    )


def test_records_under_a_path_of_a_json_object_keep_their_lines(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "export.json",
        '{\n  "incidents": [\n    {"started": 1, "resolved": 5},\n    {"started": 9}\n  ]\n}\n',
    )
    result = _run(tmp_path, {"metric": "export.json", "compute": "mttr", "records": "incidents"})
    assert result.outcome is Outcome.ERROR
    assert "export.json:4: no 'resolved' field" in result.message
