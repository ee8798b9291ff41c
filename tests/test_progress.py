"""The progress file: only the marked block changes; the progress check reads phase statuses."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.progress import BEGIN, END, ProgressError, read_phase, update_progress

if TYPE_CHECKING:
    from conftest import GateProject

DATA = Path(__file__).parent / "data" / "junit"

BEFORE = (
    "# Framework progress\r\n\r\n"
    "Phase 6: COMPLETE (approved by Jane Doe, 2026-11-20)\r\n"
    "Notes with odd bytes: \xff\xfe and trailing spaces   \r\n"
).encode("latin-1")
AFTER = b"\r\n## Later notes\r\nkept as they are\r\n"


def block_of(raw: bytes) -> bytes:
    start = raw.index(BEGIN.encode())
    return raw[start : raw.index(END.encode()) + len(END)]


def test_block_added_at_the_end_and_the_rest_kept(project: GateProject) -> None:
    project.production_ready()
    progress = project.path / ".ai_context" / "framework_progress.md"
    progress.parent.mkdir()
    progress.write_bytes(BEFORE)
    result = project.run("--gate=production-readiness")  # the default file, as it exists
    assert result.ret == 0
    raw = progress.read_bytes()
    assert raw.startswith(BEFORE)
    block = block_of(raw).decode()
    assert "| 7 | PRODUCTION_READY | production-readiness |" in block
    assert "| production-readiness | 7 | PASSED | PRODUCTION_READY |" in block
    assert "\r\n" in block  # the file's own line ends
    result.stdout.fnmatch_lines([f"gate report: {progress}"])


def test_block_rewritten_in_place_and_the_rest_byte_for_byte(project: GateProject) -> None:
    project.production_ready()
    progress = project.path / "progress.md"
    progress.write_bytes(BEFORE + f"{BEGIN}\r\nold block\r\n{END}".encode() + AFTER)
    assert project.run("--gate=production-readiness", "--gate-progress=progress.md").ret == 0
    first = progress.read_bytes()
    assert first.startswith(BEFORE + BEGIN.encode()) and first.endswith(END.encode() + AFTER)
    assert b"old block" not in first
    # a failing run of another gate is added; the earlier gate's row stays
    project.gate(
        "security-compliance",
        """
        gate: security-compliance
        criteria:
          security-scanning: [{command: "false"}]
        """,
    )
    result = project.run("--gate=security-compliance", "--gate-progress=progress.md")
    assert result.ret == 1
    second = progress.read_bytes()
    assert second.startswith(BEFORE) and second.endswith(AFTER)
    block = block_of(second).decode()
    assert "| production-readiness | 7 | PASSED |" in block
    assert "| security-compliance | 7 | FAILED |" in block
    assert "| 7 | GATE_FAILED | security-compliance |" in block
    data = json.loads(block.split("fwgates:data ", 1)[1].split(" -->", 1)[0])
    assert set(data["gates"]) == {"production-readiness", "security-compliance"}


def test_progress_records_the_package_path(project: GateProject) -> None:
    project.production_ready()
    result = project.run(
        "--gate=production-readiness", "--gate-progress=p.md", "--handoff-package=out/pkg"
    )
    assert result.ret == 0
    assert f"| {project.path / 'out' / 'pkg'} |" in (project.path / "p.md").read_text()


def test_an_unclosed_block_is_an_error_and_the_file_is_kept(project: GateProject) -> None:
    project.production_ready()
    progress = project.path / "progress.md"
    text = f"# notes\n{BEGIN}\nhalf a block\n"
    progress.write_text(text)
    result = project.run("--gate=production-readiness", "--gate-progress=progress.md")
    assert result.ret == 1  # the verdict passed, but what was asked for was not done
    result.stdout.fnmatch_lines([f"progress file not updated: {progress}:2: *without*"])
    assert progress.read_text() == text


def test_update_is_atomic_on_error(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text(f"{END}\n")
    with pytest.raises(ProgressError, match="without"):
        update_progress(path, [], time="now")
    assert path.read_text() == f"{END}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.md"]


@pytest.mark.parametrize(
    ("text", "status", "approved"),
    [
        ("Phase 6: COMPLETE (approved by Jane Doe, 2026-11-20)\n", "COMPLETE", "Jane Doe"),
        ("| Phase 6 | COMPLETED | approved by: Ops Lead |\n", "COMPLETED", "Ops Lead"),
        ("### Phase 6 — Status: IN_PROGRESS\n", "IN_PROGRESS", None),
        ("- Phase 6: DONE\n  approved by Sam Roe on 2026-11-21\n", "DONE", "Sam Roe"),
        ("Phase 60: COMPLETE\nPhase 6: HUMAN_REVIEW_REQUIRED\n", "HUMAN_REVIEW_REQUIRED", None),
    ],
)
def test_read_phase_lines(tmp_path: Path, text: str, status: str, approved: str | None) -> None:
    path = tmp_path / "p.md"
    path.write_text(text)
    found = read_phase(path, "6")
    assert found is not None
    assert (found.status, found.approved_by) == (status, approved)


def test_read_phase_from_the_block(project: GateProject) -> None:
    project.production_ready()
    project.run("--gate=production-readiness", "--gate-progress=p.md")
    found = read_phase(project.path / "p.md", "7")
    assert found is not None and found.status == "PRODUCTION_READY"
    assert read_phase(project.path / "p.md", "5") is None


# -- the phase-7 start: development-handoff-validation -------------------------------------
PHASE_7 = """
gate: development-handoff-validation
criteria:
  deliverables-present:
    - file: development-handoff/specification.md
      id: specification present
      expect: {type: file, size: ">= 1"}
"""


def development_project(project: GateProject, progress: str) -> None:
    project.gate("development-handoff-validation", PHASE_7)
    package = project.path / "development-handoff"
    (package / "tests").mkdir(parents=True)
    shutil.copy(DATA / "gotestsum.xml", package / "tests" / "go.xml")
    # Jest's results without their skipped test: the catalog standard allows no skip
    jest = (DATA / "jest-junit.xml").read_text()
    skipped = jest.index('    <testcase classname="cart applies a coupon"')
    jest = jest[:skipped] + jest[jest.index("</testcase>", skipped) + len("</testcase>\n") :]
    (package / "tests" / "web.xml").write_text(
        jest.replace('skipped="1"', 'skipped="0"')
        .replace('tests="3"', 'tests="2"')
        .replace('tests="4"', 'tests="3"')  # the totals of <testsuites> count too
    )
    (package / "specification.md").write_text("# Specification\n")
    (project.path / ".ai_context").mkdir()
    (project.path / ".ai_context" / "framework_progress.md").write_text(textwrap.dedent(progress))


def test_development_handoff_passes_with_phase_6_approved(project: GateProject) -> None:
    development_project(
        project,
        """
        # Progress
        - Phase 5: COMPLETE
        - Phase 6: COMPLETE (approved by Jane Doe, 2026-11-20)
        """,
    )
    result = project.run("--gate=development-handoff-validation")
    assert result.ret == 0, result.stdout.str()
    assert project.criteria("development-handoff-validation") == {
        "development-complete": "PASS",
        "human-approval": "PASS",
        "tests-passed": "PASS",
        "deliverables-present": "PASS",
    }
    tests = project.criterion("development-handoff-validation", "tests-passed")["checks"][0]
    assert tests["measured"]["tests"] == 6 and tests["measured"]["files"] == 2


@pytest.mark.parametrize(
    "results", ["googletest-all-disabled.xml", "jest-junit.xml", "ant-TESTS-TestSuites.xml"]
)
def test_development_handoff_fails_on_skipped_disabled_or_unloaded_tests(
    project: GateProject, results: str
) -> None:
    """Test results whose tests were all disabled, one skipped, or a class that did not
    load: tests-passed fails (its standard: passed >= 1, nothing skipped, no error)."""
    development_project(
        project,
        """
        - Phase 6: COMPLETE (approved by Jane Doe, 2026-11-20)
        """,
    )
    tests = project.path / "development-handoff" / "tests"
    for old in tests.iterdir():
        old.unlink()
    shutil.copy(DATA / results, tests / results)
    result = project.run("--gate=development-handoff-validation")
    assert result.ret == 1, result.stdout.str()
    assert project.criteria("development-handoff-validation")["tests-passed"] == "FAIL"


def test_development_handoff_fails_without_approval_or_completion(project: GateProject) -> None:
    development_project(project, "Phase 6: IN_PROGRESS\n")
    result = project.run("--gate=development-handoff-validation")
    assert result.ret == 1
    criteria = project.criteria("development-handoff-validation")
    assert criteria["development-complete"] == "FAIL"
    assert criteria["human-approval"] == "FAIL"
    message = project.criterion("development-handoff-validation", "human-approval")["checks"][0]
    assert "framework_progress.md:1: phase 6 is IN_PROGRESS" in message["message"]
    assert "names no approval" in message["message"]


def test_progress_file_silent_about_the_phase_is_an_error(project: GateProject) -> None:
    development_project(project, "# nothing yet\n")
    project.run("--gate=development-handoff-validation")
    check = project.criterion("development-handoff-validation", "development-complete")["checks"][0]
    assert check["outcome"] == "error"
    assert "says nothing about the status of phase 6" in check["message"]
