"""The ``junit`` check type: JUnit XML of pytest, Node's test runner, Surefire, Jest, gotestsum."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_fwgates.checks import CheckContext, run_check
from pytest_fwgates.checks.junit import JUnitCheck
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Outcome, Source

DATA = Path(__file__).parent / "data" / "junit"

APP_TESTS = """
import pytest

def test_one(): pass
def test_two(): pass
def test_three(): pass
def test_broken(): assert 1 + 1 == 3
@pytest.mark.skip(reason="a skipped case the junit check must count")
def test_later(): pass
"""

NODE_TESTS = """
import test from 'node:test';
import assert from 'node:assert';
test('adds', () => assert.equal(1 + 1, 2));
test('subtracts', () => assert.equal(2 - 1, 1));
test('fails', () => assert.equal(1 + 1, 3));
test('later', { skip: true }, () => {});
"""


def judge(root: Path, check: dict[str, Any]) -> CheckResult:
    """Run one junit check, validated like a gate file's, with ``root`` as the rootdir."""
    spec = GateLoader([], environ={}).spec_from_mapping(
        None, None, check, Source(root / "gate.yaml", 1)
    )
    return run_check(JUnitCheck(spec, CheckContext(rootdir=root)), "junit")


def pytest_junit(root: Path) -> Path:
    """JUnit XML written by a real pytest run."""
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "test_app.py").write_text(textwrap.dedent(APP_TESTS))
    out = root / "results" / "pytest.xml"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:fwgates",
         f"--junitxml={out}", "app/test_app.py"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout  # one test fails
    return out


def node_junit(root: Path) -> Path:
    """JUnit XML written by Node's own test runner (node --test --test-reporter=junit)."""
    node = shutil.which("node")
    assert node, "Node.js is needed (installed by .ci/run and make system-deps)"
    (root / "js").mkdir(exist_ok=True)
    (root / "js" / "math.test.mjs").write_text(textwrap.dedent(NODE_TESTS))
    out = root / "results" / "node.xml"
    out.parent.mkdir(exist_ok=True)
    subprocess.run(
        [node, "--test", "--test-reporter=junit", f"--test-reporter-destination={out}",
         "js/math.test.mjs"],
        cwd=root, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.is_file() and out.stat().st_size > 0
    return out


def test_reads_a_file_written_by_pytest(tmp_path: Path) -> None:
    pytest_junit(tmp_path)
    result = judge(tmp_path, {"junit": "results/pytest.xml"})
    assert result.outcome is Outcome.FAILED
    measured = result.measured
    assert (measured["tests"], measured["failures"], measured["errors"]) == (5, 1, 0)
    assert (measured["skipped"], measured["passed"]) == (1, 3)
    assert measured["pass_ratio"] == pytest.approx(0.6)
    assert "failures = 1, expected == 0" in result.message
    assert measured["failing_tests"] == ["app.test_app::test_broken"]
    assert (
        Path(result.evidence["junit-00"]).read_bytes()
        == (tmp_path / "results" / "pytest.xml").read_bytes()
    )


def test_thresholds_on_counts_and_pass_ratio(tmp_path: Path) -> None:
    pytest_junit(tmp_path)
    lenient = {"failures": "<= 1", "pass_ratio": ">= 15%", "tests": ">= 5", "skipped": "<= 1"}
    assert judge(tmp_path, {"junit": "results/pytest.xml", "expect": lenient}).outcome is (
        Outcome.PASSED
    )
    # 3 of 5 passed meets 60 %, but shows only >= 18.9 % at 95 % confidence
    met = dict(lenient, pass_ratio=">= 60%")
    result = judge(tmp_path, {"junit": "results/pytest.xml", "expect": met})
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.message.startswith("pass_ratio 3/5 tests passed: >= 0.1892 at 95 % confidence")
    strict = {"failures": "<= 1", "pass_ratio": ">= 99%"}
    result = judge(tmp_path, {"junit": "results/pytest.xml", "expect": strict})
    assert result.outcome is Outcome.FAILED
    assert "pass_ratio = 0.6, expected >= 99%" in result.message


def test_reads_a_file_written_by_nodes_test_runner_and_globs_several(tmp_path: Path) -> None:
    node_junit(tmp_path)
    result = judge(
        tmp_path, {"junit": "results/node.xml", "expect": {"failures": "== 1", "skipped": "== 1"}}
    )
    assert result.outcome is Outcome.PASSED, result.message
    assert (result.measured["tests"], result.measured["skipped"]) == (4, 1)
    pytest_junit(tmp_path)
    both = judge(
        tmp_path, {"junit": "results/*.xml", "expect": {"failures": "== 2", "skipped": "== 2"}}
    )
    assert both.outcome is Outcome.PASSED, both.message
    assert (both.measured["tests"], both.measured["files"]) == (9, 2)


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        # a flakyFailure that passed on retry counts as passed, and as flaky
        ("surefire-TEST-com.example.AppTest.xml", (5, 1, 1, 1, 2)),
        ("jest-junit.xml", (4, 0, 0, 1, 3)),
        ("gotestsum.xml", (3, 0, 0, 0, 3)),
        # DISABLED_ (notrun/suppressed) and GTEST_SKIP (result="skipped") are not passes
        ("googletest.xml", (5, 0, 0, 2, 3)),
        ("googletest-all-disabled.xml", (2, 0, 0, 2, 0)),
        # Ant's merged report: a class that failed to load is an <error> of its suite
        ("ant-TESTS-TestSuites.xml", (3, 0, 1, 0, 2)),
        # go-junit-report: a package that did not build
        ("go-junit-report-build-failed.xml", (2, 0, 1, 0, 1)),
    ],
)
def test_reads_other_tools_formats(
    tmp_path: Path, name: str, counts: tuple[int, int, int, int, int]
) -> None:
    shutil.copy(DATA / name, tmp_path / name)
    result = judge(tmp_path, {"junit": name, "expect": {"tests": ">= 1"}})
    got = tuple(int(result.measured[k]) for k in ("tests", "failures", "errors", "skipped"))
    assert (*got, int(result.measured["passed"])) == counts
    assert result.measured["flaky"] == (1 if name.startswith("surefire") else 0)
    # the defaults: a passed test, no failure, no error
    clean = counts[1:3] == (0, 0) and counts[4] >= 1
    assert result.outcome is (Outcome.PASSED if clean else Outcome.FAILED), result.message
    strict = judge(tmp_path, {"junit": name, "expect": {"skipped": "== 0"}})
    assert strict.outcome is (Outcome.PASSED if clean and not counts[3] else Outcome.FAILED)


CASE_SHAPES = {
    "passed": ('<testcase name="t"/>', "passed"),
    "failure": ('<testcase name="t"><failure message="x"/></testcase>', "failures"),
    "error": ('<testcase name="t"><error message="x"/></testcase>', "errors"),
    "skipped": ('<testcase name="t"><skipped/></testcase>', "skipped"),
    "pytest-xfail": ('<testcase name="t"><skipped type="pytest.xfail" message="x"/></testcase>',
                     "skipped"),
    "gtest-disabled": ('<testcase name="t" status="notrun" result="suppressed"/>', "skipped"),
    "gtest-skip": ('<testcase name="t" status="run" result="skipped"/>', "skipped"),
    "status-skipped": ('<testcase name="t" status="skipped"/>', "skipped"),
    "status-disabled": ('<testcase name="t" status="disabled"/>', "skipped"),
    # passed on a rerun: a pass in the counts, a failure of the check (flaky: "== 0")
    "flaky-then-passed": ('<testcase name="t"><flakyFailure message="x"/></testcase>', "passed"),
    "flaky-error": ('<testcase name="t"><flakyError message="x"/></testcase>', "passed"),
    "suite-error": ('<error message="class did not load"/>', "errors"),
    "suite-failure": ('<failure message="setUpClass failed"/>', "failures"),
}  # fmt: skip


@pytest.mark.parametrize("wrapped", [False, True], ids=["testsuite", "testsuites"])
@pytest.mark.parametrize("shape", sorted(CASE_SHAPES))
def test_every_way_a_test_case_ends_is_counted_once_and_only_passes_pass(
    tmp_path: Path, shape: str, wrapped: bool
) -> None:
    """Each shape beside one passing test, in a suite and in a merged <testsuites>: only a
    passed case leaves a check that forbids skips passing."""
    element, key = CASE_SHAPES[shape]
    suite = f'<testsuite name="s"><testcase name="ok"/>{element}</testsuite>'
    (tmp_path / "r.xml").write_text(f"<testsuites>{suite}</testsuites>" if wrapped else suite)
    result = judge(tmp_path, {"junit": "r.xml", "expect": {"skipped": "== 0"}})
    measured = {k: int(result.measured[k]) for k in ("failures", "errors", "skipped", "passed")}
    expected = {"failures": 0, "errors": 0, "skipped": 0, "passed": 1}
    expected[key] += 1
    assert measured == expected
    flaky = shape.startswith("flaky")
    assert int(result.measured["flaky"]) == int(flaky)
    assert result.outcome is (Outcome.PASSED if key == "passed" and not flaky else Outcome.FAILED)


def test_attributes_that_say_worse_than_the_test_cases_count(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text(
        '<testsuite name="s" tests="2" errors="1"><testcase name="ok"/></testsuite>'
    )
    result = judge(tmp_path, {"junit": "r.xml"})
    assert (result.measured["tests"], result.measured["errors"]) == (2, 1)
    assert result.outcome is Outcome.FAILED


def test_a_pytest_run_whose_tests_were_all_skipped_does_not_pass(tmp_path: Path) -> None:
    (tmp_path / "test_skipped.py").write_text(
        "import pytest\npytestmark = pytest.mark.skip(reason='not today')\n"
        "def test_a(): pass\ndef test_b(): pass\n"
    )
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:fwgates",
         "--junitxml=all-skipped.xml", "test_skipped.py"],
        cwd=tmp_path, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    result = judge(tmp_path, {"junit": "all-skipped.xml"})
    assert (result.measured["tests"], result.measured["skipped"]) == (2, 2)
    assert result.measured["passed"] == 0
    assert result.outcome is Outcome.FAILED
    assert "passed = 0, expected >= 1" in result.message


def test_suite_attributes_count_when_there_are_no_test_cases(tmp_path: Path) -> None:
    (tmp_path / "summary.xml").write_text(
        '<testsuites><testsuite name="a" tests="10" failures="0" errors="0" skipped="2"/>'
        '<testsuite name="b" tests="5" failures="1" errors="0" disabled="1"/></testsuites>'
    )
    result = judge(
        tmp_path, {"junit": "summary.xml", "expect": {"failures": "<= 1", "skipped": "<= 3"}}
    )
    assert result.outcome is Outcome.PASSED
    assert (result.measured["tests"], result.measured["skipped"]) == (15, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "results/missing.xml: no such JUnit XML file"),
        (b"", "empty file, not JUnit XML"),
        (b"<testsuite><testcase name='a'>", "malformed XML"),
        (b"<html><body>502 Bad Gateway</body></html>", "root element <html> is not"),
        (b'<testsuite tests="lots"/>', "attribute tests='lots' of <testsuite> is not a number"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;">]><testsuite name="&lol2;"/>',
            "refused: DTDForbidden",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<testsuite name='&x;'/>",
            "refused: DTDForbidden",
        ),
    ],
    ids=["missing", "empty", "truncated", "not-junit", "bad-count", "entity-bomb", "external"],
)
def test_bad_files_are_errors_naming_the_file(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    target = tmp_path / "results" / "missing.xml"
    if content is not None:
        target.parent.mkdir()
        target.write_bytes(content)
    result = judge(tmp_path, {"junit": "results/missing.xml"})
    assert result.outcome is Outcome.ERROR
    assert message in result.message
    if content is not None:
        assert str(target) in result.message


def test_a_glob_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    result = judge(tmp_path, {"junit": "build/**/TEST-*.xml"})
    assert result.outcome is Outcome.ERROR
    assert result.message == "build/**/TEST-*.xml: no JUnit XML file matches"


def test_min_files(tmp_path: Path) -> None:
    shutil.copy(DATA / "gotestsum.xml", tmp_path / "a.xml")
    result = judge(tmp_path, {"junit": "*.xml", "min_files": 2})
    assert result.outcome is Outcome.ERROR
    assert "1 file(s) match, 2 expected" in result.message


@pytest.mark.parametrize(
    ("standard", "status", "verdict"), [(">= 20%", 0, "PASS"), (">= 75%", 7, "INCONCLUSIVE")]
)
def test_junit_check_in_a_gate_run(
    pytester: pytest.Pytester, standard: str, status: int, verdict: str
) -> None:
    """From a gate file, through collection, to the verdict: 3 of 4 tests passed meet 75 %
    but show only 24.9 % at 95 % confidence (INCONCLUSIVE, exit 7)."""
    shutil.copy(DATA / "jest-junit.xml", pytester.path / "jest.xml")
    pytester.makefile(
        ".yaml",
        **{
            "gates/release": f"""
            gate: release
            criteria:
              tests-pass:
                - junit: jest.xml
                  expect: {{pass_ratio: "{standard}", skipped: "<= 1"}}
            """.replace("\n            ", "\n")
        },
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--gate=release")
    assert result.ret == status, result.stdout.str()
    result.stdout.fnmatch_lines([f"*tests-pass*required*{verdict}"])
    summary = json.loads((pytester.path / "reports" / "summary.json").read_text())
    assert summary["verdict"] == ("PASSED" if status == 0 else "INCONCLUSIVE")
    check = summary["gates"][0]["criteria"][0]["checks"][0]
    assert check["measured"]["pass_ratio"] == 0.75
    assert check["support"]["pass_ratio"]["count"] == [3, 4]
    assert check["thresholds"]["pass_ratio"] == standard


def test_a_test_that_passed_only_on_a_rerun_fails_the_check_unless_accepted(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.xml").write_text(
        '<testsuite name="s"><testcase name="ok"/><testcase name="t" classname="c">'
        '<flakyFailure message="timeout"/></testcase></testsuite>'
    )
    result = judge(tmp_path, {"junit": "r.xml"})
    assert result.outcome is Outcome.FAILED
    assert "c::t (passed on a rerun)" in result.measured["failing_tests"]
    accepted = judge(tmp_path, {"junit": "r.xml", "expect": {"flaky": "<= 1"}})
    assert accepted.outcome is Outcome.PASSED, accepted.message


@pytest.mark.parametrize(
    "document",
    [
        # an outer suite's attributes report an error no nested suite shows
        '<testsuites><testsuite name="outer" tests="2" errors="1"><testsuite name="inner"'
        ' tests="1"><testcase name="a"/></testsuite></testsuite></testsuites>',
        # the totals of <testsuites> report failures its suites do not show
        '<testsuites tests="3" failures="2"><testsuite name="inner" tests="1">'
        '<testcase name="a"/></testsuite></testsuites>',
    ],
    ids=["outer-suite", "testsuites-totals"],
)
def test_counts_stated_by_an_enclosing_suite_are_not_lost(tmp_path: Path, document: str) -> None:
    (tmp_path / "r.xml").write_text(document)
    result = judge(tmp_path, {"junit": "r.xml"})
    assert result.measured["failures"] + result.measured["errors"] >= 1
    assert result.outcome is Outcome.FAILED
