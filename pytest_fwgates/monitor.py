"""The ``deploy_monitor`` fixture: the deploy check's prober around any code of a Python test.

    @pytest.mark.gate("zero-downtime-deployment", criterion="deployment-time")
    def test_deploy(deploy_monitor):
        with deploy_monitor("http://127.0.0.1:8080/health", version={"json": "version",
                                                                     "expect": "v2"}) as m:
            subprocess.run(["./deploy.sh", "v2"], check=True, timeout=300)
        assert m.values["downtime_ms"] == 0

This module imports only pytest and typing at start-up; the prober is imported when the
fixture is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .fixtures import Recorder
    from .probe import Figures, Prober

__all__ = ["DeployMonitor", "deploy_monitor"]


class DeployMonitor:
    """What the prober saw around the block: ``values`` (held to the criterion's thresholds),
    ``figures``, ``prober`` (its timeline) and ``evidence`` (timeline CSV and SVG)."""

    def __init__(self, prober: Prober) -> None:
        self.prober = prober
        self.values: dict[str, float] = {}
        self.facts: dict[str, Any] = {}
        self.figures: Figures | None = None
        self.evidence: dict[str, Path] = {}
        self.stable: bool = False


@pytest.fixture
def deploy_monitor(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., contextlib.AbstractContextManager[DeployMonitor]]]:
    """Probe a health URL around a block of code (a deploy): see :class:`DeployMonitor`.

    ``deploy_monitor(url, version=None, interval=0.05, timeout=None, stable=1.0, settle=60.0,
    verify=True)``: the service must answer before the block; after it, the monitor waits
    (bounded by ``settle``) until the service has answered on ``version["expect"]`` for
    ``stable`` seconds. The figures are recorded for the test's gate criterion, the timeline
    is written to the test's temporary folder. The block runs under the same lock as deploy
    checks, so it never overlaps a deploy, rollback, drill or load check.
    """
    from .exclusive import exclusive
    from .probe import Prober, VersionRule
    from .timeline import write_timeline

    gate_record: Recorder = request.getfixturevalue("gate_record")
    open_probers: list[Prober] = []

    @contextlib.contextmanager
    def monitor(
        url: str,
        *,
        version: dict[str, Any] | None = None,
        interval: float = 0.05,
        timeout: float | None = None,
        stable: float = 1.0,
        settle: float = 60.0,
        verify: bool | str = True,
    ) -> Iterator[DeployMonitor]:
        __tracebackhide__ = True
        rule = VersionRule.from_option(version)
        prober = Prober(url, interval=interval, timeout=timeout, version=rule, verify=verify)
        open_probers.append(prober)
        result = DeployMonitor(prober)
        with exclusive(request.config.rootpath), prober:
            prober.wait_for(lambda probes: any(p.ok for p in probes), 10.0)
            if prober.last_good() is None:
                seen = prober.probes
                why = seen[-1].error if seen else "no answer"
                pytest.fail(f"deploy_monitor: {url} is not healthy before the block: {why}")
            before = prober.last_good()
            started = prober.mark("start")
            yield result
            ended = prober.mark("end")
            expected = rule.expect if rule else None
            stable_at = prober.wait_stable(
                since=started, window_s=stable, version=expected, until=ended, timeout=settle
            )
            result.stable = stable_at is not None
            if stable_at is not None:
                prober.mark("stable")
            stopped = prober.now()
        figures = prober.figures(start=started, end=stopped)
        result.figures = figures
        result.values = {k: v for k, v in figures.values().items() if k != "probes"}
        done = max(ended, stable_at) if stable_at is not None else ended
        result.values["duration_s"] = round(done - started, 3)
        last = prober.last_good()
        result.facts = {"versions_seen": figures.versions, "version_after": last and last.version}
        if rule is not None:  # as a deploy check: the version switched, or nothing changed
            changed = before is not None and last is not None and before.version != last.version
            result.values["version_changed"] = 1.0 if changed else 0.0
        result.evidence = write_timeline(
            tmp_path,
            f"timeline-{len(open_probers)}",
            prober.probes,
            prober.marks,
            figures,
            f"deploy_monitor: {request.node.name}",
        )
        for key, value in result.values.items():
            gate_record._measured_by_check(key, value, "deploy")  # the deploy check's own prober
        if not result.stable:
            on = f" on {expected}" if expected else ""
            pytest.fail(
                f"deploy_monitor: {url} was not stable{on} for {stable:g} s within "
                f"{settle:g} s after the block (last good answer: {result.facts['version_after']})"
            )

    yield monitor
    for prober in open_probers:  # never a thread left behind, whatever the test did
        prober.stop()
