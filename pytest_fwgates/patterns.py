"""Regular expressions from gate files, bounded in time.

A gate file is untrusted, and a pattern such as ``(a|aa)+$`` takes exponential time on some
texts with Python's ``re``, whose search cannot be interrupted: one such pattern could hold a
run past every bound. Patterns from gate files go through the ``regex`` module instead, with
its ``re``-compatible syntax (``VERSION0``), whose searches take a timeout.
"""

from __future__ import annotations

import regex

__all__ = ["SEARCH_TIMEOUT", "PatternError", "PatternTimeout", "compile_pattern", "search"]

#: seconds one search of a check's text may take
SEARCH_TIMEOUT = 1.0


class PatternError(ValueError):
    """A pattern that does not compile."""


class PatternTimeout(Exception):
    """A search that took longer than its bound."""


def compile_pattern(text: str) -> regex.Pattern[str]:
    """``text`` compiled with ``re``'s syntax; :class:`PatternError` when it is not valid."""
    try:
        return regex.compile(text, regex.VERSION0)
    except (regex.error, TypeError, ValueError, OverflowError) as exc:
        raise PatternError(str(exc)) from None


def search(
    pattern: regex.Pattern[str], text: str, *, timeout: float = SEARCH_TIMEOUT
) -> regex.Match[str] | None:
    """The first match of ``pattern`` in ``text``; :class:`PatternTimeout` after ``timeout``
    seconds."""
    try:
        return pattern.search(text, timeout=timeout)
    except TimeoutError:
        raise PatternTimeout(
            f"the search took longer than {timeout:g} s (a pattern with nested repetition, "
            "such as (a|aa)+, can take exponential time)"
        ) from None
