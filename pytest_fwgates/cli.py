"""The ``fwgates`` command: starter gate files, the gate file schema, the gate list, gate file
checks, baselines, handoff package keys and verification."""

from __future__ import annotations

import argparse
import configparser
import json
import os
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
    init = sub.add_parser(
        "init",
        help="write starter gate files from what a running service shows",
        description="Look at a running service (its sockets, process, package, TLS, health and "
        "metrics endpoints, Prometheus targets and rules) and write a commented starter file per "
        "catalog gate into the gate folder, with TODO lines for what cannot be discovered.",
    )
    init.add_argument("--url", required=True, help="the service's base URL (http:// or https://)")
    init.add_argument(
        "--prometheus-url", default="", help="the Prometheus that scrapes it (targets, rules)"
    )
    init.add_argument(
        "--host",
        default="local://",
        help="the host it runs on, as a testinfra host spec (default local://)",
    )
    init.add_argument("--ca", default="", help="CA certificate (PEM) its TLS certificate chains to")
    init.add_argument(
        "--gate", action="append", default=[], help="only this catalog gate (repeatable)"
    )
    init.add_argument(
        "--gate-dir",
        type=Path,
        help="where the files go (default: the first gate_dirs of the pytest ini, else gates/)",
    )
    init.add_argument("--force", action="store_true", help="replace existing gate files")
    init.add_argument(
        "--timeout", type=float, default=5.0, help="bound of each request and command, seconds"
    )
    init.add_argument(
        "--no-host", action="store_true", help="do not look at the host (sockets, packages)"
    )
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
        choices=["PASSED", "FAILED", "HUMAN_REVIEW_REQUIRED", "INCONCLUSIVE"],
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
    verify.add_argument(
        "--require-run-id",
        metavar="RUN_ID",
        help="the package must have been made in this CI run: $BUILD_TAG (Jenkins), "
        "$GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT (GitHub), $CI_PIPELINE_ID or "
        "$CI_PIPELINE_ID-$CI_JOB_ID (GitLab), $FWGATES_RUN_ID",
    )
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
            action.add_argument(
                "--last", type=_positive_int, default=5, help="runs in a median (at least 1)"
            )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


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
        if args.require_run_id is not None and not args.require_run_id.strip():
            raise IntegrityError("--require-run-id is empty (is the CI variable set?)")
    except IntegrityError as exc:
        sys.stderr.write(f"fwgates verify: {exc}\n")
        return 2
    result = verify_package(
        args.package,
        public_key=key,
        require_verdict=args.require_verdict,
        require_deliverables=args.require_deliverables,
        max_age_s=max_age,
        require_run_id=args.require_run_id.strip() if args.require_run_id else None,
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


def _init(args: argparse.Namespace) -> int:
    from .init import InitError, discover, write_gates

    if not 0 < args.timeout <= 300:
        sys.stderr.write("fwgates init: --timeout must be more than 0 and at most 300 s\n")
        return 2
    ini_dirs, _ = _ini_settings(Path.cwd())
    folder = args.gate_dir or ini_dirs[0]
    catalog = GateLoader([])
    # a gate named twice is written once (not refused as "exists" by its own first write)
    names = list(dict.fromkeys(args.gate or [n for n in catalog.known() if catalog.in_catalog(n)]))
    for name in names:
        if not catalog.in_catalog(name):
            sys.stderr.write(f"fwgates init: {catalog.unknown_gate_message(name)}\n")
            return 2
    try:
        found = discover(
            args.url,
            prometheus=args.prometheus_url,
            host=args.host,
            ca=args.ca,
            timeout=args.timeout,
            look_at_host=not args.no_host,
        )
    except InitError as exc:
        sys.stderr.write(f"fwgates init: {exc}\n")
        return 2
    command = "fwgates init --url " + found.url
    if found.prometheus:
        command += " --prometheus-url " + found.prometheus
    try:
        written = write_gates(
            found,
            folder,
            names,
            force=args.force,
            command=command,
            load=lambda scratch, name: GateLoader([scratch]).load(name),
            catalog=catalog.load,
        )
    except (SourceError, OSError) as exc:
        sys.stderr.write(f"fwgates init: {exc}\n")
        return 1
    for note in found.notes:
        sys.stdout.write(f"note: {note}\n")
    skipped = 0
    for item in written:
        if item.skipped:
            skipped += 1
            sys.stdout.write(f"{item.path}: exists, left as it is (--force replaces it)\n")
            continue
        todo = f"; TODO: {', '.join(item.todo)}" if item.todo else ""
        sys.stdout.write(f"{item.path}: {item.checks} checks{todo}\n")
    if any(not item.skipped for item in written):
        sys.stdout.write(
            "Fill in the TODO lines, then run: pytest --gate=NAME (a criterion without checks "
            "is NOT_EVALUATED and fails its gate)\n"
        )
    return 1 if skipped else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command; a reader that goes away (``fwgates schema | head``) ends it quietly."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader closed the pipe: nothing more can be shown; Python must not try again
        # when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # as a shell reports a command ended by SIGPIPE
    return code


def _main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "init":
        return _init(args)
    if args.command == "keygen":
        return _keygen(args)
    if args.command == "verify":
        return _verify(args)
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
    for folder in args.gate_dir:  # as pytest --gate-dir: a mistyped folder is no "ok"
        try:
            usable = folder.is_dir()
        except OSError:  # a name too long, a loop of links
            usable = False
        if not usable:
            sys.stderr.write(f"fwgates {args.command}: --gate-dir {folder}: no such folder\n")
            return 2
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
