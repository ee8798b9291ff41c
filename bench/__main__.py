"""Run every benchmark and print one table: ``python -m bench`` (or ``make bench``).

``python -m bench NAME ...`` runs only the named ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

from . import (
    baseline_ab,
    canary,
    downtime_fidelity,
    hosts,
    idle,
    load,
    overhead,
    relative_rates,
    scale,
    xdist,
)
from .common import Row, print_table

BENCHES: dict[str, ModuleType] = {
    "idle": idle,
    "overhead": overhead,
    "hosts": hosts,
    "xdist": xdist,
    "scale": scale,
    "load": load,
    "downtime": downtime_fidelity,
    "canary": canary,
    "baseline_ab": baseline_ab,
    "relative_rates": relative_rates,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown[0]}; known: {', '.join(BENCHES)}")
    rows: list[Row] = []
    for name in names:
        print(f"== {name}", flush=True)
        run: Callable[[list[str]], list[Row]] = BENCHES[name].main
        rows.extend(run([]))
    print_table(rows)


if __name__ == "__main__":
    main()
