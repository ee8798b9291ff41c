"""The handoff package: the reports, evidence and environment of a run, hashed and signed.

``--handoff-package DIR`` writes, on the controller after the verdict::

    DIR/junit.xml  summary.json  summary.md  report.html  environment.json
        evidence/<check>/...   deliverables/<deliverable>/...
        MANIFEST.json  (every file with size and SHA-256, verdicts, deliverables)
        MANIFEST.sig   (with --handoff-sign-key: Ed25519 signature of MANIFEST.json)

The package is built in a hidden folder beside DIR and renamed into place when complete, so
DIR holds a whole package or nothing (a previous package is removed when the run starts).
Every text goes through the run's Redactor before it is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .ids import evidence_folder
from .integrity import (
    DELIVERABLES,
    FORMAT,
    MANIFEST,
    SIGNATURE,
    fingerprint,
    iter_files,
    load_private_key,
    sign,
)
from .model import CheckResult, CriterionDecision, GateDecision
from .redact import Redactor
from .report.html import build_html
from .report.junit import build_junit
from .report.markdown import build_markdown
from .report.summary import overall_verdict, summary_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "HandoffError",
    "HandoffOptions",
    "PackageWritten",
    "check_target",
    "discard_previous",
    "parse_deliverable",
    "write_package",
]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_TMP_MARK = ".tmp-"
#: evidence and deliverable files larger than this are masked and copied in blocks
_BLOCK = 16 * 2**20
#: in the folder being built, so that it never verifies (removed just before the rename)
_INCOMPLETE = "INCOMPLETE"
_OLD_MARK = ".old-"
#: the operations-handoff criterion that evidences each deliverable
_DELIVERABLE_CRITERIA = {
    "production-system": "production-deployment",
    "infrastructure-documentation": "operations-documentation",
    "monitoring-configuration": "monitoring-active",
    "security-configuration": "security-controls",
    "performance-baseline": "performance-baseline",
    "operations-procedures": "operations-documentation",
    "incident-response": "incident-response",
}


class HandoffError(Exception):
    """The package cannot be written (bad target, key, deliverable)."""


@dataclass
class HandoffOptions:
    target: Path
    archive: bool = False
    sign_key: Path | None = None
    #: deliverable id -> file or folder copied into the package
    deliverables: dict[str, Path] = field(default_factory=dict)


@dataclass
class PackageWritten:
    path: Path
    archive: Path | None
    verdict: str
    files: int
    signed_by: str | None
    missing_deliverables: list[str]


def parse_deliverable(text: str, base: Path) -> tuple[str, Path]:
    """``NAME=PATH`` of ``--handoff-deliverable`` (PATH relative to ``base``)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not value.strip():
        raise HandoffError(f"expected NAME=PATH, got {text!r}")
    if name not in DELIVERABLES:
        raise HandoffError(f"unknown deliverable '{name}'; known: {', '.join(DELIVERABLES)}")
    path = Path(value.strip())
    return name, path if path.is_absolute() else base / path


# -- the target folder ----------------------------------------------------------------------
def archive_path(target: Path) -> Path:
    return target.with_name(target.name + ".tar.gz")


def check_target(target: Path) -> None:
    """Refuse a target that exists and is neither an empty folder nor an earlier package."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise HandoffError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise HandoffError(
            f"{target}: exists and is not a handoff package (no {MANIFEST}); refusing to replace it"
        )
    if target.resolve() in (Path.cwd().resolve(), Path.home().resolve(), Path("/")):
        raise HandoffError(f"{target}: choose a folder of its own for the package")


def discard_previous(target: Path) -> None:
    """Remove an earlier package at ``target``, its archive and leftovers of killed runs."""
    check_target(target)
    parent = target.parent
    if parent.is_dir():
        for leftover in parent.iterdir():
            name = leftover.name
            for mark in (_TMP_MARK, _OLD_MARK):
                for stem in (target.name, archive_path(target).name):
                    if name.startswith(f".{stem}{mark}"):
                        _remove(leftover)
    if target.is_dir():
        aside = parent / f".{target.name}{_OLD_MARK}{uuid.uuid4().hex[:8]}"
        os.rename(target, aside)  # at once: a half-deleted package never stays at target
        _remove(aside)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(archive_path(target))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- building -------------------------------------------------------------------------------
class _Builder:
    """Writes files into the temporary package folder and remembers their hashes."""

    def __init__(self, root: Path, redactor: Redactor) -> None:
        self.root = root
        self.redactor = redactor
        self.files: dict[str, tuple[int, str]] = {}

    def write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.files[rel] = (len(data), hashlib.sha256(data).hexdigest())

    def text(self, rel: str, text: str) -> None:
        self.write(rel, self.redactor.text_bulk(text).encode("utf-8", "backslashreplace"))

    def copy(self, rel: str, source: Path) -> bytes:
        """Copy ``source`` with secrets masked (bytes that are not UTF-8 kept as they are).

        Returns the bytes written (empty for a large file, which is copied in blocks)."""
        if source.stat().st_size > _BLOCK:
            self._copy_large(rel, source)
            return b""
        raw = source.read_bytes()
        text = raw.decode("utf-8", "surrogateescape")
        masked = self.redactor.text_bulk(text)
        data = raw if masked == text else masked.encode("utf-8", "surrogateescape")
        self.write(rel, data)
        return data

    def _copy_large(self, rel: str, source: Path) -> None:
        """A large file in blocks that end at a line end, each masked, so memory stays bounded."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as reader, open(path, "xb") as writer:
            rest = b""
            while True:
                block = reader.read(_BLOCK)
                data = rest + block
                cut = data.rfind(b"\n") + 1 if block else len(data)
                if cut == 0:
                    cut = len(data) if len(data) >= 4 * _BLOCK or not block else 0
                head, rest = data[:cut], data[cut:]
                if head:
                    text = head.decode("utf-8", "surrogateescape")
                    out = self.redactor.text_bulk(text).encode("utf-8", "surrogateescape")
                    writer.write(out)
                    digest.update(out)
                    size += len(out)
                if not block:
                    break
            writer.flush()
            os.fsync(writer.fileno())
        self.files[rel] = (size, digest.hexdigest())

    def unique(self, rel: str) -> str:
        if rel not in self.files:
            return rel
        stem, dot, suffix = rel.rpartition(".")
        if not dot or "/" in suffix:
            stem, suffix = rel, ""
        index = 2
        while True:
            candidate = f"{stem}-{index}.{suffix}" if suffix else f"{stem}-{index}"
            if candidate not in self.files:
                return candidate
            index += 1


def _safe(text: str, limit: int = 120) -> str:
    return _SAFE.sub("_", text).strip("._")[:limit] or "item"


def _copy_evidence(
    builder: _Builder, decisions: list[GateDecision], rootdir: Path
) -> tuple[dict[tuple[str, str, str, str], str], dict[str, bytes], list[str]]:
    """Copy every evidence file; returns the package paths, SVG pictures and what was absent."""
    placed: dict[tuple[str, str, str, str], str] = {}
    by_source: dict[Path, str] = {}
    pictures: dict[str, bytes] = {}
    absent: list[str] = []
    for decision in decisions:
        for item in decision.criteria:
            for result in item.results:
                folder = "evidence/" + evidence_folder(
                    result.gate, result.criterion, result.check_id, result.host
                )
                for name, raw_path in result.evidence.items():
                    source = Path(raw_path)
                    source = source if source.is_absolute() else rootdir / source
                    key = (result.gate, result.criterion, result.check_id, name)
                    sources = (
                        list(iter_files(source))
                        if source.is_dir() and not source.is_symlink()
                        else [source]
                    )
                    if not source.exists() or not sources:
                        absent.append(f"{result.check_id}: {name} ({raw_path})")
                        continue
                    if source.is_symlink():  # what it points to is no evidence of the run
                        absent.append(f"{result.check_id}: {name} ({raw_path}: a symbolic link)")
                        continue
                    first = ""
                    for path in sources:
                        if path.resolve() in by_source:
                            first = first or by_source[path.resolve()]
                            continue
                        if source.is_dir():
                            inner = path.relative_to(source).as_posix()
                            rel = f"{folder}/{_safe(source.name)}/{inner}"
                        else:
                            rel = f"{folder}/{_safe(path.name)}"
                        rel = builder.unique(rel)
                        data = builder.copy(rel, path)
                        by_source[path.resolve()] = rel
                        first = first or rel
                        if rel.endswith(".svg") and data:
                            pictures[rel] = data
                    placed[key] = f"{folder}/{_safe(source.name)}" if source.is_dir() else first
    return placed, pictures, absent


def _with_package_paths(
    decisions: list[GateDecision], placed: Mapping[tuple[str, str, str, str], str]
) -> list[GateDecision]:
    """The decisions with evidence paths pointing into the package (the same list if none)."""
    if not placed and not any(r.evidence for d in decisions for c in d.criteria for r in c.results):
        return decisions

    def result(r: CheckResult) -> CheckResult:
        if not r.evidence:
            return r
        evidence = {
            name: placed.get((r.gate, r.criterion, r.check_id, name), "(missing) " + path)
            for name, path in r.evidence.items()
        }
        return dataclasses.replace(r, evidence=evidence)

    def criterion(c: CriterionDecision) -> CriterionDecision:
        return dataclasses.replace(c, results=[result(r) for r in c.results])

    return [dataclasses.replace(d, criteria=[criterion(c) for c in d.criteria]) for d in decisions]


def _deliverables(
    builder: _Builder, given: Mapping[str, Path], decisions: list[GateDecision]
) -> dict[str, dict[str, Any]]:
    verdicts = {
        item.criterion.id: str(item.verdict)
        for decision in decisions
        if decision.gate.name == "operations-handoff"
        for item in decision.criteria
    }
    found: dict[str, dict[str, Any]] = {}
    for key, title in DELIVERABLES.items():
        criterion = _DELIVERABLE_CRITERIA[key]
        info: dict[str, Any] = {
            "title": title,
            "present": False,
            "path": None,
            "files": 0,
            "criterion": f"operations-handoff/{criterion}",
            "criterion_verdict": verdicts.get(criterion),
        }
        source = given.get(key)
        if source is not None:
            if source.is_file() and not source.is_symlink():
                rel = f"deliverables/{key}/{_safe(source.name)}"
                builder.copy(rel, source)
                info.update(present=True, path=rel, files=1)
            elif source.is_dir() and not source.is_symlink():
                count = 0
                for path in iter_files(source):
                    builder.copy(f"deliverables/{key}/{path.relative_to(source).as_posix()}", path)
                    count += 1
                if count:
                    info.update(present=True, path=f"deliverables/{key}", files=count)
                else:
                    info["reason"] = "the folder given is empty"
            else:
                info["reason"] = f"not found: {source}"
        else:
            info["reason"] = "not given (--handoff-deliverable NAME=PATH)"
        found[key] = info
    return found


def _manifest(
    builder: _Builder,
    decisions: list[GateDecision],
    deliverables: dict[str, dict[str, Any]],
    created: str,
    signer: str | None,
    absent: list[str],
    waivers: list[dict[str, Any]],
    placed: Mapping[tuple[str, str, str, str], str],
    run_ids: dict[str, str],
) -> bytes:
    document = {
        "format": FORMAT,
        "created": created,
        "run_ids": run_ids,
        "tool": f"pytest-fwgates {__version__}",
        "verdict": str(overall_verdict(decisions)),
        "gates": [
            {
                "name": d.gate.name,
                "phase": d.gate.phase,
                "verdict": str(d.verdict),
                "status": d.status,
                "criteria": {c.criterion.id: str(c.verdict) for c in d.criteria},
            }
            for d in decisions
        ],
        "deliverables": deliverables,
        "missing_deliverables": [k for k, v in deliverables.items() if not v["present"]],
        "evidence": {"/".join(key): rel for key, rel in sorted(placed.items())},
        "evidence_missing": absent,
        "waivers": waivers,
        "signing_key": signer,
        "files": [
            {"path": rel, "size": size, "sha256": digest}
            for rel, (size, digest) in sorted(builder.files.items())
        ],
    }
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return builder.redactor.text(text).encode("utf-8", "backslashreplace")


def _archive(folder: Path, target: Path) -> Path:
    """``target.tar.gz`` of the package folder, written beside it and renamed into place."""
    final = archive_path(target)
    tmp = final.with_name(f".{final.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "xb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            for path in sorted(iter_files(folder)):
                rel = path.relative_to(folder).as_posix()
                info = tarfile.TarInfo(f"{target.name}/{rel}")
                info.size = path.stat().st_size
                info.mode = 0o644
                info.mtime = int(path.stat().st_mtime)
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
            archive.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return final


def write_package(
    options: HandoffOptions,
    decisions: list[GateDecision],
    *,
    run_info: dict[str, Any],
    environment: dict[str, Any],
    redactor: Redactor,
    rootdir: Path,
    waivers: Iterable[dict[str, Any]] = (),
    key: Ed25519PrivateKey | None = None,
    reports: Mapping[str, str] | None = None,
    run_ids: Mapping[str, str] | None = None,
) -> PackageWritten:
    """Build the package beside ``options.target`` and rename it into place.

    ``reports``: the texts of the run's own ``junit.xml`` and ``summary.json``, reused when
    they are what the package would hold (the JUnit always; the summary when no check has
    evidence files, whose paths the package's summary points into the package).
    """
    reports = reports or {}
    target = options.target
    if key is None and options.sign_key is not None:
        key = load_private_key(options.sign_key)
    signer = fingerprint(key.public_key()) if key is not None else None
    discard_previous(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        (tmp / _INCOMPLETE).write_bytes(b"this package was not finished\n")
        builder = _Builder(tmp, redactor)
        placed, pictures, absent = _copy_evidence(builder, decisions, rootdir)
        packaged = _with_package_paths(decisions, placed)
        deliverables = _deliverables(builder, options.deliverables, decisions)
        waiver_list = list(waivers)
        builder.text("junit.xml", reports.get("junit.xml") or build_junit(packaged))
        summary_text = reports.get("summary.json") if packaged is decisions else None
        if not summary_text:
            summary_text = summary_bytes(packaged, run_info).decode("utf-8", "surrogateescape")
        builder.text("summary.json", summary_text)
        builder.text(
            "summary.md",
            build_markdown(packaged, run=run_info, deliverables=deliverables, waivers=waiver_list),
        )
        builder.text(
            "report.html",
            build_html(
                packaged,
                run=run_info,
                waivers=waiver_list,
                deliverables=deliverables,
                pictures=pictures,
                environment=environment,
            ),
        )
        builder.text(
            "environment.json",
            json.dumps(environment, sort_keys=True, indent=2, ensure_ascii=False) + "\n",
        )
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        manifest = _manifest(
            builder,
            packaged,
            deliverables,
            created,
            signer,
            absent,
            waiver_list,
            placed,
            dict(run_ids or {}),
        )
        builder.write(MANIFEST, manifest)
        if key is not None:
            builder.write(SIGNATURE, sign(manifest, key))
        (tmp / _INCOMPLETE).unlink()
        _fsync_dir(tmp)
        os.rename(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    archive = _archive(target, target) if options.archive else None
    return PackageWritten(
        path=target,
        archive=archive,
        verdict=str(overall_verdict(decisions)),
        files=len(builder.files) + 1 + (1 if key is not None else 0),
        signed_by=signer,
        missing_deliverables=[k for k, v in deliverables.items() if not v["present"]],
    )


def waiver_records(waivers: Any, decisions: list[GateDecision]) -> list[dict[str, Any]]:
    """The run's waivers as plain records for the reports (active and expired)."""
    gates = {d.gate.name for d in decisions}
    records = []
    for expired, group in ((False, waivers.active), (True, waivers.expired)):
        for waiver in group:
            if waiver.gate not in gates:
                continue
            records.append(
                {
                    "gate": waiver.gate,
                    "criterion": waiver.criterion,
                    "check": waiver.check,
                    "approved_by": waiver.approved_by,
                    "expires": waiver.expires.isoformat(),
                    "justification": waiver.justification,
                    "expired": expired,
                }
            )
    return records
