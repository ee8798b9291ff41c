"""A deploy in steps as a picture: what each version answered, time slice by time slice.

One stacked bar per slice (about 60 over the deploy): the share of the slice's answers that
came from each version, in the version's colour (:func:`~pytest_fwgates.timeline.version_colours`,
the same in every picture), its failed answers in red on top of it; below, the share of the
new version as a line against the weight each step asked for (dashed). The steps, the abort
and the return to the stable version are marked with their labels. Self-contained SVG, no
script, drawn by hand as the timeline is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .probe import Probe
from .timeline import svg_legend, version_colours

__all__ = ["canary_svg"]

_WIDTH, _LEFT, _RIGHT, _TOP = 960, 70, 20, 44
_BARS_H, _GAP, _SHARE_H, _BOTTOM = 150, 22, 90, 60
_FAILED = "#c62828"
_SLICES = 60


def canary_svg(
    probes: Sequence[Probe],
    marks: Sequence[tuple[str, float]],
    *,
    new: str,
    steps: Sequence[tuple[float, float | None]],
    start: float,
    end: float,
    title: str = "",
) -> str:
    """``steps``: (prober time each step's traffic began, its weight or None)."""
    span = max(end - start, 0.001)
    width = span / _SLICES
    plot_w = _WIDTH - _LEFT - _RIGHT
    height = _TOP + _BARS_H + _GAP + _SHARE_H + _BOTTOM

    def x(t: float) -> float:
        return _LEFT + (min(max(t, start), end) - start) / span * plot_w

    slices: list[dict[str, list[int]]] = [{} for _ in range(_SLICES)]
    unread = [0] * _SLICES
    versions: list[str] = []
    for probe in probes:
        if not start <= probe.start <= end:
            continue
        index = min(int((probe.start - start) / width), _SLICES - 1)
        if probe.version is None:
            unread[index] += 1
            continue
        if probe.version not in versions:
            versions.append(probe.version)
        pair = slices[index].setdefault(probe.version, [0, 0])
        pair[0] += 1
        pair[1] += 0 if probe.ok else 1
    colour = version_colours([*versions, new])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11" role="img">',
        f"<title>{escape(_describe(slices, new, versions, span, title))}</title>",
        f'<rect width="{_WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<text x="{_LEFT}" y="34" fill="#333">answers per {width:.2f} s by version '
        f"(failed ones in red); below, the share of {escape(new)} against the step's weight"
        "</text>",
        f'<text x="{_LEFT - 6}" y="{_TOP + _BARS_H / 2 + 4}" text-anchor="end">answers</text>',
    ]
    bar_w = plot_w / _SLICES
    for i, counts in enumerate(slices):
        total = sum(n for n, _ in counts.values()) + unread[i]
        if not total:
            continue
        y: float = _TOP + _BARS_H
        order = sorted(counts, key=lambda v: (v == new, versions.index(v)))
        for version in order:
            answered, failed = counts[version]
            good_h = (answered - failed) / total * _BARS_H
            fail_h = failed / total * _BARS_H
            for h, fill, what in (
                (good_h, colour[version], "good"),
                (fail_h, _FAILED, "failed"),
            ):
                if h <= 0:
                    continue
                y -= h
                tip = f"{version}: {answered - failed if what == 'good' else failed} {what}"
                parts.append(
                    f'<rect x="{_LEFT + i * bar_w:.1f}" y="{y:.1f}" width="{bar_w - 0.5:.1f}" '
                    f'height="{h:.1f}" fill="{fill}"><title>{escape(tip)}</title></rect>'
                )
    # the new version's share of the answers, against the weight asked for
    top = _TOP + _BARS_H + _GAP
    parts.append(
        f'<rect x="{_LEFT}" y="{top}" width="{plot_w}" height="{_SHARE_H}" fill="none" '
        'stroke="#bbb"/>'
        f'<text x="{_LEFT - 6}" y="{top + 10}" text-anchor="end">100 %</text>'
        f'<text x="{_LEFT - 6}" y="{top + _SHARE_H}" text-anchor="end">0</text>'
    )

    def ys(share: float) -> float:
        return top + _SHARE_H - share / 100.0 * _SHARE_H

    points = []
    for i, counts in enumerate(slices):
        total = sum(n for n, _ in counts.values())
        if total:
            share = 100.0 * counts.get(new, [0, 0])[0] / total
            points.append(f"{_LEFT + (i + 0.5) * bar_w:.1f},{ys(share):.1f}")
    if points:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" '
            f'stroke="{colour[new]}" stroke-width="2"/>'
        )
    asked = [(at, w) for at, w in steps if w is not None]
    for n, (at, weight) in enumerate(asked):
        until = asked[n + 1][0] if n + 1 < len(asked) else end
        parts.append(
            f'<line x1="{x(at):.1f}" y1="{ys(weight):.1f}" x2="{x(until):.1f}" '
            f'y2="{ys(weight):.1f}" stroke="#000" stroke-dasharray="5 3"/>'
        )
    # time axis and marks
    axis_y = top + _SHARE_H
    for n in range(0, 6):
        t = start + span * n / 5
        parts.append(
            f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle">{t - start:.1f} s</text>'
        )
    for n, (label, at) in enumerate(m for m in marks if start <= m[1] <= end):
        mx = x(at)
        label_y = axis_y + 28 + (n % 2) * 13
        anchor = "end" if mx > _WIDTH - 120 else "start" if mx < _LEFT + 60 else "middle"
        parts.append(
            f'<line x1="{mx:.1f}" y1="{_TOP - 4}" x2="{mx:.1f}" y2="{label_y - 10}" '
            'stroke="#000" stroke-opacity="0.5" stroke-dasharray="2 3"/>'
            f'<text x="{mx:.1f}" y="{label_y}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    parts.extend(svg_legend(versions, colour, _LEFT, height - 8, "failed answer"))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _describe(
    slices: list[dict[str, list[int]]], new: str, versions: list[str], span: float, title: str
) -> str:
    totals = {v: [0, 0] for v in versions}
    for counts in slices:
        for version, (answered, failed) in counts.items():
            totals[version][0] += answered
            totals[version][1] += failed
    seen = "; ".join(f"{v}: {a} answers, {f} failed" for v, (a, f) in totals.items())
    return f"{title}: {span:.1f} s; new version {new}; {seen or 'no answers'}"
