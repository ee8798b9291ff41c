"""An earlier run's PASSED package never outlives a run that did not finish: it is removed at
the first moment the plugin can (usage errors, ``--co``, ``--help``, a conftest that fails,
SIGTERM early), and a package is bound to its CI run (``fwgates verify --require-run-id``), so
one that survives a kill before the plugin could act is still refused."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_handoff import gate_argv, gate_env, run_gate, signed_run, verify

from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.environment import run_ids
from pytest_fwgates.integrity import verify_package
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import Outcome, Source

RUN_1 = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1"}
RUN_2 = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "2"}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project and the signed PASSED package (with its archive) of its run 4242-1."""
    return signed_run(tmp_path_factory.mktemp("stale-project"), RUN_1)


@pytest.fixture
def project(earlier: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the project with the earlier run's package and archive in place."""
    root = tmp_path / "project"
    shutil.copytree(earlier["root"], root)
    assert verify_package(root / "out" / "package", require_verdict="PASSED").ok
    assert verify_package(root / "out" / "package.tar.gz", require_verdict="PASSED").ok
    return root


def _gone(root: Path) -> None:
    package = root / "out" / "package"
    assert not package.exists()
    assert not package.with_name("package.tar.gz").exists()


def test_a_package_is_bound_to_its_run(earlier: dict[str, Path]) -> None:
    package, public = earlier["package"], earlier["public"]
    status, out = verify(package, "--public-key", public, "--require-run-id", "4242-1")
    assert status == 0, out
    status, out = verify(package.with_name("package.tar.gz"), "--require-run-id", "4242-1")
    assert status == 0, out
    status, out = verify(package, "--public-key", public, "--require-run-id", "4242-2")
    assert status == 1
    assert (
        "FAIL run id: the package was made by another run "
        "(GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT=4242-1), '4242-2' required"
    ) in out
    status, _ = verify(package, "--require-run-id", "")  # "$BUILD_TAG" of an unset variable
    assert status == 2


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--gate-var=no_such_var=1"], id="unknown-gate-var"),
        pytest.param(["--handoff-sign-key=keys/missing.pem"], id="missing-signing-key"),
        pytest.param(["--no-such-option"], id="unknown-option"),
        pytest.param(["--co"], id="collect-only"),
        pytest.param(["--help"], id="help"),
        pytest.param(["--gate=no-such-gate"], id="unknown-gate"),
        pytest.param(["CRASH"], id="conftest-crash"),
        pytest.param(["-n", "2", "--gate-var=no_such_var=1"], id="xdist-usage-error"),
        pytest.param(["INTERRUPT"], id="ctrl-c-in-collection"),
        # usage errors pytest finds when it parses the options of all plugins, before any
        # later hook: an option without its value, a bad value of another plugin's option
        pytest.param(["--gate-var"], id="gate-var-without-value"),
        pytest.param(["--gate-connect-timeout=soon"], id="bad-number"),
        pytest.param(["-n", "many"], id="xdist-bad-value"),
    ],
)
def test_a_run_that_does_not_finish_leaves_no_earlier_package(
    project: Path, earlier: dict[str, Path], args: list[str]
) -> None:
    if args == ["CRASH"]:
        with (project / "conftest.py").open("a") as handle:
            handle.write("\nraise RuntimeError('conftest fails')\n")
        args = []
    interrupted = args == ["INTERRUPT"]
    if interrupted:
        with (project / "conftest.py").open("a") as handle:
            handle.write("\ndef pytest_collection_finish(session):\n    raise KeyboardInterrupt\n")
        args = []
    package, key = project / "out" / "package", project / "keys" / "handoff.pem"
    completed = run_gate(project, package, key, *args, env=RUN_2)
    assert completed.returncode != 0 or args in (["--co"], ["--help"]), completed.stdout
    if interrupted:  # decided FAILED: a package of this run may say so, never PASSED
        for candidate in (package, package.with_name("package.tar.gz")):
            if candidate.exists():
                result = verify_package(candidate, require_verdict="PASSED")
                assert "verdict is FAILED, PASSED required" in result.problems
        return
    _gone(project)


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3, 0.6, 1.0, 1.5])
def test_sigterm_early_leaves_no_package_of_an_earlier_run_that_verifies(
    project: Path, earlier: dict[str, Path], delay: float
) -> None:
    package = project / "out" / "package"
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    process = subprocess.Popen(
        gate_argv(package, project / "keys" / "handoff.pem"),
        cwd=project,
        env={**gate_env(), **RUN_2},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    for candidate in (package, package.with_name("package.tar.gz")):
        if not candidate.exists():
            continue
        result = verify_package(candidate, require_run_id="4242-2")
        if result.ok:  # only a package this run made verifies as this run's (with the
            # verdict it reached: FAILED when cut short, or its own when the signal came
            # while the run was ending)
            assert result.created is not None and result.created >= started
        else:  # killed before the plugin could act: the earlier run's, refused
            assert any("made by another run" in p for p in result.problems), result.problems


def test_a_package_made_outside_ci_has_no_run_id(earlier: dict[str, Path], tmp_path: Path) -> None:
    assert run_ids({"HOME": "/root", "GITHUB_RUN_ID": "7"}) == {}  # no attempt: no id
    assert run_ids({"CI_PIPELINE_ID": "5", "CI_JOB_ID": "77", "BUILD_TAG": " "}) == {
        "CI_PIPELINE_ID": "5",
        "CI_PIPELINE_ID-CI_JOB_ID": "5-77",
    }
    package = tmp_path / "package"
    shutil.copytree(earlier["package"], package)
    manifest = json.loads((package / "MANIFEST.json").read_text())
    manifest["run_ids"] = {}
    (package / "MANIFEST.json").write_text(json.dumps(manifest))
    result = verify_package(package, require_run_id="4242-1")  # no key: signature unchecked
    assert result.problems == [
        "run id: the package records no CI run id, '4242-1' required "
        "(made outside CI, or by an older version)"
    ]


@pytest.mark.parametrize(
    ("run_id", "outcome"),
    [("4242-1", Outcome.PASSED), ("4242-2", Outcome.FAILED), ("", Outcome.ERROR)],
)
def test_the_handoff_check_binds_the_package_to_a_run(
    earlier: dict[str, Path], tmp_path: Path, run_id: str, outcome: Outcome
) -> None:
    loader = GateLoader([], registry=CheckRegistry(), environ={})
    mapping = {
        "handoff": str(earlier["package"]),
        "public_key": str(earlier["public"]),
        "expect": {"run_id": run_id},
    }
    spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "t.py", 1))
    context = CheckContext(rootdir=tmp_path, evidence_root=tmp_path / "evidence")
    result = run_check(CheckRegistry().get("handoff")(spec, context), "t")
    assert result.outcome is outcome, result.message
    if outcome is Outcome.FAILED:
        assert "made by another run" in result.message
