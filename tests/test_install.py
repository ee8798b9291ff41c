"""The wheel: built from the checkout, installed into a fresh virtual environment, offline."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CATALOG_GATES = sorted(path.stem for path in (REPO / "gates").glob("*.yaml"))
TIMEOUT = 300


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.integration
def test_wheel_installs_and_ships_the_catalog(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "PIP_"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    dist = tmp_path / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(REPO),
        ],
        cwd=tmp_path,
        env=env,
    )
    [wheel] = dist.glob("pytest_fwgates-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert (
        sorted(Path(name).stem for name in names if name.startswith("pytest_fwgates/_catalog/"))
        == CATALOG_GATES
    )
    assert "pytest_fwgates/py.typed" in names

    venv = tmp_path / "venv"
    run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        cwd=tmp_path,
        env=env,
    )
    python = venv / "bin" / "python"
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=tmp_path,
            env=env,
        ).stdout.strip()
    )
    if sys.prefix != sys.base_prefix:
        # this interpreter is itself a virtual environment: its packages (pytest, pip, ...)
        # are not the system's, so the new one sees them through a path file
        paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
        (site / "running-environment.pth").write_text("".join(f"{p}\n" for p in paths))
    run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        cwd=tmp_path,
        env=env,
    )

    empty = tmp_path / "empty"
    empty.mkdir()
    where = run(
        [
            str(python),
            "-c",
            "import pytest_fwgates.loader as m; print(m.__file__); print(m.catalog_dir())",
        ],
        cwd=empty,
        env=env,
    ).stdout.splitlines()
    assert where == [
        str(site / "pytest_fwgates" / "loader.py"),
        str(site / "pytest_fwgates" / "_catalog"),
    ]

    listed = run(
        [str(python), "-m", "pytest", "--gate-list", "-p", "no:cacheprovider"], cwd=empty, env=env
    ).stdout
    lines = listed.splitlines()
    gates = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert gates == CATALOG_GATES
    criteria: dict[str, list[str]] = {}
    for line in lines:
        if line and not line.startswith(" "):
            current = criteria.setdefault(line.split()[0], [])
        elif line.startswith("  - "):
            current.append(line.split()[1])
    assert all(len(ids) >= 4 for ids in criteria.values()), criteria
    assert criteria["production-readiness"] == [
        "infrastructure-validation",
        "security-compliance",
        "performance-verification",
        "monitoring-operational",
        "rollback-capability",
    ]
    # catalog gates that carry checks are collected from the installed package
    elsewhere = tmp_path / "collect"
    elsewhere.mkdir()
    collected = run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q",
         "--gate=deployment-handoff-validation"],
        cwd=elsewhere, env=env,
    ).stdout  # fmt: skip
    assert "deployment-handoff-validation.yaml::package-integrity::package intact and signed" in (
        collected.splitlines()
    )
    # a project whose venv is inside it: catalog checks are named by the gate's file
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    inside = run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q",
         "--gate=deployment-handoff-validation", "--gate-dir=empty"],
        cwd=tmp_path, env=env,
    ).stdout  # fmt: skip
    assert "deployment-handoff-validation.yaml::package-integrity::package intact and signed" in (
        inside.splitlines()
    )
    assert "site-packages" not in inside and "_catalog" not in inside
    assert list(empty.iterdir()) == []
