"""The verdict table printed at the end of a gate run.

It fits the terminal: criterion ids are never cut; a measured value too long for its cell
is cut in the row and given in full, wrapped, on the lines below; reasons wrap. When even
the fixed columns do not fit, each criterion is printed as a short block instead of a row.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

from ..model import CriterionDecision, CriterionVerdict, GateDecision, GateVerdict, Outcome
from .summary import criterion_thresholds, failing_keys, measure_text, overall_verdict

__all__ = [
    "NO_TERMINAL_WIDTH",
    "clean_line",
    "render_table",
    "table_lines",
    "table_width",
    "verdict_color",
]

_GREEN = frozenset({"PASS", "PASSED"})
_RED = frozenset({"FAIL", "FAILED", "NOT_EVALUATED"})
_YELLOW = frozenset({"WARN", "WAIVED", "HUMAN_REVIEW_REQUIRED", "INCONCLUSIVE"})

_INDENT = "  "
_GAP = "  "
_KIND_W = 8  # "required" / "advisory"
_ID_MIN = len("criterion")
_MEASURE_MIN = 16
_MEASURE_HEADER = "measured vs threshold"
#: where a measured text may wrap: before "expected", "of baseline" and "(standard ..."
#: (after the ", " between figures); never inside "p95_ms = 412 ms" or "expected < 30s"
_BREAK = re.compile("\u00a0(?=expected\u00a0|of\u00a0baseline\u00a0|\\()")
_NBSP = "\u00a0"
#: the width of the table where there is no terminal (CI logs): wide enough for one line per
#: criterion in most runs, and a line CI log viewers show without wrapping
NO_TERMINAL_WIDTH = 120


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


def table_width(writer: object, environ: Mapping[str, str]) -> int:
    """The width to lay the table out for: the terminal's; without a terminal (output to a
    file or a CI log) :data:`NO_TERMINAL_WIDTH` unless ``COLUMNS`` says otherwise."""
    file = getattr(writer, "_file", None)
    try:
        tty = bool(file is not None and file.isatty())
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty and not environ.get("COLUMNS", "").strip().isdigit():
        return NO_TERMINAL_WIDTH
    return int(getattr(writer, "fullwidth", NO_TERMINAL_WIDTH))


def render_table(decisions: list[GateDecision], width: int = 100) -> list[str]:
    """The table as plain text lines, none wider than ``width`` unless one id is."""
    return [text for text, _word in table_lines(decisions, width)]


def table_lines(decisions: list[GateDecision], width: int = 100) -> list[tuple[str, str]]:
    """The table lines with the verdict word that colors each (``""``: no color)."""
    width = max(width, 40)
    items = [item for decision in decisions for item in decision.criteria]
    id_w = max([_ID_MIN, *(len(clean_line(item.criterion.id)) for item in items)])
    checks_w = max([len("checks"), *(2 * len(str(len(item.results))) + 1 for item in items)])
    verdict_w = max([len("verdict"), *(len(item.verdict) for item in items)])
    fixed = len(_INDENT) + id_w + _KIND_W + checks_w + verdict_w + 4 * len(_GAP)
    longest = max([len(_MEASURE_HEADER), *(len(clean_line(_measured(i))) for i in items)])
    measure_w = min(width - fixed, longest)
    widths = (id_w, _KIND_W, checks_w, measure_w)

    lines: list[tuple[str, str]] = []
    for decision in decisions:
        lines.extend(_gate_lines(decision, widths, width, stacked=measure_w < _MEASURE_MIN))
        lines.append(("", ""))
    lines.extend(
        (text, str(overall_verdict(decisions))) for text in _wrap(_overall(decisions), width)
    )
    return lines


def _gate_lines(
    decision: GateDecision, widths: tuple[int, int, int, int], width: int, *, stacked: bool
) -> list[tuple[str, str]]:
    header = f"{clean_line(decision.gate.name)}  {decision.verdict}"
    if header.startswith("overall"):  # a gate named like the last line is said to be a gate
        header = f"gate {header}"
    if decision.status and decision.status != decision.verdict:
        header += f"  ({clean_line(decision.status)})"
    lines = [(text, str(decision.verdict)) for text in _wrap(header, width)]
    deeper = _INDENT * 3
    if not stacked and decision.criteria:
        columns = ("criterion", "kind", "checks", _MEASURE_HEADER, "verdict")
        lines.append((_row(columns, widths)[0], ""))
    for item in decision.criteria:
        cells = _cells(item)
        word = str(item.verdict)
        if stacked:
            lines.append((f"{_INDENT}{clean_line(cells[0])}", word))
            lines.append((f"{deeper}{cells[1]}  {cells[2]}  {cells[4]}", word))
            if cells[3] != "-":
                lines += [
                    (text, "") for text in _pack_indented(clean_line(cells[3]), width, deeper)
                ]
        else:
            first, *more = _row(cells, widths)
            lines.append((first, word))
            lines += [(text, "") for text in more]
        reason = _reason(item)
        if reason:
            lines += [(text, "") for text in _wrap(reason, width, deeper)]
    if not decision.criteria and not decision.reason:
        lines += [(text, "") for text in _wrap("(no criteria)", width, _INDENT)]
    if decision.reason:
        word = str(decision.verdict)
        lines += [(text, word) for text in _wrap(clean_line(decision.reason), width, _INDENT)]
    for warning in decision.warnings:
        text = f"warning: {clean_line(warning)}"
        lines += [(line, "WARN") for line in _wrap(text, width, _INDENT)]
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
    bad = bad or [r for r in item.results if r.outcome is Outcome.INCONCLUSIVE]
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
    reason = clean_line(item.reason)
    if item.waived_by:
        waived = f"waived by {clean_line(item.waived_by)}"
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
            (GateVerdict.INCONCLUSIVE, "inconclusive"),
            (GateVerdict.HUMAN_REVIEW_REQUIRED, "human review required"),
        )
    ]
    detail = ", ".join(f"{count} {label}" for count, label in counts if count)
    noun = "gate" if len(decisions) == 1 else "gates"
    return f"overall: {verdict} ({len(decisions)} {noun}: {detail})"


def _row(cells: tuple[str, str, str, str, str], widths: tuple[int, int, int, int]) -> list[str]:
    """A table row; a measured text longer than its column wraps inside the column."""
    id_w, kind_w, checks_w, measure_w = widths
    ident, kind, checks, measured, verdict = (clean_line(cell) for cell in cells)
    lead = f"{_INDENT}{ident:<{id_w}}{_GAP}{kind:<{kind_w}}{_GAP}{checks:>{checks_w}}{_GAP}"
    parts = _pack(measured, measure_w)
    rows = [f"{lead}{parts[0]:<{measure_w}}{_GAP}{verdict}".rstrip()]
    rows += [f"{'':<{len(lead)}}{part}".rstrip() for part in parts[1:]]
    return rows


def _pack(text: str, width: int) -> list[str]:
    """Lines of at most ``width``, broken after ", " where possible (never inside
    ``expected < 30s``), else between words."""
    lines: list[str] = []
    current = ""
    for segment in text.split(", "):
        joined = f"{current}, {segment}" if current else segment
        if len(joined) <= width or not current:
            current = joined
            continue
        lines.append(current + ",")
        current = segment
    lines.append(current)
    out: list[str] = []
    for line in lines:
        glued = _BREAK.sub(" ", line.replace(" ", _NBSP))
        parts = textwrap.wrap(glued, width, break_on_hyphens=False, break_long_words=False)
        out += [part.replace(_NBSP, " ") for part in parts] or [""]
    return out


def _pack_indented(text: str, width: int, indent: str) -> list[str]:
    return [indent + part for part in _pack(text, max(width - len(indent), 20))]


def clean_line(text: str) -> str:
    """One line without control characters (they could move the cursor or change colors,
    or start a line of their own, like a fake ``overall: PASSED``)."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` (one clean line) on lines of at most ``width`` columns; nothing is cut (a
    word longer than a line, such as a path, runs over rather than being split). Its next
    lines are indented deeper, so that no wrapped value starts a line of its own in column 0
    (where it could pass for the ``overall:`` line)."""
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + _INDENT,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [indent.rstrip()]
