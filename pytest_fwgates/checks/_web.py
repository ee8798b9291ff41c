"""What the HTTP-based check types share: one requests Session per run, bounded fetches,
secrets registered before anything prints, and paths into JSON documents.

Imported only by check modules (never at plugin start-up): it imports requests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import urllib3.connection
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from ..deadline import Deadline, current
from ..redact import Redactor
from ..yamlsrc import leaves
from .base import CheckContext, CheckError

__all__ = [
    "MAX_BODY",
    "Fetched",
    "PathError",
    "fetch",
    "lookup",
    "parse_path",
    "register_secrets",
    "session_for",
    "watched_adapter",
]

#: bytes of a response body that are read at most; the rest is not waited for
MAX_BODY = 10 * 1024 * 1024
_SESSION_KEY = "requests.Session"
_MAX_REDIRECTS = 10
_CHUNK = 64 * 1024


# -- connections that end by the deadline of the fetch they serve ------------------------------
def _connect_within(conn: urllib3.connection.HTTPConnection) -> Deadline | None:
    """The thread's deadline, with the connect timeout cut to the time it leaves (a connect
    cannot be shut down: a redirect late in a fetch must not connect for a whole timeout)."""
    deadline = current()
    if deadline is not None:
        left = deadline.remaining()  # TimeoutError when none is left
        if not isinstance(conn.timeout, int | float) or conn.timeout > left:
            conn.timeout = left
    return deadline


class _Watched:
    """Registers a connection's socket with the thread's :class:`Deadline` (new or reused);
    mixed into urllib3's HTTP and HTTPS connections."""

    sock: Any

    def _new_conn(self) -> Any:
        deadline = _connect_within(self)  # type: ignore[arg-type]
        sock = super()._new_conn()  # type: ignore[misc]
        return deadline.watch(sock) if deadline is not None else sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = current()
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections (direct or through an HTTP proxy) are watched."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def watched_adapter() -> HTTPAdapter:
    """An adapter whose sockets end by the deadline (:func:`current`) of the request they
    serve; for a session of its own (``fwgates init``)."""
    return _WatchedAdapter()


def session_for(context: CheckContext) -> requests.Session:
    """The run's one HTTP session (connection pool and cookies shared by its checks)."""
    session = context.resources.get(_SESSION_KEY)
    if not isinstance(session, requests.Session):
        session = requests.Session()
        session.max_redirects = _MAX_REDIRECTS
        session.headers["User-Agent"] = "pytest-fwgates"
        adapter = _WatchedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        context.resources[_SESSION_KEY] = session
    return session


def register_secrets(redactor: Redactor, values: Any) -> None:
    """Mask ``values`` (strings, or the strings in a mapping or list) in every output.

    A value such as ``Bearer abc123`` is masked whole and also its credential part, so a
    service that echoes the bare token is masked as well.
    """
    found: list[str] = []
    for value in leaves(values):
        if isinstance(value, str):
            found.append(value)
            words = value.split()
            if len(words) > 1:
                found.extend(words[1:])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found.append(str(value))
    redactor.add(found)


@dataclass
class Fetched:
    """A response read in full (up to :data:`MAX_BODY`), with its timing."""

    method: str
    url: str
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    latency_ms: float
    truncated: bool = False
    redirects: list[str] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        """The status, under the name requests uses."""
        return self.status

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise CheckError(f"{self.method} {self.url}: the body is not JSON ({exc})") from None


class FetchError(CheckError):
    """No response: connection refused, TLS failure, timeout."""


def _reason(exc: BaseException) -> str:
    """The innermost useful words of a requests/urllib3 error."""
    text = str(exc)
    for pattern in (
        r"\[SSL: [A-Z_]+\] ([^(')\]]+)",
        r"(\[Errno -?\d+\] [^'\")]+)",
        r"(Connection refused|Connection reset by peer|Name or service not known)",
        r"(Read timed out|Connect timeout|timed out)",
    ):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip().rstrip(".")
    return text if len(text) <= 200 else text[:199] + "…"


def fetch(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    params: Any = None,
    json_body: Any = None,
    data: Any = None,
    verify: bool | str = True,
    allow_redirects: bool = True,
) -> Fetched:
    """One request, bounded as a whole: connect, TLS, headers, redirects and the whole body
    end within ``timeout`` (an absolute :class:`Deadline`: its sockets are shut down when it
    passes, however slowly a server sends)."""
    started = time.monotonic()
    late = f"{method} {url}: no complete answer within {timeout:g} s"
    with Deadline(timeout) as deadline:
        try:
            response, chunks, truncated = _fetch(
                session,
                deadline,
                method,
                url,
                headers=headers,
                params=params,
                json=json_body,
                data=data,
                verify=verify,
                allow_redirects=allow_redirects,
            )
        except (requests.exceptions.Timeout, TimeoutError):
            raise FetchError(late) from None
        except requests.exceptions.TooManyRedirects:
            raise FetchError(f"{method} {url}: more than {_MAX_REDIRECTS} redirects") from None
        except requests.exceptions.InvalidURL as exc:
            raise FetchError(f"{method} {url}: invalid URL ({exc})") from None
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            raise FetchError(f"{url!r} is not an http:// or https:// URL") from None
        except (requests.exceptions.RequestException, OSError) as exc:
            if deadline.expired:  # the deadline shut the socket down
                raise FetchError(late) from None
            if isinstance(exc, requests.exceptions.SSLError):
                raise FetchError(f"{method} {url}: TLS failed: {_reason(exc)}") from None
            raise FetchError(f"{method} {url}: connection failed: {_reason(exc)}") from None
        if deadline.expired:  # the body may look complete: the socket was shut down
            raise FetchError(late)
    latency_ms = (time.monotonic() - started) * 1000.0
    body = b"".join(chunks)[:MAX_BODY]
    return Fetched(
        method=method,
        url=response.url,
        status=response.status_code,
        reason=response.reason or "",
        headers=requests.structures.CaseInsensitiveDict(response.headers),
        body=body,
        latency_ms=round(latency_ms, 3),
        truncated=truncated,
        redirects=[r.url for r in response.history],
    )


def _fetch(
    session: requests.Session, deadline: Deadline, method: str, url: str, **options: Any
) -> tuple[requests.Response, list[bytes], bool]:
    """The request and its body (at most :data:`MAX_BODY`), within ``deadline``."""
    left = deadline.remaining()
    response = session.request(method, url, timeout=(min(left, 10.0), left), stream=True, **options)
    chunks: list[bytes] = []
    size = 0
    truncated = False
    with response:
        for chunk in response.iter_content(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_BODY:
                truncated = True
                break
            deadline.remaining()
    return response, chunks, truncated


def resolve_path(context: CheckContext, path: str) -> Path:
    """A file named in a gate file: relative paths are relative to the rootdir."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else context.rootdir / candidate


def tls_verify(context: CheckContext, options: dict[str, Any]) -> bool | str:
    """``verify: false`` turns verification off; ``ca: file`` verifies against that bundle."""
    if options.get("verify") is False:
        return False
    ca = options.get("ca")
    if ca:
        path = resolve_path(context, str(ca))
        if not path.is_file():
            raise CheckError(f"ca: no such file {path}")
        return str(path)
    return True


# -- paths into JSON documents -----------------------------------------------------------------


class PathError(ValueError):
    """A path that does not parse, or that names nothing in the document."""


_STEP = re.compile(r"""\.?([^.\[\]'"]+)|\[(-?\d+)\]|\[(['"])(.*?)\3\]""")


def parse_path(path: str) -> list[str | int]:
    """``a.b[0].c``, ``$.a.b``, ``items.0.name`` or ``a['key.with.dots']`` as steps."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None or match.end() == position:
            raise PathError(f"bad path {path!r} at {text[position:]!r}")
        if match.group(1) is not None:
            steps.append(match.group(1))
        elif match.group(2) is not None:
            steps.append(int(match.group(2)))
        else:
            steps.append(match.group(4))
        position = match.end()
    if not steps:
        raise PathError(f"empty path {path!r}")
    return steps


def lookup(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``; :class:`PathError` when it is not there."""
    current = document
    walked = "$"
    for step in parse_path(path):
        if isinstance(current, list):
            index = step if isinstance(step, int) else (int(step) if step.isdigit() else None)
            if index is None or not -len(current) <= index < len(current):
                raise PathError(f"{path}: {walked} has no item {step!r}")
            current = current[index]
            walked += f"[{index}]"
        elif isinstance(current, dict):
            key = step if isinstance(step, str) else str(step)
            if key not in current:
                keys = ", ".join(sorted(map(str, current))[:10]) or "none"
                raise PathError(f"{path}: {walked} has no key {key!r} (keys: {keys})")
            current = current[key]
            walked += f".{key}"
        else:
            raise PathError(f"{path}: {walked} is not an object or a list")
    return current
