"""Writing files so that a killed run never leaves a half-written one."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_all"]


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically.

    The data goes to a temporary file in the same directory, is flushed to disk and then
    moved over ``path`` with :func:`os.replace`: readers see the old file or the new one,
    never a part. On any error the temporary file is removed and the old file is kept.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        try:
            _write_all(fd, payload)
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_all(files: list[tuple[Path, str | bytes]]) -> None:
    """Write several files atomically, all or none.

    Every file is first written to a temporary file beside it and flushed; only when all
    are written are they moved into place. If a move fails, the files already moved are
    removed again (their earlier versions are not restored: callers remove stale files
    first), so readers never see one new file without the others.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = Path(path)
            payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
            staged.append((tmp, path))
            try:
                _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
        moved: list[Path] = []
        try:
            for tmp, path in staged:
                os.replace(tmp, path)
                moved.append(path)
        except BaseException:
            for path in moved:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
    finally:
        for tmp, _path in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for folder in dict.fromkeys(path.parent for _tmp, path in staged):
        _fsync_dir(folder)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (where the platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
