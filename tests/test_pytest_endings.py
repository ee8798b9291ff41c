"""pytest's own outputs agree with the gate over every ending of an item's evidence: a
recorded value that passes its criterion, is INCONCLUSIVE or fails it (also one recorded
after the test's call, in a fixture's teardown), a criterion no check measured, a waiver,
a criterion marked for human review; for a YAML check and a marked Python test, serially
and under pytest-xdist. pytest's terminal summary line, its ``--junitxml`` and the gate's
reports all say what the exit status says: an item whose evidence does not pass is no pass
in pytest, and a gate that did not pass never ends in an all-green summary line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import defusedxml.ElementTree as SafeET
import pytest

from pytest_fwgates.model import EXIT_FAILED, EXIT_HUMAN_REVIEW, EXIT_INCONCLUSIVE, EXIT_PASSED

if TYPE_CHECKING:
    from conftest import GateProject

#: a gate per ending: criterion ``yaml`` holds a YAML check, criterion ``python`` a marked
#: test; each holds its share of good events to ``>= 99 %`` on the counts behind it
GATE = """
gate: {name}
criteria:
  yaml:
    title: Deliveries arrive
    thresholds: {{availability_pct: ">= 99%"}}{extra}
    checks:
      - stand_in: {{availability_pct: {yaml}}}
        id: deliveries-of-{name}
  python:
    title: Changes are approved
    thresholds: {{approved_pct: ">= 99%"}}{extra}
"""
TEST = """
import pytest


@pytest.fixture
def counted(gate_record):
    yield
    {after}


@pytest.mark.gate("{gate}", criterion="python")
def test_{ident}(gate_record, gate_check, counted):
    {body}
"""
WAIVER = """
  - gate: {gate}
    criterion: {criterion}
    justification: the approval tool moves next sprint
    approved_by: release-lead
    expires: 2099-12-31
"""
PROVEN = (1000, 1000)  # a lower bound of about 99.7 % at 95 % confidence
UNPROVEN = (100, 100)  # 100 %, but a lower bound of about 97 %
MISSED = (50, 100)


def record(counts: tuple[int, int]) -> str:
    return f'gate_record("approved_pct", counts={counts})'


@dataclass
class Ending:
    yaml: tuple[int, int]
    #: the marked test's body, and what its fixture does after it
    body: str
    verdict: str
    exit: int
    #: pytest's JUnit of the (YAML, Python) items: passed, failure, error or xfail
    junit: tuple[str, str]
    #: pytest's summary line, without the gate's part
    line: dict[str, int]
    after: str = "pass"
    extra: str = ""
    waived: bool = False
    #: what the gate's reports say of the two criteria
    criteria: dict[str, str] = field(default_factory=dict)


ENDINGS = {
    "pass": Ending(
        PROVEN, record(PROVEN), "PASSED", EXIT_PASSED, ("passed", "passed"), {"passed": 2}
    ),
    "inconclusive": Ending(
        UNPROVEN,
        record(UNPROVEN),
        "INCONCLUSIVE",
        EXIT_INCONCLUSIVE,
        ("failure", "failure"),
        {"inconclusive": 2},
    ),
    # measured by a check for the test: gate_check returns an INCONCLUSIVE result
    "inconclusive-gate-check": Ending(
        UNPROVEN,
        f'gate_check("stand_in", {{"approved_pct": {list(UNPROVEN)}}})',
        "INCONCLUSIVE",
        EXIT_INCONCLUSIVE,
        ("failure", "failure"),
        {"inconclusive": 2},
    ),
    # recorded after the call: judged at the test's teardown report
    "inconclusive-in-teardown": Ending(
        UNPROVEN,
        "pass",
        "INCONCLUSIVE",
        EXIT_INCONCLUSIVE,
        ("failure", "error"),
        {"passed": 1, "inconclusive": 2},
        after=record(UNPROVEN),
    ),
    "fail": Ending(
        MISSED, record(MISSED), "FAILED", EXIT_FAILED, ("failure", "failure"), {"failed": 2}
    ),
    # the marked test records nothing: no check measured its criterion's standard
    "not-evaluated": Ending(
        PROVEN,
        "pass",
        "FAILED",
        EXIT_FAILED,
        ("passed", "passed"),
        {"passed": 2},
        criteria={"yaml": "PASS", "python": "NOT_EVALUATED"},
    ),
    "waived": Ending(
        UNPROVEN,
        record(UNPROVEN),
        "HUMAN_REVIEW_REQUIRED",
        EXIT_HUMAN_REVIEW,
        ("xfail", "xfail"),
        {"xfailed": 2},
        waived=True,
        criteria={"yaml": "WAIVED", "python": "WAIVED"},
    ),
    "review": Ending(
        PROVEN,
        record(PROVEN),
        "HUMAN_REVIEW_REQUIRED",
        EXIT_HUMAN_REVIEW,
        ("passed", "passed"),
        {"passed": 2},
        extra="\n    human_review: true",
        criteria={"yaml": "PASS", "python": "PASS"},
    ),
}
_CRITERION = {"PASSED": "PASS", "INCONCLUSIVE": "INCONCLUSIVE", "FAILED": "FAIL"}


def build(project: GateProject, names: list[str]) -> list[str]:
    """Gate ``g-NAME`` and its marked test for each ending; the options that run them."""
    project.stand_in()
    args: list[str] = []
    waivers: list[str] = []
    for name in names:
        ending, gate, ident = ENDINGS[name], f"g-{name}", name.replace("-", "_")
        project.gate(gate, GATE.format(name=gate, extra=ending.extra, yaml=list(ending.yaml)))
        test = TEST.format(gate=gate, ident=ident, body=ending.body, after=ending.after)
        project.pytester.makepyfile(**{f"test_{ident}": test})
        if ending.waived:
            waivers += [WAIVER.format(gate=gate, criterion=c) for c in ("yaml", "python")]
        args += ["--gate", gate]
    if waivers:
        project.waivers("waivers:" + "".join(waivers))
        args += ["--gate-waivers", "waivers.yaml"]
    return [*args, "--junitxml", "pytest.xml", "--color=yes"]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_COLOURS = {"31": "red", "32": "green", "33": "yellow"}


def summary_line(result: pytest.RunResult) -> tuple[dict[str, int], str]:
    """pytest's last line: its counts by category, and its colour."""
    line = next(x for x in reversed(result.outlines) if " in " in _ANSI.sub("", x))
    colour = _COLOURS[re.match(r"\x1b\[(\d+)m", line).group(1)]  # type: ignore[union-attr]
    text = _ANSI.sub("", line).strip("= ").rsplit(" in ", 1)[0]
    counts = {}
    for part in text.split(", "):
        number, category = part.split(" ", 1)
        counts[category] = int(number)
    return counts, colour


def junit(project: GateProject) -> dict[str, tuple[str, str]]:
    """pytest's own JUnit: test case name -> (its ending, its message)."""
    cases = {}
    for case in SafeET.parse(str(project.path / "pytest.xml")).getroot().iter("testcase"):
        ending, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                ending = child.tag
                if child.tag == "skipped" and child.get("type") == "pytest.xfail":
                    ending = "xfail"
                message = child.get("message") or ""
        cases[case.get("name", "")] = (ending, message)
    return cases


def agrees(project: GateProject, result: pytest.RunResult, names: list[str]) -> dict[str, Any]:
    """What pytest showed agrees with the gate's reports and with the exit status."""
    verdicts = project.verdicts()
    counts, colour = summary_line(result)
    cases = junit(project)
    ended = {v for v in verdicts.values() if v != "PASSED"}
    # the exit status, the summary line and pytest's JUnit name every gate that did not pass
    assert (result.ret == EXIT_PASSED) == (not ended)
    assert (colour == "green") == (not ended), (colour, counts)
    for verdict in ended:
        assert counts.pop(f"gate {verdict}") == sum(v == verdict for v in verdicts.values())
    for gate, verdict in verdicts.items():
        ending, message = cases.pop(gate, ("passed", ""))
        expected = {"PASSED": "passed", "HUMAN_REVIEW_REQUIRED": "skipped"}.get(verdict, "failure")
        assert ending == expected, (gate, ending, message)
        assert verdict == "PASSED" or f"gate {gate} {verdict}: " in message
    for name in names:
        ending = ENDINGS[name]
        assert verdicts[f"g-{name}"] == ending.verdict
        criteria = project.criteria(f"g-{name}")
        default = _CRITERION.get(ending.verdict)
        assert criteria == (ending.criteria or {"yaml": default, "python": default}), name
        ident = name.replace("-", "_")
        items = (f"deliveries-of-g-{name}", f"test_{ident}")
        for case, expected in zip(items, ending.junit, strict=True):
            junit_ending, message = cases.pop(case)
            assert junit_ending == expected, (name, case, message)
            if ending.verdict == "INCONCLUSIVE":
                assert "INCONCLUSIVE: " in message and "97.04 %" in message, message
    assert not cases
    return counts


@pytest.mark.parametrize("name", ENDINGS)
def test_pytest_says_what_the_gate_says(project: GateProject, name: str) -> None:
    result = project.run(*build(project, [name]))
    ending = ENDINGS[name]
    assert result.ret == ending.exit
    assert agrees(project, result, [name]) == ending.line
    if ending.verdict == "INCONCLUSIVE":
        # why, in pytest's own words too: the line of each INCONCLUSIVE item
        ident = name.replace("-", "_")
        result.stdout.fnmatch_lines(
            [
                f"*INCONCLUSIVE gates/g-{name}.yaml::yaml::deliveries-of-g-{name} - "
                "availability_pct 100/100 events counted: >= 97.04 %*",
                f"*INCONCLUSIVE test_{ident}.py::test_{ident} - g-{name}/python: *97.04 %*",
            ]
        )
    if name == "not-evaluated":
        # what is missing, in pytest's JUnit and terminal
        [message] = [m for case, (_, m) in junit(project).items() if case == "g-not-evaluated"]
        assert "python: standard not measured by any check: approved_pct >= 99%" in message


def test_serially_and_under_xdist_alike(project: GateProject) -> None:
    """Every ending at once: each item is judged where it runs (a worker), each gate where
    the verdict is made (the controller), and pytest's outputs agree either way."""
    names = list(ENDINGS)
    args = build(project, names)
    serial = project.run(*args)
    seen = agrees(project, serial, names)
    serial_cases = junit(project)
    parallel = project.run_subprocess(*args, "-n", "2", timeout=120)
    assert parallel.ret == serial.ret == EXIT_FAILED
    assert agrees(project, parallel, names) == seen
    assert {k: v[0] for k, v in junit(project).items()} == {
        k: v[0] for k, v in serial_cases.items()
    }
