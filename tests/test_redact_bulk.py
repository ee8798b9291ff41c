"""Redactor.text_bulk masks exactly what Redactor.text masks, only faster on long texts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates.redact import Redactor

PIECES = st.sampled_from(
    [
        "password", "Passwd", "SECRET", "token", "api_key", "api-key", "APIKEY", "ap\u0131_key",
        "authorization", "Authorization", "Bearer", "basic", "://", "http://u:p@h/x",
        "user:pw@", ":", "=", " ", "  ", "\n", "\n\n", "\t", ",", ";", "&", "'", '"', "@",
        "/", "value", "x", "-", "_", ", ", '", "', '": "', "\u017fecret", "{", "}", "ß", "hunter22",
    ]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(PIECES, max_size=60))
def test_bulk_equals_plain(pieces: list[str]) -> None:
    redactor = Redactor(["hunter22"])
    text = "".join(pieces)
    padding = "filler line, nothing here\n" * 3
    long_text = padding + text + "\n" + padding + text
    assert redactor.text_bulk(long_text, min_len=0) == redactor.text(long_text)


def test_bulk_on_a_long_text_without_triggers_is_unchanged() -> None:
    text = "ok line\n" * 100_000
    assert Redactor(["nothere1"]).text_bulk(text) == text
