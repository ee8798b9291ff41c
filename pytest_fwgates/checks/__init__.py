"""Check types, registered by name and imported only when a gate uses them."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from ..owners import BUILTIN_OWNS, figure_owners
from .base import Check, CheckContext, CheckError, Measurement, run_check

__all__ = [
    "BUILTIN_CHECKS",
    "Check",
    "CheckContext",
    "CheckError",
    "CheckRegistry",
    "Measurement",
    "run_check",
]

#: type name -> "module:Class"; each module is imported the first time its type is needed
BUILTIN_CHECKS: dict[str, str] = {
    "command": "pytest_fwgates.checks.command:CommandCheck",
    "http": "pytest_fwgates.checks.http:HttpCheck",
    "prometheus": "pytest_fwgates.checks.prometheus:PrometheusCheck",
    "metric": "pytest_fwgates.checks.metric:MetricCheck",
    "availability": "pytest_fwgates.checks.availability:AvailabilityCheck",
    "junit": "pytest_fwgates.checks.junit:JUnitCheck",
    "handoff": "pytest_fwgates.checks.handoff:HandoffCheck",
    "progress": "pytest_fwgates.checks.progress:ProgressCheck",
    "load": "pytest_fwgates.checks.load:LoadCheck",
    "deploy": "pytest_fwgates.checks.deploy:DeployCheck",
    "rollback": "pytest_fwgates.checks.rollback:RollbackCheck",
    "drill": "pytest_fwgates.checks.drill:DrillCheck",
    "file": "pytest_fwgates.checks.file:FileCheck",
    "service": "pytest_fwgates.checks.service:ServiceCheck",
    "package": "pytest_fwgates.checks.package:PackageCheck",
    "socket": "pytest_fwgates.checks.socket:SocketCheck",
    "process": "pytest_fwgates.checks.process:ProcessCheck",
    "user": "pytest_fwgates.checks.user:UserCheck",
    "group": "pytest_fwgates.checks.group:GroupCheck",
    "sysctl": "pytest_fwgates.checks.sysctl:SysctlCheck",
    "mount": "pytest_fwgates.checks.mount:MountCheck",
    "listening": "pytest_fwgates.checks.listening:ListeningCheck",
    "tls": "pytest_fwgates.checks.tls:TlsCheck",
    "audit_trail": "pytest_fwgates.checks.audit_trail:AuditTrailCheck",
    "scan": "pytest_fwgates.checks.scan:ScanCheck",
    "sshd": "pytest_fwgates.checks.access:SshdCheck",
    "login_users": "pytest_fwgates.checks.access:LoginUsersCheck",
    "sudo_members": "pytest_fwgates.checks.access:SudoMembersCheck",
    "private_keys": "pytest_fwgates.checks.access:PrivateKeysCheck",
}


class CheckRegistry:
    """Check types by name. Plugins add theirs in ``pytest_fwgates_register_checks``."""

    def __init__(self, entries: dict[str, str | type[Check]] | None = None) -> None:
        self._entries: dict[str, str | type[Check]] = dict(BUILTIN_CHECKS)
        #: types a plugin added or replaced (their ``owns``; the built-ins are in a table)
        self._added: set[str] = set(entries or ())
        if entries:
            self._entries.update(entries)
        self._owners: dict[str, frozenset[str]] | None = None

    @classmethod
    def from_hook(cls, hook: Any) -> CheckRegistry:
        """The built-in types plus those plugins add through ``pytest_fwgates_register_checks``."""
        registry = cls()
        hook.pytest_fwgates_register_checks(registry=registry)
        return registry

    def register(self, name: str, check: str | type[Check]) -> None:
        """Add a check type: a :class:`Check` subclass or a ``"module:Class"`` path."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"bad check type name {name!r}")
        self._entries[name] = check
        self._added.add(name)
        self._owners = None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> type[Check]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            cls = getattr(importlib.import_module(module_name), attr)
            if not (isinstance(cls, type) and issubclass(cls, Check)):
                raise TypeError(f"{entry} is not a Check subclass")
            self._entries[name] = cls
            return cls
        return entry

    def classes(self, names: Iterable[str] | None = None) -> dict[str, type[Check]]:
        return {name: self.get(name) for name in (names or self.names())}

    def owners(self) -> dict[str, frozenset[str]]:
        """figure -> the check types that own it (:mod:`pytest_fwgates.owners`): the
        built-in table and the ``owns`` of every type a plugin registered."""
        if self._owners is None:
            by_type: dict[str, frozenset[str]] = {}
            for name in self._entries:
                if name in self._added:
                    by_type[name] = frozenset(self.get(name).owns)
                else:
                    by_type[name] = BUILTIN_OWNS.get(name, frozenset())
            self._owners = figure_owners(by_type)
        return self._owners
