"""Check ids: one line of printable text, and the short form of a generated id.

A check without ``id:`` is named ``type[target]`` after its target with its variables
resolved and secrets masked (``http[https://shop.example/health]``, not ``http[${url}/health]``),
lists written ``a, b``, its whitespace collapsed, cut to :data:`TARGET_LEN` characters (``…~``
and a short hash of the whole text mark the cut, so that targets that differ only after it
keep distinct ids) and non-printable characters written as escapes. A waiver may name a check by
that id or by the full ``type[target]``: :func:`waiver_key` gives both the same form.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "TARGET_LEN",
    "default_id",
    "evidence_folder",
    "id_problem",
    "readable",
    "short_target",
    "waiver_key",
]

TARGET_LEN = 60
_CUT_HASH = 6
_TYPED = re.compile(r"^([a-z][a-z0-9_-]*)\[(.*)\]$", re.S)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def readable(value: Any) -> str:
    """A target or value as people write it: lists ``a, b``, mappings ``key: value; ...``
    (never Python's ``['a']`` or ``{'targets': ...}``)."""
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {readable(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(readable(item) for item in value)
    return str(value)


def short_target(target: Any, mask: Callable[[str], str] | None = None) -> str:
    """The target as an id shows it: one line, printable, at most :data:`TARGET_LEN` long;
    ``mask`` (secrets) is applied before the text is cut. Of a mapping target its first
    value with its key is shown (``{targets: [app, node]}``: ``targets: app, node``), so that
    ``{targets: [app]}`` and ``{rules: [app]}`` are two ids."""
    if isinstance(target, Mapping):
        scalars = [
            f"{key}: {readable(v)}"
            for key, v in target.items()
            if isinstance(v, str | int | float | list)
        ]
        target = scalars[0] if scalars else ""
    text = " ".join(readable(target).split())
    if mask is not None:
        text = mask(text)
    text = _printable(text)
    if len(text) <= TARGET_LEN:
        return text
    # a short hash of the whole text after the cut: two targets that differ only after it
    # (long URLs of one host, resolved from variables) keep two ids
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_CUT_HASH]
    return f"{text[: TARGET_LEN - _CUT_HASH - 2]}…~{digest}"


def default_id(type_name: str, target: Any, mask: Callable[[str], str] | None = None) -> str:
    """``type[target]`` for a check without ``id:``."""
    return f"{type_name}[{short_target(target, mask)}]"


def id_problem(text: str) -> str | None:
    """Why ``text`` cannot be a check id (it must be one line of printable text), or None."""
    if not text.strip():
        return "id: must not be empty"
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        return f"id: must be one line of printable text (found U+{ord(bad):04X})"
    return None


def waiver_key(check: str) -> str:
    """The id a waiver's ``check:`` stands for: ``type[full target]`` is cut like an id."""
    match = _TYPED.match(check)
    if match is None or (len(match.group(2)) <= TARGET_LEN and match.group(2).isprintable()):
        return check
    return default_id(match.group(1), match.group(2))


_FOLDER_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def evidence_folder(gate: str, criterion: str, check_id: str, host: str = "") -> str:
    """The name of a check's evidence folder (in ``reports/evidence`` and in a handoff
    package): readable (gate, criterion, id and host as a slug) and injective: a short hash of
    the full identity tells apart ids that differ only in characters the slug drops
    (``p95 < 300ms``, ``p95 <= 300ms``)."""
    identity = "\0".join((gate, criterion, check_id, host))
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    text = f"{gate}.{criterion}.{check_id}" + (f".{host}" if host else "")
    slug = _FOLDER_CHARS.sub("_", text).strip("._")
    return f"{slug[:100] or 'check'}-{digest}"
