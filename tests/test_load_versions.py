"""Locust's answers split by version: the listener's per-version accounting (in a Locust
process of its own: importing Locust patches the standard library) and how a deploy's
analysis turns two progress figures into the samples the canary judge takes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates.checks.progressive import load_samples
from pytest_fwgates.locust_run import LoadPlan

ROOT = Path(__file__).resolve().parents[1]

# fires Locust's own request event with real responses (requests' Response, as HttpUser's);
# a worker's report then reaches the master's figures through the listener's own handlers
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from locust import events  # first: it patches the standard library
    import requests
    sys.path.insert(0, sys.argv[1])
    import pytest_fwgates.locust_listener as listener

    def answer(version):
        response = requests.Response()
        response.status_code = 200
        if version is not None:
            response.headers["X-App-Version"] = version
        return response

    def fire(version, ms, failed=False):
        events.request.fire(
            request_type="GET", name="/work", response_time=ms, response_length=0,
            exception=RuntimeError("500") if failed else None, context={},
            response=answer(version),
        )

    fire("v1", 10.4); fire("v1", 10.6); fire("v2", 30.0, failed=True); fire("v2", 12.0)
    fire(None, 5.0, failed=True)
    for name in ("v3", "v4", "v5", "v6"):
        fire(name, 1.0)
    fire("x" * 500, 2.0)
    local = listener._versions_json()
    # a worker: what it saw goes with its report, and the master merges it
    listener._state["worker"] = True
    fire("v2", 14.0)
    data = {}
    listener._on_report_to_master(client_id="w", data=data)
    listener._state["worker"] = False
    listener._on_worker_report(client_id="w", data=json.loads(json.dumps(data)))
    print(json.dumps({"local": local, "merged": listener._versions_json(),
                      "pending": listener._pending_versions}))
    """
)


def test_listener_counts_requests_failures_and_times_per_version(tmp_path: Path) -> None:
    env = {"FWGATES_LOAD_VERSION_HEADER": "x-app-version", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    local = found["local"]
    # header names are case-insensitive; the times of good answers only, at 1 ms
    assert local["v1"] == {"n": 2, "fail": 0, "hist": {"10": 1, "11": 1}}
    assert local["v2"] == {"n": 2, "fail": 1, "hist": {"12": 1}}
    assert local[""] == {"n": 1, "fail": 1, "hist": {}}
    # at most four versions (the missing header is one): the rest, long ones too, as "other"
    assert set(local) == {"v1", "v2", "", "v3", "other"}
    assert local["other"]["n"] == 4
    assert all(len(name) <= 64 for name in local)
    merged = found["merged"]
    assert merged["v2"] == {"n": 3, "fail": 1, "hist": {"12": 1, "14": 1}}
    assert found["pending"] == {}


def test_without_the_header_setting_the_listener_counts_no_versions(tmp_path: Path) -> None:
    script = SCRIPT.replace(
        'fire("v1", 10.4)', 'assert not listener._VERSION_HEADER; fire("v1", 10.4)'
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["local"] == {}


def test_the_header_name_reaches_locust_as_data() -> None:
    assert LoadPlan.__dataclass_fields__["version_header"].default == ""


def _figures(counts: dict[str, tuple[int, int, dict[int, int]]]) -> dict[str, object]:
    return {
        v: {"n": n, "fail": f, "hist": {str(ms): c for ms, c in h.items()}}
        for v, (n, f, h) in counts.items()
    }


def test_samples_are_the_step_s_share_and_strangers_count_against_the_canary() -> None:
    base = _figures({"v1": (10, 1, {5: 9}), "v2": (4, 0, {7: 4})})
    latest = _figures(
        {
            "v1": (30, 2, {5: 20, 6: 8}),
            "v2": (14, 5, {7: 6, 9: 3}),
            "": (3, 3, {}),
            "v9": (2, 0, {1: 2}),
        }
    )
    canary, stable, neither = load_samples(latest, base, "v2", "v1")
    assert (stable.answers, stable.failed) == (20, 1)
    assert sorted(stable.latencies_ms) == [5.0] * 11 + [6.0] * 8
    assert (canary.answers, canary.failed, neither) == (10 + 5, 5 + 5, 5)
    assert sorted(canary.latencies_ms) == [7.0, 7.0, 9.0, 9.0, 9.0]
    # malformed figures count as nothing, never as good answers
    assert load_samples("x", None, "v2", "v1")[0].answers == 0
    assert load_samples({"v2": "bad"}, {}, "v2", "v1")[0].answers == 0


counts = st.tuples(
    st.integers(0, 50),
    st.integers(0, 50),
    st.dictionaries(st.integers(0, 30), st.integers(1, 9), max_size=4),
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["v1", "v2", "", "other", "v3"]), counts, max_size=5),
    st.dictionaries(st.sampled_from(["v1", "v2", "", "other", "v3"]), counts, max_size=5),
)
def test_every_request_of_the_step_is_counted_once(before: dict, extra: dict) -> None:
    # cumulative figures only grow: latest = before + what the step added
    latest = {}
    for version in set(before) | set(extra):
        n0, f0, h0 = before.get(version, (0, 0, {}))
        n1, f1, h1 = extra.get(version, (0, 0, {}))
        hist = {ms: h0.get(ms, 0) + h1.get(ms, 0) for ms in set(h0) | set(h1)}
        latest[version] = (n0 + n1, f0 + f1, hist)
    canary, stable, neither = load_samples(_figures(latest), _figures(before), "v2", "v1")
    added = {v: extra.get(v, (0, 0, {})) for v in latest}
    assert canary.answers + stable.answers == sum(n for n, _, _ in added.values())
    assert neither == sum(n for v, (n, _, _) in added.items() if v not in ("v1", "v2"))
    assert (
        stable.failed == min(added["v1"][1], added["v1"][0])
        if "v1" in added
        else stable.failed == 0
    )
    assert len(stable.latencies_ms) == sum(added.get("v1", (0, 0, {}))[2].values())


def _hist(good: int) -> dict[str, int]:
    return {"10": good // 2, "11": good - good // 2}


@pytest.mark.parametrize(
    ("canary", "stable", "stranger", "prober", "proof", "outcome"),
    [
        ((300, 0), (300, 0), 0, "pass", True, "pass"),
        ((300, 0), (300, 0), 0, "pass", False, "inconclusive"),  # no proof before proof looks
        ((300, 0), (300, 0), 0, "inconclusive", True, "inconclusive"),
        ((300, 0), (300, 0), 0, "fail", True, "fail"),  # the prober's abort stands
        ((200, 100), (300, 0), 0, "pass", True, "fail"),  # half the canary's requests failed
        ((200, 100), (300, 0), 0, "inconclusive", False, "fail"),  # aborts at any look
        ((300, 0), (300, 0), 100, "pass", True, "fail"),  # answers naming no version
        ((5, 0), (5, 0), 0, "pass", True, "inconclusive"),  # too few to show anything
        ((0, 0), (0, 0), 0, "pass", True, "inconclusive"),  # Locust answered nothing
    ],
)
def test_the_split_load_is_judged_like_the_prober_s_answers(
    canary: tuple[int, int],
    stable: tuple[int, int],
    stranger: int,
    prober: str,
    proof: bool,
    outcome: str,
) -> None:
    from pytest_fwgates.canary_judge import Verdict, parse_increase
    from pytest_fwgates.checks.progressive import Analysis, Step, StepRecord, _Steps

    steps = _Steps.__new__(_Steps)
    steps.analysis = Analysis(
        parse_increase("5%", rate=True), parse_increase("+100%", rate=False), 20, 1.0, 0.95
    )
    steps.analysis.load_version_header = "X-App-Version"
    steps.new, steps.old = "v2", "v1"
    base = {"v1": {"n": 4, "fail": 1, "hist": {"9": 3}}}
    versions = {
        "v1": {"n": 4 + sum(stable), "fail": 1 + stable[1], "hist": {"9": 3, **_hist(stable[0])}},
        "v2": {"n": sum(canary), "fail": canary[1], "hist": _hist(canary[0])},
        "": {"n": stranger, "fail": stranger, "hist": {}},
    }

    class Load:
        latest = {"versions": versions}

    steps.load = Load()  # type: ignore[assignment]
    record = StepRecord(Step(1, 50.0, None, 1.0), 0.0, load_at={"versions": base})
    verdict = Verdict(prober)
    steps._judge_load_versions(record, verdict, proof=proof)
    assert verdict.outcome == outcome, verdict.reasons
    split = record.last_load["by_version"]
    assert split["canary"]["answers"] == sum(canary) + stranger
    assert split["stable"]["answers"] == sum(stable)
    if outcome == "fail" and prober != "fail":
        assert verdict.reasons[0].startswith("under load, v2 against v1: ")
        assert verdict.failed_rules[0].startswith("load.")


def test_two_judges_that_can_each_abort_share_the_look_s_error_rate() -> None:
    from pytest_fwgates.checks.progressive import Analysis

    analysis = Analysis(None, None, 20, 1.0, 0.95, looks_planned=10)
    alone = analysis.alpha
    analysis.load_version_header = "X-App-Version"
    assert analysis.alpha == pytest.approx(alone / 2) and alone == pytest.approx(0.005)
    assert analysis.proof_alpha == pytest.approx(0.05)  # a pass needs both: no split
