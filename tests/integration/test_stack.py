"""The example stack for real: endpoints, deploys under traffic, rollback, Prometheus, shutdown.

Nothing here is mocked: gunicorn, nginx (with TLS) and Prometheus run on loopback ports.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from examples.stack import DeployError, Stack, StackError, procs
from examples.stack.config import RULE_NAMES

from .traffic import ROOT, Prober, Writer, assert_stopped, http_session

pytestmark = pytest.mark.integration


def _version(stack: Stack) -> str:
    response = http_session().get(stack.urls["app"] + "/version", timeout=2)
    assert response.status_code == 200
    return str(response.json()["version"])


def _audit(stack: Stack) -> list[dict[str, Any]]:
    lines = stack.layout.audit_log.read_text().splitlines()
    return [json.loads(line) for line in lines]


def _report(label: str, **figures: object) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n[figures] {label}: {shown}")


def _all_readable(stack: Stack, acked: dict[int, dict[str, Any]]) -> list[int]:
    """Ids of acknowledged writes that cannot be read back as written."""
    session = http_session()
    lost = []
    for item_id, payload in acked.items():
        response = session.get(f"{stack.urls['app']}/items/{item_id}", timeout=2)
        if response.status_code != 200 or response.json()["data"] != payload:
            lost.append(item_id)
    return lost


# --- endpoints -----------------------------------------------------------------------------


def test_endpoints_through_nginx(live_v1: Stack) -> None:
    session = http_session()
    app = live_v1.urls["app"]

    health = session.get(f"{app}/health", timeout=2)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": "v1"}

    version = session.get(f"{app}/version", timeout=2).json()
    assert version["version"] == "v1"
    assert version["colour"] in ("blue", "green")

    created = session.post(f"{app}/items", json={"name": "widget", "n": 3}, timeout=2)
    assert created.status_code == 201
    item_id = created.json()["id"]
    assert created.headers["Location"] == f"/items/{item_id}"
    fetched = session.get(f"{app}/items/{item_id}", timeout=2)
    assert fetched.status_code == 200
    assert fetched.json()["data"] == {"name": "widget", "n": 3}
    assert session.get(f"{app}/items/999999999", timeout=2).status_code == 404
    assert session.post(f"{app}/items", data=b"not json", timeout=2).status_code == 400
    # A 40 KB body goes through nginx (buffered in memory); over 64 KB nginx refuses it.
    big = session.post(f"{app}/items", json={"blob": "x" * 40_000}, timeout=2)
    assert big.status_code == 201
    too_big = session.post(f"{app}/items", json={"blob": "x" * 100_000}, timeout=2)
    assert too_big.status_code == 413

    started = time.monotonic()
    work = session.get(f"{app}/work?ms=150", timeout=5)
    took = time.monotonic() - started
    assert work.status_code == 200
    assert work.json()["slept_ms"] == 150
    assert 0.15 <= took < 1.5

    metrics = session.get(f"{app}/metrics", timeout=2)
    assert metrics.status_code == 200
    text = metrics.text
    # the version that served each request is a label: a canary's series are its own
    assert 'http_requests_total{endpoint="/items",method="POST",status="201",version="v1"}' in text
    assert "http_request_duration_seconds_bucket{" in text
    assert 'app_version_info{version="v1"} 1.0' in text
    assert metrics.headers["Server"] == "nginx"  # served through nginx


def test_tls_verified_against_the_stack_ca(live_v1: Stack) -> None:
    urls = live_v1.urls
    session = http_session()
    response = session.get(f"{urls['tls']}/health", timeout=3, verify=urls["ca_cert"])
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")

    # Without the CA the certificate is not trusted: the verification is real.
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{urls['tls']}/health", timeout=3)

    port = int(urls["tls"].rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=urls["ca_cert"])
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cert = tls.getpeercert()
        protocol = tls.version()
    assert protocol in ("TLSv1.2", "TLSv1.3")
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
    assert ("DNS", "localhost") in cert["subjectAltName"]
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
    assert 29 <= (expires - datetime.now(UTC)).days <= 30


# --- deploys -------------------------------------------------------------------------------


def test_bluegreen_deploy_under_traffic_loses_nothing(
    live_v1: Stack, prober: Callable[..., Prober], writer: Callable[..., Writer]
) -> None:
    with prober() as probe, writer() as writes:
        time.sleep(0.5)
        result = live_v1.deploy("v2", "bluegreen")
        time.sleep(0.5)

    _report(
        "blue/green deploy v1->v2",
        probes=probe.total,
        failed=probe.failed,
        writes_acked=len(writes.acked),
        writes_failed=writes.failed,
        deploy_s=result.duration_s,
        phases=result.phases,
    )
    assert result.result == "success"
    assert probe.total >= 50, "the prober ran"
    assert probe.failed == 0, probe.failures()
    assert writes.failed == 0, writes.failures()
    assert probe.versions[0] == "v1"
    assert probe.versions[-1] == "v2"
    assert _version(live_v1) == "v2"
    assert len(writes.acked) >= 20
    assert _all_readable(live_v1, writes.acked) == []

    record = _audit(live_v1)[-1]
    assert record["action"] == "deploy"
    assert record["strategy"] == "bluegreen"
    assert (record["from_version"], record["to_version"]) == ("v1", "v2")
    assert record["result"] == "success"
    assert record["colour"] == result.colour
    assert record["actor"]
    assert record["duration_s"] > 0

    again = live_v1.deploy("v2", "bluegreen")
    assert again.result == "noop"


def test_naive_deploy_drops_requests(
    live_v1: Stack, prober: Callable[..., Prober], writer: Callable[..., Writer]
) -> None:
    with prober() as probe, writer() as writes:
        time.sleep(0.5)
        result = live_v1.deploy("v2", "naive")
        time.sleep(0.5)

    _report(
        "naive deploy v1->v2",
        probes=probe.total,
        failed=probe.failed,
        downtime_s=round(probe.downtime_s(), 3),
        writes_acked=len(writes.acked),
        writes_failed=writes.failed,
        deploy_s=result.duration_s,
        phases=result.phases,
    )
    assert result.result == "success"
    assert _version(live_v1) == "v2"
    assert probe.failed > 0, "stopping before starting must cost requests"
    assert writes.failed > 0
    # What was acknowledged was committed: every acknowledged write survives the deploy.
    assert _all_readable(live_v1, writes.acked) == []
    assert _audit(live_v1)[-1]["strategy"] == "naive"


@pytest.mark.parametrize("fault", ["500", "slow", "crash"])
def test_faulty_version_is_refused_and_old_keeps_serving(
    live_v1: Stack, prober: Callable[..., Prober], fault: str
) -> None:
    with prober() as probe:
        with pytest.raises(DeployError) as refused:
            live_v1.deploy("v2", "bluegreen", fault=fault)
        time.sleep(0.2)

    result = refused.value.result
    _report(
        f"refused deploy (fault {fault})",
        probes=probe.total,
        failed=probe.failed,
        refused_after_s=result.duration_s,
    )
    assert result.result == "failed"
    assert "refused to switch" in result.message
    assert "keeps serving" in result.message
    assert probe.failed == 0, probe.failures()
    assert set(probe.versions) == {"v1"}
    assert _version(live_v1) == "v1"
    status = live_v1.status()
    assert status["healthy"] and status["version"] == "v1"
    assert [n for n in status["parts"] if n.startswith("app-")] == [f"app-{status['live']}"]
    record = _audit(live_v1)[-1]
    assert (record["result"], record["fault"], record["to_version"]) == ("failed", fault, "v2")


def test_rollback_returns_to_the_previous_version(live_v1: Stack) -> None:
    live_v1.deploy("v2", "bluegreen")
    assert _version(live_v1) == "v2"

    result = live_v1.rollback()
    _report("rollback v2->v1", rollback_s=result.duration_s, phases=result.phases)
    assert result.result == "success"
    assert (result.from_version, result.to_version) == ("v2", "v1")
    assert _version(live_v1) == "v1"
    assert live_v1.rollback().result == "noop"  # idempotent
    actions = [(r["action"], r["result"]) for r in _audit(live_v1)[-2:]]
    assert actions == [("rollback", "success"), ("rollback", "noop")]


def test_a_stale_pid_file_of_a_killed_instance_does_not_block_the_next_start(
    live_v1: Stack,
) -> None:
    # an instance killed before the stack recorded it (a deploy interrupted mid-start) leaves
    # its gunicorn.pid; once its PID is reused by any live process, gunicorn refuses to start
    # ("Already running on PID ..."), so every later deploy to that colour would fail
    state = json.loads(live_v1.layout.state_file.read_text())
    idle = "green" if state["live"] == "blue" else "blue"
    live_v1.layout.colour_dir(idle).mkdir(parents=True, exist_ok=True)
    (live_v1.layout.colour_dir(idle) / "gunicorn.pid").write_text(f"{os.getpid()}\n")
    try:
        result = live_v1.canary("v2", 10)
        assert result.result == "success", result.message
    finally:
        live_v1.rollback()
    assert _version(live_v1) == "v1"


# --- Prometheus ----------------------------------------------------------------------------


def _query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    response = http_session().get(
        stack.urls["prometheus"] + "/api/v1/query", params={"query": promql}, timeout=3
    )
    assert response.status_code == 200
    return list(response.json()["data"]["result"])


def _wait(what: str, check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.25)
    return time.monotonic() - started


def test_prometheus_scrapes_the_app_and_loads_the_rules(live_v1: Stack) -> None:
    _wait("up{job=app} == 1", lambda: _up(live_v1) == "1", 10)
    info = _query(live_v1, 'app_version_info{job="app"}')
    assert info and info[0]["metric"]["version"] in ("v1", "v2")

    response = http_session().get(live_v1.urls["prometheus"] + "/api/v1/rules", timeout=3)
    assert response.status_code == 200
    rules = [r for g in response.json()["data"]["groups"] for r in g["rules"]]
    assert {r["name"] for r in rules} == set(RULE_NAMES)
    assert all(r["health"] == "ok" and r["type"] == "alerting" for r in rules)


def _up(stack: Stack) -> str | None:
    result = _query(stack, 'up{job="app"}')
    return str(result[0]["value"][1]) if result else None


def _firing(stack: Stack) -> set[str]:
    response = http_session().get(stack.urls["prometheus"] + "/api/v1/alerts", timeout=3)
    alerts = response.json()["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


@pytest.mark.parametrize(
    ("fault", "alert"), [("crash", "AppDown"), ("500", "HighErrorRate"), ("slow", "HighLatency")]
)
def test_broken_build_fires_its_alert_and_rollback_recovers(
    live_v1: Stack, prober: Callable[..., Prober], fault: str, alert: str
) -> None:
    with prober(interval=0.05) as traffic:  # users keep coming while the build is broken
        with pytest.raises(DeployError) as failed:
            live_v1.deploy("v2", "naive", fault=fault)
        assert "run rollback" in str(failed.value)
        broken_at = time.monotonic()
        detected = _wait(f"{alert} firing", lambda: alert in _firing(live_v1), 30)

    result = live_v1.rollback()
    assert result.to_version == "v1"
    assert _version(live_v1) == "v1"
    _wait("up{job=app} == 1 again", lambda: _up(live_v1) == "1", 15)
    _report(
        f"drill: naive deploy of a build with fault {fault}",
        alert=alert,
        time_to_alert_s=round(detected, 1),
        rollback_s=result.duration_s,
        broken_to_scraped_again_s=round(time.monotonic() - broken_at, 1),
        failed_requests=traffic.failed,
    )
    assert traffic.failed > 0


# --- the command line, the scripts, and a clean shutdown ----------------------------------


def _run(
    argv: list[str], env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def cli_stack_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for a stack started by the command line; stopped even if the test fails."""
    stack_dir = tmp_path / "cli-stack"
    yield stack_dir
    if (stack_dir / "stack.json").exists():
        Stack(stack_dir).down()


def test_cli_up_scripts_and_down_leave_nothing_behind(cli_stack_dir: Path) -> None:
    stack_dir = cli_stack_dir
    env = {
        **os.environ,
        "FWGATES_STACK_DIR": str(stack_dir),
        "FWGATES_PYTHON": sys.executable,
        "FWGATES_ACTOR": "integration-test",
    }
    cli = [sys.executable, "-m", "examples.stack"]

    up = _run([*cli, "up"], env)
    assert up.returncode == 0, up.stderr
    values = dict(line.split("=", 1) for line in (stack_dir / "stack.env").read_text().splitlines())
    for key in (
        "FWGATES_APP_URL",
        "FWGATES_TLS_URL",
        "FWGATES_PROMETHEUS_URL",
        "FWGATES_CA_CERT",
        "FWGATES_STACK_DIR",
        "FWGATES_DB",
    ):
        assert key in values and values[key] in up.stdout
    assert values["FWGATES_APP_URL"].startswith("http://127.0.0.1:")
    assert values["FWGATES_TLS_URL"].startswith("https://127.0.0.1:")
    assert Path(values["FWGATES_DB"]).is_file()

    stack = Stack(stack_dir)
    stack.load()
    assert json.loads((stack_dir / "stack.json").read_text())["live"] == "blue"
    assert _run([*cli, "up"], env).returncode == 0  # idempotent: still the same stack
    assert stack.load()["nginx"]["http_port"] == int(values["FWGATES_APP_URL"].rsplit(":", 1)[1])

    status = _run([*cli, "status"], env)
    assert status.returncode == 0, status.stdout
    assert "healthy" in status.stdout

    deployed = _run([str(ROOT / "examples/deploy/deploy-bluegreen"), "v2"], env)
    assert deployed.returncode == 0, deployed.stderr
    assert _version(stack) == "v2"
    refused = _run([str(ROOT / "examples/deploy/deploy-bluegreen"), "v1", "--fault", "500"], env)
    assert refused.returncode == 1
    assert "refused to switch" in refused.stderr
    rolled = _run([str(ROOT / "examples/deploy/rollback")], env)
    assert rolled.returncode == 0, rolled.stderr
    assert _version(stack) == "v1"
    assert _audit(stack)[-1]["actor"] == "integration-test"

    stack.load()
    records = stack.records()
    ports = stack.ports()
    assert set(records) == {"app-blue", "nginx", "prometheus"}
    assert all(procs.leftovers(rec) for rec in records.values())

    down = _run([*cli, "down"], env, timeout=60)
    assert down.returncode == 0, down.stderr
    assert_stopped(list(records.values()), ports)
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert sorted(p.name for p in stack_dir.iterdir()) == ["audit.log"]
    assert _run([*cli, "down"], env).returncode == 0  # nothing left to stop


def test_missing_binary_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWGATES_NGINX", str(tmp_path / "no-such-nginx"))
    with pytest.raises(StackError, match=r"apt-get install -y nginx prometheus"):
        Stack(tmp_path / "stack").up()


def test_ports_taken_together_are_distinct() -> None:
    """nginx needs two ports at once: they never collide, however often they are drawn."""
    for _ in range(200):
        ports = procs.free_ports(3)
        assert len(set(ports)) == 3
        assert all(0 < port < 65536 for port in ports)
