"""The ``fwgates`` command: schema, list, check."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pytest_fwgates.cli import main

REPO = Path(__file__).resolve().parent.parent
CATALOG_FILES = sorted((REPO / "gates").glob("*.yaml"))
EXAMPLE_FILES = sorted((REPO / "examples" / "gates").glob("*.yaml"))
CATALOG_GATES = [path.stem for path in CATALOG_FILES]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def test_schema_is_a_valid_json_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["gate"]


def test_catalog_has_the_eight_gates() -> None:
    assert CATALOG_GATES == [
        "deployment-handoff-validation",
        "development-handoff-validation",
        "operations-excellence",
        "operations-handoff",
        "predictive-operations",
        "production-readiness",
        "security-compliance",
        "zero-downtime-deployment",
    ]
    assert EXAMPLE_FILES, "the example gate file is missing"


@pytest.mark.parametrize(
    "path", CATALOG_FILES + EXAMPLE_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}"
)
def test_schema_accepts_catalog_and_example_files(schema: dict[str, Any], path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)


@pytest.mark.parametrize(
    "document",
    [
        {"gate": "x", "criteria": {"a": [{"comand": "true"}]}},
        {"gate": "x", "criteria": {"a": [{"command": "true", "expect": {"p95": "< 1"}}]}},
        {"gate": "x", "criterias": {}},
        {"gate": "Bad Name"},
        {"criteria": {}},
    ],
    ids=["check-type", "expect-key", "top-key", "name", "no-gate"],
)
def test_schema_rejects_bad_files(schema: dict[str, Any], document: dict[str, Any]) -> None:
    assert not jsonschema.Draft202012Validator(schema).is_valid(document)


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "list", "--gate-dir", str(REPO / "examples" / "gates"))
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert listed == CATALOG_GATES
    assert "  - rollback-capability        required  Automated rollback is tested and works" in out
    assert "examples/gates/production-readiness.yaml]" in out


def test_check_loads_every_gate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(
        capsys, "check", "--gate-dir", str(REPO / "examples" / "gates"), "--gate-dir", str(tmp_path)
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "deployment-handoff-validation: ok (4 criteria, 4 checks)"
    assert [line.split(":")[0] for line in out.splitlines()] == CATALOG_GATES
    assert any(
        line.startswith("production-readiness: ok (5 criteria, ") and "0 checks" not in line
        for line in out.splitlines()
    )


@pytest.mark.parametrize("command", ["list", "check"])
def test_a_gate_dir_that_is_not_a_folder_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """As for pytest --gate-dir: a mistyped folder (or a file) is one line, exit 2, not an
    "ok" over the catalog alone."""
    (tmp_path / "file.yaml").write_text("gate: x\n")
    for folder in (tmp_path / "gatez", tmp_path / "file.yaml", tmp_path / ("a" * 5000)):
        code, out, err = run_cli(capsys, command, "--gate-dir", str(folder))
        assert (code, out) == (2, "")
        assert err == f"fwgates {command}: --gate-dir {folder}: no such folder\n"


def test_check_reports_broken_and_unknown_gates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "release.yaml").write_text(
        "gate: release\ncriteria:\n  build:\n    - command: true\n      expect: {p95: 1}\n"
    )
    code, out, err = run_cli(
        capsys, "check", "--gate-dir", str(tmp_path), "release", "production-readines"
    )
    assert code == 1
    assert out == ""
    broken, unknown = err.splitlines()
    assert broken.startswith(f"{tmp_path / 'release.yaml'}:5: expect: unknown key 'p95' (allowed: ")
    assert unknown == (
        "fwgates: unknown gate 'production-readines' (did you mean 'production-readiness'?); "
        "known gates: " + ", ".join(sorted([*CATALOG_GATES, "release"]))
    )


def test_command_line_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_fwgates.cli", "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line and line[0] != " "] == [
        f"{name}  (phase {phase}, earns {status})" if status else f"{name}  (phase {phase})"
        for name, phase, status in [
            ("deployment-handoff-validation", "8", "OPERATIONS_HANDOFF_READY"),
            ("development-handoff-validation", "7", ""),
            ("operations-excellence", "8", "EXCELLENCE_ACHIEVED"),
            ("operations-handoff", "7->8", "OPERATIONS_HANDOFF_READY"),
            ("predictive-operations", "8", "EXCELLENCE_ACHIEVED"),
            ("production-readiness", "7", "PRODUCTION_READY"),
            ("security-compliance", "7", "PRODUCTION_READY"),
            ("zero-downtime-deployment", "7", "PRODUCTION_READY"),
        ]
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest_fwgates.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "pytest-fwgates 0.1.0")


@pytest.mark.parametrize(
    "argv",
    [["schema"], ["list", "--gate-dir", "examples/gates"], ["--help"], ["init", "--help"]],
)
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(argv: list[str]) -> None:
    """`fwgates schema | head -1`: no BrokenPipeError traceback, whatever the command."""
    fwgates = Path(sys.executable).with_name("fwgates")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        writer = subprocess.run(
            [str(fwgates), *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert writer.stderr == b"", writer.stderr.decode()
    assert writer.returncode in (0, 141)
