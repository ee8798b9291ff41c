"""Handoff packages: written by a real gate run, verified by ``fwgates verify``, tampered with."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import health_url

from pytest_fwgates.cli import main as fwgates
from pytest_fwgates.integrity import keygen, verify_package

if TYPE_CHECKING:
    from conftest import GateProject

SECRET = "s3cr3t-Deploy-Token-9876"
VAR_SECRET = "gate-var-secret-5432"

#: a check type of the project's own that writes evidence files (one with the secret in it)
CONFTEST = f"""
import os, time
from pytest_fwgates.bounds import quantile_support
from pytest_fwgates.checks import Check, Measurement


class EvidenceCheck(Check):
    type_name = "evidence"
    summary = "Writes evidence files like a load check would."
    threshold_keys = frozenset({{"p50_ms", "p95_ms", "p99_ms", "failure_ratio"}})
    owns = threshold_keys

    def measure(self):
        folder = self.context.evidence_dir(self.spec)
        log = folder / "output.log"
        log.write_text("deploying with DEPLOY_TOKEN=" + os.environ["DEPLOY_TOKEN"] + "\\n"
                       "token {SECRET} again\\n")
        svg = folder / "timeline.svg"
        svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="20">'
                       '<rect width="150" height="20" fill="green"/></svg>')
        stats = folder / "stats"
        stats.mkdir(exist_ok=True)
        (stats / "requests.csv").write_text("name,p95\\n/,412\\n")
        # the samples behind the percentiles: their bounds decide the thresholds
        hist = {{120.0: 600, 412.0: 380, 730.0: 20}}
        support = {{f"p{{q}}_ms": quantile_support(hist, q / 100) for q in (50, 95, 99)}}
        return Measurement(
            values={{"p50_ms": 120.0, "p95_ms": 412.0, "p99_ms": 730.0, "failure_ratio": 0.0}},
            facts={{"trend": {{"p95_ms": [380.0, 400.0, 412.0]}}}},
            evidence={{"log": log, "timeline": svg, "stats": stats}},
            support=support,
        )


# reports the figures its target gives, as their owner (no hosts, Prometheus or service)
class FiguresCheck(Check):

    type_name = "figures"
    target_schema = {{"type": "object"}}
    threshold_keys = frozenset(
        {{"mismatches", "targets_up", "rules_loaded", "recovery_s", "p95_ms", "failure_ratio"}}
    )
    owns = threshold_keys

    @classmethod
    def measures(cls, target, options):
        return frozenset(target) if isinstance(target, dict) else cls.threshold_keys

    def measure(self):
        from pytest_fwgates.bounds import supported_value

        measurement = Measurement()
        for key, given in self.spec.target.items():
            samples = given.get("samples") if isinstance(given, dict) else None
            value, support = supported_value(key, None if samples else float(given), None, samples)
            measurement.values[key] = value
            if support:
                measurement.support[key] = support
        return measurement


def pytest_fwgates_register_checks(registry):
    registry.register("evidence", EvidenceCheck)
    registry.register("figures", FiguresCheck)
"""

GATE = """
gate: production-readiness
vars:
  url: http://deployer:hunter2pass@127.0.0.1:9/health?api_token=${api_token}
criteria:
  infrastructure-validation:
    - command: "echo deploying to ${url}"
  security-compliance:
    - command: "echo $DEPLOY_TOKEN"
  performance-verification:
    - evidence: load
      expect: {p95_ms: "< 500", p99_ms: "< 1s"}
  monitoring-operational:
    - command: "true"
  rollback-capability:
    - command: "${rollback}"
"""

#: the figures production-readiness's catalog criteria demand beside the gate's own checks
#: (host facts, Prometheus targets and rules, a rollback's recovery time), measured for marked
#: tests by the project's own ``figures`` check type, so these tests need no hosts,
#: Prometheus or service
FIGURES = """
import pytest


@pytest.mark.gate("production-readiness", criterion="infrastructure-validation")
@pytest.mark.gate("production-readiness", criterion="security-compliance")
def test_host_facts(gate_check):
    gate_check("figures", {"mismatches": 0})


@pytest.mark.gate("production-readiness", criterion="monitoring-operational")
def test_monitoring_figures(gate_check):
    gate_check("figures", {"targets_up": 1, "rules_loaded": 3})


@pytest.mark.gate("production-readiness", criterion="rollback-capability")
def test_recovery(gate_check):
    gate_check("figures", {"recovery_s": 1.5})


@pytest.mark.gate("production-readiness", criterion="performance-verification")
def test_performance(gate_check):
    # enough samples for a p95 bound (59)
    gate_check("figures", {"p95_ms": {"samples": [120.0] * 100}, "failure_ratio": 0.0})
"""

#: files every package holds
PACKAGE_FILES = {
    "junit.xml",
    "summary.json",
    "summary.md",
    "report.html",
    "environment.json",
    "MANIFEST.json",
    "MANIFEST.sig",
}


#: the seven deliverables, given once in the project's ini file
INI = """
[pytest]
handoff_deliverables =
    production-system=deploy/release.txt
    infrastructure-documentation=docs/infrastructure.md
    monitoring-configuration=deploy/prometheus.yml
    security-configuration=deploy/tls.md
    performance-baseline=deploy/baseline.json
    operations-procedures=docs
    incident-response=docs/incident-response.md
"""


def make_project(root: Path) -> None:
    (root / "gates").mkdir(parents=True, exist_ok=True)
    (root / "gates" / "production-readiness.yaml").write_text(textwrap.dedent(GATE))
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_figures.py").write_text(FIGURES)
    (root / "pytest.ini").write_text(INI)
    for name in ("docs/runbook.md", "docs/infrastructure.md", "docs/incident-response.md",
                 "deploy/release.txt", "deploy/prometheus.yml", "deploy/tls.md",
                 "deploy/baseline.json"):  # fmt: skip
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(f"{name}\n")


def gate_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    env.update(DEPLOY_TOKEN=SECRET, GITHUB_RUN_ID="4242", GITHUB_TOKEN="ghp_notleaked12345")
    return env


def gate_argv(package: Path, key: Path | None, rollback: str = "true") -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--gate=production-readiness",
        f"--gate-var=api_token={VAR_SECRET}",
        f"--gate-var=rollback={rollback}",
        f"--handoff-package={package}",
        "--handoff-archive",
    ]
    if key is not None:
        argv.append(f"--handoff-sign-key={key}")
    return argv


def run_gate(
    root: Path,
    package: Path,
    key: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    rollback: str = "true",
) -> subprocess.CompletedProcess[str]:
    """A gate run of the project in ``root`` in its own process (:func:`gate_argv` and
    ``args``; ``env`` added to :func:`gate_env`), writing its package to ``package``."""
    return subprocess.run(
        [*gate_argv(package, key, rollback), *args],
        cwd=root,
        env={**gate_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def signed_run(root: Path, env: dict[str, str] | None = None) -> dict[str, Path]:
    """The project made in ``root`` and one real gate run of it (in its own process, with
    ``env`` added to :func:`gate_env`) that writes a signed package and its archive."""
    make_project(root)
    key = root / "keys" / "handoff.pem"
    keygen(key, key.with_name("handoff.pub"))
    package = root / "out" / "package"
    completed = run_gate(root, package, key, env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return {"root": root, "package": package, "public": key.with_name("handoff.pub"), "key": key}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real gate run (in its own process) that writes a signed package."""
    return signed_run(tmp_path_factory.mktemp("handoff-project"))


def verify(*args: object) -> tuple[int, str]:
    """``fwgates verify`` in this process: exit status and output."""
    out = io.StringIO()
    real = sys.stdout
    sys.stdout = out
    try:
        status = fwgates(["verify", *map(str, args)])
    finally:
        sys.stdout = real
    return status, out.getvalue()


@pytest.fixture
def package(made: dict[str, Path], tmp_path: Path) -> Path:
    """A fresh copy of the made package to tamper with."""
    copy = tmp_path / "package"
    shutil.copytree(made["package"], copy)
    return copy


def test_package_from_a_real_run_verifies(made: dict[str, Path]) -> None:
    package = made["package"]
    names = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert names >= PACKAGE_FILES
    evidence = {n for n in names if n.startswith("evidence/")}
    assert any(n.endswith("/output.log") for n in evidence)
    assert any(n.endswith("/timeline.svg") for n in evidence)
    assert any(n.endswith("/stats/requests.csv") for n in evidence)
    assert "deliverables/operations-procedures/runbook.md" in names
    assert "deliverables/production-system/release.txt" in names
    status, out = verify(package, "--public-key", made["public"], "--require-verdict", "PASSED")
    assert status == 0, out
    assert "signature valid" in out and "OK: the package verifies" in out
    archive = package.with_name("package.tar.gz")
    status, out = verify(archive, "--public-key", made["public"], "--require-verdict", "PASSED")
    assert status == 0, out


def test_manifest_lists_files_verdicts_and_deliverables(made: dict[str, Path]) -> None:
    manifest = json.loads((made["package"] / "MANIFEST.json").read_text())
    assert manifest["format"] == "fwgates-handoff/1"
    assert manifest["verdict"] == "PASSED"
    assert manifest["gates"][0]["name"] == "production-readiness"
    listed = {entry["path"] for entry in manifest["files"]}
    assert "summary.json" in listed and "MANIFEST.json" not in listed
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"])
    assert len(manifest["deliverables"]) == 7
    assert manifest["deliverables"]["operations-procedures"]["present"] is True
    assert manifest["deliverables"]["operations-procedures"]["files"] == 3
    assert manifest["missing_deliverables"] == []
    # summary.json points at the evidence inside the package
    summary = json.loads((made["package"] / "summary.json").read_text())
    checks = [c for g in summary["gates"] for cr in g["criteria"] for c in cr["checks"]]
    evidence = next(c["evidence"] for c in checks if c["evidence"])
    assert evidence["log"].startswith("evidence/")
    assert (made["package"] / evidence["log"]).is_file()


def test_environment_names_versions_targets_and_ci_without_secrets(made: dict[str, Path]) -> None:
    env = json.loads((made["package"] / "environment.json").read_text())
    assert env["versions"]["pytest-fwgates"]
    assert env["python"] == sys.version.split()[0]
    assert env["started"] <= env["finished"]
    assert env["targets"] == ["http://127.0.0.1:9/health?api_token=***"]
    assert env["ci"]["GITHUB_RUN_ID"] == "4242"
    assert "GITHUB_TOKEN" not in env["ci"]


def test_no_secret_of_the_run_in_any_file(made: dict[str, Path]) -> None:
    archive = made["package"].with_name("package.tar.gz")
    blobs = [p.read_bytes() for p in made["package"].rglob("*") if p.is_file()]
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                blobs.append(handle.read())
    for secret in (SECRET, VAR_SECRET, "hunter2pass", "ghp_notleaked12345"):
        leaks = [b for b in blobs if secret.encode() in b]
        assert not leaks, f"{secret} leaked"
    log = next(made["package"].rglob("output.log")).read_text()
    assert "DEPLOY_TOKEN=***" in log


@pytest.mark.parametrize(
    "name",
    ["junit.xml", "summary.json", "summary.md", "report.html", "environment.json", "evidence"],
)
def test_flipping_one_byte_of_a_file_fails_and_names_it(
    made: dict[str, Path], package: Path, name: str
) -> None:
    path = next(package.rglob("output.log")) if name == "evidence" else package / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1
    rel = path.relative_to(package).as_posix()
    assert f"FAIL changed file: {rel}" in out


@pytest.mark.parametrize("name", ["MANIFEST.json", "MANIFEST.sig"])
def test_flipping_a_byte_of_the_manifest_or_signature_fails(
    made: dict[str, Path], package: Path, name: str
) -> None:
    path = package / name
    data = bytearray(path.read_bytes())
    index = data.index(b"PASSED") + 1 if name == "MANIFEST.json" else 10
    data[index] ^= 0x01
    path.write_bytes(bytes(data))
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1
    assert "FAIL signature:" in out or "MANIFEST.sig is not one line of canonical base64" in out


def test_removed_file_fails(made: dict[str, Path], package: Path) -> None:
    (package / "summary.md").unlink()
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1
    assert "FAIL missing file: summary.md" in out


def test_added_file_fails(made: dict[str, Path], package: Path) -> None:
    (package / "evidence" / "extra.txt").write_text("slipped in\n")
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1
    assert "FAIL added file: evidence/extra.txt (not in the manifest)" in out


def test_added_symlink_fails(made: dict[str, Path], package: Path) -> None:
    (package / "link").symlink_to("/etc/passwd")
    status, out = verify(package)
    assert status == 1
    assert "unexpected symbolic link: link" in out


def test_missing_signature_fails_with_a_key(made: dict[str, Path], package: Path) -> None:
    (package / "MANIFEST.sig").unlink()
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1
    assert "FAIL MANIFEST.sig is missing: the package is not signed" in out


def test_wrong_key_fails(made: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    keygen(other, tmp_path / "other.pub")
    status, out = verify(made["package"], "--public-key", tmp_path / "other.pub")
    assert status == 1
    assert "FAIL signature: signed by another key" in out


def test_a_resigned_manifest_with_a_changed_verdict_fails(
    made: dict[str, Path], package: Path, tmp_path: Path
) -> None:
    """An attacker with their own key re-signs an edited manifest: the trusted key rejects it."""
    from pytest_fwgates.integrity import load_private_key, sign

    keygen(tmp_path / "evil.pem", tmp_path / "evil.pub")
    manifest = (package / "MANIFEST.json").read_bytes()
    (package / "MANIFEST.sig").write_bytes(sign(manifest, load_private_key(tmp_path / "evil.pem")))
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1
    assert "FAIL signature:" in out


def test_failed_verdict_fails_the_required_verdict(made: dict[str, Path], tmp_path: Path) -> None:
    root = made["root"]
    package = tmp_path / "failed"
    completed = run_gate(root, package, made["key"], rollback="false")
    assert completed.returncode == 1, completed.stdout + completed.stderr
    status, out = verify(package, "--public-key", made["public"])
    assert status == 0, out  # intact and signed
    status, out = verify(package, "--public-key", made["public"], "--require-verdict", "PASSED")
    assert status == 1
    assert "FAIL verdict is FAILED, PASSED required" in out


def test_unsigned_package_verifies_without_key_and_says_so(
    made: dict[str, Path], tmp_path: Path
) -> None:
    package = tmp_path / "unsigned"
    completed = run_gate(made["root"], package, None)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    status, out = verify(package)
    assert status == 0 and "note the package is not signed" in out
    status, out = verify(package, "--public-key", made["public"])
    assert status == 1 and "MANIFEST.sig is missing" in out


def test_max_age(made: dict[str, Path]) -> None:
    status, out = verify(made["package"], "--require-deliverables", "--max-age", "1h")
    assert status == 0, out
    result = verify_package(made["package"], max_age_s=1.0, now=_later(made["package"]))
    assert any(p.startswith("too old: made") for p in result.problems)


def _later(package: Path) -> object:
    import datetime as dt

    created = json.loads((package / "MANIFEST.json").read_text())["created"]
    return dt.datetime.fromisoformat(created) + dt.timedelta(hours=2)


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


def test_archive_with_path_traversal_or_links_is_refused(
    made: dict[str, Path], tmp_path: Path
) -> None:
    members = {
        f"package/{p.relative_to(made['package']).as_posix()}": p.read_bytes()
        for p in made["package"].rglob("*")
        if p.is_file()
    }
    evil = tmp_path / "evil.tar.gz"
    _tar(evil, {**members, "package/../../escape.txt": b"x"})
    status, out = verify(evil, "--public-key", made["public"])
    assert status == 1
    assert "unsafe path in the archive: 'package/../../escape.txt'" in out
    _tar(evil, members, {"package/link": "/etc/passwd"})
    status, out = verify(evil, "--public-key", made["public"])
    assert status == 1
    assert "a symbolic link in the archive: packages hold files and folders only" in out
    assert not (tmp_path.parent / "escape.txt").exists()


def test_garbage_archive_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    status, out = verify(bad)
    assert status == 1 and "not a valid gzip stream" in out


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.pem"
    assert fwgates(["keygen", str(key)]) == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "k.pem.pub").is_file()
    assert fwgates(["keygen", str(key)]) == 1
    assert "exists; not overwritten" in capsys.readouterr().err


def test_target_that_is_not_a_package_is_refused(project: GateProject) -> None:
    project.production_ready()
    (project.path / "precious").mkdir()
    (project.path / "precious" / "notes.txt").write_text("keep me")
    result = project.run("--gate=production-readiness", "--handoff-package=precious")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--handoff-package: *precious: exists and is not a handoff*"])
    assert (project.path / "precious" / "notes.txt").read_text() == "keep me"


def test_bad_sign_key_is_a_usage_error(project: GateProject) -> None:
    project.production_ready()
    (project.path / "key.pem").write_text("not a key")
    result = project.run(
        "--gate=production-readiness", "--handoff-package=pkg", "--handoff-sign-key=key.pem"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--handoff-sign-key: *key.pem: not a usable PEM private key*"])


@pytest.mark.parametrize("given", ["nowhere/runbook.md", "empty-folder"])
def test_a_deliverable_given_but_not_there_fails_the_run(project: GateProject, given: str) -> None:
    project.production_ready()
    (project.path / "empty-folder").mkdir()
    result = project.run(
        "--gate=production-readiness",
        "--handoff-package=pkg",
        f"--handoff-deliverable=operations-procedures={given}",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*deliverables given but not found or empty: operations-procedures=*" + given]
    )
    manifest = json.loads((project.path / "pkg" / "MANIFEST.json").read_text())
    assert "operations-procedures" in manifest["missing_deliverables"]


def test_baselines_saved_by_the_run_are_in_its_package(project: GateProject) -> None:
    """--gate-baseline-save writes the run's baseline before the package is made, so the
    performance-baseline deliverable pointing at the store is present in the same run."""
    project.production_ready()
    result = project.run(
        "--gate=production-readiness",
        "--gate-baseline-save",
        "--gate-baseline-dir=store",
        "--handoff-package=pkg",
        "--handoff-deliverable=performance-baseline=store",
    )
    assert result.ret == 0, result.stdout.str()
    manifest = json.loads((project.path / "pkg" / "MANIFEST.json").read_text())
    assert manifest["deliverables"]["performance-baseline"]["present"] is True
    assert "performance-baseline" not in manifest["missing_deliverables"]
    stored = list((project.path / "pkg" / "deliverables" / "performance-baseline").rglob("*.json"))
    assert stored


def test_package_written_by_the_controller_under_xdist(project: GateProject) -> None:
    project.production_ready()
    result = project.run_subprocess(
        "-n", "2", "--gate=production-readiness", "--handoff-package=pkg"
    )
    assert result.ret == 0, result.stdout.str()
    assert verify_package(project.path / "pkg").ok
    assert not [p for p in project.path.iterdir() if p.name.startswith(".pkg")]
    status, out = verify(project.path / "pkg", "--require-deliverables")
    assert status == 1 and "FAIL deliverables missing: production-system" in out


KILL_HOOK = """
import os, time
import pytest_fwgates.handoff as handoff

def _stall(original):
    def stalled(*args, **kwargs):
        open(os.environ["FWGATES_TEST_MARKER"], "w").close()
        time.sleep(120)
        return original(*args, **kwargs)
    return stalled

if os.environ.get("FWGATES_TEST_STALL") == "copy":
    handoff._Builder.copy = _stall(handoff._Builder.copy)
elif os.environ.get("FWGATES_TEST_STALL") == "sign":
    handoff.sign = _stall(handoff.sign)
"""


@pytest.mark.parametrize("stall", ["copy", "sign"])
def test_a_run_killed_while_packaging_leaves_nothing_that_verifies(
    made: dict[str, Path], tmp_path: Path, stall: str
) -> None:
    root = tmp_path / "project"
    shutil.copytree(made["root"], root, ignore=shutil.ignore_patterns("out"))
    with (root / "conftest.py").open("a") as handle:
        handle.write(KILL_HOOK)
    package = root / "out" / "package"
    # a package of an earlier run is there: it must not survive as if it were this run's
    shutil.copytree(made["package"], package)
    marker = tmp_path / "packaging"
    env = {**gate_env(), "FWGATES_TEST_STALL": stall, "FWGATES_TEST_MARKER": str(marker)}
    process = subprocess.Popen(
        gate_argv(package, made["key"]),
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the run ended before packaging stalled"
            assert time.monotonic() < deadline, "packaging never started"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert not package.exists()
    assert not package.with_name("package.tar.gz").exists()
    for leftover in package.parent.iterdir():
        assert not verify_package(leftover, public_key=None).ok, leftover


# -- phase 8 starts from the package: the deployment-handoff-validation gate ------------------
PHASE_8 = """
gate: deployment-handoff-validation
criteria:
  production-answers:
    - http: ${env:FWGATES_TEST_HEALTH}
      id: production answers
"""


def phase_8(
    pytester: pytest.Pytester, package: Path, public: Path | None
) -> dict[str, dict[str, object]]:
    """Run the catalog's phase-8 gate on ``package``: criterion id -> its summary entry."""
    pytester.makefile(".yaml", **{"gates/deployment-handoff-validation": PHASE_8})
    args = [f"--gate-var=package={package}"]
    if public is not None:
        args.append(f"--gate-var=public_key={public}")
    with pytest.MonkeyPatch.context() as env:
        # production-answers: an http check on the tests' health server
        env.setenv("FWGATES_TEST_HEALTH", health_url())
        pytester.runpytest("-p", "no:cacheprovider", "--gate=deployment-handoff-validation", *args)
    summary = json.loads((pytester.path / "reports" / "summary.json").read_text())
    (gate,) = summary["gates"]
    return {c["id"]: c for c in gate["criteria"]} | {"gate": gate}


def test_phase_8_gate_passes_on_a_signed_passed_complete_package(
    pytester: pytest.Pytester, made: dict[str, Path]
) -> None:
    criteria = phase_8(pytester, made["package"], made["public"])
    assert criteria["gate"]["verdict"] == "PASSED", criteria
    for cid in ("package-integrity", "package-verdict", "deliverables-present"):
        assert criteria[cid]["verdict"] == "PASS", criteria[cid]
    checks = criteria["package-verdict"]["checks"]
    junit = next(c for c in checks if c["check"] == "package junit without failures")
    assert junit["measured"]["failures"] == 0 and junit["measured"]["tests"] > 5


def test_phase_8_gate_fails_on_a_tampered_package(
    pytester: pytest.Pytester, made: dict[str, Path], package: Path
) -> None:
    (package / "summary.md").write_text("all good, trust me\n")
    criteria = phase_8(pytester, package, made["public"])
    assert criteria["gate"]["verdict"] == "FAILED"
    integrity = criteria["package-integrity"]
    assert integrity["verdict"] == "FAIL"
    assert "changed file: summary.md" in integrity["checks"][0]["message"]


def test_phase_8_gate_fails_without_a_trusted_key(
    pytester: pytest.Pytester, made: dict[str, Path]
) -> None:
    criteria = phase_8(pytester, made["package"], None)
    assert criteria["gate"]["verdict"] == "FAILED"
    assert "no trusted public key given" in criteria["package-integrity"]["checks"][0]["message"]


def test_phase_8_gate_fails_on_a_missing_package(pytester: pytest.Pytester, tmp_path: Path) -> None:
    criteria = phase_8(pytester, tmp_path / "nowhere", None)
    assert criteria["gate"]["verdict"] == "FAILED"
    check = criteria["package-integrity"]["checks"][0]
    assert check["outcome"] == "error" and "no such package" in check["message"]


# -- report.html in a real browser ---------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"


def dump_dom(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` after headless Chromium rendered it (no network, no profile)."""
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, start_new_session=True
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_report_html_renders_in_headless_chromium(made: dict[str, Path], tmp_path: Path) -> None:
    import html.parser

    dom = dump_dom(made["package"] / "report.html", tmp_path)

    class Reader(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[dict[str, str | None]] = []
            self.texts: dict[str, list[str]] = {}
            self.images: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            info = dict(attrs)
            if tag == "img":
                self.images.append(str(info.get("src")))
            if tag not in ("img", "br", "meta", "line", "rect", "polyline"):
                self.stack.append(info)

        def handle_endtag(self, tag: str) -> None:
            if self.stack and tag not in ("img", "br", "meta", "line", "rect", "polyline"):
                self.stack.pop()

        def handle_data(self, data: str) -> None:
            for info in self.stack:
                for key in ("id", "data-key"):
                    if info.get(key):
                        self.texts.setdefault(f"{key}={info[key]}", []).append(data)

    reader = Reader()
    reader.feed(dom)
    assert "".join(reader.texts["id=verdict-word"]).strip() == "PASSED"
    assert "".join(reader.texts["data-key=p95_ms"]).strip().startswith("412 ms")
    assert "".join(reader.texts["data-key=p99_ms"]).strip() == "730 ms"
    assert 'data-gate="production-readiness"' in dom and 'data-verdict="PASSED"' in dom
    assert "p95_ms = 412 ms (n = 1000), expected &lt; 500" in dom
    assert any(src.startswith("data:image/svg+xml;base64,") for src in reader.images)
    assert "Baseline trend of p95_ms" in dom
    assert 'data-deliverable="incident-response" data-present="true"' in dom
    # it opens with one line per gate and per criterion, before the tables
    assert dom.index('id="overview"') < dom.index('class="gate"')
    overview = dom[dom.index('id="overview"') : dom.index("</section>", dom.index('id="overview"'))]
    assert overview.count('class="gate-line"') == 1
    assert overview.count('class="criterion-line"') == 5
    assert 'data-criterion="performance-verification" data-verdict="PASS"' in overview
    assert "p95_ms = 412 ms (n = 1000), expected &lt; 500" in overview
    # the threshold marks carry their bound as a label
    assert "".join(reader.texts.get("data-threshold=p95_ms", [])) == ""  # (a label, not a key)
    assert 'class="threshold-label" data-threshold="p95_ms">&lt; 500 ms</text>' in dom
    assert 'class="threshold-label" data-threshold="p99_ms">&lt; 1000 ms</text>' in dom
    # pictures are described in words, not named by their file
    alts = re.findall(r'<img alt="([^"]*)"', dom)
    assert alts and all(not alt.startswith("evidence/") and len(alt.split()) >= 4 for alt in alts)
    assert 'aria-label="Latency percentiles of evidence[load]: p50_ms 120 ms' in dom
    # self-contained: nothing to fetch
    source = (made["package"] / "report.html").read_text()
    for reference in ('src="http', "src='http", 'href="http', "url(", "@import", "<script"):
        assert reference not in source
    assert "default-src 'none'" in source


def test_handoff_options_need_a_gate(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--handoff-package=pkg")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--handoff-package and --gate-progress need --gate NAME*"])


def test_large_files_are_copied_in_blocks_with_secrets_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_fwgates import handoff
    from pytest_fwgates.redact import Redactor

    # small blocks: the same code path without raising this process's peak memory
    monkeypatch.setattr(handoff, "_BLOCK", 256 * 1024)
    source = tmp_path / "big.log"
    line = b"GET /health 200 ok\n"
    with source.open("wb") as handle:
        for index in range(handoff._BLOCK // len(line) * 2 + 10):
            handle.write(line if index % 5_000 else f"token={SECRET}\n".encode())
        handle.write(b"\xff\xfe binary tail without a newline")
    builder = handoff._Builder(tmp_path / "out", Redactor([SECRET]))
    (tmp_path / "out").mkdir()
    assert builder.copy("evidence/big.log", source) == b""
    copied = (tmp_path / "out" / "evidence" / "big.log").read_bytes()
    assert SECRET.encode() not in copied and b"token=***" in copied
    assert copied.endswith(b"\xff\xfe binary tail without a newline")
    size, digest = builder.files["evidence/big.log"]
    assert size == len(copied)
    assert digest == __import__("hashlib").sha256(copied).hexdigest()


def test_a_package_that_cannot_be_written_fails_the_run(
    project: GateProject, tmp_path: Path
) -> None:
    key = project.path / "key.pem"
    keygen(key, project.path / "key.pub")
    # the run itself removes the signing key before the package is written
    project.gate(
        "production-readiness",
        """
        gate: production-readiness
        criteria:
          infrastructure-validation: [{command: "rm key.pem"}]
          security-compliance: [{command: "true"}]
          performance-verification: [{command: "true"}]
          monitoring-operational: [{command: "true"}]
          rollback-capability: [{command: "true"}]
        """,
    )
    project.pytester.makepyfile(test_figures=FIGURES)
    result = project.run(
        "--gate=production-readiness", "--handoff-package=pkg", "--handoff-sign-key=key.pem"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["handoff package not written: *key.pem: no such private key*"])
    assert not (project.path / "pkg").exists()
    assert not [p for p in project.path.iterdir() if p.name.startswith(".pkg")]


def test_waivers_with_their_expiry_reach_the_package(project: GateProject) -> None:
    project.gate(
        "release",
        """
        gate: release
        criteria:
          security-scanning: [{command: "false"}]
          audit-trail: [{command: "true"}]
        """,
    )
    project.waivers(
        """
        waivers:
          - gate: release
            criterion: security-scanning
            justification: scanner outage, rescan booked for Monday
            approved_by: Jane Doe
            expires: "2099-01-31"
          - gate: release
            criterion: audit-trail
            justification: an old exception that ran out
            approved_by: Sam Roe
            expires: "2020-01-01"
        """
    )
    result = project.run("--gate=release", "--gate-waivers=waivers.yaml", "--handoff-package=pkg")
    assert result.ret == 6  # human review required
    package = project.path / "pkg"
    manifest = json.loads((package / "MANIFEST.json").read_text())
    assert manifest["verdict"] == "HUMAN_REVIEW_REQUIRED"
    assert [(w["approved_by"], w["expires"], w["expired"]) for w in manifest["waivers"]] == [
        ("Jane Doe", "2099-01-31", False),
        ("Sam Roe", "2020-01-01", True),
    ]
    html = (package / "report.html").read_text()
    assert '<tr class="waiver" data-expires="2099-01-31">' in html
    assert "expired, ignored" in html
    markdown = (package / "summary.md").read_text()
    assert "| release/security-scanning | Jane Doe | 2099-01-31 | active |" in markdown
    status, out = verify(package, "--require-verdict", "PASSED")
    assert status == 1 and "verdict is HUMAN_REVIEW_REQUIRED, PASSED required" in out


OPENSSL_VERIFY = r"""
set -eu
key="$1"
test "SHA256:$(openssl pkey -pubin -in "$key" -outform DER | tail -c 32 | sha256sum | cut -c1-32)" \
  = "$(jq -r .signing_key MANIFEST.json)"
base64 -d MANIFEST.sig > "$2/manifest.sig"
test "$(wc -c < "$2/manifest.sig")" -eq 64
openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in MANIFEST.json -sigfile "$2/manifest.sig"
jq -r '.files[] | "\(.sha256)  \(.path)"' MANIFEST.json | sha256sum --check --strict --quiet
diff <(jq -r '.files[].path' MANIFEST.json | sort) \
     <(find . -type f ! -name MANIFEST.json ! -name MANIFEST.sig | sed 's|^\./||' | sort)
"""


def _openssl_verify(package: Path, public: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", OPENSSL_VERIFY, "verify", str(public), str(scratch)],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_openssl_alone_verifies_a_package(
    made: dict[str, Path], package: Path, tmp_path: Path
) -> None:
    """The commands of docs/handoff.md, with the real openssl, sha256sum and jq: what the
    docs say about the manifest, the key and the fingerprint is all a third party needs."""
    done = _openssl_verify(package, made["public"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature Verified Successfully" in done.stdout
    docs = (Path(__file__).parent.parent / "docs" / "handoff.md").read_text()
    for command in (
        "-outform DER | tail -c 32 | sha256sum | cut -c1-32",
        "base64 -d MANIFEST.sig",
        "openssl pkeyutl -verify -pubin -inkey",
        "-rawin",
        "-in MANIFEST.json -sigfile",
        """jq -r '.files[] | "\\(.sha256)  \\(.path)"' MANIFEST.json""",
        "| sha256sum --check --strict",
        "find . -type f ! -name MANIFEST.json ! -name MANIFEST.sig",
    ):
        assert command in docs and command in OPENSSL_VERIFY.replace("\\\n     ", ""), command
    # a changed file, an added file, a changed manifest: each command that should, fails
    (package / "summary.md").write_text("changed")
    assert _openssl_verify(package, made["public"], tmp_path).returncode != 0
    shutil.copytree(made["package"], tmp_path / "added")
    (tmp_path / "added" / "extra.txt").write_text("x")
    assert _openssl_verify(tmp_path / "added", made["public"], tmp_path).returncode != 0
    shutil.copytree(made["package"], tmp_path / "edited")
    manifest = tmp_path / "edited" / "MANIFEST.json"
    manifest.write_text(manifest.read_text().replace('"PASSED"', '"FAILED"', 1))
    done = _openssl_verify(tmp_path / "edited", made["public"], tmp_path)
    assert done.returncode != 0 and "Signature Verified Successfully" not in done.stdout
