"""Handoff package integrity: the manifest, Ed25519 signatures and their verification.

A package is a folder (or a ``.tar.gz`` of one folder) holding ``MANIFEST.json``, which
lists every other file with its size and SHA-256, the verdicts and the deliverables, and
optionally ``MANIFEST.sig``, an Ed25519 signature of the manifest's exact bytes (base64).
:func:`verify_package` checks all of it and names every problem; ``fwgates verify`` and the
``handoff`` check type both use it.

``cryptography`` is imported only when a key is made, loaded or used.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .fsutil import atomic_write, read_regular, refuse_special

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "DELIVERABLES",
    "FORMAT",
    "MANIFEST",
    "SIGNATURE",
    "IntegrityError",
    "Verification",
    "fingerprint",
    "keygen",
    "load_private_key",
    "load_public_key",
    "parse_age",
    "sha256_file",
    "sign",
    "verify_package",
]

FORMAT = "fwgates-handoff/1"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"

#: the seven deliverables of the operations-handoff gate: id -> title
DELIVERABLES: dict[str, str] = {
    "production-system": "Production system",
    "infrastructure-documentation": "Infrastructure documentation",
    "monitoring-configuration": "Monitoring configuration",
    "security-configuration": "Security configuration",
    "performance-baseline": "Performance baseline",
    "operations-procedures": "Operations procedures",
    "incident-response": "Incident response",
}

#: bounds for reading a package, above all an archive from elsewhere
MAX_TOTAL_BYTES = 4 * 2**30
MAX_MEMBERS = 200_000
MAX_MANIFEST_BYTES = 256 * 2**20
_SMALL_FILES = (MANIFEST, SIGNATURE, "summary.json")
_CHUNK = 1 << 20
#: a package made this far in the future is suspect (clock skew allowed)
_FUTURE_SLACK_S = 300.0


class IntegrityError(Exception):
    """A key or package that cannot be used, with a message that names it."""


# -- hashing and keys -----------------------------------------------------------------------
def sha256_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:<hex>`` of the raw public key: names a key in manifests and messages."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:32]


def keygen(private_path: Path, public_path: Path, *, force: bool = False) -> str:
    """Make an Ed25519 key pair as PEM files (the private one readable by its owner only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for path in (private_path, public_path):
        if path.exists() and not force:
            raise IntegrityError(f"{path}: exists; not overwritten (use --force)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    refuse_special(private_path)
    refuse_special(public_path)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_path.with_name(f".{private_path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, private_pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, private_path)
    atomic_write(public_path, public_pem)
    return fingerprint(key.public_key())


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        data = read_regular(path, 64 * 1024)
        if len(data) > 64 * 1024:
            raise IntegrityError(f"{path}: too large for an Ed25519 {what} key")
        return data
    except FileNotFoundError:
        raise IntegrityError(f"{path}: no such {what} key file") from None
    except OSError as exc:
        raise IntegrityError(f"{path}: cannot read the {what} key: {exc.strerror}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (unencrypted PKCS#8 or OpenSSH)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_file(path, "private")
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH"):
            key: object = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"{path}: not a usable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (or an OpenSSH ``ssh-ed25519`` line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key_file(path, "public")
    try:
        if data.lstrip().startswith(b"ssh-ed25519"):
            key: object = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"{path}: not a usable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The content of MANIFEST.sig: the base64 Ed25519 signature of the manifest's bytes."""
    return base64.b64encode(key.sign(manifest)) + b"\n"


# -- reading a package --------------------------------------------------------------------
@dataclass
class _Contents:
    """What a package holds, from a folder or an archive."""

    files: dict[str, tuple[int, str]] = field(default_factory=dict)
    small: dict[str, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _safe_relpath(name: str) -> str | None:
    """``name`` as a clean relative POSIX path, or None when it could leave the package."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return None
    parts = PurePosixPath(name).parts
    if any(part in ("..", "") for part in parts) or PurePosixPath(name).is_absolute():
        return None
    clean = "/".join(part for part in parts if part != ".")
    return clean or None


def _read_folder(root: Path) -> _Contents:
    contents = _Contents()
    for folder, dirs, names in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                rel = (base / name).relative_to(root).as_posix()
                contents.problems.append(f"unexpected symbolic link: {rel}")
        for name in sorted(names):
            path = base / name
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                contents.problems.append(f"unexpected symbolic link: {rel}")
                continue
            if not stat.S_ISREG(mode):
                contents.problems.append(f"unexpected special file: {rel}")
                continue
            if len(contents.files) >= MAX_MEMBERS:
                contents.problems.append(f"more than {MAX_MEMBERS} files: not read further")
                return contents
            size, digest = sha256_file(path)
            contents.files[rel] = (size, digest)
            if rel in _SMALL_FILES and size <= MAX_MANIFEST_BYTES:
                contents.small[rel] = path.read_bytes()
    return contents


def _read_archive(path: Path) -> _Contents:
    """The files of a ``.tar.gz`` package as an unpacker would produce them (one folder
    holding them all); any form unpackers could read differently is a problem and stops
    the reading (see :mod:`pytest_fwgates.archive`)."""
    from .archive import ArchiveError, read_members

    contents = _Contents()
    top: str | None = None
    folders: set[str] = set()
    try:
        with open(path, "rb") as raw:
            for member in read_members(
                raw,
                max_members=MAX_MEMBERS,
                max_bytes=MAX_TOTAL_BYTES,
                keep=lambda name: name.partition("/")[2] in _SMALL_FILES,
                keep_limit=MAX_MANIFEST_BYTES,
                folders=folders,
            ):
                first, _, rest = member.name.partition("/")
                if top is None:
                    top = first
                if first != top or not rest:
                    contents.problems.append(f"file outside the package folder: {member.name}")
                    continue
                contents.files[rest] = (member.size, member.sha256)
                if rest in _SMALL_FILES and member.data is not None:
                    contents.small[rest] = member.data
        # a folder an unpacker creates beside the package folder (empty, but unpacked all
        # the same: what is unpacked is what is verified)
        for folder in sorted(folders):
            if folder.partition("/")[0] != top:
                contents.problems.append(f"folder outside the package folder: {folder}")
    except ArchiveError as exc:
        contents.problems.append(f"{path}: {exc}")
    except OSError as exc:
        contents.problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
    return contents


# -- verification ---------------------------------------------------------------------------
@dataclass
class Verification:
    """The outcome of verifying one package: ``problems`` empty means it holds."""

    source: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    #: True: signature verified with the trusted key; False: absent or wrong; None: not checked
    signed: bool | None = None
    verdict: str | None = None
    created: dt.datetime | None = None
    age_s: float | None = None
    missing_deliverables: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _manifest_files(manifest: dict[str, Any], result: Verification) -> dict[str, tuple[int, str]]:
    listed: dict[str, tuple[int, str]] = {}
    entries = manifest.get("files")
    if not isinstance(entries, list):
        result.problems.append(f"{MANIFEST}: 'files' is not a list")
        return listed
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            result.problems.append(f"{MANIFEST}: files[{index}] is not a mapping")
            continue
        name, size, digest = entry.get("path"), entry.get("size"), entry.get("sha256")
        clean = _safe_relpath(name) if isinstance(name, str) else None
        if clean is None or clean != name or clean in (MANIFEST, SIGNATURE):
            result.problems.append(f"{MANIFEST}: files[{index}] has a bad path {name!r}")
            continue
        if not isinstance(size, int) or not isinstance(digest, str) or len(digest) != 64:
            result.problems.append(f"{MANIFEST}: files[{index}] ({name}) lacks size or sha256")
            continue
        if clean in listed:
            result.problems.append(f"{MANIFEST}: {name} is listed twice")
        listed[clean] = (size, digest.lower())
    return listed


def _check_signature(
    contents: _Contents,
    public_key: Ed25519PublicKey,
    manifest: dict[str, Any],
    result: Verification,
) -> None:
    from cryptography.exceptions import InvalidSignature

    raw = contents.small.get(SIGNATURE)
    if raw is None:
        result.signed = False
        result.problems.append(f"{SIGNATURE} is missing: the package is not signed")
        return
    try:
        signature = base64.b64decode(raw.removesuffix(b"\n"), validate=True)
    except ValueError:
        signature = b""
    # exactly what sign() writes: canonical base64 of 64 bytes and one line end
    if len(signature) != 64 or base64.b64encode(signature) + b"\n" != raw:
        result.signed = False
        result.problems.append(
            f"{SIGNATURE} is not one line of canonical base64 of an Ed25519 signature"
        )
        return
    try:
        public_key.verify(signature, contents.small[MANIFEST])
    except InvalidSignature:
        result.signed = False
        expected = fingerprint(public_key)
        signer = manifest.get("signing_key")
        if isinstance(signer, str) and signer != expected:
            result.problems.append(
                f"signature: signed by another key ({signer}), not the trusted key {expected}"
            )
        else:
            result.problems.append(
                f"signature: {SIGNATURE} does not verify {MANIFEST} with the trusted key "
                f"{expected} (the manifest or the signature was changed)"
            )
        return
    result.signed = True


def _check_run_id(manifest: dict[str, Any], wanted: str, result: Verification) -> None:
    """The package must have been made in the CI run ``wanted`` names (one of its run ids)."""
    ids = manifest.get("run_ids")
    if not isinstance(ids, dict) or not ids:
        result.problems.append(
            f"run id: the package records no CI run id, {wanted!r} required "
            "(made outside CI, or by an older version)"
        )
        return
    if wanted not in {str(v) for v in ids.values()}:
        made = ", ".join(f"{k}={v}" for k, v in sorted(ids.items()))
        result.problems.append(
            f"run id: the package was made by another run ({made}), {wanted!r} required"
        )


def _parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def verify_package(
    path: Path,
    *,
    public_key: Ed25519PublicKey | None = None,
    require_verdict: str | None = None,
    require_deliverables: bool = False,
    max_age_s: float | None = None,
    now: dt.datetime | None = None,
    require_run_id: str | None = None,
) -> Verification:
    """Verify the package folder or ``.tar.gz`` at ``path``; every problem is named."""
    result = Verification(source=str(path))
    if path.is_dir():
        contents = _read_folder(path)
    elif path.is_file():
        contents = _read_archive(path)
    else:
        result.problems.append(f"{path}: no such package (folder or .tar.gz)")
        return result
    result.problems.extend(contents.problems)
    raw = contents.small.get(MANIFEST)
    if raw is None:
        result.problems.append(
            f"{MANIFEST} is missing: not a handoff package, or one whose writing did not finish"
        )
        return result
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except RecursionError:  # "[[[[..." nested deeper than the decoder goes
        result.problems.append(f"{MANIFEST}: not valid JSON (nested too deeply)")
        return result
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        result.problems.append(f"{MANIFEST}: not valid JSON ({exc})")
        return result
    if not isinstance(manifest, dict):
        result.problems.append(f"{MANIFEST}: not a JSON object")
        return result
    result.manifest = manifest
    if manifest.get("format") != FORMAT:
        result.problems.append(
            f"{MANIFEST}: unknown format {manifest.get('format')!r} (expected {FORMAT})"
        )
        return result

    listed = _manifest_files(manifest, result)
    result.files = len(listed)
    for name, (size, digest) in sorted(listed.items()):
        found = contents.files.get(name)
        if found is None:
            result.problems.append(f"missing file: {name}")
        elif found != (size, digest):
            result.problems.append(
                f"changed file: {name} (SHA-256 {found[1][:16]}…, {found[0]} bytes; "
                f"manifest: {digest[:16]}…, {size} bytes)"
            )
    for name in sorted(contents.files):
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            result.problems.append(f"added file: {name} (not in the manifest)")

    if public_key is not None:
        _check_signature(contents, public_key, manifest, result)
    elif SIGNATURE in contents.files:
        result.notes.append("signature not checked: no trusted public key given")
    else:
        result.notes.append("the package is not signed")

    verdict = manifest.get("verdict")
    result.verdict = str(verdict) if verdict is not None else None
    summary_raw = contents.small.get("summary.json")
    if summary_raw is not None:
        try:
            summary_verdict = json.loads(summary_raw.decode("utf-8")).get("verdict")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, RecursionError):
            summary_verdict = None
        if summary_verdict != verdict:
            result.problems.append(
                f"verdict: {MANIFEST} says {verdict}, summary.json says {summary_verdict}"
            )
    if require_verdict is not None and result.verdict != require_verdict:
        result.problems.append(f"verdict is {result.verdict}, {require_verdict} required")

    if require_run_id is not None:
        _check_run_id(manifest, require_run_id, result)

    missing = manifest.get("missing_deliverables")
    result.missing_deliverables = [str(m) for m in missing] if isinstance(missing, list) else []
    if not isinstance(missing, list):
        result.problems.append(f"{MANIFEST}: no list of missing deliverables")
    elif require_deliverables and missing:
        result.problems.append(f"deliverables missing: {', '.join(map(str, missing))}")

    result.created = _parse_time(manifest.get("created"))
    if result.created is None:
        result.problems.append(f"{MANIFEST}: no valid 'created' time")
    else:
        now = now or dt.datetime.now(dt.UTC)
        result.age_s = (now - result.created).total_seconds()
        if result.age_s < -_FUTURE_SLACK_S:
            result.problems.append(f"created in the future: {result.created.isoformat()}")
        elif max_age_s is not None and result.age_s > max_age_s:
            result.problems.append(
                f"too old: made {_hours(result.age_s)} ago, at most {_hours(max_age_s)} allowed"
            )
    return result


_AGE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(s|m|h|d)?\s*$")
_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_age(text: str) -> float:
    """An age in seconds: ``3600``, ``90m``, ``24h``, ``7d``."""
    match = _AGE.match(str(text))
    if not match or float(match[1]) <= 0:
        raise IntegrityError(f"not an age: {text!r} (expected e.g. 90m, 24h, 7d)")
    return float(match[1]) * _AGE_UNITS[match[2] or "s"]


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` (symbolic links are not followed), sorted."""
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path
