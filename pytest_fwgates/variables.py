"""``${name}``, ``${env:NAME}`` and ``${env:NAME:-default}`` in gate files.

Substitution is one pass of plain text replacement: a value is never evaluated and never
expanded again. Where the text is a shell command, every value is quoted for the shell,
so a variable can never add commands. ``$${`` stands for a literal ``${``.

Quoting depends on where the reference stands in the command, so the command is read with
the shell's quoting rules: outside quotes the value becomes one quoted word; inside
``'...'`` or ``"..."`` the quotes are closed around the quoted value and reopened. Where a
value cannot be quoted safely (inside backquotes, ``$((...))``, ``$${...}``, ``$'...'``, after
a backslash, or after a here-document begins) the reference is an error.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping

__all__ = ["VariableError", "interpolate", "parse_assignment"]

_REFERENCE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ENV = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)


class VariableError(ValueError):
    """A reference that cannot be resolved, or a malformed ``NAME=VALUE``."""


def interpolate(
    text: str,
    variables: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    shell: bool = False,
) -> str:
    """Replace every reference in ``text``; quote each value for the shell if ``shell``."""
    _check_references(text)
    if shell:
        return _interpolate_shell(text, variables, environ)

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
    _BACKQUOTE: "inside backquotes (use $(...) instead)",
    _ARITH: "inside $((...))",
    _PARAM: "inside a shell ${...} expansion",
    _ANSI: "inside $'...'",
}


def _interpolate_shell(text: str, variables: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """Substitute into a shell command, quoting each value for the context it stands in."""
    out: list[str] = []
    # (context, open parentheses) from the outermost to the innermost
    stack: list[list[int]] = [[_CODE, 0]]
    heredoc = False  # a here-document operator was seen: its body starts at the next newline
    unsure = ""  # why the quoting context is not known from here on
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
                value = resolve(ref.group(1).strip(), variables, environ)
                out.append(_quote_in(ctx, value, ref.group(0), unsure))
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
        elif ctx in (_PARAM, _ARITH) and char in "'\"":
            # shells differ on quotes in these: stop trusting the context
            unsure = "after quotes inside a shell ${...} or $((...))"
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
            heredoc = True
            step = 2
        elif char == "\n" and heredoc:
            unsure = "after the start of a here-document"
        elif ctx == _SUBST and _is_word(text, i, "case"):
            unsure = "after 'case' inside $(...)"
        out.append(text[i : i + step])
        i += step
    return "".join(out)


def _is_word(text: str, i: int, word: str) -> bool:
    end = i + len(word)
    return (
        text.startswith(word, i)
        and (i == 0 or text[i - 1] in _WORD_START)
        and (end == len(text) or text[end] in _WORD_START)
    )


def _quote_in(context: int, value: str, reference: str, unsure: str) -> str:
    """``value`` as shell text that means exactly ``value`` where ``context`` is open."""
    where = unsure or _REFUSED.get(context)
    if where:
        raise VariableError(
            f"{reference} stands {where} in a shell command, where its value cannot be quoted "
            "safely; move it outside"
        )
    quoted = shlex.quote(value)
    if context == _SQ:
        return f"'{quoted}'"
    if context == _DQ:
        return f'"{quoted}"'
    return quoted


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
