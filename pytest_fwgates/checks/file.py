"""``file``: a path on the host: exists, type, mode, owner, group, contents, sha256, size."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Measurement
from .host import MODE, STRINGS, Expectations, HostCheck, as_list, octal

_TYPES = ("file", "directory", "symlink", "socket", "pipe")


def _kind(f: Any) -> str:
    # a symlink first: testinfra's is_file/is_directory follow links
    for kind, test in (
        ("symlink", "is_symlink"),
        ("directory", "is_directory"),
        ("file", "is_file"),
        ("socket", "is_socket"),
        ("pipe", "is_pipe"),
    ):
        if getattr(f, test):
            return kind
    return "other"


class FileCheck(HostCheck):
    type_name = "file"
    summary = "A path on the host: exists, type, mode, owner, group, contains, sha256, size."
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"mismatches", "size"})
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "exists": {"type": "boolean"},
        "type": {"enum": list(_TYPES)},
        "mode": MODE,
        "owner": {"type": "string", "minLength": 1},
        "group": {"type": "string", "minLength": 1},
        "contains": {**STRINGS, "description": "grep patterns the file must match"},
        "not_contains": {**STRINGS, "description": "grep patterns the file must not match"},
        "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        "linked_to": {"type": "string", "minLength": 1},
    }

    def inspect(self, host: Any) -> Measurement:
        expect = self.spec.expect
        path = self.spec.target
        f = host.file(path)
        seen = Expectations(path)
        exists = bool(f.exists)
        wanted = expect.get("exists", True)
        seen.equal("exists", exists, wanted)
        if not exists:
            if wanted:
                seen.failures[-1] = f"{path} does not exist"
            return seen.measurement()
        if wanted is False:
            seen.failures[-1] = f"{path} exists, expected it not to"
        # only what the gate asks is measured: each attribute is a command on the host
        kind = ""
        if "type" in expect or "linked_to" in expect:
            kind = seen.fact("type", _kind(f))
        if "type" in expect:
            seen.equal("type", kind, expect["type"])
        if "mode" in expect:
            mode = f.mode
            seen.fact("mode", f"{mode:04o}")
            if mode != octal(expect["mode"]):
                seen.fail(f"mode is {mode:04o}, expected {octal(expect['mode']):04o}")
        for key, attr in (("owner", "user"), ("group", "group")):
            if key in expect:
                seen.equal(key, getattr(f, attr), expect[key])
        if "linked_to" in expect:
            if kind == "symlink":
                seen.equal("linked_to", f.linked_to, expect["linked_to"])
            else:
                seen.fail(f"{path} is a {kind}, expected a symlink to {expect['linked_to']}")
        for pattern in as_list(expect.get("contains")):
            if not f.contains(pattern):
                seen.fail(f"{path} does not contain {pattern!r}")
        for pattern in as_list(expect.get("not_contains")):
            if f.contains(pattern):
                seen.fail(f"{path} contains {pattern!r}")
        if "sha256" in expect:
            seen.equal("sha256", f.sha256sum, str(expect["sha256"]).lower())
        values: dict[str, float] = {}
        if "size" in self.spec.thresholds:
            values["size"] = float(f.size)
        return seen.measurement(values)
