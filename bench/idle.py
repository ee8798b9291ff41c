"""Idle cost: what an installed pytest-fwgates adds to a pytest run that gates nothing.

200 trivial tests, run with the plugin (no ``--gate``) and with ``-p no:fwgates``, in
interleaved pairs from the minimal venv. Target: at most 15 ms more.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import Row, interleaved, minimal_venv, run_pytest

TARGET_MS = 15.0


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=15)
    args = parser.parse_args(argv)
    python = minimal_venv()
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as tmp:
        folder = Path(tmp)
        (folder / "test_trivial.py").write_text(
            "import pytest\n\n\n@pytest.mark.parametrize('i', range(200))\n"
            "def test_trivial(i):\n    assert i >= 0\n"
        )
        base = ["-p", "no:xdist", "test_trivial.py"]
        pair = interleaved(
            lambda: run_pytest(python, folder, base),
            lambda: run_pytest(python, folder, [*base, "-p", "no:fwgates"]),
            args.pairs,
        )
    extra_ms = (pair.a - pair.b) * 1000
    print(f"200 trivial tests, plugin installed: {pair.a * 1000:7.1f} ms (median of {pair.pairs})")
    print(f"200 trivial tests, -p no:fwgates:    {pair.b * 1000:7.1f} ms")
    print(f"idle cost of the plugin: {extra_ms:+.1f} ms (ratio {pair.ratio:.3f})")
    return [
        Row(
            "idle: plugin installed, no --gate",
            f"{extra_ms:+.1f} ms vs -p no:fwgates",
            f"<= +{TARGET_MS:g} ms",
            extra_ms <= TARGET_MS,
        )
    ]


if __name__ == "__main__":
    main()
