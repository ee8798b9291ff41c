"""The ``fwgates`` command: the gate file schema, the gate list, gate file checks, baselines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .baseline import DEFAULT_DIR
from .baseline_cli import baseline_command
from .checks import CheckRegistry
from .listing import format_gate_list
from .loader import GateLoader
from .schema import gate_schema
from .yamlsrc import SourceError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fwgates", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pytest-fwgates {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="print the JSON Schema of gate files (for editors)")
    for name, text in (("list", "list the known gates"), ("check", "load gates, report errors")):
        command = sub.add_parser(name, help=text)
        command.add_argument(
            "--gate-dir", action="append", default=[], type=Path, help="folder of gate files"
        )
        if name == "check":
            command.add_argument("gates", nargs="*", help="gates to load (default: all)")
    listener = sub.add_parser(
        "locust-listener", help="print the path of the Locust listener workers must run too"
    )
    listener.add_argument(
        "--paths", action="store_true", help="the locustfile of paths: checks instead"
    )
    baseline = sub.add_parser("baseline", help="stored baseline runs: list, show, compare")
    actions = baseline.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "every check with stored runs"),
        ("show", "the runs of matching checks, one line each"),
        ("compare", "the newest run of matching checks against the reference before it"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--dir", type=Path, default=Path(DEFAULT_DIR), help=f"baseline folder ({DEFAULT_DIR})"
        )
        if name != "list":
            action.add_argument(
                "check", help="GATE::CRITERION::CHECK, or a part of it (e.g. a check id)"
            )
            action.add_argument(
                "--value",
                action="append",
                default=[],
                help="figures to show (repeatable; default: the main ones)",
            )
        if name == "compare":
            action.add_argument("--compare", choices=["last", "median"], default="last")
            action.add_argument("--last", type=int, default=5, help="runs in a median")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    registry = CheckRegistry()
    if args.command == "baseline":
        return baseline_command(args)
    if args.command == "locust-listener":
        from .locust_run import LISTENER, PATHS_LOCUSTFILE

        sys.stdout.write(f"{PATHS_LOCUSTFILE if args.paths else LISTENER}\n")
        return 0
    if args.command == "schema":
        json.dump(gate_schema(registry.classes()), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    loader = GateLoader(args.gate_dir or [Path("gates")], registry=registry)
    if args.command == "list":
        text, ok = format_gate_list(loader)
        sys.stdout.write(text)
        return 0 if ok else 1
    failed = 0
    for name in args.gates or loader.known():
        if name not in loader.known():
            sys.stderr.write(f"fwgates: {loader.unknown_gate_message(name)}\n")
            failed += 1
            continue
        try:
            gate = loader.load(name)
        except SourceError as exc:
            sys.stderr.write(f"{exc}\n")
            failed += 1
            continue
        sys.stdout.write(
            f"{name}: ok ({len(gate.criteria)} criteria, {len(gate.checks())} checks)\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
