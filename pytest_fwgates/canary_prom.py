"""``analysis.prometheus``: PromQL judged at every look of a deploy in steps, per version.

    analysis:
      prometheus:                       # one query, or a list of them
        - 'sum(rate(http_requests_total{version="{{new}}",status=~"5.."}[{{window}}]))
           or vector(0)'
        - query: 'histogram_quantile(0.95, sum by (le) (rate(
                    http_request_duration_seconds_bucket{version="{{new}}"}[{{window}}])))'
          expect: "< 0.5"               # default "== 0": no bad events
          server: http://127.0.0.1:9090 # default: the ini option gate_prometheus_url
          timeout: 2s                   # each evaluation, as a whole (default 2 s)

As Flagger's metric templates (a query and a ``thresholdRange``) and Argo Rollouts'
AnalysisTemplate (``successCondition``), with Argo's ``failureLimit: 0``: one look whose value
is beyond its threshold fails the look, and the deploy is aborted (``on_abort`` runs) as by
the prober's rules. Every series the query returns must hold; the worst is shown.

Fail closed: an empty result, NaN, an error answer, an unreachable server or a time-out
never passes. Such a look is **inconclusive** for that query, so no proof look passes on it:
a step is promoted only on a look at which every query held (else it ends unproven, as for
too few answers). When "no series" means "no bad events", say so in the query:
``... or vector(0)``.

``{{new}}`` and ``{{old}}`` stand for the new version (``version.expect``) and the one that
served before. A placeholder must be a whole double- or single-quoted string literal
(``version="{{new}}"``), and it is replaced by a PromQL string literal of the version with
every character that is not printable ASCII escaped: a version is data, it can never change
the query's structure. Inside a regular-expression matcher (``=~``, ``!~``), a backtick string,
a longer string or outside a string, a placeholder is a setting error. (``${...}`` are the gate
file's variables, resolved when the gate file is read.)

``[{{window}}]`` is the range of the step's window so far: from the end of the step's command
(where the prober's samples of the step begin) to the look, in whole milliseconds. A fixed
range (``[10s]``) reaches back before the step: it can hold the series of an instance of the
same version stopped less than one range ago (a faulty canary just aborted, whose errors would
then abort a good one deployed after it), and of the step before. ``{{window}}`` may stand only
for a whole range or subquery range (``[{{window}}]``, ``[{{window}}:1s]``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .thresholds import Threshold, ThresholdError, parse_duration
from .thresholds import parse as parse_threshold

if TYPE_CHECKING:
    from .canary_judge import Verdict
    from .checks.base import CheckContext

__all__ = [
    "PLACEHOLDERS",
    "SCHEMA",
    "PromLook",
    "PromQLError",
    "PromRule",
    "Template",
    "apply",
    "look",
    "parse_rules",
    "parse_template",
    "promql_string",
]

PLACEHOLDERS = ("new", "old")
#: the placeholder of a range: the step's window so far
WINDOW = "window"
_RANGE = re.compile(r"\d+ms")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
DEFAULT_TIMEOUT_S = 2.0
MAX_TIMEOUT_S = 30.0
MAX_QUERIES = 20
_QUERY = {"type": "string", "minLength": 1, "maxLength": 10000}
_RULE: dict[str, Any] = {
    "anyOf": [
        _QUERY,
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["query"],
            "properties": {
                "query": _QUERY,
                "expect": {"type": ["string", "number"]},
                "server": {"type": "string", "minLength": 1},
                "token": {"type": "string"},
                "timeout": {"type": ["string", "number"]},
                "name": {"type": "string", "minLength": 1, "maxLength": 80},
            },
        },
    ]
}
#: the JSON schema of ``analysis.prometheus``
SCHEMA: dict[str, Any] = {
    "description": "PromQL judged at every look: '{{new}}'/'{{old}}' are the versions as "
    "string literals; a value beyond 'expect' (default '== 0') aborts, no value cannot pass",
    "anyOf": [_RULE, {"type": "array", "items": _RULE, "minItems": 1, "maxItems": MAX_QUERIES}],
}


class PromQLError(ValueError):
    """A bad ``analysis.prometheus`` setting, or a version that cannot be a label value."""


# --- the query's text and its placeholders ---------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A query split into text and placeholders (each one a whole string literal)."""

    text: str
    #: plain text, and ("new" | "old") where a string literal of that version goes, or
    #: ("window",) where the range of the step's window goes
    parts: tuple[str | tuple[str], ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p[0] for p in self.parts if isinstance(p, tuple))

    def render(self, values: Mapping[str, str]) -> str:
        """The query with its placeholders filled: the versions as string literals, the
        window (``values["window"]``, e.g. ``"12000ms"``) as a range."""
        out = []
        for part in self.parts:
            if not isinstance(part, tuple):
                out.append(part)
            elif part[0] == WINDOW:
                window = values.get(WINDOW, "")
                if not _RANGE.fullmatch(window):
                    raise PromQLError(f"{{{{window}}}}: {window!r} is not a range like 12000ms")
                out.append(window)
            else:
                out.append(promql_string(values[part[0]]))
        return "".join(out)


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal whose value is exactly ``value``.

    Only printable ASCII is written as itself (``"`` and ``\\`` escaped); every other
    character as ``\\uXXXX`` / ``\\UXXXXXXXX`` (Go's escapes, which PromQL's lexer reads), so
    no newline, quote or control character of a version ever reaches the query's text. A
    surrogate is no Unicode character a label value can hold: an error; so is an empty value
    (``version=""`` matches every series *without* the label)."""
    if not value:
        raise PromQLError(
            "an empty version cannot be a label value (it would match series without the label)"
        )
    out = ['"']
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif 0xD800 <= code < 0xE000:
            raise PromQLError(f"the version {value!r} holds a lone surrogate: not a label value")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """The index just past the string literal that opens at ``start`` (``"``, ``'`` or a
    backtick); a :class:`PromQLError` when it does not end."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and quote != "`":
            i += 2
            continue
        if char == quote:
            return i + 1
        if char == "\n" and quote != "`":
            break
        i += 1
    raise PromQLError(f"a string literal opened at character {start + 1} does not end")


def _matcher_before(text: str, start: int) -> str:
    """The two characters before ``start``, whitespace skipped (``=~`` of a regex matcher)."""
    before = text[:start].rstrip()
    return before[-2:]


def parse_template(text: str) -> Template:
    """Find the placeholders of ``text``; a :class:`PromQLError` for one that is not a whole
    string literal, or one that is not ``{{new}}`` / ``{{old}}``."""
    parts: list[str | tuple[str]] = []
    plain = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "#":  # a comment, to the end of the line
            end = text.find("\n", i)
            i = len(text) if end == -1 else end
            continue
        if char in "\"'`":
            end = _string_end(text, i)
            inner = text[i + 1 : end - 1]
            found = _PLACEHOLDER.fullmatch(inner) if char != "`" else None
            if found is not None:
                name = _known(found.group(1))
                if _matcher_before(text, i) in ("=~", "!~"):
                    raise PromQLError(
                        f"{{{{{name}}}}} in a regular-expression matcher (=~, !~): a version is "
                        f'matched exactly, with = or != (label="{{{{{name}}}}}")'
                    )
                parts.append(text[plain:i])
                parts.append((name,))
                plain = end
            elif any(m.group(1) in (*PLACEHOLDERS, WINDOW) for m in _PLACEHOLDER.finditer(inner)):
                raise PromQLError(
                    f"a placeholder must be a whole double- or single-quoted string literal "
                    f'(label="{{{{new}}}}"), not part of one: {text[i:end]}'
                )
            i = end
            continue
        if text.startswith("{{", i) and _PLACEHOLDER.match(text, i):
            found = _PLACEHOLDER.match(text, i)
            assert found is not None
            name = found.group(1)
            if name == WINDOW:
                opens = text[:i].rstrip().endswith("[")
                closes = text[found.end() :].lstrip()[:1] in ("]", ":")
                if not (opens and closes):
                    raise PromQLError(
                        "{{window}} stands for a whole range: [{{window}}] (or a subquery's "
                        "[{{window}}:1s])"
                    )
                parts.append(text[plain:i])
                parts.append((WINDOW,))
                plain = i = found.end()
                continue
            raise PromQLError(
                f"{{{{{name}}}}} outside a string literal: write it quoted, "
                f'label="{{{{{name}}}}}" (the version becomes a string, never PromQL)'
            )
        i += 1
    parts.append(text[plain:])
    return Template(text, tuple(p for p in parts if p != ""))


def _known(name: str) -> str:
    if name == WINDOW:
        raise PromQLError("{{window}} is a range, not a string: write [{{window}}]")
    if name not in PLACEHOLDERS:
        raise PromQLError(
            f"unknown placeholder {{{{{name}}}}}: the known ones are "
            + ", ".join(f"{{{{{p}}}}}" for p in PLACEHOLDERS)
        )
    return name


# --- the rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromRule:
    template: Template
    expect: Threshold
    server: str | None = None
    token: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.template.text


def parse_rules(raw: Any) -> list[PromRule]:
    """``analysis.prometheus``: a query (its value must be 0), a ``{query, expect, ...}``, or a
    list of them."""
    items = raw if isinstance(raw, list) else [raw]
    if len(items) > MAX_QUERIES:
        raise PromQLError(f"more than {MAX_QUERIES} queries")
    rules = []
    for index, item in enumerate(items, 1):
        where = f"prometheus[{index}]" if isinstance(raw, list) else "prometheus"
        try:
            rules.append(_rule(item))
        except (PromQLError, ThresholdError) as exc:
            raise PromQLError(f"{where}: {exc}") from None
    return rules


def _rule(item: Any) -> PromRule:
    spec: dict[str, Any] = {"query": item} if isinstance(item, str) else dict(item)
    query = spec.get("query")
    if not isinstance(query, str) or not query.strip():
        raise PromQLError("needs a query")
    template = parse_template(query)
    expect = parse_threshold(spec.get("expect", "== 0"))
    if expect.relative or expect.unit is not None:
        raise PromQLError(
            f"expect: '{expect}': a query's value has no unit and no baseline; write the "
            "number in the query's own unit ('< 0.01' for a ratio, '< 0.5' for seconds)"
        )
    timeout = parse_duration(spec.get("timeout", DEFAULT_TIMEOUT_S))
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise PromQLError(f"timeout: {timeout:g} s is not within (0, {MAX_TIMEOUT_S:g}] s")
    server = spec.get("server")
    return PromRule(
        template,
        expect,
        server=str(server) if server else None,
        token=spec.get("token") or None,
        timeout_s=timeout,
        name=str(spec.get("name") or ""),
    )


# --- a look ----------------------------------------------------------------------------------


@dataclass
class PromLook:
    """One query at one look: what it returned, against what, and the outcome."""

    rule: PromRule
    query: str
    outcome: str  # pass | fail | inconclusive
    value: float | None = None
    series: int = 0
    reason: str = ""
    bad: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "query": self.query,
            "expect": str(self.rule.expect),
            "value": None if self.value is None or math.isnan(self.value) else self.value,
            "series": self.series,
            "verdict": self.outcome,
        }
        if self.rule.name:
            found["name"] = self.rule.name
        if self.reason:
            found["reason"] = self.reason
        return found

    @property
    def text(self) -> str:
        """One line for the verdict's reasons."""
        name = self.rule.label
        if self.outcome == "fail":
            return f"prometheus: {name} = {self.value:g}, expected {self.rule.expect}" + (
                f" ({'; '.join(self.bad)})" if self.bad else ""
            )
        return f"prometheus: {name}: {self.reason}"


def look(
    rules: list[PromRule],
    context: CheckContext,
    *,
    new: str,
    old: str,
    deadline: float | None = None,
    window_s: float | None = None,
) -> list[PromLook]:
    """Evaluate every rule now, each bounded by its timeout (and by ``deadline``, a
    ``time.monotonic()`` instant); never raises for what Prometheus did. ``window_s``: the
    seconds of the step's window so far (``[{{window}}]``, rounded down to milliseconds)."""
    window = "" if window_s is None else f"{max(math.floor(window_s * 1000), 1)}ms"
    from .checks.base import CheckError
    from .checks.prometheus import instant_query

    looks = []
    for rule in rules:
        try:
            query = rule.template.render({"new": new, "old": old, WINDOW: window})
        except PromQLError as exc:
            looks.append(PromLook(rule, rule.template.text, "inconclusive", reason=str(exc)))
            continue
        server = rule.server or str(context.settings.get("prometheus_url") or "")
        if not server:
            looks.append(
                PromLook(
                    rule,
                    query,
                    "inconclusive",
                    reason="no Prometheus server: give 'server:' or the ini option "
                    "gate_prometheus_url",
                )
            )
            continue
        timeout = rule.timeout_s
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
        if timeout <= 0:
            looks.append(PromLook(rule, query, "inconclusive", reason="no time left"))
            continue
        try:
            series = instant_query(
                context, server, query, timeout=timeout, token=rule.token, verify=True
            )
        except CheckError as exc:
            looks.append(PromLook(rule, query, "inconclusive", reason=str(exc)))
            continue
        looks.append(judge_series(rule, query, series))
    return looks


def judge_series(rule: PromRule, query: str, series: list[tuple[str, float]]) -> PromLook:
    """The outcome of one query's series against the rule's threshold: every series must
    hold; none, or a NaN, is inconclusive."""
    if not series:
        return PromLook(
            rule,
            query,
            "inconclusive",
            reason="the query returned no series (write '... or vector(0)' when none means "
            "no bad events)",
        )
    nan = [labels for labels, value in series if math.isnan(value)]
    if nan:
        return PromLook(
            rule, query, "inconclusive", math.nan, len(series), reason=f"NaN for {nan[0]}"
        )
    bad = [(labels, v) for labels, v in series if rule.expect.holds("value", v) is False]
    if bad:
        pick = min if rule.expect.op in (">", ">=") else max
        worst = pick(v for _, v in bad)
        shown = [f"{labels} = {v:g}" for labels, v in bad[:3]] if len(series) > 1 else []
        return PromLook(rule, query, "fail", worst, len(series), bad=shown)
    pick = min if rule.expect.op in (">", ">=") else max
    return PromLook(rule, query, "pass", pick(v for _, v in series), len(series))


def apply(looks: list[PromLook], verdict: Verdict) -> None:
    """Fold the queries' outcomes into the look's verdict: a failed query fails it (the
    deploy is aborted); an inconclusive one keeps a passing verdict from passing."""
    failed = [found for found in looks if found.outcome == "fail"]
    if failed:
        if verdict.outcome != "fail":
            verdict.reasons = []  # "too few answers" no longer matters: the look failed
        verdict.outcome = "fail"
        for found in failed:
            verdict.failed_rules.append("prometheus")
            verdict.reasons.append(found.text)
        return
    if verdict.outcome == "fail":
        return
    unsure = [found.text for found in looks if found.outcome == "inconclusive"]
    if unsure:
        verdict.outcome = "inconclusive"
        verdict.reasons.extend(unsure)
