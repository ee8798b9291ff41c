"""The data every part of the plugin shares: gates, criteria, checks, results, verdicts."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .thresholds import Threshold


class Outcome(enum.StrEnum):
    """What happened to one check."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    #: the point estimate met the threshold, the bound its evidence allows did not
    INCONCLUSIVE = "inconclusive"


class CriterionVerdict(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    NOT_EVALUATED = "NOT_EVALUATED"
    WAIVED = "WAIVED"
    INCONCLUSIVE = "INCONCLUSIVE"


class GateVerdict(enum.StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    HUMAN_REVIEW_REQUIRED = "HUMAN_REVIEW_REQUIRED"
    INCONCLUSIVE = "INCONCLUSIVE"


#: exit status of a run per overall gate verdict (pytest's own 2, 3 and 4 are kept)
EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_HUMAN_REVIEW = 6
EXIT_INCONCLUSIVE = 7


@dataclass(frozen=True)
class Source:
    """Where something was written: a file and a 1-based line."""

    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class CheckSpec:
    """One check as a gate file declares it, with its effective thresholds."""

    type: str
    target: str
    id: str
    gate: str
    criterion: str
    source: Source
    #: measured value name -> threshold it is held to (standards, overrides and expect merged)
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    #: measured value name -> (standard, override) where the gate file replaced a standard
    overrides: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: expectations that are not thresholds (e.g. ``stdout_contains``)
    expect: dict[str, Any] = field(default_factory=dict)
    #: type-specific settings (everything but the type key, id, expect, timeout)
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    #: values of gate-file variables used in shell text, by the environment variable that
    #: carries each (``FWGATES_VAR_url`` -> value); the text holds only references to them
    env: dict[str, str] = field(default_factory=dict)
    #: the target with every value resolved, for reports (secrets are masked when shown)
    display_target: str = ""
    #: values from the environment resolved into ``display_target`` of a check that does not
    #: mask them run-wide (a command): masked wherever its target is shown, its id included
    private_values: tuple[str, ...] = ()
    #: for a host check: the id of the host it runs on (``ssh://web1``, ``local://``)
    host: str | None = None
    #: the confidence level its thresholds are judged at (None: the run's, ``gate_confidence``)
    confidence: float | None = None

    @property
    def name(self) -> str:
        """The item name: the check id."""
        return self.id

    def shown_target(self) -> str:
        """The target as reports show it: resolved, its environment values masked."""
        from .redact import Redactor

        text = self.display_target or self.target
        return Redactor(self.private_values).text(text) if self.private_values else text

    def __repr__(self) -> str:
        # no target, options or values: they may hold resolved secrets (pytest --debug
        # logs the arguments of every hook call, and gates hold their checks)
        return (
            f"CheckSpec(type={self.type!r}, id={self.id!r}, gate={self.gate!r}, "
            f"criterion={self.criterion!r}, source={str(self.source)!r})"
        )


@dataclass
class Criterion:
    id: str
    title: str
    description: str = ""
    required: bool = True
    human_review: bool = False
    #: the confidence level its thresholds are judged at (None: the run's)
    confidence: float | None = None
    #: the confidence the file that defined the criterion set (lowering it loosens it)
    standard_confidence: float | None = None
    #: standard thresholds of the catalog: measured value name -> threshold text
    standards: dict[str, str] = field(default_factory=dict)
    #: values some check must measure, whatever their thresholds (``p95_ms``)
    measures: list[str] = field(default_factory=list)
    #: thresholds the user's gate file set for the whole criterion (visible overrides)
    overrides: dict[str, tuple[str, str]] = field(default_factory=dict)
    checks: list[CheckSpec] = field(default_factory=list)
    #: for a criterion that stands for an included gate: that gate's name
    include: str | None = None
    source: Source | None = None

    def thresholds_in_force(self) -> dict[str, str]:
        merged = dict(self.standards)
        for key, (_standard, override) in self.overrides.items():
            merged[key] = override
        return merged


@dataclass
class Gate:
    name: str
    title: str
    description: str = ""
    phase: str = ""
    #: the status a PASSED verdict earns (PRODUCTION_READY, ...)
    status: str = ""
    includes: list[str] = field(default_factory=list)
    criteria: dict[str, Criterion] = field(default_factory=dict)
    #: files that define or extend the gate, catalog first
    files: list[Path] = field(default_factory=list)
    in_catalog: bool = False

    def checks(self) -> list[CheckSpec]:
        return [check for criterion in self.criteria.values() for check in criterion.checks]


@dataclass
class CheckResult:
    """A finished check (a YAML check or a marked Python test) as the verdict sees it."""

    nodeid: str
    gate: str
    criterion: str
    check_id: str
    outcome: Outcome
    measured: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, tuple[str, str]] = field(default_factory=dict)
    message: str = ""
    duration: float = 0.0
    location: str = ""
    #: evidence files of the check: name -> path (command output, Locust stats, timelines)
    evidence: dict[str, str] = field(default_factory=dict)
    #: what the check measured (URL, host, command), credentials removed and secrets masked
    target: str = ""
    #: the host a host check ran on ("" for checks that do not run on a host)
    host: str = ""
    #: what each figure was measured from (counts, percentile bounds, n of a mean, window
    #: coverage) and what its bound showed; see :mod:`pytest_fwgates.bounds`
    support: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the check type that measured ("" for a marked Python test)
    check_type: str = ""
    #: a marked Python test's values a check measured for it (gate_check, deploy_monitor):
    #: figure -> check type; the test's other values it recorded itself
    measured_by: dict[str, str] = field(default_factory=dict)

    def by(self, key: str) -> str:
        """The check type that measured ``key`` ("" when a Python test recorded it)."""
        return self.measured_by.get(key, self.check_type)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "type": self.check_type,
            "gate": self.gate,
            "criterion": self.criterion,
            "check": self.check_id,
            "host": self.host,
            "outcome": str(self.outcome),
            "measured": dict(self.measured),
            "thresholds": dict(self.thresholds),
            "overrides": {
                k: {"standard": s, "override": o} for k, (s, o) in self.overrides.items()
            },
            "message": self.message,
            "duration": round(self.duration, 6),
            "location": self.location,
            "evidence": dict(self.evidence),
            "target": self.target,
            "support": {k: dict(v) for k, v in self.support.items()},
            **({"measured_by": dict(self.measured_by)} if self.measured_by else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            nodeid=str(data["nodeid"]),
            gate=str(data["gate"]),
            criterion=str(data["criterion"]),
            check_id=str(data["check"]),
            outcome=Outcome(data["outcome"]),
            measured=dict(data.get("measured") or {}),
            thresholds=dict(data.get("thresholds") or {}),
            overrides={
                k: (str(v["standard"]), str(v["override"]))
                for k, v in (data.get("overrides") or {}).items()
            },
            message=str(data.get("message") or ""),
            duration=float(data.get("duration") or 0.0),
            location=str(data.get("location") or ""),
            evidence={str(k): str(v) for k, v in (data.get("evidence") or {}).items()},
            target=str(data.get("target") or ""),
            host=str(data.get("host") or ""),
            support={
                str(k): dict(v)
                for k, v in (data.get("support") or {}).items()
                if isinstance(v, dict)
            },
            check_type=str(data.get("type") or ""),
            measured_by={str(k): str(v) for k, v in (data.get("measured_by") or {}).items()},
        )


@dataclass
class CriterionDecision:
    criterion: Criterion
    verdict: CriterionVerdict
    reason: str
    results: list[CheckResult] = field(default_factory=list)
    waived_by: str | None = None


@dataclass
class GateDecision:
    gate: Gate
    verdict: GateVerdict
    reason: str
    criteria: list[CriterionDecision] = field(default_factory=list)
    status: str = ""
    warnings: list[str] = field(default_factory=list)
