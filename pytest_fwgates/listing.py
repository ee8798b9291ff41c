"""The text of ``--gate-list`` and ``fwgates list``."""

from __future__ import annotations

from .loader import GateLoader
from .yamlsrc import SourceError

__all__ = ["format_gate_list"]


def format_gate_list(loader: GateLoader) -> tuple[str, bool]:
    """Every known gate with its criteria; ``ok`` is False when a gate file is broken."""
    lines: list[str] = []
    ok = True
    for name in loader.known():
        try:
            gate = loader.load(name)
        except SourceError as exc:
            lines += [f"{name}  (cannot be loaded)", f"  error: {exc}", ""]
            ok = False
            continue
        origin = ["catalog"] if gate.in_catalog else []
        origin += [str(p) for p in loader.user_files(name)]
        facts = [
            f"phase {gate.phase}" if gate.phase else "",
            f"earns {gate.status}" if gate.status else "",
        ]
        extra = ", ".join(f for f in facts if f)
        lines.append(f"{name}  ({extra})" if extra else name)
        lines.append(f"  {gate.title}   [{' + '.join(origin)}]")
        width = max(len(c) for c in gate.criteria)
        for criterion in gate.criteria.values():
            kind = "required" if criterion.required else "advisory"
            if criterion.include:
                kind = "includes"
            thresholds = ", ".join(f"{k} {v}" for k, v in criterion.thresholds_in_force().items())
            checks = f"{len(criterion.checks)} checks" if not criterion.include else ""
            measures = f"measures {', '.join(criterion.measures)}" if criterion.measures else ""
            detail = "; ".join(x for x in (thresholds, measures, checks) if x)
            suffix = f"  [{detail}]" if detail else ""
            lines.append(f"  - {criterion.id:<{width}}  {kind:<8}  {criterion.title}{suffix}")
        lines.append("")
    return "\n".join(lines), ok
