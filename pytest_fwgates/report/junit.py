"""Gate JUnit XML, valid against the "JUnit 10" schema of Jenkins' xunit plugin.

One test suite per gate. Its properties hold the gate verdict, the criterion verdicts and
the thresholds in force. A test case per check result (measured values in its system-out
and, when it fails the gate, in the message), one per criterion verdict and one for the gate
verdict, so a CI tool that only counts failures sees a failed gate.

Only what fails the gate is red: a failed check of an advisory criterion (WARN) or of a
waived criterion (WAIVED) is no ``<failure>``; its outcome and message go to system-out.

What the consumers need: times with at most three decimals (the xunit plugin's
``SUREFIRE_TIME``), the message of a ``<failure>``/``<error>``/``<skipped>`` also as its text
(tools that show only the element's text), and each evidence file on a line of its own in
system-out as ``[[ATTACHMENT|path]]`` (Jenkins' junit-attachments, GitLab): the path as the check
wrote it, or relative to ``$CI_PROJECT_DIR`` when it lies under it (GitLab reads it so).

Built with ElementTree in one pass (the format is the one junit-xml writes, without the
attributes JUnit 10 does not allow; see docs/architecture.md).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..fsutil import atomic_write
from ..model import (
    CheckResult,
    CriterionDecision,
    CriterionVerdict,
    GateDecision,
    GateVerdict,
    Outcome,
)
from . import gc_paused
from .summary import criterion_thresholds, failing_keys, measure_text, value_text

__all__ = ["build_junit", "write_junit"]

_FAILING_CRITERIA = (
    CriterionVerdict.FAIL,
    CriterionVerdict.NOT_EVALUATED,
    CriterionVerdict.INCONCLUSIVE,
)
#: criterion verdicts under which a failed check does not fail the gate
_NOT_RED = (CriterionVerdict.WARN, CriterionVerdict.WAIVED)
_MESSAGE_MAX = 2000

# characters XML 1.0 forbids (and C1 controls); written as escapes instead
_ILLEGAL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufddf\ufffe\uffff"
    + "".join(
        f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0x10000, 0x110000, 0x10000)
    )
    + "]"
)
_LINE_ENDS = re.compile("\r\n?|[\u2028\u2029\x85]")
_SPECIAL = re.compile(f"{_ILLEGAL.pattern}|[\r\u2028\u2029\x85]")


class _Counts:
    __slots__ = ("errors", "failures", "skipped", "tests", "time")

    def __init__(self) -> None:
        self.tests = self.failures = self.errors = self.skipped = 0
        self.time = 0.0

    def add(self, other: _Counts) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped
        self.time += other.time


def build_junit(decisions: list[GateDecision]) -> str:
    """The JUnit XML document of the gate decisions."""
    with gc_paused():
        return _build(decisions)


def _build(decisions: list[GateDecision]) -> str:
    root = ET.Element("testsuites")
    total = _Counts()
    for decision in decisions:
        total.add(_suite(root, decision))
    root.attrib.update(
        {
            "errors": str(total.errors),
            "failures": str(total.failures),
            "tests": str(total.tests),
            "time": _time(total.time),
        }
    )
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def write_junit(path: Path, decisions: list[GateDecision]) -> None:
    """Write the JUnit XML atomically."""
    atomic_write(path, build_junit(decisions))


def _suite(root: ET.Element, decision: GateDecision) -> _Counts:
    gate = decision.gate.name
    suite = ET.SubElement(root, "testsuite", name=_name(gate))
    properties = ET.SubElement(suite, "properties")

    def prop(name: str, value: str) -> None:
        ET.SubElement(properties, "property", name=_x(name), value=_x(value))

    prop("gate.verdict", str(decision.verdict))
    prop("gate.status", decision.status)
    for item in decision.criteria:
        prop(f"criterion.{item.criterion.id}.verdict", str(item.verdict))
    for item in decision.criteria:
        thresholds, overrides = criterion_thresholds(item)
        for key, text in thresholds.items():
            if key in overrides:
                text = f"{text} (overrides standard {overrides[key][0]})"
            prop(f"threshold.{item.criterion.id}.{key}", text)

    counts = _Counts()
    for item in decision.criteria:
        classname = f"{gate}.{item.criterion.id}"
        for result in item.results:
            _check_case(suite, counts, classname, result, item)
    for item in decision.criteria:
        _criterion_case(suite, counts, gate, item)
    _gate_case(suite, counts, decision)
    suite.attrib.update(
        {
            "tests": str(counts.tests),
            "failures": str(counts.failures),
            "errors": str(counts.errors),
            "skipped": str(counts.skipped),
            "time": _time(counts.time),
        }
    )
    return counts


def _case(
    suite: ET.Element, counts: _Counts, name: str, classname: str, seconds: float = 0.0
) -> ET.Element:
    counts.tests += 1
    case = ET.SubElement(suite, "testcase", name=_name(name), classname=_name(classname))
    seconds = _seconds(seconds)
    if seconds:
        case.set("time", _time(seconds))
        counts.time += seconds
    return case


def _outcome(
    case: ET.Element, counts: _Counts, tag: str, kind: str, message: str, details: str | None
) -> None:
    element = ET.SubElement(case, tag, type=_x(kind), message=_x(message))
    # the message as text too: some consumers show only the element's text
    element.text = _x(details or message)
    if tag == "failure":
        counts.failures += 1
    elif tag == "error":
        counts.errors += 1
    else:
        counts.skipped += 1


def _out(case: ET.Element, text: str) -> None:
    if text:
        ET.SubElement(case, "system-out").text = _x(text)


def _check_case(
    suite: ET.Element,
    counts: _Counts,
    classname: str,
    result: CheckResult,
    criterion: CriterionDecision,
) -> None:
    case = _case(suite, counts, result.check_id or result.nodeid, classname, result.duration)
    text = _x(result.message).strip()
    first_line = text.split("\n", 1)[0]
    # the whole message goes in the element when the attribute cannot hold it all
    details = text if "\n" in text or len(first_line) > _MESSAGE_MAX else None
    first_line = _short(first_line)
    out = _check_out(result)
    bad = result.outcome in (Outcome.FAILED, Outcome.ERROR, Outcome.INCONCLUSIVE)
    if bad and criterion.verdict in _NOT_RED:
        why = "advisory criterion" if criterion.verdict == CriterionVerdict.WARN else "waived"
        note = [f"outcome: {result.outcome} (does not fail the gate: {why}, {criterion.verdict})"]
        if text:
            note.append(f"message: {text}")
        _out(case, "\n".join([*note, out]))
        return
    if result.outcome == Outcome.FAILED:
        parts = [measure_text(key, result) for key in failing_keys(result)]
        if first_line and first_line not in parts:
            parts.append(first_line)
        _outcome(case, counts, "failure", "failure", _short("; ".join(parts)) or "check failed",
                 details)  # fmt: skip
    elif result.outcome == Outcome.ERROR:
        _outcome(case, counts, "error", "error", first_line or "check errored", details)
    elif result.outcome == Outcome.SKIPPED:
        _outcome(case, counts, "skipped", "skipped", first_line or "check skipped", details)
    elif result.outcome == Outcome.INCONCLUSIVE:
        # not proven is no pass: red, typed so that CI can tell it from a miss
        message = first_line or "check inconclusive"
        _outcome(case, counts, "failure", "inconclusive", message, details)
    _out(case, out)


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
        shown = result.support.get(key, {}).get("shown")
        if shown:
            line += f"; {shown}"
        lines.append(line)
    target = getattr(result, "target", "")
    if target:
        lines.append(f"target: {target}")
    lines.append(f"node: {result.nodeid}")
    if result.host:
        lines.append(f"host: {result.host}")
    if result.location:
        lines.append(f"location: {result.location}")
    lines += [f"[[ATTACHMENT|{_attachment(path)}]]" for path in result.evidence.values()]
    return "\n".join(lines)


def _attachment(path: str) -> str:
    """An evidence path as JUnit attachment consumers find it: relative to GitLab's
    ``$CI_PROJECT_DIR`` when under it, else as written (absolute for Jenkins)."""
    text = _name(str(path))
    project = os.environ.get("CI_PROJECT_DIR")
    if project and os.path.isabs(text) and os.path.isabs(project):
        relative = os.path.relpath(text, project)
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            text = relative
    return text.replace("]]", "] ]")  # the line must end where the path does


def _criterion_case(suite: ET.Element, counts: _Counts, gate: str, item: CriterionDecision) -> None:
    kind = "required" if item.criterion.required else "advisory"
    out = [f"verdict: {item.verdict}", f"{kind} criterion: {item.criterion.title}"]
    if item.reason:
        out.append(f"reason: {item.reason}")
    if item.waived_by:
        out.append(f"waived by: {item.waived_by}")
    case = _case(suite, counts, f"criterion:{item.criterion.id}", f"{gate}.criteria")
    if item.verdict in _FAILING_CRITERIA:
        message = item.reason or f"criterion {item.verdict}"
        _outcome(case, counts, "failure", str(item.verdict), _short(message), None)
    _out(case, "\n".join(out))


def _gate_case(suite: ET.Element, counts: _Counts, decision: GateDecision) -> None:
    out = [f"verdict: {decision.verdict}"]
    if decision.status:
        out.append(f"status: {decision.status}")
    if decision.reason:
        out.append(f"reason: {decision.reason}")
    out += [f"warning: {warning}" for warning in decision.warnings]
    name = decision.gate.name
    case = _case(suite, counts, f"gate:{name}", name)
    if decision.verdict != GateVerdict.PASSED:
        if decision.verdict == GateVerdict.HUMAN_REVIEW_REQUIRED:
            lead = "human review required"
        else:
            lead = f"gate {name} {str(decision.verdict).lower()}"
        reason = decision.reason
        if reason.lower().startswith(lead.lower()):
            message = reason  # says it already: no "human review required: human review ..."
        else:
            message = f"{lead}: {reason}" if reason else lead
        # several gate file errors: the first in the message, all of them in the element
        first, _, more = message.partition("\n")
        details = message if more else None
        _outcome(case, counts, "failure", str(decision.verdict), _short(first), details)
    _out(case, "\n".join(out))


def _x(text: str) -> str:
    """Text XML can carry: line ends as ``\\n``, forbidden characters as escapes."""
    text = str(text)
    if text.isascii():
        # the common case, decided in C: printable ASCII with line feeds and tabs
        if text.isprintable() or text.replace("\n", " ").replace("\t", " ").isprintable():
            return text
    elif _SPECIAL.search(text) is None:
        return text
    text = _LINE_ENDS.sub("\n", text)
    return _ILLEGAL.sub(
        lambda match: match[0].encode("unicode_escape", "backslashreplace").decode("ascii"), text
    )


def _name(text: str) -> str:
    """A name on one line (a CR or LF in a check id must not start a line of its own)."""
    if text.isascii() and text.isprintable():
        return text
    return " ".join(_x(text).split("\n"))


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _seconds(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


def _time(value: float) -> str:
    """A time the xunit schema accepts: digits, a point and at most three decimals."""
    return f"{_seconds(value):.3f}"
