"""The threshold grammar: parsing, canonical text, unit conversion, baselines, durations."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates.thresholds import (
    OPERATORS,
    TIME_UNITS,
    Threshold,
    ThresholdError,
    format_threshold,
    format_value,
    key_unit,
    loosens,
    parse,
    parse_duration,
)

FAST = settings(max_examples=100, deadline=None)

# -- parse: the grammar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("< 300ms", Threshold("<", 300.0, "ms")),
        ("<300ms", Threshold("<", 300.0, "ms")),
        ("  <  300 ms  ", Threshold("<", 300.0, "ms")),
        (">= 99.9%", Threshold(">=", 99.9, "%")),
        ("== 0", Threshold("==", 0.0)),
        ("!= 1", Threshold("!=", 1.0)),
        ("> .5", Threshold(">", 0.5)),
        ("<= 1.5e3s", Threshold("<=", 1500.0, "s")),
        ("< 2m", Threshold("<", 2.0, "m")),
        ("< 1h", Threshold("<", 1.0, "h")),
        ("5", Threshold("==", 5.0)),
        ("<= +10%", Threshold("<=", 10.0, "%", relative=True)),
        ("<= -5%", Threshold("<=", -5.0, "%", relative=True)),
        (">= +0%", Threshold(">=", 0.0, "%", relative=True)),
        (0, Threshold("==", 0.0)),
        (1.5, Threshold("==", 1.5)),
        # a plain negative number is an absolute bound; with '%' it is relative
        ("< -5", Threshold("<", -5.0)),
        ("== -1", Threshold("==", -1.0)),
        (-1, Threshold("==", -1.0)),
        (-2.5, Threshold("==", -2.5)),
    ],
)
def test_parse_accepts_the_grammar(text: object, expected: Threshold) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "<",
        "< ",
        "<< 5",
        "=< 5",
        "=> 5",
        "= 5",
        "< 5 ms ms",
        "< 5 sec",
        "< 5 min",
        "< 5d",
        "< five",
        "< 5,5",
        "< 1_000",
        "< 0x10",
        "< inf",
        "< nan",
        "< 1e999",
        "< +5",
        "< -5ms",
        "< +5ms",
        "< 5%%",
        "5 <",
        "< 5; import os",
        "< __import__('os').system('touch PWNED')",
        "__import__('os').system('touch PWNED')",
        "< 1 or True",
        "< 1 if x else 2",
        "< ${x}",
        "< 5\n< 6",
        "<" + " " * 80 + "5",
        True,
        False,
        None,
        [],
        ["< 5"],
        {"<": 5},
        float("nan"),
        float("inf"),
        -float("inf"),
        10**400,
        -(10**400),
        object(),
        b"< 5",
    ],
)
def test_parse_refuses_everything_else(text: object) -> None:
    with pytest.raises(ThresholdError):
        parse(text)


def test_parse_never_evaluates(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for text in ("< __import__('os').system('touch PWNED')", "< eval('1')", "`touch PWNED`"):
        with pytest.raises(ThresholdError):
            parse(text)
    assert not (tmp_path / "PWNED").exists()


def test_parse_error_is_one_line() -> None:
    with pytest.raises(ThresholdError) as info:
        parse("< 5\n\x1b[31mred")
    assert "\n" not in str(info.value)
    assert "\x1b" not in str(info.value)


@FAST
@given(st.text(max_size=80))
def test_parse_any_string_raises_only_threshold_error(text: str) -> None:
    try:
        threshold = parse(text)
    except ThresholdError:
        return
    assert threshold.op in OPERATORS
    assert math.isfinite(threshold.value)
    assert threshold.unit in (None, "%", *TIME_UNITS)


# strings made of the grammar's own pieces find more edge cases than random text
_PIECES = st.sampled_from(
    ["<", "<=", ">", ">=", "==", "!=", "=", "+", "-", "1", "0", "9", ".", "e", "E", "5",
     "ms", "s", "m", "h", "%", " ", "\t", "\n", "_", "x", "(", ")", "٣", "\u00a0"]
)  # fmt: skip


@FAST
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_parse_grammar_like_strings_raise_only_threshold_error(text: str) -> None:
    with contextlib.suppress(ThresholdError):
        parse(text)


_ANY_OBJECT = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@FAST
@given(_ANY_OBJECT)
def test_parse_any_object_raises_only_threshold_error(value: object) -> None:
    try:
        threshold = parse(value)
    except ThresholdError:
        return
    assert isinstance(value, str | int | float) and not isinstance(value, bool)
    assert math.isfinite(threshold.value)


# -- canonical text and round trip ----------------------------------------------------------

_FINITE = st.floats(min_value=0, allow_nan=False, allow_infinity=False).filter(
    lambda v: math.copysign(1.0, v) > 0
)
_ABSOLUTE = st.builds(
    Threshold,
    op=st.sampled_from(sorted(OPERATORS)),
    value=_FINITE | st.integers(0, 10**6).map(float),
    unit=st.sampled_from([None, "%", *TIME_UNITS]),
)
_RELATIVE = st.builds(
    Threshold,
    op=st.sampled_from(sorted(OPERATORS)),
    value=st.floats(min_value=-1000, max_value=1000, allow_nan=False)
    | st.integers(-100, 100).map(float),
    unit=st.just("%"),
    relative=st.just(True),
)


_NEGATIVE = st.builds(
    Threshold,
    op=st.sampled_from(sorted(OPERATORS)),
    value=st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False)
    | st.integers(-(10**6), -1).map(float),
)


@FAST
@given(_ABSOLUTE | _RELATIVE | _NEGATIVE)
def test_round_trip(threshold: Threshold) -> None:
    text = format_threshold(threshold)
    assert parse(text) == threshold
    assert str(threshold) == text
    assert len(text) <= 64


@pytest.mark.parametrize(
    ("threshold", "text"),
    [
        (Threshold("<", 300.0, "ms"), "< 300ms"),
        (Threshold(">=", 99.9, "%"), ">= 99.9%"),
        (Threshold("==", 0.0), "== 0"),
        (Threshold("<=", 10.0, "%", relative=True), "<= +10%"),
        (Threshold("<=", -2.5, "%", relative=True), "<= -2.5%"),
    ],
)
def test_format_threshold(threshold: Threshold, text: str) -> None:
    assert format_threshold(threshold) == text


# -- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "unit"),
    [
        ("p95_ms", "ms"),
        ("duration_s", "s"),
        ("recovery_s", "s"),
        ("window_m", "m"),
        ("age_h", "h"),
        ("availability_pct", "%"),
        ("cpu_percent", "%"),
        ("failure_ratio", "ratio"),
        ("error_fraction", "ratio"),
        ("rps", None),
        ("lost_writes", None),
        ("exit_status", None),
        ("ms", None),
    ],
)
def test_key_unit(key: str, unit: str | None) -> None:
    assert key_unit(key) == unit


@pytest.mark.parametrize(
    ("text", "key", "passing", "failing"),
    [
        ("< 5s", "duration_s", 4.999, 5.0),
        ("< 5s", "p95_ms", 4999.0, 5000.0),
        ("< 300ms", "p95_ms", 299.0, 300.0),
        ("< 300ms", "duration_s", 0.299, 0.3),
        ("< 300", "p95_ms", 299.0, 300.0),
        ("< 2m", "recovery_s", 119.9, 120.0),
        ("< 5m", "duration_s", 299.0, 300.0),
        ("< 1h", "duration_m", 59.0, 60.0),
        ("< 1%", "failure_ratio", 0.0099, 0.01),
        ("<= 1%", "failure_ratio", 0.01, 0.0101),
        (">= 99.9%", "availability_pct", 99.9, 99.89),
        (">= 99.9%", "success_ratio", 0.999, 0.998),
        ("== 0", "lost_writes", 0.0, 1.0),
        ("!= 0", "exit_status", 1.0, 0.0),
        (">= 100", "rps", 100.0, 99.9),
        ("> 99.9%", "availability_pct", 99.95, 99.9),
    ],
)
def test_unit_conversion(text: str, key: str, passing: float, failing: float) -> None:
    threshold = parse(text)
    threshold.check_key(key)
    assert threshold.holds(key, passing) is True
    assert threshold.holds(key, failing) is False


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("< 5%", "duration_s"),
        ("< 5%", "p95_ms"),
        ("< 5s", "failure_ratio"),
        ("< 5ms", "availability_pct"),
        ("< 5s", "rps"),
        ("< 5m", "lost_writes"),
    ],
)
def test_unit_that_does_not_fit_is_refused(text: str, key: str) -> None:
    threshold = parse(text)
    with pytest.raises(ThresholdError):
        threshold.check_key(key)
    with pytest.raises(ThresholdError):
        threshold.holds(key, 1.0)


@FAST
@given(
    st.floats(min_value=1e-9, max_value=1e6) | st.just(0.0),
    st.sampled_from(sorted(TIME_UNITS)),
    st.sampled_from(sorted(TIME_UNITS)),
)
def test_time_conversion_is_consistent(value: float, unit: str, target: str) -> None:
    threshold = Threshold("<=", value, unit)
    bound = threshold.limit(f"elapsed_{target}")
    assert bound is not None
    assert math.isclose(bound * TIME_UNITS[target], value * TIME_UNITS[unit], rel_tol=1e-9)


@pytest.mark.parametrize(
    ("text", "key", "measured", "holds"),
    [
        # exactly on the bound: decided in decimal, not off by the last bit of a float
        (">= 99.9%", "success_ratio", 0.999, True),
        (">= 99.9%", "success_ratio", 999 / 1000, True),
        ("< 300ms", "duration_s", 0.3, False),
        ("<= 300ms", "duration_s", 0.3, True),
        ("<= 0.1s", "p95_ms", 100.0, True),
        ("< 0.1s", "p95_ms", 100.0, False),
        ("== 1%", "failure_ratio", 0.01, True),
        ("<= 2.3m", "recovery_s", 138.0, True),
        ("< 2.3m", "recovery_s", 138.0, False),
    ],
)
def test_bound_is_exact(text: str, key: str, measured: float, holds: bool) -> None:
    assert parse(text).holds(key, measured) is holds


def test_nan_measurement_is_undecided() -> None:
    assert parse("< 5s").holds("duration_s", math.nan) is None


# -- relative thresholds -------------------------------------------------------------------


def test_relative_needs_a_baseline() -> None:
    threshold = parse("<= +10%")
    assert threshold.relative
    assert threshold.limit("p95_ms") is None
    assert threshold.holds("p95_ms", 100.0) is None
    assert threshold.holds("p95_ms", 100.0, baseline=None) is None
    assert threshold.holds("p95_ms", 100.0, baseline=math.nan) is None
    assert threshold.holds("p95_ms", 100.0, baseline=math.inf) is None


@pytest.mark.parametrize(
    ("text", "baseline", "passing", "failing"),
    [
        ("<= +10%", 200.0, 220.0, 220.1),
        ("<= +0%", 200.0, 200.0, 200.1),
        ("< +10%", 200.0, 219.9, 220.0),
        ("<= +10%", 0.3, 0.33, 0.3300001),
        ("< -5%", 100.0, 94.9, 95.0),
        (">= -10%", 1000.0, 900.0, 899.0),
    ],
)
def test_relative_with_baseline(text: str, baseline: float, passing: float, failing: float) -> None:
    threshold = parse(text)
    assert threshold.holds("p95_ms", passing, baseline=baseline) is True
    assert threshold.holds("p95_ms", failing, baseline=baseline) is False


def test_relative_applies_to_any_key() -> None:
    for key in ("p95_ms", "rps", "failure_ratio", "duration_s"):
        parse("<= +10%").check_key(key)


@FAST
@given(
    st.floats(min_value=-50, max_value=50, allow_nan=False),
    st.floats(min_value=0.001, max_value=1e6, allow_nan=False),
)
def test_relative_bound(percent: float, baseline: float) -> None:
    threshold = Threshold("<=", percent, "%", relative=True)
    bound = threshold.limit("p95_ms", baseline)
    assert bound is not None
    assert math.isclose(bound, baseline * (1 + percent / 100), rel_tol=1e-12)


# -- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("90s", 90.0),
        ("2m", 120.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        (" 10 s ", 10.0),
        (".5", 0.5),
        (86400, 86400.0),
        ("24h", 86400.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    [0, -1, "0s", "-5s", "25h", 86401, True, False, None, "", "5 sec", "5d", "1e3", "five",
     float("nan"), float("inf"), 10**400, [30], {"s": 30}, "< 5s"],
)  # fmt: skip
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(ThresholdError):
        parse_duration(value)


@FAST
@given(_ANY_OBJECT)
def test_parse_duration_any_object_raises_only_threshold_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ThresholdError:
        return
    assert 0 < seconds <= 86400


@FAST
@given(st.text(max_size=30))
def test_parse_duration_any_string(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ThresholdError:
        return
    assert 0 < seconds <= 86400


# -- measured values shown with their unit ------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("p95_ms", 412.0, "412 ms"),
        ("availability_pct", 99.95, "99.95 %"),
        ("failure_ratio", 0.01, "0.01"),
        ("rps", 100.0, "100"),
        ("duration_s", 1.23456789, "1.23457 s"),
    ],
)
def test_format_value(key: str, value: float, text: str) -> None:
    assert format_value(key, value) == text


# -- loosened standards ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "standard", "override", "looser"),
    [
        ("duration_s", "< 5m", "< 1000h", True),
        ("duration_s", "< 5m", "< 2m", False),
        ("duration_s", "< 5m", "< 300s", False),
        ("duration_s", "< 5m", "<= 5m", True),
        ("duration_s", "< 5m", "> 1m", True),
        ("duration_s", "< 5m", "== 1m", False),
        ("duration_s", "< 5m", "!= 1m", True),
        ("availability_pct", ">= 99.9%", ">= 50%", True),
        ("availability_pct", ">= 99.9%", ">= 99.99%", False),
        ("availability_pct", ">= 99.9%", "> 99.9%", False),
        ("success_ratio", ">= 99.9%", ">= 0.999", False),
        ("success_ratio", ">= 99.9%", ">= 0.5", True),
        ("lost_writes", "== 0", "<= 0", True),
        ("lost_writes", "== 0", "== 0", False),
        ("lost_writes", "== 0", "== 1", True),
        ("exit_status", "!= 0", "== 1", False),
        ("exit_status", "!= 0", "> 0", False),
        ("exit_status", "!= 0", ">= 0", True),
        ("p95_ms", "<= +10%", "<= +5%", False),
        ("p95_ms", "<= +10%", "<= +20%", True),
        ("p95_ms", "<= +10%", "< 300ms", True),
        ("p95_ms", "< 300ms", "<= +10%", True),
    ],
)
def test_loosens_examples(key: str, standard: str, override: str, looser: bool) -> None:
    assert loosens(key, parse(standard), parse(override)) is looser


_BOUNDS = st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0])
_ANY_ABSOLUTE = st.builds(Threshold, op=st.sampled_from(sorted(OPERATORS)), value=_BOUNDS)


def _probes(*thresholds: Threshold) -> list[float]:
    """Values around every bound: enough to tell two half-lines or points apart."""
    points = {-1e9, 1e9}
    for threshold in thresholds:
        for delta in (-0.25, 0.0, 0.25):
            points.add(threshold.value + delta)
    return sorted(points)


@FAST
@given(_ANY_ABSOLUTE, _ANY_ABSOLUTE)
def test_loosens_means_accepts_a_value_the_standard_fails(
    standard: Threshold, override: Threshold
) -> None:
    """``loosens`` is exactly: some value passes the override and fails the standard."""
    witnesses = [
        x
        for x in _probes(standard, override)
        if override.holds("n", x) and not standard.holds("n", x)
    ]
    assert loosens("n", standard, override) is bool(witnesses)


@FAST
@given(_ABSOLUTE | _NEGATIVE | _RELATIVE)
def test_a_threshold_never_loosens_itself(threshold: Threshold) -> None:
    key = "duration_s" if threshold.unit in TIME_UNITS else "x_pct"
    assert not loosens(key, threshold, threshold)


@FAST
@given(
    st.sampled_from(["<", "<="]),
    st.floats(0, 1e6, allow_nan=False),
    st.floats(0, 1e6, allow_nan=False),
)
def test_a_higher_upper_bound_loosens(op: str, bound: float, other: float) -> None:
    standard, override = Threshold(op, bound, "s"), Threshold(op, other, "s")
    assert loosens("duration_s", standard, override) is (other > bound)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "must be more than 0, got 0"),
        ("0s", "must be more than 0, got '0s'"),
        ("0ms", "must be more than 0, got '0ms'"),
        (0.0, "must be more than 0, got 0.0"),
        ("25h", "must be at most 24h, got '25h'"),
        (float("inf"), "not a finite duration"),
    ],
)
def test_a_duration_out_of_bounds_says_which_bound(value: object, message: str) -> None:
    with pytest.raises(ThresholdError, match=re.escape(message)):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "must be more than 0 and at most 3600 seconds, got '0'"),
        ("-1", "must be more than 0 and at most 3600 seconds, got '-1'"),
        ("1e999", "must be more than 0 and at most 3600 seconds, got '1e999'"),
        ("nan", "must be more than 0 and at most 3600 seconds, got 'nan'"),
        ("soon", "'soon' is not a number of seconds"),
    ],
)
def test_connect_timeout_out_of_bounds_says_which_bound(text: str, message: str) -> None:
    """``--gate-connect-timeout=0`` is not "(0 to 3600)": the message names the bound it broke."""
    import argparse

    from pytest_fwgates.plugin import _positive_seconds

    with pytest.raises(argparse.ArgumentTypeError) as info:
        _positive_seconds(text)
    assert str(info.value) == message
    assert _positive_seconds("3600") == 3600
