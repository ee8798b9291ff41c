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
    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair that signs handoff packages")
    keygen.add_argument(
        "private_key", type=Path, help="where the private key goes (PEM, mode 0600)"
    )
    keygen.add_argument(
        "--public-key", type=Path, help="where the public key goes (default: PRIVATE_KEY.pub)"
    )
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    verify = sub.add_parser(
        "verify", help="verify a handoff package: hashes, no file missing or added, signature"
    )
    verify.add_argument("package", type=Path, help="the package folder or its .tar.gz")
    verify.add_argument("--public-key", type=Path, help="trusted Ed25519 public key (PEM)")
    verify.add_argument(
        "--require-verdict",
        choices=["PASSED", "FAILED", "HUMAN_REVIEW_REQUIRED"],
        help="the verdict the package must record",
    )
    verify.add_argument(
        "--require-deliverables",
        action="store_true",
        help="all seven handoff deliverables must be in the package",
    )
    verify.add_argument(
        "--max-age", metavar="DURATION", help="the package may be at most this old (e.g. 24h)"
    )
    return parser


def _keygen(args: argparse.Namespace) -> int:
    from .integrity import IntegrityError, keygen

    public = args.public_key or args.private_key.with_name(args.private_key.name + ".pub")
    try:
        print_ = keygen(args.private_key, public, force=args.force)
    except (IntegrityError, OSError) as exc:
        sys.stderr.write(f"fwgates keygen: {exc}\n")
        return 1
    sys.stdout.write(f"private key: {args.private_key} (keep it secret)\n")
    sys.stdout.write(f"public key:  {public}\nfingerprint: {print_}\n")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .integrity import IntegrityError, load_public_key, parse_age, verify_package

    try:
        key = load_public_key(args.public_key) if args.public_key else None
        max_age = parse_age(args.max_age) if args.max_age else None
    except IntegrityError as exc:
        sys.stderr.write(f"fwgates verify: {exc}\n")
        return 2
    result = verify_package(
        args.package,
        public_key=key,
        require_verdict=args.require_verdict,
        require_deliverables=args.require_deliverables,
        max_age_s=max_age,
    )
    for problem in result.problems:
        sys.stdout.write(f"FAIL {problem}\n")
    for note in result.notes:
        sys.stdout.write(f"note {note}\n")
    if result.manifest is not None:
        signed = {True: "valid", False: "INVALID", None: "not checked"}[result.signed]
        missing = ", ".join(result.missing_deliverables) or "none"
        sys.stdout.write(
            f"package {args.package}: {result.files} files, verdict {result.verdict}, "
            f"signature {signed}, deliverables missing: {missing}\n"
        )
    if result.ok:
        sys.stdout.write("OK: the package verifies\n")
        return 0
    sys.stdout.write(f"NOT OK: {len(result.problems)} problem(s)\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        return _keygen(args)
    if args.command == "verify":
        return _verify(args)
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
