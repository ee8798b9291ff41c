"""Fixtures for Python tests that serve a gate criterion (``@pytest.mark.gate``).

Imported by ``plugin.py`` in every pytest run: nothing heavy at module level, the engine
is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from .keys import measures_key, run_key, support_key

if TYPE_CHECKING:
    from .model import CheckResult, Criterion, Gate

__all__ = ["gate_check", "gate_record"]


@pytest.fixture
def gate_record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a measured value (``gate_record("duration_s", 42.0)``) for the test's criterion.

    Recorded values are held to the criterion's standard thresholds and appear in the
    gate reports; a criterion whose standard no check measured is not evaluated. In a run
    with ``--gate``, a value that misses its standard fails the test at once.

    A share of counted events is judged on its counts, never on the share alone:
    ``gate_record("availability_pct", counts=(good, probes))`` (the share is computed, or
    checked against a value given). A percentile or mean of samples is judged on the bound
    its samples allow: ``gate_record("p95_ms", samples=latencies)``,
    ``gate_record("mttr_s", samples=recovery_times)``. A share recorded without counts
    cannot pass a one-sided standard: its criterion is INCONCLUSIVE.
    """
    measures = request.node.stash.setdefault(measures_key, {})
    supports = request.node.stash.setdefault(support_key, {})
    run = request.config.stash.get(run_key, None)
    confidence = 0.95
    if run is not None:
        from .run import run_confidence

        _gate, criterion = _criterion_of(request)
        level = criterion.confidence if criterion is not None else None
        confidence = level if level is not None else run_confidence(request.config)

    def record(
        key: str,
        value: float | None = None,
        *,
        counts: tuple[int, int] | None = None,
        samples: Sequence[float] | None = None,
    ) -> None:
        __tracebackhide__ = True
        from .bounds import supported_value

        try:
            value, support = supported_value(key, value, counts, samples, confidence)
        except ValueError as exc:
            raise TypeError(f"gate_record({key!r}, ...) {exc}") from None
        measures[key] = value
        if support:
            supports[key] = support
        if run is not None:
            # a value that misses its standard fails the test itself, not only the gate
            problem = run.standard_problem(request.node, key, value)
            if problem:
                pytest.fail(problem)

    return record


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
def gate_check(
    request: pytest.FixtureRequest, gate_record: Callable[..., None]
) -> Callable[..., CheckResult]:
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
                gate_record(key, value)
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
