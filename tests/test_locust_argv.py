"""Values of a gate file reach Locust's command line as values, never as options: checked
against Locust's own argument parser (in a process of its own: importing Locust patches the
standard library with gevent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_fwgates.locust_run import LoadError, LoadPlan, locust_argv

_PARSE = """
import json, sys
from locust.argument_parser import parse_options
out = []
for argv in json.loads(sys.stdin.read()):
    o = parse_options(argv)
    out.append([o.host, o.tags, o.locustfile])
print(json.dumps(out))
"""

HOSTS = ["http://127.0.0.1:1", "-f/tmp/evil.py", "--html=/tmp/x", "-x y --tags a"]


def test_the_host_is_a_value_whatever_it_holds(tmp_path: Path) -> None:
    argvs = [
        locust_argv(LoadPlan(host=host, workdir=tmp_path, tags=["a", "b c"]), tmp_path / "r")[3:]
        for host in HOSTS
    ]
    parsed = subprocess.run(
        [sys.executable, "-c", _PARSE],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = json.loads(parsed.stdout.strip().splitlines()[-1])
    for host, (seen_host, tags, locustfile) in zip(HOSTS, results, strict=True):
        assert seen_host == host and tags == ["a", "b c"] and "evil" not in locustfile


@pytest.mark.parametrize("tag", ["-f/tmp/evil.py", "--locustfile=/tmp/evil.py", "-"])
def test_a_tag_that_would_be_an_option_is_refused(tag: str, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="never starts with '-'"):
        locust_argv(LoadPlan(host="http://h", workdir=tmp_path, tags=["a", tag]), tmp_path)
