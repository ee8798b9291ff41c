"""The ``http_probe`` fixture: HTTP requests and http checks from marked Python tests.

Light at import (pytest and typing only): requests and the check code are imported when a
test first uses the fixture.

```python
@pytest.mark.gate("production-readiness", criterion="security-compliance")
def test_no_debug_endpoint(http_probe):
    assert http_probe.get("/debug").status_code == 404
    http_probe.check("/health", expect={"status": 200, "latency_ms": "< 200ms"})
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr
from _pytest._io import TerminalWriter

if TYPE_CHECKING:
    from .checks import CheckContext
    from .checks._web import Fetched
    from .model import CheckResult

__all__ = ["HttpProbe", "http_probe", "mask_report"]

_context_key = pytest.StashKey["CheckContext"]()


class HttpProbe:
    """Requests through the run's one HTTP session, on the same code as ``http`` checks.

    ``get``/``post``/``request`` return the response (``status_code``, ``text``, ``json()``,
    ``headers``, ``latency_ms``); ``check`` runs an ``http`` check and fails the test with its
    one-line message when an expectation does not hold. Header values are masked in every
    output. Relative URLs join ``base_url`` (ini ``gate_base_url``, or set it).
    """

    def __init__(
        self,
        context: CheckContext,
        base_url: str,
        run_check: Callable[..., CheckResult],
        timeout: float = 10.0,
    ) -> None:
        self.context = context
        self.base_url = base_url
        self.timeout = timeout
        self._run_check = run_check

    def url(self, url: str) -> str:
        if "://" in url:
            return url
        if not self.base_url:
            raise pytest.UsageError(
                f"http_probe: {url!r} is relative and no base URL is set "
                "(ini gate_base_url, or http_probe.base_url = ...)"
            )
        return self.base_url.rstrip("/") + "/" + url.lstrip("/")

    def request(self, method: str, url: str, **options: Any) -> Fetched:
        """Send a request. Options as in gate files: headers, query, json, form, body,
        redirects, verify, ca; and timeout (seconds)."""
        __tracebackhide__ = True
        from .checks import CheckError
        from .checks.http import HttpRequest

        timeout = float(options.pop("timeout", self.timeout))
        known = {"headers", "query", "json", "form", "body", "redirects", "verify", "ca"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"http_probe.request: unknown option {unknown[0]!r}")
        try:
            sender = HttpRequest(self.context, {**options, "method": method}, timeout)
            return sender.send(self.url(url))  # type: ignore[no-any-return]
        except CheckError as exc:
            pytest.fail(self.context.redactor.text(str(exc)), pytrace=False)

    def get(self, url: str, **options: Any) -> Fetched:
        __tracebackhide__ = True
        return self.request("GET", url, **options)

    def head(self, url: str, **options: Any) -> Fetched:
        __tracebackhide__ = True
        return self.request("HEAD", url, **options)

    def post(self, url: str, **options: Any) -> Fetched:
        __tracebackhide__ = True
        return self.request("POST", url, **options)

    def check(self, url: str, **settings: Any) -> CheckResult:
        """Run an ``http`` check (``expect=``, ``retry=``, ``headers=``, ...); its measured
        values count for the test's criterion."""
        __tracebackhide__ = True
        return self._run_check("http", self.url(url), **settings)


def _context(config: pytest.Config) -> CheckContext:
    from .keys import run_key
    from .run import check_settings

    run = config.stash.get(run_key, None)
    if run is not None:
        return run.context
    context = config.stash.get(_context_key, None)
    if context is None:
        from .checks import CheckContext
        from .redact import Redactor

        context = CheckContext(
            rootdir=config.rootpath,
            redactor=Redactor.from_environ(),
            settings=check_settings(config),
        )
        config.stash[_context_key] = context
    return context


@pytest.fixture
def http_probe(request: pytest.FixtureRequest) -> HttpProbe:
    """HTTP requests and ``http`` checks for a test marked ``@pytest.mark.gate(...)``."""
    from .keys import run_key

    context = _context(request.config)
    base = context.settings.get("base_url", "")
    run = request.config.stash.get(run_key, None)
    if not base and run is not None:
        base = run.loader.cli_vars.get("url", "")

    def run_check(type_name: str, target: str, **settings: Any) -> CheckResult:
        __tracebackhide__ = True
        check: Callable[..., CheckResult] = request.getfixturevalue("gate_check")
        return check(type_name, target, **settings)

    return HttpProbe(context, base, run_check)


class _MaskedRepr(TerminalRepr):
    """A failure text with the run's secrets masked, that still gives pytest (its short
    summary, --junitxml) and the gate report the failure's first line as ``reprcrash``."""

    def __init__(self, text: str, crash: Any, redactor: Any) -> None:
        self.text = text
        self.reprcrash: Any = None
        if crash is not None and hasattr(crash, "message"):
            message = redactor.text(str(crash.message))
            self.reprcrash = ReprFileLocation(crash.path, crash.lineno, message)

    def __str__(self) -> str:
        return self.text

    def toterminal(self, tw: TerminalWriter) -> None:
        for line in self.text.splitlines():
            tw.line(line)


def mask_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """Mask the run's secrets in a report of any test of a gate run (and of a test that used
    ``http_probe``): its failure text (with ``--showlocals``: the test's locals) and captured
    output reach the terminal and pytest's own ``--junitxml``."""
    if report.longrepr is None and not report.sections:
        return  # nothing shown (most reports of a run): no cost
    from .keys import run_key

    run = item.config.stash.get(run_key, None)
    if run is None and "http_probe" not in getattr(item, "fixturenames", ()):
        return
    context = item.config.stash.get(_context_key, None)
    redactor = run.context.redactor if run is not None else getattr(context, "redactor", None)
    if redactor is None:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        # a skip: (path, line, reason), as pytest's terminal folds skips by it
        report.longrepr = (longrepr[0], longrepr[1], redactor.text(str(longrepr[2])))
    elif longrepr is not None:
        text = str(longrepr)
        masked = redactor.text(text)
        if masked != text:
            report.longrepr = _MaskedRepr(masked, getattr(longrepr, "reprcrash", None), redactor)
    report.sections = [(name, redactor.text(text)) for name, text in report.sections]
