"""Keep secrets out of every output: tokens, passwords and Authorization headers."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Redactor", "secret_name"]

MASK = "***"
_SECRET_NAME = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|credential|auth)", re.I)
_PATTERNS = [
    # Authorization: Bearer abc / Basic abc
    re.compile(r"(?i)(authorization\s*[:=]\s*)(?:(bearer|basic|token)\s+)?[^\s'\",;]+"),
    # password=..., token: ..., api_key=...
    re.compile(
        r"(?i)\b([\w-]*(?:password|passwd|secret|token|api[_-]?key)[\w-]*\s*[:=]\s*)[^\s'\",;&]+"
    ),
    # user:password@host in URLs
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(@)"),
]
_MIN_SECRET_LEN = 4
#: text every match of _PATTERNS contains (casefolded), and the words the value may follow.
#: The patterns cross a line end only inside their whitespace runs, around ':' or '=' or
#: after bearer/basic/token: text_bulk() relies on it; keep it so when adding a pattern.
_TRIGGERS = ("authorization", "password", "passwd", "secret", "token", "api_key", "api-key",
             "apikey", "://")  # fmt: skip
_VALUE_AFTER = ("bearer", "basic", "token")
_BULK_MIN = 64 * 1024
_NON_SPACE = re.compile(r"\S")


def secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret."""
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Masks known secret values and secret-looking patterns in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        return cls(value for name, value in env.items() if secret_name(name))

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets.update(s for s in secrets if s and len(s) >= _MIN_SECRET_LEN)

    @property
    def longest(self) -> int:
        """The length of the longest known secret (0 if none)."""
        return max((len(s) for s in self._secrets), default=0)

    def text(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(_mask_match, text)
        return text

    def text_bulk(self, text: str, *, min_len: int = _BULK_MIN) -> str:
        """The same as :meth:`text`, faster on long texts (reports of thousands of checks):
        the patterns run only on the lines around the places where they could match.
        Texts shorter than ``min_len`` take the plain way."""
        if len(text) < min_len:
            return self.text(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        folded = text.casefold().replace("\u0131", "i")  # IGNORECASE folds dotless i too
        if len(folded) != len(text):  # positions would not line up: the plain way
            return self.text(text)
        spans: list[tuple[int, int]] = []
        for word in _TRIGGERS:
            at = folded.find(word)
            while at >= 0:
                spans.append((_split_before(text, at), _split_after(text, at + len(word))))
                at = folded.find(word, at + 1)
        if not spans:
            return text
        spans.sort()
        merged = [spans[0]]
        for start, end in spans[1:]:
            if start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        parts: list[str] = []
        done = 0
        for start, end in merged:
            chunk = text[start:end]
            for pattern in _PATTERNS:
                chunk = pattern.sub(_mask_match, chunk)
            parts += [text[done:start], chunk]
            done = end
        parts.append(text[done:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def _safe_split(text: str, newline: int) -> bool:
    """Whether no match of _PATTERNS can span the line end at ``newline``."""
    found = _NON_SPACE.search(text, newline)
    if found is not None and found[0] in ":=":
        return False
    end = newline
    while end > 0 and text[end - 1].isspace():
        end -= 1
    if end and text[end - 1] in ":=":
        return False
    return not text[max(0, end - 8) : end].casefold().endswith(_VALUE_AFTER)


def _split_before(text: str, at: int) -> int:
    """Start of the chunk around ``at``: just after a line end no match can span."""
    newline = text.rfind("\n", 0, at)
    while newline >= 0 and not _safe_split(text, newline):
        newline = text.rfind("\n", 0, newline)
    return newline + 1


def _split_after(text: str, at: int) -> int:
    """End of the chunk around ``at``: a line end no match can span (or the end)."""
    newline = text.find("\n", at)
    while newline >= 0 and not _safe_split(text, newline):
        newline = text.find("\n", newline + 1)
    return len(text) if newline < 0 else newline


def _mask_match(match: re.Match[str]) -> str:
    groups = match.groups()
    prefix = groups[0] or ""
    if len(groups) >= 2 and groups[-1] == "@":
        return f"{prefix}{MASK}@"
    scheme = groups[1] if len(groups) >= 2 and groups[1] else ""
    return f"{prefix}{scheme + ' ' if scheme else ''}{MASK}"
