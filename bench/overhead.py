"""Overhead: the same N commands as gate checks vs as hand-written pytest-testinfra tests.

Both sides run ``true`` N times through ``/bin/sh -c`` (the gate's ``command`` check; testinfra's
``host.run``, which runs ``sh -c`` too), one pytest process each, from the minimal venv, in
interleaved pairs. The figure is gate time / testinfra time. Targets: 1.10 at 500, 1.15 at 5000.

Where the sides differ: the gate side also loads its gate file, decides a verdict and writes
its JUnit and summary.json (what a gate run is for); the plain side writes no report. Both
sides have the plugin installed (the plain side pays its idle cost, see ``bench.idle``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import Row, interleaved, minimal_venv, run_pytest

TARGETS = {500: 1.10, 5000: 1.15}


def write(folder: Path, count: int, command: str = "true") -> tuple[Path, Path]:
    """The gate side in ``folder/gate``, the plain side in ``folder/plain`` (apart, so that
    neither run collects the other's tests)."""
    checks = "\n".join(f'      - command: "{command}"\n        id: check-{i}' for i in range(count))
    gate, plain = folder / "gate", folder / "plain"
    (gate / "gates").mkdir(parents=True, exist_ok=True)
    plain.mkdir(exist_ok=True)
    (gate / "gates" / "bench.yaml").write_text(
        "gate: bench\ntitle: overhead benchmark\ncriteria:\n"
        f"  hosts:\n    title: host checks\n    checks:\n{checks}\n"
    )
    (plain / "test_testinfra.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('i', range({count}))\n"
        "def test_command(host, i):\n"
        f"    assert host.run({command!r}).rc == 0\n"
    )
    return gate, plain


def measure(count: int, pairs: int) -> Row:
    python = minimal_venv()
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
        folder = Path(tmp)
        gate, plain = write(folder, count)
        off = ["-p", "no:xdist"]
        pair = interleaved(
            lambda: run_pytest(python, gate, [*off, "--gate=bench", "--gate-junit=out/g.xml"]),
            lambda: run_pytest(python, plain, [*off, "test_testinfra.py"]),
            pairs,
        )
    print(f"{count} command checks as a gate:        {pair.a:7.2f} s (median of {pair.pairs})")
    print(f"{count} pytest-testinfra host.run tests:  {pair.b:7.2f} s")
    print(f"ratio gate/testinfra at {count}: {pair.ratio:.3f}")
    target = TARGETS.get(count)
    return Row(
        f"overhead: {count} command checks",
        f"{pair.a:.2f} s vs {pair.b:.2f} s = {pair.ratio:.3f}",
        f"<= {target:.2f}" if target else "",
        pair.ratio <= target if target else None,
    )


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, nargs="*", default=[500, 5000])
    parser.add_argument("--pairs", type=int, default=0, help="default: 7 at 500, 3 at 5000")
    args = parser.parse_args(argv)
    return [measure(n, args.pairs or (7 if n <= 1000 else 3)) for n in args.checks]


if __name__ == "__main__":
    main()
