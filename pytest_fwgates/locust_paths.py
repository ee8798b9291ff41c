# mypy: ignore-errors
"""The locustfile a ``load`` check with ``paths:`` runs (in the Locust process, never in pytest).

The paths are data: they arrive as JSON in ``FWGATES_LOAD_PATHS`` (a list of
``[method, path, weight]``), never as code. One FastHttpUser class with one weighted task per
path; each request is named by its path, so ``/work?ms=20`` is an endpoint of its own.
``FWGATES_LOAD_WAIT`` is ``[min, max]`` seconds between a user's requests (default none).
"""

from __future__ import annotations

import json
import os

from locust import FastHttpUser, between, constant

_PATHS = json.loads(os.environ.get("FWGATES_LOAD_PATHS") or "[]")
_WAIT = json.loads(os.environ.get("FWGATES_LOAD_WAIT") or "[0, 0]")


def _task(method: str, path: str):
    def request(user) -> None:
        user.client.request(method, path, name=path)

    request.__name__ = f"{method} {path}"
    return request


class PathsUser(FastHttpUser):
    wait_time = constant(0) if not any(_WAIT) else between(float(_WAIT[0]), float(_WAIT[1]))
    tasks = {_task(str(m), str(p)): max(int(w), 1) for m, p, w in _PATHS}
