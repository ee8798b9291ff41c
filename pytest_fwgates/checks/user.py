"""``user``: an account on the host: exists, uid, gid, groups, shell, home."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Measurement
from .host import STRINGS, Expectations, HostCheck, as_list


class UserCheck(HostCheck):
    type_name = "user"
    summary = "A user on the host: exists, uid, gid, groups (at least these), shell, home."
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "exists": {"type": "boolean"},
        "uid": {"type": "integer", "minimum": 0},
        "gid": {"type": "integer", "minimum": 0},
        "groups": {**STRINGS, "description": "groups the user must be a member of"},
        "shell": {"type": "string", "minLength": 1},
        "home": {"type": "string", "minLength": 1},
    }

    def inspect(self, host: Any) -> Measurement:
        name = self.spec.target
        expect = self.spec.expect
        user = host.user(name)
        seen = Expectations(name)
        exists = seen.fact("exists", bool(user.exists))
        wanted = expect.get("exists", True)
        if exists != wanted:
            seen.fail(f"user {name} {'exists' if exists else 'does not exist'}, "
                      f"expected it {'to exist' if wanted else 'not to'}")  # fmt: skip
        if not exists:
            return seen.measurement()
        # only what the gate asks is measured: each attribute is a command on the host
        for key in ("uid", "gid"):
            if key in expect:
                seen.equal(key, int(getattr(user, key)), int(expect[key]))
        if "groups" in expect:
            groups = seen.fact("groups", sorted(user.groups))
            missing = [g for g in as_list(expect["groups"]) if g not in groups]
            if missing:
                seen.fail(
                    f"user {name} is not in {', '.join(missing)} (groups: {', '.join(groups)})"
                )
        for key in ("shell", "home"):
            if key in expect:
                seen.equal(key, str(getattr(user, key)), expect[key])
        return seen.measurement()
