"""The ``service`` check on a machine whose init is not systemd, with Debian's nginx.

Here ``systemctl`` is installed and ``/sbin/init`` links to systemd, so testinfra would ask
systemd, which is not running. The check uses the SysV init script instead: nginx is started
and stopped with ``service nginx start|stop`` (its Debian configuration, port 80).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import GateProject

pytestmark = pytest.mark.integration

LOCK = "/tmp/fwgates-test-sysv-nginx.lock"


def _service(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["service", "nginx", *args], capture_output=True, text=True, timeout=60, check=False
    )


@contextlib.contextmanager
def _sysv_nginx() -> Iterator[bool]:
    """nginx running through its init script; stopped after unless it ran before."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        was_running = _service("status").returncode == 0
        if not was_running:
            started = _service("start")
            if started.returncode != 0:
                pytest.fail(f"service nginx start failed: {started.stdout}{started.stderr}")
        try:
            yield was_running
        finally:
            if not was_running:
                _service("stop")


def _checks(project: GateProject) -> dict[str, dict]:
    checks = project.criterion("production-readiness", "infrastructure-validation")["checks"]
    return {c["check"]: c for c in checks}


GATE = """
    gate: production-readiness
    criteria:
      infrastructure-validation:
        - service: nginx
          id: nginx-running
          expect: {running: true, enabled: %(enabled)s}
        - service: nginx
          id: nginx-pidfile
          pidfile: /run/nginx.pid
          expect: {running: true}
        - service: nginx
          id: nginx-stopped
          expect: {running: false}
"""


def test_service_check_follows_sysv_nginx(project: GateProject) -> None:
    enabled = "true" if glob.glob("/etc/rc[2-5].d/S??nginx") else "false"
    project.gate("production-readiness", GATE % {"enabled": enabled})
    with _sysv_nginx() as was_running:
        project.run("--gate=production-readiness")
        running = _checks(project)
        assert running["nginx-running"]["outcome"] == "passed", running["nginx-running"]
        if not os.path.isdir("/run/systemd/system"):
            assert running["nginx-running"]["measured"]["init"] == "sysv"
        assert running["nginx-pidfile"]["outcome"] == "passed"
        message = running["nginx-stopped"]["message"]
        assert message == "service nginx is running, expected stopped"
        if was_running:
            return  # someone else's nginx: stopping it is not ours to do
        _service("stop")
        project.run("--gate=production-readiness")
        stopped = _checks(project)
    assert stopped["nginx-running"]["message"] == ("service nginx is not running, expected running")
    assert stopped["nginx-pidfile"]["message"].startswith("service nginx is not running (")
    assert stopped["nginx-stopped"]["outcome"] == "passed"
