"""A package archive verifies only when it unpacks to exactly the files verified: real archives
built with ``tarfile`` and ``gzip`` that unpackers read differently (two gzip members, trailing
data, members after the end-of-archive marker, duplicate names, links, pax names, GNU long
names) are refused, and a differential test compares what the verifier approved with what
the real ``tar -xzf`` and Python's ``tarfile`` extract."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_handoff import made, verify  # noqa: F401  (made: the module's real package)

from pytest_fwgates.archive import ArchiveError, read_members
from pytest_fwgates.integrity import verify_package

FAILED_SUMMARY = b'{"schema": "fwgates-summary/1", "verdict": "FAILED"}\n'


def _members(package: Path) -> list[tuple[str, bytes]]:
    return [
        (f"package/{p.relative_to(package).as_posix()}", p.read_bytes())
        for p in sorted(package.rglob("*"))
        if p.is_file()
    ]


def _tar_bytes(
    members: list[tuple[str, bytes]],
    *,
    end: bool = True,
    fmt: int = tarfile.PAX_FORMAT,
    edit: Callable[[tarfile.TarInfo], None] | None = None,
) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            if edit is not None:
                edit(info)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    data = out.getvalue()
    if not end:  # the stream without its end-of-archive marker (and record padding)
        data = data.rstrip(b"\0")
        data += b"\0" * (-len(data) % 512)
    return data


def _extract_with_tar(archive: Path, into: Path) -> dict[str, str] | None:
    """What GNU tar unpacks: relative path -> SHA-256 of every file (None if tar fails)."""
    into.mkdir()
    done = subprocess.run(
        ["tar", "-xzf", str(archive), "-C", str(into)], capture_output=True, timeout=60, check=False
    )
    if done.returncode != 0:
        return None
    return _files(into)


def _extract_with_tarfile(archive: Path, into: Path) -> dict[str, str] | None:
    into.mkdir()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError):
        return None
    return _files(into)


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() or p.is_symlink()
    }


def _approved(archive: Path) -> dict[str, str] | None:
    """What the strict reader approves: path -> SHA-256, or None when it refuses."""
    try:
        with open(archive, "rb") as raw:
            return {
                m.name: m.sha256
                for m in read_members(
                    raw, max_members=1000, max_bytes=2**30, keep=lambda n: False, keep_limit=0
                )
            }
    except ArchiveError:
        return None


# -- the attacks on a real signed PASSED package ----------------------------------------------
def _replaced(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(n, FAILED_SUMMARY if n.endswith("/summary.json") else d) for n, d in members]


def _two_gzip_members(members: list[tuple[str, bytes]]) -> bytes:
    # the first member holds the package without its end marker, the second a replaced
    # summary.json: an unpacker reads on into the second member
    summary = [m for m in _replaced(members) if m[0].endswith("/summary.json")]
    return gzip.compress(_tar_bytes(members, end=False)) + gzip.compress(_tar_bytes(summary))


def _after_the_end(members: list[tuple[str, bytes]]) -> bytes:
    summary = [m for m in _replaced(members) if m[0].endswith("/summary.json")]
    return gzip.compress(_tar_bytes(members) + _tar_bytes(summary))


def _duplicate(members: list[tuple[str, bytes]]) -> bytes:
    summary = [m for m in _replaced(members) if m[0].endswith("/summary.json")]
    return gzip.compress(_tar_bytes(members + summary))


def _hardlink(members: list[tuple[str, bytes]]) -> bytes:
    def edit(info: tarfile.TarInfo) -> None:
        if info.name == "package/evidence.txt":
            info.type, info.linkname, info.size = tarfile.LNKTYPE, "package/summary.json", 0

    return gzip.compress(_tar_bytes([*members, ("package/evidence.txt", b"")], edit=edit))


def _pax_name(members: list[tuple[str, bytes]]) -> bytes:
    # a member whose ustar name is harmless and whose pax path is summary.json
    def edit(info: tarfile.TarInfo) -> None:
        if info.name == "package/notes.txt":
            info.pax_headers = {"path": "package/summary.json"}

    kept = [m for m in members if not m[0].endswith("/summary.json")]
    return gzip.compress(_tar_bytes([*kept, ("package/notes.txt", FAILED_SUMMARY)], edit=edit))


def _gnu_longname(members: list[tuple[str, bytes]]) -> bytes:
    long = "package/" + "x" * 120 + "/../summary.json"
    return gzip.compress(_tar_bytes([*members, (long, FAILED_SUMMARY)], fmt=tarfile.GNU_FORMAT))


def _global_pax(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "x"}
    ) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def _with_folders(*names: str) -> Callable[[list[tuple[str, bytes]]], bytes]:
    """The package and folder entries ``names``: tar creates them, though they hold no file."""

    def build(members: list[tuple[str, bytes]]) -> bytes:
        def edit(info: tarfile.TarInfo) -> None:
            if info.name in names:
                info.type, info.size = tarfile.DIRTYPE, 0

        return gzip.compress(_tar_bytes([*members, *((n, b"") for n in names)], edit=edit))

    return build


ATTACKS: dict[str, tuple[Callable[[list[tuple[str, bytes]]], bytes], str]] = {
    "folder-outside-the-package": (
        _with_folders("elsewhere"),
        "folder outside the package folder: elsewhere",
    ),
    "folder-beside-the-package-in-a-folder": (
        _with_folders("elsewhere/deeper"),
        "folder outside the package folder: elsewhere/deeper",
    ),
    "two-gzip-members": (_two_gzip_members, "data after the end of the gzip stream"),
    "trailing-garbage": (
        lambda m: gzip.compress(_tar_bytes(m)) + b"garbage",
        "data after the end of the gzip stream",
    ),
    "trailing-zeros": (
        lambda m: gzip.compress(_tar_bytes(m)) + b"\0" * 1024,
        "data after the end of the gzip stream",
    ),
    "members-after-the-end": (_after_the_end, "after the end-of-archive marker"),
    "no-end-marker": (
        lambda m: gzip.compress(_tar_bytes(m, end=False)),
        "without its end-of-archive marker",
    ),
    "duplicate-name": (_duplicate, "file twice in the archive: package/summary.json"),
    "hardlink": (_hardlink, "a hard link in the archive"),
    "pax-path-over-the-name": (_pax_name, "changed file: summary.json"),
    "gnu-longname": (_gnu_longname, "not POSIX ustar"),
    "global-pax-header": (_global_pax, "a global pax header"),
    "cut-short": (lambda m: gzip.compress(_tar_bytes(m))[:-20], "cut short"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_archive_unpackers_read_differently_is_refused(
    made: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    attack: str,
) -> None:
    build, problem = ATTACKS[attack]
    archive = tmp_path / "package.tar.gz"
    archive.write_bytes(build(_members(made["package"])))
    status, out = verify(archive, "--public-key", made["public"], "--require-verdict", "PASSED")
    assert status == 1, out
    assert problem in out, out


def test_what_was_refused_is_what_tar_would_have_unpacked(
    made: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    """The two-member archive really unpacks to the replaced summary.json with tar."""
    archive = tmp_path / "package.tar.gz"
    archive.write_bytes(_two_gzip_members(_members(made["package"])))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(unpacked)], check=True, timeout=60)
    assert (unpacked / "package" / "summary.json").read_bytes() == FAILED_SUMMARY
    assert not verify_package(archive).ok


def test_the_writers_archive_verifies_and_unpacks_to_what_was_verified(
    made: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    archive = made["package"].with_name("package.tar.gz")
    status, out = verify(archive, "--public-key", made["public"], "--require-verdict", "PASSED")
    assert status == 0, out
    approved = _approved(archive)
    assert approved is not None
    assert _extract_with_tar(archive, tmp_path / "tar") == approved
    assert _extract_with_tarfile(archive, tmp_path / "tarfile") == approved


_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _noncanonical(line: bytes) -> bytes:
    """The same 64 bytes in base64 with one of the unused low bits of the last character set."""
    last = _B64.index(line[-3:-2])
    return line[:-3] + _B64[last ^ 1 : (last ^ 1) + 1] + b"=="


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s.rstrip(b"\n"), id="no-line-end"),
        pytest.param(lambda s: s.rstrip(b"\n") + b"\r\n", id="crlf"),
        pytest.param(lambda s: b" " + s, id="leading-space"),
        pytest.param(lambda s: s + b"\n", id="two-line-ends"),
        pytest.param(lambda s: s[:40] + b"\n" + s[40:], id="wrapped"),
        pytest.param(lambda s: _noncanonical(s.rstrip(b"\n")) + b"\n", id="non-canonical"),
    ],
)
def test_a_signature_in_any_other_form_than_written_is_refused(
    made: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    mangle: Callable[[bytes], bytes],
) -> None:
    package = tmp_path / "package"
    shutil.copytree(made["package"], package)
    sig = package / "MANIFEST.sig"
    original = sig.read_bytes()
    changed = mangle(original)
    assert changed != original
    sig.write_bytes(changed)
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1, out
    assert "MANIFEST.sig is not one line of canonical base64" in out


def test_the_non_canonical_signature_decodes_to_the_same_bytes(
    made: dict[str, Path],  # noqa: F811
) -> None:
    """The non-canonical case above is a real one: lenient decoders accept it."""
    original = (made["package"] / "MANIFEST.sig").read_bytes().rstrip(b"\n")
    assert original.endswith(b"==")  # 64 bytes: 4 unused bits in the last character
    variant = _noncanonical(original)
    assert base64.b64decode(variant, validate=True) == base64.b64decode(original)
    assert variant != original


# -- differential: what is approved is what tar and tarfile unpack ----------------------------
_NAMES = st.sampled_from(
    [
        "package/a.txt",
        "package/b.txt",
        "package/dir/c.txt",
        "package/dir/d.txt",
        "package/f.txt",
        "package/g/h/i.txt",
        "package/./a.txt",
        "package//b.txt",
        "package/dir",
        "package/dir/",
        "package/" + "d" * 110 + "/e.txt",
        "package/é.txt",
        "other/a.txt",
        "package",
    ]
)
_KINDS = st.sampled_from(["file"] * 8 + ["dir", "symlink", "hardlink"])


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    unique = draw(st.booleans())
    members = draw(
        st.lists(
            st.tuples(_NAMES, _KINDS, st.binary(max_size=700)),
            min_size=1,
            max_size=6,
            unique_by=(lambda m: m[0]) if unique else None,
        )
    )
    fmt = draw(
        st.sampled_from(
            [tarfile.PAX_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]
        )
    )
    out = io.BytesIO()
    try:
        with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
            for name, kind, data in members:
                info = tarfile.TarInfo(name)
                info.mode = 0o644
                if kind == "file":
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                    continue
                if kind == "dir":
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                else:
                    info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                    info.linkname = "package/a.txt"
                tar.addfile(info)
    except ValueError:  # a name this format cannot hold
        pass
    stream = out.getvalue()
    tail = draw(st.sampled_from(["", "", "", "", "", "member", "zeros"]))
    if tail == "member":
        stream += _tar_bytes([("package/a.txt", b"appended")])
    elif tail == "zeros":
        stream += b"\0" * 512
    packed = gzip.compress(stream)
    after = draw(st.sampled_from([b""] * 8 + [b"x", gzip.compress(b"\0" * 1024)]))
    return packed + after


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=archives())
def test_approved_archives_unpack_to_exactly_what_was_approved(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    root = tmp_path_factory.mktemp("differential")
    archive = root / "x.tar.gz"
    archive.write_bytes(data)
    approved = _approved(archive)
    if approved is None:
        return  # refused: nothing to unpack, nothing wrong
    assert _extract_with_tar(archive, root / "tar") == approved
    assert _extract_with_tarfile(archive, root / "tarfile") == approved


@settings(max_examples=30, deadline=None)
@given(
    files=st.dictionaries(
        st.text("abcdé/._-", min_size=1, max_size=150).filter(
            lambda n: all(p not in ("", ".", "..") for p in n.split("/"))
        ),
        st.binary(max_size=2000),
        min_size=1,
        max_size=6,
    )
)
def test_what_the_writer_makes_is_accepted(files: dict[str, bytes]) -> None:
    """The one accepted form is what tarfile writes in PAX format (the package writer's)."""
    names = sorted(files)
    if any(b.startswith(a + "/") for a in names for b in names):
        return  # a path both a file and a folder is refused, rightly
    data = gzip.compress(_tar_bytes([(f"package/{n}", files[n]) for n in names]))
    with io.BytesIO(data) as raw:
        got = {
            m.name: m.sha256
            for m in read_members(
                raw, max_members=100, max_bytes=2**30, keep=lambda n: False, keep_limit=0
            )
        }
    assert got == {f"package/{n}": hashlib.sha256(files[n]).hexdigest() for n in names}


@pytest.mark.parametrize("name", ["MANIFEST.json", "summary.json"])
def test_json_nested_too_deeply_is_a_problem_not_a_traceback(tmp_path: Path, name: str) -> None:
    """A package from elsewhere whose MANIFEST.json or summary.json is ``[[[[...``: refused
    with its reason (the decoder's RecursionError was a traceback)."""
    package = tmp_path / "package"
    package.mkdir()
    deep = b"[" * 200_000
    manifest: dict[str, object] = {"format": "fwgates-handoff/1", "verdict": "PASSED", "files": []}
    if name == "summary.json":
        (package / "summary.json").write_bytes(deep)
        manifest["files"] = [
            {"path": "summary.json", "size": len(deep), "sha256": hashlib.sha256(deep).hexdigest()}
        ]
        (package / "MANIFEST.json").write_text(json.dumps(manifest))
    else:
        (package / "MANIFEST.json").write_bytes(deep)
    status, out = verify(package, "--require-verdict", "PASSED")
    assert status == 1, out
    expected = "nested too deeply" if name == "MANIFEST.json" else "summary.json says None"
    assert expected in out, out
