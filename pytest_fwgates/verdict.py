"""The fail-closed verdict rules (design §5), as plain functions of gates and results.

- A criterion passes when it has at least one check and all of them passed.
- A failed or errored check fails it. No checks, a skipped check, a check that never ran,
  or a standard threshold no check measured: NOT_EVALUATED, which fails a required criterion.
- An advisory criterion that does not pass is a WARN.
- A valid waiver turns FAIL or NOT_EVALUATED into WAIVED; an expired one is ignored, said so.
- The gate is PASSED when every required criterion passes; WAIVED criteria or criteria marked
  for human review make it HUMAN_REVIEW_REQUIRED. Problems of the run itself (collection
  errors, an interrupted run, no check run at all) make it FAILED.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from .model import (
    CheckResult,
    Criterion,
    CriterionDecision,
    CriterionVerdict,
    Gate,
    GateDecision,
    GateVerdict,
    Outcome,
)
from .thresholds import ThresholdError, format_value, parse
from .waivers import WaiverSet

__all__ = ["decide_all", "decide_gate", "overall"]

_RAN = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR)


def _hold_to_standards(criterion: Criterion, result: CheckResult) -> CheckResult:
    """Hold values a check recorded to the criterion's standards it did not already apply."""
    if result.outcome is not Outcome.PASSED:
        return result
    failures = []
    thresholds = dict(result.thresholds)
    for key, text in criterion.thresholds_in_force().items():
        value = result.measured.get(key)
        if key in result.thresholds or not isinstance(value, int | float):
            continue
        thresholds[key] = text
        try:
            holds = parse(text).holds(key, float(value))
        except ThresholdError as exc:
            failures.append(f"{key}: {exc}")
            continue
        if holds is False:
            failures.append(f"{key} = {format_value(key, float(value))}, expected {text}")
    if not failures:
        result.thresholds = thresholds
        return result
    return dataclasses.replace(
        result, outcome=Outcome.FAILED, thresholds=thresholds, message="; ".join(failures)
    )


def _unmeasured(criterion: Criterion, results: Iterable[CheckResult]) -> list[str]:
    measured = {
        key
        for result in results
        for key, value in result.measured.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    in_force = criterion.thresholds_in_force()
    missing = [f"{key} {text}" for key, text in in_force.items() if key not in measured]
    missing += [
        f"{key} (measured value demanded)"
        for key in criterion.measures
        if key not in measured and key not in in_force
    ]
    return missing


def _evaluate(criterion: Criterion, results: list[CheckResult]) -> tuple[CriterionVerdict, str]:
    bad = [r for r in results if r.outcome in (Outcome.FAILED, Outcome.ERROR)]
    if bad:
        first = bad[0]
        word = "errored" if first.outcome is Outcome.ERROR else "failed"
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        return CriterionVerdict.FAIL, f"{first.check_id} {word}: {first.message}{more}"
    if not results:
        return CriterionVerdict.NOT_EVALUATED, "no checks"
    skipped = [r for r in results if r.outcome is Outcome.SKIPPED]
    if skipped:
        first = skipped[0]
        return (
            CriterionVerdict.NOT_EVALUATED,
            f"{len(skipped)} of {len(results)} checks did not run: "
            f"{first.check_id}: {first.message or 'skipped'}",
        )
    missing = _unmeasured(criterion, results)
    if missing:
        return CriterionVerdict.NOT_EVALUATED, f"standard not measured by any check: {missing[0]}"
    return CriterionVerdict.PASS, ""


def _decide_criterion(
    gate: Gate,
    criterion: Criterion,
    results: list[CheckResult],
    waivers: WaiverSet,
    included: dict[str, GateDecision],
) -> CriterionDecision:
    if criterion.include is not None:
        sub = included.get(criterion.include)
        if sub is None:
            return CriterionDecision(criterion, CriterionVerdict.NOT_EVALUATED, "not decided")
        if sub.verdict is GateVerdict.FAILED:
            return CriterionDecision(
                criterion, CriterionVerdict.FAIL, f"gate {sub.gate.name}: {sub.reason}"
            )
        # an included gate that needs human review passes here, and the review carries over
        reason = "" if sub.verdict is GateVerdict.PASSED else f"gate {sub.gate.name}: {sub.reason}"
        return CriterionDecision(criterion, CriterionVerdict.PASS, reason)

    results = [_hold_to_standards(criterion, r) for r in results]
    verdict, reason = _evaluate(criterion, results)
    decision = CriterionDecision(criterion, verdict, reason, results)
    if verdict is CriterionVerdict.PASS:
        return decision

    if not criterion.required:
        # advisory: a failure warns and blocks nothing, so there is nothing to waive
        decision.verdict = CriterionVerdict.WARN
        decision.reason = f"advisory: {reason}"
        return decision
    waiver = waivers.for_criterion(gate.name, criterion.id)
    applied = [waiver] if waiver is not None else []
    not_passed = [r for r in results if r.outcome is not Outcome.PASSED]
    if waiver is None and not_passed and not _unmeasured(criterion, results):
        # every check that did not pass has a waiver of its own
        check_waivers = [waivers.for_check(gate.name, criterion.id, r.check_id) for r in not_passed]
        if all(check_waivers):
            applied = list(dict.fromkeys(w for w in check_waivers if w is not None))
    if applied:
        decision.verdict = CriterionVerdict.WAIVED
        justification = "; ".join(dict.fromkeys(w.justification for w in applied))
        decision.reason = f"waived ({reason}): {justification}"
        decision.waived_by = "; ".join(w.describe() for w in applied)
    return decision


def _review(decision: CriterionDecision, included: dict[str, GateDecision]) -> str | None:
    """Why a criterion needs a person to look at it, or None."""
    criterion = decision.criterion
    if decision.verdict is CriterionVerdict.WAIVED:
        return "waived"
    if criterion.human_review and decision.verdict in (
        CriterionVerdict.PASS,
        CriterionVerdict.WARN,
    ):
        return "marked"
    sub = included.get(criterion.include or "")
    if sub is not None and sub.verdict is GateVerdict.HUMAN_REVIEW_REQUIRED:
        return "included gate needs human review"
    return None


def _unmatched_waivers(gate: Gate, waivers: WaiverSet, results: Sequence[CheckResult]) -> list[str]:
    warnings = []
    for waiver in waivers.active:
        if waiver.gate != gate.name:
            continue
        criterion = gate.criteria.get(waiver.criterion)
        if criterion is None:
            warnings.append(
                f"waiver matches no criterion of {gate.name}: {waiver.describe()} ({waiver.source})"
            )
            continue
        if waiver.check is not None:
            ids = {c.id for c in criterion.checks}
            ids.update(r.check_id for r in results if r.criterion == criterion.id)
            if waiver.check not in ids:
                warnings.append(
                    f"waiver matches no check of {gate.name}/{criterion.id}: "
                    f"{waiver.describe()} ({waiver.source})"
                )
    return warnings


def decide_gate(
    gate: Gate,
    results: Sequence[CheckResult],
    waivers: WaiverSet,
    problems: Sequence[str] = (),
    included: dict[str, GateDecision] | None = None,
) -> GateDecision:
    included = included or {}
    own = [r for r in results if r.gate == gate.name]
    criteria = [
        _decide_criterion(
            gate, criterion, [r for r in own if r.criterion == criterion.id], waivers, included
        )
        for criterion in gate.criteria.values()
    ]
    warnings = [
        f"waiver expired on {w.expires.isoformat()} and was ignored: {w.describe()} ({w.source})"
        for w in waivers.expired_for(gate.name)
    ]
    warnings += _unmatched_waivers(gate, waivers, own)
    decision = GateDecision(gate, GateVerdict.PASSED, "", criteria, warnings=warnings)
    covered = {gate.name}
    pending = list(gate.includes)
    while pending:
        name = pending.pop()
        if name not in covered and name in included:
            covered.add(name)
            pending.extend(included[name].gate.includes)
    ran = any(r.outcome in _RAN for r in results if r.gate in covered)
    blocking = [
        c
        for c in criteria
        if c.verdict in (CriterionVerdict.FAIL, CriterionVerdict.NOT_EVALUATED)
        and c.criterion.required
    ]
    review = [(c, why) for c in criteria if (why := _review(c, included))]
    if problems:
        decision.verdict, decision.reason = GateVerdict.FAILED, "; ".join(problems)
    elif not ran:
        decision.verdict, decision.reason = GateVerdict.FAILED, "no check ran"
    elif blocking:
        names = ", ".join(f"{c.criterion.id} {c.verdict}" for c in blocking)
        decision.verdict, decision.reason = GateVerdict.FAILED, f"required criteria: {names}"
    elif review:
        decision.verdict = GateVerdict.HUMAN_REVIEW_REQUIRED
        decision.reason = "human review required: " + ", ".join(
            f"{c.criterion.id} {why}" for c, why in review
        )
    if decision.verdict is GateVerdict.PASSED:
        decision.status = gate.status
    elif decision.verdict is GateVerdict.HUMAN_REVIEW_REQUIRED:
        decision.status = str(GateVerdict.HUMAN_REVIEW_REQUIRED)
    return decision


def decide_all(
    gates: Sequence[Gate],
    results: Sequence[CheckResult],
    waivers: WaiverSet,
    problems: Sequence[str] = (),
) -> list[GateDecision]:
    """Decide ``gates`` given in include order (an included gate before its includer)."""
    decided: dict[str, GateDecision] = {}
    for gate in gates:
        decided[gate.name] = decide_gate(gate, results, waivers, problems, decided)
    return list(decided.values())


def overall(decisions: Sequence[GateDecision]) -> GateVerdict:
    verdicts = {d.verdict for d in decisions}
    if not decisions or GateVerdict.FAILED in verdicts:
        return GateVerdict.FAILED
    if GateVerdict.HUMAN_REVIEW_REQUIRED in verdicts:
        return GateVerdict.HUMAN_REVIEW_REQUIRED
    return GateVerdict.PASSED
