"""Values in shell text, differentially against the real ``/bin/sh`` (dash) and ``bash``.

A gate-file value reaches a shell only as an environment variable: a generated command shape
with hostile values must give exactly what the shell gives for a plain variable of its own in
the same place (with field splitting off, as the product runs shell text with values), a value
must arrive intact, quoted or not, and nothing a value holds may ever run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_fwgates.process import run_argv, run_shell
from pytest_fwgates.variables import SPLITTING_OFF, interpolate_shell

SHELLS = ["/bin/sh", *(["bash"] if shutil.which("bash") else [])]

# text before the reference that misled a reader of the shell grammar: here-documents
# (plain, <<-, quoted delimiters) whose bodies hold quotes, apostrophes, backquotes, comments,
# a shell ${a:-"}"}, command and arithmetic substitutions, case
NOISE = [
    'cat <<EOF >/dev/null\nsize: 12" rack\nEOF\n',
    "cat <<-EOF >/dev/null\n\tit's\n\tEOF\n",
    "cat <<'EOF' >/dev/null\n\"it's `a` $(b)\nEOF\n",
    'cat <<"EOF" >/dev/null\n\'\nEOF\n',
    "cat <<E\\OF >/dev/null\n`\nEOF\n",
    ": \"it's\" '\"';\n",
    ': `echo "\'"`;\n',
    ': $${a:-"}"};\n',
    ': "$${a:-"}"}";\n',
    "# it's a comment with \" and `\n",
    ": $((1 + (2 * 3)));\n",
    ": $(echo ')' \")\");\n",
    "case x in x) : ;; esac;\n",
    "case \"it's\" in *\\'*) : ;; esac;\n",
    ": \\';\n",
    'f() { : "\'"; }; f;\n',
]

# where the reference stands, and whether the value must then arrive exactly as it is:
# the expected output as a function of the value (None: only as the shell's own expansion)
SINKS: list[tuple[str, object]] = [
    ("printf '[%s]' \"${v}\"", lambda v: f"[{v}]"),
    ("printf '[%s]' ${v}", "one word"),
    ("printf '[%s]' \"pre${v}post\"", lambda v: f"[pre{v}post]"),
    ("printf '[%s]' 'a'\"${v}\"'b'", lambda v: f"[a{v}b]"),
    ("printf '[%s]' '${v}'", None),
    ("cat <<EOF\n[${v}]\nEOF", lambda v: f"[{v}]\n"),
    ("cat <<-EOF\n\t[${v}]\n\tEOF", None),
    ("cat <<'EOF'\n[${v}]\nEOF", None),
    ("cat <<EOF\n\"${v}' `echo` \nEOF", None),
    ('sh -c \'printf "[%s]" "${v}"\'', lambda v: f"[{v}]"),
    ("sh -c 'printf \"[%s]\" ${v}'", None),
    ("env printf '[%s]' ${v}", "one word"),
    ('cat <<EOF >/dev/null\nsize: 12" rack\nEOF\nenv ${v} >/dev/null', None),
    ('sh -c "printf \'[%s]\' \\"\\${v}\\""', None),
    ("x=${v}; printf '[%s]' \"$x\"", lambda v: f"[{v}]"),
    ("case ${v} in *) printf '[%s]' \"${v}\";; esac", lambda v: f"[{v}]"),
    ("printf '[%s]' \"$(printf '%s' \"${v}\")\"", lambda v: f"[{v.rstrip(chr(10))}]"),
    ("printf '[%s]' `printf '%s' \"${v}\"`", None),
    ('printf \'[%s]\' "$${a:-"}"}" "${v}"', None),
    ("printf '[%s]' \"$${a:-${v}}\"", lambda v: f"[{v}]"),
    ("printf '[%s]' ${v} # it's ${v} `x`", None),
    ("printf '[%s]' $((1+2)) \"${v}\"", lambda v: f"[3][{v}]"),
    ('test -n "${v}" || test -z "${v}"; printf \'[%s]\' "${v}"', lambda v: f"[{v}]"),
]

HOSTILE = [
    "touch canary *",
    "$(touch canary)",
    "`touch canary`",
    "x; touch canary",
    "'; touch canary; '",
    '"; touch canary; "',
    "a\ntouch canary\n",
    "EOF\ntouch canary\nEOF",
    "\ttouch canary #",
    "}; touch canary; {",
    '${a:-"}"}$(touch canary)',
    "\\$(touch canary)\\",
    "*",
    "",
    "it's",
    "x && touch canary || touch canary",
]

ALPHABET = [*"ab $`'\"\\;|&(){}<>*?#~!\t\n=%[]-", "$(touch canary)", "`touch canary`"]
values = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(st.sampled_from(ALPHABET), max_size=12).map("".join),
)


def _plain(shell: str, text: str, value: str, cwd: Path) -> str:
    """What the shell itself gives for a variable ``v`` of its environment (the oracle): the
    text as a shell script with field splitting off, where ``$${`` (a literal ``${`` in a gate
    file) is ``${``."""
    done = subprocess.run(
        [shell, "-c", "IFS=; " + text.replace("$${", "${")],
        cwd=cwd,
        capture_output=True,
        timeout=10,
        env={"PATH": os.environ["PATH"], "v": value},
    )
    return done.stdout.decode("utf-8", "replace")


def _product(shell: str, text: str, value: str, cwd: Path) -> str:
    """What the product runs: the reference renamed, the value in the environment."""
    env: dict[str, str] = {}
    command = interpolate_shell(text, {"v": value}, {}, env)
    assert value in env.values()
    assert command.startswith(SPLITTING_OFF)  # a constant of ours, then the renamed text
    if value.strip() and value not in text:
        assert value not in command[len(SPLITTING_OFF) :]  # a value never enters the text
    if shell == "/bin/sh":
        result = run_shell(command, env=env, cwd=cwd, timeout=10)
    else:
        result = run_argv([shell, "-c", command], env=env, cwd=cwd, timeout=10)
    assert result.exit_status is not None
    # a reference that the shell does not expand (quoted here-document, '...') shows its name
    return result.stdout.replace("FWGATES_VAR_v", "v")


def _check(shell: str, noise: str, sink: str, expect: object, value: str, cwd: Path) -> None:
    text = noise + sink
    ours = _product(shell, text, value, cwd)
    assert not (cwd / "canary").exists(), (shell, text, value)
    theirs = _plain(shell, text, value, cwd)
    assert not (cwd / "canary").exists(), (shell, text, value)
    assert ours == theirs, (shell, text, value)
    if callable(expect):
        assert ours == expect(value), (shell, text, value)
    elif expect == "one word" and not any(c in value for c in "*?["):
        # unquoted, and still one word, exactly the value (a pattern may match file names)
        assert ours == (f"[{value}]" if value else "[]"), (shell, text, value)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("sink", [s for s, _ in SINKS])
def test_hostile_values_in_every_sink(shell: str, sink: str, tmp_path: Path) -> None:
    """Every listed hostile value in every sink, after text that misled a grammar reader."""
    expect = dict(SINKS)[sink]
    (tmp_path / "a file").write_text("")  # something for an unquoted * to match
    for i, value in enumerate(HOSTILE):
        _check(shell, NOISE[i % len(NOISE)], sink, expect, value, tmp_path)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shell=st.sampled_from(SHELLS),
    noise=st.lists(st.sampled_from(NOISE), max_size=3).map("".join),
    sink=st.sampled_from(SINKS),
    value=values,
)
def test_generated_command_shapes(
    shell: str,
    noise: str,
    sink: tuple[str, object],
    value: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Generated shapes: the product gives what the shell gives, a quoted value is intact,
    and nothing a value holds runs."""
    cwd = tmp_path_factory.mktemp("sh")
    _check(shell, noise, sink[0], sink[1], value, cwd)
