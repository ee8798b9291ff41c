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

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def _mask_match(match: re.Match[str]) -> str:
    groups = match.groups()
    prefix = groups[0] or ""
    if len(groups) >= 2 and groups[-1] == "@":
        return f"{prefix}{MASK}@"
    scheme = groups[1] if len(groups) >= 2 and groups[1] else ""
    return f"{prefix}{scheme + ' ' if scheme else ''}{MASK}"
