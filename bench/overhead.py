"""Overhead: the same N host checks as a gate vs hand-written pytest-testinfra tests.

Both sides run ``true`` through testinfra's local backend N times in one pytest process;
the figure is the ratio of wall times (gate / testinfra), best of a few rounds each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMEOUT_S = 600


def _write(folder: Path, count: int) -> None:
    checks = "\n".join(f'      - command: "true"\n        id: check-{i}' for i in range(count))
    (folder / "gates").mkdir()
    (folder / "gates" / "bench.yaml").write_text(
        "gate: bench\ntitle: overhead benchmark\ncriteria:\n"
        f"  hosts:\n    title: host checks\n    checks:\n{checks}\n"
    )
    (folder / "test_testinfra.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('i', range({count}))\n"
        "def test_true(host, i):\n"
        "    assert host.run('true').rc == 0\n"
    )


def _time(folder: Path, args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed ({done.returncode}):\n{done.stdout[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
        folder = Path(tmp)
        _write(folder, args.checks)
        gate = min(
            _time(folder, ["--gate=bench", "--gate-junit=out/gates.xml"])
            for _ in range(args.rounds)
        )
        plain = min(_time(folder, ["test_testinfra.py"]) for _ in range(args.rounds))
    print(f"{args.checks} command checks as a gate:         {gate:7.2f} s")
    print(f"{args.checks} pytest-testinfra tests (host.run): {plain:7.2f} s")
    print(f"overhead ratio gate/testinfra: {gate / plain:.2f}")


if __name__ == "__main__":
    main()
