"""``scan``: run a vulnerability scanner and gate on its findings by severity.

The scanner runs like a ``command`` check (a shell of its own, bounded, gate-file values only
in its environment). Its report — on stdout, or in the file named by ``report:`` — is read as
pip-audit JSON or SARIF 2.1 (``format: auto`` tells them apart). Findings are counted by
severity; those at or above ``severity:`` (default ``high``) are ``findings_blocking``, held to
``== 0`` unless the gate says otherwise.

Fail closed: a scanner that cannot run, is stopped at its bound, exits with a status not in
``exit_status`` (default 0 and 1: scanners exit 1 when they find something) or leaves no
readable report is an ERROR. A finding without a severity (pip-audit reports none) counts as
``unknown_severity`` (default ``critical``). Dependencies the scanner could not audit
(pip-audit's ``skip_reason``) are counted as ``unaudited``, held to ``== 0``: a scan that
checked nothing is not a clean scan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from ..fsutil import write_file
from .base import Check, CheckError, Measurement

__all__ = ["SEVERITIES", "ScanCheck", "findings_from_report"]

#: severities from the most to the least severe
SEVERITIES = ("critical", "high", "medium", "low")
_REPORT_MAX = 64 * 1024 * 1024
_SARIF_LEVELS = {"error": "high", "warning": "medium", "note": "low", "none": "low"}


class ReportError(ValueError):
    """The scanner's output is not a report this check reads."""


def _cvss_severity(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def _severity_word(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return _cvss_severity(float(value))
    except (TypeError, ValueError):
        word = str(value).strip().lower()
        word = {"moderate": "medium", "important": "high", "negligible": "low"}.get(word, word)
        return word if word in SEVERITIES else None


def _pip_audit(doc: Any) -> tuple[list[dict[str, Any]], list[str]]:
    deps = doc.get("dependencies") if isinstance(doc, dict) else doc
    if not isinstance(deps, list):
        raise ReportError("no 'dependencies' list")
    findings: list[dict[str, Any]] = []
    unaudited: list[str] = []
    for dep in deps:
        if not isinstance(dep, dict) or "name" not in dep:
            raise ReportError("a dependency without a name")
        if "skip_reason" in dep:
            unaudited.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        for vuln in dep.get("vulns") or []:
            findings.append(
                {
                    "id": str(vuln.get("id")),
                    "package": f"{dep['name']} {dep.get('version', '')}".strip(),
                    "severity": None,
                    "fix_versions": list(vuln.get("fix_versions") or []),
                    "aliases": list(vuln.get("aliases") or []),
                }
            )
    return findings, unaudited


def _suppressed(result: dict[str, Any]) -> bool:
    """Whether a SARIF result is suppressed: it has suppressions and each is accepted (a
    suppression without ``status`` is). One ``underReview`` or ``rejected`` leaves it open
    (SARIF 2.1.0, 3.35.3: a non-empty ``suppressions`` alone no longer means suppressed)."""
    suppressions = result.get("suppressions")
    if not isinstance(suppressions, list) or not suppressions:
        return False
    return all(
        isinstance(item, dict) and item.get("status", "accepted") == "accepted"
        for item in suppressions
    )


def _sarif(doc: dict[str, Any]) -> list[dict[str, Any]]:
    runs = doc.get("runs")
    if not isinstance(runs, list):
        raise ReportError("no 'runs' list")
    findings: list[dict[str, Any]] = []
    for run in runs:
        if not isinstance(run, dict):
            raise ReportError("a run that is not an object")
        for invocation in run.get("invocations") or []:
            if isinstance(invocation, dict) and invocation.get("executionSuccessful") is False:
                raise ReportError("the scanner reports a run that did not succeed")
        driver = (run.get("tool") or {}).get("driver") or {}
        rules = {
            str(rule.get("id")): rule
            for rule in driver.get("rules") or []
            if isinstance(rule, dict)
        }
        for result in run.get("results") or []:
            if _suppressed(result) or result.get("baselineState") == "absent":
                continue  # accepted or fixed: not an open finding
            rule = rules.get(str(result.get("ruleId")), {})
            props = {**(rule.get("properties") or {}), **(result.get("properties") or {})}
            severity = _severity_word(props.get("security-severity"))
            if severity is None:
                severity = _severity_word(props.get("severity"))
            if severity is None:
                default = (rule.get("defaultConfiguration") or {}).get("level")
                level = result.get("level") or default or "warning"
                severity = _SARIF_LEVELS.get(str(level), "medium")
            location = ""
            for loc in result.get("locations") or []:
                physical = (loc or {}).get("physicalLocation") or {}
                location = str((physical.get("artifactLocation") or {}).get("uri") or "")
                break
            findings.append(
                {
                    "id": str(result.get("ruleId") or rule.get("id") or "?"),
                    "package": location,
                    "severity": severity,
                    "message": str((result.get("message") or {}).get("text") or "")[:200],
                }
            )
    return findings


def findings_from_report(
    text: str, kind: str = "auto"
) -> tuple[str, list[dict[str, Any]], list[str], int]:
    """(format, findings, unaudited dependencies, what was scanned) of a pip-audit JSON or
    SARIF report; what was scanned: the dependencies audited, or the runs of the SARIF log."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"not JSON ({exc})") from None
    if kind == "auto":
        kind = "sarif" if isinstance(doc, dict) and "runs" in doc else "pip-audit"
    if kind == "sarif":
        if not isinstance(doc, dict):
            raise ReportError("a SARIF report is a JSON object")
        runs = doc.get("runs")
        return kind, _sarif(doc), [], len(runs) if isinstance(runs, list) else 0
    findings, unaudited = _pip_audit(doc)
    deps = doc.get("dependencies") if isinstance(doc, dict) else doc
    audited = len(deps) - len(unaudited) if isinstance(deps, list) else 0
    return kind, findings, unaudited, audited


class ScanCheck(Check):
    type_name = "scan"
    summary = "Run a vulnerability scanner (pip-audit JSON, SARIF); findings by severity."
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {"findings", "findings_blocking", "unaudited", "scanned", *SEVERITIES, "unknown"}
    )
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "format": {"enum": ["auto", "pip-audit", "sarif"]},
        "report": {
            "type": "string",
            "minLength": 1,
            "description": "the report file the scanner writes (default: its stdout)",
        },
        "severity": {
            "enum": list(SEVERITIES),
            "description": "findings at or above it block (default: high)",
        },
        "unknown_severity": {
            "enum": list(SEVERITIES),
            "description": "severity of a finding the report gives none (default: critical)",
        },
        "exit_status": {
            "type": "array",
            "items": {"type": "integer"},
            "minItems": 1,
            "description": "exit statuses of a scan that ran (default: [0, 1])",
        },
    }
    default_expect: ClassVar[dict[str, Any]] = {"findings_blocking": "== 0", "unaudited": "== 0"}
    default_timeout = 600.0
    shell_target = True

    def measure(self) -> Measurement:
        options = self.spec.options
        report_path = self._report_path()
        if report_path is not None and report_path.exists():
            report_path.unlink()  # a report left by an earlier run must not count
        result = self.run_local(
            self.spec.target, self.timeout, "scanner", self.spec.env, max_output=_REPORT_MAX
        )
        last = (result.stderr or result.stdout).strip().splitlines()
        note = f": {last[-1][:300]}" if last else ""
        if result.timed_out or result.exit_status is None:
            raise CheckError(f"scanner did not finish within {self.timeout:g} s{note}")
        accepted = [int(v) for v in options.get("exit_status") or [0, 1]]
        if result.exit_status not in accepted:
            raise CheckError(f"scanner failed with exit status {result.exit_status}{note}")
        if report_path is not None:
            if not report_path.is_file():
                raise CheckError(f"scanner wrote no report {report_path}{note}")
            text = report_path.read_text(encoding="utf-8", errors="replace")
        elif result.truncated:
            raise CheckError("the scanner's report is too long for stdout: write it to report:")
        else:
            text = result.stdout
        try:
            kind, findings, unaudited, scanned = findings_from_report(
                text, str(options.get("format", "auto"))
            )
        except ReportError as exc:
            status = result.exit_status
            raise CheckError(f"no readable scan report (exit status {status}): {exc}") from None
        if scanned == 0:
            what = "no run" if kind == "sarif" else "no audited dependency"
            raise CheckError(f"the scanner scanned nothing: its {kind} report holds {what}{note}")
        measurement = self._judge(kind, findings, unaudited, report_path, text)
        measurement.values["scanned"] = float(scanned)
        return measurement

    def _report_path(self) -> Path | None:
        given = self.spec.options.get("report")
        if not given:
            return None
        path = Path(str(given))
        return path if path.is_absolute() else self.context.rootdir / path

    def _judge(
        self,
        kind: str,
        findings: list[dict[str, Any]],
        unaudited: list[str],
        report_path: Path | None,
        text: str,
    ) -> Measurement:
        options = self.spec.options
        unknown_as = str(options.get("unknown_severity") or "critical")
        floor = SEVERITIES.index(str(options.get("severity") or "high"))
        counts = dict.fromkeys((*SEVERITIES, "unknown"), 0)
        blocking: list[str] = []
        for finding in findings:
            severity = finding["severity"]
            counts[severity or "unknown"] += 1
            effective = severity or unknown_as
            if SEVERITIES.index(effective) <= floor:
                blocking.append(f"{finding['id']} ({finding['package']}, {effective})")
        values = {key: float(n) for key, n in counts.items()}
        values["findings"] = float(len(findings))
        values["findings_blocking"] = float(len(blocking))
        values["unaudited"] = float(len(unaudited))
        facts: dict[str, Any] = {"format": kind}
        if blocking:
            facts["blocking"] = blocking[:50]
        if unaudited:
            facts["not_audited"] = unaudited[:50]
        measurement = Measurement(values=values, facts=facts)
        if report_path is None:
            path = write_file(
                self.context.evidence_dir(self.spec) / "scan-report.json",
                text,
                errors="backslashreplace",
            )
            measurement.evidence["report"] = path
        else:
            measurement.evidence["report"] = report_path
        return measurement
