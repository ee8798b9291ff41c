"""``group``: a group on the host: exists, gid, members."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Measurement
from .host import STRINGS, Expectations, HostCheck, as_list


class GroupCheck(HostCheck):
    type_name = "group"
    summary = "A group on the host: exists, gid, members (exactly these)."
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "exists": {"type": "boolean"},
        "gid": {"type": "integer", "minimum": 0},
        "members": {**STRINGS, "description": "the group's members, exactly"},
    }

    def inspect(self, host: Any) -> Measurement:
        name = self.spec.target
        expect = self.spec.expect
        group = host.group(name)
        seen = Expectations(name)
        exists = seen.fact("exists", bool(group.exists))
        wanted = expect.get("exists", True)
        if exists != wanted:
            seen.fail(f"group {name} {'exists' if exists else 'does not exist'}, "
                      f"expected it {'to exist' if wanted else 'not to'}")  # fmt: skip
        if not exists:
            return seen.measurement()
        if "gid" in expect:
            seen.equal("gid", int(group.gid), int(expect["gid"]))
        if "members" in expect:
            wanted_members = sorted(set(as_list(expect["members"])))
            seen.equal("members", sorted(group.members), wanted_members)
        return seen.measurement()
