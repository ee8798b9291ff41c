"""The deploy_monitor fixture in a marked Python test, and bad deploy checks in gate files."""

from __future__ import annotations

import os
import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

SERVICE = """
import http.server, json, threading

VERSION = {"now": "v1"}

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536

    def do_GET(self):
        body = json.dumps({"version": VERSION["now"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{server.server_address[1]}/health"
"""


def test_deploy_monitor_records_figures_for_the_criterion(project: GateProject) -> None:
    project.pytester.makepyfile(
        service=SERVICE,
        test_deploy=textwrap.dedent(
            """
            import threading, time
            import pytest
            from service import URL, VERSION

            @pytest.mark.gate("zero-downtime-deployment", criterion="deployment-time")
            def test_switch(deploy_monitor):
                with deploy_monitor(URL, version={"json": "version", "expect": "v2"},
                                    stable=0.2) as m:
                    time.sleep(0.2)
                    VERSION["now"] = "v2"
                    time.sleep(0.2)
                assert m.values["downtime_ms"] == 0
                assert m.facts["versions_seen"] == ["v1", "v2"]
                assert m.evidence["timeline-1_svg"].read_text().startswith("<svg")
                # no prober left (the deadlines' watchdog is one thread per process)
                assert not [
                    t
                    for t in threading.enumerate()
                    if t.name.startswith("fwgates-") and t.name != "fwgates-deadlines"
                ]

            @pytest.mark.gate("zero-downtime-deployment", criterion="deployment-reliability")
            def test_never_switches(deploy_monitor):
                VERSION["now"] = "v1"
                with deploy_monitor(URL, version={"json": "version", "expect": "v3"},
                                    stable=0.2, settle=0.5):
                    pass
            """
        ),
    )
    result = project.run("--gate=zero-downtime-deployment", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    # the version never switched: the catalog's version_changed == 1 fails it first
    result.stdout.fnmatch_lines(["*version_changed = 0, expected == 1*"])
    checks = project.criterion("zero-downtime-deployment", "deployment-time")["checks"]
    assert checks[0]["measured"]["duration_s"] < 5
    assert checks[0]["measured"]["downtime_ms"] == 0


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("- deploy: ./deploy.sh\n", "missing key 'health'"),
        ("- deploy: ./deploy.sh\n  health: http://x/\n  repeat: 0\n", "repeat"),
        ("- deploy: ./deploy.sh\n  health: http://x/\n  interval: fast\n", "interval"),
        ("- drill: ./fault.sh\n  health: http://x/\n  detect: {alert: A}\n", "detect"),
        ("- rollback: ./rb.sh\n  health: http://x/\n  via: ftp\n", "via"),
        ("- deploy: ./d.sh\n  health: http://x/\n  version: {json: v, header: h}\n", "version"),
    ],
)
def test_bad_timed_checks_are_file_line_errors(
    project: GateProject, check: str, message: str
) -> None:
    body = textwrap.indent(check, "    ")
    project.gate(
        "zero-downtime-deployment",
        "gate: zero-downtime-deployment\ncriteria:\n  deployment-time:\n" + body,
    )
    result = project.run("--gate=zero-downtime-deployment")
    result.stdout.fnmatch_lines([f"*zero-downtime-deployment.yaml:*: *{message}*"])
    assert "Traceback" not in result.stdout.str()


def test_data_snapshot_and_http_rollback_trigger(
    project: GateProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a gate of the team's own: these deploys change data, not the version (the catalog's
    # zero-downtime-deployment demands a version switch)
    project.gate(
        "release",
        """
        gate: release
        vars:
          health: ${env:FWGATES_TEST_HEALTH}
          base: ${env:FWGATES_TEST_BASE}
        criteria:
          deployment-time:
            - deploy: "echo deployed >> deploys.txt"
              id: keeps-data
              health: ${health}
              data: cat data.txt
              stable: 0.1s
            - deploy: "echo changed > data.txt"
              id: changes-data
              health: ${health}
              data: cat data.txt
              stable: 0.1s
          automated-rollback:
            - rollback: POST ${base}/rollback
              id: http-trigger
              via: http
              health: ${health}
              stable: 0.1s
            - rollback: ${base}/fail
              id: http-trigger-refused
              via: http
              health: ${health}
              stable: 0.1s
        """,
    )
    (project.path / "data.txt").write_text("42 rows\n")
    health = os.environ["FWGATES_TEST_HEALTH"]
    monkeypatch.setenv("FWGATES_TEST_BASE", health.rsplit("/", 1)[0])
    project.run("--gate=release")
    timed = project.criterion("release", "deployment-time")["checks"]
    assert [c["outcome"] for c in timed] == ["passed", "failed"]
    assert timed[0]["measured"]["data_changed"] == 0
    assert (
        "the data snapshot changed during the deploy: '42 rows' -> 'changed'" in timed[1]["message"]
    )
    rollbacks = project.criterion("release", "automated-rollback")["checks"]
    assert rollbacks[0]["outcome"] == "passed"
    assert rollbacks[0]["measured"]["trigger_status"] == 202
    assert rollbacks[0]["measured"]["recovery_s"] < 5
    assert rollbacks[1]["outcome"] == "failed"
    assert "rollback call answered 500" in rollbacks[1]["message"]


def test_failing_deploy_command_fails_with_its_reason(project: GateProject) -> None:
    project.gate(
        "zero-downtime-deployment",
        """
        gate: zero-downtime-deployment
        criteria:
          deployment-time:
            - deploy: "echo starting; echo boom >&2; exit 3"
              health: ${env:FWGATES_TEST_HEALTH}
        """,
    )
    result = project.run("--gate=zero-downtime-deployment")
    result.stdout.fnmatch_lines(["*FAILED: deploy command failed (exit 3): boom*"])
    [check] = project.criterion("zero-downtime-deployment", "deployment-time")["checks"]
    assert check["measured"]["exit_status"] == 3
    assert check["measured"]["deploy_stderr"] == "boom"
    assert set(check["evidence"]) >= {"deploy_stdout", "deploy_stderr", "timeline_svg"}
