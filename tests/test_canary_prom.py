"""``analysis.prometheus``: the query's placeholders, the versions as PromQL string literals,
and how a look's values, empty results and errors are judged (fail closed)."""

from __future__ import annotations

import math
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates.canary_judge import Verdict
from pytest_fwgates.canary_prom import (
    PromLook,
    PromQLError,
    apply,
    judge_series,
    look,
    parse_rules,
    parse_template,
    promql_string,
)
from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import Outcome, Source
from pytest_fwgates.redact import Redactor

QUERY = 'sum(rate(http_requests_total{version="{{new}}",status=~"5.."}[30s]))'


# --- an independent reader of PromQL string literals (Go's escapes, as PromQL's lexer) -------

_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _read_literal(text: str, start: int) -> tuple[str, int]:
    """The value of the double-quoted literal at ``start`` and the index past it, as PromQL's
    lexer and Go's strconv.Unquote read it; AssertionError for anything they refuse."""
    assert text[start] == '"'
    out: list[str] = []
    i = start + 1
    while True:
        assert i < len(text), "unterminated string"
        char = text[i]
        assert char != "\n", "a newline ends no PromQL string"
        if char == '"':
            return "".join(out), i + 1
        if char != "\\":
            out.append(char)
            i += 1
            continue
        kind = text[i + 1]
        if kind in _SIMPLE:
            out.append(_SIMPLE[kind])
            i += 2
        elif kind in "\\\"'":
            out.append(kind)
            i += 2
        elif kind in "uU":
            width = 4 if kind == "u" else 8
            digits = text[i + 2 : i + 2 + width]
            assert re.fullmatch(r"[0-9a-fA-F]+", digits) and len(digits) == width
            code = int(digits, 16)
            assert code <= 0x10FFFF and not 0xD800 <= code < 0xE000
            out.append(chr(code))
            i += 2 + width
        else:
            raise AssertionError(f"escape \\{kind} refused")


versions = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40
) | st.sampled_from(['"', "\\", '\\"', '"}', 'v2"} or vector(1) #', "{{new}}", "\n", "`", "'"])


@settings(max_examples=300, deadline=None)
@given(new=versions, old=versions)
def test_a_version_is_always_one_string_literal_equal_to_it(new: str, old: str) -> None:
    template = parse_template('x{version="{{new}}"} - on() y{v=\'{{old}}\', w="a"}')
    rendered = template.render({"new": new, "old": old})
    assert rendered.startswith('x{version="')
    first, after = _read_literal(rendered, len("x{version="))
    assert first == new
    assert rendered[after:].startswith("} - on() y{v=")
    second_at = after + len("} - on() y{v=")
    second, end = _read_literal(rendered, second_at)
    assert second == old
    assert rendered[end:] == ', w="a"}'
    # nothing of a version is anything but printable ASCII in the query's text
    assert all(0x20 <= ord(c) < 0x7F for c in rendered)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_the_literal_reads_back(value: str) -> None:
    literal = promql_string(value)
    assert _read_literal(literal, 0) == (value, len(literal))


@pytest.mark.parametrize("value", ["", "a\ud800b"])
def test_no_label_value_is_an_error(value: str) -> None:
    with pytest.raises(PromQLError):
        promql_string(value)


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("x{version={{new}}}", "outside a string literal"),
        ('x{version="v-{{new}}"}', "not part of one"),
        ('x{version=~"{{new}}"}', "regular-expression matcher"),
        ('x{version !~ "{{old}}"}', "regular-expression matcher"),
        ("x{version=`{{new}}`}", "not part of one"),
        ('x{version="{{canary}}"}', "unknown placeholder"),
        ('x{version="{{new}}}', "does not end"),
        ('x{version="{{window}}"}', "a range, not a string"),
        ('x{version="v{{window}}"}', "not part of one"),
        ("x[{{window}}s]", "whole range"),
        ("x[1m] offset {{window}}", "whole range"),
        ("x{{window}}", "whole range"),
        ("x[5s:{{window}}]", "whole range"),
    ],
)
def test_a_placeholder_that_is_not_a_whole_string_is_an_error(query: str, why: str) -> None:
    with pytest.raises(PromQLError, match=why):
        parse_template(query)


@given(window_s=st.floats(0.0, 1e6, allow_nan=False))
def test_the_window_is_a_range_within_the_steps_window(window_s: float) -> None:
    # [{{window}}] reaches back no further than the step's window (rounded down to ms), so a
    # stopped instance's series from before the step is never in it
    template = parse_template(
        'sum(rate(x{v="{{new}}"}[ {{window}} ])) + max_over_time(y[{{window}}:1s])'
    )

    ms = max(math.floor(window_s * 1000), 1)
    rendered = template.render({"new": "v2", "old": "v1", "window": f"{ms}ms"})
    assert rendered == f'sum(rate(x{{v="v2"}}[ {ms}ms ])) + max_over_time(y[{ms}ms:1s])'


@pytest.mark.parametrize("window", ["", "5s", "1ms] or vector(1) #", "-1ms"])
def test_a_window_that_is_not_milliseconds_never_reaches_the_query(window: str) -> None:
    template = parse_template("rate(x[{{window}}])")
    with pytest.raises(PromQLError, match="not a range"):
        template.render({"new": "v2", "old": "v1", "window": window})


def test_a_window_query_outside_a_step_is_inconclusive(tmp_path: Path) -> None:
    # no window to fill (the caller gave none): the look says so and never passes
    from pytest_fwgates.canary_prom import look, parse_rules

    context = CheckContext(rootdir=tmp_path, redactor=Redactor(), evidence_root=tmp_path)
    rules = parse_rules({"query": "rate(x[{{window}}])", "server": "http://127.0.0.1:9"})
    (found,) = look(rules, context, new="v2", old="v1")
    assert found.outcome == "inconclusive" and "not a range" in found.reason


def test_placeholders_in_single_quotes_in_functions_and_comments() -> None:
    template = parse_template(
        "label_replace(vector(1), 'v', '{{ old }}', '', '') # not {{new}} here\n"
        '+ x{a="{{new}}", b="\\"{{x}}"}'
    )
    rendered = template.render({"new": "v2", "old": 'v"1'})
    assert "'v', \"v\\\"1\", ''" in rendered
    assert "# not {{new}} here" in rendered  # a comment is left as it is
    assert 'x{a="v2", b="\\"{{x}}"}' in rendered  # an escaped quote does not end a string
    assert template.names == {"new", "old"}


def test_rules_a_bare_query_must_be_zero_and_a_mapping_has_its_threshold() -> None:
    (bare,) = parse_rules(QUERY)
    assert str(bare.expect) == "== 0" and bare.timeout_s == 2.0 and bare.server is None
    rules = parse_rules(
        [QUERY, {"query": "up", "expect": "< 0.01", "timeout": "500ms", "name": "errors"}]
    )
    assert [str(r.expect) for r in rules] == ["== 0", "< 0.01"]
    assert rules[1].timeout_s == 0.5 and rules[1].label == "errors"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ({"query": "up", "expect": "<= +10%"}, "no unit and no baseline"),
        ({"query": "up", "expect": "< 300ms"}, "no unit and no baseline"),
        ({"query": "up", "expect": "lots"}, "bad threshold"),
        ({"query": "up", "timeout": "2m"}, "timeout"),
        ([QUERY, {"query": "x{v={{new}}}"}], r"prometheus\[2\]: .*outside a string"),
    ],
)
def test_bad_rules_are_errors_naming_the_rule(raw: Any, why: str) -> None:
    with pytest.raises(PromQLError, match=why):
        parse_rules(raw)


# --- judging a look --------------------------------------------------------------------------


def _rule(expect: str = "== 0") -> Any:
    return parse_rules({"query": "q", "expect": expect})[0]


@pytest.mark.parametrize(
    ("expect", "series", "outcome", "value"),
    [
        ("== 0", [("{}", 0.0)], "pass", 0.0),
        ("== 0", [("{}", 0.2)], "fail", 0.2),
        ("== 0", [], "inconclusive", None),
        ("< 0.01", [("{a}", 0.001), ("{b}", math.nan)], "inconclusive", None),
        ("< 0.01", [("{a}", 0.001), ("{b}", 0.5), ("{c}", 0.2)], "fail", 0.5),
        (">= 1", [("{a}", 3.0), ("{b}", 0.0)], "fail", 0.0),
        ("< 0.01", [("{a}", 0.001), ("{b}", 0.005)], "pass", 0.005),
        ("< 0.01", [("{a}", math.inf)], "fail", math.inf),
    ],
)
def test_every_series_must_hold_and_none_or_nan_never_passes(
    expect: str, series: list[tuple[str, float]], outcome: str, value: float | None
) -> None:
    found = judge_series(_rule(expect), "q", series)
    assert found.outcome == outcome
    if value is not None:
        assert found.value == value
    record = found.to_json()
    assert record["expect"] == expect and record["verdict"] == outcome
    assert record["value"] is None or isinstance(record["value"], float)


@pytest.mark.parametrize("before", ["pass", "inconclusive", "fail"])
@pytest.mark.parametrize("prom", ["pass", "fail", "inconclusive"])
def test_a_failed_query_fails_the_look_and_an_unsure_one_keeps_it_from_passing(
    before: str, prom: str
) -> None:
    verdict = Verdict(before, reasons=["the canary answered 3 times"] if before != "pass" else [])
    if before == "fail":
        verdict.failed_rules.append("failure_rate")
    apply([PromLook(_rule(), "q", prom, 1.0, 1, reason="no series")], verdict)
    expected = {
        ("pass", "pass"): "pass",
        ("pass", "inconclusive"): "inconclusive",
        ("inconclusive", "pass"): "inconclusive",
    }.get((before, prom), "fail" if "fail" in (before, prom) else "inconclusive")
    assert verdict.outcome == expected
    if prom == "fail":
        assert "prometheus" in verdict.failed_rules
        assert any("expected == 0" in r for r in verdict.reasons)
    if verdict.outcome == "fail" and before != "fail":
        assert not any("answered 3 times" in r for r in verdict.reasons)


def _context(tmp_path: Path, url: str = "") -> CheckContext:
    context = CheckContext(rootdir=tmp_path, redactor=Redactor(), evidence_root=tmp_path)
    context.settings["prometheus_url"] = url
    return context


def test_no_server_a_refused_one_and_a_silent_one_are_inconclusive_within_the_bound(
    tmp_path: Path,
) -> None:
    rules = parse_rules([QUERY, {"query": QUERY, "timeout": "300ms"}])
    (no_server, _) = look(rules, _context(tmp_path), new="v2", old="v1")
    assert no_server.outcome == "inconclusive" and "gate_prometheus_url" in no_server.reason
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts, never answers
        closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
        refused = look(
            rules[:1],
            _context(tmp_path, f"http://127.0.0.1:{closed.getsockname()[1]}"),
            new="v2",
            old="v1",
        )
        assert refused[0].outcome == "inconclusive" and "unreachable" in refused[0].reason
        started = time.monotonic()
        slow = look(
            rules[1:],
            _context(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}"),
            new="v2",
            old="v1",
        )
        assert time.monotonic() - started < 3.0
    assert slow[0].outcome == "inconclusive"
    assert slow[0].query == QUERY.replace("{{new}}", "v2")


def test_a_version_that_cannot_be_a_label_value_makes_the_look_inconclusive(
    tmp_path: Path,
) -> None:
    (found,) = look(parse_rules(QUERY), _context(tmp_path, "http://127.0.0.1:9"), new="", old="v1")
    assert found.outcome == "inconclusive" and "empty version" in found.reason


def test_a_bad_rule_is_an_error_of_the_check_before_anything_runs(tmp_path: Path) -> None:
    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    options = {
        "deploy": "true",
        "health": "http://127.0.0.1:9/",
        "steps": [{"weight": 10, "pause": "1s"}, {"weight": 100}],
        "version": {"json": "version", "expect": "v2"},
        "analysis": {"prometheus": ["up", {"query": 'x{v=~"{{new}}"}'}]},
    }
    spec = loader.spec_from_mapping(None, None, options, Source(tmp_path / "g.yaml", 1))
    context = CheckContext(rootdir=tmp_path, redactor=loader.redactor, evidence_root=tmp_path)
    result = run_check(registry.get("deploy")(spec, context), "steps")
    assert result.outcome is Outcome.ERROR
    assert "analysis.prometheus[2]: " in result.message and "\n" not in result.message


def test_a_prometheus_rule_alone_is_an_analysis(tmp_path: Path) -> None:
    loader = GateLoader([], registry=CheckRegistry())
    spec = loader.spec_from_mapping(
        None,
        None,
        {
            "deploy": "true",
            "health": "http://127.0.0.1:9/",
            "steps": [{"weight": 10, "pause": "1s"}, {"weight": 100}],
            "analysis": {"prometheus": {"query": "up", "token": "s3cret"}},
        },
        Source(tmp_path / "g.yaml", 1),
    )
    assert spec.options["analysis"]["prometheus"]["query"] == "up"


def test_a_token_is_masked_from_the_first_look_on(tmp_path: Path) -> None:
    context = _context(tmp_path, "http://127.0.0.1:9")
    rules = parse_rules({"query": QUERY, "token": "s3cret-token-value", "timeout": "300ms"})
    (found,) = look(rules, context, new="v2", old="v1")
    assert found.outcome == "inconclusive"
    assert "s3cret-token-value" not in context.redactor.text("Bearer s3cret-token-value")


def test_the_report_shows_each_query_with_its_value_and_threshold() -> None:
    from pytest_fwgates.model import CheckResult
    from pytest_fwgates.report.canary_html import canary_sections

    rules = parse_rules([{"query": QUERY, "name": "5xx <b>"}, {"query": "x", "expect": "< 1"}])
    step = {
        "step": 1,
        "weight": 50.0,
        "verdict": "fail",
        "prometheus": [
            judge_series(rules[0], "q1", [("{}", 0.25)]).to_json(),
            judge_series(rules[1], "q2", []).to_json(),
        ],
    }
    result = CheckResult("n", "g", "c", "deploy[x]", Outcome.PASSED, measured={"steps": [step]})
    (html,) = canary_sections([result])
    assert "5xx &lt;b&gt;</span>: 0.25 (expected == 0, fail)" in html
    assert 'title="q2">q2</span>: no value (expected &lt; 1, inconclusive)' in html


def test_the_stack_scrapes_every_instance_it_has_on_record(tmp_path: Path) -> None:
    import json

    from examples.stack import config

    yml = config.prometheus_yml(
        app_target="127.0.0.1:1",
        self_target="127.0.0.1:2",
        rules=tmp_path / "r.yml",
        instances=tmp_path / "instances.json",
    )
    assert "job_name: app_instances" in yml and "refresh_interval: 1s" in yml
    assert "scrape_interval: 1s" in yml  # a pause of ~20 s sees many scrapes
    groups = json.loads(
        config.instance_targets(
            [{"colour": "blue", "port": 8001}, {"colour": "green", "port": 8002}]
        )
    )
    assert groups == [
        {"targets": ["127.0.0.1:8001"], "labels": {"colour": "blue"}},
        {"targets": ["127.0.0.1:8002"], "labels": {"colour": "green"}},
    ]
