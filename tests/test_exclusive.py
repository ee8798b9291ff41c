"""Deploy, rollback and drill checks never overlap, also across pytest-xdist workers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

STEP = "echo start $(date +%s.%N) >> steps.log; sleep 0.4; echo end $(date +%s.%N) >> steps.log"


@pytest.fixture
def health_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 65536

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def test_state_changing_checks_take_turns_under_xdist(
    project: GateProject, health_url: str
) -> None:
    kinds = ["deploy", "rollback", "deploy", "rollback", "deploy", "deploy"]
    lines = ["gate: zero-downtime-deployment", "criteria:", "  deployment-time:"]
    for n, kind in enumerate(kinds):
        lines += [
            f"    - {kind}: {STEP!r}",
            f"      id: step-{n}",
            f"      health: {health_url}",
            "      stable: 0.1s",
        ]
    project.gate("zero-downtime-deployment", "\n".join(lines) + "\n")
    result = project.run_subprocess("-n", "2", "-v", "--gate=zero-downtime-deployment", timeout=180)
    workers = {line[1:4] for line in result.outlines if line.startswith("[gw")}
    log = (project.path / "steps.log").read_text().split()
    events = sorted((float(log[i + 1]), log[i]) for i in range(0, len(log), 2))
    assert len(events) == 2 * len(kinds), result.stdout.str()
    # start, end, start, end, ...: no two steps ever ran at the same time
    assert [kind for _, kind in events] == ["start", "end"] * len(kinds)
    assert workers == {"gw0", "gw1"}, "both workers ran steps"
