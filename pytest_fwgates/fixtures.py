"""Fixtures for Python tests that serve a gate criterion (``@pytest.mark.gate``).

Imported by ``plugin.py`` in every pytest run: nothing heavy at module level, the engine
is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from .keys import (
    finished_key,
    measured_by_key,
    measures_key,
    record_problems_key,
    run_key,
    support_key,
)

if TYPE_CHECKING:
    from .model import CheckResult, Criterion, Gate

__all__ = ["Recorder", "gate_check", "gate_record"]


class Recorder:
    """``gate_record(name, value, counts=..., samples=...)``: a measured value for the test's
    criterion.

    Every value is kept and judged by the verdict, wherever it was recorded (the test, a
    fixture, its teardown, a thread); one that misses its standard, or a figure a check type
    owns, fails the test at once too and is kept as a problem, so a thread that swallows the
    failure cannot make it pass. A value recorded after the test's last report is an error of
    the test.
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        item = request.node
        self._item = item
        self._run = request.config.stash.get(run_key, None)
        self._measures = item.stash.setdefault(measures_key, {})
        self._supports = item.stash.setdefault(support_key, {})
        self._by = item.stash.setdefault(measured_by_key, {})
        self._problems = item.stash.setdefault(record_problems_key, [])
        self._confidence = 0.95
        if self._run is not None:
            from .run import run_confidence

            _gate, criterion = _criterion_of(request)
            level = criterion.confidence if criterion is not None else None
            self._confidence = level if level is not None else run_confidence(request.config)

    def __call__(
        self,
        key: str,
        value: float | None = None,
        *,
        counts: tuple[int, int] | None = None,
        samples: Sequence[float] | None = None,
    ) -> None:
        __tracebackhide__ = True
        self._record(key, value, counts, samples, "")

    def _measured_by_check(self, key: str, value: float, by: str) -> None:
        """A value check code of type ``by`` measured (``gate_check``, ``deploy_monitor``)."""
        __tracebackhide__ = True
        self._record(key, value, None, None, by)

    def _problem(self, text: str) -> None:
        __tracebackhide__ = True
        if text not in self._problems:
            self._problems.append(text)
        pytest.fail(text, pytrace=False)

    def _record(
        self,
        key: str,
        given: float | None,
        counts: tuple[int, int] | None,
        samples: Sequence[float] | None,
        by: str,
    ) -> None:
        __tracebackhide__ = True
        from .bounds import supported_value

        try:
            value, support = supported_value(key, given, counts, samples, self._confidence)
        except ValueError as exc:
            raise TypeError(f"gate_record({key!r}, ...) {exc}") from None
        run = self._run
        if run is not None:
            if self._item.stash.get(finished_key, False):
                # its reports are made: the value can no longer reach the verdict with them
                run.late_record(self._item, key)
                return
            if not by:
                owners = run.registry.owners().get(key)
                if owners:
                    from .owners import owned_message

                    self._problem(owned_message(key, owners))
        self._measures[key] = value
        if support:
            self._supports[key] = support
        if by:
            self._by[key] = by
        else:
            self._by.pop(key, None)
        if run is not None:
            # a value that misses its standard fails the test itself, not only the gate
            problem = run.standard_problem(self._item, key, value)
            if problem:
                self._problem(problem)


@pytest.fixture
def gate_record(request: pytest.FixtureRequest) -> Recorder:
    """Record a measured value (``gate_record("page_load_ms", 420.0)``) for the test's
    criterion.

    Recorded values are held to the criterion's standard thresholds and appear in the
    gate reports; a criterion whose standard no check measured is not evaluated. In a run
    with ``--gate``, a value that misses its standard fails the test at once, and a figure
    a check type owns (``targets_up``, ``mismatches``, ``p95_ms``, ``duration_s``, ...) is
    refused: the check (or ``gate_check``, ``deploy_monitor``) measures it. See
    :mod:`pytest_fwgates.owners`.

    A share of counted events is judged on its counts, never on the share alone:
    ``gate_record("error_share_pct", counts=(bad, requests))`` (the share is computed, or
    checked against a value given). A percentile or mean of samples is judged on the bound
    its samples allow: ``gate_record("page_p95_ms", samples=latencies)``. A share recorded
    without counts cannot pass a one-sided standard: its criterion is INCONCLUSIVE.
    """
    return Recorder(request)


def _criterion_of(request: pytest.FixtureRequest) -> tuple[Gate | None, Criterion | None]:
    from .yamlsrc import SourceError

    run = request.config.stash.get(run_key, None)
    if run is None:
        return None, None
    for gate_name, criterion_id, _ in run.memberships(request.node):
        try:
            gate = run.loader.load(gate_name)
        except SourceError:
            continue
        return gate, gate.criteria.get(criterion_id)
    return None, None


@pytest.fixture
def gate_check(request: pytest.FixtureRequest, gate_record: Recorder) -> Callable[..., CheckResult]:
    """Run a check of any registered type from Python, with the same code as YAML checks.

    ``gate_check("command", "systemctl is-active nginx", expect={"stdout_contains": "active"})``
    returns the :class:`~pytest_fwgates.model.CheckResult`; a check that fails fails the test
    with its one-line message, and its measured values count for the test's criterion.
    """
    from pathlib import Path

    from .checks import CheckContext, CheckRegistry, run_check
    from .loader import GateLoader
    from .model import Outcome, Source
    from .yamlsrc import SourceError

    run = request.config.stash.get(run_key, None)
    if run is not None:
        loader, registry, context = run.loader, run.registry, run.context
    else:
        registry = CheckRegistry.from_hook(request.config.hook)
        loader = GateLoader([], registry=registry)
        from .run import check_settings

        context = CheckContext(
            rootdir=request.config.rootpath,
            redactor=loader.redactor,
            settings=check_settings(request.config),
        )
    gate, criterion = _criterion_of(request)
    path, line, _ = request.node.location

    def check(type_name: str, target: Any, **settings: Any) -> CheckResult:
        __tracebackhide__ = True
        where = Source(Path(path), (line or 0) + 1)
        try:
            spec = loader.spec_from_mapping(gate, criterion, {type_name: target, **settings}, where)
        except SourceError as exc:
            raise pytest.UsageError(f"gate_check: {exc.message}") from None
        result = run_check(registry.get(type_name)(spec, context), request.node.nodeid)
        supports = request.node.stash.setdefault(support_key, {})
        for key, value in result.measured.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                gate_record._measured_by_check(key, value, type_name)
                if key in result.support:
                    supports[key] = dict(result.support[key])
                if key in result.thresholds:
                    # held to the check's own thresholds in the verdict too, on their bound
                    supports.setdefault(key, {})["threshold"] = result.thresholds[key]
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.message)
        if result.outcome is Outcome.INCONCLUSIVE:
            return result  # the verdict holds it to its bound: the gate says INCONCLUSIVE
        if result.outcome is not Outcome.PASSED:
            pytest.fail(f"{spec.id}: {result.message}", pytrace=False)
        return result

    return check
