"""Downtime fidelity: outages of known length injected into the example stack, measured by the
prober through nginx, and the error of each measurement.

    python -m bench.downtime_fidelity [--lengths 0,100,500,2000] [--repeat 20]
                                      [--interval 0.02] [--timeout 0.05] [--mode stop,drain]

Two ways to stop the upstream, each switched on and off on the prober's own clock
(``time.monotonic``), the off edge held to the millisecond by a short spin:

- ``stop``: SIGSTOP the live app (gunicorn's whole process group), SIGCONT after the length.
  nginx keeps accepting; requests hang until the app runs again or the probe times out.
- ``drain``: the app's drain file exists for the length: ``/health`` answers 503 at once.

Length 0 injects nothing: every outage it measures is a false one. For each length the bench
prints the measured-minus-injected error (median, max of the absolute error) and the
detection rate; the target is an error within one interval plus one probe timeout, 100 %
detection of outages of at least twice the interval, and no false outage.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from examples.stack import Stack
from pytest_fwgates.probe import Prober

from .common import Row, print_table

GAP_S = 0.6  # quiet time before and after each injection


def _spin_until(moment: float) -> float:
    left = moment - time.monotonic()
    if left > 0.003:
        time.sleep(left - 0.002)
    while time.monotonic() < moment:
        pass
    return time.monotonic()


def _injector(stack: Stack, mode: str) -> tuple[Callable[[], None], Callable[[], None]]:
    state = stack.load()
    live = state["colours"][state["live"]]
    if mode == "stop":
        pgid = os.getpgid(int(live["proc"]["pid"]))

        def down() -> None:
            os.killpg(pgid, signal.SIGSTOP)

        def up() -> None:
            os.killpg(pgid, signal.SIGCONT)

        return down, up
    drain = stack.layout.colour_dir(state["live"]) / "draining"

    def drain_on() -> None:
        drain.touch()

    def drain_off() -> None:
        drain.unlink(missing_ok=True)

    return drain_on, drain_off


def measure(
    stack: Stack, mode: str, lengths: list[int], repeat: int, interval: float, timeout: float
) -> list[tuple[int, list[float], int]]:
    """Per length: the measured-minus-injected errors (ms) and how many were detected."""
    down, up = _injector(stack, mode)
    rows = []
    prober = Prober(stack.urls["app"] + "/health", interval=interval, timeout=timeout)
    with prober:
        prober.wait_for(lambda probes: len(probes) >= 5, 5)
        for length in lengths:
            errors: list[float] = []
            detected = 0
            for _ in range(repeat):
                time.sleep(GAP_S)
                begin = prober.now()
                if length:
                    down()
                    start = prober.now()
                    try:
                        end_at = _spin_until(prober.t0 + start + length / 1000.0)
                    finally:
                        up()
                    injected_ms = (end_at - prober.t0 - start) * 1000.0
                else:
                    start, injected_ms = begin, 0.0
                time.sleep(GAP_S)
                figures = prober.figures(start=begin - 0.001, end=prober.now())
                if figures.outages:
                    detected += 1
                errors.append(figures.downtime_ms - injected_ms)
            rows.append((length, errors, detected))
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench.downtime_fidelity")
    parser.add_argument("--lengths", default="0,100,500,2000", help="outage lengths in ms")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.02, help="probe interval (s)")
    parser.add_argument("--timeout", type=float, default=0.05, help="probe timeout (s)")
    parser.add_argument("--mode", default="stop,drain", help="stop, drain or both")
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    bound_ms = (args.interval + args.timeout) * 1000
    twice_ms = 2 * args.interval * 1000
    load = os.getloadavg()[0]
    busy = load > 1.0
    print(
        f"interval {args.interval * 1000:.0f} ms, probe timeout {args.timeout * 1000:.0f} ms, "
        f"{args.repeat} injections per length; target: |error| <= {bound_ms:.0f} ms, 100 % "
        f"detection from {twice_ms:.0f} ms; load average {load:.2f} on {os.cpu_count()} cores "
        "at the start" + (" (BUSY: figures not final)" if busy else ""),
        flush=True,
    )
    rows: list[Row] = []

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a timeout, a cancelled job): still stop the stack

    signal.signal(signal.SIGTERM, interrupt)
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-") as folder:
        stack = Stack(Path(folder) / "stack")
        try:
            stack.up()
            for mode in args.mode.split(","):
                measured = measure(stack, mode, lengths, args.repeat, args.interval, args.timeout)
                print(f"\nmode {mode}:")
                print(f"  {'injected':>9}  {'median err':>10}  {'max |err|':>9}  detected")
                for length, errors, detected in measured:
                    worst = max(abs(e) for e in errors)
                    rate = 100.0 * detected / len(errors)
                    median = statistics.median(errors)
                    print(
                        f"  {length:>6} ms  {median:>+7.1f} ms  {worst:>6.1f} ms  {rate:5.1f} %",
                        flush=True,
                    )
                    if length == 0:
                        met = detected == 0
                        target = "0 false outages"
                    else:
                        met = worst <= bound_ms and (length < twice_ms or detected == len(errors))
                        target = f"<= {bound_ms:.0f} ms, 100 %"
                    rows.append(
                        Row(
                            f"downtime {mode} {length} ms" + (" (busy)" if busy else ""),
                            f"err median {median:+.1f} max {worst:.1f} ms, {rate:.0f} %",
                            target,
                            met,
                        )
                    )
        finally:
            stack.down()
    return rows


if __name__ == "__main__":
    print_table(main(sys.argv[1:]))
