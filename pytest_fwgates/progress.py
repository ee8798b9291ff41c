"""The progress file (``.ai_context/framework_progress.md``): phase statuses and verdicts.

A gate run rewrites only the block between ``<!-- fwgates:begin -->`` and
``<!-- fwgates:end -->`` (added at the end when absent); every byte outside it is kept.
The block shows each phase's status (the status its last decided gate earned), the last
verdict of each gate, its time and package path, and carries the same data as JSON in a
comment so that the next run can update it.

:func:`read_phase` finds a phase's status for the ``progress`` check type: in the block,
or on a line another tool wrote, such as ``Phase 6: COMPLETE (approved by Jane Doe)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import atomic_write, read_regular
from .model import GateDecision, GateVerdict

__all__ = [
    "BEGIN",
    "END",
    "PhaseStatus",
    "ProgressError",
    "phase_status",
    "read_phase",
    "render_block",
    "update_progress",
]

BEGIN = "<!-- fwgates:begin -->"
END = "<!-- fwgates:end -->"
_DATA = re.compile(r"<!-- fwgates:data (\{.*?\}) -->", re.S)
_STATUS_WORD = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{3,})\b")
_APPROVED = re.compile(r"approved\s+by\s*:?\s*([^,;|()\n]+?)\s*(?:[,;|()]|\s+on\s|$)", re.I)
_MAX_BYTES = 16 * 2**20
#: words on a phase line that are not its status
_NOT_STATUS = frozenset({"UTC", "TODO", "NOTE", "PHASE", "AI", "CI", "CD", "API", "URL", "ID"})


class ProgressError(Exception):
    """The progress file cannot be read or updated (message names the file)."""


def phase_status(verdict: str, status: str) -> str:
    """The status a gate's verdict gives its phase."""
    if verdict == GateVerdict.PASSED:
        return status or "PASSED"
    if verdict == GateVerdict.HUMAN_REVIEW_REQUIRED:
        return "HUMAN_REVIEW_REQUIRED"
    if verdict == GateVerdict.INCONCLUSIVE:
        return "GATE_INCONCLUSIVE"
    return "GATE_FAILED"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "-"


def render_block(gates: dict[str, dict[str, Any]], newline: str = "\n") -> str:
    """The marked block for the recorded gates (name -> phase, verdict, status, time, package)."""
    phases: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for name, info in sorted(gates.items(), key=lambda kv: str(kv[1].get("time", ""))):
        phase = str(info.get("phase") or "-")
        phases[phase] = (name, phase_status(str(info["verdict"]), str(info.get("status"))), info)
    lines = [
        BEGIN,
        "## Quality gates (pytest-fwgates)",
        "",
        "| phase | status | decided by | time |",
        "|---|---|---|---|",
    ]
    for phase in sorted(phases):
        name, status, info = phases[phase]
        lines.append(f"| {_cell(phase)} | {status} | {_cell(name)} | {_cell(info.get('time'))} |")
    lines += [
        "",
        "| gate | phase | verdict | status | time | package |",
        "|---|---|---|---|---|---|",
    ]
    for name, info in sorted(gates.items()):
        lines.append(
            f"| {_cell(name)} | {_cell(info.get('phase'))} | {_cell(info['verdict'])} | "
            f"{_cell(info.get('status'))} | {_cell(info.get('time'))} | "
            f"{_cell(info.get('package') or '-')} |"
        )
    data = json.dumps({"gates": gates}, sort_keys=True, ensure_ascii=True)
    data = data.replace(">", "\\u003e").replace("<", "\\u003c")
    lines += ["", f"<!-- fwgates:data {data} -->", END]
    return newline.join(lines)


def _split(raw: bytes, path: Path) -> tuple[bytes, bytes | None, bytes]:
    """(before, block or None, after) of the file's bytes."""
    begin, end = BEGIN.encode(), END.encode()
    start = raw.find(begin)
    if start < 0:
        if raw.find(end) >= 0:
            raise ProgressError(f"{path}: '{END}' without '{BEGIN}'; fix the file by hand")
        return raw, None, b""
    stop = raw.find(end, start)
    if stop < 0:
        line = raw.count(b"\n", 0, start) + 1
        raise ProgressError(f"{path}:{line}: '{BEGIN}' without '{END}'; fix the file by hand")
    if raw.find(begin, start + len(begin)) >= 0:
        line = raw.count(b"\n", 0, raw.find(begin, start + len(begin))) + 1
        raise ProgressError(f"{path}:{line}: a second '{BEGIN}'; keep one block")
    stop += len(end)
    return raw[:start], raw[start:stop], raw[stop:]


def _recorded(block: bytes | None) -> dict[str, dict[str, Any]]:
    if block is None:
        return {}
    match = _DATA.search(block.decode("utf-8", "replace"))
    if not match:
        return {}
    try:
        data = json.loads(match[1])
    except json.JSONDecodeError:
        return {}
    gates = data.get("gates") if isinstance(data, dict) else None
    if not isinstance(gates, dict):
        return {}
    return {str(k): v for k, v in gates.items() if isinstance(v, dict) and "verdict" in v}


def _read(path: Path) -> bytes:
    try:
        data = read_regular(path, _MAX_BYTES)
        if len(data) > _MAX_BYTES:
            raise ProgressError(f"{path}: larger than {_MAX_BYTES // 2**20} MiB")
        return data
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise ProgressError(f"{path}: cannot read: {exc.strerror}") from None


def update_progress(
    path: Path, decisions: list[GateDecision], *, time: str, package: str | None = None
) -> None:
    """Record the decisions in the file's block; the rest of the file is kept byte for byte."""
    raw = _read(path)
    before, block, after = _split(raw, path)
    gates = _recorded(block)
    for decision in decisions:
        gates[decision.gate.name] = {
            "phase": str(decision.gate.phase or ""),
            "verdict": str(decision.verdict),
            "status": decision.status or decision.gate.status or "",
            "time": time,
            "package": package,
        }
    newline = "\r\n" if b"\r\n" in raw else "\n"
    text = render_block(gates, newline).encode("utf-8")
    if block is None:
        sep = b"" if not before or before.endswith(b"\n") else newline.encode()
        gap = newline.encode() if before else b""
        out = before + sep + gap + text + newline.encode()
    else:
        out = before + text + after
    atomic_write(path, out)


# -- reading a phase's status ---------------------------------------------------------------
@dataclass
class PhaseStatus:
    phase: str
    status: str
    approved_by: str | None
    line: int
    text: str


def _phase_pattern(phase: str) -> re.Pattern[str]:
    return re.compile(rf"\bphase\s*[:#-]?\s*{re.escape(phase)}(?![\d.])", re.I)


def read_phase(path: Path, phase: str) -> PhaseStatus | None:
    """The status of ``phase`` in the progress file, or None when the file does not say."""
    raw = _read(path)
    text = raw.decode("utf-8", "replace")
    _, block, _ = _split(raw, path)
    if block is not None:
        gates = _recorded(block)
        decided = [
            (str(info.get("time", "")), name, info)
            for name, info in gates.items()
            if str(info.get("phase")) == phase
        ]
        if decided:
            _, name, info = max(decided)
            begin_line = text[: text.find(BEGIN)].count("\n") + 1
            return PhaseStatus(
                phase,
                phase_status(str(info["verdict"]), str(info.get("status") or "")),
                None,
                begin_line,
                f"gate {name}: {info['verdict']}",
            )
    pattern = _phase_pattern(phase)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = pattern.search(line)
        if not match:
            continue
        rest = line[match.end() :]
        words = [w for w in _STATUS_WORD.findall(rest) if w not in _NOT_STATUS]
        if not words:
            continue
        approved = _APPROVED.search(rest)
        if approved is None:
            # an approval written on the lines just below the phase line
            for follow in lines[index + 1 : index + 4]:
                if not follow.strip() or re.search(r"\bphase\b", follow, re.I):
                    break
                approved = _APPROVED.search(follow)
                if approved:
                    break
        return PhaseStatus(
            phase,
            words[0],
            approved[1].strip() if approved else None,
            index + 1,
            line.strip(),
        )
    return None
