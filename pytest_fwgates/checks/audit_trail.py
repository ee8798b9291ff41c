"""``audit_trail``: a deploy records file exists, is recent, and its last entry names the version.

The file is read on the host through testinfra (``host.file``), so a fleet's audit logs are
checked where they are. Lines that are JSON objects (JSON Lines, as the example stack's deploy
scripts write) give the entry's time (``time_field``) and version (``version_field``); other
lines are matched as text, and the file's modification time is the entry's time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, ClassVar

from .base import CheckError, Measurement
from .host import Expectations, HostCheck

_MAX_BYTES = 5_000_000


def _parse_time(text: str) -> float | None:
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


class AuditTrailCheck(HostCheck):
    type_name = "audit_trail"
    summary = "A deploy audit log: exists, entries, age of the last entry, the version it names."
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {"mismatches", "entries", "last_entry_age_s"}
    )
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **HostCheck.options_schema,
        "version": {
            "type": "string",
            "minLength": 1,
            "description": "the deployed version the last entry must name",
        },
        "version_field": {
            "type": "string",
            "minLength": 1,
            "description": "JSON Lines: the field holding the version (default: to_version, "
            "else version)",
        },
        "time_field": {
            "type": "string",
            "minLength": 1,
            "description": "JSON Lines: the field holding the ISO time (default: time)",
        },
    }
    default_expect: ClassVar[dict[str, Any]] = {"entries": ">= 1", "last_entry_age_s": "< 24h"}

    def inspect(self, host: Any) -> Measurement:
        path = self.spec.target
        options = self.spec.options
        f = host.file(path)
        if not f.exists:
            raise CheckError(f"audit trail {path} does not exist on {self.host_id}")
        if not f.is_file:
            raise CheckError(f"audit trail {path} is not a file")
        if f.size > _MAX_BYTES:
            raise CheckError(f"audit trail {path} is larger than {_MAX_BYTES} bytes")
        lines = [line for line in f.content_string.splitlines() if line.strip()]
        seen = Expectations(path)
        seen.fact("world_writable", bool(f.mode & 0o002))
        if f.mode & 0o002:
            seen.fail(f"{path} is world-writable (mode {f.mode:04o})")
        values: dict[str, float] = {"entries": float(len(lines))}
        if not lines:
            return seen.measurement(values)
        last = lines[-1]
        record: dict[str, Any] | None = None
        try:
            parsed = json.loads(last)
            record = parsed if isinstance(parsed, dict) else None
        except ValueError:
            record = None
        when: float | None = None
        if record is not None:
            stamp = record.get(str(options.get("time_field") or "time"))
            when = _parse_time(str(stamp)) if stamp is not None else None
            field = options.get("version_field")
            if field:
                named = record.get(str(field))
            else:
                named = record.get("to_version", record.get("version"))
            seen.fact("last_entry", {k: record[k] for k in list(record)[:12]})
            outcome = str(record.get("result", "")).lower()
            if outcome in ("failed", "failure", "error"):
                seen.fail(
                    f"the last entry records a deploy that {outcome}".replace(
                        "that error", "with an error"
                    )
                )
        else:
            named = None
            seen.fact("last_entry", last[:500])
        if when is None:
            when = float(f.mtime.timestamp())
        values["last_entry_age_s"] = round(max(0.0, time.time() - when), 3)
        wanted = options.get("version")
        if wanted is not None:
            if record is not None:
                seen.fact("version", named)
                if str(named) != str(wanted):
                    seen.fail(f"the last entry names version {named}, expected {wanted}")
            elif str(wanted) not in last:
                seen.fail(f"the last entry does not name version {wanted}")
        return seen.measurement(values)
