"""``${name}``, ``${env:NAME}`` and ``${env:NAME:-default}`` in gate files.

Substitution is one pass of plain text replacement: a value is never evaluated and never
expanded again. ``$${`` stands for a literal ``${``.

In shell text a value is never put into the text at all. Each reference is renamed, as
plain text, to the environment variable that carries its value (``${url}`` becomes
``${FWGATES_VAR_url}``), and the value travels in the command's environment; the shell
expands it by its own rules, as any variable of its environment. The shell grammar is never
read, so no misreading of it can turn a value into code: the shell never parses a value as
text. Shell text that refers to a value runs with field splitting off (``IFS=`` before its
first word), so an unquoted reference is one word too, as if it were quoted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

__all__ = [
    "ENV_VAR_PREFIX",
    "SPLITTING_OFF",
    "VAR_PREFIX",
    "VariableError",
    "env_name",
    "interpolate",
    "interpolate_shell",
    "parse_assignment",
]

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


#: prefixes of the environment variables that carry values into shell text
VAR_PREFIX = "FWGATES_VAR_"
ENV_VAR_PREFIX = "FWGATES_ENV_"


def env_name(reference: str) -> str:
    """The environment variable that carries the value of ``reference`` (``name`` or
    ``env:NAME[:-default]``) into shell text: ``FWGATES_VAR_name``, ``FWGATES_ENV_NAME``
    (``.`` and ``-`` in a name become ``_``)."""
    env = _ENV.match(reference)
    if env is not None:
        return ENV_VAR_PREFIX + env.group(1)
    return VAR_PREFIX + re.sub(r"[.-]", "_", reference)


def interpolate_shell(
    text: str,
    variables: Mapping[str, str],
    environ: Mapping[str, str],
    env: dict[str, str],
) -> str:
    """``text`` with each reference renamed to the environment variable that carries its value.

    A pure renaming of the text: ``${name}`` becomes ``${FWGATES_VAR_name}`` and
    ``${env:NAME}`` becomes ``${FWGATES_ENV_NAME}`` wherever they stand, and ``$${`` becomes
    ``${``. No value is ever part of the returned text, and the shell grammar is not read:
    the shell expands each variable itself, by its own rules, from the command's environment.
    The values are added to ``env``. When the text refers to a value it starts with
    :data:`SPLITTING_OFF`, so that an unquoted reference is not split into words either.
    """
    _check_references(text)
    # the original reference of each environment name, to tell two that share one apart
    owners: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        reference = match.group(1).strip()
        value = resolve(reference, variables, environ)
        if "\0" in value:
            raise VariableError(f"{match.group(0)} holds a NUL character")
        name = env_name(reference)
        if env.get(name, value) != value:
            if reference.startswith("env:"):
                raise VariableError(
                    f"{match.group(0)} and another reference to the same environment variable "
                    "give different values (different defaults); give them one default"
                )
            raise VariableError(
                f"variables '{reference}' and '{owners.get(name, '?')}' share the "
                f"environment name {name}; rename one"
            )
        env[name] = value
        owners.setdefault(name, reference)
        return "${" + name + "}"

    renamed = _REFERENCE.sub(replace, text)
    # field splitting off: an unquoted reference stays one word, as if quoted (a constant of
    # ours before the command's first word; line numbers and the command's own text unchanged)
    return SPLITTING_OFF + renamed if owners else renamed


#: what shell text that refers to a value starts with: the shell's field splitting turned off
SPLITTING_OFF = "IFS=; "


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
