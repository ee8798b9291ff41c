"""Records files for the ``metric`` check: JSON, JSON Lines, YAML or CSV, each record with the
line it starts on, so a bad record is reported as ``file:line: what is wrong``."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..fsutil import read_regular
from .base import CheckError

__all__ = ["Record", "RecordError", "load_document", "load_records", "parse_time", "truthy"]

#: size of a records file read at most
MAX_FILE = 50 * 1024 * 1024


class RecordError(CheckError):
    """A file or record that cannot be used: ``file:line: message``."""

    def __init__(self, where: str, line: int | None, message: str) -> None:
        super().__init__(f"{where}:{line}: {message}" if line else f"{where}: {message}")


@dataclass
class Record:
    fields: dict[str, Any]
    where: str
    line: int | None
    index: int

    def error(self, message: str) -> RecordError:
        if self.line is None:
            return RecordError(self.where, None, f"record {self.index + 1}: {message}")
        return RecordError(self.where, self.line, message)


def _kind(name: str, kind: str | None) -> str:
    if kind:
        return kind
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    return {"yml": "yaml", "ndjson": "jsonl"}.get(suffix, suffix or "json")


def read_text(path: Path) -> str:
    try:
        data = read_regular(path, MAX_FILE)
    except FileNotFoundError:
        raise CheckError(f"{path}: no such file") from None
    except OSError as exc:
        raise CheckError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE:
        raise CheckError(f"{path}: larger than {MAX_FILE // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecordError(str(path), line, "not UTF-8 text") from None


def load_document(text: str, where: str, kind: str) -> Any:
    """A whole JSON/YAML/CSV/JSON Lines document (CSV: a list of row mappings)."""
    if kind == "yaml":
        import tempfile

        from ..yamlsrc import SourceError, load_yaml

        try:
            if Path(where).is_file():
                return load_yaml(Path(where))
            # the project's safe loader reads files: give it one (a service's body has no file)
            with tempfile.TemporaryDirectory(prefix="fwgates-yaml-") as folder:
                copy = Path(folder) / "document.yaml"
                copy.write_text(text, encoding="utf-8")
                return load_yaml(copy)
        except SourceError as exc:
            raise RecordError(where, exc.line, exc.message) from None
    if kind == "csv":
        return [r.fields for r in _csv_records(text, where)]
    if kind == "jsonl":
        return [r.fields for r in _jsonl_records(text, where)]
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise RecordError(where, exc.lineno, f"not valid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise RecordError(where, None, f"not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_records(
    text: str, where: str, kind: str | None = None, records_path: str | None = None
) -> list[Record]:
    """The records of a file: a list of mappings, each with its line where known."""
    kind = _kind(where, kind)
    if kind == "csv":
        records = _csv_records(text, where)
    elif kind == "jsonl":
        records = _jsonl_records(text, where)
    elif kind == "json" and records_path is None and text.lstrip().startswith("["):
        records = _json_array_records(text, where)
    else:
        document = _json_with_lines(text, where) if kind == "json" else None
        if document is None:
            document = load_document(text, where, kind)
        if records_path is not None:
            from ._web import PathError, lookup

            try:
                document = lookup(document, records_path)
            except PathError as exc:
                raise RecordError(where, None, f"records: {exc}") from None
        if not isinstance(document, list):
            raise RecordError(
                where,
                getattr(document, "line", None),
                "expected a list of records (give 'records:' with the path to the list)",
            )
        records = []
        for index, item in enumerate(document):
            line = document.line_of(index) if hasattr(document, "line_of") else None
            records.append(Record(_mapping(item, where, line, index), where, line, index))
    if not records:
        message = "only a header line, no records" if kind == "csv" else "no records"
        raise RecordError(where, 1, message)
    return records


def _json_with_lines(text: str, where: str) -> Any:
    """A JSON document read by the YAML loader, whose lists know the line of each item;
    None when it reads differently (JSON that is not YAML): then records have no lines."""
    try:
        as_json = json.loads(text, parse_constant=_no_constant)
        as_yaml = load_document(text, where, "yaml")
    except (ValueError, RecordError):
        return None
    return as_yaml if as_yaml == as_json else None


def _mapping(item: Any, where: str, line: int | None, index: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        shown = "a list" if isinstance(item, list) else type(item).__name__
        raise Record({}, where, line, index).error(f"a record is a mapping, found {shown}")
    return dict(item)


def _csv_records(text: str, where: str) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="__extra__")
    records: list[Record] = []
    try:
        start = 2
        for index, row in enumerate(reader):
            line = start
            start = reader.line_num + 1
            if "__extra__" in row:
                raise RecordError(where, line, "more fields than the header names")
            if any(value is None for value in row.values()):
                raise RecordError(where, line, "fewer fields than the header names")
            cleaned = {str(k).strip(): v.strip() for k, v in row.items()}
            if not any(cleaned.values()):
                continue  # a blank line
            records.append(Record(cleaned, where, line, index))
    except csv.Error as exc:
        raise RecordError(where, reader.line_num, f"not valid CSV: {exc}") from None
    if reader.fieldnames is None:
        raise RecordError(where, 1, "empty: expected a header line and records")
    return records


def _jsonl_records(text: str, where: str) -> list[Record]:
    records: list[Record] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw, parse_constant=_no_constant)
        except ValueError as exc:
            raise RecordError(where, number, f"not valid JSON: {exc}") from None
        records.append(Record(_mapping(item, where, number, len(records)), where, number, 0))
    for index, record in enumerate(records):
        record.index = index
    return records


def _json_array_records(text: str, where: str) -> list[Record]:
    """A top-level JSON array, decoded item by item so each record knows its line."""
    decoder = json.JSONDecoder(parse_constant=_no_constant)
    records: list[Record] = []
    position, line, counted = 0, 1, 0

    def line_at(offset: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, offset)
        counted = offset
        return line

    def skip(offset: int) -> int:
        while offset < len(text) and text[offset] in " \t\r\n":
            offset += 1
        return offset

    position = skip(position) + 1  # the '['
    position = skip(position)
    if position < len(text) and text[position] == "]":
        return records
    while True:
        try:
            item, end = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise RecordError(where, line_at(position), f"not valid JSON: {exc}") from None
        at = line_at(position)
        records.append(Record(_mapping(item, where, at, len(records)), where, at, len(records)))
        position = skip(end)
        if position < len(text) and text[position] == ",":
            position = skip(position + 1)
            continue
        if position < len(text) and text[position] == "]":
            if text[skip(position + 1) :].strip():
                raise RecordError(where, line_at(position), "not valid JSON: text after the list")
            return records
        raise RecordError(
            where, line_at(min(position, len(text))), "not valid JSON: expected , or ]"
        )


def parse_time(value: Any) -> float:
    """Seconds since the epoch from an ISO 8601 time (``Z`` or an offset; naive is UTC) or a
    number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"not a time: {value!r} (expected ISO 8601)") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    else:
        raise ValueError(f"not a time: {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"not a time: {value!r}")
    return number


_TRUE = {"1", "true", "yes", "y", "t", "ok", "up", "success", "anomaly", "positive"}
_FALSE = {"0", "false", "no", "n", "f", "fail", "failed", "down", "error", "normal", "negative"}


def truthy(value: Any, positive: str | None = None) -> bool:
    """A yes/no field: booleans, 1/0, true/false, yes/no, ok/fail; ``positive`` names the
    value that means yes when labels are words (``anomaly``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if positive is not None:
        return text == positive.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a yes/no value: {value!r}")
