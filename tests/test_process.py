"""Commands run bounded: in a session of their own, stopped as a whole, output bounded."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_fwgates.model import EXIT_FAILED
from pytest_fwgates.process import TOKEN_VAR, run_argv, run_shell

if TYPE_CHECKING:
    from conftest import GateProject


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids: list[int], within: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def pids_in(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()] if path.exists() else []


def test_exit_status_and_output() -> None:
    result = run_shell("echo out; echo err >&2; exit 3", timeout=10)
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out and not result.truncated


def test_values_come_from_the_environment_only(tmp_path: Path) -> None:
    result = run_shell(
        'printf %s "$FWGATES_V1"', env={"FWGATES_V1": "$(touch PWNED)"}, cwd=tmp_path, timeout=10
    )
    assert result.stdout == "$(touch PWNED)"
    assert list(tmp_path.iterdir()) == []


def test_a_command_that_ignores_sigterm_is_killed_and_has_no_status(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_shell(f"echo $$ > {tmp_path}/pid; trap '' TERM; sleep 10000", timeout=1)
    took = time.monotonic() - started
    assert result.timed_out and result.exit_status is None
    assert took < 1 + 2 + 3  # bound + grace + slack
    assert wait_gone(pids_in(tmp_path / "pid")) == []


def test_background_children_are_gone_when_the_command_ends(tmp_path: Path) -> None:
    # a background job in the command's process group, holding the output pipe
    result = run_shell(f"sleep 300 & echo $! > {tmp_path}/pid; echo done", timeout=30)
    assert result.exit_status == 0 and result.stdout == "done\n"
    assert result.duration_s < 5  # the child holding the pipe did not stretch the run
    assert wait_gone(pids_in(tmp_path / "pid")) == []


@pytest.mark.parametrize(
    "env", [None, {"FWGATES_V1": "a value"}], ids=["marker-exported", "marker-in-environment"]
)
def test_everything_a_stopped_command_started_is_gone(
    tmp_path: Path, env: dict[str, str] | None
) -> None:
    # children in their own process group and their own session, ignoring SIGTERM
    script = textwrap.dedent(
        f"""
        trap '' TERM
        setsid sh -c 'trap "" TERM; echo $$ >> {tmp_path}/pids; exec sleep 300' &
        sh -c 'set -m; (trap "" TERM; sleep 300) & echo $! >> {tmp_path}/pids; wait' &
        (trap '' TERM; exec sleep 300) > /dev/null 2>&1 &
        echo $! >> {tmp_path}/pids
        sleep 300
        """
    )
    result = run_shell(script, env=env, timeout=1.5)
    assert result.timed_out
    pids = pids_in(tmp_path / "pids")
    assert len(pids) == 3
    assert wait_gone(pids) == []
    leftover = subprocess.run(
        ["grep", "-l", "-a", TOKEN_VAR, *[f"/proc/{p}/environ" for p in pids]],
        capture_output=True,
        check=False,
    )
    assert leftover.stdout == b""


def test_output_is_bounded_and_the_run_stays_small() -> None:
    code = textwrap.dedent(
        """
        import sys
        from pytest_fwgates.process import run_shell
        r = run_shell("yes", timeout=3, max_output=65536)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent, here the
        # pytest worker, which grows with the tests it ran before this one
        with open("/proc/self/status") as status:
            hwm = next(line for line in status if line.startswith("VmHWM:"))
        rss = int(hwm.split()[1]) // 1024
        print(r.timed_out, r.truncated, r.stdout_bytes > 1_000_000, len(r.stdout) < 70_000, rss)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    timed_out, truncated, much, kept_small, rss_mib = done.stdout.split()
    assert (timed_out, truncated, much, kept_small) == ("True", "True", "True", "True"), done.stdout
    assert int(rss_mib) < 100, done.stdout


def test_head_and_tail_are_kept_and_a_cut_secret_is_trimmed() -> None:
    secret = "s3cr3t-value-123"
    command = f"echo START; yes {secret} | head -c 300000; echo; echo END"
    result = run_shell(
        command,
        timeout=10,
        max_output=4096,
        mask=lambda text: text.replace(secret, "***"),
        longest_secret=len(secret),
    )
    assert result.truncated
    assert result.stdout.startswith("START\n") and result.stdout.rstrip().endswith("END")
    assert "bytes not kept" in result.stdout
    # no fragment of the secret survives at the cut edges
    for size in range(6, len(secret) + 1):
        for start in range(len(secret) - size + 1):
            assert secret[start : start + size] not in result.stdout


def test_an_interrupt_stops_the_command_and_is_raised_again(tmp_path: Path) -> None:
    main = threading.get_ident()
    timer = threading.Timer(0.5, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_shell(f"echo $$ > {tmp_path}/pid; trap '' TERM INT; sleep 300", timeout=60)
    finally:
        timer.cancel()
    assert wait_gone(pids_in(tmp_path / "pid")) == []


def test_a_missing_program_is_an_os_error() -> None:
    with pytest.raises(OSError):
        run_argv(["/nonexistent/program"], timeout=5)


# -- through a gate run ---------------------------------------------------------------------

GATE = """
    gate: production-readiness
    criteria:
      infrastructure-validation: [{file: /}]
      security-compliance: [{file: /etc}]
      performance-verification: [{command: "true"}]
      monitoring-operational: [{command: "true"}]
      rollback-capability:
        - rollback: "true"
          health: ${env:FWGATES_TEST_HEALTH}
          stable: 0.1s
"""


def rollback_checks(project: GateProject, checks: str) -> None:
    project.performance_figures()
    project.monitoring_figures()  # demanded by the catalog
    project.gate("production-readiness", GATE + textwrap.indent(textwrap.dedent(checks), "  " * 4))


def test_killed_check_is_an_error_never_a_pass(project: GateProject, tmp_path: Path) -> None:
    rollback_checks(
        project,
        """
        - command: "echo $$ > pid; trap '' TERM; sleep 10000"
          timeout: 1
          expect: {exit_status: "!= 0"}
        """,
    )
    result = project.run("--gate=production-readiness")
    assert result.ret == EXIT_FAILED
    check = project.criterion("production-readiness", "rollback-capability")["checks"][-1]
    assert check["outcome"] == "error"
    assert "did not finish within 1 s and was stopped" in check["message"]
    assert wait_gone(pids_in(project.path / "pid")) == []


def test_comment_and_heredoc_values_do_not_run(project: GateProject) -> None:
    rollback_checks(
        project,
        """
        - command: "echo ok # note: ${x}"
        - command: |
            cat <<EOF # a comment
            ${x}
            EOF
        """,
    )
    value = "a\ntouch PWNED #\n$(touch PWNED2)"
    result = project.run("--gate=production-readiness", f"--gate-var=x={value}")
    assert result.ret == 0, result.stdout.str()
    assert not (project.path / "PWNED").exists()
    assert not (project.path / "PWNED2").exists()
    checks = project.criterion("production-readiness", "rollback-capability")["checks"]
    assert "$(touch PWNED2)" in checks[-1]["measured"]["stdout"]


def test_exit_status_is_an_integer_in_summary(project: GateProject) -> None:
    project.production_ready()
    project.run("--gate=production-readiness")
    check = project.criterion("production-readiness", "rollback-capability")["checks"][0]
    assert check["measured"]["exit_status"] == 0
    assert isinstance(check["measured"]["exit_status"], int)


def test_ctrl_c_to_the_run_stops_its_command(project: GateProject) -> None:
    rollback_checks(project, """- command: "echo $$ > pid; trap '' TERM; sleep 10000"\n""")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--gate=production-readiness"],
        cwd=project.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (project.path / "pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (project.path / "pid").exists()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert wait_gone(pids_in(project.path / "pid")) == []


def test_a_command_without_values_reads_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command without values gets its marker exported by the shell in front of it: its
    environment is this process's as it is now, and its text, line numbers and ``$0`` are
    its own."""
    monkeypatch.setenv("FWGATES_TEST_LATE", "set after start")
    script = 'echo "$0|$FWGATES_TEST_LATE"\nsh -c \'echo "${FWGATES_RUN_TOKEN:+marked}"\''
    result = run_shell(script, timeout=10)
    assert result.exit_status == 0
    assert result.stdout.splitlines() == ["/bin/sh|set after start", "marked"]
    broken = run_shell("true\nif then", timeout=10)
    assert broken.exit_status == 2
    assert ": 2: " in broken.stderr  # the syntax error is on the command's own line 2
