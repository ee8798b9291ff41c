"""The JSON Schema of gate files and waiver files, and one-line messages for its errors."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .baseline import BASELINE_SCHEMA
from .checks import Check
from .checks.host import HOSTS_SCHEMA

if TYPE_CHECKING:  # jsonschema is imported when a document is not valid, not before
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator as _Validator

__all__ = [
    "NAME_PATTERN",
    "CompiledSchema",
    "check_schema",
    "check_validator",
    "gate_schema",
    "gate_validator",
    "validate",
    "validate_all",
    "waivers_schema",
]

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
        "baseline": BASELINE_SCHEMA,
    }
    properties.update(cls.options_schema)
    return {
        "type": "object",
        "required": [cls.type_name, *cls.required_options],
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
                    "confidence": {
                        "description": "The confidence level the criterion's thresholds are "
                        "judged at (e.g. 95%, 99%); default: the ini option gate_confidence, "
                        "else 95%. Lowering a catalog standard's level loosens it.",
                        "type": ["number", "string"],
                    },
                    "thresholds": {"type": "object", "additionalProperties": _THRESHOLD},
                    "measures": {
                        "description": "Values some check of the criterion must measure "
                        "(e.g. p95_ms), whatever their thresholds: a check that cannot measure "
                        "them cannot carry the criterion. An entry 'a|b' is met by either.",
                        "type": "array",
                        "items": {
                            "type": "string",
                            "pattern": "^[a-z][a-z0-9_]*(\\|[a-z][a-z0-9_]*)*$",
                        },
                        "uniqueItems": True,
                    },
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


class CompiledSchema:
    """A schema, its fast-path test (compiled on first use) and its jsonschema validator
    (built, and jsonschema imported, only when a document is not accepted by the fast path:
    a valid gate run never imports jsonschema)."""

    __slots__ = ("_test", "_validator", "schema")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._test: _Test | bool | None = False  # False: not compiled yet
        self._validator: _Validator | None = None

    @property
    def validator(self) -> _Validator:
        if self._validator is None:
            import jsonschema

            self._validator = jsonschema.Draft202012Validator(self.schema)
        return self._validator

    def accepts(self, document: Any) -> bool:
        """``True`` when the fast path finds ``document`` valid; ``False`` when it cannot
        tell (jsonschema then decides)."""
        test = self._test
        if test is False:
            try:
                test = _Compiler(self.schema).compile(self.schema)
            except _FAILED:
                test = None
            self._test = test
        if not callable(test):
            return False
        try:
            return bool(test(document))
        except _FAILED:
            return False


_CHECK_VALIDATORS: dict[type[Check], CompiledSchema] = {}


def check_validator(cls: type[Check]) -> CompiledSchema:
    """The compiled schema of one check type, built once per type."""
    compiled = _CHECK_VALIDATORS.get(cls)
    if compiled is None:
        compiled = _CHECK_VALIDATORS[cls] = CompiledSchema(check_schema(cls))
    return compiled


@functools.cache
def gate_validator() -> CompiledSchema:
    """The compiled gate file schema (without per-type check schemas)."""
    return CompiledSchema(gate_schema())


@functools.cache
def _compiled_for(text: str) -> CompiledSchema:
    return CompiledSchema(json.loads(text))


def _as_compiled(schema: dict[str, Any] | CompiledSchema) -> CompiledSchema:
    if isinstance(schema, dict):
        return _compiled_for(json.dumps(schema, sort_keys=True))
    return schema


def _deepest(error: ValidationError) -> ValidationError:
    # an if/then/else or anyOf error names the branch: point at the deepest real cause
    from jsonschema.exceptions import best_match

    while error.context:
        deeper = best_match(error.context)
        if deeper is None:
            break
        error = deeper
    return error


# -- a fast path for valid documents -------------------------------------------------------
#
# jsonschema costs tens of microseconds per check, seconds for a file of 50,000 checks. Most
# documents are valid, so a small evaluator of the keywords our schemas use accepts them
# first; whatever it does not accept (or any keyword it does not know) goes to jsonschema,
# which stays the judge of every error and its message.

_ANNOTATIONS = frozenset(
    {"description", "title", "default", "examples", "$schema", "$id", "$comment", "$defs"}
)


class _Unknown(Exception):
    """A keyword or a value the fast path does not decide: jsonschema does."""


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        raise _Unknown("enum of containers")
    return bool(a == b) and isinstance(a, str) == isinstance(b, str)


_Test = Callable[[Any], bool]


def _always(value: Any) -> bool:
    return True


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, _Test] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _number,
    "integer": lambda v: _number(v) and (isinstance(v, int) or float(v).is_integer()),
}
_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda v, n: v >= n,
    "maximum": lambda v, n: v <= n,
    "exclusiveMinimum": lambda v, n: v > n,
    "exclusiveMaximum": lambda v, n: v < n,
}


class _Compiler:
    """Turns a schema into one function per keyword, once; a keyword it does not know
    raises :class:`_Unknown` (then jsonschema decides every document)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, _Test] = {}

    def compile(self, schema: Any) -> _Test:
        if schema is True:
            return _always
        if schema is False:
            return lambda value: False
        if not isinstance(schema, dict):
            raise _Unknown("schema")
        tests = tuple(
            self._keyword(schema, key, rule)
            for key, rule in schema.items()
            if key not in _ANNOTATIONS and key not in ("then", "else")
        )
        if not tests:
            return _always
        if len(tests) == 1:
            return tests[0]

        def every(value: Any) -> bool:
            return all(test(value) for test in tests)

        return every

    def _ref(self, name: str) -> _Test:
        def ref(value: Any) -> bool:
            test = self.refs.get(name)
            if test is None:
                test = self.refs[name] = self.compile(self.root["$defs"][name])
            return test(value)

        return ref

    def _keyword(self, schema: dict[str, Any], key: str, rule: Any) -> _Test:
        if key == "type":
            names = rule if isinstance(rule, list) else [rule]
            if any(name not in _TYPES for name in names):
                raise _Unknown(str(rule))
            kinds = tuple(_TYPES[name] for name in names)
            return lambda value: any(kind(value) for kind in kinds)
        if key == "$ref":
            if not (isinstance(rule, str) and rule.startswith("#/$defs/")):
                raise _Unknown(str(rule))
            return self._ref(rule[len("#/$defs/") :])
        if key == "anyOf":
            subs = tuple(self.compile(sub) for sub in rule)
            return lambda value: any(sub(value) for sub in subs)
        if key == "if":
            test = self.compile(rule)
            then = self.compile(schema["then"]) if "then" in schema else _always
            other = self.compile(schema["else"]) if "else" in schema else _always
            return lambda value: then(value) if test(value) else other(value)
        if key == "enum":
            options = list(rule)
            return lambda value: any(_json_equal(value, option) for option in options)
        if key == "const":
            return lambda value: _json_equal(value, rule)
        if key in ("minLength", "maxLength"):
            least = key == "minLength"
            return lambda value: (
                not isinstance(value, str) or (len(value) >= rule if least else len(value) <= rule)
            )
        if key == "pattern":
            compiled = re.compile(rule)
            return lambda value: not isinstance(value, str) or compiled.search(value) is not None
        if key == "format":
            return _always  # an annotation: jsonschema asserts no format without a checker
        if key in _BOUNDS:
            holds = _BOUNDS[key]
            return lambda value: not _number(value) or holds(value, rule)
        if key in _OBJECT_KEYS:
            return self._object(schema, key, rule)
        if key in _ARRAY_KEYS:
            return self._array(key, rule)
        raise _Unknown(key)

    def _object(self, schema: dict[str, Any], key: str, rule: Any) -> _Test:
        if key == "properties":
            tests = {name: self.compile(sub) for name, sub in rule.items()}
            return lambda value: (
                not isinstance(value, dict)
                or all(tests[k](v) for k, v in value.items() if k in tests)
            )
        if key == "additionalProperties":
            if "patternProperties" in schema:
                raise _Unknown("patternProperties")
            known = frozenset(schema.get("properties", {}))
            if rule is False:
                return lambda value: not isinstance(value, dict) or known.issuperset(value)
            test = self.compile(rule)
            return lambda value: (
                not isinstance(value, dict)
                or all(test(v) for k, v in value.items() if k not in known)
            )
        if key == "required":
            names = tuple(rule)
            return lambda value: not isinstance(value, dict) or all(k in value for k in names)
        if key in ("minProperties", "maxProperties"):
            least = key == "minProperties"
            return lambda value: (
                not isinstance(value, dict) or (len(value) >= rule if least else len(value) <= rule)
            )
        if key == "propertyNames":
            test = self.compile(rule)
            return lambda value: not isinstance(value, dict) or all(test(k) for k in value)
        raise _Unknown(key)

    def _array(self, key: str, rule: Any) -> _Test:
        if key == "items":
            test = self.compile(rule)
            return lambda value: not isinstance(value, list) or all(test(v) for v in value)
        if key in ("minItems", "maxItems"):
            least = key == "minItems"
            return lambda value: (
                not isinstance(value, list) or (len(value) >= rule if least else len(value) <= rule)
            )
        if key == "uniqueItems":
            if not rule:
                return _always

            def unique(value: Any) -> bool:
                if not isinstance(value, list):
                    return True
                if not all(isinstance(item, str) for item in value):
                    raise _Unknown("uniqueItems")
                return len(set(value)) == len(value)

            return unique
        raise _Unknown(key)


_OBJECT_KEYS = frozenset(
    {
        "properties",
        "additionalProperties",
        "required",
        "minProperties",
        "maxProperties",
        "propertyNames",
    }
)
_ARRAY_KEYS = frozenset({"items", "minItems", "maxItems", "uniqueItems"})
_FAILED = (_Unknown, KeyError, TypeError, re.error, RecursionError)


def fast_valid(schema: dict[str, Any], document: Any) -> bool | None:
    """``True`` when ``document`` is valid by the keywords this module knows; ``None``
    when it cannot tell (jsonschema decides); never ``True`` for an invalid document."""
    try:
        return True if _Compiler(schema).compile(schema)(document) else None
    except _FAILED:
        return None


def validate(
    document: Any, schema: dict[str, Any] | CompiledSchema
) -> tuple[list[str | int], str] | None:
    """The most relevant schema error as (path, message), or ``None`` when valid."""
    compiled = _as_compiled(schema)
    if compiled.accepts(document):
        return None
    from jsonschema.exceptions import best_match

    error = best_match(compiled.validator.iter_errors(document))
    if error is None:
        return None
    return _message(_deepest(error))


def validate_all(
    document: Any, schema: dict[str, Any] | CompiledSchema
) -> list[tuple[list[str | int], str]]:
    """Every schema error as (path, message): the most relevant one per place, in order."""
    compiled = _as_compiled(schema)
    if compiled.accepts(document):
        return []
    from jsonschema.exceptions import best_match

    by_place: dict[tuple[str | int, ...], list[ValidationError]] = {}
    for error in compiled.validator.iter_errors(document):
        by_place.setdefault(tuple(error.absolute_path), []).append(error)
    found: list[tuple[list[str | int], str]] = []
    for errors in by_place.values():
        best = best_match(errors)
        if best is not None:
            problem = _message(_deepest(best))
            if problem not in found:
                found.append(problem)
    return found
