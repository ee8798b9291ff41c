"""The example stack: the web app (blue and green), nginx with TLS in front, Prometheus.

``python -m examples.stack up|status|deploy|rollback|down``, or from Python::

    from examples.stack import Stack

    with Stack(directory) as stack:
        stack.urls["app"], stack.env
        stack.deploy("v2", strategy="bluegreen")
        stack.rollback()
"""

from __future__ import annotations

from .core import DEFAULT_DIR, Stack
from .deploy import DeployError, DeployResult
from .procs import StackError

__all__ = ["DEFAULT_DIR", "DeployError", "DeployResult", "Stack", "StackError"]
