"""``handoff``: a handoff package is intact, signed by a trusted key, passed and complete.

The same verification as ``fwgates verify``. A hash mismatch, a missing or added file, a
bad signature or an unreadable archive always fails the check (no threshold can allow it).
Expectations: ``verdict`` (default ``PASSED``; ``any`` to accept every verdict), ``signed``
(default true when ``public_key`` is given), ``run_id`` (the package was made in that CI run,
as ``fwgates verify --require-run-id``), and the thresholds ``missing_deliverables``
(e.g. ``== 0``), ``age_s`` (e.g. ``<= 168h``) and ``files``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from ..fsutil import write_file
from .base import Check, CheckError, Measurement

_VERDICTS = ["PASSED", "FAILED", "HUMAN_REVIEW_REQUIRED"]


class HandoffCheck(Check):
    type_name = "handoff"
    summary = "A handoff package (folder or .tar.gz) is intact, signed, passed and complete."
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "public_key": {
            "type": "string",
            "description": "trusted Ed25519 public key (PEM); empty: the signature is not checked",
        },
    }
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"missing_deliverables", "age_s", "files"})
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "verdict": {
            "anyOf": [
                {"enum": [*_VERDICTS, "any"]},
                {"type": "array", "items": {"enum": _VERDICTS}, "minItems": 1},
            ]
        },
        "signed": {"type": "boolean"},
        "run_id": {
            "type": ["string", "integer"],
            "description": "the CI run that must have made the package (e.g. ${env:BUILD_TAG})",
        },
    }
    default_timeout = 120.0

    def _path(self, text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() else self.context.rootdir / path

    def measure(self) -> Measurement:
        from ..integrity import IntegrityError, Verification, load_public_key, verify_package

        package = self._path(self.spec.target)
        key_text = str(self.spec.options.get("public_key") or "").strip()
        expect = self.spec.expect
        signed_expected = bool(expect.get("signed", bool(key_text)))
        failures: list[str] = []
        key = None
        if key_text:
            try:
                key = load_public_key(self._path(key_text))
            except IntegrityError as exc:
                raise CheckError(str(exc)) from None
        elif signed_expected:
            failures.append("no trusted public key given (public_key: PATH): signature unchecked")

        run_id = expect.get("run_id")
        if run_id is not None and not str(run_id).strip():
            raise CheckError("run_id is empty (is the CI variable set?)")
        holder: dict[str, Verification | BaseException] = {}

        def run() -> None:
            try:
                holder["result"] = verify_package(
                    package,
                    public_key=key,
                    require_run_id=str(run_id).strip() if run_id is not None else None,
                )
            except Exception as exc:  # reported as the check's error
                holder["result"] = exc

        worker = threading.Thread(target=run, name="fwgates-handoff-verify", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise CheckError(f"{self.spec.target}: not verified within {self.timeout:g} s")
        result = holder["result"]
        if isinstance(result, BaseException):
            raise CheckError(f"{self.spec.target}: cannot be verified: {result}")
        if result.manifest is None:
            raise CheckError("; ".join(result.problems) or f"{self.spec.target}: no package")

        failures.extend(result.problems)
        wanted = expect.get("verdict", "PASSED")
        if wanted != "any":
            allowed = [wanted] if isinstance(wanted, str) else list(wanted)
            if result.verdict not in allowed:
                failures.append(f"verdict is {result.verdict}, expected {' or '.join(allowed)}")
        if signed_expected and key is not None and result.signed is not True:
            failures.append("not signed by the trusted key")
        values: dict[str, float] = {
            "missing_deliverables": float(len(result.missing_deliverables)),
            "files": float(result.files),
        }
        if result.age_s is not None:
            values["age_s"] = round(result.age_s, 3)
        manifest = result.manifest
        facts: dict[str, Any] = {
            "verdict": result.verdict,
            "signed": result.signed,
            "created": manifest.get("created"),
            "signing_key": manifest.get("signing_key"),
            "gates": {g.get("name"): g.get("verdict") for g in manifest.get("gates") or []},
            "missing": result.missing_deliverables,
        }
        if result.problems:
            facts["problems"] = result.problems[:20]
        report = self.context.evidence_dir(self.spec) / "verification.txt"
        lines = [f"package: {package}", f"verdict: {result.verdict}", f"signed: {result.signed}"]
        lines += [f"FAIL {p}" for p in result.problems] + [f"note {n}" for n in result.notes]
        write_file(report, "\n".join(lines) + "\n")
        return Measurement(
            values=values, facts=facts, failures=failures, evidence={"verification": report}
        )
