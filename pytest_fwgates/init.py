"""``fwgates init``: starter gate files written from what a running service shows.

Pointed at a service (its URL, optionally its Prometheus and the host it runs on), it looks at
what is there, the way ``goss autoadd`` turns what a machine has into tests: the sockets the
process behind the URL listens on, that process, the package it came from and the systemd
unit that runs it, the TLS certificate, the health, version and metrics endpoints, debug
endpoints that must stay closed, and the scrape targets and alert rules Prometheus has for it.
Each catalog gate (or the one named) gets a commented file in the gate folder: every criterion
with the evidence it needs, the checks found for it, and ``TODO`` lines for what cannot be
discovered (deploy and rollback commands, records files). A criterion left as TODO has no check,
so it ends NOT_EVALUATED and the gate FAILED until it is filled in: nothing written here passes
a criterion without a check that measures the real service.

Every network call and host command is bounded in time; credentials in a URL are used for
discovery and never written.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .model import Criterion, Gate

__all__ = ["Discovery", "InitError", "discover", "render_gate", "write_gates"]

#: paths probed for health, in order; the first 2xx wins
HEALTH_PATHS = ("/health", "/healthz", "/-/healthy", "/ready", "/readyz", "/status", "/ping")
VERSION_PATHS = ("/version", "/health", "/healthz")
METRICS_PATHS = ("/metrics",)
#: paths that must not be open on a production service
CLOSED_PATHS = ("/debug", "/admin", "/.env", "/server-status")
_BODY_LIMIT = 256 * 1024
_METRIC_TYPE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)", re.M)
_SS_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


class InitError(Exception):
    """A usage problem of ``fwgates init`` (bad URL, unknown gate): one line for the user."""


# --- what was found --------------------------------------------------------------------------


@dataclass
class Listener:
    proto: str
    address: str
    port: int
    process: str
    pid: int


@dataclass
class TlsInfo:
    url: str
    days_valid: float
    subject: str
    issuer: str
    names: list[str]
    verified: bool
    verify_error: str = ""
    server_name: str = ""
    version: str = ""


@dataclass
class Discovery:
    """What a service showed; ``notes`` say what was looked at and what could not be."""

    url: str
    host: str = "local://"
    prometheus: str = ""
    ca: str = ""
    health: str = ""
    health_json: dict[str, Any] = field(default_factory=dict)
    version_path: str = ""
    version_key: str = ""
    version: str = ""
    metrics: str = ""
    metric_names: list[str] = field(default_factory=list)
    closed: dict[str, int] = field(default_factory=dict)
    open_paths: dict[str, int] = field(default_factory=dict)
    tls: TlsInfo | None = None
    listeners: list[Listener] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    other_jobs: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    rules_of_jobs: bool = False
    notes: list[str] = field(default_factory=list)
    credentials_dropped: bool = False


def _oneline(text: object, limit: int = 160) -> str:
    """Text fit for a comment: one printable line (a newline must not end a comment)."""
    flat = " ".join(str(text).split())
    flat = "".join(c if c.isprintable() else "?" for c in flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def clean_url(url: str, what: str = "--url") -> tuple[str, tuple[str, str] | None]:
    """The URL to write (no credentials, query or fragment) and the credentials it carried."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InitError(f"{what}: expected an http:// or https:// URL with a host, got {url!r}")
    if "$" in url:
        raise InitError(f"{what}: a URL with '$' cannot be written into a gate file")
    try:
        port = parts.port
    except ValueError as exc:
        raise InitError(f"{what}: {exc}") from None
    auth = None
    if parts.username is not None or parts.password is not None:
        auth = (
            urllib.parse.unquote(parts.username or ""),
            urllib.parse.unquote(parts.password or ""),
        )
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", "")), auth


# --- looking at the service ------------------------------------------------------------------


class _Web:
    """Bounded GETs through one requests session (no proxies from the environment)."""

    def __init__(self, timeout: float, auth: tuple[str, str] | None, verify: Any) -> None:
        import requests

        from .checks._web import watched_adapter

        self.session = requests.Session()
        self.session.trust_env = False
        # its sockets end by the deadline of the GET they serve, however slowly a server sends
        self.session.mount("http://", watched_adapter())
        self.session.mount("https://", watched_adapter())
        self.session.auth = auth
        self.session.verify = verify
        self.timeout = timeout

    def get(self, url: str) -> tuple[int, str, dict[str, str]] | None:
        import warnings

        import requests

        from .deadline import Deadline

        # one bound for the whole GET: connect, TLS, headers and the body (cut at the limit)
        with Deadline(self.timeout) as deadline:
            try:
                with warnings.catch_warnings():
                    # an endpoint whose certificate does not verify: the tls check judges it
                    warnings.simplefilter("ignore")
                    answer = self.session.get(
                        url,
                        timeout=(self.timeout, self.timeout),
                        allow_redirects=False,
                        stream=True,
                    )
                with answer:
                    body = b""
                    for chunk in answer.iter_content(65536):
                        body += chunk
                        if len(body) >= _BODY_LIMIT:
                            break
            except (requests.RequestException, OSError):
                return None
            if deadline.expired:  # a body cut by the deadline can look whole
                return None
        try:
            text = body[:_BODY_LIMIT].decode(answer.encoding or "utf-8", "replace")
        except LookupError:
            text = body[:_BODY_LIMIT].decode("utf-8", "replace")
        return answer.status_code, text, dict(answer.headers)

    def close(self) -> None:
        self.session.close()


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _probe_http(found: Discovery, web: _Web) -> None:
    root = web.get(found.url + "/")
    if root is None:
        # every other path would wait as long: one bound for a service that does not answer
        found.notes.append(f"{found.url}/ did not answer within {web.timeout:g} s")
        return
    for path in HEALTH_PATHS:
        answer = web.get(found.url + path)
        if answer is not None and 200 <= answer[0] < 300:
            found.health = path
            found.health_json = _json(answer[1])
            break
    if not found.health:
        found.notes.append(f"no health endpoint answered 2xx (tried {', '.join(HEALTH_PATHS)})")
    for path in VERSION_PATHS:
        answer = web.get(found.url + path)
        if answer is None or not 200 <= answer[0] < 300:
            continue
        body = _json(answer[1])
        key = next((k for k in ("version", "build", "commit") if isinstance(body.get(k), str)), "")
        if key:
            found.version_path, found.version_key, found.version = path, key, body[key]
            break
    for path in METRICS_PATHS:
        answer = web.get(found.url + path)
        if answer is None or answer[0] != 200:
            continue
        types = _METRIC_TYPE.findall(answer[1])
        if types:
            found.metrics = path
            names = [name for name, kind in types if kind == "counter"]
            names += [name for name, kind in types if kind != "counter"]
            found.metric_names = list(dict.fromkeys(names))[:2]
            break
    if not found.metrics:
        found.notes.append("no Prometheus metrics endpoint found (tried /metrics)")
    for path in CLOSED_PATHS:
        answer = web.get(found.url + path)
        if answer is None:
            continue
        if answer[0] in (401, 403, 404):
            found.closed[path] = answer[0]
        elif answer[0] < 300:
            found.open_paths[path] = answer[0]


def _tls_handshake(host: str, port: int, timeout: float) -> bytes | None:
    """The certificate a TLS server on host:port shows (unverified), or None if no TLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError, ValueError):
        return None


def _tls_info(url: str, cafile: str, timeout: float) -> TlsInfo | None:
    from cryptography import x509

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    der = _tls_handshake(host, port, timeout)
    if der is None:
        return None
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    days = (cert.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400
    info = TlsInfo(
        url=url,
        days_valid=days,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=names,
        verified=False,
    )
    try:
        is_ip = bool(ipaddress.ip_address(host))
    except ValueError:
        is_ip = False
    if is_ip and host not in names:
        dns = [n for n in names if not _is_ip(n)]
        if dns:
            info.server_name = dns[0]
    context = ssl.create_default_context(cafile=cafile or None)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=info.server_name or host) as tls,
        ):
            info.verified = True
            info.version = tls.version() or ""
    except ssl.SSLCertVerificationError as exc:
        info.verify_error = _oneline(exc.verify_message or exc)
    except (OSError, ssl.SSLError) as exc:
        info.verify_error = _oneline(exc)
    return info


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _probe_host(found: Discovery, port: int, timeout: float) -> None:
    """Listening sockets of the process behind ``port``, its package and systemd unit."""
    from .hosts import HostError, HostOptions, HostPool, bounded

    pool = HostPool(HostOptions(connect_timeout=timeout))
    try:
        hid = pool.expand([found.host])[0]
        host = pool.get(hid)

        def run(command: str, *args: str) -> str:
            # what the host shows (a program's path, a package name) is data: testinfra
            # quotes each argument for the shell (``%s`` in ``command``), never pasted in
            result = bounded(lambda: host.run(command, *args), timeout + 5, command.split()[0])
            return str(result.stdout) if result.rc == 0 else ""

        listeners = []
        for line in run("ss -H -ltnp").splitlines():
            fields = line.split()
            if len(fields) < 5:
                continue
            address, _, port_text = fields[3].rpartition(":")
            for name, pid in _SS_USERS.findall(line):
                if port_text.isdigit():
                    listeners.append(Listener("tcp", address, int(port_text), name, int(pid)))
        behind = {lst.pid for lst in listeners if lst.port == port}
        if not behind:
            found.notes.append(
                f"nothing on {_host_shown(found.host)} listens on port {port} as a process this"
                " user can see"
                " (run as the service's user or root, or give --host)"
            )
            return
        found.listeners = [lst for lst in listeners if lst.pid in behind]
        found.processes = list(dict.fromkeys(lst.process for lst in found.listeners))
        for pid in sorted(behind):
            exe = run("readlink /proc/%s/exe", str(pid)).rstrip("\n")
            if exe:
                owner = run("dpkg-query -S %s", exe) or run("rpm -qf --qf '%%{NAME}\\n' %s", exe)
                name = owner.split(":")[0].strip() if owner else ""
                if name and name not in found.packages:
                    version = run("dpkg-query -W -f '${Version}' %s", name) or run(
                        "rpm -q --qf '%%{VERSION}' %s", name
                    )
                    found.packages[name] = version.strip()
            cgroup = run("cat /proc/%s/cgroup", str(pid))
            unit = re.search(r"/system\.slice/(?:.*/)?([\w@.-]+)\.service\b", cgroup)
            if unit and unit[1] not in found.services:
                found.services.append(unit[1])
        if not found.packages:
            found.notes.append(f"no package owns the program of {', '.join(found.processes)}")
        if not found.services:
            found.notes.append(f"{', '.join(found.processes)} is not run by a systemd service")
    except HostError as exc:
        found.notes.append(f"host {_host_shown(found.host)}: {_oneline(exc)}")
    except Exception as exc:  # a backend's own error: a note, never a traceback
        found.notes.append(f"host {_host_shown(found.host)}: {_oneline(exc)}")
    finally:
        pool.close()


def _host_shown(spec: str) -> str:
    """A host spec as written into a file or a note: without its password."""
    from .hosts import spec_password

    password = spec_password(spec)
    return spec.replace(f":{password}@", "@", 1) if password else spec


def _probe_prometheus(found: Discovery, url: str, auth: Any, timeout: float) -> None:
    web = _Web(timeout, auth, True)
    try:
        answer = web.get(url + "/api/v1/targets?state=active")
        if answer is None or answer[0] != 200:
            found.notes.append(f"Prometheus at {found.prometheus} did not answer its targets API")
            return
        targets = _dig(_json(answer[1]), "data", "activeTargets")
        service = urllib.parse.urlsplit(found.url)
        wanted = {_endpoint(service.hostname or "", service.port)}
        jobs: list[str] = []
        everything: list[str] = []
        for target in targets if isinstance(targets, list) else []:
            if not isinstance(target, dict):
                continue
            job = _dig(target, "labels", "job")
            job = job if isinstance(job, str) else ""
            try:
                scrape = urllib.parse.urlsplit(str(target.get("scrapeUrl", "")))
                scrape_port = scrape.port
            except ValueError:
                continue
            if job and job not in everything:
                everything.append(job)
            if job and _endpoint(scrape.hostname or "", scrape_port) in wanted:
                jobs.append(job)
        found.jobs = list(dict.fromkeys(jobs))
        found.other_jobs = [job for job in everything if job not in found.jobs]
        answer = web.get(url + "/api/v1/rules?type=alert")
        groups = _dig(_json(answer[1]), "data", "groups") if answer else []
        alerts: list[tuple[str, str]] = [
            (str(rule.get("name", "")), str(rule.get("query", "")))
            for group in (groups if isinstance(groups, list) else [])
            if isinstance(group, dict) and isinstance(group.get("rules"), list)
            for rule in group["rules"]
            if isinstance(rule, dict) and rule.get("type") == "alerting" and rule.get("name")
        ]
        of_jobs = [
            name for name, query in alerts if any(f'job="{job}"' in query for job in found.jobs)
        ]
        found.rules_of_jobs = bool(of_jobs)
        found.rules = list(dict.fromkeys(of_jobs or [name for name, _ in alerts]))[:10]
    finally:
        web.close()


def _dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None where a level is not a mapping (an answer of any shape)."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _endpoint(host: str, port: int | None) -> tuple[str, int | None]:
    loopback = {"localhost", "127.0.0.1", "::1"}
    return ("loopback" if host in loopback else host, port)


def discover(
    url: str,
    *,
    prometheus: str = "",
    host: str = "local://",
    ca: str = "",
    timeout: float = 5.0,
    look_at_host: bool = True,
) -> Discovery:
    """Look at a running service; every call bounded by ``timeout`` seconds."""
    shown, auth = clean_url(url)
    if ca:  # a CA file that cannot be read is the user's mistake: one line, before any look
        try:
            ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) if isinstance(exc, ssl.SSLError) else None
            reason = reason or getattr(exc, "strerror", None) or exc
            raise InitError(
                f"--ca {ca}: {_oneline(reason)} (a PEM file of CA certificates)"
            ) from None
    found = Discovery(url=shown, host=host, ca=ca, credentials_dropped=auth is not None)
    if _host_shown(host) != host:
        found.credentials_dropped = True
    prom_auth = None
    if prometheus:
        found.prometheus, prom_auth = clean_url(prometheus, "--prometheus-url")
        found.credentials_dropped |= prom_auth is not None
    parts = urllib.parse.urlsplit(shown)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    web = _Web(timeout, auth, ca or True)
    try:
        if parts.scheme == "https":
            found.tls = _tls_info(shown, ca, timeout)
            if found.tls is not None and not found.tls.verified:
                web.session.verify = False  # to find the endpoints; the tls check judges it
        _probe_http(found, web)
    finally:
        web.close()
    if look_at_host:
        _probe_host(found, port, timeout)
    if found.tls is None:
        for listener in found.listeners:
            if listener.port == port:
                continue
            address = parts.hostname or "127.0.0.1"
            info = _tls_info(f"https://{address}:{listener.port}", ca, timeout)
            if info is not None:
                found.tls = info
                break
    if found.tls is None:
        found.notes.append("no TLS found on the service's URL or the other ports of its process")
    if prometheus:
        _probe_prometheus(found, found.prometheus, prom_auth, timeout)
    if found.credentials_dropped:
        found.notes.append("credentials in a URL were used to look and are not written")
    return found


# --- writing the files -----------------------------------------------------------------------


class Ref(str):
    """Text fit written by init itself that refers to gate variables (``${url}/health``).

    Every other string reaching a file (a version, a job or rule name, a path) is data: its
    ``${`` is written ``$${`` so that the loader never resolves it as a variable."""


def _q(value: Any) -> str:
    """A YAML scalar: strings double-quoted (JSON is YAML), numbers and booleans as they are;
    ``${`` of data escaped as ``$${``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value) if isinstance(value, Ref) else str(value).replace("${", "$${")
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+-]*", text) and text.lower() not in _YAML_WORDS:
        return text
    # JSON is YAML, but a raw line separator (U+2028, U+0085) folds and DEL is refused:
    # every character that is not printable is written as an escape
    return "".join(
        c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
        for c in json.dumps(text, ensure_ascii=False)
    )


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_q(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _q(value)


@dataclass
class Check:
    """One check to write: its keys in order and a comment above it."""

    body: dict[str, Any]
    comment: str = ""

    def lines(self, indent: str = "    ") -> Iterator[str]:
        if self.comment:
            yield f"{indent}# {_oneline(self.comment, 200)}"
        first = True
        for key, value in self.body.items():
            lead = "- " if first else "  "
            yield f"{indent}{lead}{key}: {_flow(value)}"
            first = False


Recipe = Callable[[Discovery], tuple[list[Check], list[str]]]


def _host_checks(found: Discovery) -> tuple[list[Check], list[str]]:
    checks: list[Check] = []
    for name, version in found.packages.items():
        expect: dict[str, Any] = {"installed": True}
        if version:
            expect["version"] = f">= {version}"
        checks.append(
            Check({"package": name, "expect": expect}, f"installed now: {name} {version}".strip())
        )
    for unit in found.services:
        checks.append(Check({"service": unit, "expect": {"running": True, "enabled": True}}))
    if not found.services:
        for name in found.processes:
            checks.append(
                Check({"process": name, "expect": {"count": ">= 1"}}, "the process behind the URL")
            )
    for lst in found.listeners:
        address = lst.address.strip("[]")
        if address in ("*", "0.0.0.0"):
            address = "0.0.0.0"
        spec = f"tcp://{address}:{lst.port}"
        body = {"socket": spec, "expect": {"listening": True}}
        if all(_flow(c.body) != _flow(body) for c in checks):
            checks.append(Check(body, f"{lst.process} (pid {lst.pid}) listens here"))
    todo = []
    if not checks:
        todo.append(
            "host checks (package, service, socket, file, ...) of the hosts the service runs on;"
            " fwgates init found none (see the notes at the top)"
        )
    else:
        todo.append(
            "more host state the service needs: config files (file: with mode and owner),"
            " sysctl, mounts; a command check for infrastructure drift (terraform plan"
            " -detailed-exitcode)"
        )
    return checks, todo


def _tls_checks(found: Discovery) -> tuple[list[Check], list[str]]:
    tls = found.tls
    if tls is None:
        return [], ["a tls check of the service's HTTPS endpoint (none was found)"]
    body: dict[str, Any] = {"tls": Ref("${tls_url}")}
    if found.ca:
        body["ca"] = Ref("${ca}")
    if tls.server_name:
        body["server_name"] = tls.server_name
    body["expect"] = {"days_valid": ">= 14", "min_version": "TLSv1.2", "hostname_match": True}
    comment = f"certificate {tls.subject}, issued by {tls.issuer}, {tls.days_valid:.0f} days left"
    todo = []
    if not tls.verified:
        todo.append(
            f"the certificate did not verify ({tls.verify_error}); give the CA with"
            " `ca:` (fwgates init --ca FILE) or fix the chain - the check fails until it verifies"
        )
    return [Check(body, comment)], todo


def _closed_checks(found: Discovery) -> list[Check]:
    checks = []
    for path, status in found.closed.items():
        checks.append(
            Check(
                {"http": Ref(f"${{url}}{path}"), "expect": {"status": [401, 403, 404]}},
                f"answers {status} now: keep it closed",
            )
        )
    for path, status in found.open_paths.items():
        checks.append(
            Check(
                {"http": Ref(f"${{url}}{path}"), "expect": {"status": [401, 403, 404]}},
                f"WARNING: {path} answers {status} now; this check fails until it is closed"
                " (or remove it if it is meant to be public)",
            )
        )
    return checks


def _security_checks(found: Discovery) -> tuple[list[Check], list[str]]:
    checks, todo = _tls_checks(found)
    closed = _closed_checks(found)
    if checks:
        checks += closed
    else:
        # closed debug endpoints alone are no evidence that the service is secured
        todo += [f"{_flow(c.body)} ({c.comment})" for c in closed]
    todo.append(
        "checks of your own secrets and settings: `file:` with mode 0600 for private keys,"
        " `private_keys: /etc/ssl` (no readable private key), a `scan:` of your scanner"
    )
    return checks, todo


def _health_check(found: Discovery) -> Check | None:
    if not found.health:
        return None
    expect: dict[str, Any] = {"status": 200, "latency_ms": "< 1s"}
    if isinstance(found.health_json.get("status"), str):
        expect["json"] = {"status": found.health_json["status"]}
    return Check({"http": Ref(f"${{url}}{found.health}"), "expect": expect}, "the health endpoint")


def _production_checks(found: Discovery) -> tuple[list[Check], list[str]]:
    checks = []
    health = _health_check(found)
    todo = []
    if found.version and health and found.version_path == found.health:
        health.body["expect"].setdefault("json", {})[found.version_key] = found.version
        health.comment = f"the health endpoint; the version answering now is {found.version}"
    elif found.version:
        checks.append(
            Check(
                {
                    "http": Ref(f"${{url}}{found.version_path}"),
                    "expect": {"status": 200, "json": {found.version_key: found.version}},
                },
                f"the version answering now is {found.version}",
            )
        )
    if health:
        checks.insert(0, health)
    if found.version:
        todo.append("the version expected in production (now the one answering)")
    if not checks:
        todo.append("an http check of the production URL (no health endpoint was found)")
    return checks, todo


def _load_checks(found: Discovery) -> tuple[list[Check], list[str]]:
    paths = [p for p in (found.health, found.version_path) if p] or ["/"]
    body = {
        "load": Ref("${url}"),
        "paths": {p: 1 for p in dict.fromkeys(paths)},
        "users": 5,
        "spawn_rate": 5,
        "duration": "10s",
        "expect": {"p95_ms": "< 1000ms", "failure_ratio": "< 1%"},
    }
    return [
        Check(
            body,
            "Locust against the endpoints found (the [load] extra); the targets are starters",
        )
    ], [
        "your performance targets (p95_ms, failure_ratio, rps) and a locustfile with the"
        " real mix of requests (locustfile: locustfile.py)"
    ]


def _monitoring_checks(found: Discovery) -> tuple[list[Check], list[str]]:
    checks, todo = [], []
    if found.metrics:
        checks.append(
            Check(
                {
                    "http": Ref(f"${{url}}{found.metrics}"),
                    "expect": {
                        "status": 200,
                        "body_contains": found.metric_names,
                        "latency_ms": "< 1s",
                    },
                },
                "metrics exposed",
            )
        )
    else:
        todo.append("the service's metrics endpoint (none found at /metrics)")
    if not found.prometheus:
        todo.append(
            "prometheus checks of the scrape targets and alert rules (fwgates init"
            " --prometheus-url URL finds them): targets_up and rules_loaded are demanded"
        )
        return checks, todo
    if found.jobs:
        checks.append(
            Check(
                {"prometheus": {"targets": found.jobs}, "server": Ref("${prometheus}")},
                "the jobs that scrape the service",
            )
        )
    else:
        other = ", ".join(found.other_jobs) or "none"
        todo.append(
            f"the Prometheus jobs of the service: no active target scrapes {found.url}"
            f" (jobs Prometheus has: {other})"
        )
    if found.rules:
        what = "its alert rules" if found.rules_of_jobs else "every alert rule Prometheus has"
        checks.append(
            Check(
                {"prometheus": {"rules": found.rules}, "server": Ref("${prometheus}")},
                f"{what}: keep the ones of this service",
            )
        )
    else:
        todo.append("alert rules for the service (Prometheus has none loaded)")
    return checks, todo


def _availability_checks(found: Discovery) -> tuple[list[Check], list[str]]:
    if not (found.prometheus and found.jobs):
        return [], ["availability over your window: a prometheus range query as availability_pct"]
    # the job name is a PromQL string literal (its quotes and backslashes escaped)
    query = f"100 * min(up{{job={json.dumps(found.jobs[0])}}})"
    body = {
        "prometheus": query,
        "server": Ref("${prometheus}"),
        "window": "30d",
        "as": "availability_pct",
    }
    return [Check(body, "up of the scrape target over 30 days (needs that much history)")], [
        "the window and the query your SLO is measured on"
    ]


#: criteria that can be given checks from what a service shows, by criterion id
RECIPES: dict[str, Recipe] = {
    "infrastructure-validation": _host_checks,
    "compliance-validation": _host_checks,
    "security-compliance": _security_checks,
    "security-controls": _security_checks,
    "data-protection": _tls_checks,
    "performance-verification": _load_checks,
    "monitoring-operational": _monitoring_checks,
    "monitoring-active": _monitoring_checks,
    "production-deployment": _production_checks,
    "production-answers": _production_checks,
    "system-availability": _availability_checks,
}

#: what a criterion that cannot be discovered needs, as a commented example
TODO_EXAMPLES: dict[str, list[str]] = {
    "rollback-capability": [
        "TODO: the command that rolls the service back and the version it must come back on",
        "rollback-capability:",
        "  - rollback: ./deploy/rollback.sh",
        "    health: ${url}/health",
        "    version: {json: version, expect: v1}",
        '    expect: {recovery_s: "< 120s"}',
    ],
    "automated-rollback": [
        "TODO: the command that rolls the service back and the version it must come back on",
        "automated-rollback:",
        "  - rollback: ./deploy/rollback.sh",
        "    health: ${url}/health",
        "    version: {json: version, expect: v1}",
    ],
    "deployment-reliability": [
        "TODO: the deploy command; repeat it to measure success_ratio",
        "deployment-reliability:",
        "  - deploy: ./deploy/deploy.sh v2",
        "    health: ${url}/health",
        "    version: {json: version, expect: v2}",
        "    repeat: 3",
    ],
    "deployment-time": [
        "TODO: the deploy command, timed from start to the new version answering",
        "deployment-time:",
        "  - deploy: ./deploy/deploy.sh v2",
        "    health: ${url}/health",
        "    version: {json: version, expect: v2}",
    ],
    "zero-data-loss": [
        "TODO: a deploy with the writer on: acknowledged writes read back afterwards",
        "zero-data-loss:",
        "  - deploy: ./deploy/deploy.sh v2",
        "    health: ${url}/health",
        '    writes: {url: "${url}/items", read: "${url}/items/{id}"}',
    ],
    "real-time-validation": [
        "TODO: a deploy probed all the way through (availability_pct during the deploy)",
        "real-time-validation:",
        "  - deploy: ./deploy/deploy.sh v2",
        "    health: ${url}/health",
        '    expect: {availability_pct: ">= 99.9%"}',
    ],
    "incident-response": [
        "TODO: a drill (fault, detection by an alert, recovery) or incident records -> MTTR",
        "incident-response:",
        "  - metric: records/incidents.csv",
        "    compute: mttr",
    ],
    "audit-trail": [
        "TODO: the audit log of deploys and changes",
        "audit-trail:",
        "  - audit_trail: /var/log/app/audit.log",
    ],
    "security-scanning": [
        "TODO: your scanner's report (trivy, grype, bandit, ...)",
        "security-scanning:",
        "  - scan: pip-audit -r requirements.txt --format json",
        "    severity: high",
    ],
    "access-control": [
        "TODO: who can log in and sudo on the hosts",
        "access-control:",
        "  - sshd: /etc/ssh/sshd_config",
        "  - sudo_members: [deploy]",
        "  - login_users: [root, deploy]",
    ],
    "anomaly-detection": [
        "TODO: labelled predictions of the anomaly detector",
        "anomaly-detection:",
        "  - metric: records/anomaly-predictions.csv",
        "    compute: accuracy",
    ],
    "cost-management": [
        "TODO: costs before and after",
        "cost-management:",
        "  - metric: records/costs.json",
        "    compute: reduction",
    ],
    "performance-baseline": [
        "TODO: a stored baseline: run the load check once with --gate-baseline-save",
    ],
}


def _criterion_header(criterion: Criterion) -> list[str]:
    kind = "required" if criterion.required else "advisory (fails as a warning)"
    lines = [f"# {criterion.id} ({kind}): {_oneline(criterion.title)}"]
    needs = [f"{k} {v}" for k, v in criterion.thresholds_in_force().items()]
    needs += [
        f"{' or '.join(m.split('|'))} measured"
        for m in criterion.measures
        if m not in criterion.standards
    ]
    if criterion.include:
        lines.append(f"#   the verdict of the gate {criterion.include} (its own file)")
    elif needs:
        lines.append(f"#   evidence it needs: {', '.join(needs)}")
    words = _oneline(criterion.description, 10_000).split()
    line = "#  "
    for word in words:
        if len(line) + len(word) + 1 > 96:
            lines.append(line)
            line = "#  "
        line += " " + word
    if line.strip("# "):
        lines.append(line)
    return lines


def render_gate(gate: Gate, found: Discovery, command: str) -> tuple[str, list[str]]:
    """The text of a starter file for catalog gate ``gate``; and the criteria left as TODO."""
    head = [
        f"# Starter gate file for {gate.name}, written by `{command}`",
        f"# on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from what the service showed. It extends"
        " the catalog gate of the",
        "# same name: every criterion below needs checks with real evidence. A criterion left as",
        "# TODO has no check, so it is NOT_EVALUATED and the gate FAILED until you fill it in.",
        f"#   pytest --gate={gate.name}",
    ]
    if found.notes:
        head.append("# What fwgates init could not find:")
        head += [f"#   - {_oneline(note)}" for note in found.notes]
    text = [*head, f"gate: {gate.name}"]
    if found.host not in ("", "local://") and found.listeners:
        # the host checks run where the service was found, not where pytest runs
        text.append(f"hosts: [{_q(_host_shown(found.host))}]")
    text.append("vars:")
    text.append(f"  url: {_q(found.url)}")
    if found.tls is not None:
        text.append(f"  tls_url: {_q(found.tls.url)}")
    if found.prometheus:
        text.append(f"  prometheus: {_q(found.prometheus)}")
    if found.ca:
        text.append(f"  ca: {_q(found.ca)}")
    body: list[str] = []
    todo_criteria: list[str] = []
    for criterion in gate.criteria.values():
        if criterion.include:
            body += [f"  {line}" for line in _criterion_header(criterion)]
            body.append("")
            continue
        recipe = RECIPES.get(criterion.id)
        checks, todo = recipe(found) if recipe else ([], [])
        if criterion.checks:  # the catalog gives it checks already (handoff validation)
            body += [f"  {line}" for line in _criterion_header(criterion)]
            body.append("  #   the catalog has its checks; set the variables they use")
            body.append("")
            continue
        body += [f"  {line}" for line in _criterion_header(criterion)]
        if checks:
            body.append(f"  {criterion.id}:")
            for check in checks:
                body += list(check.lines())
            body += [f"    # TODO: {_oneline(t, 300)}" for t in todo]
        else:
            todo_criteria.append(criterion.id)
            example = TODO_EXAMPLES.get(criterion.id)
            if example:
                body += [f"  # {line}" for line in example]
            else:
                body.append(
                    "  # TODO: checks for this criterion (docs/check-types.md names the check"
                    " types that measure its figures)"
                )
            body += [f"  # TODO: {_oneline(t, 300)}" for t in todo]
        body.append("")
    if any(not line.startswith(("  #", "#")) and line for line in body):
        text.append("criteria:")
    else:
        text.append("criteria: {}")
    text += body
    return "\n".join(text).rstrip() + "\n", todo_criteria


@dataclass
class Written:
    path: Path
    checks: int
    todo: list[str]
    skipped: bool = False


def write_gates(
    found: Discovery,
    folder: Path,
    names: Sequence[str],
    *,
    force: bool,
    command: str,
    load: Callable[[Path, str], Gate],
    catalog: Callable[[str], Gate],
) -> list[Written]:
    """Write a starter file per gate name into ``folder``; an existing file only with ``force``.

    Each text is first loaded from a scratch folder (``load``) so that a file that would not
    load is never written.
    """
    from .fsutil import atomic_write

    out = []
    for name in names:
        path = folder / f"{name}.yaml"
        # a link counts as a file, also one whose target does not exist (yet)
        if (path.exists() or path.is_symlink()) and not force:
            out.append(Written(path, 0, [], skipped=True))
            continue
        text, todo = render_gate(catalog(name), found, command)
        with tempfile.TemporaryDirectory(prefix="fwgates-init-") as scratch:
            trial = Path(scratch) / f"{name}.yaml"
            trial.write_text(text, encoding="utf-8")
            gate = load(Path(scratch), name)
        own = sum(1 for c in gate.checks() if c.source.path == trial)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
        out.append(Written(path, own, todo))
    return out
