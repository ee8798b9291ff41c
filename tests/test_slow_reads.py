"""Every network read ends by its deadline, however slowly a server sends: real loopback
servers that trickle the headers or the body one byte at a time (one byte every 0.5 s, so a
timeout per read never fires), against every HTTP-based check, the prober, the writer, the
``http_probe`` fixture and the tls check. Each ends within its bound plus a generous slack,
and is an error (a failed probe for the prober and the availability check), never a pass."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback import server_context

from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.deadline import Deadline
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Outcome, Source
from pytest_fwgates.probe import Prober, Writer

#: a busy machine may be slow to start and join threads: generous, never tight
SLACK = 4.0
BYTE_EVERY = 0.5
BODY = b'{"status": "success", "data": {"resultType": "vector", "result": []}}'

#: what each kind of slow server sends, the part before ``|`` at once, the rest trickled
MODES = {
    "slow-headers": b"|HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "slow-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n|" + BODY * 2000,
    # no length: the end of the stream ends the body, so a cut body looks complete
    "slow-body-until-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n|" + BODY * 2000,
    "slow-chunks": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n|"
    + b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in BODY * 100),
    "silent": b"|",
    # a TLS record header announcing 16 KiB, then its bytes one by one
    "slow-tls": b"|\x16\x03\x03\x40\x00" + b"\x00" * 20000,
}


@contextlib.contextmanager
def trickling(mode: str, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A loopback server that reads the request, sends the part of ``MODES[mode]`` before
    ``|`` at once and the rest one byte every 0.5 s; yields its base URL. With ``tls``: the
    handshake at once, then the same inside TLS (an https URL)."""
    head, _, rest = MODES[mode].partition(b"|")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                if tls is not None:
                    conn = tls.wrap_socket(conn, server_side=True)
                conn.recv(65536)
                conn.sendall(head)
                for byte in rest:
                    if stop.wait(BYTE_EVERY):
                        return
                    conn.sendall(bytes([byte]))
                stop.wait(30)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _run(tmp_path: Path, mapping: dict[str, Any]) -> tuple[CheckResult, float]:
    loader = GateLoader([], registry=CheckRegistry(), environ={})
    spec = loader.spec_from_mapping(None, None, mapping, Source(tmp_path / "t.py", 1))
    context = CheckContext(rootdir=tmp_path, evidence_root=tmp_path / "evidence")
    started = time.monotonic()
    result = run_check(CheckRegistry().get(spec.type)(spec, context), "t")
    return result, time.monotonic() - started


HTTP_MODES = ["slow-headers", "slow-body", "slow-body-until-close", "slow-chunks", "silent"]


@pytest.mark.parametrize("mode", [*HTTP_MODES, "slow-tls"])
def test_an_http_check_ends_by_its_timeout(tmp_path: Path, mode: str) -> None:
    with trickling(mode) as base:
        if mode == "slow-tls":  # an https URL whose handshake trickles
            base = base.replace("http://", "https://")
        result, took = _run(tmp_path, {"http": f"{base}/", "timeout": "1.5s"})
    assert result.outcome is Outcome.ERROR, result.message
    assert "within 1.5 s" in result.message
    assert took < 1.5 + SLACK


@pytest.mark.parametrize(
    "mapping",
    [
        pytest.param({"prometheus": "up", "server": "{base}", "timeout": "1.5s"}, id="prometheus"),
        pytest.param(
            {"metric": "{base}/m.json", "path": "value", "timeout": "1.5s"},
            id="metric",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["slow-headers", "slow-body-until-close"])
def test_prometheus_and_metric_checks_end_by_their_timeout(
    tmp_path: Path, mode: str, mapping: dict[str, Any]
) -> None:
    with trickling(mode) as base:
        filled = {
            k: v.replace("{base}", base) if isinstance(v, str) else v for k, v in mapping.items()
        }
        result, took = _run(tmp_path, filled)
    assert result.outcome is Outcome.ERROR, result.message
    assert "within 1.5 s" in result.message
    assert took < 1.5 + SLACK


def test_an_availability_check_counts_a_slow_answer_as_down(tmp_path: Path) -> None:
    with trickling("slow-body-until-close") as base:
        result, took = _run(
            tmp_path,
            {
                "availability": f"{base}/",
                "window": "2s",
                "interval": "1s",
                "probe_timeout": "0.5s",
                "expect": {"availability_pct": ">= 50%"},
            },
        )
    assert result.outcome is Outcome.FAILED, result.message
    assert result.measured["availability_pct"] == 0
    assert took < 2 + 0.5 + SLACK


@pytest.mark.parametrize("mode", ["slow-headers", "slow-body-until-close", "slow-tls"])
def test_the_prober_and_the_writer_end_each_request_by_their_timeout(mode: str) -> None:
    with trickling(mode) as base:
        if mode == "slow-tls":  # an https URL whose handshake trickles
            base = base.replace("http://", "https://")
        started = time.monotonic()
        with Prober(f"{base}/health", interval=0.1, timeout=1.0) as prober:
            time.sleep(2.2)
        took_prober = time.monotonic() - started
        probes = prober.probes
        started = time.monotonic()
        with Writer(f"{base}/w", f"{base}/w/{{id}}", interval=0.1, timeout=1.0) as writer:
            time.sleep(1.2)
        took_writer = time.monotonic() - started
    assert probes and not any(p.ok for p in probes)
    assert all(p.end - p.start < 1.0 + SLACK for p in probes)
    assert {p.error for p in probes} == {"timeout"}
    assert len(probes) >= 2  # each ended by its timeout, so the next could start
    assert took_prober < 2.2 + 1.0 + SLACK
    assert writer.writes and not writer.acknowledged
    assert took_writer < 1.2 + 1.0 + SLACK


def test_a_tls_check_ends_by_its_timeout_when_the_handshake_trickles(tmp_path: Path) -> None:
    with trickling("slow-tls") as base:
        target = base.replace("http://", "https://")
        result, took = _run(tmp_path, {"tls": target, "timeout": "1.5s"})
    assert result.outcome is Outcome.ERROR, result.message
    assert "within 1.5 s" in result.message
    assert took < 1.5 + SLACK


@pytest.mark.parametrize(
    ("mode", "mapping"),
    [
        pytest.param("slow-tls", {"tls": "{https}"}, id="tls-handshake"),
        pytest.param("slow-tls", {"http": "{https}/"}, id="http-handshake"),
        pytest.param("silent", {"http": "{base}/"}, id="http"),
        pytest.param("silent", {"prometheus": "up", "server": "{base}"}, id="prometheus"),
        pytest.param("silent", {"metric": "{base}/m.json", "path": "value"}, id="metric"),
    ],
)
def test_a_check_ended_by_its_sockets_own_timeout_names_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, mapping: dict[str, Any]
) -> None:
    """Two bounds end a check: its deadline (sockets shut down) and the socket's own timeout
    (set to the time left, e.g. over a whole TLS handshake). On a busy machine either fires
    first; with the deadline's shutdown never coming, the socket's timeout always does, and
    the message still names the check's bound (not "The handshake operation timed out")."""
    monkeypatch.setattr(Deadline, "_expire", lambda self: None)
    with trickling(mode) as base:
        https = base.replace("http://", "https://")
        filled = {
            k: v.replace("{base}", base).replace("{https}", https) for k, v in mapping.items()
        }
        result, took = _run(tmp_path, {**filled, "timeout": "1.5s"})
    assert result.outcome is Outcome.ERROR, result.message
    assert "within 1.5 s" in result.message
    assert took < 1.5 + SLACK


def test_a_deadline_is_expired_once_its_time_passed_before_its_watchdog_ran() -> None:
    deadline = Deadline(0.05)  # never entered: no watchdog expires it
    assert not deadline.expired
    time.sleep(0.1)
    assert deadline.expired


def test_the_http_probe_fixture_ends_by_its_timeout(pytester: pytest.Pytester) -> None:
    with trickling("slow-body-until-close") as base:
        pytester.makepyfile(
            f"""
            import time
            import pytest

            @pytest.mark.gate("production-readiness", criterion="security-compliance")
            def test_slow(http_probe):
                started = time.monotonic()
                with pytest.raises(pytest.fail.Exception, match="within 1.5 s"):
                    http_probe.get("{base}/", timeout=1.5)
                assert time.monotonic() - started < 1.5 + {SLACK}
            """
        )
        result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_a_deadline_shuts_a_blocked_read_down_and_nests() -> None:
    with trickling("silent") as base:
        port = int(base.rsplit(":", 1)[1])
        with Deadline(10.0) as outer:
            with Deadline(0.5) as inner:
                sock = inner.connect(("127.0.0.1", port))
                sock.settimeout(30)  # a read timeout far beyond the deadline
                started = time.monotonic()
                assert sock.recv(10) == b""  # shut down: end of stream
                assert time.monotonic() - started < 0.5 + SLACK
                sock.close()
            assert inner.expired and not outer.expired
            assert Deadline(60.0).at <= outer.at  # an inner one never ends later


@pytest.mark.parametrize("mode", ["slow-headers", "slow-body-until-close"])
def test_fwgates_init_looks_at_a_trickling_service_within_its_bound(mode: str) -> None:
    from pytest_fwgates.init import discover

    with trickling(mode) as base:
        started = time.monotonic()
        found = discover(base, prometheus=base, timeout=1.0, look_at_host=False)
        took = time.monotonic() - started
    assert not found.health and not found.metrics
    assert any("did not answer within 1 s" in note for note in found.notes), found.notes
    # the service's root and Prometheus' first query: one bound each (was 20 s and hours)
    assert took < 2 * 1.0 + SLACK


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return server_context(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("mode", ["slow-headers", "slow-body-until-close"])
def test_requests_inside_tls_end_by_their_timeout(
    tmp_path: Path, server_tls: ssl.SSLContext, mode: str
) -> None:
    """The handshake at once, then the answer trickled inside TLS: the TLS socket a new
    connection makes is watched from its first request on (the prober's was not: its plain
    socket, given up by the TLS wrapper, was)."""
    with trickling(mode, server_tls) as base:
        started = time.monotonic()
        with Prober(f"{base}/health", interval=0.1, timeout=1.0, verify=False) as prober:
            time.sleep(1.5)
        took_prober = time.monotonic() - started
        result, took = _run(tmp_path, {"http": f"{base}/", "timeout": "1.5s", "verify": False})
    assert prober.probes and not any(p.ok for p in prober.probes)
    assert all(p.end - p.start < 1.0 + SLACK for p in prober.probes)
    assert {p.error for p in prober.probes} == {"timeout"}
    assert took_prober < 1.5 + 1.0 + SLACK
    assert result.outcome is Outcome.ERROR, result.message
    assert "within 1.5 s" in result.message
    assert took < 1.5 + SLACK


def test_a_deadline_never_cuts_a_socket_another_operation_took_over() -> None:
    """A pooled connection taken by another thread while the operation that used it is still
    inside its block: when the first operation's deadline passes, it must not shut down the
    socket the other one reads from (an answer read to the end of the stream would be cut
    short and look complete)."""
    got: list[Any] = []
    head = MODES["slow-body-until-close"].index(b"|")
    with trickling("slow-body-until-close") as base:
        port = int(base.rsplit(":", 1)[1])
        with Deadline(0.5) as first:
            sock = first.connect(("127.0.0.1", port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

            def second() -> None:
                with Deadline(30.0) as deadline:
                    deadline.watch(sock)  # what a reused connection does at its request
                    time.sleep(1.5)  # the first deadline passes meanwhile
                    sock.settimeout(5)
                    data = b""
                    while len(data) < head + 3:  # body bytes sent after the first deadline
                        chunk = sock.recv(100)
                        if not chunk:
                            break
                        data += chunk
                    got.extend([data, deadline.expired])

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(10)
        sock.close()
    assert first.expired
    assert got and len(got[0]) >= head + 3, got  # not shut down: the answer goes on
    assert got[1] is False


@contextlib.contextmanager
def _blackhole() -> Iterator[int]:
    """A loopback port whose accept queue is full: a connect to it hangs (SYNs dropped)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    try:
        for _ in range(3):  # fill the queue; later connects are not answered
            sock = socket.socket()
            sock.settimeout(0.3)
            with contextlib.suppress(OSError):
                sock.connect(("127.0.0.1", port))
            held.append(sock)
        yield port
    finally:
        for sock in held:
            sock.close()
        listener.close()


def test_a_redirect_to_a_blackhole_connects_within_the_time_left(tmp_path: Path) -> None:
    """The answer comes late (most of the bound), a redirect to a port that never accepts:
    the connect of the redirect gets the time left, not the whole timeout again."""
    with _blackhole() as hole:
        listener = socket.create_server(("127.0.0.1", 0))

        def serve() -> None:
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    time.sleep(3.5)
                    conn.sendall(
                        b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n"
                        + f"Location: http://127.0.0.1:{hole}/\r\n\r\n".encode()
                    )
                    time.sleep(10)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        result, took = _run(tmp_path, {"http": f"http://127.0.0.1:{port}/", "timeout": "4s"})
        listener.close()
    assert result.outcome is Outcome.ERROR, result.message
    assert "within 4 s" in result.message, result.message
    assert took < 4 + 3.0  # was at least 3.5 s + a whole 4 s connect
