"""Every required catalog criterion demands evidence only the right check type gives.

For each catalog gate and each of its required criteria (but an included gate's verdict), a
team gate that adds nothing but ``command: "true"`` never passes it, and neither does a marked
Python test that records each figure the criterion's standards and ``measures:`` name with
``gate_record``: a command measures only exit_status and duration_s, and a test cannot record
a figure a check type owns.
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.loader import GateLoader
from pytest_fwgates.owners import BUILTIN_OWNERS

if TYPE_CHECKING:
    from conftest import GateProject


def _required_criteria() -> list[tuple[str, str, list[str]]]:
    loader = GateLoader([])
    cases = []
    for name in loader.known():
        for criterion in loader.load(name).criteria.values():
            if criterion.required and criterion.include is None:
                figures = [*criterion.standards]
                figures += [key for entry in criterion.measures for key in entry.split("|")]
                cases.append((name, criterion.id, sorted(set(figures))))
    return cases


CASES = _required_criteria()


def test_every_required_catalog_criterion_names_only_owned_figures() -> None:
    """A standard or ``measures:`` entry on a free figure could be carried by gate_record.

    Criteria whose catalog file brings its own checks (a handoff or progress check) may name
    no figure: the catalog's check runs and must pass whatever the team adds.
    """
    loader = GateLoader([])
    for name, cid, figures in CASES:
        free = [key for key in figures if key not in BUILTIN_OWNERS]
        assert not free, f"{name}/{cid}: {free} measured by any test"
        if not figures:
            assert loader.load(name).criteria[cid].checks, f"{name}/{cid}: no typed evidence"


def _gate(name: str, cid: str) -> str:
    return textwrap.dedent(
        f"""
        gate: {name}
        criteria:
          {cid}:
            - command: "true"
              id: shell says yes
        """
    )


def _records(name: str, cid: str, figures: list[str]) -> str:
    return textwrap.dedent(
        f"""
        import pytest


        @pytest.mark.gate({name!r}, criterion={cid!r})
        @pytest.mark.parametrize("key", {figures!r})
        def test_record(gate_record, key):
            gate_record(key, 0)
        """
    )


@pytest.mark.parametrize(
    ("name", "cid", "figures"), CASES, ids=[f"{name}/{cid}" for name, cid, _ in CASES]
)
@pytest.mark.parametrize("recorded", [False, True], ids=["command", "command+gate_record"])
def test_a_command_or_recorded_figures_never_pass_a_catalog_criterion(
    project: GateProject, name: str, cid: str, figures: list[str], recorded: bool
) -> None:
    project.gate(name, _gate(name, cid))
    if recorded and figures:
        project.pytester.makepyfile(test_records=_records(name, cid, figures))
    project.run(f"--gate={name}")
    summary = json.loads((project.path / "reports" / "summary.json").read_text())
    gate = next(g for g in summary["gates"] if g["name"] == name)
    criterion = next(c for c in gate["criteria"] if c["id"] == cid)
    assert criterion["verdict"] in ("NOT_EVALUATED", "FAIL"), criterion
    assert gate["verdict"] != "PASSED"
    if recorded and figures:
        # every record was refused: an owned figure comes only from its check type
        assert criterion["verdict"] == "FAIL", criterion


#: (gate, criterion, a real check of a type that owns the demanded figure)
REAL = [
    ("deployment-handoff-validation", "production-answers", "http: ${env:FWGATES_TEST_HEALTH}"),
    ("operations-handoff", "production-deployment", "http: ${env:FWGATES_TEST_HEALTH}"),
    ("operations-handoff", "security-controls", "file: /etc"),
    ("operations-handoff", "operations-documentation", "file: /etc"),
    ("operations-handoff", "handoff-deliverables", "file: /etc"),
    ("development-handoff-validation", "deliverables-present", "file: /etc"),
    ("production-readiness", "security-compliance", "file: /etc"),
]


@pytest.mark.parametrize(("name", "cid", "check"), REAL, ids=[f"{n}/{c}" for n, c, _ in REAL])
def test_the_right_real_check_still_passes_the_criterion(
    project: GateProject, name: str, cid: str, check: str
) -> None:
    project.gate(name, f"gate: {name}\ncriteria:\n  {cid}:\n    - {check}\n")
    project.run(f"--gate={name}")
    assert project.criterion(name, cid)["verdict"] == "PASS"
