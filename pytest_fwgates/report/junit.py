"""Gate JUnit XML, valid against the "JUnit 10" schema of Jenkins' xunit plugin.

One test suite per gate. Its properties hold the gate verdict, the criterion verdicts and
the thresholds in force. A test case per check result (measured values in its system-out
and, on failure, in the message), one per criterion verdict and one for the gate verdict,
so a CI tool that only counts failures sees a failed gate.

The document is built with junit-xml; what it emits beyond the schema (the ``disabled``
counts, times in exponent notation) is then put right.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string

from ..fsutil import atomic_write
from ..model import (
    CheckResult,
    CriterionDecision,
    CriterionVerdict,
    GateDecision,
    GateVerdict,
    Outcome,
)
from .summary import criterion_thresholds, failing_keys, measure_text, value_text

__all__ = ["build_junit", "write_junit"]

_FAILING_CRITERIA = (CriterionVerdict.FAIL, CriterionVerdict.NOT_EVALUATED)
_NOT_IN_SCHEMA = ("disabled", "assertions")
_MESSAGE_MAX = 2000

# characters XML 1.0 forbids or junit-xml drops; written as escapes instead
_ILLEGAL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufddf\ufffe\uffff"
    + "".join(
        f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0x10000, 0x110000, 0x10000)
    )
    + "]"
)


def build_junit(decisions: list[GateDecision]) -> str:
    """The JUnit XML document of the gate decisions."""
    raw = to_xml_report_string([_suite(decision) for decision in decisions], prettyprint=False)
    root = ET.fromstring(raw)
    for element in (root, *root.iter("testsuite")):
        for name in _NOT_IN_SCHEMA:
            element.attrib.pop(name, None)
        if "time" in element.attrib:
            element.set("time", _time(float(element.get("time", "0"))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def write_junit(path: Path, decisions: list[GateDecision]) -> None:
    """Write the JUnit XML atomically."""
    atomic_write(path, build_junit(decisions))


def _suite(decision: GateDecision) -> Any:
    gate = decision.gate.name
    properties = {
        "gate.verdict": str(decision.verdict),
        "gate.status": decision.status,
    }
    for item in decision.criteria:
        properties[f"criterion.{item.criterion.id}.verdict"] = str(item.verdict)
    for item in decision.criteria:
        thresholds, overrides = criterion_thresholds(item)
        for key, text in thresholds.items():
            if key in overrides:
                text = f"{text} (overrides standard {overrides[key][0]})"
            properties[f"threshold.{item.criterion.id}.{key}"] = text

    cases = [
        _check_case(f"{gate}.{item.criterion.id}", result)
        for item in decision.criteria
        for result in item.results
    ]
    cases += [_criterion_case(gate, item) for item in decision.criteria]
    cases.append(_gate_case(decision))
    return TestSuite(_x(gate), cases, properties={_x(k): _x(v) for k, v in properties.items()})


def _check_case(classname: str, result: CheckResult) -> Any:
    case = TestCase(
        _x(result.check_id or result.nodeid),
        classname=_x(classname),
        elapsed_sec=_seconds(result.duration) or None,
        stdout=_x(_check_out(result)) or None,
    )
    text = _x(result.message).strip()
    first_line = text.split("\n", 1)[0]
    # the whole message goes in the element when the attribute cannot hold it all
    details = text if "\n" in text or len(first_line) > _MESSAGE_MAX else None
    first_line = _short(first_line)
    if result.outcome == Outcome.FAILED:
        parts = [measure_text(key, result) for key in failing_keys(result)]
        if first_line and first_line not in parts:
            parts.append(first_line)
        case.add_failure_info(_short(_x("; ".join(parts))) or "check failed", details)
    elif result.outcome == Outcome.ERROR:
        case.add_error_info(first_line or "check errored", details)
    elif result.outcome == Outcome.SKIPPED:
        case.add_skipped_info(first_line or "check skipped", details)
    return case


def _check_out(result: CheckResult) -> str:
    lines = []
    for key in dict.fromkeys([*result.measured, *result.thresholds]):
        if key in result.measured:
            line = f"{key} = {value_text(key, result.measured[key])}"
        else:
            line = f"{key} not measured"
        if key in result.thresholds:
            expected = f"expected {result.thresholds[key]}"
            if key in result.overrides:
                expected += f", overrides standard {result.overrides[key][0]}"
            line += f" ({expected})"
        lines.append(line)
    lines.append(f"node: {result.nodeid}")
    if result.host:
        lines.append(f"host: {result.host}")
    if result.location:
        lines.append(f"location: {result.location}")
    return "\n".join(lines)


def _criterion_case(gate: str, item: CriterionDecision) -> Any:
    kind = "required" if item.criterion.required else "advisory"
    out = [f"verdict: {item.verdict}", f"{kind} criterion: {item.criterion.title}"]
    if item.reason:
        out.append(f"reason: {item.reason}")
    if item.waived_by:
        out.append(f"waived by: {item.waived_by}")
    case = TestCase(
        _x(f"criterion:{item.criterion.id}"),
        classname=_x(f"{gate}.criteria"),
        stdout=_x("\n".join(out)),
    )
    if item.verdict in _FAILING_CRITERIA:
        message = item.reason or f"criterion {item.verdict}"
        case.add_failure_info(_x(message), failure_type=str(item.verdict))
    return case


def _gate_case(decision: GateDecision) -> Any:
    out = [f"verdict: {decision.verdict}"]
    if decision.status:
        out.append(f"status: {decision.status}")
    if decision.reason:
        out.append(f"reason: {decision.reason}")
    out += [f"warning: {warning}" for warning in decision.warnings]
    name = decision.gate.name
    case = TestCase(_x(f"gate:{name}"), classname=_x(name), stdout=_x("\n".join(out)))
    if decision.verdict != GateVerdict.PASSED:
        if decision.verdict == GateVerdict.HUMAN_REVIEW_REQUIRED:
            lead = "human review required"
        else:
            lead = f"gate {name} {str(decision.verdict).lower()}"
        message = f"{lead}: {decision.reason}" if decision.reason else lead
        case.add_failure_info(_x(message), failure_type=str(decision.verdict))
    return case


def _x(text: str) -> str:
    """Text XML can carry: line ends as ``\\n``, forbidden characters as escapes."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return _ILLEGAL.sub(
        lambda match: match[0].encode("unicode_escape", "backslashreplace").decode("ascii"), text
    )


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _seconds(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


def _time(value: float) -> str:
    """A time the schema accepts: digits, a point and fraction digits (no exponent)."""
    return f"{_seconds(value):.6f}"
