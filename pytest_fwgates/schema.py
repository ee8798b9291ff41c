"""The JSON Schema of gate files and waiver files, and one-line messages for its errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .checks import Check
from .checks.host import HOSTS_SCHEMA

__all__ = ["NAME_PATTERN", "check_schema", "gate_schema", "validate", "waivers_schema"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
STATUSES = [
    "PRODUCTION_READY",
    "OPERATIONS_HANDOFF_READY",
    "HUMAN_REVIEW_REQUIRED",
    "EXCELLENCE_ACHIEVED",
]
_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_THRESHOLD: dict[str, Any] = {
    "description": "An operator and a number with an optional unit: '< 300ms', '>= 99.9%', "
    "'<= +10%' (relative to the baseline). A bare number means '=='.",
    "type": ["string", "number"],
}
_DURATION: dict[str, Any] = {
    "description": "Seconds, or a number with a unit: 30, '90s', '2m', '500ms'.",
    "type": ["string", "number"],
}


def check_schema(cls: type[Check]) -> dict[str, Any]:
    """The schema of one check of type ``cls``."""
    expect: dict[str, Any] = {key: _THRESHOLD for key in sorted(cls.threshold_keys)}
    expect.update(cls.expect_schema)
    properties: dict[str, Any] = {
        cls.type_name: {**cls.target_schema, "description": cls.summary},
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "expect": {"type": "object", "properties": expect, "additionalProperties": False},
        "timeout": _DURATION,
    }
    properties.update(cls.options_schema)
    return {
        "type": "object",
        "required": [cls.type_name],
        "properties": properties,
        "additionalProperties": False,
    }


def gate_schema(check_types: Mapping[str, type[Check]] | None = None) -> dict[str, Any]:
    """The schema of a gate file; with ``check_types``, each type's check schema too."""
    check: dict[str, Any] = {
        "type": "object",
        "minProperties": 1,
        "description": "A mapping whose first key is the check type.",
    }
    if check_types:
        check["anyOf"] = [check_schema(cls) for _, cls in sorted(check_types.items())]
    return {
        "$schema": _DIALECT,
        "$id": "urn:pytest-fwgates:gate-file:1",
        "title": "pytest-fwgates gate file",
        "type": "object",
        "required": ["gate"],
        "additionalProperties": False,
        "properties": {
            "gate": {"type": "string", "pattern": NAME_PATTERN, "description": "== file name"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "phase": {"type": ["string", "integer"]},
            "status": {"enum": STATUSES},
            "hosts": HOSTS_SCHEMA,
            "includes": {
                "type": "array",
                "items": {"type": "string", "pattern": NAME_PATTERN},
                "uniqueItems": True,
            },
            "vars": {
                "type": "object",
                "propertyNames": {"pattern": VAR_PATTERN},
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
            "criteria": {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"$ref": "#/$defs/criterion"},
            },
        },
        "$defs": {
            "criterion": {
                "description": "A list of checks, or a mapping with title, required and checks.",
                "type": ["array", "object"],
                "if": {"type": "array"},
                "then": {"$ref": "#/$defs/checks"},
                "else": {"$ref": "#/$defs/criterion_mapping"},
            },
            "criterion_mapping": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "required": {"type": "boolean"},
                    "human_review": {"type": "boolean"},
                    "thresholds": {"type": "object", "additionalProperties": _THRESHOLD},
                    "checks": {"$ref": "#/$defs/checks"},
                },
            },
            "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}},
            "check": check,
        },
    }


def waivers_schema() -> dict[str, Any]:
    waiver = {
        "type": "object",
        "required": ["gate", "criterion", "justification", "approved_by", "expires"],
        "additionalProperties": False,
        "properties": {
            "gate": {"type": "string", "pattern": NAME_PATTERN},
            "criterion": {"type": "string", "pattern": NAME_PATTERN},
            "check": {"type": "string", "minLength": 1},
            "justification": {"type": "string", "minLength": 10},
            "approved_by": {"type": "string", "minLength": 1},
            "expires": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        },
    }
    return {
        "$schema": _DIALECT,
        "$id": "urn:pytest-fwgates:waivers:1",
        "type": "object",
        "required": ["waivers"],
        "additionalProperties": False,
        "properties": {"waivers": {"type": "array", "items": waiver}},
    }


def _describe(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "mapping"


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "number": "a number", "integer": "a whole number", "boolean": "true or false",
               "null": "empty"}  # fmt: skip


def _message(error: ValidationError) -> tuple[list[str | int], str]:
    """The path to point at and a one-line message for a schema error."""
    path = list(error.absolute_path)
    where = _describe(path)
    prefix = f"{where}: " if where else ""
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        extra = [key for key in instance if key not in allowed]
        key = extra[0] if extra else "?"
        hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        suggestion = (
            f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
        )
        return [*path, key], f"{prefix}unknown key '{key}'{suggestion}"
    if error.validator == "required" and isinstance(error.validator_value, list):
        present = instance if isinstance(instance, dict) else {}
        missing = [k for k in error.validator_value if k not in present]
        return path, f"{prefix}missing key '{missing[0] if missing else '?'}'"
    if error.validator == "type":
        wanted = error.validator_value
        words = " or ".join(
            _TYPE_WORDS.get(str(w), str(w))
            for w in (wanted if isinstance(wanted, list) else [wanted])
        )
        return path, f"{prefix}must be {words}, not {_json_type(instance)}"
    if error.validator == "pattern" and error.validator_value == NAME_PATTERN:
        return path, f"{prefix}'{instance}' is not a valid name (lowercase letters, digits, dashes)"
    if error.validator == "propertyNames":
        return path, f"{prefix}'{instance}' is not a valid name (lowercase letters, digits, dashes)"
    if error.validator == "enum":
        values = error.validator_value if isinstance(error.validator_value, list) else []
        options = ", ".join(str(v) for v in values)
        return path, f"{prefix}'{instance}' is not one of: {options}"
    if error.validator == "minProperties":
        return path, f"{prefix}must not be empty"
    if error.validator == "uniqueItems":
        return path, f"{prefix}has duplicate entries"
    if error.validator == "minLength":
        return path, f"{prefix}must not be empty" if instance == "" else f"{prefix}is too short"
    return path, f"{prefix}{error.message}"


def validate(document: Any, schema: dict[str, Any]) -> tuple[list[str | int], str] | None:
    """The most relevant schema error as (path, message), or ``None`` when valid."""
    validator = jsonschema.Draft202012Validator(schema)
    error = best_match(validator.iter_errors(document))
    if error is None:
        return None
    # an if/then/else error names the branch: point at the deepest real cause
    while error.context:
        deeper = best_match(error.context)
        if deeper is None:
            break
        error = deeper
    return _message(error)
