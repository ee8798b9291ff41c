"""One state-changing check at a time: deploys, rollbacks, drills and load never overlap.

Checks whose class sets ``exclusive = True`` run under an exclusive ``flock`` on a file named
after the run's root directory (in the system's temporary folder). pytest-xdist workers of one
run share the root directory, so they take turns whatever ``--dist`` mode is used; each worker
runs its items in file order. Read-only checks take no lock and run beside them. The wait is
bounded: a check that cannot get the lock in time is an error, never a pass.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LockTimeout", "exclusive", "lock_path"]

#: the longest a check waits for another one to finish (seconds)
DEFAULT_WAIT_S = 3600.0
_POLL_S = 0.05


class LockTimeout(Exception):
    """The lock could not be had: held by another check for longer than the bound, or its
    folder is not safe to use."""


def lock_path(rootdir: Path) -> Path:
    """The lock file of the runs in ``rootdir`` (``$FWGATES_LOCK_DIR`` overrides the folder)."""
    digest = hashlib.sha256(str(rootdir.resolve()).encode()).hexdigest()[:16]
    folder = Path(
        os.environ.get("FWGATES_LOCK_DIR")
        or Path(tempfile.gettempdir()) / f"pytest-fwgates-{os.getuid()}"
    )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_uid != os.getuid():  # someone else made it first in a shared /tmp
        raise LockTimeout(f"{folder} belongs to another user; set FWGATES_LOCK_DIR")
    return folder / f"exclusive-{digest}.lock"


#: locks this thread holds, by path (a deploy check inside ``deploy_monitor`` must not wait
#: for itself)
_held = threading.local()


@contextlib.contextmanager
def exclusive(rootdir: Path, wait_s: float = DEFAULT_WAIT_S) -> Iterator[float]:
    """Hold the run's exclusive lock; yields the seconds spent waiting for it.

    Re-entrant within one thread: a nested use for the same rootdir does not wait."""
    path = lock_path(rootdir)
    depth: dict[Path, int] = _held.__dict__.setdefault("depth", {})
    if depth.get(path):
        depth[path] += 1
        try:
            yield 0.0
        finally:
            depth[path] -= 1
        return
    with _locked(path, wait_s) as waited:
        depth[path] = 1
        try:
            yield waited
        finally:
            depth[path] = 0


@contextlib.contextmanager
def _locked(path: Path, wait_s: float) -> Iterator[float]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        started = time.monotonic()
        deadline = started + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another deploy, rollback, drill or load check held {path} for "
                        f"{wait_s:g} s"
                    ) from None
                time.sleep(_POLL_S)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
