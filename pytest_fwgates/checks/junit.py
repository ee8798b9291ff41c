"""``junit``: JUnit XML of any tool (pytest, Maven Surefire, Jest, gotestsum) as gate evidence.

The target is a file or a glob (``reports/**/*.xml``), relative to the rootdir; every match
is read. Counted per test case: ``tests``, ``failures``, ``errors``, ``skipped``, ``passed``
and ``pass_ratio`` (passed / tests). A file without test cases counts its suites' attributes.
A missing, empty or malformed file is an error naming the file, never a pass. XML is parsed
with defusedxml: no DTDs, no entities, no external references.
"""

from __future__ import annotations

import glob
import math
import shutil
from pathlib import Path
from typing import Any, ClassVar
from xml.etree.ElementTree import Element

from .base import Check, CheckError, Measurement

_MAX_FILES = 1000
_MAX_BYTES = 64 * 2**20
_LISTED = 20


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _count_attr(element: Element, name: str) -> int:
    text = element.get(name)
    if text is None:
        return 0
    try:
        value = float(text)
    except ValueError:
        raise CheckError(
            f"attribute {name}={text!r} of <{_local(element.tag)}> is not a number"
        ) from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise CheckError(f"attribute {name}={text!r} of <{_local(element.tag)}> is not a count")
    return int(value)


def _counts(root: Element) -> tuple[dict[str, int], list[str]]:
    """Counts of one document and the names of its failed or errored tests."""
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise CheckError(f"root element <{_local(root.tag)}> is not <testsuites> or <testsuite>")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failing: list[str] = []
    cases = [e for e in root.iter() if _local(e.tag) == "testcase"]
    for case in cases:
        children = {_local(child.tag) for child in case}
        counts["tests"] += 1
        name = f"{case.get('classname') or ''}::{case.get('name') or '?'}".lstrip(":")
        # Surefire's flakyFailure / rerunFailure are retries that ended passing
        if "error" in children:
            counts["errors"] += 1
            failing.append(f"{name} (error)")
        elif "failure" in children:
            counts["failures"] += 1
            failing.append(name)
        elif "skipped" in children or case.get("status") in ("skipped", "disabled"):
            counts["skipped"] += 1
    if not cases:
        # a summary without test cases: the leaf suites' attributes (or the root's)
        suites = [e for e in root.iter() if _local(e.tag) == "testsuite"] or [root]
        leaves = [s for s in suites if not any(_local(c.tag) == "testsuite" for c in s)]
        for suite in leaves or suites:
            for key in counts:
                counts[key] += _count_attr(suite, key)
            counts["skipped"] += _count_attr(suite, "disabled")
    return counts, failing


class JUnitCheck(Check):
    type_name = "junit"
    summary = "Test results from JUnit XML files (a path or glob): tests, failures, pass ratio."
    target_schema: ClassVar[dict[str, Any]] = {"type": "string", "minLength": 1}
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "min_files": {"type": "integer", "minimum": 1, "description": "files the glob must match"}
    }
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {"tests", "failures", "errors", "skipped", "passed", "pass_ratio", "files"}
    )
    default_expect: ClassVar[dict[str, Any]] = {
        "tests": ">= 1",
        "failures": "== 0",
        "errors": "== 0",
    }
    default_timeout = 30.0

    def _paths(self) -> list[Path]:
        pattern = self.spec.target
        base = Path(pattern) if Path(pattern).is_absolute() else self.context.rootdir / pattern
        if glob.has_magic(pattern):
            found = sorted(Path(p) for p in glob.glob(str(base), recursive=True))
            found = [p for p in found if p.is_file()]
            if not found:
                raise CheckError(f"{pattern}: no JUnit XML file matches")
            if len(found) > _MAX_FILES:
                raise CheckError(f"{pattern}: {len(found)} files match, at most {_MAX_FILES}")
        else:
            if not base.is_file():
                raise CheckError(f"{pattern}: no such JUnit XML file")
            found = [base]
        needed = int(self.spec.options.get("min_files", 1))
        if len(found) < needed:
            raise CheckError(f"{pattern}: {len(found)} file(s) match, {needed} expected")
        return found

    def measure(self) -> Measurement:
        import defusedxml.ElementTree as SafeET
        from defusedxml import DefusedXmlException

        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        failing: list[str] = []
        paths = self._paths()
        for path in paths:
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise CheckError(f"{path}: cannot read: {exc.strerror}") from None
            if size == 0:
                raise CheckError(f"{path}: empty file, not JUnit XML")
            if size > _MAX_BYTES:
                raise CheckError(f"{path}: larger than {_MAX_BYTES // 2**20} MiB")
            try:
                root = SafeET.parse(str(path), forbid_dtd=True).getroot()
            except DefusedXmlException as exc:
                raise CheckError(f"{path}: refused: {type(exc).__name__} (DTD or entity)") from None
            except SafeET.ParseError as exc:
                raise CheckError(f"{path}: malformed XML: {exc}") from None
            except OSError as exc:
                raise CheckError(f"{path}: cannot read: {exc.strerror}") from None
            try:
                counts, names = _counts(root)
            except CheckError as exc:
                raise CheckError(f"{path}: {exc}") from None
            for key, value in counts.items():
                totals[key] += value
            failing.extend(names)
        passed = totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"]
        ratio = passed / totals["tests"] if totals["tests"] else 0.0
        values = {key: float(value) for key, value in totals.items()}
        values.update(passed=float(max(passed, 0)), pass_ratio=ratio, files=float(len(paths)))
        root_dir = self.context.rootdir
        shown = [
            str(p.relative_to(root_dir)) if p.is_relative_to(root_dir) else str(p) for p in paths
        ]
        facts: dict[str, Any] = {"junit_files": shown[:_LISTED]}
        if failing:
            facts["failing_tests"] = failing[:_LISTED]
        return Measurement(values=values, facts=facts, evidence=self._keep(paths[:_LISTED]))

    def _keep(self, paths: list[Path]) -> dict[str, Path]:
        """Copies of the files read, as the check's evidence."""
        folder = self.context.evidence_dir(self.spec)
        kept: dict[str, Path] = {}
        for index, path in enumerate(paths):
            copy = folder / f"{index:02d}-{path.name}"
            shutil.copyfile(path, copy)
            kept[f"junit-{index:02d}"] = copy
        return kept
