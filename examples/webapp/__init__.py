"""The example web app (WSGI), served by gunicorn in two versions, v1 and v2."""

from __future__ import annotations

VERSIONS = ("v1", "v2")
# Deliberate faults a version can be started with (APP_FAULT).
FAULTS = ("500", "slow", "crash")
