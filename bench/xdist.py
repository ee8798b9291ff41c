"""When ``-n`` pays: the same gate serially and with ``-n 2``, short and sleeping checks.

Each xdist worker starts pytest and loads the gates again, so a gate of many short commands
runs slower with ``-n 2`` on two cores; checks that wait (network, ``sleep``) gain.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import Row, interleaved, minimal_venv, run_pytest
from .overhead import write


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    python = minimal_venv()
    rows = []
    for count, command, label in ((1000, "true", "short"), (200, "sleep 0.05", "50 ms")):
        with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
            folder, _ = write(Path(tmp), count, command)
            gate = ["--gate=bench", "--gate-junit=out/g.xml"]

            def parallel(f: Path = folder, g: list[str] = gate) -> float:
                return run_pytest(python, f, [*g, "-n", "2"])

            def serial(f: Path = folder, g: list[str] = gate) -> float:
                return run_pytest(python, f, [*g, "-p", "no:xdist"])

            pair = interleaved(parallel, serial, args.pairs)
        speedup = pair.b / pair.a
        print(f"{count} {label} checks: -n 2 {pair.a:.2f} s, serial {pair.b:.2f} s")
        rows.append(
            Row(
                f"xdist: {count} {label} checks",
                f"-n 2 {pair.a:.2f} s, serial {pair.b:.2f} s: x{speedup:.2f}",
                "(informative)",
            )
        )
    return rows


if __name__ == "__main__":
    main()
