"""Command line of the example stack.

    python -m examples.stack up       [--dir DIR] [--version v1]
    python -m examples.stack status   [--dir DIR] [--json]
    python -m examples.stack deploy   [--dir DIR] --version v2
                                      [--strategy bluegreen|naive|canary|rolling]
                                      [--weight PERCENT] [--instance N] [--instances 3]
                                      [--fault FAULT] [--timeout S] [--json]
    python -m examples.stack rollback [--dir DIR] [--timeout S] [--json]
    python -m examples.stack down     [--dir DIR]

FAULT: 500, slow, crash, or measured faults joined by commas: errors=5% (a share of requests
answers 500), garbled=5% (a share answers 200 with a body that is not the app's),
delay=20ms (each request slower), crash-after=N (the instance exits after N requests).
``--strategy canary --weight W`` sends W % of the requests to the new version (100 promotes
it, 0 takes it out). ``--strategy rolling [--instance N] [--instances 3]``
replaces instance N (every one in turn without it) of a pool of instances behind nginx.

DIR defaults to $FWGATES_STACK_DIR, else ./.fwgates-stack. Exit status: 0 done (or nothing to do),
1 failed (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..webapp import VERSIONS, fault_env
from .core import Stack, default_dir
from .deploy import STRATEGIES, DeployError, DeployResult
from .procs import StackError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.stack",
        description="Start, deploy to, roll back and stop the example stack (loopback only).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=None, help=f"stack directory (default: {default_dir()})")
    up = sub.add_parser("up", parents=[common], help="start everything, write stack.env")
    up.add_argument("--version", choices=VERSIONS, default="v1", help="version to start with")
    status = sub.add_parser("status", parents=[common], help="health of every part")
    status.add_argument("--json", action="store_true")
    deploy = sub.add_parser("deploy", parents=[common], help="deploy a version")
    deploy.add_argument("--version", choices=VERSIONS, required=True)
    deploy.add_argument("--strategy", choices=STRATEGIES, default="bluegreen")
    deploy.add_argument("--fault", type=_fault, default=None, help="deploy a broken build")
    deploy.add_argument(
        "--weight", type=_weight, default=None, help="canary: percent of requests (0-100)"
    )
    deploy.add_argument(
        "--instance", type=int, default=None, help="rolling: replace only this instance (1-N)"
    )
    deploy.add_argument(
        "--instances", type=int, default=3, help="rolling: instances in the pool (default 3)"
    )
    deploy.add_argument("--timeout", type=float, default=120.0, help="time budget in seconds")
    deploy.add_argument("--json", action="store_true")
    rollback = sub.add_parser("rollback", parents=[common], help="back to the previous version")
    rollback.add_argument("--timeout", type=float, default=120.0, help="time budget in seconds")
    rollback.add_argument("--json", action="store_true")
    sub.add_parser("down", parents=[common], help="stop everything the stack started")
    return parser


def _fault(text: str) -> str:
    try:
        fault_env(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value:g} is not within 0-100")
    return value


def _print_result(result: DeployResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    phases = ", ".join(f"{name} {value:.2f}s" for name, value in result.phases.items())
    print(f"{result.result}: {result.message}" + (f" [{phases}]" if phases else ""))


def _print_status(report: dict[str, Any]) -> None:
    if not report["up"]:
        print(f"no stack in {report['dir']}")
        return
    verdict = "healthy" if report["healthy"] else "UNHEALTHY"
    fault = f" (fault {report['fault']})" if report.get("fault") else ""
    print(f"stack {report['dir']}: {verdict}; live {report['live']} {report['version']}{fault}")
    for name, part in report["parts"].items():
        extra = f" {part['version']}" if "version" in part else ""
        live = " live" if part.get("live") else ""
        print(f"  {name:<11} pid {part['pid']}{extra}{live}: {part['health']}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stack = Stack(args.dir, version=getattr(args, "version", "v1") or "v1")
    try:
        if args.command == "up":
            env = stack.up()
            print(f"stack up in {stack.dir} (written to {stack.layout.env_file}):")
            for key, value in env.items():
                print(f"{key}={value}")
        elif args.command == "status":
            report = stack.status()
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                _print_status(report)
            return 0 if report["healthy"] else 1
        elif args.command == "deploy":
            if args.weight is not None and args.strategy != "canary":
                print("error: --weight is for --strategy canary", file=sys.stderr)
                return 2
            if args.strategy == "rolling":
                result = stack.rolling(
                    args.version,
                    args.instance or None,
                    instances=args.instances,
                    fault=args.fault,
                    timeout=args.timeout,
                )
            elif args.strategy == "canary":
                weight = 100.0 if args.weight is None else args.weight
                result = stack.canary(args.version, weight, fault=args.fault, timeout=args.timeout)
            else:
                result = stack.deploy(
                    args.version, args.strategy, fault=args.fault, timeout=args.timeout
                )
            _print_result(result, args.json)
        elif args.command == "rollback":
            _print_result(stack.rollback(timeout=args.timeout), args.json)
        elif args.command == "down":
            outcome = stack.down()
            stopped = ", ".join(f"{name} {what}" for name, what in outcome.items())
            print(f"stack down in {stack.dir}" + (f": {stopped}" if stopped else ""))
    except DeployError as exc:
        if getattr(args, "json", False):
            print(json.dumps(exc.result.to_json(), indent=2))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
