"""``pytest --debug``: its log (``pytestdebug.log``) goes through the run's Redactor.

pytest writes the command line (``--gate-var db_password=...``) at the top of the log and then
every hook call with its arguments and results (a fixture's value, with its bearer token). The
plugin gets control only after the first lines are written: it masks those in place and puts
the Redactor in front of the writer for everything after them.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import pytest

from .redact import Redactor, secret_name

__all__ = ["mask_debug_log"]


def _early_redactor(config: pytest.Config) -> Redactor:
    """What is known before the gate files are read: secret-named environment variables and
    ``--gate-var``/``gate_vars`` values, and the credentials of every URL given."""
    from .variables import VariableError, parse_assignment

    redactor = Redactor.from_environ()
    texts = [*config.getini("gate_vars"), *(config.option.fwgates_vars or [])]
    for text in texts:
        with contextlib.suppress(VariableError):
            name, value = parse_assignment(text)
            if secret_name(name):
                redactor.add([value])
    redactor.add_credentials([*texts, *map(str, config.invocation_params.args)])
    return redactor


def mask_debug_log(config: pytest.Config, current: Callable[[], Redactor | None]) -> None:
    """Mask what pytest's debug log holds so far and all it is given from now on; ``current``
    gives the run's Redactor once there is one (it learns the gate files' secrets)."""
    if not getattr(config.option, "debug", None):
        return
    tracer: Any = config.trace.root
    write = getattr(tracer, "_writer", None)
    stream = getattr(write, "__self__", None)
    if write is None or not isinstance(stream, io.TextIOBase):
        return
    early = _early_redactor(config)

    def masked(text: str) -> None:
        write((current() or early).text(text))

    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        stream.flush()
        with open(stream.name, encoding="utf-8", errors="replace") as f:  # type: ignore[attr-defined]
            so_far = f.read()
        stream.seek(0)
        stream.write(early.text(so_far))
        stream.truncate()
    tracer.setwriter(masked)
