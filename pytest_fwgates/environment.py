"""environment.json of a handoff package: where and with what a gate run ran.

Plugin and tool versions, Python, the hosts and target URLs (credentials removed), the git
commit and branch (bounded commands), the CI job's variables (never those whose names say
they hold a secret) and the start and end times. Every text goes through the run's Redactor.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .redact import MASK, Redactor, secret_name
from .yamlsrc import leaves

__all__ = [
    "ci_variables",
    "collect_environment",
    "git_info",
    "public_url",
    "run_ids",
    "target_urls",
]

_TOOLS = (
    "pytest-fwgates",
    "pytest",
    "pluggy",
    "pytest-testinfra",
    "pytest-xdist",
    "requests",
    "locust",
    "jsonschema",
    "PyYAML",
    "cryptography",
    "defusedxml",
    "regex",
)
_CI_PREFIXES = (
    "GITHUB_",
    "GITLAB_",
    "CI_",
    "JENKINS_",
    "BUILD_",
    "RUNNER_",
    "BUILDKITE_",
    "CIRCLE_",
    "BITBUCKET_",
    "TEAMCITY_",
    "DRONE_",
)
_CI_NAMES = frozenset(
    {"CI", "JOB_NAME", "JOB_URL", "NODE_NAME", "EXECUTOR_NUMBER", "GIT_COMMIT", "GIT_BRANCH",
     "BRANCH_NAME", "CHANGE_ID", "TAG_NAME", "WORKSPACE", "TF_BUILD"}
)  # fmt: skip
#: names that look like CI variables but carry keys or credentials under other words
_SECRETISH = re.compile(r"(key|cert|private|cookie|session|signature|jwt|id_token)", re.I)
_URL = re.compile(r"\bhttps?://[^\s'\"<>]+", re.I)
_GIT_TIMEOUT = 5.0
_MAX_VALUE = 500


def public_url(url: str) -> str:
    """``url`` without user and password, secret-named query values masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = urlencode(
        [(k, MASK if secret_name(k) else v) for k, v in parse_qsl(parts.query, True)], safe="*"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def target_urls(texts: Iterable[Any]) -> list[str]:
    """HTTP(S) URLs found in check targets and options, without credentials, each once."""
    found = {
        public_url(match)
        for value in leaves(list(texts))
        if isinstance(value, str)
        for match in _URL.findall(value)
    }
    return sorted(found)


def ci_variables(environ: Mapping[str, str], redactor: Redactor) -> dict[str, str]:
    """The CI job's variables (GitHub, GitLab, Jenkins, ...), never secret-looking ones."""
    chosen: dict[str, str] = {}
    for name in sorted(environ):
        if not (name in _CI_NAMES or name.startswith(_CI_PREFIXES)):
            continue
        if secret_name(name) or _SECRETISH.search(name):
            continue
        value = redactor.text(environ[name])
        value = _URL.sub(lambda m: public_url(m[0]), value)
        chosen[name] = value if len(value) <= _MAX_VALUE else value[:_MAX_VALUE] + "…"
    return chosen


def _git(rootdir: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(rootdir), *args],
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.decode("utf-8", "replace").strip()


def git_info(rootdir: Path) -> dict[str, Any] | None:
    """Commit, branch and whether the work tree has changes; None outside a repository."""
    commit = _git(rootdir, "rev-parse", "HEAD")
    if not commit:
        return None
    branch = _git(rootdir, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(rootdir, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": branch if branch and branch != "HEAD" else None,
        "dirty": bool(status) if status is not None else None,
    }


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_ids(environ: Mapping[str, str]) -> dict[str, str]:
    """The identifiers of the CI run (job) a package is made in, by the variables they are
    made of: ``fwgates verify --require-run-id`` accepts a package whose ids include the one
    given. ``FWGATES_RUN_ID`` (any CI, or by hand), Jenkins' ``BUILD_TAG``, GitHub's
    ``GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT``, GitLab's ``CI_PIPELINE_ID`` and
    ``CI_PIPELINE_ID-CI_JOB_ID``."""

    def get(name: str) -> str:
        value = environ.get(name, "").strip()
        return value if len(value) <= _MAX_VALUE else ""

    ids: dict[str, str] = {}
    for name in ("FWGATES_RUN_ID", "BUILD_TAG", "CI_PIPELINE_ID"):
        if get(name):
            ids[name] = get(name)
    if get("GITHUB_RUN_ID") and get("GITHUB_RUN_ATTEMPT"):
        ids["GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT"] = (
            f"{get('GITHUB_RUN_ID')}-{get('GITHUB_RUN_ATTEMPT')}"
        )
    if get("CI_PIPELINE_ID") and get("CI_JOB_ID"):
        ids["CI_PIPELINE_ID-CI_JOB_ID"] = f"{get('CI_PIPELINE_ID')}-{get('CI_JOB_ID')}"
    return ids


def collect_environment(
    *,
    rootdir: Path,
    hosts: Iterable[str],
    targets: Iterable[Any],
    started: str,
    finished: str,
    redactor: Redactor,
    environ: Mapping[str, str] | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """The environment document (JSON-safe, redacted)."""
    env = os.environ if environ is None else environ
    hosts_clean = []
    for host in hosts:
        text = redactor.text(str(host))
        hosts_clean.append(public_url(text) if "://" in text and "@" in text else text)
    document: dict[str, Any] = {
        "started": started,
        "finished": finished,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.node(),
        "versions": _versions(),
        "hosts": hosts_clean,
        "targets": target_urls(targets),
        "git": git_info(rootdir),
        "ci": ci_variables(env, redactor),
        "command": [redactor.text(arg) for arg in (argv if argv is not None else sys.argv)],
    }
    value: dict[str, Any] = redactor.value(document)
    return value
