"""Masking secrets: every form a value takes in output, credentials in targets, reprs."""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path

import pytest

from pytest_fwgates.model import CheckSpec, Source
from pytest_fwgates.redact import MASK, Redactor, strip_credentials

SECRETS = ['it\'s "quoted" $ecret', "plain-secret-value", "naïve-ünïcode‽", "back\\slash\ttab"]


def _forms(secret: str) -> dict[str, str]:
    quoted = shlex.quote(secret)
    return {
        "raw": secret,
        "shell-quoted": quoted,
        "inside single quotes": secret.replace("'", "'\"'\"'"),
        "json": json.dumps(secret),
        "json ascii": json.dumps(secret, ensure_ascii=True),
        "repr": repr(secret),
        "bytes repr": repr(secret.encode()),
        "repr of shell-quoted": repr(quoted),
        "json of shell-quoted": json.dumps(quoted),
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64 url": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    }


@pytest.mark.parametrize("secret", SECRETS)
def test_every_form_of_a_secret_is_masked(secret: str) -> None:
    redactor = Redactor([secret])
    for name, form in _forms(secret).items():
        masked = redactor.text(f"log line: run {form} done")
        assert MASK in masked, name
        leftovers = [part for part in secret.split() if len(part) >= 4 and part in masked]
        assert not leftovers, (name, masked)


def test_testinfra_style_log_of_a_quoted_secret_is_masked() -> None:
    """testinfra logs the command it ran: shell-quoted, then inside a bytes repr."""
    secret = "ab'cd\"ef-123"
    command = f"curl -H {shlex.quote('X-Key: ' + secret)} http://127.0.0.1/"
    log = f"RUN CommandResult(command={command.encode()!r}, exit_status=0)"
    masked = Redactor([secret]).text(log)
    assert "ef-123" not in masked
    assert MASK in masked


def test_longest_counts_the_longest_form() -> None:
    redactor = Redactor(["ab'cd"])
    assert redactor.longest >= len(shlex.quote("ab'cd"))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:pw@example.test/x", "https://example.test/x"),
        ("http://tok3n@127.0.0.1:8080/health", "http://127.0.0.1:8080/health"),
        ("ssh://deploy@web1", "ssh://deploy@web1"),
        ("ssh://deploy:pw@web1", "ssh://web1"),
        ("curl https://a:b@h/ https://c:d@i/", "curl https://h/ https://i/"),
        ("no url here", "no url here"),
    ],
)
def test_credentials_are_removed_from_targets(text: str, shown: str) -> None:
    assert strip_credentials(text) == shown


def test_target_masks_query_secrets_too() -> None:
    redactor = Redactor(["s3cr3t-path-part"])
    shown = redactor.target("https://u:p@h/s3cr3t-path-part?token=abc&x=1")
    assert shown == f"https://h/{MASK}?token={MASK}&x=1"


def test_a_check_spec_repr_holds_no_target_options_or_values() -> None:
    spec = CheckSpec(
        type="http",
        target="https://user:hunter2@127.0.0.1/",
        id="health",
        gate="release",
        criterion="smoke",
        source=Source(Path("gates/release.yaml"), 4),
        options={"headers": {"Authorization": "Bearer hunter2"}},
    )
    shown = repr(spec)
    assert "hunter2" not in shown
    assert shown == (
        "CheckSpec(type='http', id='health', gate='release', criterion='smoke', "
        "source='gates/release.yaml:4')"
    )


def test_keys_of_mappings_are_masked() -> None:
    redactor = Redactor(["tok-SECRET-1"])
    masked = redactor.value({'{tok="tok-SECRET-1"}': 1.0, "n": {"tok-SECRET-1": ["tok-SECRET-1"]}})
    assert "tok-SECRET-1" not in repr(masked)


def test_url_password_in_every_derived_form() -> None:
    import base64

    redactor = Redactor()
    redactor.add_credentials(["see https://deployer:p%40ss%20w0rd@db.example/x", 5])
    basic = base64.b64encode(b"deployer:p@ss w0rd").decode()
    for text in ["p@ss w0rd", "p%40ss%20w0rd", basic, f"Authorization: Basic {basic}"]:
        assert "w0rd" not in redactor.text(text) and basic not in redactor.text(text), text


def test_bearer_and_basic_anywhere() -> None:
    import base64

    basic = base64.b64encode(b"someone:pw123456").decode()
    text = Redactor().text(f"{{'h': 'Bearer abcdef0123456789', 'b': 'Basic {basic}'}}")
    assert "abcdef0123456789" not in text and basic not in text
    # prose stays
    assert Redactor().text("Basic authentication") == "Basic authentication"


@pytest.mark.parametrize("password", ["p@ss:w0rd!x", "p@ss w0rd!x", "a@b@c:d%40e"])
def test_a_password_holding_at_or_blank_is_masked_whole(password: str) -> None:
    """URL parsers (urllib, urllib3, requests) end the user info at the LAST '@' before the
    path and send a blank as %20: a password may hold both. No piece of it shows."""
    url = f"http://admin:{password}@127.0.0.1:1/health"
    redactor = Redactor()
    redactor.add_credentials([url])
    pieces = [p for p in password.replace("@", " ").replace(":", " ").split() if len(p) > 2]
    for shown in (redactor.target(url), redactor.text(url), redactor.text(f"GET {url}: refused")):
        assert all(piece not in shown for piece in pieces), shown
    # the pattern alone (no registration) masks a password with '@' up to the last one
    assert "w0rd" not in Redactor().text("http://admin:p@ss:w0rd!x@127.0.0.1/")


def test_a_secret_in_upper_or_lower_case_is_masked() -> None:
    redactor = Redactor(["s3cr3tTOKENabc"])
    assert (
        redactor.text("assert 'S3CR3TTOKENABC' == x; s3cr3ttokenabc")
        == f"assert '{MASK}' == x; {MASK}"
    )
