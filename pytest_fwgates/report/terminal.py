"""The verdict table printed at the end of a gate run."""

from __future__ import annotations

from ..model import CriterionDecision, CriterionVerdict, GateDecision, GateVerdict, Outcome
from .summary import criterion_thresholds, failing_keys, measure_text, overall_verdict

__all__ = ["render_table", "table_lines", "verdict_color"]

_GREEN = frozenset({"PASS", "PASSED"})
_RED = frozenset({"FAIL", "FAILED", "NOT_EVALUATED"})
_YELLOW = frozenset({"WARN", "WAIVED", "HUMAN_REVIEW_REQUIRED"})

_INDENT = "  "
_GAP = "  "
_KIND_W = 8  # "required" / "advisory"
_ID_MIN, _ID_MAX = len("criterion"), 30
_MEASURE_MIN = 12


def verdict_color(word: str) -> dict[str, bool]:
    """Markup for pytest's TerminalWriter: ``tw.line(text, **verdict_color(word))``."""
    word = str(word)
    if word in _GREEN:
        return {"green": True}
    if word in _RED:
        return {"red": True}
    if word in _YELLOW:
        return {"yellow": True}
    return {}


def render_table(decisions: list[GateDecision], width: int = 100) -> list[str]:
    """The table as plain text lines, none wider than ``width`` where the columns fit."""
    return [text for text, _word in table_lines(decisions, width)]


def table_lines(decisions: list[GateDecision], width: int = 100) -> list[tuple[str, str]]:
    """The table lines with the verdict word that colors each (``""``: no color)."""
    items = [item for decision in decisions for item in decision.criteria]
    id_w = min(max([_ID_MIN, *(len(item.criterion.id) for item in items)]), _ID_MAX)
    checks_w = max([len("checks"), *(2 * len(str(len(item.results))) + 1 for item in items)])
    verdict_w = max([len("verdict"), *(len(item.verdict) for item in items)])
    fixed = len(_INDENT) + id_w + _KIND_W + checks_w + verdict_w + 4 * len(_GAP)
    measure_w = max(width - fixed, _MEASURE_MIN)
    widths = (id_w, _KIND_W, checks_w, measure_w)

    lines: list[tuple[str, str]] = []
    for decision in decisions:
        lines.extend(_gate_lines(decision, widths, width))
        lines.append(("", ""))
    lines.append((_fit(_overall(decisions), width), str(overall_verdict(decisions))))
    return lines


def _gate_lines(
    decision: GateDecision, widths: tuple[int, int, int, int], width: int
) -> list[tuple[str, str]]:
    header = f"{_clean(decision.gate.name)}  {decision.verdict}"
    if decision.status and decision.status != decision.verdict:
        header += f"  ({_clean(decision.status)})"
    lines = [(_fit(header, width), str(decision.verdict))]
    columns = ("criterion", "kind", "checks", "measured vs threshold", "verdict")
    lines.append((_row(columns, widths), ""))
    for item in decision.criteria:
        cells = _cells(item)
        lines.append((_row(cells, widths), str(item.verdict)))
        measured = _clean(cells[3])
        reason = _reason(item)
        if len(measured) > widths[3] and reason and measured not in reason:
            lines.append((_fit(_INDENT * 3 + measured, width), ""))  # cut in the row
        if reason:
            lines.append((_fit(_INDENT * 3 + reason, width), ""))
    if not decision.criteria:
        lines.append((_fit(_INDENT + "(no criteria)", width), ""))
    if decision.reason:
        lines.append((_fit(_INDENT + _clean(decision.reason), width), str(decision.verdict)))
    for warning in decision.warnings:
        lines.append((_fit(f"{_INDENT}warning: {_clean(warning)}", width), "WARN"))
    return lines


def _cells(item: CriterionDecision) -> tuple[str, str, str, str, str]:
    passed = sum(result.outcome == Outcome.PASSED for result in item.results)
    return (
        item.criterion.id,
        "required" if item.criterion.required else "advisory",
        f"{passed}/{len(item.results)}",
        _measured(item),
        str(item.verdict),
    )


def _measured(item: CriterionDecision) -> str:
    """Measured vs threshold of the first failing check, else of the first measured one."""
    bad = [r for r in item.results if r.outcome in (Outcome.FAILED, Outcome.ERROR)]
    for result in bad:
        keys = failing_keys(result)
        if keys:
            return measure_text(keys[0], result)
    for result in bad or item.results:
        # a value held to a threshold says more than the exit status every command has
        keys = sorted(
            dict.fromkeys([*result.thresholds, *result.measured]),
            key=lambda k: (k not in result.thresholds, k == "exit_status"),
        )
        if keys:
            return measure_text(keys[0], result)
    if bad:
        return "-"
    thresholds, overrides = criterion_thresholds(item)
    for key, text in thresholds.items():
        shown = f"{key} not measured, expected {text}"
        if key in overrides:
            shown += f" (standard {overrides[key][0]})"
        return shown
    return "-"


def _reason(item: CriterionDecision) -> str:
    if item.verdict == CriterionVerdict.PASS:
        return ""
    reason = _clean(item.reason)
    if item.waived_by:
        waived = f"waived by {_clean(item.waived_by)}"
        reason = f"{waived}: {reason}" if reason else waived
    return reason


def _overall(decisions: list[GateDecision]) -> str:
    verdict = overall_verdict(decisions)
    if not decisions:
        return f"overall: {verdict} (no gate was decided)"
    counts = [
        (sum(d.verdict == kind for d in decisions), label)
        for kind, label in (
            (GateVerdict.PASSED, "passed"),
            (GateVerdict.FAILED, "failed"),
            (GateVerdict.HUMAN_REVIEW_REQUIRED, "human review required"),
        )
    ]
    detail = ", ".join(f"{count} {label}" for count, label in counts if count)
    noun = "gate" if len(decisions) == 1 else "gates"
    return f"overall: {verdict} ({len(decisions)} {noun}: {detail})"


def _row(cells: tuple[str, str, str, str, str], widths: tuple[int, int, int, int]) -> str:
    id_w, kind_w, checks_w, measure_w = widths
    ident, kind, checks, measured, verdict = (_clean(cell) for cell in cells)
    return (
        f"{_INDENT}{_fit(ident, id_w):<{id_w}}{_GAP}{kind:<{kind_w}}{_GAP}"
        f"{checks:>{checks_w}}{_GAP}{_fit(measured, measure_w):<{measure_w}}{_GAP}{verdict}"
    ).rstrip()


def _clean(text: str) -> str:
    """One line without control characters (they could move the cursor or change colors)."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
