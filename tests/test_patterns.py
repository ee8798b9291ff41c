"""Regular expressions from gate files are bounded in time: a pattern that backtracks
exponentially (``(a|aa)+$``) ends its check with an error instead of holding the run."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_fwgates.patterns import PatternError, PatternTimeout, compile_pattern, search
from pytest_fwgates.probe import VersionRule

if TYPE_CHECKING:
    from conftest import GateProject

#: with Python's re, (a|aa)+$ on this text takes about fib(40) steps: minutes
SLOW_TEXT = "a" * 40 + "!"
SLOW_PATTERN = "(a|aa)+$"


@pytest.fixture
def slow_body_url(serve_body: Any) -> Iterator[str]:
    """A real HTTP server on loopback whose every answer is SLOW_TEXT."""
    with serve_body(SLOW_TEXT.encode()) as url:
        yield url


def test_a_search_is_bounded_and_a_bad_pattern_is_refused() -> None:
    started = time.monotonic()
    with pytest.raises(PatternTimeout, match=r"longer than 0\.2 s"):
        search(compile_pattern(SLOW_PATTERN), SLOW_TEXT, timeout=0.2)
    assert time.monotonic() - started < 2
    found = search(compile_pattern(r"release-(\d+)"), "release-42")
    assert found is not None and found.group(1) == "42"
    with pytest.raises(PatternError):
        compile_pattern("(")


def test_an_exponential_body_pattern_errors_the_check(
    project: GateProject, slow_body_url: str
) -> None:
    project.gate(
        "patterns",
        f"""
        gate: patterns
        title: bounded patterns
        criteria:
          body:
            title: body
            checks:
              - http: {slow_body_url}
                id: slow
                expect:
                  body_matches: '{SLOW_PATTERN}'
              - http: {slow_body_url}
                id: fine
                expect:
                  body_matches: 'a{{40}}!'
        """,
    )
    started = time.monotonic()
    result = project.run("--gate=patterns")
    assert time.monotonic() - started < 30
    assert result.ret == 1
    checks = project.checks("patterns", "body")
    assert checks["slow"]["outcome"] == "error"
    assert "took longer than 1 s" in checks["slow"]["message"]
    assert checks["fine"]["outcome"] == "passed"


def test_a_slow_version_pattern_shows_no_version_in_time() -> None:
    rule = VersionRule.from_option({"regex": SLOW_PATTERN})
    assert rule is not None
    started = time.monotonic()
    assert rule.read(http.client.HTTPMessage(), SLOW_TEXT.encode()) is None
    assert time.monotonic() - started < 1
