"""Waivers: a signed-off exception for a criterion or one check, until a date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .ids import waiver_key
from .schema import validate_all, waivers_schema
from .yamlsrc import LineDict, SourceError, SourceErrors, line_of, load_yaml

__all__ = ["Waiver", "WaiverSet", "load_waivers"]


@dataclass(frozen=True)
class Waiver:
    gate: str
    criterion: str
    check: str | None
    justification: str
    approved_by: str
    expires: dt.date
    source: str

    def covers(self, check: str) -> bool:
        """Whether this waiver names check id ``check``: as the id, or for a generated id
        (``type[target]``, cut at 60 characters) also by the full target."""
        if self.check is None:
            return False
        return self.check == check or waiver_key(self.check) == check

    def describe(self) -> str:
        what = f"{self.gate}/{self.criterion}" + (f"/{self.check}" if self.check else "")
        return f"{what} approved by {self.approved_by} until {self.expires.isoformat()}"


@dataclass
class WaiverSet:
    active: list[Waiver]
    expired: list[Waiver]

    @classmethod
    def empty(cls) -> WaiverSet:
        return cls([], [])

    def for_criterion(self, gate: str, criterion: str) -> Waiver | None:
        for waiver in self.active:
            if waiver.gate == gate and waiver.criterion == criterion and waiver.check is None:
                return waiver
        return None

    def for_check(self, gate: str, criterion: str, check: str) -> Waiver | None:
        for waiver in self.active:
            if (waiver.gate, waiver.criterion) == (gate, criterion) and waiver.covers(check):
                return waiver
        return None

    def expired_for(self, gate: str) -> list[Waiver]:
        return [w for w in self.expired if w.gate == gate]


def load_waivers(path: Path, today: dt.date | None = None) -> WaiverSet:
    """Read a waivers file; raise :class:`SourceError` (file:line) when it is malformed."""
    today = today or dt.date.today()
    doc = load_yaml(path)
    if not isinstance(doc, LineDict):
        raise SourceError(path, 1, "a waivers file is a mapping with 'waivers:'")
    problems = validate_all(doc, waivers_schema())
    if problems:
        raise SourceErrors.of(
            [SourceError(path, line_of(doc, where), message) for where, message in problems]
        )
    result = WaiverSet.empty()
    entries = doc["waivers"]
    errors: list[SourceError] = []
    for index, entry in enumerate(entries):
        line = entries.line_of(index)
        try:
            expires = dt.date.fromisoformat(entry["expires"])
        except ValueError:
            errors.append(
                SourceError(
                    path, entry.line_of("expires"), f"expires: not a date: {entry['expires']!r}"
                )
            )
            continue
        # what reports print is one line of printable text: a folded justification is joined,
        # a line break or escape sequence in a name is an error
        text = {key: " ".join(entry[key].split()) for key in ("justification", "approved_by")}
        unprintable = [
            key
            for key, value in (*text.items(), ("check", entry.get("check") or ""))
            if not value.isprintable()
        ]
        if unprintable:
            key = unprintable[0]
            errors.append(
                SourceError(path, entry.line_of(key), f"{key}: must be one line of printable text")
            )
            continue
        waiver = Waiver(
            gate=entry["gate"],
            criterion=entry["criterion"],
            check=entry.get("check"),
            justification=text["justification"],
            approved_by=text["approved_by"],
            expires=expires,
            source=f"{path}:{line}",
        )
        (result.active if expires >= today else result.expired).append(waiver)
    if errors:
        raise SourceErrors.of(errors)
    return result
