"""report.html: one self-contained page (inline CSS and SVG, no network) of a gate run.

The verdict at the top, then one line per gate and criterion (what a release manager reads
first), a table per gate of its criteria and checks: each check's key figures (those held to a
threshold) first, the rest (per-endpoint figures, ...) folded in ``<details>``; waivers with
their expiry, the deliverables, load percentiles with labelled threshold marks and baseline
trends as inline SVG, and the timeline pictures of the evidence (SVG files shown as ``data:``
images, so that a picture cannot run script or load anything), each with an alt text that
says what it shows.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..model import CheckResult, CriterionDecision, GateDecision, Outcome
from ..thresholds import (
    BASELINE_PREFIX,
    ThresholdError,
    describe_threshold,
    format_value,
    number,
    parse,
)
from .canary_html import canary_sections
from .summary import (
    criterion_thresholds,
    failing_keys,
    measure_text,
    overall_verdict,
    value_text,
    waiver_scope,
)
from .terminal import _measured as criterion_figure

__all__ = ["build_html"]

_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)_ms$")
_MAX_PICTURE_BYTES = 4 * 2**20
_CSS = """
:root{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;background:#fff}
body{margin:0 auto;max-width:1200px;padding:1rem 2rem}
header.verdict{padding:1rem 1.5rem;border-radius:8px;color:#fff;margin-bottom:1rem}
.v-PASSED,.v-PASS{background:#1a7f37}.v-FAILED,.v-FAIL,.v-NOT_EVALUATED{background:#cf222e}
.v-HUMAN_REVIEW_REQUIRED,.v-WARN,.v-WAIVED{background:#9a6700}
.v-INCONCLUSIVE{background:#6639ba}
.o-passed{color:#1a7f37}.o-failed,.o-error{color:#cf222e;font-weight:600}.o-skipped{color:#9a6700}
h1{margin:.2rem 0;font-size:1.8rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.word{color:#fff;font-weight:600;white-space:nowrap}
td.mono,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
figure{margin:1rem 0;padding:.5rem;border:1px solid #d0d7de;border-radius:6px}
figure img{max-width:100%}figcaption{font-size:.85rem;color:#57606a}
.muted{color:#57606a}ul.warnings{color:#9a6700}
ul.overview{list-style:none;padding:0;margin:.5rem 0 1rem}
ul.overview ul{list-style:none;padding-left:1.5rem}
ul.overview li{margin:.15rem 0;line-height:1.6}
span.word{display:inline-block;min-width:7.5rem;text-align:center;color:#fff;font-weight:600;
border-radius:4px;padding:0 .4rem;margin-right:.5rem;font-size:.85rem}
li.gate-line>a{font-weight:600}
details{margin-top:.3rem}
details summary{cursor:pointer;color:#0969da;font-family:system-ui,sans-serif}
.key-figures div{white-space:nowrap}
"""


_SPECIAL = re.compile(r"[&<>\"']")


def _e(value: Any) -> str:
    text = str(value)
    return html.escape(text, quote=True) if _SPECIAL.search(text) else text


def _word_cell(word: str) -> str:
    return f'<td class="word v-{_e(word)}" data-verdict="{_e(word)}">{_e(word)}</td>'


#: at most this many figures of a check are shown before the fold
_KEY_FIGURES = 4


def _figure_keys(result: CheckResult) -> tuple[list[str], list[str]]:
    """(key figures, the rest): failing and thresholded figures first, then the check's own
    totals; per-endpoint figures (``GET /x::p95_ms``) and the baselines behind relative
    thresholds go to the rest unless a threshold holds them."""
    numeric = _numeric(result.measured)
    keys = list(dict.fromkeys([*failing_keys(result), *result.thresholds, *numeric]))
    keys = [k for k in keys if not k.startswith(BASELINE_PREFIX)]
    held = [k for k in keys if k in result.thresholds]
    free = [k for k in keys if k not in result.thresholds and "::" not in k]
    key = held or free[:_KEY_FIGURES]
    rest = [k for k in keys if k not in key]
    return key, rest


def _check_rows(results: Iterable[CheckResult]) -> list[str]:
    rows = []
    for result in results:
        key, rest = _figure_keys(result)
        measured = "".join(f"<div>{_e(measure_text(k, result))}</div>" for k in key)
        if rest:
            more = "".join(f"<div>{_e(measure_text(k, result))}</div>" for k in rest)
            measured += (
                f"<details><summary>{len(rest)} more figure{'s' if len(rest) != 1 else ''}"
                f"</summary>{more}</details>"
            )
        outcome = str(result.outcome)
        check = _e(result.check_id)
        criterion = _e(result.criterion)
        rows.append(
            f'<tr data-check="{check}" data-criterion="{criterion}" data-outcome="{outcome}">'
            f'<td class="mono">{check}</td><td>{criterion}</td>'
            f'<td class="o-{outcome}">{outcome}</td>'
            f'<td class="measured key-figures mono">{measured}</td>'
            f"<td>{_e(result.message)}</td></tr>"
        )
    return rows


def _numeric(measured: Mapping[str, Any]) -> dict[str, float]:
    return {
        key: number(value)
        for key, value in measured.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _limits(result: CheckResult, keys: Iterable[str]) -> dict[str, tuple[float, str]]:
    """The bound of each percentile's threshold in ms and its label (a relative one through
    the baseline it was held to: ``<= 125 ms (+25% of 100 ms)``)."""
    limits: dict[str, tuple[float, str]] = {}
    for key in keys:
        text = result.thresholds.get(key)
        if text is None:
            continue
        try:
            threshold = parse(text)
        except ThresholdError:
            continue
        baseline = result.measured.get(BASELINE_PREFIX + key)
        base = float(baseline) if isinstance(baseline, int | float) else None
        bound = threshold.limit(key, base)
        if bound is None or not math.isfinite(bound):
            continue
        label = f"{threshold.op} {format_value(key, bound)}"
        if threshold.relative:
            label += f" ({describe_threshold(key, threshold, base).split(' (')[0]})"
        limits[key] = (bound, label)
    return limits


def _percentile_svg(result: CheckResult) -> str | None:
    """A horizontal bar per latency percentile; each threshold a red mark labelled with its
    bound, in a column of its own so that no label covers a bar or a value."""
    if not any(key[:1] == "p" and key.endswith("_ms") for key in result.measured):
        return None
    values = sorted(
        (float(m[1]), key, float(v))
        for key, v in _numeric(result.measured).items()
        if (m := _PERCENTILE.match(key)) and math.isfinite(v)
    )
    if not values:
        return None
    limits = _limits(result, [key for _, key, _ in values])
    top = max([v for _, _, v in values] + [b for b, _ in limits.values()] + [1.0]) * 1.08
    width, left, bar_h, gap, head = 520, 70, 18, 10, 18
    label_x = left + width + 80
    height = head + len(values) * (bar_h + gap) + gap
    total = label_x + (200 if limits else 0)
    shown = ", ".join(f"{key} {value_text(key, value)}" for _, key, value in values)
    limit_text = "; ".join(f"{key} threshold {label}" for key, (_, label) in limits.items())
    described = f"Latency percentiles of {result.check_id}: {shown}" + (
        f"; {limit_text}" if limit_text else ""
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" '
        f'role="img" aria-label="{_e(described)}"><title>{_e(described)}</title>'
    ]
    if limits:
        parts.append(f'<text x="{label_x}" y="12" font-size="11" fill="#cf222e">threshold</text>')
    for index, (_, key, value) in enumerate(values):
        y = head + gap + index * (bar_h + gap)
        length = max(1.0, width * value / top)
        parts.append(
            f'<text x="0" y="{y + bar_h - 4}" font-size="12">{_e(key)}</text>'
            f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="#0969da"/>'
            f'<text x="{left + length + 6:.1f}" y="{y + bar_h - 4}" font-size="12" '
            f'class="figure" data-key="{_e(key)}">{_e(value_text(key, value))}</text>'
        )
        if key in limits:
            bound, label = limits[key]
            x = left + width * bound / top
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 3}" y2="{y + bar_h + 3}" '
                f'stroke="#cf222e" stroke-width="2" class="threshold-mark" '
                f'data-threshold="{_e(key)}">'
                f"<title>{_e(key)} {_e(label)}</title></line>"
                f'<text x="{label_x}" y="{y + bar_h - 4}" font-size="12" fill="#cf222e" '
                f'class="threshold-label" data-threshold="{_e(key)}">{_e(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _trend_series(measured: Mapping[str, Any]) -> dict[str, list[float]]:
    """Baseline trends a check recorded: ``<key>_trend`` or ``trend: {key: [...]}``."""
    found: dict[str, list[float]] = {}
    if not any(key == "trend" or key.endswith("_trend") for key in measured):
        return found

    def numbers(value: Any) -> list[float] | None:
        if isinstance(value, list) and len(value) >= 2:
            try:
                series = [float(v) for v in value]
            except (TypeError, ValueError):
                return None
            return series if all(math.isfinite(v) for v in series) else None
        return None

    for key, value in measured.items():
        if key == "trend" and isinstance(value, Mapping):
            for name, series in value.items():
                if (found_series := numbers(series)) is not None:
                    found[str(name)] = found_series
        elif key.endswith("_trend") and (series := numbers(value)) is not None:
            found[key[: -len("_trend")]] = series
    return found


def _trend_svg(name: str, series: list[float]) -> str:
    width, height, pad = 360, 90, 10
    low, high = min(series), max(series)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / (len(series) - 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (v - low) / span * (height - 2 * pad):.1f}"
        for i, v in enumerate(series)
    )
    last = value_text(name, series[-1])
    described = (
        f"Baseline trend of {name} over {len(series)} runs, oldest first: from "
        f"{value_text(name, series[0])} to {last}, lowest {value_text(name, low)}, highest "
        f"{value_text(name, high)}"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 140}" height="{height}" '
        f'role="img" aria-label="{_e(described)}"><title>{_e(described)}</title>'
        f'<polyline points="{points}" fill="none" stroke="#0969da" stroke-width="2"/>'
        f'<text x="{width + 4}" y="{height / 2:.0f}" font-size="12" class="figure" '
        f'data-key="{_e(name)}">{_e(name)}: {_e(last)}</text></svg>'
    )


def _figures(decisions: list[GateDecision]) -> list[str]:
    out = []
    for decision in decisions:
        for item in decision.criteria:
            for result in item.results:
                svg = _percentile_svg(result)
                if svg:
                    out.append(
                        f'<figure class="percentiles" data-check="{_e(result.check_id)}">{svg}'
                        f"<figcaption>Latency percentiles: {_e(decision.gate.name)} / "
                        f"{_e(item.criterion.id)} / {_e(result.check_id)}</figcaption></figure>"
                    )
                for name, series in _trend_series(result.measured).items():
                    out.append(
                        f'<figure class="trend" data-check="{_e(result.check_id)}">'
                        f"{_trend_svg(name, series)}<figcaption>Baseline trend of {_e(name)} "
                        f"({len(series)} runs): {_e(result.check_id)}</figcaption></figure>"
                    )
    return out


def _anchor(gate: str, criterion: str) -> str:
    return f"crit-{gate}-{criterion}"


def _criterion_line(gate: str, item: CriterionDecision) -> str:
    verdict = str(item.verdict)
    passed = sum(result.outcome == Outcome.PASSED for result in item.results)
    figure = criterion_figure(item)
    kind = "required" if item.criterion.required else "advisory"
    reason = ""
    if str(item.verdict) != "PASS" and item.reason:
        reason = f" — {_e(item.reason)}" + (
            f" (waived: {_e(item.waived_by)})" if item.waived_by else ""
        )
    return (
        f'<li class="criterion-line" data-criterion="{_e(item.criterion.id)}" '
        f'data-verdict="{_e(verdict)}"><span class="word v-{_e(verdict)}">{_e(verdict)}</span>'
        f'<a href="#{_e(_anchor(gate, item.criterion.id))}">{_e(item.criterion.id)}</a> '
        + (f'<span class="mono figure-line">{_e(figure)}</span> ' if figure != "-" else "")
        + f'<span class="muted">({kind}, {passed}/{len(item.results)} checks passed)</span>'
        f"{reason}</li>"
    )


def _overview(decisions: list[GateDecision]) -> list[str]:
    """One line per gate and per criterion: its verdict, its key figure, why it did not pass."""
    lines = ['<section id="overview"><ul class="overview">']
    for decision in decisions:
        name = decision.gate.name
        verdict = str(decision.verdict)
        # the criteria lines below say why; the gate's reason only when none of them does
        explained = any(str(item.verdict) != "PASS" for item in decision.criteria)
        reason = "" if explained else decision.reason
        extra = " · ".join(_e(x) for x in (decision.status, reason) if x)
        lines.append(
            f'<li class="gate-line" data-gate="{_e(name)}" data-verdict="{_e(verdict)}">'
            f'<span class="word v-{_e(verdict)}">{_e(verdict)}</span>'
            f'<a href="#gate-{_e(name)}">{_e(name)}</a>'
            + (f' <span class="muted">{extra}</span>' if extra else "")
            + "<ul>"
        )
        lines.extend(_criterion_line(name, item) for item in decision.criteria)
        lines.append("</ul></li>")
    lines.append("</ul></section>")
    return lines


_SVG_TITLE = re.compile(rb"<title>([^<]{1,2000})</title>")
_SVG_HEADING = re.compile(rb'<text[^>]*font-weight="bold"[^>]*>([^<]{1,500})</text>')


def _picture_alt(name: str, data: bytes) -> str:
    """What a picture shows, from its own ``<title>`` (the timeline writes one), else from
    its heading; never only a file name."""
    head = data[:200_000]
    for pattern in (_SVG_TITLE, _SVG_HEADING):
        found = pattern.search(head)
        if found:
            text = html.unescape(found[1].decode("utf-8", "replace")).strip()
            if text:
                return " ".join(text.split())
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("-", " ").replace("_", " ")
    return f"Picture {stem} from the evidence of {name.split('/')[1] if '/' in name else name}"


def _gate_section(decision: GateDecision) -> str:
    name = decision.gate.name
    verdict = str(decision.verdict)
    parts = [
        f'<section class="gate" id="gate-{_e(name)}" data-gate="{_e(name)}" '
        f'data-verdict="{_e(verdict)}">',
        f'<h2>{_e(decision.gate.title or name)} <span class="muted">({_e(name)})</span></h2>',
        f'<p><strong class="gate-verdict">{_e(verdict)}</strong>'
        + (f" — status {_e(decision.status)}" if decision.status else "")
        + (f" — {_e(decision.reason)}" if decision.reason else "")
        + "</p>",
    ]
    if decision.warnings:
        parts.append(
            '<ul class="warnings">' + "".join(f"<li>{_e(w)}</li>" for w in decision.warnings)
        )
        parts.append("</ul>")
    parts.append(
        '<table class="criteria"><thead><tr><th>criterion</th><th>kind</th><th>verdict</th>'
        "<th>thresholds</th><th>checks</th><th>reason</th></tr></thead><tbody>"
    )
    for item in decision.criteria:
        thresholds, overrides = criterion_thresholds(item)
        shown = "<br>".join(
            _e(f"{k} {v}" + (f" (standard {overrides[k][0]})" if k in overrides else ""))
            for k, v in thresholds.items()
        )
        kind = "required" if item.criterion.required else "advisory"
        reason = item.reason + (f" (waived: {item.waived_by})" if item.waived_by else "")
        parts.append(
            f'<tr data-criterion="{_e(item.criterion.id)}" '
            f'id="{_e(_anchor(name, item.criterion.id))}"><td>{_e(item.criterion.id)}<br>'
            f'<span class="muted">{_e(item.criterion.title)}</span></td><td>{kind}</td>'
            f'{_word_cell(str(item.verdict))}<td class="mono">{shown}</td>'
            f"<td>{len(item.results)}</td><td>{_e(reason)}</td></tr>"
        )
    parts.append("</tbody></table>")
    results = [result for item in decision.criteria for result in item.results]
    if results:
        parts.append(
            '<table class="checks"><thead><tr><th>check</th><th>criterion</th><th>outcome</th>'
            "<th>measured vs threshold</th><th>message</th></tr></thead><tbody>"
        )
        parts.extend(_check_rows(results))
        parts.append("</tbody></table>")
    parts.append("</section>")
    return "\n".join(parts)


def _pictures(pictures: Mapping[str, bytes]) -> list[str]:
    out = []
    for name, data in sorted(pictures.items()):
        if len(data) > _MAX_PICTURE_BYTES:
            out.append(f'<p class="muted">{_e(name)}: too large to show here</p>')
            continue
        encoded = base64.b64encode(data).decode("ascii")
        alt = _picture_alt(name, data)
        out.append(
            f'<figure class="timeline" data-file="{_e(name)}">'
            f'<img alt="{_e(alt)}" src="data:image/svg+xml;base64,{encoded}">'
            f'<figcaption>{_e(alt)}<br><span class="mono">{_e(name)}</span></figcaption></figure>'
        )
    return out


def build_html(
    decisions: list[GateDecision],
    *,
    run: Mapping[str, Any] | None = None,
    waivers: Iterable[Mapping[str, Any]] = (),
    deliverables: Mapping[str, Mapping[str, Any]] | None = None,
    pictures: Mapping[str, bytes] | None = None,
    environment: Mapping[str, Any] | None = None,
) -> str:
    """The page as text. ``pictures``: package path -> SVG bytes of the timelines."""
    run = run or {}
    verdict = str(overall_verdict(decisions))
    gates = ", ".join(d.gate.name for d in decisions) or "none"
    body = [
        f'<header class="verdict v-{_e(verdict)}" id="verdict" data-verdict="{_e(verdict)}">',
        f'<h1>Gate verdict: <span id="verdict-word">{_e(verdict)}</span></h1>',
        f"<p>gates: {_e(gates)}"
        + (f" · finished {_e(run['finished'])}" if run.get("finished") else "")
        + (f" · host {_e(run['host'])}" if run.get("host") else "")
        + "</p></header>",
    ]
    body.extend(_overview(decisions))
    body.extend(_gate_section(decision) for decision in decisions)

    figures = _figures(decisions)
    if figures:
        body.append('<section id="figures"><h2>Load percentiles and baseline trends</h2>')
        body.extend(figures)
        body.append("</section>")
    canary = canary_sections(r for d in decisions for c in d.criteria for r in c.results)
    if canary:
        body.append('<section id="canary"><h2>Canary against stable, per step</h2>')
        body.extend(canary)
        body.append("</section>")
    if pictures:
        body.append('<section id="timelines"><h2>Timelines</h2>')
        body.extend(_pictures(pictures))
        body.append("</section>")
    listed = list(waivers)
    if listed:
        body.append(
            '<section id="waivers"><h2>Waivers</h2><table><thead><tr><th>waiver</th>'
            "<th>approved by</th><th>expires</th><th>state</th><th>justification</th></tr>"
            "</thead><tbody>"
        )
        for waiver in listed:
            what, state = waiver_scope(waiver)
            body.append(
                f'<tr class="waiver" data-expires="{_e(waiver.get("expires", ""))}"><td>{_e(what)}'
                f"</td><td>{_e(waiver.get('approved_by', ''))}</td>"
                f"<td>{_e(waiver.get('expires', ''))}</td><td>{state}</td>"
                f"<td>{_e(waiver.get('justification', ''))}</td></tr>"
            )
        body.append("</tbody></table></section>")
    if deliverables:
        body.append('<section id="deliverables"><h2>Handoff deliverables</h2><ul>')
        for key, info in deliverables.items():
            present = bool(info.get("present"))
            state = f"present: {info.get('path')}" if present else "missing"
            body.append(
                f'<li data-deliverable="{_e(key)}" data-present="{str(present).lower()}">'
                f"{_e(info.get('title', key))}: {_e(state)}</li>"
            )
        body.append("</ul></section>")
    if environment:
        rows = []
        for key in ("started", "finished", "python", "platform", "machine"):
            if environment.get(key):
                rows.append(f"<tr><th>{_e(key)}</th><td>{_e(environment[key])}</td></tr>")
        git = environment.get("git") or {}
        if git:
            rows.append(
                f'<tr><th>git</th><td class="mono">{_e(git.get("commit"))} '
                f"{_e(git.get('branch') or '')}</td></tr>"
            )
        for key in ("hosts", "targets"):
            if environment.get(key):
                rows.append(
                    f"<tr><th>{key}</th><td>{_e(', '.join(map(str, environment[key])))}</td></tr>"
                )
        body.append('<section id="environment"><h2>Environment</h2><table>')
        body.extend(rows)
        body.append("</table></section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Gate report: {_e(verdict)} ({_e(gates)})</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
