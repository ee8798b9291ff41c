"""``junit``: JUnit XML of any tool (pytest, Maven Surefire, Jest, gotestsum) as gate evidence.

The target is a file or a glob (``reports/**/*.xml``), relative to the rootdir; every match
is read. Counted per test case: ``tests``, ``failures``, ``errors``, ``skipped`` (skipped,
disabled or not run: GoogleTest's ``status="notrun"``, ``result="skipped"``/``"suppressed"``),
``passed`` and ``pass_ratio`` (passed / tests). A failure or error written outside any test
case (Ant's class that failed to load) counts; a leaf suite's attributes count when they say
worse than its test cases. By default a check needs at least one passed test and no failure
or error.
A missing, empty or malformed file is an error naming the file, never a pass. XML is parsed
with defusedxml: no DTDs, no entities, no external references.
"""

from __future__ import annotations

import glob
import math
from pathlib import Path
from typing import Any, ClassVar
from xml.etree.ElementTree import Element

from ..bounds import count_support
from ..fsutil import copy_file
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


#: a test case's ``result``/``status`` words that mean it did not run (GoogleTest writes
#: ``status="notrun" result="suppressed"`` for DISABLED_ tests, ``result="skipped"`` for
#: GTEST_SKIP; others write ``status="skipped"``/``"disabled"``)
_NOT_RUN = frozenset({"notrun", "skipped", "suppressed", "disabled", "ignored", "pending"})
_KEYS = ("tests", "failures", "errors", "skipped")
#: Surefire's records of runs of a test that failed before a rerun passed (rerunFailure also
#: stands beside a final failure): the test passed only on a rerun
_RERUN_TAGS = frozenset({"flakyFailure", "flakyError", "rerunFailure", "rerunError"})


def _case(case: Element) -> str:
    """What one test case shows: ``error``, ``failure``, ``skipped`` or ``passed``."""
    children = {_local(child.tag) for child in case}
    if "error" in children:
        return "error"
    if "failure" in children:
        return "failure"
    words = {(case.get(name) or "").strip().lower() for name in ("status", "result")}
    if "skipped" in children or not _NOT_RUN.isdisjoint(words):
        return "skipped"
    if not _RERUN_TAGS.isdisjoint(children):
        return "flaky"  # failed, then passed on a rerun: a pass, counted apart
    return "passed"


def _suite_counts(suite: Element, failing: list[str]) -> dict[str, int]:
    """Counts of a suite's own test cases and of failures reported outside any test case
    (Ant writes a class that failed to load as an ``<error>`` directly under its suite)."""
    counts = dict.fromkeys((*_KEYS, "flaky"), 0)
    for child in suite:
        tag = _local(child.tag)
        if tag == "testcase":
            counts["tests"] += 1
            shown = _case(child)
            name = f"{child.get('classname') or ''}::{child.get('name') or '?'}".lstrip(":")
            if shown == "error":
                counts["errors"] += 1
                failing.append(f"{name} (error)")
            elif shown == "failure":
                counts["failures"] += 1
                failing.append(name)
            elif shown == "skipped":
                counts["skipped"] += 1
            elif shown == "flaky":
                counts["flaky"] += 1
                failing.append(f"{name} (passed on a rerun)")
        elif tag in ("error", "failure"):
            # a test of its own that could not run (it counts in ``tests`` too)
            key = "errors" if tag == "error" else "failures"
            counts["tests"] += 1
            counts[key] += 1
            failing.append(f"{suite.get('name') or '?'} (suite {tag})")
    return counts


def _stated(suite: Element) -> dict[str, int]:
    """The counts a suite's (or ``<testsuites>``') own attributes state."""
    stated = {key: _count_attr(suite, key) for key in _KEYS}
    stated["skipped"] += _count_attr(suite, "disabled")
    stated["flaky"] = _count_attr(suite, "flakes")  # Surefire 3
    return stated


def _nearest_suites(element: Element) -> list[Element]:
    """The ``<testsuite>`` elements nested in ``element`` with no suite between."""
    found: list[Element] = []
    for child in element:
        tag = _local(child.tag)
        if tag == "testsuite":
            found.append(child)
        elif tag != "testcase":
            found.extend(_nearest_suites(child))
    return found


def _tree_counts(suite: Element, failing: list[str]) -> dict[str, int]:
    """Counts of a suite: its own test cases and failures written outside any case, plus
    its nested suites; its own attributes count when they say worse (more tests, failures,
    errors or skipped), at every level: a file whose attributes report an error that no test
    case shows still reports the error."""
    counts = _suite_counts(suite, failing)
    for child in _nearest_suites(suite):
        nested = _tree_counts(child, failing)
        for key in counts:
            counts[key] += nested[key]
    stated = _stated(suite)
    return {key: max(counts[key], stated[key]) for key in counts}


def _counts(root: Element) -> tuple[dict[str, int], list[str]]:
    """Counts of one document and the names of its failed or errored tests (test cases
    straight under ``<testsuites>`` count too: some tools write them)."""
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise CheckError(f"root element <{_local(root.tag)}> is not <testsuites> or <testsuite>")
    failing: list[str] = []
    counts = _tree_counts(root, failing)
    return counts, failing


class JUnitCheck(Check):
    type_name = "junit"
    summary = "Test results from JUnit XML files (a path or glob): tests, failures, pass ratio."
    target_schema: ClassVar[dict[str, Any]] = {"type": "string", "minLength": 1}
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "min_files": {"type": "integer", "minimum": 1, "description": "files the glob must match"}
    }
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {"tests", "failures", "errors", "skipped", "passed", "pass_ratio", "files", "flaky"}
    )
    #: at least one test ran and passed, none failed or errored: a file of skipped or
    #: disabled tests proves nothing (``skipped: "== 0"`` forbids skips as well; the
    #: catalog's development-handoff-validation holds its test results to it)
    default_expect: ClassVar[dict[str, Any]] = {
        "tests": ">= 1",
        "passed": ">= 1",
        "failures": "== 0",
        "errors": "== 0",
        # a test that passed only on a rerun is a failure, as a gate check's rerun is; a team
        # that accepts them says so (``flaky: "<= 2"``), visibly
        "flaky": "== 0",
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

    @staticmethod
    def _distinct(paths: list[Path]) -> tuple[list[Path], list[Path]]:
        """The files whose content differs from every earlier one, and the copies: a glob
        that matches a results file and its copy (an artifact folder, a merged download)
        must not count its tests twice."""
        import hashlib

        seen: set[tuple[int, str]] = set()
        distinct: list[Path] = []
        copies: list[Path] = []
        for path in paths:
            try:
                size = path.stat().st_size
                if size > _MAX_BYTES:
                    distinct.append(path)  # refused with its size below
                    continue
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                distinct.append(path)  # the error is reported when it is read
                continue
            if (size, digest) in seen:
                copies.append(path)
            else:
                seen.add((size, digest))
                distinct.append(path)
        return distinct, copies

    def measure(self) -> Measurement:
        import defusedxml.ElementTree as SafeET
        from defusedxml import DefusedXmlException

        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "flaky": 0}
        failing: list[str] = []
        paths, copies = self._distinct(self._paths())
        needed = int(self.spec.options.get("min_files", 1))
        if copies and len(paths) < needed:
            raise CheckError(
                f"{self.spec.target}: {len(paths)} distinct file(s) match, {needed} expected "
                f"({len(copies)} more are copies of them)"
            )
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
        support: dict[str, dict[str, Any]] = {}
        if totals["tests"]:
            support["pass_ratio"] = count_support(
                max(int(passed), 0), int(totals["tests"]), "tests", "passed"
            )
        root_dir = self.context.rootdir
        shown = [
            str(p.relative_to(root_dir)) if p.is_relative_to(root_dir) else str(p) for p in paths
        ]
        facts: dict[str, Any] = {"junit_files": shown[:_LISTED]}
        if copies:
            # the same results twice would count every test twice (pass_ratio's counts too)
            facts["copies_not_counted"] = [
                str(p.relative_to(root_dir)) if p.is_relative_to(root_dir) else str(p)
                for p in copies[:_LISTED]
            ]
        if failing:
            facts["failing_tests"] = failing[:_LISTED]
        return Measurement(
            values=values, facts=facts, evidence=self._keep(paths[:_LISTED]), support=support
        )

    def _keep(self, paths: list[Path]) -> dict[str, Path]:
        """Copies of the files read, as the check's evidence."""
        folder = self.context.evidence_dir(self.spec)
        kept: dict[str, Path] = {}
        for index, path in enumerate(paths):
            copy = copy_file(path, folder / f"{index:02d}-{path.name}")
            kept[f"junit-{index:02d}"] = copy
        return kept
