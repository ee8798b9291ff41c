"""``mount``: a mount point on the host: exists, filesystem, options."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Measurement
from .host import STRINGS, Expectations, HostCheck, as_list


class MountCheck(HostCheck):
    type_name = "mount"
    summary = "A mount point on the host: exists, fs (filesystem type), options (at least these)."
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "exists": {"type": "boolean"},
        "fs": {"type": "string", "minLength": 1},
        "options": {**STRINGS, "description": "mount options it must have (e.g. ro, noexec)"},
        "device": {"type": "string", "minLength": 1},
    }

    def inspect(self, host: Any) -> Measurement:
        path = self.spec.target
        expect = self.spec.expect
        mount = host.mount_point(path)
        seen = Expectations(path)
        exists = seen.fact("exists", bool(mount.exists))
        wanted = expect.get("exists", True)
        if exists != wanted:
            seen.fail(f"{path} is {'a mount point' if exists else 'not a mount point'}, "
                      f"expected it {'to be' if wanted else 'not to be'}")  # fmt: skip
        if not exists:
            return seen.measurement()
        fs = seen.fact("fs", str(mount.filesystem))
        if "fs" in expect:
            seen.equal("fs", fs, expect["fs"])
        device = seen.fact("device", str(mount.device))
        if "device" in expect:
            seen.equal("device", device, expect["device"])
        options = seen.fact("options", list(mount.options))
        missing = [o for o in as_list(expect.get("options")) if o not in options]
        if missing:
            seen.fail(f"{path} is mounted without {', '.join(missing)} "
                      f"(options: {','.join(options)})")  # fmt: skip
        return seen.measurement()
