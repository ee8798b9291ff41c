"""Keep secrets out of every output: tokens, passwords and Authorization headers."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Redactor", "secret_name", "strip_credentials", "url_credentials"]

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
    # (user info ends at the last '@' before the path, as URL parsers read it: a password
    # may hold '@')
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/?#\s:]+:)[^/?#\s]+(@)"),
    # a bearer token wherever it stands (a header echoed back, a repr in a debug log)
    re.compile(r"(?i)(\bbearer[ \t]+)[A-Za-z0-9._~+/=-]{8,}"),
]
#: Basic credentials: base64 of "user:password" (masked only when it decodes to one)
_BASIC = re.compile(r"(?i)(\bbasic[ \t]+)([A-Za-z0-9+/]{6,}={0,2})")
_MIN_SECRET_LEN = 4
#: text every match of _PATTERNS contains (casefolded), and the words the value may follow.
#: The patterns cross a line end only inside their whitespace runs, around ':' or '=' or
#: after bearer/basic/token: text_bulk() relies on it; keep it so when adding a pattern.
_TRIGGERS = ("authorization", "password", "passwd", "secret", "token", "api_key", "api-key",
             "apikey", "://", "bearer", "basic")  # fmt: skip
_VALUE_AFTER = ("bearer", "basic", "token")
_BULK_MIN = 64 * 1024
_NON_SPACE = re.compile(r"\S")

# user info in a URL: scheme://user:password@host or scheme://token@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s]*)@")
#: the same up to the path, blanks included (a password with a blank is sent as %20)
_USERINFO_WIDE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#]*)@")
#: schemes where a lone user name is a name, not a token (testinfra hosts)
_USER_SCHEMES = ("ssh", "paramiko", "ansible", "docker", "podman", "kubectl", "local", "winrm")


def _shell_inner(text: str) -> str:
    """How a value looks inside single quotes once ``shlex.quote`` has escaped its quotes."""
    return text.replace("'", "'\"'\"'")


def _json_inner(text: str) -> str:
    return json.dumps(text)[1:-1]


def _repr_inner(text: str) -> str:
    return repr(text)[1:-1]


def _bytes_repr_inner(text: str) -> str:
    return repr(text.encode("utf-8", "backslashreplace"))[2:-1]


def _url(text: str) -> str:
    return urllib.parse.quote(text, safe="")


_QUOTINGS: tuple[Callable[[str], str], ...] = (shlex.quote, _shell_inner, lambda t: t)
_ESCAPINGS: tuple[Callable[[str], str], ...] = (
    lambda t: t,
    _json_inner,
    _repr_inner,
    _bytes_repr_inner,
    _url,
    urllib.parse.quote_plus,
)


def secret_forms(secret: str) -> set[str]:
    """The ways a secret value shows up in output: as is, shell-quoted (whole or the part
    between quotes), JSON-escaped, as a Python (bytes) repr, URL-encoded, and in base64."""
    forms = {escape(quote(secret)) for quote in _QUOTINGS for escape in _ESCAPINGS}
    forms.update((secret.upper(), secret.lower()))  # a test's message may change its case
    forms.add(_json_inner(_json_inner(secret)))  # JSON inside a JSON string
    raw = secret.encode("utf-8", "surrogatepass")
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode("ascii")
        forms.update((encoded, encoded.rstrip("=")))
    return {form for form in forms if len(form) >= _MIN_SECRET_LEN}


def strip_credentials(text: str) -> str:
    """URLs without their credentials: ``https://u:pw@h/`` -> ``https://h/``.

    A lone user name of a host URL (``ssh://deploy@web1``) stays: it names, not proves.
    """

    def replace(match: re.Match[str]) -> str:
        scheme, info = match.group(1), match.group(2)
        if ":" not in info and scheme[:-3].lower() in _USER_SCHEMES:
            return match.group(0)
        return scheme

    return _USERINFO.sub(replace, text)


def url_credentials(text: str) -> set[str]:
    """The secrets a URL's user info holds, in every form a service may give them back: the
    password as written and percent-decoded, and ``user:password`` both ways (whose base64 is
    what ``Authorization: Basic`` carries)."""
    found: set[str] = set()
    infos = [m.group(2) for pattern in (_USERINFO, _USERINFO_WIDE) for m in pattern.finditer(text)]
    for info in infos:
        user, sep, password = info.partition(":")
        if not sep or not password:
            continue
        plain_user, plain_password = urllib.parse.unquote(user), urllib.parse.unquote(password)
        found.update(
            (password, plain_password, f"{user}:{password}", f"{plain_user}:{plain_password}")
        )
    return found


def secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret."""
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Masks known secret values and secret-looking patterns in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._forms: list[str] = []
        self.add(secrets)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        redactor = cls(value for name, value in env.items() if secret_name(name))
        redactor.add_credentials(env.values())
        return redactor

    def add_credentials(self, texts: Iterable[Any]) -> None:
        """Register the credentials of every URL in ``texts`` (strings; others are skipped)."""
        found: set[str] = set()
        for text in texts:
            if isinstance(text, str) and "@" in text:
                found |= url_credentials(text)
        self.add(found)

    def add(self, secrets: Iterable[str]) -> None:
        given = set(secrets)
        # a secret also shows percent-decoded (a service echoing a query or a form back)
        given |= {urllib.parse.unquote(s) for s in given if s and "%" in s}
        given |= {urllib.parse.unquote_plus(s) for s in given if s and "+" in s}
        new = {s for s in given if s and len(s) >= _MIN_SECRET_LEN} - self._secrets
        if not new:
            return
        self._secrets.update(new)
        forms = {form for secret in self._secrets for form in secret_forms(secret)}
        # longest first, so that a form containing another is masked whole
        self._forms = sorted(forms, key=len, reverse=True)

    @property
    def longest(self) -> int:
        """The length of the longest form of a known secret (0 if none): a cut closer than
        this to the edge of a text may have left part of one."""
        return max((len(form) for form in self._forms), default=0)

    def text(self, text: str) -> str:
        """``text`` with every form of every known secret, and secret-looking values, masked.

        Mask before cutting: a cut can leave part of a secret that no longer matches.
        """
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(_mask_match, text)
        return _BASIC.sub(_mask_basic, text)

    def target(self, text: str) -> str:
        """A check's target for reports: credentials removed from URLs, secrets masked."""
        # masked first: stripping reads user info up to a blank, a known password may hold one
        return strip_credentials(self.text(str(text)))

    def text_bulk(self, text: str, *, min_len: int = _BULK_MIN) -> str:
        """The same as :meth:`text`, faster on long texts (reports of thousands of checks):
        the patterns run only on the lines around the places where they could match.
        Texts shorter than ``min_len`` take the plain way."""
        if len(text) < min_len:
            return self.text(text)
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        # ASCII text: lower() is casefold(), and fast; IGNORECASE also folds the dotless i
        folded = text.lower() if text.isascii() else text.casefold().replace("\u0131", "i")
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
            parts += [text[done:start], _BASIC.sub(_mask_basic, chunk)]
            done = end
        parts.append(text[done:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """``value`` with every string in it masked: keys of mappings too (a token can be a
        label of a Prometheus series, a header name, a JSON key)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def _safe_split(text: str, newline: int) -> bool:
    """Whether no match of _PATTERNS can span the line end at ``newline``."""
    # a match crosses a line end only inside a whitespace run: before ':'/'=', after
    # ':'/'=', or after bearer/basic/token
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
    """Start of the chunk around ``at``: just after a line end no match can span, or after
    ", " (no match holds a whitespace run that follows a comma: one-line JSON is cut there)."""
    newline = text.rfind("\n", 0, at)
    while newline >= 0 and not _safe_split(text, newline):
        newline = text.rfind("\n", 0, newline)
    comma = text.rfind(", ", 0, at)
    return max(newline + 1, comma + 2 if comma >= 0 else 0)


def _split_after(text: str, at: int) -> int:
    """End of the chunk around ``at``: a line end no match can span, after ", ", or the end."""
    newline = text.find("\n", at)
    while newline >= 0 and not _safe_split(text, newline):
        newline = text.find("\n", newline + 1)
    comma = text.find(", ", max(0, at - 2))
    ends = [n for n in (newline, comma + 2 if comma >= 0 else -1) if n >= 0]
    return min(ends) if ends else len(text)


def _mask_basic(match: re.Match[str]) -> str:
    """``Basic <base64>`` masked when the base64 decodes to ``user:password``."""
    try:
        decoded = base64.b64decode(match.group(2) + "=" * (-len(match.group(2)) % 4), validate=True)
    except ValueError:
        return match.group(0)
    if b":" not in decoded:
        return match.group(0)
    return f"{match.group(1)}{MASK}"


def _mask_match(match: re.Match[str]) -> str:
    groups = match.groups()
    prefix = groups[0] or ""
    if len(groups) >= 2 and groups[-1] == "@":
        return f"{prefix}{MASK}@"
    scheme = groups[1] if len(groups) >= 2 and groups[1] else ""
    return f"{prefix}{scheme + ' ' if scheme else ''}{MASK}"
