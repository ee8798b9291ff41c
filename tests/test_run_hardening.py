"""A gate run as an attacker or an unlucky CI job sees it: reports never stale or false,
verdicts only from results, report paths refused when they are not files, secrets kept out
of --debug logs, messages readable in CI."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import xmlschema

from pytest_fwgates.model import EXIT_FAILED, EXIT_PASSED

if TYPE_CHECKING:
    from conftest import GateProject

XSD = Path(__file__).parent / "data" / "junit-10.xsd"

RELEASE = """
    gate: release
    criteria:
      build:
        title: The build works
        checks:
          - command: "true"
            id: compile
      smoke:
        title: Smoke tests pass
        checks:
          - command: "echo ok"
            id: smoke
            expect: {stdout_contains: ok}
"""


def reports(project: GateProject) -> list[str]:
    folder = project.path / "reports"
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def passed_once(project: GateProject) -> None:
    """A passing run, so that a PASSED summary.json and gates.xml are in place."""
    project.gate("release", RELEASE)
    result = project.run("--gate", "release")
    assert result.ret == EXIT_PASSED
    assert project.summary()["verdict"] == "PASSED"
    assert reports(project) == ["gates.xml", "summary.json"]


# -- no stale evidence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--gate", "release", "--gate-var", "no equals sign"],
        ["--gate", "relase"],
        ["--gate", "release", "--no-such-option"],
        ["--gate", "release", "--gate-waivers", "missing.yaml"],
    ],
    ids=["bad-gate-var", "unknown-gate", "unknown-option", "missing-waivers"],
)
def test_a_usage_error_leaves_no_earlier_passed_report(
    project: GateProject, args: list[str]
) -> None:
    passed_once(project)
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert reports(project) == []


@pytest.mark.parametrize("option", ["--co", "--collect-only", "--fixtures", "--setup-plan"])
def test_runs_that_only_show_decide_nothing(project: GateProject, option: str) -> None:
    passed_once(project)
    result = project.run("--gate", "release", option)
    assert result.ret == pytest.ExitCode.OK
    assert reports(project) == []
    result.stdout.no_fnmatch_line("*gate verdicts*")


def test_a_load_error_is_a_failing_case_in_the_gate_junit(project: GateProject) -> None:
    project.release_gate('- comand: "true"')
    project.run("--gate", "release")
    path = project.path / "reports" / "gates.xml"
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    root = ET.parse(path).getroot()
    [suite] = root.iter("testsuite")
    assert suite.get("name") == "release"
    [case] = suite.iter("testcase")
    failure = case.find("failure")
    assert case.get("name") == "gate:release" and failure is not None
    assert "unknown check type 'comand'" in (failure.get("message") or "")
    assert root.get("failures") == "1"


def _token_processes(token: str) -> list[int]:
    """Pids of processes whose environment holds ``token`` (all started by one run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if token.encode() in environ:
            found.append(int(entry.name))
    return found


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_sigterm_ends_like_ctrl_c(project: GateProject, xdist: list[str]) -> None:
    """What a CI runner sends on cancel: FAILED written, commands stopped (under xdist the
    controller passes SIGTERM on to its workers)."""
    passed_once(project)
    project.gate(
        "release",
        RELEASE
        + """
      slow:
        title: A check that is running when the job is cancelled
        checks:
          - command: "sleep 300"
            id: sleeper
            timeout: 200
    """,
    )
    token = f"fwgates-sigterm-{uuid.uuid4().hex}"
    env = {**os.environ, "FWGATES_TEST_TOKEN": token}
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID", "PYTEST_XDIST_WORKER_COUNT"):
        env.pop(name, None)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *xdist, "--gate", "release"],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = _token_processes(token)
            sleeping = [p for p in pids if _cmdline(p).startswith("sleep")]
            if sleeping:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the sleeping command never started")
        run.send_signal(signal.SIGTERM)
        # the commands stop right away, not when the run ends (generous bound: busy CI)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not [p for p in _token_processes(token) if _cmdline(p).startswith("sleep")]:
                break
            time.sleep(0.2)
        else:
            left = {p: _cmdline(p) for p in _token_processes(token)}
            run.kill()
            out, _ = run.communicate(timeout=30)
            pytest.fail(f"the command still runs 30 s after SIGTERM: {left}\n{out}")
        out, _ = run.communicate(timeout=90)
        assert run.returncode == pytest.ExitCode.INTERRUPTED, out
        summary = project.summary()
        assert summary["verdict"] == "FAILED"
        [gate] = summary["gates"]
        assert "stopped by SIGTERM" in gate["reason"]
        assert "release  FAILED" in out
        # every process the run started is gone
        deadline = time.monotonic() + 10
        while _token_processes(token) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _token_processes(token) == []
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)
        _kill_all(_token_processes(token))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- verdicts trust only results -----------------------------------------------------------


def test_a_check_finished_hook_that_raises_fails_the_check(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makeconftest(
        """
        def pytest_fwgates_check_finished(result):
            raise RuntimeError("the notifier is down")
        """
    )
    result = project.run("--gate", "release")
    assert result.ret == EXIT_FAILED
    assert project.verdicts() == {"release": "FAILED"}
    build = project.criterion("release", "build")
    assert build["verdict"] == "FAIL"
    [check] = build["checks"]
    assert check["outcome"] == "error"  # the hook runs where the check measures: its setup
    assert "the notifier is down" in check["message"]


def test_a_check_item_that_does_not_run_its_check_is_an_error(project: GateProject) -> None:
    project.gate("release", RELEASE)
    project.pytester.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            for item in items:
                item.setup = item.runtest = lambda: None
        """
    )
    result = project.run("--gate", "release")
    result.assert_outcomes(passed=2)  # what pytest believes
    assert result.ret == EXIT_FAILED
    assert project.criteria("release") == {"build": "FAIL", "smoke": "FAIL"}
    [check] = project.criterion("release", "build")["checks"]
    assert check["outcome"] == "error"
    assert "reported no result" in check["message"]


@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_a_failed_phase_of_a_check_fails_it(project: GateProject, phase: str) -> None:
    project.gate("release", RELEASE)
    project.pytester.makeconftest(
        f"""
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_{phase}(item):
            yield
            if item.name == "compile":
                raise RuntimeError("{phase} broke")
        """
    )
    result = project.run("--gate", "release")
    assert result.ret == EXIT_FAILED
    assert project.criteria("release") == {"build": "FAIL", "smoke": "PASS"}
    [check] = project.criterion("release", "build")["checks"]
    assert check["outcome"] == "error"
    assert f"{phase} broke" in check["message"]


def test_a_recorded_value_that_misses_its_standard_fails_in_pytest_too(
    project: GateProject,
) -> None:
    project.pytester.makepyfile(
        test_deploy="""
        import pytest

        @pytest.mark.gate("zero-downtime-deployment", criterion="deployment-time")
        def test_deploy_time(gate_record):
            gate_record("duration_s", 600)  # the standard is < 5m
        """
    )
    result = project.run("--gate", "zero-downtime-deployment", "--junitxml", "pytest.xml")
    result.assert_outcomes(failed=1)
    # duration_s is the deploy check's figure: a test cannot record it (deploy_monitor can)
    result.stdout.fnmatch_lines(["*duration_s is evidence only a check measures (deploy*"])
    root = ET.parse(project.path / "pytest.xml").getroot()
    [case] = [c for c in root.iter("testcase") if c.get("name") == "test_deploy_time"]
    assert case.find("failure") is not None
    criterion = project.criterion("zero-downtime-deployment", "deployment-time")
    assert criterion["verdict"] == "FAIL"
    [check] = criterion["checks"]
    assert check["measured"] == {}


# -- reports in their place ------------------------------------------------------------


def test_a_device_as_report_path_is_refused(project: GateProject) -> None:
    project.gate("release", RELEASE)
    before = os.stat("/dev/null")
    result = project.run("--gate", "release", "--gate-junit", "/dev/null")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --gate-junit /dev/null: exists and is a device; give the path of a regular file"]
    )
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert not Path("/dev/summary.json").exists()


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink", "summary-folder"])
def test_a_report_path_that_is_not_a_regular_file_is_refused(
    project: GateProject, kind: str
) -> None:
    passed_once(project)
    out = project.path / "out"
    out.mkdir()
    junit = out / "gates.xml"
    if kind == "folder":
        junit.mkdir()
    elif kind == "fifo":
        os.mkfifo(junit)
    elif kind == "symlink":
        (out / "elsewhere.xml").write_text("keep me")
        junit.symlink_to(out / "elsewhere.xml")
    else:
        (out / "summary.json").mkdir()
    result = project.run("--gate", "release", "--gate-junit", str(junit))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert len([line for line in result.stderr.lines if line.strip()]) == 1
    result.stderr.fnmatch_lines(["ERROR: --gate-junit*: exists and is *"])
    result.stdout.no_fnmatch_line("*Traceback*")
    if kind == "symlink":
        assert junit.is_symlink() and (out / "elsewhere.xml").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir() if p.is_file() and not p.is_symlink()) == (
        ["elsewhere.xml"] if kind == "symlink" else []
    )


def test_a_blocked_report_folder_is_a_one_line_usage_error(project: GateProject) -> None:
    project.gate("release", RELEASE)
    (project.path / "blocker").write_text("a file where a folder should be")
    result = project.run("--gate", "release", "--gate-junit", "blocker/ci/gates.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gate-junit */blocker/ci/gates.xml: cannot be created:*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_an_unwritable_report_folder_is_a_one_line_usage_error(project: GateProject) -> None:
    project.gate("release", RELEASE)
    locked = project.path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        # root writes anywhere the file system allows: a read-only bind is not at hand, so
        # use a folder that cannot hold new entries for anyone: /proc
        target = "/proc/fwgates-gates.xml"
    else:
        locked.chmod(0o500)
        target = str(locked / "gates.xml")
    result = project.run("--gate", "release", "--gate-junit", target)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gate-junit *: cannot be written: *"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_junitxml_at_the_gate_junit_path_is_refused(project: GateProject) -> None:
    project.gate("release", RELEASE)
    result = project.run("--gate", "release", "--junitxml", "reports/gates.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --junitxml reports/gates.xml: the gate reports are *"])
    result = project.run("--gate", "release", "--junitxml", "reports/summary.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_gate_junit_named_summary_json_is_refused(project: GateProject) -> None:
    project.gate("release", RELEASE)
    result = project.run("--gate", "release", "--gate-junit", "out/summary.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --gate-junit *summary.json: summary.json is written *"])


def test_reports_are_written_both_or_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_fwgates import fsutil

    real = os.replace
    calls: list[str] = []

    def second_fails(src: str | Path, dst: str | Path) -> None:
        calls.append(str(dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", second_fails)
    with pytest.raises(OSError, match="No space left"):
        fsutil.atomic_write_all(
            [(tmp_path / "gates.xml", "<a/>"), (tmp_path / "summary.json", "{}")]
        )
    assert list(tmp_path.iterdir()) == []


# -- secrets -------------------------------------------------------------------------------


SECRET = 's3cr\'et "pa$$ word" 42'


def test_debug_log_holds_no_resolved_secret(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The secret comes from the environment, as a CI secret does (pytest itself logs
    its command line in --debug, so a value given there is the caller's to hide)."""
    monkeypatch.setenv("FWGATES_API_TOKEN", SECRET)
    project.release_gate(
        """
        - command: "echo token=${env:FWGATES_API_TOKEN} >/dev/null"
        - command: "echo ${env:FWGATES_API_TOKEN}"
          id: echo-token
        """
    )
    result = project.run_subprocess("--gate", "release", "--debug=debug.log", "-v")
    assert result.ret == EXIT_PASSED, result.stdout.str()
    log = (project.path / "debug.log").read_text(errors="replace")
    assert "pytest_fwgates_gate_decided" in log
    texts = {
        "debug.log": log,
        "stdout": result.stdout.str(),
        "summary.json": (project.path / "reports" / "summary.json").read_text(),
        "gates.xml": (project.path / "reports" / "gates.xml").read_text(),
    }
    for name, text in texts.items():
        for part in ("s3cr", "pa$$ word", "czNjcidldCAicGEkJCB3b3JkIiA0Mg"):
            assert part not in text, f"{part!r} in {name}"


def test_secrets_are_masked_before_messages_are_cut(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWGATES_TEST_PASSWORD", "Zq8-unguessable-value-77")
    project.pytester.makepyfile(
        test_leak="""
        import os
        import pytest

        @pytest.mark.gate("release", criterion="smoke")
        def test_leak():
            assert False, "x" * 475 + os.environ["FWGATES_TEST_PASSWORD"]
        """
    )
    project.gate("release", RELEASE)
    project.run("--gate", "release")
    text = (project.path / "reports" / "summary.json").read_text()
    assert "Zq8-un" not in text
    assert "x" * 40 in text


# -- silent mistakes, readable in CI -------------------------------------------------------


def test_no_gate_files_the_table_says_where_it_looked(project: GateProject) -> None:
    result = project.run("--gate", "security-compliance")
    assert result.ret == EXIT_FAILED
    result.stdout.fnmatch_lines(
        [f"security-compliance: no gate file found; looked in: {project.path / 'gates'}"]
    )


def test_table_fits_80_columns_without_cutting_ids(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    long_id = "a-criterion-whose-identifier-is-long-enough-to-overflow"
    project.gate(
        "release",
        f"""
        gate: release
        criteria:
          {long_id}:
            title: Long
            checks:
              - command: "exit 4"
        """,
    )
    result = project.run("--gate", "release")
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "gate verdicts" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("overall:"))
    shown = lines[start : end + 1]
    assert all(len(line) <= 80 for line in shown), "\n".join(shown)
    assert any(line.strip() == long_id for line in shown)
    assert not any("…" in line for line in shown)


def test_exit_status_is_an_integer_in_messages_and_summary(project: GateProject) -> None:
    project.release_gate('- command: "exit 3"')
    result = project.run("--gate", "release")
    result.stdout.fnmatch_lines(["  exit_status = 3"])
    result.stdout.no_fnmatch_line("*exit_status = 3.0*")
    [check] = project.criterion("release", "build")["checks"]
    assert check["measured"]["exit_status"] == 3
    assert isinstance(check["measured"]["exit_status"], int)
    raw = (project.path / "reports" / "summary.json").read_text()
    assert '"exit_status": 3,' in raw or '"exit_status": 3}' in raw


def test_summary_records_targets_without_credentials(project: GateProject) -> None:
    project.release_gate(
        """
        - command: "true https://deploy:hunter2hunter2@127.0.0.1:9/x?token=abc123"
          id: probe
        """
    )
    project.run("--gate", "release")
    [check] = project.criterion("release", "build")["checks"]
    assert check["target"] == "true https://127.0.0.1:9/x?token=***"
    raw = (project.path / "reports" / "summary.json").read_text()
    assert "hunter2" not in raw and "abc123" not in raw


def test_fwgates_check_honours_gate_dirs_of_the_ini(
    project: GateProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_fwgates.cli import main

    quality = project.path / "quality"
    quality.mkdir()
    (quality / "release.yaml").write_text(textwrap.dedent(RELEASE))
    project.pytester.makeini("[pytest]\ngate_dirs = quality\n")
    sub = project.path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert main(["check", "release"]) == 0
    assert "release: ok (2 criteria, 2 checks)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pyproject.toml", '[tool.pytest.ini_options]\ngate_dirs = ["quality"]\n'),
        ("tox.ini", "[pytest]\ngate_dirs = quality\n"),
        ("setup.cfg", "[tool:pytest]\ngate_dirs = quality\n"),
    ],
)
def test_fwgates_list_reads_every_ini_kind(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
) -> None:
    from pytest_fwgates.cli import main

    (tmp_path / "quality").mkdir()
    (tmp_path / "quality" / "release.yaml").write_text(textwrap.dedent(RELEASE))
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    assert "quality/release.yaml" in capsys.readouterr().out


def test_stack_env_is_loadable_with_set_a(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from examples.stack.core import Stack

    values = {
        "FWGATES_APP_URL": "http://127.0.0.1:8080",
        "FWGATES_STACK_DIR": str(tmp_path / "dir with spaces"),
        "FWGATES_ODD": 'it\'s $HOME; `x` "q"',
    }
    fake = SimpleNamespace(env=values, layout=SimpleNamespace(env_file=tmp_path / "stack.env"))
    Stack._write_env(fake)  # type: ignore[arg-type]
    shown = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; set +a; exec env -0', "sh", str(tmp_path / "stack.env")],
        capture_output=True,
        timeout=30,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    ).stdout.decode()
    exported = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
    for key, value in values.items():
        assert exported[key] == value


def test_every_install_line_installs_the_way_getting_started_says() -> None:
    """README and every doc (CI recipes too): never from PyPI (it is not published there),
    always with the load extra that load checks need."""
    repo = Path(__file__).parent.parent
    found = 0
    for path in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "pip install" not in line or not re.search(r"pytest[-_]fwgates", line):
                continue
            found += 1
            where = f"{path.name}:{number}: {line.strip()}"
            assert not re.search(r"pip install\s+['\"]?pytest-fwgates\b", line), where
            assert "[load" in line, where
    assert found >= 8


def test_junit_names_are_one_line_whatever_the_check_id() -> None:
    from pytest_fwgates.model import (
        CheckResult,
        Criterion,
        CriterionDecision,
        CriterionVerdict,
        Gate,
        GateDecision,
        GateVerdict,
        Outcome,
    )
    from pytest_fwgates.report.junit import build_junit

    result = CheckResult(
        nodeid="gates/g.yaml::c::x", gate="g", criterion="c",
        check_id="x\r\noverall: PASSED", outcome=Outcome.PASSED,
    )  # fmt: skip
    criterion = CriterionDecision(Criterion("c", "C"), CriterionVerdict.PASS, "", [result])
    decision = GateDecision(Gate("g", "G"), GateVerdict.PASSED, "", [criterion])
    root = ET.fromstring(build_junit([decision]))
    names = [case.get("name", "") for case in root.iter("testcase")]
    assert "x overall: PASSED" in names
    assert not any("\n" in name or "\r" in name for name in names)


def test_building_reports_leaves_garbage_collection_as_it_was() -> None:
    import gc

    from pytest_fwgates.report import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_only_earlier_reports_are_removed_at_start(project: GateProject) -> None:
    """A file at the report path that is not a gate report is not deleted by a run that
    then stops on a usage error."""
    project.gate("release", RELEASE)
    out = project.path / "out"
    out.mkdir()
    (out / "notes.xml").write_text("<notes>mine</notes>")
    (out / "summary.json").write_text('{"mine": true}')
    result = project.run("--gate", "relase", "--gate-junit", "out/notes.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (out / "notes.xml").read_text() == "<notes>mine</notes>"
    assert (out / "summary.json").read_text() == '{"mine": true}'
