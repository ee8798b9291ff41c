"""Malformed gate files: one line ``path:line: what is wrong`` at collection, no traceback,
nothing runs, and the run never ends PASSED.

Each file in ``bad_gates/`` says in its first lines which gate file it stands for
(``# as: NAME``) and the error it must give (``# error: LINE: MESSAGE``, the message's
beginning). Cases that need more than one file are built inline.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "bad_gates"
CASES = sorted(BAD.glob("*.yaml"))
# hypothesis' plugin costs a second per in-process run; these runs do not need it
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def literal(text: str) -> str:
    """``text`` as an fnmatch pattern that matches only itself."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def header(text: str, key: str) -> str:
    match = re.search(rf"^# {key}: (.*)$", text, re.MULTILINE)
    assert match is not None, f"missing '# {key}:' line"
    return match.group(1)


def write_gate(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / "gates" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def assert_one_line_error(
    result: pytest.RunResult,
    pytester: pytest.Pytester,
    path: Path,
    line: int,
    message: str,
    collected: Path | None = None,
) -> None:
    """The file fails collection with one line at ``path:line``; nothing ran; not PASSED."""
    collected = (collected or path).relative_to(pytester.path)
    expected = f"{path}:{line}: {message}"
    result.stdout.fnmatch_lines(
        [f"*ERROR collecting {literal(str(collected))}*", f"{literal(expected)}*"],
        consecutive=True,
    )
    lines = result.stdout.lines
    index = next(i for i, text in enumerate(lines) if text.startswith(expected))
    assert lines[index + 1].startswith(("=", "_")), "the error is more than one line"
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert not [text for text in lines if text.startswith("E   ")]
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["overall: FAILED*", f"gate file error: {literal(expected)}*"])
    summary = json.loads((pytester.path / "reports" / "summary.json").read_text("utf-8"))
    assert summary["verdict"] == "FAILED"
    assert not (pytester.path / "RAN").exists(), "a check ran"
    assert not (pytester.path / "PWNED").exists()


def test_enough_distinct_cases() -> None:
    assert len(CASES) >= 30
    errors = [header(path.read_text("utf-8"), "error") for path in CASES]
    assert len(set(errors)) == len(errors)


@pytest.mark.parametrize("case", CASES, ids=[path.stem for path in CASES])
def test_bad_gate_file(pytester: pytest.Pytester, case: Path) -> None:
    text = case.read_text("utf-8")
    name = header(text, "as")
    line, message = header(text, "error").split(": ", 1)
    pytester.makeini("[pytest]\n")
    path = pytester.path / "gates" / f"{name}.yaml"
    path.parent.mkdir()
    path.write_bytes(case.read_bytes())
    result = pytester.runpytest(f"--gate={name}", *QUIET)
    assert_one_line_error(result, pytester, path, int(line), message)


def test_include_cycle(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    first = write_gate(
        pytester,
        "gate-a",
        """
        gate: gate-a
        includes: [gate-b]
        criteria:
          smoke:
            - command: touch RAN
        """,
    )
    path = write_gate(
        pytester,
        "gate-b",
        """
        gate: gate-b
        criteria:
          smoke:
            - command: touch RAN
        includes:
          - gate-a
        """,
    )
    result = pytester.runpytest("--gate=gate-a", *QUIET)
    message = "include cycle: gate-a -> gate-b -> gate-a"
    assert_one_line_error(result, pytester, path, 6, message, collected=first)


def test_include_cycle_through_the_catalog(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    path = write_gate(
        pytester,
        "production-readiness",
        """
        gate: production-readiness
        includes: [operations-handoff]
        criteria:
          rollback-capability:
            - command: touch RAN
        """,
    )
    result = pytester.runpytest("--gate=production-readiness", *QUIET)
    assert_one_line_error(
        result,
        pytester,
        path,
        2,
        "include cycle: production-readiness -> operations-handoff -> production-readiness",
    )


def test_broken_included_gate_fails_the_including_gate(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    broken = write_gate(
        pytester,
        "production-readiness",
        """
        gate: production-readiness
        criteria:
          rollback-capability:
            - comand: ./rollback.sh
        """,
    )
    write_gate(
        pytester,
        "operations-handoff",
        """
        gate: operations-handoff
        criteria:
          handoff-deliverables:
            - command: touch RAN
        """,
    )
    result = pytester.runpytest("--gate=operations-handoff", *QUIET)
    message = "unknown check type 'comand' (did you mean 'command'?)"
    result.stdout.fnmatch_lines(
        ["*ERROR collecting gates/operations-handoff.yaml*", f"{broken}:4: {literal(message)}*"],
        consecutive=True,
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert not (pytester.path / "RAN").exists()


def test_broken_included_gate_without_own_file(pytester: pytest.Pytester) -> None:
    """Only the included gate has a user file: its error still fails the run, in one line."""
    pytester.makeini("[pytest]\n")
    broken = write_gate(pytester, "production-readiness", "gate: production-readiness\nx: 1\n")
    result = pytester.runpytest("--gate=operations-handoff", *QUIET)
    expected = f"{broken}:2: unknown key 'x'"
    result.stdout.fnmatch_lines(["overall: FAILED*", f"gate file error: {literal(expected)}*"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret != 0


def test_duplicate_check_ids_across_gate_dirs(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngate_dirs =\n    gates\n    more\n")
    text = """
        gate: production-readiness
        criteria:
          rollback-capability:
            - command: touch RAN
        """
    first = write_gate(pytester, "production-readiness", text)
    second = pytester.path / "more" / "production-readiness.yaml"
    second.parent.mkdir()
    second.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    result = pytester.runpytest("--gate=production-readiness", *QUIET)
    result.stdout.fnmatch_lines(
        [f"{second}:4: duplicate check id 'command[[]touch RAN]'*(first at {first}:4)*"]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret != 0
    assert not (pytester.path / "RAN").exists()


def test_bad_gate_var_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    write_gate(pytester, "my-gate", "gate: my-gate\ncriteria:\n  a:\n    - command: touch RAN\n")
    result = pytester.runpytest("--gate=my-gate", "--gate-var", "no-equals-sign", *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gate-var: expected NAME=VALUE, got 'no-equals-sign'*"])
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / "RAN").exists()


def test_unknown_gate_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("--gate=production-readyness", *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown gate 'production-readyness' (did you mean 'production-readiness'?)*"]
    )


def test_gate_var_cannot_inject_into_a_threshold(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    path = write_gate(
        pytester,
        "production-readiness",
        """
        gate: production-readiness
        vars: {limit: "< 5s"}
        criteria:
          rollback-capability:
            - command: touch RAN
              expect:
                duration_s: ${limit}
        """,
    )
    attack = "< 5s or __import__('os').system('touch PWNED')"
    result = pytester.runpytest(
        "--gate=production-readiness", "--gate-var", f"limit={attack}", *QUIET
    )
    assert_one_line_error(result, pytester, path, 7, f'duration_s: bad threshold "{attack}"')
