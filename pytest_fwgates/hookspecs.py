"""Hooks of pytest-fwgates. Implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .checks import CheckRegistry
    from .model import CheckResult, GateDecision


@pytest.hookspec
def pytest_fwgates_register_checks(registry: CheckRegistry) -> None:
    """Add check types, by class or by ``"module:Class"`` path (imported when first used).

    A check type subclasses :class:`pytest_fwgates.checks.Check`, names its ``type_name``,
    the values it measures (``threshold_keys``) and implements ``measure()``:

    .. code-block:: python

        # conftest.py
        from pytest_fwgates.checks import Check, Measurement


        class DiskFree(Check):
            type_name = "disk_free"
            summary = "Free space of a mount point, in percent."
            threshold_keys = frozenset({"free_pct"})
            default_timeout = 5.0

            def measure(self) -> Measurement:
                import shutil

                usage = shutil.disk_usage(self.spec.target)
                return Measurement(values={"free_pct": 100 * usage.free / usage.total})


        def pytest_fwgates_register_checks(registry):
            registry.register("disk_free", DiskFree)

    A gate file can then say ``- disk_free: /var`` with ``expect: {free_pct: ">= 20%"}``.
    """


@pytest.hookspec
def pytest_fwgates_check_finished(result: CheckResult) -> None:
    """Called in the process that ran it, after each YAML check has been judged.

    .. code-block:: python

        # conftest.py
        def pytest_fwgates_check_finished(result):
            if result.outcome != "passed":
                print(f"{result.nodeid}: {result.message}")
    """


@pytest.hookspec
def pytest_fwgates_gate_decided(decision: GateDecision, config: pytest.Config) -> None:
    """Called once per gate on the controller (never on xdist workers) with its verdict,
    before reports are written. Use it to notify a chat room or a release tool:

    .. code-block:: python

        # conftest.py
        def pytest_fwgates_gate_decided(decision, config):
            if decision.verdict != "PASSED":
                config.stash.setdefault(failed_gates_key, []).append(decision.gate.name)
    """
