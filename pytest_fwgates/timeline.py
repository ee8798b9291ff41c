"""A prober's timeline as evidence: a CSV file and a hand-drawn SVG picture (no plotting library).

The picture has two bands over one time axis: on top, each probe as a coloured stripe (green:
good, red: failed, its colour shade by version), outages shaded across the whole height;
below, the latency of each probe. Marks (deploy start and end, version switch, fault,
detection, recovery) are vertical lines with their labels.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from .fsutil import write_file
from .probe import Figures, Probe

__all__ = [
    "VERSION_PALETTE",
    "svg_legend",
    "timeline_csv",
    "timeline_svg",
    "version_colour",
    "version_colours",
    "write_timeline",
]

_WIDTH, _LEFT, _RIGHT = 960, 70, 20
_TOP, _STATUS_H, _GAP, _LAT_H, _BOTTOM = 44, 46, 26, 150, 64
#: Colours of versions, none of them the red of failures. Every picture of a run (timelines,
#: canary figures, report.html) takes a version's colour from :func:`version_colour`.
VERSION_PALETTE = (
    "#2e7d32",  # green
    "#1565c0",  # blue
    "#6a1b9a",  # purple
    "#00838f",  # teal
    "#ef6c00",  # orange
    "#5d4037",  # brown
    "#ad1457",  # pink
    "#455a64",  # blue grey
)
_NAMED = {"green": 0, "blue": 1, "purple": 2, "teal": 3, "orange": 4, "brown": 5, "pink": 6}
_FAILED = "#c62828"
_VERSION_NUMBER = re.compile(r"^\D*?(\d+(?:[.\-_]\d+)*)\D*$")


def version_colour(version: str) -> str:
    """The colour of ``version`` in every picture: a function of its name alone, so that the
    same version has the same colour in every timeline and figure of a run and across runs.

    Names of one number (``v1``, ``v2``, ``build-42``) take the palette in the order of the
    number, so consecutive versions differ; names of dotted numbers (``v1.4.2``) go by their
    numbers weighted, so that the next patch, minor or major version differs too; the names
    blue, green, ... take their own colour; any other name a colour from a hash of its text
    (stable across processes, unlike ``hash()``). Two names can still share a colour:
    :func:`version_colours` keeps the versions of one picture apart.
    """
    name = version.strip().lower()
    if name in _NAMED:
        return VERSION_PALETTE[_NAMED[name]]
    match = _VERSION_NUMBER.search(name)
    if match:
        # the numbers weighted from the last (1, 3, 9, ...): a patch, minor or major step
        # (1.4.2 -> 1.4.3, 2.0.0 -> 2.1.0, 1.4.9 -> 1.5.0) moves to another colour
        numbers = [int(n[-6:]) for n in re.split(r"[.\-_]", match[1])]
        index = sum(n * 3**i for i, n in enumerate(reversed(numbers))) - 1
    else:
        index = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")
    return VERSION_PALETTE[index % len(VERSION_PALETTE)]


def version_colours(versions: Sequence[str]) -> dict[str, str]:
    """The colours of the versions one picture shows: each its :func:`version_colour`, but
    never two of them the same (``v1.2`` and ``v1.3`` hash alike; a deploy between them must
    show the switch). Where two share a colour, the one first in sorted order keeps it and
    the other takes the next colour of the palette none of them has; a function of the set
    of names alone, so every picture of the same versions colours them alike. More versions
    than colours repeat them (each picture has a legend)."""
    names = sorted(dict.fromkeys(versions))
    wanted = {name: version_colour(name) for name in names}
    out: dict[str, str] = {}
    for name in names:
        colour = wanted[name]
        if colour in out.values() and len(out) < len(VERSION_PALETTE):
            start = VERSION_PALETTE.index(colour)
            taken = {*out.values(), *(wanted[n] for n in names if n not in out and n != name)}
            free = [
                VERSION_PALETTE[(start + step) % len(VERSION_PALETTE)]
                for step in range(1, len(VERSION_PALETTE))
            ]
            colour = next((c for c in free if c not in taken), None) or next(
                (c for c in free if c not in out.values()), colour
            )
        out[name] = colour
    return out


def timeline_csv(probes: Sequence[Probe], marks: Sequence[tuple[str, float]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["t_s", "end_s", "ok", "status", "latency_ms", "version", "error", "mark"])
    for label, at in marks:
        writer.writerow([f"{at:.4f}", "", "", "", "", "", "", label])
    for p in probes:
        writer.writerow(
            [
                f"{p.start:.4f}",
                f"{p.end:.4f}",
                int(p.ok),
                p.status,
                f"{p.latency_ms:.2f}",
                p.version or "",
                p.error,
                "",
            ]
        )
    return out.getvalue()


def _ticks(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800):
        if span / step <= 12:
            return step
    return 3600.0


def timeline_svg(
    probes: Sequence[Probe],
    marks: Sequence[tuple[str, float]],
    figures: Figures | None = None,
    *,
    title: str = "",
) -> str:
    """The SVG picture of a timeline (self-contained, no script)."""
    times = [p.start for p in probes] + [p.end for p in probes] + [at for _, at in marks]
    t_min = min(times, default=0.0)
    t_max = max(times, default=1.0)
    span = max(t_max - t_min, 0.001)
    plot_w = _WIDTH - _LEFT - _RIGHT

    def x(t: float) -> float:
        return _LEFT + (t - t_min) / span * plot_w

    placed = _place_labels([(label, x(at)) for label, at in marks])
    rows = max((row for _, _, row, _ in placed), default=-1) + 1
    height = _TOP + _STATUS_H + _GAP + _LAT_H + _BOTTOM + max(rows - 2, 0) * _ROW_H

    lat_max = max((p.latency_ms for p in probes), default=1.0)
    lat_max = max(lat_max, 1.0) * 1.1
    lat_top = _TOP + _STATUS_H + _GAP

    def y(ms: float) -> float:
        return lat_top + _LAT_H - min(ms, lat_max) / lat_max * _LAT_H

    versions: list[str] = []
    for p in probes:
        if p.version and p.version not in versions:
            versions.append(p.version)
    colour = version_colours(versions)

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(_describe(probes, marks, figures, title, versions, span))}</title>",
        f'<rect width="{_WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if figures is not None:
        summary = (
            f"downtime {figures.downtime_ms:.0f} ms · longest outage "
            f"{figures.longest_outage_ms:.0f} ms · {len(figures.outages)} outage(s) · "
            f"{figures.failed_probes}/{figures.probes} probes failed · availability "
            f"{figures.availability_pct:.2f} %"
        )
        parts.append(f'<text x="{_LEFT}" y="34" fill="#333">{escape(summary)}</text>')
    # outages, shaded over both bands
    if figures is not None:
        for outage in figures.outages:
            x0, x1 = x(outage.start), x(outage.end)
            parts.append(
                f'<rect x="{x0:.1f}" y="{_TOP}" width="{max(x1 - x0, 1.0):.1f}" '
                f'height="{_STATUS_H + _GAP + _LAT_H}" fill="{_FAILED}" fill-opacity="0.12">'
                f"<title>outage {outage.ms:.0f} ms ({outage.probes} probes)</title></rect>"
            )
    # status band: one stripe per probe, until the next probe starts
    parts.append(
        f'<text x="{_LEFT - 6}" y="{_TOP + _STATUS_H / 2 + 4}" text-anchor="end">status</text>'
    )
    for i, p in enumerate(probes):
        until = probes[i + 1].start if i + 1 < len(probes) else p.end
        x0, x1 = x(p.start), x(max(until, p.end))
        fill = colour.get(p.version or "", "#2e7d32") if p.ok else _FAILED
        tip = f"{p.start:.3f}s {p.status or p.error} {p.version or ''} {p.latency_ms:.1f} ms"
        parts.append(
            f'<rect x="{x0:.1f}" y="{_TOP}" width="{max(x1 - x0, 0.6):.1f}" height="{_STATUS_H}" '
            f'fill="{fill}"><title>{escape(tip)}</title></rect>'
        )
    # latency band
    parts.append(
        f'<rect x="{_LEFT}" y="{lat_top}" width="{plot_w}" height="{_LAT_H}" fill="none" '
        'stroke="#bbb"/>'
    )
    parts.append(
        f'<text x="{_LEFT - 6}" y="{lat_top + 10}" text-anchor="end">{lat_max:.0f} ms</text>'
    )
    parts.append(f'<text x="{_LEFT - 6}" y="{lat_top + _LAT_H}" text-anchor="end">0</text>')
    parts.append(
        f'<text x="14" y="{lat_top + _LAT_H / 2}" transform="rotate(-90 14 '
        f'{lat_top + _LAT_H / 2})" text-anchor="middle">latency</text>'
    )
    points = " ".join(f"{x(p.start):.1f},{y(p.latency_ms):.1f}" for p in probes if p.ok)
    if points:
        parts.append(f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="1"/>')
    for p in probes:
        if not p.ok:
            parts.append(
                f'<circle cx="{x(p.start):.1f}" cy="{y(p.latency_ms):.1f}" r="2" fill="{_FAILED}"/>'
            )
    # time axis
    axis_y = lat_top + _LAT_H
    step = _ticks(span)
    tick = (int(t_min / step) + 1) * step if t_min % step else t_min
    last_end = -1.0
    while tick <= t_max + 1e-9:
        text = f"{tick:g} s"
        tx, anchor = _anchored(x(tick), _text_w(text))
        left_edge = tx - (_text_w(text) if anchor == "end" else _text_w(text) / 2)
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{axis_y}" x2="{x(tick):.1f}" y2="{axis_y + 4}" '
            'stroke="#555"/>'
        )
        if left_edge > last_end + 4:  # a label that would touch the one before is left out
            parts.append(
                f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="{anchor}">{text}</text>'
            )
            last_end = left_edge + _text_w(text)
        tick += step
    # marks: each label in the first row below the axis where it touches no other label
    for label, mx, row, (lx, anchor) in placed:
        label_y = axis_y + 30 + row * _ROW_H
        parts.append(
            f'<line x1="{mx:.1f}" y1="{_TOP - 4}" x2="{mx:.1f}" y2="{label_y - 10}" '
            'stroke="#000" stroke-dasharray="4 3"/>'
            f'<text x="{lx:.1f}" y="{label_y}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    parts.extend(svg_legend(versions, colour, _LEFT, height - 8, "failed probe"))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def svg_legend(
    versions: Sequence[str], colour: Mapping[str, str], left: float, baseline: float, failed: str
) -> list[str]:
    """The legend along the bottom of a picture: from ``left``, a swatch in each version's
    colour, then red for ``failed`` (the text on ``baseline``)."""
    parts: list[str] = []
    legend_x = left
    for version in versions:
        parts.append(
            f'<rect x="{legend_x}" y="{baseline - 9}" width="10" height="10" '
            f'fill="{colour[version]}"/>'
            f'<text x="{legend_x + 14}" y="{baseline}">{escape(version)}</text>'
        )
        legend_x += 24 + 7 * len(version)
    parts.append(
        f'<rect x="{legend_x}" y="{baseline - 9}" width="10" height="10" fill="{_FAILED}"/>'
        f'<text x="{legend_x + 14}" y="{baseline}">{escape(failed)}</text>'
    )
    return parts


_ROW_H = 14
#: width of a character of the 11 px sans-serif labels, generously (no font metrics here)
_CHAR_W = 6.6


def _text_w(text: str) -> float:
    return len(text) * _CHAR_W


def _anchored(at: float, width: float) -> tuple[float, str]:
    """Where a label of ``width`` at ``at`` is drawn so that it stays inside the picture."""
    if at + width / 2 > _WIDTH - 4:
        return min(at, _WIDTH - 4), "end"
    if at - width / 2 < 4:
        return max(at, 4), "start"
    return at, "middle"


def _place_labels(
    marks: Sequence[tuple[str, float]],
) -> list[tuple[str, float, int, tuple[float, str]]]:
    """(label, x of its mark, row, (x of its text, anchor)) for each mark, in the first row
    where the label overlaps no label placed before it (at most 8 rows)."""
    rows: list[list[tuple[float, float]]] = []
    placed = []
    for label, mx in marks:
        width = _text_w(label)
        lx, anchor = _anchored(mx, width)
        start = lx - (width if anchor == "end" else 0 if anchor == "start" else width / 2)
        span = (start - 3, start + width + 3)
        free = (
            i for i, taken in enumerate(rows) if all(span[1] <= a or span[0] >= b for a, b in taken)
        )
        row = next(free, min(len(rows), 7))
        if row == len(rows):
            rows.append([])
        rows[row].append(span)
        placed.append((label, mx, row, (lx, anchor)))
    return placed


def _describe(
    probes: Sequence[Probe],
    marks: Sequence[tuple[str, float]],
    figures: Figures | None,
    title: str,
    versions: Sequence[str],
    span: float,
) -> str:
    """What the picture shows, in words (its <title>, the alt text of report.html)."""
    failed = sum(1 for p in probes if not p.ok)
    text = f"{title or 'Timeline'}: {len(probes)} probes over {span:.1f} s"
    if versions:
        text += f", answered by {' then '.join(versions)}"
    text += f", {failed} failed"
    if figures is not None:
        text += (
            f"; downtime {figures.downtime_ms:.0f} ms in {len(figures.outages)} outage(s), "
            f"availability {figures.availability_pct:.2f} %"
        )
    if marks:
        text += "; marks: " + ", ".join(f"{label} at {at:.2f} s" for label, at in marks)
    return text


def write_timeline(
    folder: Path,
    stem: str,
    probes: Sequence[Probe],
    marks: Sequence[tuple[str, float]],
    figures: Figures | None,
    title: str,
) -> dict[str, Path]:
    """Write ``<stem>.csv`` and ``<stem>.svg`` into ``folder``; returns them by evidence name."""
    csv_path = write_file(folder / f"{stem}.csv", timeline_csv(probes, marks))
    svg_path = write_file(folder / f"{stem}.svg", timeline_svg(probes, marks, figures, title=title))
    return {f"{stem}_csv": csv_path, f"{stem}_svg": svg_path}
