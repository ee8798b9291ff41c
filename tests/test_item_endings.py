"""Every way pytest can end, repeat or never run an item, crossed with the two kinds of gate
evidence (a YAML check and a marked Python test): the gate is never PASSED where pytest saw a
failure, or an item that never ran.

Each case builds the same gate: criterion ``build`` with a passing check, criterion ``smoke``
with a passing check ``anchor`` and the *target* (a YAML check ``target`` or a marked test
``test_target``). A conftest, options or the target's own code make the target end the way
the case names. Only the control case may pass.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import xmlschema

from pytest_fwgates.model import EXIT_PASSED

if TYPE_CHECKING:
    from conftest import GateProject

XSD = Path(__file__).parent / "data" / "junit-10.xsd"

#: a command and a test body that fail the first time (no flag file yet) and pass after
FLAKY_CMD = 'if [ -e "$FWGATES_TEST_FLAG" ]; then exit 0; fi; : > "$FWGATES_TEST_FLAG"; exit 1'
FLAKY_BODY = """
    flag = os.environ["FWGATES_TEST_FLAG"]
    if not os.path.exists(flag):
        open(flag, "w").close()
        assert False, "first attempt fails"
"""
#: fails on the second xdist worker only
GW1_CMD = 'test "$PYTEST_XDIST_WORKER" != gw1'
GW1_BODY = """
    assert os.environ.get("PYTEST_XDIST_WORKER") != "gw1", "fails on gw1"
"""

HOOK_HEAD = """
import os
import pytest

TARGET = {"target", "test_target"}
"""


def hook(body: str) -> str:
    return HOOK_HEAD + textwrap.dedent(body)


SETUP_ERROR = hook(
    """
    def pytest_runtest_setup(item):
        if item.name in TARGET:
            raise RuntimeError("setup broke")
    """
)
TEARDOWN_ERROR = hook(
    """
    def pytest_runtest_teardown(item):
        if item.name in TARGET:
            raise RuntimeError("teardown broke")
    """
)
MARK = """
    def pytest_collection_modifyitems(items):
        for item in items:
            if item.name in TARGET:
                item.add_marker({})
    """
SKIP_MARK = hook(MARK.format('pytest.mark.skip(reason="not today")'))
XFAIL_MARK = hook(MARK.format("pytest.mark.xfail"))
XFAIL_STRICT_MARK = hook(MARK.format("pytest.mark.xfail(strict=True)"))
IGNORE_GATE_FILE = hook(
    """
    def pytest_ignore_collect(collection_path):
        return collection_path.name == "release.yaml" or None
    """
)
DROPPED = hook(
    """
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(items):
        items[:] = [item for item in items if item.name not in TARGET]
    """
)
#: a flaky-style plugin: reruns a failed item and logs only the last attempt
SILENT_RERUN = hook(
    """
    from _pytest.runner import runtestprotocol

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(item, nextitem):
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if any(report.failed for report in reports):
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True
    """
)
#: a report made failed and turned into a pass before it is logged
REWRITTEN = hook(
    """
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(item, call):
        report = yield
        if item.name in TARGET and report.failed:
            report.outcome, report.longrepr = "passed", None
        return report
    """
)
#: a protocol that runs nothing and logs a pass it made itself
FABRICATED_PASS = hook(
    """
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(item, nextitem):
        if item.name not in TARGET:
            return None
        for when in ("setup", "call", "teardown"):
            report = pytest.TestReport(item.nodeid, item.location, {}, "passed", None, when)
            item.ihook.pytest_runtest_logreport(report=report)
        return True
    """
)
CRASH_SETUP = hook(
    """
    def pytest_runtest_setup(item):
        if item.name in TARGET:
            os._exit(1)
    """
)
GROUP = hook(MARK.format('pytest.mark.xdist_group("g")'))


@dataclass
class Case:
    #: the YAML target's command
    cmd: str = "true"
    #: the Python target's body, decorators and module prefix
    body: str = "pass"
    decorators: str = ""
    prefix: str = ""
    conftest: str = ""
    args: list[str] = field(default_factory=list)
    #: a first run (with these options) before the one judged, for --lf and --sw
    first: list[str] | None = None
    #: a failing check in criterion build, before the target
    broken_build: bool = False
    #: for one kind only
    only: str | None = None
    passes: bool = False


XDIST = ["-n", "2"]
CASES: dict[str, Case] = {
    "pass": Case(passes=True),
    "fail": Case(cmd="false", body="assert False"),
    "setup-error": Case(conftest=SETUP_ERROR),
    "teardown-error": Case(conftest=TEARDOWN_ERROR),
    "skip-test": Case(conftest=SKIP_MARK, body='pytest.skip("not today")'),
    "skip-module": Case(prefix='pytest.skip("not here", allow_module_level=True)', only="python"),
    "skip-collection": Case(prefix='pytest.importorskip("fwgates_no_such_module")', only="python"),
    "ignored-gate-file": Case(conftest=IGNORE_GATE_FILE, only="yaml"),
    "xfail": Case(cmd="false", body="assert False", conftest=XFAIL_MARK),
    "xpass": Case(conftest=XFAIL_MARK),
    "xpass-strict": Case(conftest=XFAIL_STRICT_MARK),
    "rerun": Case(cmd=FLAKY_CMD, body=FLAKY_BODY, args=["--reruns", "1"]),
    "silent-rerun": Case(cmd=FLAKY_CMD, body=FLAKY_BODY, conftest=SILENT_RERUN),
    "fabricated-pass": Case(cmd="false", body="assert False", conftest=FABRICATED_PASS),
    "rewritten-report": Case(cmd="false", body="assert False", conftest=REWRITTEN),
    "keyword": Case(args=["-k", "not target"]),
    "deselect": Case(args=["--deselect", "{target}"]),
    "dropped": Case(conftest=DROPPED),
    "exitfirst": Case(broken_build=True, args=["-x"]),
    "maxfail": Case(broken_build=True, args=["--maxfail", "1"]),
    "last-failed": Case(cmd=FLAKY_CMD, body=FLAKY_BODY, first=[], args=["--lf"]),
    "stepwise": Case(cmd=FLAKY_CMD, body=FLAKY_BODY, first=["--sw"], args=["--sw"]),
    # pytest-xdist runs take seconds each: a representative cross
    "xdist-crash-setup": Case(conftest=CRASH_SETUP, args=XDIST),
    "xdist-crash-call": Case(body="os._exit(1)", args=XDIST, only="python"),
    "xdist-crash-no-restart": Case(
        conftest=CRASH_SETUP, args=["-n", "1", "--max-worker-restart", "0"], only="python"
    ),
    "xdist-each": Case(cmd=GW1_CMD, body=GW1_BODY, args=[*XDIST, "--dist", "each"]),
    "xdist-loadgroup": Case(
        cmd="false", conftest=GROUP, args=[*XDIST, "--dist", "loadgroup"], only="yaml"
    ),
}
PARAMS = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name, case in CASES.items()
    for kind in ("yaml", "python")
    if case.only in (None, kind)
]


def build(project: GateProject, case: Case, kind: str) -> str:
    """Write the gate, the target and the conftest; returns the target's node id."""
    broken = '\n      - command: "false"\n        id: broken' if case.broken_build else ""
    target = ""
    if kind == "yaml":
        quoted = case.cmd.replace("\\", "\\\\").replace('"', '\\"')
        target = f'\n      - command: "{quoted}"\n        id: target'
    project.gate(
        "release",
        "gate: release\ncriteria:\n  build:\n    title: The build works\n    checks:\n"
        '      - command: "true"\n        id: compile'
        f"{broken}\n  smoke:\n    title: Smoke tests pass\n    checks:\n"
        '      - command: "true"\n        id: anchor'
        f"{target}\n",
    )
    if kind == "python":
        body = textwrap.indent(textwrap.dedent(case.body).strip(), "    ")
        project.pytester.makepyfile(
            test_target=f"import os\nimport pytest\n{case.prefix}\n\n\n{case.decorators}"
            '@pytest.mark.gate("release", criterion="smoke")\n'
            f"def test_target():\n{body}\n"
        )
    if case.conftest:
        project.pytester.makeconftest(case.conftest)
    return "gates/release.yaml::smoke::target" if kind == "yaml" else "test_target.py::test_target"


@pytest.mark.parametrize(("name", "kind"), PARAMS)
def test_gate_is_never_passed_where_pytest_saw_a_failure_or_nothing(
    project: GateProject, monkeypatch: pytest.MonkeyPatch, name: str, kind: str
) -> None:
    case = CASES[name]
    monkeypatch.setenv("FWGATES_TEST_FLAG", str(project.path / "flag"))
    target = build(project, case, kind)
    # the cache is on: --lf and --sw need it
    base = ["-p", "no:hypothesispytest", "-p", "no:randomly", "--gate", "release"]
    if case.first is not None:
        project.pytester.runpytest(*base, *case.first)
    args = [arg.replace("{target}", target) for arg in case.args]
    result = project.pytester.runpytest(*base, *args)
    verdict = project.summary()["verdict"]
    smoke = project.criteria("release")["smoke"]
    xmlschema.XMLSchema(str(XSD)).validate(str(project.path / "reports" / "gates.xml"))
    if case.passes:
        assert (verdict, smoke, result.ret) == ("PASSED", "PASS", EXIT_PASSED)
        return
    assert verdict != "PASSED", result.stdout.str()
    assert result.ret != EXIT_PASSED
    # the target's criterion does not pass; where the gate cannot tell the target's criterion
    # (never collected, crashed before any worker listed it), the gate's reason names it
    reason = project.gate_summary("release")["reason"]
    assert smoke != "PASS" or target.split("::")[0] in reason, reason
