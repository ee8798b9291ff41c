"""``${var}``, ``${env:NAME:-default}`` and their renaming in shell text."""

from __future__ import annotations

import pytest

from pytest_fwgates.variables import (
    SPLITTING_OFF,
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


# -- shell text: values reach the shell only through its environment ----------------------


def shell(template: str, variables: dict[str, str]) -> tuple[str, dict[str, str]]:
    env: dict[str, str] = {}
    return interpolate_shell(template, variables, {}, env), env


@pytest.mark.parametrize(
    ("template", "expected", "env"),
    [
        ("echo ${v}", "echo ${FWGATES_VAR_v}", {"FWGATES_VAR_v": "ok"}),
        ('echo "${v}"', 'echo "${FWGATES_VAR_v}"', {"FWGATES_VAR_v": "ok"}),
        ("echo '${v}'", "echo '${FWGATES_VAR_v}'", {"FWGATES_VAR_v": "ok"}),
        ("echo \\${v}", "echo \\${FWGATES_VAR_v}", {"FWGATES_VAR_v": "ok"}),
        ("echo $((${v} + 1))", "echo $((${FWGATES_VAR_v} + 1))", {"FWGATES_VAR_v": "ok"}),
        (
            "echo $${HOME} $${x:-${v}}",
            "echo ${HOME} ${x:-${FWGATES_VAR_v}}",
            {"FWGATES_VAR_v": "ok"},
        ),
        (
            "${a.b-c} ${ v }",
            "${FWGATES_VAR_a_b_c} ${FWGATES_VAR_v}",
            {"FWGATES_VAR_a_b_c": "d", "FWGATES_VAR_v": "ok"},
        ),
        (
            "echo ${env:HOME} ${env:NOPE:-x}",
            "echo ${FWGATES_ENV_HOME} ${FWGATES_ENV_NOPE}",
            {"FWGATES_ENV_HOME": "/h", "FWGATES_ENV_NOPE": "x"},
        ),
        ("echo ${v} ${v}", "echo ${FWGATES_VAR_v} ${FWGATES_VAR_v}", {"FWGATES_VAR_v": "ok"}),
    ],
)
def test_shell_reference_is_renamed_not_replaced(
    template: str, expected: str, env: dict[str, str]
) -> None:
    got: dict[str, str] = {}
    renamed = interpolate_shell(template, {"v": "ok", "a.b-c": "d"}, {"HOME": "/h"}, got)
    assert renamed == SPLITTING_OFF + expected  # field splitting off, then the text renamed
    assert got == env


def test_shell_text_without_values_is_left_as_it_is() -> None:
    got: dict[str, str] = {}
    assert interpolate_shell("echo $${HOME} $x", {}, {}, got) == "echo ${HOME} $x"
    assert got == {}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${a.b} ${a_b}", "share the environment name FWGATES_VAR_a_b"),
        ("${env:NOPE:-x} ${env:NOPE:-y}", "give them one default"),
        ("${z}", "undefined variable 'z'"),
    ],
)
def test_shell_reference_errors(template: str, message: str) -> None:
    with pytest.raises(VariableError, match=message):
        shell(template, {"a.b": "1", "a_b": "2"})


def test_nul_in_a_value_is_an_error() -> None:
    with pytest.raises(VariableError, match="NUL"):
        shell("echo ${v}", {"v": "a\0b"})


def test_not_shell_keeps_value_as_is() -> None:
    value = "x; touch PWNED"
    assert interpolate('echo "${v}"', {"v": value}, {}) == f'echo "{value}"'


@pytest.mark.parametrize("text", ["${env:A:-${x}}", "${x", "a ${b ${c}} d"])
def test_nested_or_unclosed_reference_is_an_error(text: str) -> None:
    with pytest.raises(VariableError, match="unclosed or nested reference"):
        interpolate(text, {"x": "1", "c": "2"}, {})
    with pytest.raises(VariableError, match="unclosed or nested reference"):
        shell(text, {"x": "1", "c": "2"})
