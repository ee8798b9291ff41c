"""No file the plugin writes ever replaces a device, a FIFO or a socket, and no file it reads
can hold the run by being one.

A rename over a path replaces whatever stands there with a regular file: given ``/dev/null``
as a report, progress or key path, a run as root would put a regular file in place of the
system's null device. Every writer goes through ``fsutil``, which refuses such a target. A
plain ``open`` of a FIFO waits for a writer forever: every file a user names is read through
``fsutil.read_regular``, which never waits.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.fsutil import (
    UnsafePathError,
    atomic_write,
    atomic_write_all,
    read_regular,
    write_file,
)

if TYPE_CHECKING:
    from conftest import GateProject

KINDS = ["char-device", "fifo", "socket"]


def _make(kind: str, path: Path) -> Iterator[Path]:
    if kind == "char-device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root (CI runs as root)")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a null device of our own
        yield path
    elif kind == "fifo":
        os.mkfifo(path)
        yield path
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        try:
            yield path
        finally:
            server.close()


@pytest.fixture(params=KINDS)
def special(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    yield from _make(request.param, tmp_path / "special")


def _same_kind(path: Path, before: os.stat_result) -> bool:
    after = os.lstat(path)
    return stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and (
        after.st_ino == before.st_ino
    )


WRITERS: dict[str, Callable[[Path], object]] = {
    "atomic_write": lambda p: atomic_write(p, "x"),
    "atomic_write_all": lambda p: atomic_write_all([(p.with_name("other"), "y"), (p, "x")]),
    "write_file": lambda p: write_file(p, "x"),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_no_writer_replaces_a_special_file(writer: str, special: Path) -> None:
    before = os.lstat(special)
    with pytest.raises(UnsafePathError, match="exists and is a"):
        WRITERS[writer](special)
    assert _same_kind(special, before)
    assert not [p for p in special.parent.iterdir() if p.name.endswith(".tmp")]
    assert not special.with_name("other").exists()  # all or none


def test_the_system_null_device_is_never_replaced() -> None:
    """The real ``/dev/null``: refused before anything is written."""
    before = os.lstat("/dev/null")
    for write in WRITERS.values():
        with pytest.raises(UnsafePathError, match="/dev/null: exists and is a device"):
            write(Path("/dev/null"))
    assert _same_kind(Path("/dev/null"), before)


def test_reading_a_special_file_never_waits(special: Path) -> None:
    with pytest.raises(OSError):
        read_regular(special)
    assert read_regular(Path(__file__), 10)[:3] == b'"""'
    assert len(read_regular(Path(__file__), 10)) == 11  # one more than the limit: too large


@pytest.mark.parametrize(
    "option", ["--gate-progress", "--gate-junit", "--gate-waivers", "--handoff-sign-key"]
)
def test_a_gate_run_leaves_a_special_file_in_place(
    project: GateProject, special: Path, option: str
) -> None:
    project.production_ready()
    before = os.lstat(special)
    extra = ["--handoff-package=reports/handoff"] if option == "--handoff-sign-key" else []
    result = project.run_subprocess(
        "--gate=production-readiness", f"{option}={special}", *extra, timeout=60
    )
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    assert result.ret != 0  # the file was not written: never a clean pass
    assert _same_kind(special, before)


def test_a_gate_file_that_is_a_fifo_is_an_error_not_a_wait(project: GateProject) -> None:
    project.production_ready()
    os.mkfifo(project.path / "gates" / "security-compliance.yaml")
    result = project.run_subprocess("--gate=security-compliance", timeout=60)
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    assert result.ret != 0  # not read, never waited on: the gate has no evidence
    assert "security-compliance  FAILED" in text, text


def test_keygen_leaves_a_special_file_in_place(special: Path) -> None:
    before = os.lstat(special)
    done = subprocess.run(
        [sys.executable, "-m", "pytest_fwgates.cli", "keygen", "--force", str(special)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "exists and is a" in done.stderr and "Traceback" not in done.stderr
    assert _same_kind(special, before)
