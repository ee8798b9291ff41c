"""``${name}``, ``${env:NAME}`` and ``${env:NAME:-default}`` in gate files.

Substitution is one pass of plain text replacement: a value is never evaluated and never
expanded again. ``$${`` stands for a literal ``${``.

In a shell command a value is never put into the text at all. Each reference becomes a
reference to an environment variable (``"${FWGATES_V1}"``) and the value travels in the
command's environment, so the shell never parses it, whatever the context: a comment, a
here-document, quotes of any kind. The text around the reference is read with the shell's
quoting rules only to choose the form of the reference: one quoted word outside quotes,
``${FWGATES_V1}`` inside ``"..."``, and the single quotes closed around it inside ``'...'``.
Where a reference cannot stand as one (inside ``$((...))``, a shell ``${...}``, ``$'...'`` or
after a backslash) it is an error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

__all__ = ["ENV_PREFIX", "VariableError", "interpolate", "interpolate_shell", "parse_assignment"]

#: names of the environment variables that carry values into shell commands
ENV_PREFIX = "FWGATES_V"

_REFERENCE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ENV = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)


class VariableError(ValueError):
    """A reference that cannot be resolved, or a malformed ``NAME=VALUE``."""


def interpolate(
    text: str,
    variables: Mapping[str, str],
    environ: Mapping[str, str],
) -> str:
    """Replace every reference in ``text`` by its value."""
    _check_references(text)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        return resolve(match.group(1).strip(), variables, environ)

    return _REFERENCE.sub(replace, text)


def _check_references(text: str) -> None:
    """Refuse a ``${`` that does not start a whole reference (nested or unclosed)."""
    start = text.find("${")
    while start != -1:
        if start > 0 and text[start - 1] == "$":
            start = text.find("${", start + 2)  # $${ is a literal
            continue
        if _REFERENCE.match(text, start) is None:
            shown = text[start : start + 40]
            raise VariableError(
                f"unclosed or nested reference {shown!r}: write ${{name}} or "
                "${env:NAME:-default} (a default is plain text), or $${ for a literal"
            )
        start = text.find("${", start + 2)


# quoting contexts of a shell command
_CODE, _SUBST, _COMMENT, _SQ, _DQ, _BACKQUOTE, _ARITH, _PARAM, _ANSI = range(9)
_CODE_LIKE = (_CODE, _SUBST)
_WORD_START = frozenset(" \t\n;&|()<>")
_REFUSED = {
    _ARITH: "inside $((...))",
    _PARAM: "inside a shell ${...} expansion",
    _ANSI: "inside $'...'",
}


def interpolate_shell(
    text: str,
    variables: Mapping[str, str],
    environ: Mapping[str, str],
    env: dict[str, str],
) -> str:
    """``text`` with each reference replaced by a reference to an environment variable.

    The values are added to ``env`` (``FWGATES_V1``, ``FWGATES_V2``, ...; one name per distinct
    reference, numbered on from what ``env`` already holds), to be given to the command's
    environment. No value is ever part of the returned text.
    """
    _check_references(text)
    out: list[str] = []
    # (context, open parentheses) from the outermost to the innermost
    stack: list[list[int]] = [[_CODE, 0]]
    i = 0
    while i < len(text):
        ctx = stack[-1][0]
        ref = _REFERENCE.match(text, i)
        if ref is not None:
            if ref.group(0) == "$${":
                out.append("${")
                if ctx in (*_CODE_LIKE, _DQ, _PARAM, _ARITH):
                    stack.append([_PARAM, 0])
            else:
                reference = ref.group(1).strip()
                value = resolve(reference, variables, environ)
                if "\0" in value:
                    raise VariableError(f"{ref.group(0)} holds a NUL character")
                out.append(_reference_in(ctx, _env_name(env, value), ref.group(0)))
            i = ref.end()
            continue
        char = text[i]
        if ctx == _SQ:
            if char == "'":
                stack.pop()
            out.append(char)
            i += 1
            continue
        if ctx == _COMMENT:
            if char == "\n":
                stack.pop()
            out.append(char)
            i += 1
            continue
        if char == "\\":
            escaped = _REFERENCE.match(text, i + 1)
            if escaped is not None:
                if escaped.group(0) != "$${":
                    raise VariableError(
                        f"{escaped.group(0)} follows a backslash in a shell command; "
                        "remove the backslash"
                    )
                out.append("\\${")
                i = escaped.end()
                continue
            out.append(text[i : i + 2])
            i += 2
            continue
        if ctx in (_BACKQUOTE, _ANSI):
            if char == ("`" if ctx == _BACKQUOTE else "'"):
                stack.pop()
            out.append(char)
            i += 1
            continue
        step = 1
        if char == "`":
            stack.append([_BACKQUOTE, 0])
        elif text.startswith("$((", i):
            stack.append([_ARITH, 2])
            step = 3
        elif text.startswith("$(", i):
            stack.append([_SUBST, 1])
            step = 2
        elif text.startswith("${", i):
            stack.append([_PARAM, 0])
            step = 2
        elif ctx == _DQ:
            if char == '"':
                stack.pop()
        elif ctx == _PARAM:
            if char == "}":
                stack.pop()
        elif char == "(":
            stack[-1][1] += 1
        elif char == ")":
            stack[-1][1] -= 1
            if stack[-1][1] == 0 and ctx in (_SUBST, _ARITH):
                stack.pop()
        elif ctx == _ARITH:
            pass
        elif char == '"':
            stack.append([_DQ, 0])
        elif char == "'":
            stack.append([_SQ, 0])
        elif text.startswith("$'", i):
            stack.append([_ANSI, 0])
            step = 2
        elif char == "#" and (i == 0 or text[i - 1] in _WORD_START):
            stack.append([_COMMENT, 0])
        elif text.startswith("<<<", i):
            step = 3
        elif text.startswith("<<", i):
            step = 2
        out.append(text[i : i + step])
        i += step
    return "".join(out)


def _env_name(env: dict[str, str], value: str) -> str:
    """The variable of ``env`` that carries ``value`` (a new one if none does yet)."""
    for name, existing in env.items():
        if existing == value and name.startswith(ENV_PREFIX):
            return name
    name = f"{ENV_PREFIX}{len(env) + 1}"
    while name in env:
        name += "_"
    env[name] = value
    return name


def _reference_in(context: int, name: str, reference: str) -> str:
    """Shell text that expands to the variable ``name`` as one word where ``context`` is open."""
    where = _REFUSED.get(context)
    if where:
        raise VariableError(
            f"{reference} stands {where} in a shell command, where it cannot stand as one "
            "word; move it outside"
        )
    if context == _SQ:
        return f"'\"${{{name}}}\"'"
    if context in (_DQ, _COMMENT):
        return f"${{{name}}}"
    return f'"${{{name}}}"'


def resolve(reference: str, variables: Mapping[str, str], environ: Mapping[str, str]) -> str:
    env = _ENV.match(reference)
    if env is not None:
        name, default = env.group(1), env.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise VariableError(
                    f"environment variable {name} is not set "
                    f"(give a default: ${{env:{name}:-value}})"
                )
            return default
        return value
    if reference.startswith("env:"):
        raise VariableError(f"bad reference '${{{reference}}}': expected ${{env:NAME:-default}}")
    if not _NAME.match(reference):
        raise VariableError(f"bad variable reference '${{{reference}}}'")
    if reference not in variables:
        hint = difflib.get_close_matches(reference, list(variables), n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else ""
        known = ", ".join(sorted(variables)) or "none"
        raise VariableError(f"undefined variable '{reference}'{extra}; defined: {known}")
    return variables[reference]


def parse_assignment(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` as given to ``--gate-var`` or the ``gate_vars`` ini option."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise VariableError(f"expected NAME=VALUE, got {text!r}")
    return name, value
