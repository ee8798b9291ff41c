"""Where the gate reports go, and the rules that keep them truthful.

- A report path must be a regular file or absent: a device, a folder, a symbolic link or a
  FIFO there is refused (a one-line usage error), never replaced.
- The folder must be writable; that is checked when the run starts, not when it ends.
- Reports of an earlier run are removed when a run with ``--gate`` starts, so a run that
  ends without a verdict (usage error, crash, ``--co``) leaves no report saying PASSED; so is
  an earlier handoff package and its archive (:func:`remove_stale_package`).

Imported by the plugin before the engine: nothing here but the standard library.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from pathlib import Path

__all__ = [
    "SUMMARY_NAME",
    "path_problem",
    "remove_stale",
    "remove_stale_package",
    "resolve_junit",
    "summary_path",
]

SUMMARY_NAME = "summary.json"


def resolve_junit(given: str | None, ini_value: str, invocation_dir: Path, rootpath: Path) -> Path:
    """The gate JUnit path: ``--gate-junit`` relative to the cwd, the ini value to rootdir."""
    path = Path(given or ini_value)
    if path.is_absolute():
        return path
    return (invocation_dir if given else rootpath) / path


def summary_path(junit: Path) -> Path:
    """summary.json lives beside the gate JUnit (in ``/`` for a JUnit path ``/``, which the
    run then refuses as a report path)."""
    return junit.with_name(SUMMARY_NAME) if junit.name else junit / SUMMARY_NAME


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def path_problem(path: Path) -> str | None:
    """Why a report cannot be written at ``path`` (``None``: it can).

    Refuses anything that exists and is not a regular file, a parent that is not a folder,
    and a folder where no file can be created (checked by creating and removing one).
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None  # a parent that is not a folder is reported below
    except OSError as exc:
        return f"cannot be used: {exc.strerror or exc}"
    if mode is not None and not stat.S_ISREG(mode):
        return f"exists and is {_kind(mode)}; give the path of a regular file"
    # the nearest folder that exists must be a folder we can write in
    folder = path.parent
    while True:
        try:
            folder_mode = os.stat(folder).st_mode
        except (FileNotFoundError, NotADirectoryError):
            if folder.parent == folder:
                return "has no existing parent folder"
            folder = folder.parent
            continue
        except OSError as exc:
            return f"cannot be used: {folder}: {exc.strerror or exc}"
        break
    if not stat.S_ISDIR(folder_mode):
        return f"cannot be created: {folder} is not a folder"
    probe = folder / f".fwgates-probe-{uuid.uuid4().hex[:12]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return f"cannot be written: {folder}: {exc.strerror or exc}"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def _looks_like_ours(path: Path) -> bool:
    """A gate JUnit (``<testsuites`` at its start) or a summary.json (its schema at its end:
    keys are sorted). Anything else at a report path is left alone until it is replaced."""
    try:
        with open(path, "rb") as report:
            head = report.read(512)
            report.seek(max(os.fstat(report.fileno()).st_size - 512, 0))
            tail = report.read(512)
    except OSError:
        return False
    if path.name == SUMMARY_NAME:
        return b'"schema": "fwgates-summary/' in tail
    return b"<testsuites" in head


def remove_stale(paths: list[Path]) -> list[Path]:
    """Remove the reports of an earlier run among ``paths`` (regular files that look like
    a gate JUnit or a summary.json); return what was removed."""
    removed = []
    for path in paths:
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode) or not _looks_like_ours(path):
                continue
            os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def remove_stale_package(target: Path) -> list[Path]:
    """Remove an earlier handoff package at ``target`` (a real folder holding a
    ``MANIFEST.json``) and its archive ``target.tar.gz`` (a regular file); return what was
    removed. Anything else is left for the run's own checks to refuse."""
    removed: list[Path] = []
    if not target.name:  # "/": no package can be there (the run's own checks say why)
        return removed
    archive = target.with_name(target.name + ".tar.gz")
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.lstat(archive).st_mode):
            os.unlink(archive)
            removed.append(archive)
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(target).st_mode) and os.path.lexists(target / "MANIFEST.json"):
            # renamed aside at once (the name the package writer also cleans up), then deleted
            aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, aside)
            removed.append(target)
            shutil.rmtree(aside, ignore_errors=True)
    return removed
