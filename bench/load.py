"""Load: requests/s of a ``load`` check vs plain ``locust --headless``, and wrk as the ceiling.

Against the example stack's nginx serving a static response (``/static``, no app behind it).
Both sides run the same locustfile (FastHttpUser, no wait), users and duration; they alternate
in pairs in one run (ABBA order); the figure is the median of the pairs' ratios (check /
plain; the target is >= 0.95), with the medians of both sides beside it. The check's rps
comes from its own figures (Locust's JSON plus the exact listener); plain Locust's from its
``--json-file`` with the same definition (requests over the first-to-last window).
Then the same with ``processes: 2`` (Locust's ``--processes 2`` for the plain side), and wrk's
rps on the same URL with as many connections as users, and our share of it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from examples.stack import Stack
from pytest_fwgates.checks import CheckContext, CheckRegistry, run_check
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import Source

from .common import Row

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class StaticUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def static(self):
        self.client.get("/static")
"""


def _check_rps(
    folder: Path, url: str, users: int, duration: int, processes: int, index: int
) -> float:
    registry = CheckRegistry()
    loader = GateLoader([], registry=registry)
    settings: dict[str, object] = {
        "id": f"bench-{processes}-{index}",
        "locustfile": str(folder / "locustfile.py"),
        "users": users,
        "spawn_rate": users,
        "duration": duration,
    }
    if processes:
        settings["processes"] = processes
    spec = loader.spec_from_mapping(None, None, {"load": url, **settings}, Source(folder, 1))
    context = CheckContext(rootdir=folder, evidence_root=folder / "evidence")
    result = run_check(registry.get("load")(spec, context), "bench")
    if result.outcome.value == "error":
        raise SystemExit(f"load check failed: {result.message}")
    return float(result.measured["rps"])


def _plain_rps(folder: Path, url: str, users: int, duration: int, processes: int) -> float:
    prefix = folder / "plain"
    argv = [
        sys.executable, "-m", "locust", "-f", str(folder / "locustfile.py"), "--headless",
        "--host", url, "--users", str(users), "--spawn-rate", str(users),
        "--run-time", f"{duration}s", "--stop-timeout", "5", "--json-file", str(prefix),
        "--only-summary", "--exit-code-on-error", "0",
    ]  # fmt: skip
    if processes:
        argv += ["--processes", str(processes), "--master-bind-host", "127.0.0.1"]
    done = subprocess.run(
        argv, cwd=folder, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"plain locust failed ({done.returncode}): {done.stderr[-1000:]}")
    entries = json.loads(Path(f"{prefix}.json").read_text())
    requests = sum(int(e["num_requests"]) for e in entries)
    start = min(float(e["start_time"]) for e in entries)
    last = max(float(e["last_request_timestamp"]) for e in entries)
    return requests / (last - start)


def _wrk_rps(url: str, users: int, duration: int) -> float | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    done = subprocess.run(
        [wrk, "-t2", f"-c{users}", f"-d{duration}s", url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=False,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    return float(match.group(1)) if match else None


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    # five pairs: with processes: 2, Locust, nginx and the app share two cores, and single
    # runs of either side spread by 10 %
    parser.add_argument("--pairs", type=int, default=5, help="alternating pairs per mode")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-load-") as tmp:
        folder = Path(tmp)
        (folder / "locustfile.py").write_text(LOCUSTFILE)
        with Stack(folder / "stack") as stack:
            url = stack.urls["app"]
            print(f"target: {url}/static (nginx, static), {args.users} users, {args.duration} s")
            shares: dict[int, float] = {}
            rows: list[Row] = []
            for processes in (0, 2):
                check, plain = [], []
                for index in range(args.pairs):
                    # alternate which side goes first (ABBA), so a drift of the machine hits both
                    for side in ("check", "plain") if index % 2 == 0 else ("plain", "check"):
                        if side == "check":
                            check.append(
                                _check_rps(folder, url, args.users, args.duration, processes, index)
                            )
                        else:
                            plain.append(
                                _plain_rps(folder, url, args.users, args.duration, processes)
                            )
                label = f"processes: {processes}" if processes else "one process"
                ratio = statistics.median(c / p for c, p in zip(check, plain, strict=True))
                shares[processes] = statistics.median(check)
                print(
                    f"{label}: load check rps {[round(r) for r in check]} median "
                    f"{statistics.median(check):.0f}; plain locust rps "
                    f"{[round(r) for r in plain]} median {statistics.median(plain):.0f}; "
                    f"median of the pairs' ratios {ratio:.3f}"
                )
                rows.append(
                    Row(
                        f"load: rps of a load check vs plain locust, {label}",
                        f"{statistics.median(check):.0f} vs {statistics.median(plain):.0f} rps = "
                        f"{ratio:.3f}",
                        ">= 0.95",
                        ratio >= 0.95,
                    )
                )
            ceiling = _wrk_rps(f"{url}/static", args.users, args.duration)
            if ceiling is None:
                print("wrk: not installed (Debian package wrk); no ceiling measured")
            else:
                print(f"wrk (ceiling): {ceiling:.0f} rps")
                for processes, rps in shares.items():
                    label = f"processes: {processes}" if processes else "one process"
                    print(f"share of wrk's ceiling, {label}: {rps / ceiling:.1%}")
                    rows.append(
                        Row(
                            f"load: share of wrk's {ceiling:.0f} rps, {label}",
                            f"{rps / ceiling:.1%}",
                        )
                    )
    return rows


if __name__ == "__main__":
    main()
