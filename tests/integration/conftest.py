"""Fixtures for the integration tests: the real example stack, and background traffic.

The stack (gunicorn in two colours, nginx with TLS, Prometheus) runs on free loopback ports in a
per-session temporary directory, so each pytest-xdist worker has its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from examples.stack import Stack  # the repository root is on pythonpath (pyproject)

from .sshd import sshd_fleet  # a real sshd on 127.0.0.1 for the fleet tests
from .traffic import Prober, Writer, assert_stopped

__all__ = ["sshd_fleet"]


@pytest.fixture(scope="session")
def example_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The example stack, up for the whole session (per xdist worker), down at the end."""
    stack = Stack(tmp_path_factory.mktemp("stack"))
    stack.up()
    try:
        yield stack
    finally:
        records = list(stack.records().values())
        ports = stack.ports()
        stack.down()
        assert_stopped(records, ports)


@pytest.fixture
def live_v1(example_stack: Stack) -> Stack:
    """The session stack with v1 serving (a no-op when it already does)."""
    example_stack.deploy("v1", "bluegreen")
    return example_stack


@pytest.fixture
def stack_env(live_v1: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """v1 serving, and the stack's variables in the environment (as `make demo` has them)."""
    for key, value in live_v1.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FWGATES_PYTHON", sys.executable)
    return live_v1


@pytest.fixture
def prober(example_stack: Stack) -> Callable[..., Prober]:
    def make(path: str = "/version", interval: float = 0.02) -> Prober:
        return Prober(interval=interval, url=example_stack.urls["app"] + path)

    return make


@pytest.fixture
def writer(example_stack: Stack) -> Callable[..., Writer]:
    def make(interval: float = 0.05) -> Writer:
        return Writer(interval=interval, url=example_stack.urls["app"])

    return make
