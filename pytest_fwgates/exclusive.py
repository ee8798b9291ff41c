"""One state-changing or load check at a time per project, across xdist workers.

Load, deploy, rollback and drill checks disturb each other's figures (a deploy under load, two
load runs sharing the machine), so they take this lock: an exclusive ``flock`` on a file in the
system's temporary folder named after the project's rootdir. Processes of one run (xdist
workers) and concurrent runs of the same project wait for each other; the wait is bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ExclusiveTimeout", "exclusive"]


class ExclusiveTimeout(Exception):
    """The lock was not free within the bound."""


@contextlib.contextmanager
def exclusive(rootdir: Path, *, timeout: float, name: str = "stateful") -> Iterator[float]:
    """Hold the project's ``name`` lock; yields the seconds waited for it."""
    digest = hashlib.sha256(str(Path(rootdir).resolve()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"fwgates-{name}-{digest}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    started = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= timeout:
                    raise ExclusiveTimeout(
                        f"another {name} check of this project held the lock for {timeout:g} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
