"""``service``: running and enabled, right also on hosts whose init is not systemd.

testinfra picks its systemd implementation whenever ``systemctl`` exists and ``/sbin/init``
links to systemd, even when systemd is not PID 1 (containers, this kind of CI machine); there
``systemctl is-enabled`` answers from unit files and a SysV service started with ``service``
is judged by a systemd that is not running. This check asks systemd only when
``/run/systemd/system`` exists (systemd's own test, sd_booted(3)), and otherwise uses
testinfra's SysV implementation (``service NAME status``, ``/etc/rc?.d/S??NAME``). With
``pidfile:`` the process named in that file must be alive, whatever the init system.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import CheckError, Measurement
from .host import Expectations, HostCheck


def service_module(host: Any, name: str) -> Any:
    """testinfra's service object for ``name``, with the init system the host really runs."""
    import testinfra.modules.service as services

    if host.system_info.type != "linux" or host.file("/run/systemd/system/").is_directory:
        return host.service(name)
    if host.exists("rc-service"):
        klass: type[Any] = services.OpenRCService
    else:
        klass = services.SysvService
    bound = type(klass.__name__, (klass,), {"_host": host})
    return bound(name)


def pid_alive(host: Any, pidfile: str) -> tuple[bool, str]:
    """Whether the process whose pid ``pidfile`` holds is alive, and why not."""
    f = host.file(pidfile)
    if not f.exists:
        return False, f"pid file {pidfile} does not exist"
    text = f.content_string.strip()
    if not text.isdigit():
        return False, f"pid file {pidfile} holds no pid"
    if not host.file(f"/proc/{text}").is_directory:
        return False, f"no process {text} (from {pidfile})"
    return True, ""


class ServiceCheck(HostCheck):
    type_name = "service"
    summary = "A service on the host: running, enabled (systemd, or SysV without systemd)."
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **HostCheck.options_schema,
        "pidfile": {
            "type": "string",
            "minLength": 1,
            "description": "running means: the process in this pid file is alive",
        },
    }
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "running": {"type": "boolean"},
        "enabled": {"type": "boolean"},
    }

    def inspect(self, host: Any) -> Measurement:
        name = self.spec.target
        expect = dict(self.spec.expect) or {"running": True}
        service = service_module(host, name)
        seen = Expectations(name)
        seen.fact("init", type(service).__name__.replace("Service", "").lower() or "sysv")
        if "running" in expect:
            pidfile = self.spec.options.get("pidfile")
            if pidfile:
                running, why = pid_alive(host, str(pidfile))
            else:
                running, why = self._running(service), ""
            seen.fact("running", running)
            if running != expect["running"]:
                state = "running" if running else "not running"
                extra = f" ({why})" if why else ""
                seen.fail(
                    f"service {name} is {state}{extra}, expected "
                    f"{'running' if expect['running'] else 'stopped'}"
                )
        if "enabled" in expect:
            enabled = bool(service.is_enabled)
            seen.fact("enabled", enabled)
            if enabled != expect["enabled"]:
                seen.fail(
                    f"service {name} is {'enabled' if enabled else 'not enabled'}, expected "
                    f"{'enabled' if expect['enabled'] else 'disabled'}"
                )
        return seen.measurement()

    @staticmethod
    def _running(service: Any) -> bool:
        try:
            return bool(service.is_running)
        except AssertionError as exc:  # testinfra's run_expect: status 4, unknown service
            raise CheckError(f"the status of service {service.name} is unknown: {exc}") from None
