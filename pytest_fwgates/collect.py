"""Gate files as pytest collectors; each YAML check is one item at its YAML line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .checks import run_check
from .keys import result_key
from .model import CheckResult, CheckSpec, Outcome
from .yamlsrc import SourceError

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from .run import GateRun

__all__ = ["CriterionNode", "GateFile", "GateItem", "result_key"]


class CheckFailed(Exception):
    """A YAML check did not meet its expectations (shown without a traceback)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


class GateFile(pytest.File):
    """A user's gate file: yields one node per criterion with checks written in this file."""

    run: GateRun

    def collect(self) -> Iterator[CriterionNode]:
        try:
            gate = self.run.loader.load(self.path.stem)
        except SourceError as exc:
            raise self.CollectError(str(exc)) from None
        own = self.path.resolve()
        resolved: dict[Path, Path] = {}  # each source path resolved once, not once per check

        def written_here(path: Path) -> bool:
            if path not in resolved:
                resolved[path] = path.resolve()
            return resolved[path] == own

        for criterion in gate.criteria.values():
            specs = [s for s in criterion.checks if written_here(s.source.path)]
            if specs:
                node = CriterionNode.from_parent(self, name=criterion.id)
                node.specs = specs
                yield node


class CriterionNode(pytest.Collector):
    specs: list[CheckSpec]

    def collect(self) -> Iterator[GateItem]:
        for spec in self.specs:
            yield GateItem.from_parent(self, name=spec.id, spec=spec)


class GateItem(pytest.Item):
    """One check of a gate file."""

    def __init__(self, *, spec: CheckSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.add_marker(pytest.mark.gate(spec.gate, criterion=spec.criterion))

    @property
    def run(self) -> GateRun:
        parent = self.getparent(GateFile)
        assert parent is not None
        return parent.run

    def setup(self) -> None:
        """Measure. A check that could not measure (a timeout, a host that does not answer)
        is an error of its setup, as pytest reports a fixture that could not be made; what
        the measured values show is judged in ``runtest``."""
        if self.config.getoption("setuponly", False):
            return  # --setup-only and --setup-plan run setups, never checks
        result = self._measure()
        if result.outcome is Outcome.ERROR:
            pytest.fail(self._describe(result), pytrace=False)
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.message)

    def _measure(self) -> CheckResult:
        gate_run = self.run
        check = gate_run.registry.get(self.spec.type)(self.spec, gate_run.context)
        result = run_check(check, self.nodeid)
        self.stash[result_key] = result
        self.config.hook.pytest_fwgates_check_finished(result=result)
        return result

    def runtest(self) -> None:
        result = self.stash.get(result_key, None)
        if result is None:
            result = self._measure()  # a protocol that did not call setup()
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.message)
        if result.outcome is not Outcome.PASSED:
            raise CheckFailed(result)

    def _describe(self, result: CheckResult) -> str:
        word = {Outcome.ERROR: "ERROR", Outcome.INCONCLUSIVE: "INCONCLUSIVE"}.get(
            result.outcome, "FAILED"
        )
        lines = [f"{self.spec.source}: {word}: {result.message}"]
        from .report.summary import value_text

        for key, value in result.measured.items():
            if key not in ("stdout", "stderr") or value:
                lines.append(f"  {key} = {value_text(key, value)}")
        return "\n".join(lines)

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, CheckFailed):
            return self._describe(excinfo.value.result)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, self.spec.source.line - 1, f"{self.spec.criterion}::{self.spec.id}"
