"""Figures owned by check types: the table, the registry, and the catalog's use of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_fwgates.checks import BUILTIN_CHECKS, Check, CheckRegistry, Measurement
from pytest_fwgates.owners import BUILTIN_OWNS

CATALOG = Path(__file__).parent.parent / "gates"


@pytest.mark.parametrize("name", sorted(BUILTIN_CHECKS))
def test_a_type_owns_only_figures_it_measures(name: str) -> None:
    cls = CheckRegistry().get(name)
    assert BUILTIN_OWNS.get(name, frozenset()) <= cls.threshold_keys


def test_a_plugin_type_adds_its_owned_figures() -> None:
    class Queue(Check):
        type_name = "queue"
        threshold_keys = frozenset({"queue_depth", "targets_up"})
        owns = frozenset({"queue_depth", "targets_up"})

        def measure(self) -> Measurement:
            return Measurement()

    registry = CheckRegistry()
    assert "queue_depth" not in registry.owners()
    registry.register("queue", Queue)
    owners = registry.owners()
    assert owners["queue_depth"] == {"queue"}
    assert owners["targets_up"] == {"prometheus", "queue"}
    assert owners["mismatches"] >= {"file", "service", "socket"}
