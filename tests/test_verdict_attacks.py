"""A verdict is no stronger than its evidence, whatever the threshold's form says.

Over every figure every check type is held to: an equality on a figure that needs a bound
(``availability_pct: "== 100%"``, a bare ``100``) never passes on the point estimate; a
figure is judged only on evidence of its own kind (a mean reported ``as: p95_ms`` is no
percentile, a share of counted records reported ``as: mttr_s`` no mean); a percentile is
bounded at the confidence it is judged at, not the one its samples were first bounded at;
and a deploy history counts each recorded outcome once, and none dated in the future.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import stats
from pytest_fwgates.baseline import BaselineStore
from pytest_fwgates.bounds import (
    count_support,
    counted,
    figure_kind,
    judge,
    mean_support,
    parse_confidence,
    percentile_of,
    quantile_support,
    supported_value,
)
from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.history import HistoryStore, window
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, CheckSpec, Outcome, Source
from pytest_fwgates.thresholds import ThresholdError, key_unit, parse
from pytest_fwgates.yamlsrc import SourceError


def _figures() -> list[str]:
    """Every figure a check type can be held to that needs a bound (a share of counted
    events, a percentile, a mean), and one of each kind a Python test records."""
    registry = CheckRegistry()
    keys = {key for name in registry.names() for key in registry.get(name).threshold_keys}
    keys |= {"GET /a::p95_ms", "GET /a::failure_ratio", "GET /a::avg_ms"}
    return sorted(k for k in keys if _kind(k) != "other")


def _kind(key: str) -> str:
    return figure_kind(key) or "other"


FIGURES = _figures()


def _supports(key: str) -> dict[str, tuple[float, dict[str, Any]]]:
    """Strong evidence of every kind, each with the value it shows for ``key``."""
    scale = 100.0 if key_unit(key) == "%" else 1.0
    hist = Counter({10.0: 5000})
    return {
        "counted": (scale, count_support(100000, 100000, "events", "good")),
        "percentile": (10.0, quantile_support(hist, percentile_of(key) or 0.95)),
        "mean": (10.0, mean_support([9.0, 10.0, 11.0] * 2000)),
    }


def test_every_kind_of_figure_is_covered() -> None:
    assert {_kind(k) for k in FIGURES} == {"percentile", "counted", "mean"}


@pytest.mark.parametrize("key", FIGURES)
def test_an_equality_on_a_figure_that_needs_a_bound_never_passes(key: str) -> None:
    for kind, (value, support) in _supports(key).items():
        for text in (f"== {value!r}", repr(value)):
            judged = judge(key, parse(text), value, support, 0.95)
            assert judged.state == "inconclusive", (key, kind, text, judged)
            assert "state it with" in judged.text
        # missed by the point estimate: a failure as always
        assert judge(key, parse(f"== {value * 2 + 1!r}"), value, support).state == "fail"


@pytest.mark.parametrize("key", FIGURES)
def test_an_inequality_passes_only_where_the_bound_shows_it(key: str) -> None:
    value, support = _supports(key)[_kind(key)]
    below = value / 2
    # far from the evidence: shown on the bound of the side the value lies on
    assert judge(key, parse(f"!= {below!r}"), value, support).state == "pass", key
    # next to the value: the bound reaches it, nothing is shown
    thin_value, thin = _thin(key)
    near = thin_value * (1.001 if _kind(key) == "percentile" else 0.999)
    judged = judge(key, parse(f"!= {near!r}"), thin_value, thin)
    assert judged.state == "inconclusive", (key, judged)
    # and with no evidence at all
    assert judge(key, parse(f"!= {below!r}"), value, None).state == "inconclusive", key


def _thin(key: str) -> tuple[float, dict[str, Any]]:
    """A little evidence of the figure's own kind."""
    kind = _kind(key)
    scale = 100.0 if key_unit(key) == "%" else 1.0
    if kind == "counted":
        return scale, count_support(3, 3, "events", "good")
    if kind == "percentile":
        # too few to bound the percentile from above
        return 10.0, quantile_support(Counter({10.0: 3}), percentile_of(key) or 0.95)
    return 10.0, mean_support([8.0, 12.0, 10.0])


@pytest.mark.parametrize("key", FIGURES)
@pytest.mark.parametrize("op", ["<=", ">="])
def test_a_figure_is_judged_only_on_evidence_of_its_own_kind(key: str, op: str) -> None:
    own = _kind(key)
    for kind, (value, support) in _supports(key).items():
        limit = value * 2 + 1 if op == "<=" else value / 2 - 1
        judged = judge(key, parse(f"{op} {limit!r}"), value, support, 0.95)
        if kind == own:
            assert judged.state == "pass", (key, kind, judged)
        else:
            assert judged.state == "inconclusive", (key, kind, judged)
        # against a baseline: the same, whatever the stored run holds
        reference = {**support, "histogram": support.get("histogram") or {}}
        text = "<= +10%" if op == "<=" else ">= -10%"
        compared = judge(key, parse(text), value, support, 0.95, value, reference=reference)
        if kind != own:
            assert compared.state == "inconclusive", (key, kind, compared)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_a_percentile_is_judged_only_on_the_bounds_of_its_own_quantile(q: float) -> None:
    # the p50's bound reported as the p95, p99: no bound of those
    hist = Counter({float(v): 10 for v in range(1, 301)})
    support = quantile_support(hist, q)
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        judged = judge(key, parse("< 10000ms"), 150.0, support, 0.95)
        expected = "pass" if percentile_of(key) == q else "inconclusive"
        assert judged.state == expected, (q, key, judged)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 40), min_size=1, max_size=40),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
    stamped=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]),
    level=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]),
    op=st.sampled_from(["<", "<=", ">", ">="]),
    at=st.integers(1, 40),
)
def test_a_percentile_is_bounded_at_the_level_it_is_judged_at(
    counts: list[int], q: float, stamped: float, level: float, op: str, at: int
) -> None:
    hist = Counter({float(i + 1): c for i, c in enumerate(counts) if c})
    if not hist:
        return
    n = sum(hist.values())
    value = stats.histogram_rank(hist, max(math.ceil(q * n), 1))
    threshold = parse(f"{op} {float(at)!r}")
    key = f"p{q * 100:g}_ms"
    asked = judge(key, threshold, value, quantile_support(hist, q, stamped), level)
    honest = judge(key, threshold, value, quantile_support(hist, q, level), level)
    assert asked.state == honest.state, (asked, honest)
    if asked.state == "pass":
        low, high = stats.quantile_bounds(hist, q, level)
        assert threshold.holds(key, high if op.startswith("<") else low)


def test_a_mean_reported_as_a_percentile_does_not_pass_its_standard(tmp_path: Path) -> None:
    (tmp_path / "incidents.csv").write_text(
        "id,started,resolved\n"
        + "".join(
            f"I{i},2026-11-0{1 + i % 9}T10:00:00Z,2026-11-0{1 + i % 9}T10:01:{10 + i:02d}Z\n"
            for i in range(40)
        )
    )
    (tmp_path / "uptime.csv").write_text("ok\n" + "1\n" * 30)
    cases = [
        ({"compute": "mttr", "as": "p95_ms"}, "incidents.csv", {"p95_ms": "< 500ms"}),
        ({"compute": "availability", "as": "mttr_s"}, "uptime.csv", {"mttr_s": "< 2m"}),
        (
            {"compute": "mttr", "as": "availability_pct"},
            "incidents.csv",
            {"availability_pct": ">= 5%"},
        ),
    ]
    for options, target, expect in cases:
        loader = GateLoader([], registry=CheckRegistry(), environ={})
        mapping = {"metric": target, **options, "expect": expect}
        spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "t.py", 1))
        context = CheckContext(rootdir=tmp_path, evidence_root=tmp_path / "evidence")
        result = run_check(CheckRegistry().get("metric")(spec, context), "t")
        assert result.outcome is Outcome.INCONCLUSIVE, (options, result.message)


def _entry(when: dt.datetime, outcome: str = "ok", **more: Any) -> dict[str, Any]:
    return {"time": when.isoformat(), "outcome": outcome, "type": "deploy", **more}


NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def _read(tmp_path: Path, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    store = HistoryStore(tmp_path)
    path = store.path("g", "c", "k")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return store.read("g", "c", "k")


@settings(max_examples=40, deadline=None)
@given(
    ages_h=st.lists(st.integers(-2000, 3000), min_size=1, max_size=30),
    failed=st.sets(st.integers(0, 29)),
    copies=st.lists(st.integers(0, 29), max_size=10),
    policy=st.sampled_from([{"since": "90d"}, {"since": "7d"}, {"last": 5}, {"last": 50}]),
)
def test_a_history_counts_each_success_once_and_none_from_the_future(
    tmp_path_factory: pytest.TempPathFactory,
    ages_h: list[int],
    failed: set[int],
    copies: list[int],
    policy: dict[str, Any],
) -> None:
    tmp_path = tmp_path_factory.mktemp("history")
    entries = [
        _entry(NOW - dt.timedelta(hours=h), "failed" if i in failed else "ok", run_id=f"r{i}")
        for i, h in enumerate(ages_h)
    ]
    forged = entries + [entries[i % len(entries)] for i in copies]
    judged = window(_read(tmp_path, forged), [], policy, now=NOW)
    ok = [e for e in judged.entries if e["outcome"] == "ok"]
    assert all(e["_time"] <= NOW for e in ok), ok
    assert len({e["run_id"] for e in ok}) == len(ok)
    if "since" in policy:
        start = NOW - dt.timedelta(days=float(policy["since"][:-1]))
        honest_ok = {
            e["run_id"]
            for e in entries
            if e["outcome"] == "ok" and start <= dt.datetime.fromisoformat(e["time"]) <= NOW
        }
        assert judged.succeeded == len(honest_ok)
        # every failure counts, repeated or not
        bad = [
            e
            for e in forged
            if e["outcome"] != "ok" and dt.datetime.fromisoformat(e["time"]) >= start
        ]
        assert judged.total - judged.succeeded == len(bad)


def _rank(histogram: dict[float, int], q: float) -> float:
    return stats.histogram_rank(histogram, max(1, math.ceil(q * sum(histogram.values()))))


@pytest.mark.parametrize("n", [50, 58, 72, 100, 150, 400])
@pytest.mark.parametrize("slow", [0.06, 0.08])
def test_a_slower_tail_too_thin_for_the_tests_is_no_pass(n: int, slow: float) -> None:
    """The slowest 6 % ten times slower: the p95 is ten times the baseline's, yet neither
    Mann-Whitney U (the bulk is unchanged) nor the order-statistic bounds (too few samples
    beyond the p95) call it significant. Not significant is no proof of no regression."""
    base = {20.0: n}
    k = max(1, round(n * slow))
    new = {20.0: n - k, 200.0: k}
    value = _rank(new, 0.95)
    support = quantile_support(Counter(new), 0.95)
    judged = judge(
        "p95_ms", parse("<= +0%"), value, support, 0.95, 20.0, reference={"histogram": base}
    )
    assert value == 200.0 and judged.state != "pass", judged


@pytest.mark.parametrize("stalled", [2, 4, 6])
def test_a_regression_that_comes_in_stalls_is_no_pass(stalled: int) -> None:
    """A new version that stalls now and then (a collector, a lock convoy): every request of
    a few of the run's time batches four times slower, clustered in time as a load burst of
    the machine is. The batches cannot tell the two apart: never a pass."""
    base: Counter[float] = Counter({float(v): 40 for v in range(15, 26)})
    batches = [
        {float(v * (4 if i % (20 // stalled) == 0 else 1)): 2 for v in range(15, 26)}
        for i in range(20)
    ]
    new: Counter[float] = Counter()
    for batch in batches:
        new.update(batch)
    support = {**quantile_support(new, 0.95), "batches": batches}
    value = _rank(dict(new), 0.95)
    judged = judge(
        "p95_ms", parse("<= +0%"), value, support, 0.95, 25.0, reference={"histogram": dict(base)}
    )
    assert value >= 60 and judged.state != "pass", judged


@settings(max_examples=80, deadline=None)
@given(
    base=st.dictionaries(st.integers(1, 60), st.integers(1, 30), min_size=1, max_size=20),
    new=st.dictionaries(st.integers(1, 200), st.integers(1, 30), min_size=1, max_size=20),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
    higher_better=st.booleans(),
)
def test_within_noise_passes_only_with_the_point_inside_the_baselines_bound(
    base: dict[int, int], new: dict[int, int], q: float, higher_better: bool
) -> None:
    b = {float(v): c for v, c in base.items()}
    h = {float(v): c for v, c in new.items()}
    key = f"p{q * 100:g}_ms"
    value = _rank(h, q)
    text = ">= -10%" if higher_better else "<= +10%"
    judged = judge(
        key,
        parse(text),
        value,
        quantile_support(Counter(h), q),
        0.95,
        _rank(b, q),
        reference={"histogram": b},
    )
    if judged.state == "pass":
        factor = 0.9 if higher_better else 1.1
        low, high = stats.quantile_bounds({v * factor: c for v, c in b.items()}, q, 0.975)
        assert (value >= low) if higher_better else (value <= high), judged


@settings(max_examples=80, deadline=None)
@given(
    n_base=st.integers(50, 3000),
    base_bad=st.floats(0.0, 0.2),
    n_new=st.integers(50, 3000),
    new_bad=st.floats(0.0, 0.5),
    higher_better=st.booleans(),
)
def test_a_share_within_noise_passes_only_with_the_point_inside_the_baselines_bound(
    n_base: int, base_bad: float, n_new: int, new_bad: float, higher_better: bool
) -> None:
    bad_base, bad_new = round(n_base * base_bad), round(n_new * new_bad)
    if higher_better:
        key, text = "availability_pct", ">= -0.1%"
        support = count_support(n_new - bad_new, n_new, "probes", "good")
        reference = {"count": [n_base - bad_base, n_base]}
        value, baseline = 100 * (1 - bad_new / n_new), 100 * (1 - bad_base / n_base)
    else:
        key, text = "failure_ratio", "<= +0%"
        support = count_support(bad_new, n_new, "requests", "failed")
        reference = {"count": [bad_base, n_base]}
        value, baseline = bad_new / n_new, bad_base / n_base
    judged = judge(key, parse(text), value, support, 0.95, baseline, reference=reference)
    if judged.state == "pass":
        allowed = max(bad_base * 1.1, bad_base + 0.001 * n_base if higher_better else 0)
        upper = stats.binomial_upper(min(math.ceil(allowed - 1e-9), n_base), n_base, 0.975)
        assert bad_new / n_new <= upper, judged


@pytest.mark.parametrize("compare", [{}, {"compare": "median", "last": 3}])
def test_a_failed_run_never_becomes_the_baseline_it_is_compared_with(
    tmp_path: Path, compare: dict[str, Any]
) -> None:
    """Saved with ``--gate-baseline-save`` after every run, a regressed run that FAILED would
    be the next run's reference, and the same regression would pass against itself."""
    store = BaselineStore(tmp_path)
    fast = {float(v): 30 for v in range(18, 23)}
    slow = {v * 2: c for v, c in fast.items()}

    def result(outcome: Outcome, hist: dict[float, int]) -> CheckResult:
        value = _rank(hist, 0.95)
        support = {"p95_ms": quantile_support(Counter(hist), 0.95), "rps": {}}
        measured = {"p95_ms": value, "rps": 100.0 if hist is fast else 60.0}
        return CheckResult(
            nodeid="n",
            gate="g",
            criterion="c",
            check_id="load[x]",
            outcome=outcome,
            measured=measured,
            support=support,
        )

    for outcome, hist in [(Outcome.PASSED, fast)] * 3 + [(Outcome.FAILED, slow)] * 3:
        store.save(result(outcome, hist), target="t", machine={}, commit={})
    spec = CheckSpec(
        type="load",
        target="t",
        id="load[x]",
        gate="g",
        criterion="c",
        source=Source(tmp_path / "g.yaml", 1),
        options={"baseline": compare} if compare else {},
    )
    new = result(Outcome.PASSED, slow)
    p95 = judge(
        "p95_ms",
        parse("<= +0%"),
        new.measured["p95_ms"],
        new.support["p95_ms"],
        0.95,
        store.lookup(spec, "p95_ms"),
        reference=store.distribution(spec, "p95_ms"),
    )
    assert p95.state == "fail", p95
    rps = judge(
        "rps",
        parse(">= -10%"),
        60.0,
        None,
        0.95,
        store.lookup(spec, "rps"),
        reference=store.distribution(spec, "rps"),
    )
    assert rps.state == "fail", rps


#: figures of a team's own, named as the docs name them: what kind each is
OWN_FIGURES = {
    "login_success_pct": "counted",
    "checkout_success_ratio": "counted",
    "uptime_pct": "counted",
    "GET /a::error_pct": "counted",
    "api_error_ratio": "counted",
    "cache_hit_pct": "counted",
    "page_p95_ms": "percentile",
    "latency_p99_ms": "percentile",
    "search_p99.9_ms": "percentile",
    "checkout_avg_ms": "mean",
    "restore_mean_s": "mean",
    "cpu_pct": "other",
    "disk_used_pct": "other",
    "forecast_error_pct": "other",
    "error_reduction_pct": "other",
    "max_mttr_s": "other",
    "requests": "other",
    "step_count": "other",
    # an endpoint's name is no part of the figure's name
    "GET /report_p95_x::avg_ms": "mean",
    "GET /p99_y::failure_ratio": "counted",
    "GET /success_pct::rps": "other",
    "GET /a_p50_b::p95_ms": "percentile",
}


@pytest.mark.parametrize(("key", "kind"), OWN_FIGURES.items())
def test_a_teams_own_share_percentile_or_mean_is_known_by_its_name(key: str, kind: str) -> None:
    """``gate_record("login_success_pct", 99.95)``: a share with no counts behind it, as the
    docs promise, INCONCLUSIVE; ``gate_record("page_p95_ms", samples=...)`` the p95 of the
    samples with its order-statistic bound, not their mean."""
    assert _kind(key) == kind
    if key.startswith("GET /a_p50_b"):
        assert percentile_of(key) == 0.95
    threshold = parse("< 1000000") if kind != "counted" else parse(">= 0.5")
    judged = judge(key, threshold, 99.95 if kind == "counted" else 20.0, None, 0.95)
    assert judged.state == ("pass" if kind == "other" else "inconclusive"), judged


def test_gate_record_of_a_teams_p95_records_the_p95_not_the_mean() -> None:
    samples = [10.0] * 90 + [1000.0] * 10
    value, support = supported_value("page_p95_ms", None, samples=samples)
    assert value == 1000.0 and "quantile" in support
    judged = judge("page_p95_ms", parse("< 200ms"), value, support, 0.95)
    assert judged.state == "fail", judged


PERCENT_SHARES = [k for k in FIGURES if counted(k) and key_unit(k.rsplit("::", 1)[-1]) == "%"]


@pytest.mark.parametrize("key", PERCENT_SHARES)
@pytest.mark.parametrize("text", [">= 0.999", "> 0.95", ">= 1", "> .5"])
def test_a_fraction_written_for_a_percentage_is_refused(key: str, text: str) -> None:
    """``availability_pct: ">= 0.999"`` is 0.999 %: 99 of 100 probes pass it. A share in %
    held from below by a bare number of at most 1 is a fraction meant as a percentage."""
    with pytest.raises(ThresholdError, match="did you mean"):
        parse(text).check_key(key)
    parse(text.replace(" ", " ") + "%").check_key(key)  # with its unit: as written
    parse(text.replace(">", "<")).check_key(key)  # from above: strict, never a slip to pass


def test_the_slip_is_one_line_naming_the_gate_file(tmp_path: Path) -> None:
    loader = GateLoader([], registry=CheckRegistry(), environ={})
    mapping = {
        "metric": "up.csv",
        "compute": "availability",
        "expect": {"availability_pct": ">= 0.999"},
    }
    with pytest.raises(SourceError) as info:
        loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "g.yaml", 7))
    assert "g.yaml:7" in str(info.value) and "'>= 99.9%'" in str(info.value)
    assert "\n" not in str(info.value)


@settings(max_examples=80, deadline=None)
@given(
    nines=st.integers(2, 7),
    bad=st.integers(0, 30),
    total_exp=st.integers(3, 12),
    level=st.sampled_from([0.9, 0.95, 0.99, 0.999, 0.9999999]),
)
def test_the_bound_a_message_shows_agrees_with_the_verdict(
    nines: int, bad: int, total_exp: int, level: float
) -> None:
    """``>= 99.99 %`` shown for a bound that passes ``>= 99.9999%`` reads as a pass without
    proof; ``at 100 % confidence`` as a certainty no sample gives."""
    total = 10**total_exp
    limit = 100 - 10 ** (2 - nines)
    threshold = parse(f">= {limit!r}%")
    support = count_support(total - min(bad, total), total, "probes", "good")
    value = 100 * (total - min(bad, total)) / total
    judged = judge("availability_pct", threshold, value, support, level)
    if judged.state in ("pass", "inconclusive"):
        shown = float(judged.text.split(": >= ", 1)[1].split(" %", 1)[0])
        assert threshold.holds("availability_pct", shown) == (judged.state == "pass"), judged
        assert f"at {level * 100:.10g} % confidence" in judged.text, judged


@pytest.mark.parametrize("nines", range(6, 13))
def test_percentile_bounds_hold_their_confidence_up_to_the_highest_level_accepted(
    nines: int,
) -> None:
    """The exact sums of the binomial near 1 resolve a level of 99.9999999 %, not one of
    99.9999999999 %: a level beyond what they resolve is refused, not met by rounding."""
    from scipy.stats import binom

    text = f"{100 - 10 ** (2 - nines):.12f}%"
    try:
        confidence = parse_confidence(text)
    except ValueError:
        assert nines > 9
        return
    for n in (200, 1000, 5000, 19000, 30000):
        for q in (0.5, 0.9, 0.95, 0.99):
            low, high = stats.quantile_ranks(n, q, confidence)
            if high is not None:
                assert binom.cdf(high - 1, n, q) >= confidence * (1 - 1e-15), (n, q)
            if low is not None:
                assert binom.cdf(low - 1, n, q) <= (1 - confidence) * (1 + 1e-6), (n, q)


JUNIT_DATA = Path(__file__).parent / "data" / "junit"


@pytest.mark.parametrize("name", sorted(p.name for p in JUNIT_DATA.glob("*.xml")))
def test_a_junit_file_matched_twice_counts_once(tmp_path: Path, name: str) -> None:
    """``reports/**/*.xml`` matching a results file and its copy (an artifact folder, a
    merged download) doubles the passed tests behind ``pass_ratio``: the copy counts once."""
    from pytest_fwgates.checks.junit import JUnitCheck

    text = (JUNIT_DATA / name).read_bytes()
    for folder in ("results", "results/copy", "results/copy/again"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / name).write_bytes(text)

    def run(target: str) -> CheckResult:
        loader = GateLoader([], registry=CheckRegistry(), environ={})
        mapping = {"junit": target, "expect": {"tests": ">= 1"}}
        spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "g.yaml", 1))
        return run_check(JUnitCheck(spec, CheckContext(rootdir=tmp_path)), "junit")

    once, thrice = run(f"results/{name}"), run("results/**/*.xml")
    for key in ("tests", "passed", "failures", "errors", "skipped", "pass_ratio"):
        assert thrice.measured[key] == once.measured[key], key
    assert thrice.support.get("pass_ratio") == once.support.get("pass_ratio")
    assert thrice.measured["files"] == 1


@pytest.mark.parametrize(
    ("compute", "header", "row"),
    [
        ("mttr", "id,started,resolved", "2026-11-01T10:00:00Z,2026-11-01T10:01:00Z"),
        ("availability", "id,ok", "1"),
        ("accuracy", "id,label,predicted", "yes,yes"),
        ("share", "id,ok", "yes"),
    ],
)
@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_record_whose_id_appears_twice_is_an_error_naming_its_line(
    tmp_path: Path, compute: str, header: str, row: str, suffix: str
) -> None:
    """Records with ids (``INC-1``) counted once each: the same incident or probe twice (a
    file appended to twice, two exports merged) would count as more evidence."""
    names = header.split(",")
    rows = [[f"R-{i}", *row.split(",")] for i in range(5)] + [["R-2", *row.split(",")]]
    if suffix == "csv":
        text = header + "\n" + "".join(",".join(r) + "\n" for r in rows)
    else:
        text = "".join(json.dumps(dict(zip(names, r, strict=True))) + "\n" for r in rows)
    (tmp_path / f"records.{suffix}").write_text(text)
    loader = GateLoader([], registry=CheckRegistry(), environ={})
    mapping = {"metric": f"records.{suffix}", "compute": compute}
    spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "g.yaml", 1))
    context = CheckContext(rootdir=tmp_path, evidence_root=tmp_path / "evidence")
    result = run_check(CheckRegistry().get("metric")(spec, context), "t")
    assert result.outcome is Outcome.ERROR, result.message
    line = 7 if suffix == "csv" else 6
    assert f"records.{suffix}:{line}:" in result.message and "R-2" in result.message
    assert f"first at line {4 if suffix == 'csv' else 3}" in result.message
