"""What every check type provides, and the code that runs one and judges it."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..bounds import DEFAULT_CONFIDENCE, judge, parse_confidence
from ..exclusive import LockTimeout, exclusive
from ..fsutil import real_folder
from ..hosts import HostPool
from ..ids import evidence_folder
from ..model import CheckResult, CheckSpec, Outcome
from ..process import DEFAULT_KEPT, ProcessResult, run_shell
from ..redact import Redactor
from ..thresholds import BASELINE_PREFIX, number

__all__ = [
    "Check",
    "CheckContext",
    "CheckError",
    "Measurement",
    "evidence_folder_name",
    "run_check",
    "text_failures",
]


class CheckError(Exception):
    """The check could not measure (timeout, command missing, connection refused, ...)."""


@dataclass
class Measurement:
    """What a check saw: numbers held to thresholds, other facts, failed expectations."""

    values: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: evidence files the check wrote (name -> path, inside ``CheckContext.evidence_dir``)
    evidence: dict[str, Path] = field(default_factory=dict)
    #: values whose failed threshold the ``failures`` already tell (e.g. a host check's
    #: ``mismatches``): held to thresholds all the same, without a second message
    explained: frozenset[str] = frozenset()
    #: what each value was measured from (counts, percentile bounds, n of a mean, window
    #: coverage): the bound a threshold is judged on (see :mod:`pytest_fwgates.bounds`)
    support: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: why the check's figures cannot be judged although it measured (e.g. a history file
    #: that cannot be read): the result is an ERROR that keeps what was measured
    errors: list[str] = field(default_factory=list)
    #: why the evidence cannot decide what the check was for although it measured (a canary
    #: the evidence never proved within its allowances): INCONCLUSIVE unless something
    #: failed outright; the thresholds on ``moot`` values are not judged then
    inconclusive: list[str] = field(default_factory=list)
    moot: frozenset[str] = frozenset()


@dataclass
class CheckContext:
    """What a check may use: where to run, and the run's redactor for secrets."""

    rootdir: Path
    redactor: Redactor = field(default_factory=Redactor)
    #: stored baseline figures by "gate::criterion::check::value" (empty until one is stored)
    baselines: dict[str, float] = field(default_factory=dict)

    #: where checks keep evidence files (``<reports>/evidence``); a temporary folder if None
    evidence_root: Path | None = None
    #: run-wide settings check types read (ini options), e.g. ``prometheus_url``
    settings: dict[str, str] = field(default_factory=dict)
    #: things check types share for the whole run (e.g. one HTTP session), by name
    resources: dict[str, Any] = field(default_factory=dict)
    #: finds a baseline figure not yet in ``baselines`` (the stored runs, see baseline.py)
    baseline_lookup: Callable[[CheckSpec, str], float | None] | None = None
    #: what the stored runs hold behind a baseline figure: ``{"histogram": ...}`` or
    #: ``{"count": [k, n]}``, ``{}`` when they hold none (see baseline.py)
    baseline_distribution_lookup: Callable[[CheckSpec, str], dict[str, Any]] | None = None
    #: the recorded outcomes of a deploy, rollback or drill check (see history.py); None
    #: when the run has no store
    history_lookup: Callable[[CheckSpec], list[dict[str, Any]]] | None = None
    #: shows a live progress line of a long check (None: quiet, e.g. -q or an xdist worker)
    progress: Callable[[str], None] | None = None
    #: the testinfra hosts of the run (host checks connect through it, once per host)
    host_pool: HostPool = field(default_factory=HostPool)
    #: evidence folders made (emptied) by this run, by name
    evidence_made: set[str] = field(default_factory=set)

    def confidence(self, spec: CheckSpec | None = None) -> float:
        """The confidence level ``spec``'s thresholds are judged at (its criterion's, or the
        run's ``gate_confidence``)."""
        if spec is not None and spec.confidence is not None:
            return spec.confidence
        text = self.settings.get("confidence")
        return parse_confidence(text) if text else DEFAULT_CONFIDENCE

    def baseline_for(self, spec: CheckSpec, key: str) -> float | None:
        name = f"{spec.gate}::{spec.criterion}::{spec.id}::{key}"
        if name not in self.baselines and self.baseline_lookup is not None:
            found = self.baseline_lookup(spec, key)
            if found is not None:
                self.baselines[name] = found
        return self.baselines.get(name)

    def baseline_distribution(self, spec: CheckSpec, key: str) -> dict[str, Any] | None:
        """The samples or counts the stored runs hold behind ``key``'s baseline (``{}``: none
        stored), or None when no store is looked up (the value is then judged alone)."""
        if self.baseline_distribution_lookup is None:
            return None
        return self.baseline_distribution_lookup(spec, key)

    def evidence_dir(self, spec: CheckSpec) -> Path:
        """A folder of its own for the evidence files of one check: ``evidence_root/<name>``,
        a real folder (a link planted there or at the root is refused: :class:`CheckError`),
        emptied of an earlier run's files the first time this run asks for it. Write into it
        with :func:`pytest_fwgates.fsutil.write_file`."""
        if self.evidence_root is None:
            self.evidence_root = Path(tempfile.mkdtemp(prefix="fwgates-evidence-"))
        name = evidence_folder_name(spec)
        root = self.evidence_root
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            real_folder(root.parent, root.name)
            folder = real_folder(root, name, fresh=name not in self.evidence_made)
        except OSError as exc:
            raise CheckError(f"evidence folder: {exc}") from None
        self.evidence_made.add(name)
        return folder


def text_failures(name: str, text: str, expect: Mapping[str, Any]) -> list[str]:
    """What ``text`` lacks of ``expect[<name>_contains]`` and holds of
    ``expect[<name>_not_contains]`` (each a string or a list of them), in that order: the
    ``stdout`` of a command, the ``body`` of an HTTP response."""

    def strings(key: str) -> list[str]:
        value = expect.get(key)
        if value is None:
            return []
        return [value] if isinstance(value, str) else [str(v) for v in value]

    missing = [
        f"{name} does not contain {t!r}" for t in strings(f"{name}_contains") if t not in text
    ]
    held = [f"{name} contains {t!r}" for t in strings(f"{name}_not_contains") if t in text]
    return missing + held


def evidence_folder_name(spec: CheckSpec) -> str:
    """The evidence folder of a check (see :func:`pytest_fwgates.ids.evidence_folder`)."""
    return evidence_folder(spec.gate, spec.criterion, spec.id, spec.host or "")


class Check:
    """Base of all check types. A subclass sets the class attributes and implements measure().

    ``target_schema`` is the JSON Schema of the value under the type key (``command: "..."``);
    ``options_schema`` the other keys the type accepts; ``threshold_keys`` the numbers it
    measures (held to thresholds); ``expect_schema`` the expectations that are not numbers.
    """

    type_name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    target_schema: ClassVar[dict[str, Any]] = {"type": "string", "minLength": 1}
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {}
    threshold_keys: ClassVar[frozenset[str]] = frozenset()
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {}
    #: expectations that hold when the gate file gives none (e.g. exit_status == 0)
    default_expect: ClassVar[dict[str, Any]] = {}
    default_timeout: ClassVar[float] = 60.0
    #: the target is shell text: variables reach it as environment variables (``spec.env``)
    shell_target: ClassVar[bool] = False
    #: options that are shell text too (e.g. a drill's ``restore:``), sharing ``spec.env``
    shell_options: ClassVar[frozenset[str]] = frozenset()
    #: options a check of this type must give (validated when the gate file is loaded)
    required_options: ClassVar[tuple[str, ...]] = ()
    #: state-changing (deploy, rollback, drill, load): never runs beside another such check,
    #: also across pytest-xdist workers (see :mod:`pytest_fwgates.exclusive`)
    exclusive: ClassVar[bool] = False
    #: measured on hosts: one check per host (``--hosts``, ``hosts:``), ``spec.host`` set
    host_check: ClassVar[bool] = False
    #: every ``${env:...}`` value the check uses is masked in every output (HTTP-like types)
    mask_env: ClassVar[bool] = False
    #: figures only this type (and others that own them too) measures: a Python test cannot
    #: record them, and a catalog standard on them needs a check of an owning type (see
    #: :mod:`pytest_fwgates.owners`; the built-in types are listed there)
    owns: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, spec: CheckSpec, context: CheckContext) -> None:
        self.spec = spec
        self.context = context

    @classmethod
    def measures(cls, target: Any, options: dict[str, Any]) -> frozenset[str]:
        """The threshold keys a check with this target and these options measures: the
        criterion's standards apply to these. All of ``threshold_keys`` unless a type with
        several forms (a query, a list of targets, ...) says otherwise."""
        return cls.threshold_keys

    @property
    def timeout(self) -> float:
        return self.spec.timeout if self.spec.timeout is not None else self.default_timeout

    def measure(self) -> Measurement:
        raise NotImplementedError

    def finish(self, measurement: Measurement) -> None:
        """After :meth:`measure`, outside the check's lock: figures over more than this run
        (the deploy history of timed checks). Nothing by default."""

    def run_local(
        self,
        text: str,
        timeout: float,
        what: str,
        env: Mapping[str, str] | None = None,
        max_output: int | None = None,
    ) -> ProcessResult:
        """Run shell text of this check on this machine, in the rootdir, bounded, its output
        masked; ``env`` holds its values. An error when it cannot start."""
        redactor = self.context.redactor
        try:
            return run_shell(
                text,
                env=env,
                cwd=self.context.rootdir,
                timeout=timeout,
                max_output=DEFAULT_KEPT if max_output is None else max_output,
                mask=redactor.text,
                longest_secret=redactor.longest,
            )
        except OSError as exc:
            raise CheckError(f"{what} could not be run: {exc.strerror or exc}") from None


def _judge(
    spec: CheckSpec, measurement: Measurement, context: CheckContext
) -> tuple[Outcome, list[str]]:
    failures = list(measurement.failures)
    undecided: list[str] = []
    inconclusive: list[str] = []
    confidence = context.confidence(spec)
    inconclusive.extend(measurement.inconclusive)
    for key, threshold in spec.thresholds.items():
        if measurement.inconclusive and key in measurement.moot:
            continue  # a figure of what could not be decided: neither a pass nor a fail
        if key not in measurement.values:
            failures.append(f"{key} was not measured, expected {threshold}")
            continue
        value = measurement.values[key]
        baseline = context.baseline_for(spec, key) if threshold.relative else None
        if baseline is not None:
            # kept with the result: reports show the bound the baseline made
            measurement.facts[BASELINE_PREFIX + key] = baseline
        support = measurement.support.get(key)
        # every relative threshold is decided on what the stored runs hold behind it
        reference = context.baseline_distribution(spec, key) if baseline is not None else None
        judged = judge(key, threshold, value, support, confidence, baseline, reference=reference)
        if judged.state == "fail" and key in measurement.explained and measurement.failures:
            continue  # already failed, with the reason in the host's own words
        if judged.state == "undecided":
            undecided.append(judged.text)
        elif judged.state == "fail":
            failures.append(judged.text)
        elif judged.state == "inconclusive":
            inconclusive.append(judged.text)
        if support is not None and judged.text and judged.state != "fail":
            support["shown"] = judged.text
        if reference is not None and " vs baseline " in judged.text:
            if support is None:
                support = measurement.support[key] = {}
            # the statistical comparison, whatever it decided: the reports show it as the
            # threshold's measure (not the point bound the percentage alone would give)
            support["compared"] = judged.text
    if failures:
        return Outcome.FAILED, failures
    if undecided:
        return Outcome.SKIPPED, undecided
    if inconclusive:
        return Outcome.INCONCLUSIVE, inconclusive
    return Outcome.PASSED, []


def run_check(check: Check, nodeid: str) -> CheckResult:
    """Run a check, judge it against its thresholds, never raise for the check's own failure."""
    spec = check.spec
    redact = check.context.redactor
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            if check.exclusive:
                stack.enter_context(exclusive(check.context.rootdir))
            measurement = check.measure()
        check.finish(measurement)
    except LockTimeout as exc:
        outcome, messages, measurement = Outcome.ERROR, [str(exc)], Measurement()
    except CheckError as exc:
        outcome, messages, measurement = Outcome.ERROR, [str(exc)], Measurement()
    except Exception as exc:  # a check type's bug must not pass a gate
        outcome = Outcome.ERROR
        messages, measurement = [f"{type(exc).__name__}: {exc}"], Measurement()
    else:
        # every measured number as a float: an int too large for one is an infinity
        measurement.values = {k: number(v) for k, v in measurement.values.items()}
        try:
            outcome, messages = _judge(spec, measurement, check.context)
        except Exception as exc:  # never a pass for want of a verdict
            outcome, messages = Outcome.ERROR, [f"{type(exc).__name__}: {exc}"]
        if measurement.errors:
            outcome, messages = Outcome.ERROR, list(measurement.errors)
    duration = time.monotonic() - started
    measured: dict[str, Any] = dict(measurement.values)
    measured.update(measurement.facts)
    return CheckResult(
        nodeid=nodeid,
        gate=spec.gate,
        criterion=spec.criterion,
        check_id=spec.id,
        outcome=outcome,
        measured=redact.value(measured),
        thresholds={k: str(v) for k, v in spec.thresholds.items()},
        overrides=dict(spec.overrides),
        message=redact.text("; ".join(messages)),
        duration=duration,
        location=str(spec.source),
        evidence={name: str(path) for name, path in measurement.evidence.items()},
        target=redact.target(spec.shown_target()),
        host=spec.host or "",
        support=redact.value(measurement.support),
        check_type=spec.type,
    )
