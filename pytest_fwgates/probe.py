"""The background prober: a health URL requested every few tens of milliseconds, as a timeline.

    rule = VersionRule(json="version", expect="v2")
    with Prober("http://127.0.0.1:8080/health", interval=0.05, version=rule) as p:
        p.mark("deploy start")
        run_the_deploy()
        p.mark("deploy end")
    figures = p.figures()         # downtime_ms, longest_outage_ms, outages, availability_pct, ...

- **One thread, one connection.** The prober keeps one persistent HTTP/1.1 connection
  (``http.client``), so a probe costs no connect; a connection the server closed between two
  probes (a reload, keep-alive expiry) is reopened and the probe retried once at once, as
  browsers do. No proxy is used.
- **Time.** Probes start on a fixed schedule of the monotonic clock (``interval``, 10 ms at the
  least); one that falls behind starts at once and the schedule does not burst to catch up.
  Each probe ends within ``timeout``: connect, TLS, headers and body together (an absolute
  deadline that shuts the socket down, :mod:`pytest_fwgates.deadline`).
- **Verdict of a probe.** A probe is good when it answers a status in ``ok_status`` (200-399);
  with a :class:`VersionRule` the version it shows is kept (None when it shows none).
  Everything else (refused, reset, timeout, 5xx) is a failure.
- **Outages.** A run of consecutive failed probes is one outage; it lasts from the start of
  its first failed probe to the answer of the next good one (the end of the window if none
  came). ``downtime_ms`` is their sum. Measured this way the error against the real outage is
  within one interval plus one timeout (``bench/downtime_fidelity.py`` measures it).
- **Never leaked.** The thread is a daemon, stops by itself after ``limit_s`` whatever
  happens, and ``stop()`` joins it with a bound. Each prober is its own object: probers in
  pytest-xdist workers know nothing of each other.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

from .bounds import DEFAULT_CONFIDENCE, count_support, quantile_support
from .deadline import Deadline, current, signals_to_main_thread
from .patterns import PatternError, PatternTimeout, compile_pattern, search

__all__ = [
    "MIN_INTERVAL",
    "Figures",
    "Outage",
    "Probe",
    "ProbeError",
    "Prober",
    "VersionRule",
    "Write",
    "Writer",
    "compute_figures",
]

DEFAULT_INTERVAL = 0.05
MIN_INTERVAL = 0.01
#: a probe's default bound: five intervals, at least 0.5 s (a busy machine stalls for that
#: long; a slower answer is latency, a later one an outage)
DEFAULT_TIMEOUT_FLOOR = 0.5
#: the longest a prober runs, whatever happens
DEFAULT_LIMIT_S = 3600.0
_BODY_LIMIT = 64 * 1024
#: characters of a body a version regex looks at
_REGEX_SCAN = 4096
#: seconds one probe's version pattern may take
_REGEX_TIMEOUT = 0.05


class ProbeError(ValueError):
    """A prober was given a bad URL or setting."""


@dataclass(frozen=True)
class VersionRule:
    """Where the version is read: a JSON field (dotted path), a header, or a body regex.

    ``expect`` is the version the check waits for (a deploy's new version).
    """

    json: str | None = None
    header: str | None = None
    regex: str | None = None
    expect: str | None = None

    @classmethod
    def from_option(cls, value: Any) -> VersionRule | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ProbeError("version: a mapping with json, header or regex (and expect)")
        rule = cls(
            json=_opt_str(value.get("json")),
            header=_opt_str(value.get("header")),
            regex=_opt_str(value.get("regex")),
            expect=_opt_str(value.get("expect")),
        )
        given = [k for k in ("json", "header", "regex") if getattr(rule, k)]
        if len(given) != 1:
            raise ProbeError("version: give exactly one of json, header or regex")
        if rule.regex:
            try:
                compile_pattern(rule.regex)
            except PatternError as exc:
                raise ProbeError(f"version.regex: {exc}") from None
        return rule

    def read(self, headers: http.client.HTTPMessage, body: bytes) -> str | None:
        """The version the answer shows, or None when it shows none."""
        if self.header:
            found = headers.get(self.header)
            return found.strip() if found else None
        text = body.decode("utf-8", "replace")
        if self.regex:
            # a gate file's pattern: bounded in text and in time (the prober probes every few
            # milliseconds); an answer whose version cannot be read in time shows none
            try:
                match = search(
                    compile_pattern(self.regex), text[:_REGEX_SCAN], timeout=_REGEX_TIMEOUT
                )
            except PatternTimeout:
                return None
            if match is None:
                return None
            return match.group(1) if match.groups() else match.group(0)
        try:
            data: Any = json.loads(text)
        except ValueError:
            return None
        for part in (self.json or "").split("."):
            if not isinstance(data, dict) or part not in data:
                return None
            data = data[part]
        return None if data is None or isinstance(data, dict | list) else str(data)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Probe:
    """One request: when it started and ended (seconds on the prober's clock), what it saw."""

    start: float
    end: float
    status: int  # 0: no HTTP answer
    ok: bool
    version: str | None = None
    error: str = ""

    @property
    def latency_ms(self) -> float:
        return (self.end - self.start) * 1000.0


@dataclass(frozen=True)
class Outage:
    start: float
    end: float
    probes: int

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000.0


@dataclass
class Figures:
    """What a timeline shows over a window."""

    probes: int
    failed_probes: int
    downtime_ms: float
    longest_outage_ms: float
    outages: list[Outage] = field(default_factory=list)
    availability_pct: float = 100.0
    p95_latency_ms: float = 0.0
    #: versions in the order they were first seen
    versions: list[str] = field(default_factory=list)
    #: prober time of the first answer of ``new`` and the last answer of any other version
    first_new: float | None = None
    last_old: float | None = None
    #: latencies of the good probes, ms (the sample p95_latency_ms is ranked from)
    latencies: list[float] = field(default_factory=list)

    def values(self) -> dict[str, float]:
        return {
            "downtime_ms": round(self.downtime_ms, 1),
            "longest_outage_ms": round(self.longest_outage_ms, 1),
            "outages": float(len(self.outages)),
            "failed_probes": float(self.failed_probes),
            "probes": float(self.probes),
            "availability_pct": round(self.availability_pct, 3),
            "p95_latency_ms": round(self.p95_latency_ms, 1),
        }

    def support(self, confidence: float = DEFAULT_CONFIDENCE) -> dict[str, dict[str, Any]]:
        """What ``availability_pct`` was counted from and ``p95_latency_ms`` ranked from
        (their bounds, see bounds.py)."""
        good = self.probes - self.failed_probes
        support = {"availability_pct": count_support(good, self.probes, "probes", "good")}
        if self.latencies:
            support["p95_latency_ms"] = quantile_support(
                Counter(round(ms, 1) for ms in self.latencies), 0.95, confidence
            )
        return support


def compute_figures(
    probes: Sequence[Probe],
    *,
    new_version: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> Figures:
    """Figures of the probes that started in ``[start, end]`` (the whole timeline by default)."""
    window = [
        p for p in probes if (start is None or p.start >= start) and (end is None or p.start <= end)
    ]
    outages: list[Outage] = []
    down_since: float | None = None
    run = 0
    for probe in window:
        if not probe.ok:
            if down_since is None:
                down_since, run = probe.start, 0
            run += 1
        elif down_since is not None:
            outages.append(Outage(down_since, max(probe.end, down_since), run))
            down_since = None
    if down_since is not None:
        last = window[-1]
        outages.append(Outage(down_since, max(last.end, down_since), run))
    failed = sum(1 for p in window if not p.ok)
    latencies = sorted(p.latency_ms for p in window if p.ok)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else 0.0
    versions: list[str] = []
    first_new = last_old = None
    for probe in window:
        if not probe.ok or probe.version is None:
            continue
        if probe.version not in versions:
            versions.append(probe.version)
        if new_version is not None:
            if probe.version == new_version:
                if first_new is None:
                    first_new = probe.end
            else:
                last_old = probe.end
    return Figures(
        probes=len(window),
        failed_probes=failed,
        downtime_ms=sum(o.ms for o in outages),
        longest_outage_ms=max((o.ms for o in outages), default=0.0),
        outages=outages,
        availability_pct=100.0 * (len(window) - failed) / len(window) if window else 0.0,
        p95_latency_ms=p95,
        versions=versions,
        first_new=first_new,
        last_old=last_old,
        latencies=latencies,
    )


class _Connection:
    """One persistent HTTP connection to the probed URL."""

    def __init__(self, url: str, timeout: float, verify: bool | str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError(f"not an http(s) URL: {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ProbeError(f"bad port in {url!r}: {exc}") from None
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host_header = parts.netloc.rpartition("@")[2]
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            if verify is False:
                self.context = ssl._create_unverified_context()
            else:
                cafile = verify if isinstance(verify, str) else None
                self.context = ssl.create_default_context(cafile=cafile)
        self.conn: http.client.HTTPConnection | None = None

    def _open(self, deadline: Deadline) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.context is not None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

        def create(address: tuple[str, int], timeout: Any = None, source: Any = None) -> Any:
            # the connection's socket, made and watched by the deadline of the request that
            # opens it (TLS handshake included); later requests watch it again
            return (current() or deadline).connect(address)

        opened = conn.connect

        def connect() -> None:
            opened()
            # the socket the request reads from: for https the TLS socket, which took the
            # plain one's descriptor (the plain socket watched above is detached by then)
            if conn.sock is not None:
                (current() or deadline).watch(conn.sock)

        conn._create_connection = create  # type: ignore[attr-defined]
        conn.connect = connect  # type: ignore[method-assign]
        return conn

    def request(
        self,
        method: str = "GET",
        path: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request, ended by an absolute deadline (``timeout``, the connection's by
        default): connect, TLS, headers and body together, however slowly the server sends.
        A connection the server closed while idle is reopened and tried again (within the
        same deadline). A request cut by its deadline raises :class:`TimeoutError`."""
        sent = {"Host": self.host_header, "User-Agent": "pytest-fwgates-prober", **(headers or {})}
        with Deadline(self.timeout if timeout is None else timeout) as deadline:
            try:
                return self._request(deadline, method, path or self.path, body, sent)
            except (OSError, http.client.HTTPException) as exc:
                if deadline.expired:
                    raise TimeoutError(f"no complete answer within {deadline.seconds:g} s") from exc
                raise

    def _request(
        self,
        deadline: Deadline,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (0, 1):
            reused = self.conn is not None and self.conn.sock is not None
            if self.conn is None:
                self.conn = self._open(deadline)
            try:
                if self.conn.sock is not None:
                    deadline.watch(self.conn.sock)
                    self.conn.sock.settimeout(deadline.remaining())
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read(_BODY_LIMIT)
                if response.will_close or not response.isclosed():
                    self.close()  # the server closes it, or an unread rest is left
                if deadline.expired:  # a body cut short can look whole
                    self.close()
                    raise TimeoutError(f"no complete answer within {deadline.seconds:g} s")
                return response.status, response.headers, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused and attempt == 0 and not deadline.expired:
                    continue  # stale keep-alive connection: once more on a new one
                raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected):
        return "connection reset"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return type(exc).__name__


class _Periodic:
    """One step every ``interval`` seconds in a daemon thread, until stopped or ``limit_s``
    has passed; a late step runs at once (no burst to catch up). Stopping joins the thread
    (bounded by one request timeout and a margin) and closes the connection."""

    interval: float
    timeout: float
    limit_s: float

    def __init__(self, conn: _Connection, name: str) -> None:
        self._conn = conn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.t0 = time.monotonic()

    def start(self) -> Self:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout + 2.0)
        self._conn.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _step(self) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Run by the thread as it ends."""
        self._conn.close()

    def _run(self) -> None:
        signals_to_main_thread()  # an interrupt wakes the main thread, never this one
        ends = self.t0 + self.limit_s
        due = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= ends:
                    break
                if due > now and self._stop.wait(due - now):
                    break
                self._step()
                due = max(due + self.interval, time.monotonic())
        finally:
            self._finish()


class Prober(_Periodic):
    """Probes ``url`` in a background thread; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        timeout: float | None = None,
        version: VersionRule | None = None,
        ok_status: Callable[[int], bool] = lambda status: 200 <= status < 400,
        verify: bool | str = True,
        limit_s: float = DEFAULT_LIMIT_S,
        name: str = "fwgates-prober",
    ) -> None:
        if not interval >= MIN_INTERVAL:
            raise ProbeError(f"probe interval {interval:g} s is below {MIN_INTERVAL:g} s")
        self.url = url
        self.interval = float(interval)
        self.timeout = float(timeout) if timeout else max(5 * interval, DEFAULT_TIMEOUT_FLOOR)
        if self.timeout <= 0:
            raise ProbeError("probe timeout must be above 0")
        self.version = version
        self.ok_status = ok_status
        self.limit_s = limit_s
        self._probes: list[Probe] = []
        self._marks: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._new_probe = threading.Condition(self._lock)
        super().__init__(_Connection(url, self.timeout, verify), name)

    def _step(self) -> None:
        probe = self._probe_once()
        with self._lock:
            self._probes.append(probe)
            self._new_probe.notify_all()

    def _finish(self) -> None:
        super()._finish()
        with self._lock:
            self._new_probe.notify_all()

    def _probe_once(self) -> Probe:
        started = time.monotonic()
        try:
            status, headers, body = self._conn.request()
        except (OSError, http.client.HTTPException) as exc:
            return Probe(
                started - self.t0, time.monotonic() - self.t0, 0, False, None, _describe(exc)
            )
        ended = time.monotonic()
        version = self.version.read(headers, body) if self.version else None
        # an answer without a readable version still answers (it is no downtime); it is not
        # on the expected version either, so a deploy does not settle on it
        ok = self.ok_status(status)
        error = "" if ok else f"HTTP {status}"
        return Probe(started - self.t0, ended - self.t0, status, ok, version, error)

    # --- what it saw -----------------------------------------------------------------------

    def now(self) -> float:
        """The current time on the prober's clock (seconds since it started)."""
        return time.monotonic() - self.t0

    def mark(self, label: str, at: float | None = None) -> float:
        """Remember an event (``deploy start``) at the current time, or at prober time ``at``;
        returns that time."""
        when = self.now() if at is None else at
        with self._lock:
            self._marks.append((label, when))
            self._marks.sort(key=lambda mark: mark[1])
        return when

    @property
    def marks(self) -> list[tuple[str, float]]:
        with self._lock:
            return list(self._marks)

    @property
    def probes(self) -> list[Probe]:
        with self._lock:
            return list(self._probes)

    def figures(self, *, start: float | None = None, end: float | None = None) -> Figures:
        new = self.version.expect if self.version else None
        return compute_figures(self.probes, new_version=new, start=start, end=end)

    def wait_for(self, predicate: Callable[[list[Probe]], bool], timeout: float) -> bool:
        """Wait (bounded) until ``predicate(probes)`` holds; False at the bound or if stopped."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            while True:
                if predicate(self._probes):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._new_probe.wait(min(left, 0.5))

    def wait_stable(
        self,
        *,
        since: float,
        window_s: float,
        version: str | None,
        timeout: float,
        until: float | None = None,
        min_probes: int = 0,
    ) -> float | None:
        """Wait until every probe of the last ``window_s`` seconds (started after ``since``) is
        good and on ``version``, the last one started after ``until``, and the run holds at
        least ``min_probes`` probes; returns the prober time the stable run began (the answer
        of its first probe), or None at the bound."""
        found: list[float] = []

        def stable(probes: list[Probe]) -> bool:
            first: Probe | None = None
            count = 0
            for probe in reversed(probes):
                if probe.start < since:
                    break
                if not probe.ok or (version is not None and probe.version != version):
                    break
                first = probe
                count += 1
            if first is None or count < min_probes:
                return False
            last = probes[-1].start
            if last - first.start >= window_s and (until is None or last >= until):
                found.append(first.end)
                return True
            return False

        return found[-1] if self.wait_for(stable, timeout) else None

    def last_good(self, before: float | None = None) -> Probe | None:
        for probe in reversed(self.probes):
            if before is not None and probe.start > before:
                continue
            if probe.ok:
                return probe
        return None


@dataclass(frozen=True)
class Write:
    """One write the writer sent: when, and the id the service acknowledged it with."""

    start: float
    token: str
    status: int
    item_id: str | None  # None: not acknowledged


class Writer(_Periodic):
    """POSTs a small JSON document to ``url`` every ``interval`` in a background thread and
    remembers each write the service acknowledged (2xx with an id); :meth:`read_back` then
    reads every acknowledged write back from ``read_url`` (``{id}`` replaced)."""

    def __init__(
        self,
        url: str,
        read_url: str,
        *,
        interval: float = 0.1,
        timeout: float = 2.0,
        id_field: str = "id",
        verify: bool | str = True,
        limit_s: float = DEFAULT_LIMIT_S,
    ) -> None:
        if not interval >= MIN_INTERVAL:
            raise ProbeError(f"write interval {interval:g} s is below {MIN_INTERVAL:g} s")
        if "{id}" not in read_url:
            raise ProbeError(f"writes.read must contain {{id}}: {read_url!r}")
        self.url, self.read_url = url, read_url
        self.interval, self.timeout, self.id_field = interval, timeout, id_field
        self.verify, self.limit_s = verify, limit_s
        conn = _Connection(url, timeout, verify)
        _Connection(read_url.replace("{id}", "0"), timeout, verify)  # the URL is valid
        self.writes: list[Write] = []
        self._run_id = uuid.uuid4().hex[:12]
        self._seq = 0
        super().__init__(conn, "fwgates-writer")

    @property
    def acknowledged(self) -> list[Write]:
        return [w for w in self.writes if w.item_id is not None]

    def _step(self) -> None:
        self._seq += 1
        token = f"fwgates-{self._run_id}-{self._seq}"
        self.writes.append(self._write(token, self._seq))

    def _write(self, token: str, seq: int) -> Write:
        started = time.monotonic() - self.t0
        body = json.dumps({"token": token, "seq": seq}).encode()
        try:
            status, headers, data = self._conn.request(
                "POST", body=body, headers={"Content-Type": "application/json"}
            )
        except (OSError, http.client.HTTPException):
            return Write(started, token, 0, None)
        if not 200 <= status < 300:
            return Write(started, token, status, None)
        item_id: str | None = None
        try:
            payload = json.loads(data)
            if isinstance(payload, dict) and payload.get(self.id_field) is not None:
                item_id = str(payload[self.id_field])
        except ValueError:
            pass
        if item_id is None and headers.get("Location"):
            item_id = headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        return Write(started, token, status, item_id)

    def read_back(self, timeout: float) -> list[Write]:
        """Acknowledged writes that cannot be read back with their token (bounded in time:
        writes not read when the bound passes count as lost)."""
        deadline = time.monotonic() + timeout
        lost: list[Write] = []
        conn = _Connection(self.read_url.replace("{id}", "0"), self.timeout, self.verify)
        try:
            for write in self.acknowledged:
                if time.monotonic() >= deadline:
                    lost.append(write)
                    continue
                url = self.read_url.replace("{id}", quote(str(write.item_id), safe=""))
                left = min(self.timeout, deadline - time.monotonic())
                try:
                    status, _, data = conn.request("GET", path=_path_of(url), timeout=left)
                except (OSError, http.client.HTTPException):
                    status, data = 0, b""
                if status != 200 or write.token.encode() not in data:
                    lost.append(write)
        finally:
            conn.close()
        return lost


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@contextlib.contextmanager
def probing(url: str, **settings: Any) -> Iterator[Prober]:
    """A started prober, stopped on leaving the block (also on errors)."""
    prober = Prober(url, **settings)
    prober.start()
    try:
        yield prober
    finally:
        prober.stop()
