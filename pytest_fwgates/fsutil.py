"""Writing files so that a killed run never leaves a half-written one, and so that nothing
planted where they go (a symbolic link, a hard link) makes a run write anywhere else.

Evidence and other files checks write go through :func:`real_folder` and :func:`write_file`:
folders are made and opened one level at a time relative to their parent's descriptor with
``O_NOFOLLOW`` (a link there is refused), and a file is written to a new temporary name
(``O_CREAT | O_EXCL | O_NOFOLLOW``) and renamed over its name, which replaces a link or a
hard link planted there instead of writing through it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "UnsafePathError",
    "atomic_write",
    "atomic_write_all",
    "copy_file",
    "read_regular",
    "real_folder",
    "refuse_special",
    "write_file",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


#: the folders :func:`real_folder` made or accepted (absolute path -> device and inode): a
#: later write into one refuses a folder that is no longer that one
_made: dict[str, tuple[int, int]] = {}


class UnsafePathError(OSError):
    """A link or another kind of file where a folder or file of ours must go: refused."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file"


def refuse_special(
    path: Path | str, dir_fd: int | None = None, shown: Path | str | None = None
) -> None:
    """Refuse to rename a file over ``path`` when something other than a regular file or a
    link stands there: a device (``/dev/null`` given as a path, say), a FIFO, a socket or a
    folder. A rename would replace it with a regular file (for root, ``/dev/null`` itself).
    Every rename over a target in this module (and the key writer) asks this first."""
    try:
        mode = os.lstat(path, dir_fd=dir_fd).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = _kind(mode)
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = "a device"
        elif stat.S_ISFIFO(mode):
            kind = "a FIFO"
        elif stat.S_ISSOCK(mode):
            kind = "a socket"
        raise UnsafePathError(
            f"{shown or path}: exists and is {kind}; a file of ours is never put there"
        )


def read_regular(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit + 1`` of them, so that a caller
    can tell a file over its limit), read without waiting on anything else standing there.

    A FIFO or a device given where a file is expected would block a plain ``open`` or
    ``read`` forever (a FIFO until a writer comes, a terminal until a line is typed): the file
    is opened with ``O_NONBLOCK`` and refused unless it is a regular file. Links are followed
    (a gate file may be a link). Raises :class:`OSError` (``FileNotFoundError`` as it is,
    :class:`UnsafePathError` for another kind of file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = "a device"
            elif stat.S_ISFIFO(mode):
                kind = "a FIFO"
            raise UnsafePathError(f"{path}: is {kind}, not a regular file")
        chunks: list[bytes] = []
        left = None if limit is None else limit + 1
        while left is None or left > 0:
            chunk = os.read(fd, 1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            chunks.append(chunk)
            if left is not None:
                left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _open_folder(path: Path) -> int:
    """A descriptor of the folder ``path``, refused when its last part is a link."""
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError as exc:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise exc from None
        if not stat.S_ISDIR(mode):
            raise UnsafePathError(f"{path}: is {_kind(mode)}, not a folder: refused") from None
        raise


def real_folder(base: Path, name: str, *, fresh: bool = False) -> Path:
    """``base/name`` as a real folder inside the real folder ``base`` (created if missing).

    Anything else at ``base/name`` (a symbolic link, a file) is refused with
    :class:`UnsafePathError`, never followed or replaced. ``fresh``: an earlier folder there
    is removed first (without following the links it may hold), so the folder holds only
    what is written now.
    """
    if not name or "/" in name or name in (".", ".."):
        raise UnsafePathError(f"{base}: {name!r} is not the name of a folder")
    fd = _open_folder(base)
    try:
        try:
            mode: int | None = os.lstat(name, dir_fd=fd).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISDIR(mode):
            raise UnsafePathError(f"{base / name}: is {_kind(mode)}, not a folder: refused")
        if mode is not None and fresh:
            aside = f".{name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(name, aside, src_dir_fd=fd, dst_dir_fd=fd)
            shutil.rmtree(aside, dir_fd=fd, ignore_errors=True)
            mode = None
        if mode is None:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=fd)
        try:
            made = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError:
            mode = os.lstat(name, dir_fd=fd).st_mode
            raise UnsafePathError(
                f"{base / name}: is {_kind(mode)}, not a folder: refused"
            ) from None
        try:
            found = os.fstat(made)
        finally:
            os.close(made)
        _made[os.path.abspath(base / name)] = (found.st_dev, found.st_ino)
    finally:
        os.close(fd)
    return base / name


def _replace_in(path: Path, fill: Callable[[IO[bytes]], object]) -> None:
    fd = _open_folder(path.parent)
    made = _made.get(os.path.abspath(path.parent))
    if made is not None:
        found = os.fstat(fd)
        if (found.st_dev, found.st_ino) != made:
            # a folder above it was replaced (by a link, say) after it was made: the path
            # now leads elsewhere
            os.close(fd)
            raise UnsafePathError(
                f"{path.parent}: is no longer the folder made for it (a folder of its path "
                "was replaced): refused"
            )
    tmp = f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        refuse_special(path.name, dir_fd=fd, shown=path)
        handle = os.fdopen(os.open(tmp, _NEW_FILE, 0o666, dir_fd=fd), "wb")
        try:
            with handle:
                fill(handle)
            os.replace(tmp, path.name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise
    finally:
        os.close(fd)


def write_file(path: Path, data: str | bytes, *, errors: str = "strict") -> Path:
    """Write ``data`` (text as UTF-8, with ``errors``) to ``path`` in a real folder: a new
    temporary file renamed over ``path``, so a link or hard link there is replaced, never
    written through. Returns ``path``."""
    payload = data.encode("utf-8", errors) if isinstance(data, str) else bytes(data)
    _replace_in(Path(path), lambda handle: handle.write(payload))
    return Path(path)


def copy_file(source: Path, path: Path) -> Path:
    """Copy the file ``source`` to ``path`` as :func:`write_file` writes."""
    with open(source, "rb") as reader:
        _replace_in(Path(path), lambda handle: shutil.copyfileobj(reader, handle, 1 << 20))
    return Path(path)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically.

    The data goes to a temporary file in the same directory, is flushed to disk and then
    moved over ``path`` with :func:`os.replace`: readers see the old file or the new one,
    never a part. On any error the temporary file is removed and the old file is kept.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, _NEW_FILE, 0o666)
    try:
        try:
            _write_all(fd, payload)
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            os.fsync(fd)
        finally:
            os.close(fd)
        refuse_special(path)  # again: something may have been put there meanwhile
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
            refuse_special(path)
            payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
            fd = os.open(tmp, _NEW_FILE, 0o666)
            staged.append((tmp, path))
            try:
                _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
        moved: list[Path] = []
        try:
            for _tmp, path in staged:
                refuse_special(path)
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
