"""The HTML report's canary-against-stable tables: one per deploy in steps, a row per step with
what the prober saw of each version in the step's window, each PromQL rule's value against its
threshold (``analysis.prometheus``) and the analysis's verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from ..model import CheckResult

__all__ = ["canary_sections"]


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _side(found: Mapping[str, Any] | None) -> list[str]:
    if not isinstance(found, Mapping):
        return ["", "", "", ""]
    rate = found.get("failure_rate")
    return [
        _e(found.get("version", "")),
        _e(f"{found.get('failed', 0)}/{found.get('answers', 0)}"),
        _e(f"{rate:.2%}") if isinstance(rate, int | float) else "",
        _e(found.get("p95_ms", "")),
    ]


def _p(value: Any) -> str:
    return _e(f"{value:.2g}") if isinstance(value, int | float) else ""


def _prometheus(found: Any) -> str:
    """Each PromQL rule of the look: its value against its threshold, and its verdict."""
    if not isinstance(found, list):
        return ""
    lines = []
    for item in found:
        if not isinstance(item, Mapping):
            continue
        query = str(item.get("query", ""))
        name = str(item.get("name") or (query if len(query) <= 60 else query[:59] + "…"))
        value = item.get("value")
        shown = f"{value:g}" if isinstance(value, int | float) else "no value"
        lines.append(
            f'<span title="{_e(query)}">{_e(name)}</span>: {_e(shown)} '
            f"(expected {_e(item.get('expect', ''))}, {_e(item.get('verdict', ''))})"
        )
    return "<br>".join(lines)


def _table(result: CheckResult) -> str:
    steps = result.measured.get("steps")
    rows = []
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, Mapping):
            continue
        what = " ".join(
            part
            for part in (
                f"{step['weight']:g}%" if isinstance(step.get("weight"), int | float) else "",
                f"instance {step['instance']}" if step.get("instance") is not None else "",
            )
            if part
        )
        verdict = str(step.get("verdict", "not judged"))
        cells = [
            _e(step.get("step", "")),
            _e(what),
            _e(step.get("window_s", "")),
            _e(step.get("looks", 0)),
            *_side(step.get("canary")),
            *_side(step.get("stable")),
            _p(step.get("failure_rate_p")),
            _p(step.get("latency_p")),
            _p(step.get("alpha")),
            f'<td class="promql">{_prometheus(step.get("prometheus"))}</td>',
            f'<td class="w-{_e(verdict)}">{_e(verdict)}</td>',
            _e("; ".join(step.get("reasons", []) or [])),
        ]
        rows.append(
            "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    figures = ", ".join(
        f"{key} {result.measured[key]:g}"
        for key in ("aborted", "aborted_at_step", "detect_s", "rollback_s", "bad_answers")
        if isinstance(result.measured.get(key), int | float)
    )
    return (
        f'<figure class="canary" data-check="{_e(result.check_id)}">'
        '<table class="canary-steps"><thead><tr><th>step</th><th>weight</th><th>window s</th>'
        "<th>looks</th><th>canary</th><th>failed</th><th>rate</th><th>p95 ms</th>"
        "<th>stable</th><th>failed</th><th>rate</th><th>p95 ms</th><th>rate p</th>"
        "<th>p95 p</th><th>level (a test at half)</th><th>PromQL</th><th>verdict</th><th>why</th>"
        "</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<figcaption>Canary against stable: {_e(result.check_id)}"
        + (f" ({_e(figures)})" if figures else "")
        + "</figcaption></figure>"
    )


def canary_sections(results: Iterable[CheckResult]) -> list[str]:
    """A table per result of a deploy in steps (none for other checks)."""
    return [_table(r) for r in results if isinstance(r.measured.get("steps"), list)]
