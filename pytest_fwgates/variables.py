"""``${name}``, ``${env:NAME}`` and ``${env:NAME:-default}`` in gate files.

Substitution is one pass of plain text replacement: a value is never evaluated and never
expanded again. Where the text is a shell command, every value is quoted for the shell,
so a variable can never add commands. ``$${`` stands for a literal ``${``.
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

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        value = resolve(match.group(1).strip(), variables, environ)
        return shlex.quote(value) if shell else value

    return _REFERENCE.sub(replace, text)


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
