"""Text expectations of command and http checks (``stdout_contains``, ``body_not_contains``,
...): one rule for each, the same messages, in the order the keys are listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.checks.base import text_failures
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Outcome, Source

_WORDS = st.text(alphabet="ab\n'\"", max_size=4)


@given(
    text=_WORDS,
    contains=st.one_of(st.none(), _WORDS, st.lists(_WORDS, max_size=4)),
    absent=st.one_of(st.none(), _WORDS, st.lists(_WORDS, max_size=4)),
)
def test_a_message_for_each_text_missing_or_present_against_its_key(
    text: str, contains: Any, absent: Any
) -> None:
    def listed(value: Any) -> list[str]:
        return [] if value is None else [value] if isinstance(value, str) else list(value)

    expect = {"body_contains": contains, "body_not_contains": absent, "stdout_contains": ["x"]}
    assert text_failures("body", text, expect) == [
        *(f"body does not contain {t!r}" for t in listed(contains) if t not in text),
        *(f"body contains {t!r}" for t in listed(absent) if t in text),
    ]


def _run(tmp_path: Path, mapping: dict[str, Any]) -> CheckResult:
    loader = GateLoader([], registry=CheckRegistry(), environ={})
    spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "t.py", 1))
    context = CheckContext(rootdir=tmp_path, evidence_root=tmp_path / "evidence")
    return run_check(CheckRegistry().get(spec.type)(spec, context), "t")


def test_a_command_is_held_to_its_stdout_and_stderr(tmp_path: Path) -> None:
    expect = {
        "stdout_contains": ["ready", "started"],
        "stdout_not_contains": "ready",
        "stderr_contains": "warning",
    }
    result = _run(tmp_path, {"command": "echo ready; echo fine >&2", "expect": expect})
    assert result.outcome is Outcome.FAILED
    assert result.message == (
        "stdout does not contain 'started'; stdout contains 'ready'; "
        "stderr does not contain 'warning'"
    )
    expect = {"stdout_contains": "ready", "stdout_not_contains": "x", "stderr_contains": "fine"}
    passed = _run(tmp_path, {"command": "echo ready; echo fine >&2", "expect": expect})
    assert passed.outcome is Outcome.PASSED, passed.message


def test_an_http_answer_is_held_to_its_body(tmp_path: Path, serve_body: Any) -> None:
    with serve_body(b"status: ready\n") as url:
        expect = {"body_contains": ["ready", "healthy"], "body_not_contains": ["status"]}
        result = _run(tmp_path, {"http": url, "expect": expect})
        passed = _run(tmp_path, {"http": url, "expect": {"body_contains": "ready"}})
    assert result.outcome is Outcome.FAILED
    assert "body does not contain 'healthy'" in result.message
    assert "body contains 'status'" in result.message
    assert "'ready'" not in result.message
    assert passed.outcome is Outcome.PASSED, passed.message
