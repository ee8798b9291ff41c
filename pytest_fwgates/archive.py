"""Reading a package's ``.tar.gz`` exactly as an unpacker would, in one pass, never unpacking.

A verifier that reads an archive differently from the program that later unpacks it approves
one set of files and hands over another. So the archive is read by a small strict reader of
its own, which accepts only the one plain form the package writer produces and refuses every
form where unpackers are known to differ:

- **gzip**: exactly one gzip member, its CRC and length checked by zlib, and nothing after it
  (``gzip -d`` and ``tar -xzf`` go on into a second member, or ignore trailing data).
- **tar**: POSIX ustar headers (magic ``ustar\\0``, version ``00``) with a valid checksum;
  regular files and folders only, each optionally preceded by one local pax header with the
  keys the writer uses (``path``, ``mtime``, ``atime``, ``ctime``, ``uid``, ``gid``,
  ``uname``, ``gname``), every record well formed and no key twice. Links, devices, FIFOs,
  sparse files, GNU long names, global pax headers, a pax ``size`` or ``linkpath`` are
  refused, as is a name with bytes after its NUL.
- **the end**: the end-of-archive marker (zero blocks) must come, and only zero bytes after
  it: members after it are refused (some unpackers read on, ``tar -i``).
- **names**: UTF-8, relative, without ``..``, each file once (after normalising ``./`` and
  ``//``), no path both a file and a folder.

What it yields is what ``tar -xzf`` and Python's ``tarfile`` extract, checked by a differential
test against both (``tests/test_archive_strict.py``).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

__all__ = ["ArchiveError", "Member", "read_members"]

BLOCK = 512
_READ = 1 << 16
_ZERO = bytes(BLOCK)
_PAX_KEYS = frozenset({"path", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})
_MAX_PAX = 64 * 1024


class ArchiveError(Exception):
    """The archive is not in the one form that is read: the reason, in words."""


@dataclass
class Member:
    """One file of the archive: its clean relative path, size, SHA-256 and, when small,
    its bytes."""

    name: str
    size: int
    sha256: str
    data: bytes | None


class _Gunzip:
    """The decompressed bytes of exactly one gzip member, bounded; nothing may follow it."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self._buffer = bytearray()
        self._pos = 0  # bytes of the buffer already read
        self._limit = limit
        self._produced = 0
        self._ended = False

    def _fill(self, wanted: int) -> None:
        while len(self._buffer) - self._pos < wanted and not self._ended:
            data = self._tail or self._raw.read(_READ)
            if not data:
                raise ArchiveError("the gzip stream is cut short")
            try:
                out = self._inflate.decompress(data, _READ)  # output bounded per call
            except zlib.error as exc:
                raise ArchiveError(f"not a valid gzip stream ({exc})") from None
            self._tail = self._inflate.unconsumed_tail
            self._produced += len(out)
            if self._produced > self._limit:
                raise ArchiveError(
                    f"the archive unpacks to more than {self._limit // 2**30} GiB: not read further"
                )
            self._buffer += out
            if self._inflate.eof:
                if self._inflate.unused_data or self._raw.read(1):
                    raise ArchiveError(
                        "data after the end of the gzip stream (a second gzip member or "
                        "trailing bytes, which unpackers read or ignore differently)"
                    )
                self._ended = True

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or fewer at the end of the stream."""
        if len(self._buffer) - self._pos < size:
            del self._buffer[: self._pos]
            self._pos = 0
            self._fill(size)
        out = bytes(self._buffer[self._pos : self._pos + size])
        self._pos += len(out)
        return out

    def rest_is_zero(self) -> bool:
        while True:
            chunk = self.read(_READ)
            if not chunk:
                return True
            if chunk.count(0) != len(chunk):
                return False


def _field(block: bytes, start: int, length: int, what: str) -> bytes:
    raw = block[start : start + length]
    text, nul, after = raw.partition(b"\0")
    if nul and after.strip(b"\0"):
        raise ArchiveError(f"a header's {what} has bytes after its end")
    return text


def _octal(block: bytes, start: int, length: int, what: str) -> int:
    raw = block[start : start + length]
    text = raw.rstrip(b"\0 ").lstrip(b" ")
    if not text:
        return 0
    if not all(48 <= c <= 55 for c in text):
        raise ArchiveError(f"a header's {what} is not an octal number")
    return int(text, 8)


def _checksum_ok(block: bytes) -> bool:
    stored = _octal(block, 148, 8, "checksum")
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:])


def _pax(data: bytes) -> dict[str, str]:
    """The records of a local pax header, strictly: ``LEN KEY=VALUE\\n``, LEN exact."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + 20)
        if space < 0 or not data[position:space].isdigit():
            raise ArchiveError("a pax header record has no length")
        length = int(data[position:space])
        end = position + length
        if length <= space - position + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise ArchiveError("a pax header record has a wrong length")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise ArchiveError("a pax header record has no '='")
        try:
            name, text = key.decode("utf-8"), value.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError("a pax header record is not UTF-8") from None
        if name not in _PAX_KEYS:
            raise ArchiveError(f"a pax header sets {name!r}, which packages never use")
        if name in records:
            raise ArchiveError(f"a pax header sets {name!r} twice")
        records[name] = text
        position = end
    return records


def _clean(name: str) -> str | None:
    """``name`` as a clean relative POSIX path, or None when it could leave the folder."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def read_members(
    raw: IO[bytes],
    *,
    max_members: int,
    max_bytes: int,
    keep: Callable[[str], bool],
    keep_limit: int,
    folders: set[str] | None = None,
) -> Iterator[Member]:
    """The regular files of the ``.tar.gz`` in ``raw``, in order; :class:`ArchiveError` at
    the first thing that is not in the one accepted form. ``keep(name)`` says whose bytes
    to keep (up to ``keep_limit``). ``folders``, when given, receives every folder an
    unpacker creates (named by a folder entry or as a file's parent)."""
    stream = _Gunzip(raw, max_bytes)
    seen_files: set[str] = set()
    seen_folders: set[str] = set()
    count = 0
    pax: dict[str, str] | None = None
    while True:
        block = stream.read(BLOCK)
        if len(block) < BLOCK:
            raise ArchiveError("the archive ends without its end-of-archive marker")
        if block == _ZERO:
            if pax is not None:
                raise ArchiveError("a pax header is followed by the end of the archive")
            if not stream.rest_is_zero():
                raise ArchiveError(
                    "members or data after the end-of-archive marker (unpackers differ on "
                    "whether they are read)"
                )
            return
        if not _checksum_ok(block):
            raise ArchiveError("a header's checksum is wrong")
        if block[257:263] != b"ustar\0" or block[263:265] != b"00":
            raise ArchiveError("a header is not POSIX ustar (GNU and old tar formats are refused)")
        kind = block[156:157]
        size = _octal(block, 124, 12, "size")
        count += 1
        if count > max_members * 2:
            raise ArchiveError(f"more than {max_members} members: not read further")
        if kind == b"x":
            if pax is not None:
                raise ArchiveError("two pax headers in a row")
            if size > _MAX_PAX:
                raise ArchiveError("a pax header is too large")
            data = stream.read(size)
            if len(data) < size:
                raise ArchiveError("the archive is cut short inside a pax header")
            stream.read(-size % BLOCK)
            pax = _pax(data)
            continue
        if kind not in (b"0", b"\0", b"5"):
            what = {
                b"1": "a hard link",
                b"2": "a symbolic link",
                b"3": "a device",
                b"4": "a device",
                b"6": "a FIFO",
                b"g": "a global pax header",
                b"L": "a GNU long name",
                b"K": "a GNU long link name",
                b"S": "a sparse file",
            }.get(kind, f"a member of type {kind!r}")
            raise ArchiveError(f"{what} in the archive: packages hold files and folders only")
        name_field = _field(block, 0, 100, "name")
        prefix = _field(block, 345, 155, "prefix")
        raw_name = (prefix + b"/" + name_field) if prefix else name_field
        try:
            name = pax["path"] if pax and "path" in pax else raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError(f"a member's name is not UTF-8: {raw_name!r}") from None
        pax = None
        clean = _clean(name)
        if clean is None:
            raise ArchiveError(f"unsafe path in the archive: {name!r}")
        parents = [str(p) for p in PurePosixPath(clean).parents][:-1]
        clash = next((p for p in parents if p in seen_files), None)
        if clash is not None:
            raise ArchiveError(f"{clash} is both a file and a folder")
        if kind == b"5":
            if size:
                raise ArchiveError(f"the folder {clean} has a size")
            if clean in seen_files:
                raise ArchiveError(f"{clean} is both a file and a folder")
            seen_folders.update([clean, *parents])
            if folders is not None:
                folders.update([clean, *parents])
            continue
        if name.endswith("/"):
            raise ArchiveError(f"the file {name!r} is named like a folder")
        if clean in seen_files:
            raise ArchiveError(f"file twice in the archive: {clean}")
        if clean in seen_folders:
            raise ArchiveError(f"{clean} is both a file and a folder")
        seen_files.add(clean)
        seen_folders.update(parents)
        if folders is not None:
            folders.update(parents)
        digest = hashlib.sha256()
        kept: bytearray | None = bytearray() if keep(clean) else None
        left = size
        while left:
            chunk = stream.read(min(left, _READ))
            if not chunk:
                raise ArchiveError(f"the archive is cut short inside {clean}")
            digest.update(chunk)
            if kept is not None:
                kept += chunk
                if len(kept) > keep_limit:
                    kept = None
            left -= len(chunk)
        padding = stream.read(-size % BLOCK)
        if len(padding) < -size % BLOCK:
            raise ArchiveError(f"the archive is cut short after {clean}")
        yield Member(clean, size, digest.hexdigest(), bytes(kept) if kept is not None else None)
