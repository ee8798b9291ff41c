"""The ``fwgates`` command: the gate file schema, the gate list, gate file checks, baselines."""

from __future__ import annotations

import argparse
import configparser
import json
import shlex
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .baseline import DEFAULT_DIR
from .baseline_cli import baseline_command
from .checks import CheckRegistry
from .listing import format_gate_list
from .loader import GateLoader
from .schema import gate_schema
from .variables import VariableError, parse_assignment
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
            "--gate-dir",
            action="append",
            default=[],
            type=Path,
            help="folder of gate files (default: gate_dirs of the pytest ini, else gates/)",
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


def find_ini(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The pytest configuration that applies in ``start``: (its path, its pytest options).

    Searched as pytest does: in ``start`` and then each parent, the first of pytest.ini,
    .pytest.ini, pyproject.toml with ``[tool.pytest.ini_options]``, tox.ini with
    ``[pytest]`` and setup.cfg with ``[tool:pytest]``.
    """
    for folder in (start, *start.parents):
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
            path = folder / name
            if not path.is_file():
                continue
            if name == "pyproject.toml":
                try:
                    data = tomllib.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                    continue
                options = data.get("tool", {}).get("pytest", {}).get("ini_options")
                if isinstance(options, dict):
                    return path, options
                continue
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read(path, encoding="utf-8")
            except (OSError, UnicodeDecodeError, configparser.Error):
                continue
            section = "tool:pytest" if name == "setup.cfg" else "pytest"
            if parser.has_section(section):
                return path, dict(parser.items(section))
            if name in ("pytest.ini", ".pytest.ini"):
                return path, {}  # pytest.ini is the configuration even when empty
    return None


def _ini_settings(start: Path) -> tuple[list[Path], dict[str, str]]:
    """gate_dirs (default: gates/ beside the ini file, else in ``start``) and gate_vars."""
    found = find_ini(start)
    if found is None:
        return [start / "gates"], {}
    path, options = found
    raw_dirs = options.get("gate_dirs", [])
    names = shlex.split(raw_dirs) if isinstance(raw_dirs, str) else [str(d) for d in raw_dirs]
    dirs = [path.parent / name for name in names] or [path.parent / "gates"]
    raw_vars = options.get("gate_vars", [])
    lines = raw_vars.splitlines() if isinstance(raw_vars, str) else [str(v) for v in raw_vars]
    variables: dict[str, str] = {}
    for line in (line.strip() for line in lines):
        if line:
            try:
                name, value = parse_assignment(line)
            except VariableError as exc:
                raise SystemExit(f"fwgates: {path}: gate_vars: {exc}") from None
            variables[name] = value
    return dirs, variables


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
    ini_dirs, ini_vars = _ini_settings(Path.cwd())
    loader = GateLoader(args.gate_dir or ini_dirs, registry=registry, cli_vars=ini_vars)
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
