"""The fail-closed verdict rules (design §5), as plain functions of gates and results.

- A criterion passes when it has at least one check and all of them passed.
- A failed or errored check fails it. No checks, a skipped check, a check that never ran,
  or a standard threshold no check measured: NOT_EVALUATED, which fails a required criterion.
- A check whose point estimate meets its standard while the bound its evidence allows does
  not (see :mod:`pytest_fwgates.bounds`) is INCONCLUSIVE, and so is its criterion and a gate
  with such a required criterion (after FAILED, before human review).
- An advisory criterion that does not pass is a WARN.
- A valid waiver turns FAIL or NOT_EVALUATED into WAIVED; an expired one is ignored, said so.
- The gate is PASSED when every required criterion passes; WAIVED criteria or criteria marked
  for human review make it HUMAN_REVIEW_REQUIRED. So does a criterion whose standard a gate
  file loosened (``< 5m`` overridden to ``< 1h``) unless a waiver covers it; tightening is free.
  Problems of the run itself (collection errors, an interrupted run, no check run at all)
  make it FAILED.

Results are grouped by (gate, criterion) once, so deciding is linear in the results.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .bounds import DEFAULT_CONFIDENCE, judge, needs_bound
from .ids import waiver_key
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
from .owners import BUILTIN_OWNERS
from .thresholds import ThresholdError, loosens, number, parse
from .waivers import WaiverSet

__all__ = ["decide_all", "decide_gate", "hold_to_standards", "overall"]

_RAN = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.INCONCLUSIVE)
_Groups = Mapping[tuple[str, str], list[CheckResult]]


def group_results(results: Iterable[CheckResult]) -> dict[tuple[str, str], list[CheckResult]]:
    """Results by (gate, criterion), in their order: one pass over the results."""
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for result in results:
        groups.setdefault((result.gate, result.criterion), []).append(result)
    return groups


def _hold_to_standards(
    criterion: Criterion,
    result: CheckResult,
    in_force: dict[str, str] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> CheckResult:
    """Hold values a check recorded to the criterion's standards it did not already apply,
    and every threshold of a counted figure, percentile or mean to the bound its evidence
    allows (a value a Python test recorded was held only to its point estimate).

    Every value a marked Python test recorded is judged here, wherever and whenever it was
    recorded; a relative standard on a value the test recorded itself has no baseline to be
    compared with and leaves the test undecided (a check judged its own against the
    baseline)."""
    if result.outcome not in (Outcome.PASSED, Outcome.INCONCLUSIVE):
        return result
    failures = []
    inconclusive = []
    undecided = []
    # copied only when a standard is added: the verdict holds tens of thousands of results
    thresholds = result.thresholds
    if in_force is None:
        in_force = criterion.thresholds_in_force()
    added: set[str] = set()
    for key, text in in_force.items():
        if key not in thresholds and _number(result.measured.get(key)):
            if not added:
                thresholds = dict(thresholds)
            thresholds[key] = text
            added.add(key)
    for key, text in thresholds.items():
        value = result.measured.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if result.check_type and key not in added and not needs_bound(key, result.support):
            continue  # held to it by its check already, and no bound to judge it on
        # a marked Python test's values are all judged here: its own pytest.fail may have
        # been raised in a thread nobody joined
        try:
            threshold = _parse(text)
        except ThresholdError as exc:
            failures.append(f"{key}: {exc}")
            continue
        if threshold.relative:
            if result.check_type or result.measured_by.get(key):
                continue  # judged by the check, against its baseline
            undecided.append(f"{key}: {text} needs a baseline a recorded value does not have")
            continue
        support = result.support.get(key)
        judged = judge(key, threshold, number(value), support, confidence)
        if judged.state == "fail":
            failures.append(judged.text)
        elif judged.state == "inconclusive":
            inconclusive.append(judged.text)
    if failures:
        return _changed(
            result, outcome=Outcome.FAILED, thresholds=thresholds, message="; ".join(failures)
        )
    if undecided:
        return _changed(
            result, outcome=Outcome.SKIPPED, thresholds=thresholds, message="; ".join(undecided)
        )
    if inconclusive and result.outcome is Outcome.PASSED:
        return _changed(
            result,
            outcome=Outcome.INCONCLUSIVE,
            thresholds=thresholds,
            message="; ".join(inconclusive),
        )
    result.thresholds = thresholds
    return result


#: the same judgment of a marked test's recorded values, made at its own reports too, so that
#: pytest's outcome of the test says what the verdict will (plugin.py)
hold_to_standards = _hold_to_standards


def _changed(result: CheckResult, **changes: Any) -> CheckResult:
    """A shallow copy of ``result`` with ``changes`` (``dataclasses.replace`` without its
    per-call introspection: the verdict holds tens of thousands of results)."""
    copied = object.__new__(type(result))
    copied.__dict__.update(result.__dict__)  # copy.copy's reduce protocol cost ~20 us a result
    for name, value in changes.items():
        setattr(copied, name, value)
    return copied


#: thresholds are few and immutable, results many: each text is parsed once
_parse = functools.lru_cache(maxsize=1024)(parse)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _counts_for(key: str, result: CheckResult, owners: Mapping[str, frozenset[str]] | None) -> bool:
    """Whether ``result`` measured ``key`` as evidence: a number, and for an owned figure
    measured by an owning check type."""
    value = result.measured.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if owners is None or key not in owners:
        return True
    return result.by(key) in owners[key]


def _unmeasured(
    criterion: Criterion,
    results: Iterable[CheckResult],
    owners: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Standards in force, and values the criterion demands, that no result measured
    (with ``owners``: an owned figure counts only from a check type that owns it)."""
    remaining = criterion.thresholds_in_force()
    # an entry "a|b" of measures: is met by a measurement of any one of its figures
    demanded = [entry for entry in criterion.measures if not set(entry.split("|")) & set(remaining)]
    for result in results:
        if not remaining and not demanded:
            break
        wanted = {key for entry in demanded for key in entry.split("|")}
        numbers = {key for key in [*remaining, *wanted] if _counts_for(key, result, owners)}
        for key in numbers:
            remaining.pop(key, None)
        demanded = [entry for entry in demanded if not set(entry.split("|")) & numbers]
    missing = [_owned_by(key, f"{key} {text}", owners) for key, text in remaining.items()]
    for entry in demanded:
        keys = entry.split("|")
        text = f"{keys[0]} (measured value demanded)"
        if len(keys) > 1:
            text = f"one of {', '.join(keys)} (measured value demanded)"
        missing.append(_owned_by(entry, text, owners))
    return missing


def _owned_by(entry: str, text: str, owners: Mapping[str, frozenset[str]] | None) -> str:
    if owners is None:
        return text
    types = {t for key in entry.split("|") for t in owners.get(key, ())}
    return f"{text} (measured only by {', '.join(sorted(types))} checks)" if types else text


def _evaluate(
    criterion: Criterion,
    results: list[CheckResult],
    owners: Mapping[str, frozenset[str]] | None = None,
) -> tuple[CriterionVerdict, str]:
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
    missing = _unmeasured(criterion, results, owners)
    if missing:
        return CriterionVerdict.NOT_EVALUATED, f"standard not measured by any check: {missing[0]}"
    unproven = [r for r in results if r.outcome is Outcome.INCONCLUSIVE]
    if unproven:
        more = f" (+{len(unproven) - 1} more)" if len(unproven) > 1 else ""
        return CriterionVerdict.INCONCLUSIVE, f"{unproven[0].check_id}: {unproven[0].message}{more}"
    return CriterionVerdict.PASS, ""


def _decide_criterion(
    gate: Gate,
    criterion: Criterion,
    results: list[CheckResult],
    waivers: WaiverSet,
    included: dict[str, GateDecision],
    confidence: float = DEFAULT_CONFIDENCE,
    owners: Mapping[str, frozenset[str]] = BUILTIN_OWNERS,
) -> CriterionDecision:
    if criterion.include is not None:
        sub = included.get(criterion.include)
        if sub is None:
            return CriterionDecision(criterion, CriterionVerdict.NOT_EVALUATED, "not decided")
        if sub.verdict is GateVerdict.FAILED:
            return CriterionDecision(
                criterion, CriterionVerdict.FAIL, f"gate {sub.gate.name}: {sub.reason}"
            )
        if sub.verdict is GateVerdict.INCONCLUSIVE:
            return CriterionDecision(
                criterion, CriterionVerdict.INCONCLUSIVE, f"gate {sub.gate.name}: {sub.reason}"
            )
        # an included gate that needs human review passes here, and the review carries over
        reason = "" if sub.verdict is GateVerdict.PASSED else f"gate {sub.gate.name}: {sub.reason}"
        return CriterionDecision(criterion, CriterionVerdict.PASS, reason)

    in_force = criterion.thresholds_in_force()
    level = criterion.confidence if criterion.confidence is not None else confidence
    results = [_hold_to_standards(criterion, r, in_force, level) for r in results]
    # catalog standards need evidence of the right type; a team's own criteria take any
    typed = owners if _from_catalog(gate, criterion) else None
    verdict, reason = _evaluate(criterion, results, typed)
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
    if waiver is None and not_passed and not _unmeasured(criterion, results, typed):
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


def _looser(key: str, standard: str, override: str) -> bool:
    try:
        return loosens(key, parse(standard), parse(override))
    except ThresholdError:
        return True  # cannot tell: a person decides


def _from_catalog(gate: Gate, criterion: Criterion) -> bool:
    """Whether the criterion and its standards come from the catalog's file of the gate."""
    return (
        gate.in_catalog
        and bool(gate.files)
        and criterion.source is not None
        and criterion.source.path == gate.files[0]
    )


def _loosened(
    gate: Gate,
    decision: CriterionDecision,
    waivers: WaiverSet,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[list[str], list[str]]:
    """Catalog standards of the criterion a gate file loosened: (not covered, covered by a
    waiver).

    An override for the whole criterion is covered by a waiver of the criterion; an override
    in one check's ``expect`` also by a waiver of that check.
    """
    criterion = decision.criterion
    if not _from_catalog(gate, criterion):
        return [], []  # a team's own standards are theirs to change
    whole = waivers.for_criterion(gate.name, criterion.id)
    uncovered: dict[str, None] = {}
    covered: dict[str, None] = {}
    catalog_level = criterion.standard_confidence or DEFAULT_CONFIDENCE
    level = criterion.confidence if criterion.confidence is not None else confidence
    if level < catalog_level:
        text = f"confidence {catalog_level * 100:g}% to {level * 100:g}%"
        if whole is not None:
            covered[f"{text} (waiver {whole.describe()})"] = None
        else:
            uncovered[text] = None
    for key, (standard, override) in criterion.overrides.items():
        if _looser(key, standard, override):
            text = f"{key} {standard} to {override}"
            if whole is not None:
                covered[f"{text} (waiver {whole.describe()})"] = None
            else:
                uncovered[text] = None
    for result in decision.results:
        for key, (standard, override) in result.overrides.items():
            if criterion.overrides.get(key) == (standard, override):
                continue
            if not _looser(key, standard, override):
                continue
            text = f"{key} {standard} to {override} in {result.check_id}"
            waiver = whole or waivers.for_check(gate.name, criterion.id, result.check_id)
            if waiver is not None:
                covered[f"{text} (waiver {waiver.describe()})"] = None
            else:
                uncovered[text] = None
    return list(uncovered), list(covered)


def _review(
    decision: CriterionDecision,
    included: dict[str, GateDecision],
    loosened: Sequence[str] = (),
) -> str | None:
    """Why a criterion needs a person to look at it, or None."""
    criterion = decision.criterion
    if decision.verdict is CriterionVerdict.WAIVED:
        return "waived"
    if loosened and decision.verdict in (CriterionVerdict.PASS, CriterionVerdict.WARN):
        return "loosened standard " + ", ".join(loosened)
    if criterion.human_review and decision.verdict in (
        CriterionVerdict.PASS,
        CriterionVerdict.WARN,
    ):
        return "marked"
    sub = included.get(criterion.include or "")
    if sub is not None and sub.verdict is GateVerdict.HUMAN_REVIEW_REQUIRED:
        return "included gate needs human review"
    return None


def _unmatched_waivers(gate: Gate, waivers: WaiverSet, groups: _Groups) -> list[str]:
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
            ids.update(r.check_id for r in groups.get((gate.name, criterion.id), ()))
            if waiver.check not in ids and waiver_key(waiver.check) not in ids:
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
    groups: _Groups | None = None,
    ran_gates: set[str] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    owners: Mapping[str, frozenset[str]] = BUILTIN_OWNERS,
) -> GateDecision:
    """Decide one gate; ``groups`` and ``ran_gates`` (from :func:`decide_all`) save passes
    over ``results``."""
    included = included or {}
    if groups is None:
        groups = group_results(results)
    if ran_gates is None:
        ran_gates = {r.gate for r in results if r.outcome in _RAN}
    criteria = [
        _decide_criterion(
            gate,
            criterion,
            groups.get((gate.name, criterion.id), []),
            waivers,
            included,
            confidence,
            owners,
        )
        for criterion in gate.criteria.values()
    ]
    loosened: dict[int, list[str]] = {}
    for index, decided in enumerate(criteria):
        if decided.criterion.include is not None:
            continue
        uncovered, approved = _loosened(gate, decided, waivers, confidence)
        loosened[index] = uncovered
        if approved and not uncovered and decided.verdict is CriterionVerdict.PASS:
            decided.reason = "loosened standard approved: " + ", ".join(approved)
    warnings = [
        f"waiver expired on {w.expires.isoformat()} and was ignored: {w.describe()} ({w.source})"
        for w in waivers.expired_for(gate.name)
    ]
    warnings += _unmatched_waivers(gate, waivers, groups)
    decision = GateDecision(gate, GateVerdict.PASSED, "", criteria, warnings=warnings)
    covered = {gate.name}
    pending = list(gate.includes)
    while pending:
        name = pending.pop()
        if name not in covered and name in included:
            covered.add(name)
            pending.extend(included[name].gate.includes)
    ran = not covered.isdisjoint(ran_gates)
    blocking = [
        c
        for c in criteria
        if c.verdict in (CriterionVerdict.FAIL, CriterionVerdict.NOT_EVALUATED)
        and c.criterion.required
    ]
    unproven = [
        c for c in criteria if c.verdict is CriterionVerdict.INCONCLUSIVE and c.criterion.required
    ]
    review = [
        (c, why)
        for index, c in enumerate(criteria)
        if (why := _review(c, included, loosened.get(index, ())))
    ]
    if problems:
        decision.verdict, decision.reason = GateVerdict.FAILED, "; ".join(problems)
    elif not ran:
        decision.verdict, decision.reason = GateVerdict.FAILED, "no check ran"
    elif blocking:
        names = ", ".join(f"{c.criterion.id} {c.verdict}" for c in blocking)
        decision.verdict, decision.reason = GateVerdict.FAILED, f"required criteria: {names}"
    elif unproven:
        decision.verdict = GateVerdict.INCONCLUSIVE
        decision.reason = "not proven: " + "; ".join(
            f"{c.criterion.id}: {c.reason}" for c in unproven
        )
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
    confidence: float = DEFAULT_CONFIDENCE,
    owners: Mapping[str, frozenset[str]] = BUILTIN_OWNERS,
) -> list[GateDecision]:
    """Decide ``gates`` given in include order (an included gate before its includer);
    ``owners`` (figure -> check types, :mod:`pytest_fwgates.owners`) types the evidence of
    catalog standards."""
    decided: dict[str, GateDecision] = {}
    groups = group_results(results)
    ran_gates = {r.gate for r in results if r.outcome in _RAN}
    for gate in gates:
        decided[gate.name] = decide_gate(
            gate,
            results,
            waivers,
            problems,
            decided,
            groups=groups,
            ran_gates=ran_gates,
            confidence=confidence,
            owners=owners,
        )
    return list(decided.values())


def overall(decisions: Sequence[GateDecision]) -> GateVerdict:
    verdicts = {d.verdict for d in decisions}
    if not decisions or GateVerdict.FAILED in verdicts:
        return GateVerdict.FAILED
    if GateVerdict.INCONCLUSIVE in verdicts:
        return GateVerdict.INCONCLUSIVE
    if GateVerdict.HUMAN_REVIEW_REQUIRED in verdicts:
        return GateVerdict.HUMAN_REVIEW_REQUIRED
    return GateVerdict.PASSED
