"""``http``: one request (retried until it holds, if asked): status, body, JSON, headers, latency.

```yaml
- http: ${url}/health
  headers: {Authorization: "Bearer ${env:API_TOKEN}"}
  retry: {within: 60s, every: 2s}
  expect: {status: 200, json: {status: ok}, latency_ms: "< 200ms"}
```

Header values are secrets: they are masked in every output before the request is sent.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar

from ..fsutil import write_file
from ..patterns import PatternError, PatternTimeout, compile_pattern, search
from ..thresholds import ThresholdError, parse, parse_duration
from .base import Check, CheckContext, CheckError, Measurement, text_failures

__all__ = ["HttpCheck", "HttpRequest", "expect_value"]

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: request headers whose values describe the request, not who sends it: not masked
PLAIN_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "content-type",
        "pragma",
        "user-agent",
    }
)
_STRINGS: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}
_SCALAR = {"type": ["string", "number", "boolean"]}
_DURATION = {"type": ["string", "number"]}
#: body text that regular expressions are matched against at most
_MATCHED = 1024 * 1024
_EVIDENCE_BODY = 4096

REQUEST_OPTIONS: dict[str, dict[str, Any]] = {
    "method": {"enum": [*METHODS, *(m.lower() for m in METHODS)]},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    "query": {
        "type": "object",
        "additionalProperties": {
            "anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}],
        },
    },
    "json": {"description": "request body sent as JSON"},
    "form": {"type": "object", "additionalProperties": _SCALAR},
    "body": {"type": "string", "description": "raw request body"},
    "redirects": {"type": "boolean", "description": "follow redirects (default true)"},
    "verify": {"type": "boolean", "description": "verify TLS certificates (default true)"},
    "ca": {"type": "string", "minLength": 1, "description": "CA bundle to verify against"},
}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def expect_value(name: str, actual: Any, expected: Any) -> str | None:
    """Why ``actual`` is not ``expected`` (``None`` if it is).

    A string expectation with an operator (``"> 5"``, ``"<= 1s"``) is a threshold for a
    number; anything else is compared for equality (``1`` equals ``1.0``; a number equals
    its text, so ``"200"`` from a CSV equals ``200``).
    """
    if isinstance(expected, str) and expected.strip()[:1] in ("<", ">", "=", "!"):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            with contextlib.suppress(ValueError):
                actual = float(actual) if isinstance(actual, str) else actual
        if isinstance(actual, int | float) and not isinstance(actual, bool):
            try:
                threshold = parse(expected)
                holds = threshold.holds(name, float(actual))
            except ThresholdError as exc:
                return f"{name}: {exc}"
            if holds:
                return None
            return f"{name} = {actual!r}, expected {threshold}"
    if isinstance(actual, bool) or isinstance(expected, bool):
        if actual is expected:
            return None
    elif actual == expected:
        return None
    elif isinstance(actual, int | float | str) and isinstance(expected, int | float | str):
        try:
            if float(expected) == float(actual):
                return None
        except ValueError:
            pass
    return f"{name} = {_shown(actual)}, expected {_shown(expected)}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:119] + "…"


class HttpRequest:
    """Builds and sends the request an http check (or the ``http_probe`` fixture) describes."""

    def __init__(self, context: CheckContext, options: dict[str, Any], timeout: float) -> None:
        from . import _web

        self.context = context
        self.options = options
        self.timeout = timeout
        self.method = str(options.get("method") or "GET").upper()
        self.headers: dict[str, str] = {
            str(k): str(v) for k, v in (options.get("headers") or {}).items()
        }
        # before anything can print: header values are secrets (but a content type is not)
        _web.register_secrets(
            context.redactor,
            [v for k, v in self.headers.items() if k.lower() not in PLAIN_HEADERS],
        )
        bodies = [key for key in ("json", "form", "body") if options.get(key) is not None]
        if len(bodies) > 1:
            raise CheckError(f"give one request body: {' or '.join(bodies)}")
        self.verify = _web.tls_verify(context, options)
        self.session = _web.session_for(context)

    def send(self, url: str) -> Any:
        from . import _web

        body = self.options.get("body")
        form = self.options.get("form")
        return _web.fetch(
            self.session,
            self.method,
            url,
            timeout=self.timeout,
            headers=self.headers or None,
            params=self.options.get("query"),
            json_body=self.options.get("json"),
            data=body.encode() if isinstance(body, str) else form,
            verify=self.verify,
            allow_redirects=self.options.get("redirects", True) is not False,
        )


def judge_response(fetched: Any, expect: dict[str, Any]) -> list[str]:
    """The expectations a response does not meet (status, body, json, headers)."""
    from . import _web

    failures: list[str] = []
    wanted = _as_list(expect.get("status"))
    if wanted:
        if fetched.status not in wanted:
            shown = " or ".join(str(s) for s in wanted)
            failures.append(f"status {fetched.status}, expected {shown}")
    elif fetched.status >= 400:
        failures.append(f"status {fetched.status} {fetched.reason}".rstrip())
    text = fetched.text
    failures += text_failures("body", text, expect)
    for pattern in _as_list(expect.get("body_matches")):
        try:
            compiled = compile_pattern(pattern)
        except PatternError as exc:
            raise CheckError(f"body_matches: bad regular expression {pattern!r}: {exc}") from None
        try:
            found = search(compiled, text[:_MATCHED])
        except PatternTimeout as exc:
            raise CheckError(f"body_matches {pattern!r}: {exc}") from None
        if found is None:
            failures.append(f"body does not match {pattern!r}")
    if expect.get("json"):
        document = fetched.json()
        for path, expected in expect["json"].items():
            try:
                actual = _web.lookup(document, str(path))
            except _web.PathError as exc:
                failures.append(f"json {exc}")
                continue
            problem = expect_value(f"json {path}", actual, expected)
            if problem:
                failures.append(problem)
    received = {k.lower(): v for k, v in fetched.headers.items()}
    for name, expected in (expect.get("headers") or {}).items():
        value = received.get(str(name).lower())
        if expected is None:
            if value is not None:
                failures.append(f"header {name} is present, expected absent")
        elif value is None:
            failures.append(f"header {name} is missing")
        elif str(expected) not in value:
            failures.append(f"header {name} does not contain {str(expected)!r}")
    return failures


class HttpCheck(Check):
    type_name = "http"
    mask_env = True
    summary = "Send an HTTP request: status, body, JSON, headers, latency; retry until it holds."
    target_schema: ClassVar[dict[str, Any]] = {"type": "string", "minLength": 1}
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **REQUEST_OPTIONS,
        "retry": {
            "type": "object",
            "properties": {"within": _DURATION, "every": _DURATION},
            "required": ["within"],
            "additionalProperties": False,
            "description": "retry until the expectations hold, for at most 'within'",
        },
    }
    #: http_status is the status of the answer, owned: only an http check proves one came
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"latency_ms", "http_status"})
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "status": {
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 100, "maximum": 599},
                    "minItems": 1,
                },
            ]
        },
        "body_contains": _STRINGS,
        "body_not_contains": _STRINGS,
        "body_matches": _STRINGS,
        "json": {"type": "object", "minProperties": 1},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "null"]},
        },
    }
    default_timeout = 10.0

    def _retry(self) -> tuple[float, float] | None:
        retry = self.spec.options.get("retry")
        if not retry:
            return None
        try:
            within = parse_duration(retry["within"])
            every = parse_duration(retry.get("every", 1.0))
        except ThresholdError as exc:
            raise CheckError(f"retry: {exc}") from None
        return within, min(every, within)

    def measure(self) -> Measurement:
        from . import _web

        request = HttpRequest(self.context, self.spec.options, self.timeout)
        retry = self._retry()
        started = time.monotonic()
        tries = 0
        attempts: list[str] = []
        while True:
            tries += 1
            error: str | None = None
            fetched: Any = None
            failures: list[str] = []
            try:
                fetched = request.send(self.spec.target)
                failures = judge_response(fetched, self.spec.expect)
                outcome = f"{fetched.status}" + (f" {failures[0]}" if failures else " ok")
            except _web.FetchError as exc:
                error = str(exc)
                outcome = error
            except CheckError as exc:  # e.g. the body is not JSON: retried like a failure
                error = str(exc)
                outcome = error
            elapsed = time.monotonic() - started
            attempts.append(f"{tries},{elapsed:.3f},{_csv(outcome)}")
            # retried until it answers as expected; never until one request happens to be
            # fast enough: latency_ms is the first such answer's, not the best of several
            done = error is None and not failures
            if done or retry is None:
                break
            within, every = retry
            if elapsed + every > within:
                break
            time.sleep(every)
        evidence = self._evidence(fetched, attempts, request)
        waited = f" (after {tries} tries in {time.monotonic() - started:.1f} s)" if retry else ""
        if error is not None:
            raise CheckError(error + waited)
        if failures and retry:
            failures[-1] += waited
        values: dict[str, float] = {
            "latency_ms": fetched.latency_ms,
            "status": float(fetched.status),
            "http_status": float(fetched.status),
            "tries": float(tries),
        }
        facts: dict[str, Any] = {
            "url": fetched.url,
            "method": request.method,
            "bytes": len(fetched.body),
        }
        if fetched.redirects:
            facts["redirects"] = len(fetched.redirects)
        if fetched.truncated:
            facts["truncated"] = True
        return Measurement(values=values, facts=facts, failures=failures, evidence=evidence)

    def _evidence(self, fetched: Any, attempts: list[str], request: HttpRequest) -> dict[str, Any]:
        redact = self.context.redactor.text
        folder = self.context.evidence_dir(self.spec)
        written: dict[str, Any] = {}
        if fetched is not None:
            lines = [f"{request.method} {fetched.url}", f"{fetched.status} {fetched.reason}"]
            lines += [f"{k}: {v}" for k, v in fetched.headers.items()]
            body = fetched.text[:_EVIDENCE_BODY]
            path = write_file(folder / "response.txt", redact("\n".join([*lines, "", body])) + "\n")
            written["response"] = path
        if len(attempts) > 1:
            path = write_file(
                folder / "tries.csv", redact("\n".join(["try,elapsed_s,outcome", *attempts])) + "\n"
            )
            written["tries"] = path
        return written


def _csv(text: str) -> str:
    text = " ".join(text.split()).replace('"', "'")
    return f'"{text}"' if "," in text else text
