"""``tls``: a live TLS endpoint: days to expiry, protocols offered, hostname, chain.

The endpoint is probed from the machine pytest runs on, with Python's ``ssl`` and the
certificate read by ``cryptography``: one handshake without verification reads the
certificate, one verifies its chain against ``ca`` (or the system's trust store), and one
handshake per protocol version (TLSv1 to TLSv1.3) finds which versions the server accepts.
All connections of a check end within its timeout together (one absolute deadline that
shuts their sockets down, :mod:`pytest_fwgates.deadline`); a handshake cut by it is an error,
never a refused protocol.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import urllib.parse
import warnings
from pathlib import Path
from typing import Any, ClassVar

from ..deadline import Deadline
from .base import Check, CheckError, Measurement

__all__ = ["TlsCheck", "hostname_matches"]

VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
LEGACY = ("TLSv1", "TLSv1.1")
_LOCAL_LIMITS = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "UNSUPPORTED_PROTOCOL_VERSION")


def _tls_version(name: str) -> ssl.TLSVersion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 and TLSv1.1 are deprecated
        return {  # (looked up by value: the names are deprecated, not the versions)
            "TLSv1": ssl.TLSVersion.TLSv1,
            "TLSv1.1": ssl.TLSVersion.TLSv1_1,
            "TLSv1.2": ssl.TLSVersion.TLSv1_2,
            "TLSv1.3": ssl.TLSVersion.TLSv1_3,
        }[name]


def _endpoint(target: str) -> tuple[str, int]:
    text = target if "://" in target else f"tls://{target}"
    url = urllib.parse.urlsplit(text)
    if not url.hostname:
        raise CheckError(f"tls: no host in {target!r}")
    try:
        port = url.port or 443
    except ValueError:
        raise CheckError(f"tls: bad port in {target!r}") from None
    return url.hostname, port


def hostname_matches(cert: Any, name: str) -> bool:
    """Whether certificate ``cert`` (cryptography) is valid for ``name`` (RFC 6125 rules)."""
    from cryptography import x509

    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        return address in sans.get_values_for_type(x509.IPAddress)
    wanted = name.lower().rstrip(".")
    for pattern in sans.get_values_for_type(x509.DNSName):
        pattern = pattern.lower().rstrip(".")
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted:
            head, _, rest = wanted.partition(".")
            if head and rest == pattern[2:]:
                return True
    return False


class TlsCheck(Check):
    type_name = "tls"
    summary = "A TLS endpoint (https://host:port): days_valid, protocols, hostname, chain."
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"days_valid"})
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "ca": {"type": "string", "minLength": 1, "description": "CA bundle (PEM) for the chain"},
        "server_name": {
            "type": "string",
            "minLength": 1,
            "description": "name to send (SNI) and match; default: the host of the target",
        },
    }
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "min_version": {"enum": list(VERSIONS)},
        "legacy_refused": {"type": "boolean", "description": "TLSv1 and TLSv1.1 are refused"},
        "hostname_match": {"type": "boolean"},
        "chain_valid": {"type": "boolean"},
    }
    default_timeout = 30.0

    def measure(self) -> Measurement:
        host, port = _endpoint(self.spec.target)
        name = str(self.spec.options.get("server_name") or host)
        ca = self.spec.options.get("ca")
        if ca is not None:
            ca_path = Path(str(ca))
            if not ca_path.is_absolute():
                ca_path = self.context.rootdir / ca_path
            if not ca_path.is_file():
                raise CheckError(f"tls: CA file {ca} does not exist")
            ca = str(ca_path)
        expect = {"legacy_refused": True, "hostname_match": True, "chain_valid": True}
        expect.update(self.spec.expect)
        with Deadline(self.timeout) as deadline:
            try:
                measurement = self._measure(host, port, name, ca, expect, deadline)
            except CheckError:
                if deadline.expired:
                    raise CheckError(f"tls: no answer within {self.timeout:g} s") from None
                raise
            if deadline.expired:  # a handshake cut by the deadline is no refusal
                raise CheckError(f"tls: no answer within {self.timeout:g} s")
            return measurement

    def _measure(
        self,
        host: str,
        port: int,
        name: str,
        ca: Any,
        expect: dict[str, Any],
        deadline: Deadline,
    ) -> Measurement:
        from cryptography import x509

        der, negotiated = self._handshake(host, port, name, deadline, self._plain())
        cert = x509.load_der_x509_certificate(der)
        not_after = cert.not_valid_after_utc
        now = dt.datetime.now(dt.UTC)
        days_valid = round((not_after - now).total_seconds() / 86400, 2)
        facts: dict[str, Any] = {
            "endpoint": f"{host}:{port}",
            "negotiated": negotiated,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": not_after.isoformat(),
        }
        failures: list[str] = []

        chain_error = self._verify(host, port, name, deadline, ca)
        facts["chain_valid"] = chain_error is None
        if chain_error is not None:
            facts["chain_error"] = chain_error
        if facts["chain_valid"] != expect["chain_valid"]:
            failures.append(
                f"chain is not valid ({chain_error})"
                if chain_error is not None
                else "chain is valid, expected it not to be"
            )

        matches = hostname_matches(cert, name)
        facts["hostname_match"] = matches
        if matches != expect["hostname_match"]:
            failures.append(
                f"certificate is not valid for {name}"
                if not matches
                else f"certificate is valid for {name}, expected it not to be"
            )

        wanted_min = expect.get("min_version")
        probe = [v for v in VERSIONS if expect.get("legacy_refused") is not None or wanted_min]
        accepted = [v for v in probe if self._accepts(host, port, name, deadline, v)]
        facts["accepted"] = accepted
        legacy = [v for v in accepted if v in LEGACY]
        if expect["legacy_refused"] and legacy:
            failures.append(f"accepts {', '.join(legacy)}, expected them refused")
        if expect["legacy_refused"] is False and not legacy:
            failures.append("refuses TLSv1 and TLSv1.1, expected them accepted")
        if wanted_min:
            older = [v for v in accepted if VERSIONS.index(v) < VERSIONS.index(wanted_min)]
            if older:
                failures.append(f"accepts {', '.join(older)}, expected {wanted_min} or newer")
            if not any(VERSIONS.index(v) >= VERSIONS.index(wanted_min) for v in accepted):
                failures.append(f"accepts no protocol at {wanted_min} or newer")
        return Measurement(values={"days_valid": days_valid}, facts=facts, failures=failures)

    # -- connections -----------------------------------------------------------------------
    @staticmethod
    def _plain() -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self, host: str, port: int, deadline: Deadline) -> socket.socket:
        """A connection within the check's deadline (which also ends its handshake)."""
        try:
            return deadline.connect((host, port))
        except TimeoutError:
            raise CheckError(f"tls: no answer within {self.timeout:g} s") from None

    def _handshake(
        self, host: str, port: int, name: str, deadline: Deadline, ctx: ssl.SSLContext
    ) -> tuple[bytes, str]:
        try:
            with self._connect(host, port, deadline) as raw:
                sni = None if _is_ip(name) else name
                with ctx.wrap_socket(raw, server_hostname=sni) as tls:
                    der = tls.getpeercert(binary_form=True)
                    if not der:
                        raise CheckError(f"tls: {host}:{port} sent no certificate")
                    return der, str(tls.version())
        except (ssl.SSLError, OSError) as exc:
            raise CheckError(f"tls: no TLS handshake with {host}:{port}: {exc}") from None

    def _verify(self, host: str, port: int, name: str, deadline: Deadline, ca: Any) -> str | None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # the hostname is judged on its own
        if ca:
            ctx.load_verify_locations(cafile=str(ca))
        else:
            ctx.load_default_certs()
        try:
            self._handshake(host, port, name, deadline, ctx)
        except CheckError as exc:
            cause = str(exc).rsplit(": ", 1)[-1]
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in cause.lower():
                return cause
            raise
        return None

    def _accepts(self, host: str, port: int, name: str, deadline: Deadline, version: str) -> bool:
        ctx = self._plain()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = _tls_version(version)
                ctx.maximum_version = _tls_version(version)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let old protocols be offered at all
        except (ValueError, ssl.SSLError) as exc:
            raise CheckError(f"tls: this machine cannot offer {version}: {exc}") from None
        try:
            with self._connect(host, port, deadline) as raw:
                sni = None if _is_ip(name) else name
                with ctx.wrap_socket(raw, server_hostname=sni):
                    return True
        except ssl.SSLError as exc:
            if exc.reason in _LOCAL_LIMITS and "alert" not in str(exc):
                raise CheckError(f"tls: this machine cannot offer {version}: {exc}") from None
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            return False
        except OSError as exc:
            raise CheckError(f"tls: {host}:{port} did not answer: {exc}") from None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
