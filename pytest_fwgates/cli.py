"""The ``fwgates`` command: the gate file schema, the gate list, gate file checks."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    registry = CheckRegistry()
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
