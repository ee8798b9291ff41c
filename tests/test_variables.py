"""``${var}``, ``${env:NAME:-default}`` and shell quoting of values put into commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates.variables import (
    VariableError,
    interpolate,
    interpolate_shell,
    parse_assignment,
)

ENV = {"HOME": "/home/op", "EMPTY": "", "TARGET_URL": "http://web:8080"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${url}/health", "http://127.0.0.1:8080/health"),
        ("${ url }", "http://127.0.0.1:8080"),
        ("${a.b-c_d}", "dotted"),
        ("${env:HOME}", "/home/op"),
        ("${env:TARGET_URL:-http://localhost}", "http://web:8080"),
        ("${env:NOT_SET:-http://localhost:9090}", "http://localhost:9090"),
        ("${env:NOT_SET:-}", ""),
        ("${env:EMPTY:-fallback}", "fallback"),
        ("${env:EMPTY}", ""),
        ("$${url}", "${url}"),
        ("cost $5", "cost $5"),
        ("no reference", "no reference"),
        ("${url}${url}", "http://127.0.0.1:8080http://127.0.0.1:8080"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    variables = {"url": "http://127.0.0.1:8080", "a.b-c_d": "dotted"}
    assert interpolate(text, variables, ENV) == expected


def test_values_are_not_expanded_again() -> None:
    variables = {"a": "${b}", "b": "never", "c": "${env:HOME}"}
    assert interpolate("${a} ${c}", variables, ENV) == "${b} ${env:HOME}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${nope}", "undefined variable 'nope'; defined: url"),
        ("${ulr}", "undefined variable 'ulr' (did you mean 'url'?)"),
        ("${env:NOT_SET}", "environment variable NOT_SET is not set"),
        ("${env:}", "bad reference"),
        ("${env:1X}", "bad reference"),
        ("${}", "bad variable reference"),
        ("${a b}", "bad variable reference"),
        ("${__import__('os')}", "bad variable reference"),
    ],
)
def test_interpolate_errors(text: str, message: str) -> None:
    with pytest.raises(VariableError) as info:
        interpolate(text, {"url": "u"}, ENV)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_env_suggests_a_default() -> None:
    with pytest.raises(VariableError, match=r"give a default: \$\{env:NOT_SET:-value\}"):
        interpolate("${env:NOT_SET}", {}, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("url=http://x", ("url", "http://x")),
        (" url =a=b", ("url", "a=b")),
        ("empty=", ("empty", "")),
        ("v=x; touch PWNED", ("v", "x; touch PWNED")),
    ],
)
def test_parse_assignment(text: str, expected: tuple[str, str]) -> None:
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=x", "1a=x", "a b=x", "$(x)=y", ""])
def test_parse_assignment_refuses(text: str) -> None:
    with pytest.raises(VariableError, match="expected NAME=VALUE"):
        parse_assignment(text)


# -- shell quoting -------------------------------------------------------------------------

NASTY = [
    "x; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "\\",
    "it's",
    "",
    "a  b",
    "*",
    "$HOME",
    "x\n touch PWNED",
    "a & touch PWNED &",
    "| touch PWNED",
    '\\"$(touch PWNED)\\"',
]

# commands whose output is exactly the value, each with the reference in another context
TEMPLATES = [
    "printf '%s' ${v}",
    "printf '%s' \"${v}\"",
    "printf '%s' 'pre'${v}'post' | sed 's/^pre//; s/post$//'",
    "printf '%s' 'pre ${v} post' | sed 's/^pre //; s/ post$//'",
    "printf '%s' \"pre ${v} post\" | sed 's/^pre //; s/ post$//'",
    "printf '%s' \"$(printf '%s' ${v})\"",
    "printf '%s' \"$(printf '%s' \"${v}\")\"",
    "printf '%s' \"$(printf '%s' \"$(printf '%s' '${v}')\")\"",
    "printf '%s' ${v} # don't ${v}",
    "x=${v}; printf '%s' \"$x\"",
    "printf '%s' \"$${HOME:+}${v}\"",
    "(printf '%s' ${v})",
]


def shell(template: str, variables: dict[str, str]) -> tuple[str, dict[str, str]]:
    env: dict[str, str] = {}
    return interpolate_shell(template, variables, {}, env), env


def run_sh(command: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=10,
        env={"PATH": os.environ["PATH"], **(env or {})},
    )
    return done.stdout


@pytest.mark.parametrize("template", TEMPLATES)
def test_shell_value_is_one_literal_word(template: str, tmp_path: Path) -> None:
    for value in NASTY:
        command, env = shell(template, {"v": value})
        if value.strip():
            assert value not in command  # values never enter the shell text
        out = run_sh(command, tmp_path, env)
        if "\n" not in value:  # sed works on lines
            assert out == value, (template, value, command)
        assert not (tmp_path / "PWNED").exists(), (template, value, command)


@pytest.mark.parametrize(
    "template",
    [
        # a value with a newline after a comment ran as a command when values were quoted in
        "echo ok # note: ${v}",
        # a here-document whose <<EOF line ends in a comment
        "cat <<EOF # comment\n${v}\nEOF",
        "cat <<'EOF'\n${v}\nEOF",
        "echo `echo ${v}`",
        "echo $(case a in a) echo ${v};; esac)",
        'echo "$${x:-\'}" ${v}',
        "eval_free=1; printf '%s' '${v}'",
    ],
)
@pytest.mark.parametrize("value", ["a\ntouch PWNED #", "$(touch PWNED)", "`touch PWNED`"])
def test_value_never_runs_in_any_context(template: str, value: str, tmp_path: Path) -> None:
    command, env = shell(template, {"v": value})
    assert "PWNED" not in command
    run_sh(command, tmp_path, env)
    assert not (tmp_path / "PWNED").exists(), (template, value, command)


@settings(max_examples=60, deadline=None)
@given(
    template=st.sampled_from(TEMPLATES),
    value=st.text(alphabet=st.sampled_from(list("ab $`'\"\\;|&(){}<>*?#~!\t=%")), max_size=20),
)
def test_shell_quoting_property(
    template: str, value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cwd = tmp_path_factory.mktemp("sh")
    command, env = shell(template, {"v": value})
    out = run_sh(command, cwd, env)
    if "\n" not in value:
        assert out == value
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(
    ("template", "where"),
    [
        ("echo $((${v} + 1))", "inside $((...))"),
        ("echo $${x:-${v}}", "inside a shell ${...} expansion"),
        ('echo "$${x:-${v}}"', "inside a shell ${...} expansion"),
        ("echo $'a${v}'", "inside $'...'"),
        ("echo \\${v}", "follows a backslash"),
        ('echo "\\${v}"', "follows a backslash"),
    ],
)
def test_shell_reference_where_it_cannot_stand(template: str, where: str) -> None:
    with pytest.raises(VariableError) as info:
        shell(template, {"v": "$(touch PWNED)"})
    assert where in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("echo $${HOME}", "echo ${HOME}"),
        ("echo \\$${HOME}", "echo \\${HOME}"),
        ("echo '$${x}' ${v}", "echo '${x}' \"${FWGATES_V1}\""),
        ("echo <<<${v}", 'echo <<<"${FWGATES_V1}"'),
        ("echo $(( 1 + 2 )) ${v}", 'echo $(( 1 + 2 )) "${FWGATES_V1}"'),
        ("echo `date` ${v}", 'echo `date` "${FWGATES_V1}"'),
        ('echo $(echo "(") ${v}', 'echo $(echo "(") "${FWGATES_V1}"'),
        ("echo a#b ${v}", 'echo a#b "${FWGATES_V1}"'),
        ("echo $# ${v}", 'echo $# "${FWGATES_V1}"'),
        ("echo '${v}'", "echo ''\"${FWGATES_V1}\"''"),
        ('echo "${v}"', 'echo "${FWGATES_V1}"'),
        ("echo ${v} ${w} ${v}", 'echo "${FWGATES_V1}" "${FWGATES_V2}" "${FWGATES_V1}"'),
    ],
)
def test_shell_contexts_are_tracked(template: str, expected: str) -> None:
    command, env = shell(template, {"v": "ok", "w": "two"})
    assert command == expected
    assert set(env.values()) <= {"ok", "two"}


def test_not_shell_keeps_value_as_is() -> None:
    value = "x; touch PWNED"
    assert interpolate('echo "${v}"', {"v": value}, {}) == f'echo "{value}"'


@pytest.mark.parametrize("text", ["${env:A:-${x}}", "${x", "a ${b ${c}} d"])
def test_nested_or_unclosed_reference_is_an_error(text: str) -> None:
    with pytest.raises(VariableError, match="unclosed or nested reference"):
        interpolate(text, {"x": "1", "c": "2"}, {})
    with pytest.raises(VariableError, match="unclosed or nested reference"):
        shell(text, {"x": "1", "c": "2"})
