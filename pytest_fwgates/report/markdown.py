"""summary.md: the verdict of a gate run, readable in a ticket or a merge request."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model import CriterionVerdict, GateDecision, Outcome
from .summary import criterion_thresholds, failing_keys, measure_text, overall_verdict, waiver_scope

__all__ = ["build_markdown"]

#: failed or errored checks listed in full; beyond that they are counted
_MAX_LISTED = 200
_ICON = {
    "PASSED": "✅",
    "PASS": "✅",
    "FAILED": "❌",
    "FAIL": "❌",
    "NOT_EVALUATED": "❌",
    "HUMAN_REVIEW_REQUIRED": "⚠️",
    "INCONCLUSIVE": "❔",
    "WARN": "⚠️",
    "WAIVED": "⚠️",
}


def _cell(text: Any) -> str:
    """Text a Markdown table cell can hold: one line, pipes and markup escaped."""
    value = " ".join(str(text).split())
    for char in ("\\", "|", "<", ">", "`", "*", "_", "[", "]"):
        value = value.replace(char, "\\" + char)
    return value if len(value) <= 300 else value[:299] + "…"


def _word(verdict: str) -> str:
    icon = _ICON.get(verdict, "")
    return f"{icon} **{verdict}**" if icon else f"**{verdict}**"


def build_markdown(
    decisions: list[GateDecision],
    *,
    run: dict[str, Any] | None = None,
    deliverables: dict[str, dict[str, Any]] | None = None,
    waivers: Iterable[dict[str, Any]] = (),
) -> str:
    run = run or {}
    verdict = str(overall_verdict(decisions))
    lines = [f"# Gate verdict: {_word(verdict)}", ""]
    facts = [
        ("gates", ", ".join(d.gate.name for d in decisions) or "none"),
        ("finished", run.get("finished", "")),
        ("host", run.get("host", "")),
    ]
    lines += [f"- {name}: {_cell(value)}" for name, value in facts if value]
    lines += ["", "| gate | verdict | status | reason |", "|---|---|---|---|"]
    for decision in decisions:
        lines.append(
            f"| {_cell(decision.gate.name)} | {_word(str(decision.verdict))} | "
            f"{_cell(decision.status or '')} | {_cell(decision.reason)} |"
        )
    problems: list[tuple[str, str, str]] = []
    for decision in decisions:
        lines += ["", f"## {_cell(decision.gate.title or decision.gate.name)}", ""]
        lines += ["| criterion | kind | verdict | checks | thresholds | reason |"]
        lines += ["|---|---|---|---|---|---|"]
        for item in decision.criteria:
            thresholds, _ = criterion_thresholds(item)
            passed = sum(1 for r in item.results if r.outcome == Outcome.PASSED)
            kind = "required" if item.criterion.required else "advisory"
            reason = item.reason
            if item.waived_by:
                reason = f"{reason} (waived: {item.waived_by})"
            lines.append(
                f"| {_cell(item.criterion.id)} | {kind} | {_word(str(item.verdict))} | "
                f"{passed}/{len(item.results)} passed | "
                f"{_cell(', '.join(f'{k} {v}' for k, v in thresholds.items()))} | "
                f"{_cell(reason)} |"
            )
            for result in item.results:
                if result.outcome in (Outcome.FAILED, Outcome.ERROR, Outcome.INCONCLUSIVE):
                    detail = "; ".join(measure_text(k, result) for k in failing_keys(result))
                    problems.append(
                        (
                            f"{decision.gate.name}/{item.criterion.id}/{result.check_id}",
                            str(result.outcome).upper(),
                            detail or result.message,
                        )
                    )
        for warning in decision.warnings:
            lines.append(f"\n> ⚠️ {_cell(warning)}")
    if problems:
        lines += [
            "",
            "## Checks that did not pass",
            "",
            "| check | outcome | measured vs threshold |",
        ]
        lines += ["|---|---|---|"]
        for check, outcome, detail in problems[:_MAX_LISTED]:
            lines.append(f"| {_cell(check)} | {outcome} | {_cell(detail)} |")
        if len(problems) > _MAX_LISTED:
            lines.append(f"\n…and {len(problems) - _MAX_LISTED} more (see summary.json).")
    listed = list(waivers)
    if listed:
        lines += ["", "## Waivers", "", "| waiver | approved by | expires | state |"]
        lines += ["|---|---|---|---|"]
        for waiver in listed:
            what, state = waiver_scope(waiver)
            lines.append(
                f"| {_cell(what)} | {_cell(waiver.get('approved_by', ''))} | "
                f"{_cell(waiver.get('expires', ''))} | {state} |"
            )
    if deliverables:
        lines += ["", "## Handoff deliverables", ""]
        for info in deliverables.values():
            mark = "x" if info.get("present") else " "
            where = f" — `{info['path']}`" if info.get("present") else " — **missing**"
            lines.append(f"- [{mark}] {_cell(info.get('title', ''))}{where}")
    not_evaluated = sum(
        1 for d in decisions for c in d.criteria if c.verdict == CriterionVerdict.NOT_EVALUATED
    )
    if not_evaluated:
        lines += ["", f"{not_evaluated} required criterion(s) were not evaluated."]
    return "\n".join(lines) + "\n"
