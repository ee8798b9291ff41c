"""Evidence is written only where it belongs: a symbolic link or a hard link planted at any
level under ``reports/evidence`` (the file, the check's folder, the evidence folder itself)
never makes a run write outside it, and every check has a folder of its own, also when ids
differ only in characters a file name cannot keep."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.checks.base import evidence_folder_name
from pytest_fwgates.fsutil import UnsafePathError, copy_file, real_folder, write_file
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, CheckSpec, Outcome, Source

if TYPE_CHECKING:
    from conftest import GateProject

LONG_OUTPUT = "python3 -c 'print(\"evidence \" * 600)'"
VICTIM = "precious, not to be overwritten\n"


def _spec(tmp_path: Path, check_id: str = "loud") -> CheckSpec:
    loader = GateLoader([], registry=CheckRegistry(), environ={})
    spec = loader.spec_from_mapping(
        None, None, {"command": LONG_OUTPUT, "id": check_id}, Source(tmp_path / "t.py", 1)
    )
    return dataclasses.replace(spec, gate="production-readiness", criterion="infra")


def _run(spec: CheckSpec, evidence_root: Path) -> CheckResult:
    evidence_root.parent.mkdir(parents=True, exist_ok=True)
    context = CheckContext(rootdir=evidence_root.parent, evidence_root=evidence_root)
    return run_check(CheckRegistry().get(spec.type)(spec, context), "t")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the project with a file that must survive every run."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text(VICTIM)
    return folder


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert (outside / "victim.txt").read_text() == VICTIM


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_planted_as_an_evidence_file_is_replaced_not_written_through(
    tmp_path: Path, outside: Path, link: str
) -> None:
    spec = _spec(tmp_path)
    root = tmp_path / "reports" / "evidence"
    folder = root / evidence_folder_name(spec)
    folder.mkdir(parents=True)
    planted = folder / "stdout.txt"
    if link == "symlink":
        planted.symlink_to(outside / "victim.txt")
    else:
        os.link(outside / "victim.txt", planted)
    result = _run(spec, root)
    assert result.outcome is Outcome.PASSED, result.message
    written = Path(result.evidence["stdout"])
    assert written == planted and not written.is_symlink()
    assert written.read_text().startswith("evidence evidence")
    assert os.stat(written).st_nlink == 1
    _untouched(outside)


@pytest.mark.parametrize("level", ["check-folder", "evidence-folder"])
def test_a_symlink_planted_as_a_folder_is_refused(
    tmp_path: Path, outside: Path, level: str
) -> None:
    spec = _spec(tmp_path)
    root = tmp_path / "reports" / "evidence"
    if level == "check-folder":
        root.mkdir(parents=True)
        (root / evidence_folder_name(spec)).symlink_to(outside, target_is_directory=True)
    else:
        root.parent.mkdir(parents=True)
        root.symlink_to(outside, target_is_directory=True)
    result = _run(spec, root)
    assert result.outcome is Outcome.ERROR
    assert "evidence folder:" in result.message and "symbolic link" in result.message
    _untouched(outside)


def test_a_link_planted_below_the_check_folder_is_removed_with_the_earlier_evidence(
    tmp_path: Path, outside: Path
) -> None:
    spec = _spec(tmp_path)
    root = tmp_path / "reports" / "evidence"
    folder = root / evidence_folder_name(spec)
    (folder / "deeper").mkdir(parents=True)
    (folder / "deeper" / "link").symlink_to(outside, target_is_directory=True)
    (folder / "old.txt").write_text("an earlier run's evidence")
    result = _run(spec, root)
    assert result.outcome is Outcome.PASSED, result.message
    assert sorted(p.name for p in folder.iterdir()) == ["stdout.txt"]
    _untouched(outside)


def test_fsutil_refuses_links_and_writes_by_rename(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        real_folder(tmp_path, "link")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_file(tmp_path / "link" / "x.txt", "x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafePathError, match="a file"):
        real_folder(tmp_path, "file")
    target = tmp_path / "v.txt"
    target.symlink_to(outside / "victim.txt")
    write_file(target, "new")
    assert target.read_text() == "new" and not target.is_symlink()
    _untouched(outside)


def test_ids_that_differ_only_in_punctuation_have_folders_of_their_own(tmp_path: Path) -> None:
    root = tmp_path / "reports" / "evidence"
    results = [_run(_spec(tmp_path, cid), root) for cid in ("p95 < 300ms", "p95 <= 300ms")]
    first, second = (Path(r.evidence["stdout"]) for r in results)
    assert first.parent != second.parent
    assert first.is_file() and second.is_file()
    assert "p95_300ms" in first.parent.name  # still readable


_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    a=st.tuples(_TEXT, _TEXT, _TEXT, st.none() | _TEXT),
    b=st.tuples(_TEXT, _TEXT, _TEXT, st.none() | _TEXT),
)
def test_distinct_checks_have_distinct_evidence_folders(
    a: tuple[str, str, str, str | None], b: tuple[str, str, str, str | None]
) -> None:
    source = Source(Path("g.yaml"), 1)
    first, second = (
        CheckSpec("command", "true", cid, gate, criterion, source, host=host)
        for gate, criterion, cid, host in (a, b)
    )
    names = evidence_folder_name(first), evidence_folder_name(second)
    for name in names:
        assert "/" not in name and name not in ("", ".", "..") and len(name.encode()) <= 255
    if (a[0], a[1], a[2], a[3] or "") != (b[0], b[1], b[2], b[3] or ""):
        assert names[0] != names[1]


def test_a_gate_run_writes_no_evidence_through_a_planted_link(
    project: GateProject, outside: Path
) -> None:
    project.gate(
        "production-readiness",
        textwrap.dedent(
            f"""
            gate: production-readiness
            criteria:
              infrastructure-validation:
                - command: {json.dumps(LONG_OUTPUT)}
                  id: loud
            """
        ),
    )
    evidence = project.path / "reports" / "evidence"
    spec = CheckSpec(
        "command",
        LONG_OUTPUT,
        "loud",
        "production-readiness",
        "infrastructure-validation",
        Source(Path("g.yaml"), 1),
    )
    folder = evidence / evidence_folder_name(spec)  # a name anyone can compute
    folder.mkdir(parents=True)
    (folder / "stdout.txt").symlink_to(outside / "victim.txt")
    project.run("--gate=production-readiness")
    _untouched(outside)
    summary = project.summary()
    [check] = [
        c
        for gate in summary["gates"]
        for criterion in gate["criteria"]
        for c in criterion["checks"]
        if c["check"] == "loud"
    ]
    written = Path(check["evidence"]["stdout"])
    assert written == folder / "stdout.txt"
    assert written.is_file() and not written.is_symlink()


@pytest.mark.parametrize("swapped", ["evidence-folder", "reports-folder"])
def test_a_folder_swapped_for_a_link_after_it_was_made_is_refused(
    tmp_path: Path, outside: Path, swapped: str
) -> None:
    """Between making a check's folder and writing into it, a folder above it is replaced by
    a link to one that holds a folder of the same name: the write is refused, nothing is
    written there."""
    reports = tmp_path / "reports"
    reports.mkdir()
    folder = real_folder(real_folder(reports, "evidence"), "check-1")
    write_file(folder / "before.txt", "x")
    moved = reports / "evidence" if swapped == "evidence-folder" else reports
    (outside / "check-1").mkdir(parents=True)
    if swapped == "reports-folder":
        (outside / "check-1").rmdir()
        (outside / "evidence" / "check-1").mkdir(parents=True)
    moved.rename(moved.with_name(moved.name + ".real"))
    moved.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="replaced"):
        write_file(folder / "stdout.txt", "evidence")
    source = tmp_path / "victim-copy.txt"
    source.write_text("x")
    with pytest.raises(UnsafePathError, match="replaced"):
        copy_file(source, folder / "copy.txt")
    assert sorted(p.name for p in outside.rglob("*") if p.is_file()) == ["victim.txt"]
