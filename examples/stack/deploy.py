"""Deploys and rollbacks of the example stack, each audited to ``DIR/audit.log``.

- ``bluegreen``: start the new version on the idle colour, wait until it is ready (health plus a
  smoke check), point nginx's upstream at it and reload nginx, wait for nginx's old workers to
  finish their requests, then drain and stop the old colour. A version that fails its readiness
  checks is stopped and nginx is never switched: the old version keeps serving.
- ``naive``: stop the live version, then start the new one in its place (the same colour and
  port): the service is down in between, and stays down if the new version is broken.
- ``canary``: start the new version on the idle colour beside the live one, wait until it is
  ready, then send ``weight`` % of the requests to it (nginx ``split_clients`` by request,
  changed by reload). Run again with a larger weight to shift more; weight 100 promotes it
  (blue/green switch to it, the old colour stopped); weight 0 takes it out.
- ``rolling``: a pool of instances behind nginx (round robin; made from the live version on
  first use: the live colour is instance 1), each replaced in turn by the new version (started,
  ready and warmed up, then swapped into the pool by reload, the old one stopped), or only
  instance ``N`` for one step of a rolling deploy.
- ``rollback``: during a rolling deploy, every instance of the new version back to the one it
  replaced, all at once; take a canary out (every request back to the live colour, the
  canary stopped); else go back to the version the last deploy replaced (the last one that passed
  its readiness checks), blue/green style.

Each one is idempotent (asking for what already serves is a no-op) and bounded by a time budget.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..webapp import VERSIONS, fault_env
from . import components as comp
from . import procs
from .components import COLOURS
from .procs import LOOPBACK, StackError

if TYPE_CHECKING:
    from .core import Stack

STRATEGIES = ("bluegreen", "naive", "canary", "rolling")
#: instances of a rolling deploy's pool, unless told otherwise
POOL_SIZE = 3


@dataclass
class DeployResult:
    action: str
    strategy: str
    from_version: str | None
    to_version: str
    colour: str
    result: str  # success | noop | failed
    duration_s: float
    message: str
    fault: str | None = None
    phases: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DeployError(StackError):
    """A deploy or rollback failed; ``result`` holds what happened."""

    def __init__(self, result: DeployResult) -> None:
        super().__init__(result.message)
        self.result = result


class _Failed(Exception):
    def __init__(self, message: str, colour: str) -> None:
        super().__init__(message)
        self.colour = colour


class _Budget:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def bound(self, step: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise StackError(f"out of its {self.timeout:.0f}s time budget")
        return min(step, left)


def label(target: dict[str, Any] | None) -> str:
    if not target:
        return "nothing"
    fault = target.get("fault")
    return f"{target['version']}" + (f" (fault {fault})" if fault else "")


def actor() -> str:
    found = os.environ.get("FWGATES_ACTOR") or os.environ.get("USER")
    if not found:
        try:
            found = getpass.getuser()
        except (KeyError, OSError):
            found = "unknown"
    return found


def audit(stack: Stack, result: DeployResult) -> None:
    record = {
        "time": comp.now_iso(),
        "action": result.action,
        "strategy": result.strategy,
        "from_version": result.from_version,
        "to_version": result.to_version,
        "fault": result.fault,
        "colour": result.colour,
        "actor": actor(),
        "result": result.result,
        "duration_s": result.duration_s,
        "phases": result.phases,
        "message": result.message,
    }
    path = stack.layout.audit_log
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(fd, "a") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())


def _serving(entry: dict[str, Any] | None, target: dict[str, Any]) -> bool:
    """``entry`` runs exactly ``target`` and is healthy."""
    if not entry or entry["version"] != target["version"] or entry["fault"] != target["fault"]:
        return False
    if not comp.colour_running(entry):
        return False
    try:
        status, _ = procs.http(f"http://{LOOPBACK}:{entry['port']}/health", timeout=2.0)
    except OSError:
        return False
    return status == 200


def _require_up(stack: Stack) -> dict[str, Any]:
    state = stack.state
    if not state or not state.get("nginx"):
        raise StackError(
            f"no stack is up in {stack.layout.root}: run `python -m examples.stack up` first"
        )
    return state


def deploy(
    stack: Stack, version: str, strategy: str, *, fault: str | None, timeout: float
) -> DeployResult:
    if version not in VERSIONS:
        raise StackError(f"unknown version {version!r}: expected one of {', '.join(VERSIONS)}")
    if strategy not in STRATEGIES:
        raise StackError(f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    try:
        fault_env(fault)
    except ValueError as exc:
        raise StackError(str(exc)) from None
    _require_up(stack)
    target = {"version": version, "fault": fault}
    return _run(stack, "deploy", strategy, target, timeout)


def canary(
    stack: Stack, version: str, weight: float, *, fault: str | None, timeout: float
) -> DeployResult:
    """Send ``weight`` % of the requests to ``version`` (100 promotes it, 0 takes it out)."""
    if not 0 <= weight <= 100:
        raise StackError(f"canary weight {weight:g} is not within 0-100")
    if weight >= 100:
        return deploy(stack, version, "canary", fault=fault, timeout=timeout)
    if version not in VERSIONS:
        raise StackError(f"unknown version {version!r}: expected one of {', '.join(VERSIONS)}")
    try:
        fault_env(fault)
    except ValueError as exc:
        raise StackError(str(exc)) from None
    state = _require_up(stack)
    target = {"version": version, "fault": fault, "weight": weight}
    if weight <= 0:
        if not state.get("canary"):
            live = state["colours"].get(state["live"])
            done = DeployResult(
                "deploy",
                "canary",
                live and live["version"],
                version,
                state["live"],
                "noop",
                0.0,
                "no canary to take out",
            )
            audit(stack, done)
            return done
        return _run(stack, "rollback", "canary", target, timeout)
    return _run(stack, "deploy", "canary", target, timeout)


def rolling(
    stack: Stack,
    version: str,
    instance: int | None,
    *,
    instances: int,
    fault: str | None,
    timeout: float,
) -> DeployResult:
    """Replace instance ``instance`` (1-based; every one in turn when None) of the pool."""
    if version not in VERSIONS:
        raise StackError(f"unknown version {version!r}: expected one of {', '.join(VERSIONS)}")
    if not 2 <= instances <= 8:
        raise StackError(f"a pool of {instances} instances: expected 2-8")
    if instance is not None and not 1 <= instance <= instances:
        raise StackError(f"instance {instance} is not within 1-{instances}")
    try:
        fault_env(fault)
    except ValueError as exc:
        raise StackError(str(exc)) from None
    _require_up(stack)
    target = {"version": version, "fault": fault, "instance": instance, "instances": instances}
    return _run(stack, "deploy", "rolling", target, timeout)


def rollback(stack: Stack, *, timeout: float) -> DeployResult:
    state = _require_up(stack)
    if state.get("rolling"):
        back = state["rolling"]["from"]
        target = {"version": back["version"], "fault": back["fault"], "instance": None}
        return _run(stack, "rollback", "rolling", target, timeout)
    if state.get("canary"):
        live = state["colours"][state["live"]]
        target = {"version": live["version"], "fault": live["fault"], "weight": 0}
        return _run(stack, "rollback", "canary", target, timeout)
    target = state.get("rollback_to")
    if not target:
        live = state["colours"].get(state["live"])
        result = DeployResult(
            action="rollback",
            strategy="bluegreen",
            from_version=live["version"] if live else None,
            to_version="",
            colour=state["live"],
            result="failed",
            duration_s=0.0,
            message="nothing to roll back to: no deploy has replaced a version in this stack yet",
        )
        audit(stack, result)
        raise DeployError(result)
    return _run(stack, "rollback", "bluegreen", dict(target), timeout)


def reset_stale(stack: Stack, *, timeout: float = 30.0) -> DeployResult | None:
    """At the stack's start, on a stack that is up: take out what a deploy killed midway left.

    A canary's share lives between two commands of a deploy in steps (each command holds the
    stack's lock only while it runs): when the run that drives the steps is killed, nginx
    keeps sending the share to the canary, or to nothing once that instance is gone (502 for
    that share of the users). So a canary on record is taken out (every request to the live
    colour, the canary stopped), and an instance that is neither live, in the pool nor
    running is forgotten. None when there was nothing to do."""
    state = stack.state
    if not state or not state.get("nginx") or not state.get("colours"):
        return None
    live_colour = state.get("live")
    pool = set(state.get("pool") or [])
    for name, entry in list(state["colours"].items()):
        if entry and name != live_colour and name not in pool and not comp.colour_running(entry):
            state["colours"][name] = None
    live = state["colours"].get(live_colour)
    if not state.get("canary") or not comp.colour_running(live):
        stack.save()  # without a live colour, the stack's start begins afresh anyway
        return None
    canary_colour = state["canary"].get("colour")
    canary_entry = state["colours"].get(canary_colour) if canary_colour else None
    started = time.monotonic()
    phases: dict[str, float] = {}
    _canary_out(stack, _Budget(timeout), phases)
    done = DeployResult(
        action="rollback",
        strategy="canary",
        from_version=canary_entry["version"] if canary_entry else None,
        to_version=live["version"] if live else "",
        colour=str(live_colour),
        result="success",
        duration_s=round(time.monotonic() - started, 3),
        message="stale canary taken out at start (left by a deploy that did not finish): "
        f"every request to {label(live)} on {live_colour}",
        phases={k: round(v, 3) for k, v in phases.items()},
    )
    audit(stack, done)
    return done


def _run(
    stack: Stack, action: str, strategy: str, target: dict[str, Any], timeout: float
) -> DeployResult:
    state = stack.state
    started = time.monotonic()
    live_colour = state["live"]
    live = state["colours"].get(live_colour)
    phases: dict[str, float] = {}

    def result(outcome: str, colour: str, message: str) -> DeployResult:
        return DeployResult(
            action=action,
            strategy=strategy,
            from_version=live["version"] if live else None,
            to_version=target["version"],
            colour=colour,
            result=outcome,
            duration_s=round(time.monotonic() - started, 3),
            message=message,
            fault=target["fault"],
            phases={k: round(v, 3) for k, v in phases.items()},
        )

    # a pool or a canary is more than the live colour: those strategies know when they are done
    whole = not state.get("pool") and not state.get("canary") and strategy != "rolling"
    if whole and _serving(live, target):
        done = result("noop", live_colour, f"{label(target)} already serves on {live_colour}")
        audit(stack, done)
        return done
    budget = _Budget(timeout)
    try:
        if strategy == "rolling":
            colour = _rolling(stack, target, budget, phases, action)
        elif strategy == "canary" and action == "rollback":
            colour = _canary_out(stack, budget, phases)
        elif strategy == "canary" and target.get("weight") is not None:
            colour = _canary(stack, target, budget, phases)
        elif strategy in ("bluegreen", "canary"):
            colour = _promote(stack, target, budget, phases, action)
        else:
            colour = _naive(stack, target, budget, phases)
    except _Failed as exc:
        failed = result("failed", exc.colour, f"{action} {strategy} failed: {exc}")
        audit(stack, failed)
        raise DeployError(failed) from None
    except StackError as exc:
        failed = result("failed", state["live"], f"{action} {strategy} failed: {exc}")
        audit(stack, failed)
        raise DeployError(failed) from exc
    weight = target.get("weight")
    share = f" ({weight:g}% of requests)" if weight and action == "deploy" else ""
    done = result(
        "success",
        colour,
        f"{action} {strategy}: {label(live)} -> {label(target)}{share} on {colour} "
        f"in {time.monotonic() - started:.1f}s",
    )
    audit(stack, done)
    return done


def _mark_good(state: dict[str, Any], target: dict[str, Any], action: str) -> None:
    """Record ``target`` as the last good version; a deploy keeps the one it replaced."""
    if action == "deploy" and state.get("last_good") and state["last_good"] != target:
        state["rollback_to"] = state["last_good"]
    state["last_good"] = dict(target)


def _canary_entry(state: dict[str, Any], target: dict[str, Any]) -> dict[str, Any] | None:
    """The running canary when it runs exactly ``target``."""
    current = state.get("canary")
    entry = state["colours"].get(current["colour"]) if current else None
    if not entry or entry["version"] != target["version"] or entry["fault"] != target["fault"]:
        return None
    return entry if comp.colour_running(entry) else None


def _canary(stack: Stack, target: dict[str, Any], budget: _Budget, phases: dict[str, float]) -> str:
    """The canary on the idle colour (started and ready first), ``weight`` % routed to it."""
    state, layout = stack.state, stack.layout
    live = state["colours"][state["live"]]
    idle = COLOURS[1 - COLOURS.index(state["live"])]
    drain_s = float(state.get("drain_s", 1.0))
    clock = time.monotonic()
    entry = _canary_entry(state, target)
    if entry is None:
        if state.get("canary"):
            _canary_out(stack, budget, phases)
        leftover = state["colours"].get(idle)
        if leftover:
            comp.stop_colour(leftover, drain_s=drain_s, quick=True)
            state["colours"][idle] = None
        # on record before it starts: a rollback after any failure from here on takes the
        # canary out (and never goes back to an older version instead)
        state["canary"] = {"colour": idle, "weight": 0}
        stack.save()
        entry = comp.start_colour(
            layout,
            idle,
            target["version"],
            target["fault"],
            python=state["python"],
            drain_s=drain_s,
            timeout=budget.bound(20.0),
        )
        state["colours"][idle] = entry
        stack.save()
        reason = comp.colour_ready(entry, timeout=budget.bound(30.0))
        phases["start_s"] = time.monotonic() - clock
        if reason:
            comp.stop_colour(entry, drain_s=drain_s, quick=True)
            state["colours"][idle] = None
            stack.save()
            raise _Failed(
                f"no canary: {label(target)} on {idle} failed its readiness checks "
                f"({reason}); {label(live)} keeps serving every request",
                idle,
            )
        comp.warm_up(entry, timeout=budget.bound(10.0))
    clock = time.monotonic()
    state["canary"] = {"colour": idle, "weight": target["weight"]}
    stack.save()
    generation = comp.write_routing(layout, live, entry, target["weight"])
    comp.reload_routing(
        layout, state["nginx_bin"], state["nginx"], generation, timeout=budget.bound(15.0)
    )
    phases["shift_s"] = time.monotonic() - clock
    return idle


def _canary_out(stack: Stack, budget: _Budget, phases: dict[str, float]) -> str:
    """Every request back to the live colour, then the canary stopped."""
    state, layout = stack.state, stack.layout
    live = state["colours"][state["live"]]
    current = state.get("canary")
    clock = time.monotonic()
    generation = comp.write_routing(layout, live)
    comp.reload_routing(
        layout, state["nginx_bin"], state["nginx"], generation, timeout=budget.bound(15.0)
    )
    phases["shift_s"] = time.monotonic() - clock
    if current:
        clock = time.monotonic()
        # nginx's old workers are gone: no request is in flight to the canary any more
        if current["colour"] != state["live"]:
            comp.stop_colour(state["colours"].get(current["colour"]), drain_s=0.0, quick=True)
            state["colours"][current["colour"]] = None
        phases["stop_s"] = time.monotonic() - clock
    state["canary"] = None
    stack.save()
    return str(state["live"])


def _promote(
    stack: Stack,
    target: dict[str, Any],
    budget: _Budget,
    phases: dict[str, float],
    action: str,
) -> str:
    """Blue/green to ``target``: a running canary of it becomes the live colour as it is."""
    state, layout = stack.state, stack.layout
    entry = _canary_entry(state, target)
    if entry is None:
        if state.get("canary"):
            _canary_out(stack, budget, phases)
        return _bluegreen(stack, target, budget, phases, action)
    live_colour = state["live"]
    live = state["colours"][live_colour]
    clock = time.monotonic()
    comp.reload_nginx(layout, state["nginx_bin"], state["nginx"], entry, timeout=budget.bound(15.0))
    state["live"] = entry["colour"]
    state["canary"] = None
    _mark_good(state, {"version": target["version"], "fault": target["fault"]}, action)
    stack.save()
    phases["switch_s"] = time.monotonic() - clock
    clock = time.monotonic()
    comp.stop_colour(live, drain_s=float(state.get("drain_s", 1.0)))
    state["colours"][live_colour] = None
    stack.save()
    _drop_pool(stack, keep=str(entry["colour"]))
    phases["drain_s"] = time.monotonic() - clock
    return str(entry["colour"])


def _drop_pool(stack: Stack, keep: str) -> None:
    """Back to one live colour: the other instances of a pool stopped (nginx no longer
    sends them anything)."""
    state = stack.state
    for name in list(state.get("pool") or []) + [n for n in state["colours"] if n not in COLOURS]:
        if name != keep and name not in COLOURS and state["colours"].get(name):
            comp.stop_colour(state["colours"][name], drain_s=0.0, quick=True)
            state["colours"][name] = None
    state["pool"] = None
    state["rolling"] = None
    stack.save()


def _slot_names(slot: int) -> tuple[str, str]:
    """The two names an instance of the pool alternates between (1: the live colour's)."""
    return COLOURS if slot == 1 else (f"r{slot}a", f"r{slot}b")


def _pool_entries(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [state["colours"][name] for name in state["pool"]]


def _route_pool(stack: Stack, budget: _Budget) -> None:
    state, layout = stack.state, stack.layout
    generation = comp.write_pool(layout, _pool_entries(state))
    comp.reload_routing(
        layout, state["nginx_bin"], state["nginx"], generation, timeout=budget.bound(15.0)
    )


def _start_ready(
    stack: Stack, name: str, target: dict[str, Any], budget: _Budget
) -> dict[str, Any]:
    """A new instance ``name`` of ``target``, ready and warmed up; _Failed when it is not."""
    state, layout = stack.state, stack.layout
    drain_s = float(state.get("drain_s", 1.0))
    leftover = state["colours"].get(name)
    if leftover:
        comp.stop_colour(leftover, drain_s=drain_s, quick=True)
    entry = comp.start_colour(
        layout,
        name,
        target["version"],
        target["fault"],
        python=state["python"],
        drain_s=drain_s,
        timeout=budget.bound(20.0),
    )
    state["colours"][name] = entry
    stack.save()
    reason = comp.colour_ready(entry, timeout=budget.bound(30.0))
    if reason:
        comp.stop_colour(entry, drain_s=drain_s, quick=True)
        state["colours"][name] = None
        stack.save()
        raise _Failed(
            f"{label(target)} on {name} failed its readiness checks ({reason}); the pool "
            "keeps serving",
            name,
        )
    comp.warm_up(entry, timeout=budget.bound(10.0))
    return entry


def _ensure_pool(stack: Stack, size: int, budget: _Budget, phases: dict[str, float]) -> None:
    """A pool of ``size`` instances of the live version (the live colour is instance 1)."""
    state = stack.state
    pool = list(state.get("pool") or [state["live"]])
    if len(pool) == size:
        state["pool"] = pool
        return
    if len(pool) > size:
        raise StackError(f"the pool has {len(pool)} instances, not {size}")
    clock = time.monotonic()
    live = state["colours"][state["live"]]
    base = {"version": live["version"], "fault": live["fault"]}
    for slot in range(len(pool) + 1, size + 1):
        name = _slot_names(slot)[0]
        _start_ready(stack, name, base, budget)
        pool.append(name)
    state["pool"] = pool
    stack.save()
    _route_pool(stack, budget)
    phases["pool_s"] = time.monotonic() - clock


def _replace(stack: Stack, slots: list[int], target: dict[str, Any], budget: _Budget) -> None:
    """Instances ``slots`` replaced by ``target`` together: new ones started and ready, one
    reload swaps them into the pool, then the old ones stop (nginx sends them nothing now)."""
    state = stack.state
    old: list[dict[str, Any]] = []
    swaps: list[tuple[int, str]] = []
    for slot in slots:
        name = state["pool"][slot - 1]
        entry = state["colours"].get(name)
        if entry and _serving(entry, target):
            continue
        first, second = _slot_names(slot)
        other = second if name == first else first
        _start_ready(stack, other, target, budget)
        swaps.append((slot, other))
        if entry:
            old.append(entry)
    if not swaps:
        return
    for slot, other in swaps:
        if slot == 1:
            state["live"] = other
        state["pool"][slot - 1] = other
    stack.save()
    _route_pool(stack, budget)
    for entry in old:
        comp.stop_colour(entry, drain_s=0.0, quick=True)
        state["colours"][entry["colour"]] = None
    stack.save()


def _rolling(
    stack: Stack,
    target: dict[str, Any],
    budget: _Budget,
    phases: dict[str, float],
    action: str,
) -> str:
    state = stack.state
    wanted = {"version": target["version"], "fault": target["fault"]}
    if action == "rollback":
        clock = time.monotonic()
        _replace(stack, list(range(1, len(state["pool"]) + 1)), wanted, budget)
        state["rolling"] = None
        stack.save()
        phases["replace_s"] = time.monotonic() - clock
        return ",".join(state["pool"])
    if state.get("canary"):
        _canary_out(stack, budget, phases)
    size = int(target.get("instances") or len(state.get("pool") or []) or POOL_SIZE)
    live = state["colours"][state["live"]]
    before = {"version": live["version"], "fault": live["fault"]}
    _ensure_pool(stack, size, budget, phases)
    rolling = state.get("rolling")
    if not rolling or rolling["to"] != wanted:
        entries = _pool_entries(state)
        # what the pool ran before this rolling deploy began: where a rollback goes
        if all(e["version"] == before["version"] for e in entries):
            back = before
        else:
            back = state.get("last_good") or before
        state["rolling"] = {"from": back, "to": wanted}
        stack.save()
    slots = [target["instance"]] if target.get("instance") else list(range(1, size + 1))
    for slot in slots:
        clock = time.monotonic()
        _replace(stack, [slot], wanted, budget)
        phases[f"instance{slot}_s"] = time.monotonic() - clock
    if all(_serving(e, wanted) for e in _pool_entries(state)):
        state["rolling"] = None
        _mark_good(state, wanted, action)
        stack.save()
    return ",".join(state["pool"])


def _bluegreen(
    stack: Stack,
    target: dict[str, Any],
    budget: _Budget,
    phases: dict[str, float],
    action: str,
) -> str:
    state, layout = stack.state, stack.layout
    live_colour = state["live"]
    live = state["colours"].get(live_colour)
    idle = COLOURS[1 - COLOURS.index(live_colour)]
    drain_s = float(state.get("drain_s", 1.0))

    clock = time.monotonic()
    leftover = state["colours"].get(idle)
    if leftover:
        comp.stop_colour(leftover, drain_s=drain_s, quick=True)
        state["colours"][idle] = None
        stack.save()
    entry = comp.start_colour(
        layout,
        idle,
        target["version"],
        target["fault"],
        python=state["python"],
        drain_s=drain_s,
        timeout=budget.bound(20.0),
    )
    state["colours"][idle] = entry
    stack.save()
    reason = comp.colour_ready(entry, timeout=budget.bound(30.0))
    phases["start_s"] = time.monotonic() - clock
    if reason:
        comp.stop_colour(entry, drain_s=drain_s, quick=True)
        state["colours"][idle] = None
        stack.save()
        raise _Failed(
            f"refused to switch: {label(target)} on {idle} failed its readiness checks "
            f"({reason}); {label(live)} on {live_colour} keeps serving",
            idle,
        )

    clock = time.monotonic()
    try:
        comp.reload_nginx(
            layout, state["nginx_bin"], state["nginx"], entry, timeout=budget.bound(15.0)
        )
    except StackError:
        if live:
            comp.reload_nginx(layout, state["nginx_bin"], state["nginx"], live, timeout=15.0)
        comp.stop_colour(entry, drain_s=drain_s)
        state["colours"][idle] = None
        stack.save()
        raise
    state["live"] = idle
    _mark_good(state, target, action)
    stack.save()
    phases["switch_s"] = time.monotonic() - clock

    clock = time.monotonic()
    comp.stop_colour(live, drain_s=drain_s)
    state["colours"][live_colour] = None
    stack.save()
    _drop_pool(stack, keep=idle)
    phases["drain_s"] = time.monotonic() - clock
    return idle


def _naive(stack: Stack, target: dict[str, Any], budget: _Budget, phases: dict[str, float]) -> str:
    state, layout = stack.state, stack.layout
    if state.get("canary"):
        # a canary's share (or a stale one's) would outlive the live colour's replacement
        _canary_out(stack, budget, phases)
    colour = str(state["live"])
    live = state["colours"].get(colour)
    port = live["port"] if live else None
    drain_s = float(state.get("drain_s", 1.0))
    if state.get("last_good") and state["last_good"] != target:
        state["rollback_to"] = state["last_good"]

    clock = time.monotonic()
    comp.stop_colour(live, drain_s=drain_s)
    state["colours"][colour] = None
    stack.save()
    phases["stop_s"] = time.monotonic() - clock

    clock = time.monotonic()
    entry = comp.start_colour(
        layout,
        colour,
        target["version"],
        target["fault"],
        python=state["python"],
        port=port,
        drain_s=drain_s,
        timeout=budget.bound(20.0),
    )
    state["colours"][colour] = entry
    stack.save()
    if entry["port"] != port:
        comp.write_upstream(layout, entry)
        comp.signal_reload(state["nginx"])
    reason = comp.colour_ready(entry, timeout=budget.bound(30.0))
    phases["start_s"] = time.monotonic() - clock
    if reason:
        raise _Failed(
            f"{label(target)} on {colour} failed its readiness checks ({reason}); "
            f"{label(live)} was already stopped, so the service is down or degraded: "
            "run rollback",
            colour,
        )
    state["last_good"] = dict(target)
    stack.save()
    return colour
