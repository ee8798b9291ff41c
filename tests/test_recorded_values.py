"""Values marked Python tests record are held to their standards wherever they were recorded.

Every way a value can be recorded (the test body, a thread whose failure nobody sees, a
fixture's setup or teardown, a thread that outlives the test) crossed with what the value is
(meets its standard, misses it, a figure a check type owns, held to a relative standard that
no baseline can decide): the criterion passes only where the value was recorded in time and
meets an absolute standard.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

GATE = """
gate: release
criteria:
  speed:
    title: Pages are fast
    thresholds:
      page_load_ms: "{standard}"
  monitoring:
    title: Targets are scraped
    thresholds:
      targets_up: ">= 1"
  other:
    title: Keeps the run open
"""

TESTS = """
import threading

import pytest

WAY, KEY, VALUE = {way!r}, {key!r}, {value!r}
RECORDED = threading.Event()
NEXT_TEST = threading.Event()


@pytest.fixture
def recorded(gate_record):
    if WAY == "fixture-setup":
        gate_record(KEY, VALUE)
    yield
    if WAY == "fixture-teardown":
        gate_record(KEY, VALUE)


@pytest.mark.gate("release", criterion={criterion!r})
def test_records(recorded, gate_record):
    def record():
        try:
            gate_record(KEY, VALUE)
        finally:
            RECORDED.set()

    if WAY == "body":
        gate_record(KEY, VALUE)
    elif WAY == "thread":  # its failure stays in the thread
        thread = threading.Thread(target=record)
        thread.start()
        thread.join()
    elif WAY == "late-thread":  # records once the test is over
        def later():
            NEXT_TEST.wait(30)  # the test is over: the next one has started
            record()

        threading.Thread(target=later, daemon=True).start()


@pytest.mark.gate("release", criterion="other")
def test_zz_after():
    NEXT_TEST.set()
    if WAY == "late-thread":
        assert RECORDED.wait(30)
"""

WAYS = ["body", "thread", "fixture-setup", "fixture-teardown", "late-thread"]


def run(project: GateProject, way: str, key: str, value: float, standard: str) -> dict[str, str]:
    project.gate("release", GATE.format(standard=standard))
    criterion = "monitoring" if key == "targets_up" else "speed"
    project.pytester.makepyfile(
        test_values=textwrap.dedent(TESTS).format(
            way=way, key=key, value=value, criterion=criterion
        )
    )
    project.run("--gate", "release", "-p", "no:randomly")
    return {c: project.criterion("release", c)["verdict"] for c in ("speed", "monitoring")}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    ("key", "value", "standard", "verdict"),
    [
        ("page_load_ms", 212.0, "< 300ms", "PASS"),
        ("page_load_ms", 412.0, "< 300ms", "FAIL"),
        # relative to a baseline the test cannot have: undecided, never a pass
        ("page_load_ms", 212.0, "<= +10%", "NOT_EVALUATED"),
        # a figure only prometheus checks measure: refused
        ("targets_up", 5.0, "< 300ms", "FAIL"),
    ],
    ids=["meets", "misses", "relative", "owned"],
)
def test_a_recorded_value_counts_only_when_recorded_in_time_and_meeting_its_standard(
    project: GateProject, way: str, key: str, value: float, standard: str, verdict: str
) -> None:
    verdicts = run(project, way, key, value, standard)
    criterion = "monitoring" if key == "targets_up" else "speed"
    expected = "FAIL" if way == "late-thread" else verdict
    assert verdicts[criterion] == expected, project.criterion("release", criterion)["reason"]


def test_a_value_recorded_after_the_test_is_named_in_the_reason(project: GateProject) -> None:
    run(project, "late-thread", "page_load_ms", 212.0, "< 300ms")
    reason = project.criterion("release", "speed")["reason"]
    assert "gate_record(page_load_ms) came after the test ended" in reason


def test_an_owned_figure_is_refused_with_its_owners(project: GateProject) -> None:
    run(project, "thread", "targets_up", 5.0, "< 300ms")
    monitoring = project.criterion("release", "monitoring")
    assert "targets_up is evidence only a check measures (prometheus)" in monitoring["reason"]
    [check] = monitoring["checks"]
    assert check["measured"] == {}


def test_under_xdist_a_late_or_swallowed_value_still_counts(project: GateProject) -> None:
    for way, verdict in (("thread", "FAIL"), ("late-thread", "FAIL")):
        project.gate("release", GATE.format(standard="< 300ms"))
        project.pytester.makepyfile(
            test_values=textwrap.dedent(TESTS).format(
                way=way, key="page_load_ms", value=412.0 if way == "thread" else 1.0,
                criterion="speed",
            )
        )  # fmt: skip
        project.run_subprocess("--gate", "release", "-p", "no:randomly", "-n", "1")
        assert project.criterion("release", "speed")["verdict"] == verdict, way
