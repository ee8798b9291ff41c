"""``progress``: a phase's status in the progress file (``.ai_context/framework_progress.md``).

Read from the block pytest-fwgates keeps, or from a line another tool wrote, such as
``Phase 6: COMPLETE (approved by Jane Doe)``. Expectations: ``status`` (one word or a list;
default: a completed status such as COMPLETE, PRODUCTION_READY, OPERATIONS_HANDOFF_READY)
and ``approved`` (true: the phase line names who approved it). A file that does not mention
the phase is an error, never a pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from .base import Check, CheckError, Measurement

#: statuses that mean "this phase is done" when the gate file names none
DONE = (
    "COMPLETE",
    "COMPLETED",
    "DONE",
    "PASSED",
    "APPROVED",
    "PRODUCTION_READY",
    "OPERATIONS_HANDOFF_READY",
    "EXCELLENCE_ACHIEVED",
)
_WORDS: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}


class ProgressCheck(Check):
    type_name = "progress"
    summary = "A phase's status in the progress file (and who approved it)."
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "phase": {"type": ["string", "integer"], "description": "the phase, e.g. 6"},
    }
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "status": _WORDS,
        "approved": {"type": "boolean"},
    }
    default_timeout = 10.0

    def measure(self) -> Measurement:
        from ..progress import ProgressError, read_phase

        phase = str(self.spec.options.get("phase", "")).strip()
        if not phase:
            raise CheckError("progress: give the phase to read (phase: 6)")
        path = Path(self.spec.target)
        path = path if path.is_absolute() else self.context.rootdir / path
        if not path.is_file():
            raise CheckError(f"{self.spec.target}: no such progress file")
        try:
            found = read_phase(path, phase)
        except ProgressError as exc:
            raise CheckError(str(exc)) from None
        if found is None:
            raise CheckError(f"{self.spec.target}: says nothing about the status of phase {phase}")
        wanted = self.spec.expect.get("status")
        allowed = (
            list(DONE) if wanted is None else [wanted] if isinstance(wanted, str) else list(wanted)
        )
        failures: list[str] = []
        where = f"{self.spec.target}:{found.line}"
        if found.status.upper() not in {a.upper() for a in allowed}:
            failures.append(
                f"{where}: phase {phase} is {found.status}, expected {' or '.join(allowed)}"
            )
        if self.spec.expect.get("approved") and not found.approved_by:
            failures.append(f"{where}: phase {phase} names no approval ('approved by NAME')")
        return Measurement(
            facts={
                "phase": phase,
                "status": found.status,
                "approved_by": found.approved_by,
                "line": found.line,
            },
            failures=failures,
        )
