"""What every benchmark shares: a minimal venv, interleaved pairs, medians, one table.

- **A minimal venv.** Benchmarks that start pytest run it from ``.bench-venv``, made with
  ``pip install .`` (and pytest-xdist, kept off with ``-p no:xdist`` except where it is the
  subject), so the development venv's extra plugins do not add a fixed cost to both sides.
  It is rebuilt when the package's files change.
- **Interleaved pairs.** Both sides run alternately (A B, then B A, ...), so drift of the
  machine hits both; the figures are medians, and the ratio is the median of the pairs' ratios.
- **No tracemalloc while timing.** Memory is measured in a pass of its own (peak RSS of a
  separate process).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venv"
RUN_TIMEOUT = 900.0


@dataclass
class Row:
    """One line of the final table."""

    name: str
    figure: str
    target: str = ""
    met: bool | None = None

    def line(self, width: int) -> str:
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        return f"{self.name:<{width}}  {self.figure:<34}  {self.target:<16}  {verdict}"


def print_table(rows: Sequence[Row]) -> None:
    width = max((len(r.name) for r in rows), default=10)
    print()
    print(f"{'benchmark':<{width}}  {'figure':<34}  {'target':<16}  result")
    print("-" * (width + 62))
    for row in rows:
        print(row.line(width))


def _source_hash() -> str:
    digest = hashlib.sha256()
    files = [ROOT / "pyproject.toml", *sorted((ROOT / "pytest_fwgates").rglob("*.py"))]
    files += sorted((ROOT / "gates").glob("*.yaml"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def minimal_venv() -> Path:
    """``.bench-venv/bin/python`` with only this package (``pip install .``) and pytest-xdist."""
    marker = VENV / ".source-hash"
    wanted = _source_hash()
    python = VENV / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"(building the minimal venv {VENV.name}: pip install . pytest-xdist)", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT), "pytest-xdist"],
        check=True,
        timeout=RUN_TIMEOUT,
    )
    marker.write_text(wanted)
    return python


def run_pytest(python: Path, folder: Path, args: Sequence[str], ok: Sequence[int] = (0,)) -> float:
    """Wall seconds of ``python -m pytest args`` in ``folder``; an unexpected status stops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        env=env,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(
            f"benchmark run {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
        )
    return elapsed


@dataclass
class Pair:
    """Medians of two sides measured in interleaved pairs."""

    a: float
    b: float
    ratio: float
    pairs: int


def interleaved(a: Callable[[], float], b: Callable[[], float], pairs: int) -> Pair:
    """Run ``a`` and ``b`` alternately ``pairs`` times (ABBA order), after one warm-up each."""
    a()
    b()
    times_a: list[float] = []
    times_b: list[float] = []
    for index in range(pairs):
        if index % 2 == 0:
            times_a.append(a())
            times_b.append(b())
        else:
            times_b.append(b())
            times_a.append(a())
    ratios = [x / y for x, y in zip(times_a, times_b, strict=True)]
    return Pair(
        statistics.median(times_a), statistics.median(times_b), statistics.median(ratios), pairs
    )
