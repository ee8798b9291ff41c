"""``package``: installed or not, and its version against a constraint (``>= 1.22``)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ..thresholds import OPERATORS
from .base import Measurement
from .host import Expectations, HostCheck

_CONSTRAINT = re.compile(r"^\s*(<=|>=|==|!=|<|>|=)?\s*([A-Za-z0-9.+:~_-]+)\s*$")


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256 if char else 0


def _compare_part(a: str, b: str) -> int:
    """dpkg's comparison of an upstream version or a revision (deb-version(7))."""
    while a or b:
        na = re.match(r"[^0-9]*", a).group()  # type: ignore[union-attr]
        nb = re.match(r"[^0-9]*", b).group()  # type: ignore[union-attr]
        for i in range(max(len(na), len(nb))):
            ca = _order(na[i]) if i < len(na) else 0
            cb = _order(nb[i]) if i < len(nb) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(na) :], b[len(nb) :]
        da = re.match(r"[0-9]*", a).group()  # type: ignore[union-attr]
        db = re.match(r"[0-9]*", b).group()  # type: ignore[union-attr]
        ia, ib = int(da or 0), int(db or 0)
        if ia != ib:
            return -1 if ia < ib else 1
        a, b = a[len(da) :], b[len(db) :]
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0) if epoch.isdigit() else 0, upstream, revision


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian orders package versions (also fine for most rpm versions)."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def version_holds(actual: str, constraint: str) -> bool:
    match = _CONSTRAINT.match(constraint)
    if match is None:
        raise ValueError(f"not a version constraint: {constraint!r}")
    op = match.group(1) or "=="
    op = "==" if op == "=" else op
    return OPERATORS[op](compare_versions(actual, match.group(2)), 0)


class PackageCheck(HostCheck):
    type_name = "package"
    summary = "A package on the host: installed, version (exact, or a constraint like '>= 1.22')."
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "installed": {"type": "boolean"},
        "version": {
            "type": "string",
            "pattern": _CONSTRAINT.pattern,
            "description": "a version, or an operator and a version: '>= 1.22', '< 2'",
        },
    }

    def inspect(self, host: Any) -> Measurement:
        name = self.spec.target
        expect = self.spec.expect
        package = host.package(name)
        seen = Expectations(name)
        installed = bool(package.is_installed)
        wanted = expect.get("installed", True)
        seen.fact("installed", installed)
        if installed != wanted:
            seen.fail(
                f"package {name} is {'installed' if installed else 'not installed'}, "
                f"expected {'installed' if wanted else 'not installed'}"
            )
        if installed:
            version = seen.fact("version", str(package.version))
            if "version" in expect and not version_holds(version, str(expect["version"])):
                seen.fail(f"version is {version}, expected {expect['version']}")
        elif "version" in expect and wanted:
            seen.fact("version", None)
        return seen.measurement()
