"""Which check types own which figures: the evidence only they can give.

A figure is *owned* when the measurement behind it is only what a check type does: the
expectations of a host (``mismatches``), Prometheus's targets and rules (``targets_up``), a
certificate (``days_valid``), a scanner's report (``findings_blocking``), a Locust run
(``p95_ms``), a timed deploy (``duration_s``, ``lost_writes``). Two rules follow:

- a Python test cannot record an owned figure with ``gate_record`` (the check type's fixture
  or ``gate_check`` measures it instead, and records it as that type);
- a catalog standard on an owned figure is measured only by a check of an owning type, so
  ``command: "true"`` (which measures ``duration_s``) cannot carry deployment-time.

Every other figure is free: a test records it and it is held to its standard like any other
(``exit_status``, ``latency_ms``, ``value``, ``records`` and any name of a team's own).
Plugin check types add theirs with the class attribute ``Check.owns``.

Kept apart from the check modules so that the table is known without importing them. The
names of the figures it is made of (the operations figures, a Locust run's, a prober's, a load's
in each phase, a prometheus check's) are declared here once; the modules that measure them
take them from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "BUILTIN_OWNS",
    "LOAD_PHASES",
    "LOCUST_FIGURES",
    "OPERATIONS_FIGURES",
    "PROBE_FIGURES",
    "PROMETHEUS_FIGURES",
    "UNDER_LOAD_FIGURES",
    "figure_owners",
    "owned_message",
]

#: operations figures a metric (records) or prometheus check reports (``as:``)
OPERATIONS_FIGURES: tuple[str, ...] = (
    "availability_pct",
    "error_pct",
    "error_ratio",
    "mttr_s",
    "mttd_s",
    "accuracy_pct",
    "precision_pct",
    "recall_pct",
    "reduction_pct",
    "cost_reduction_pct",
    "prevented_pct",
    "auto_response_pct",
    "forecast_error_pct",
)
#: what a Locust run measures, in total and per endpoint
LOCUST_FIGURES: tuple[str, ...] = (
    "requests",
    "failures",
    "failure_ratio",
    "rps",
    "avg_ms",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
)
#: what a prometheus check measures of a query's series, targets, rules and alerts
PROMETHEUS_FIGURES: tuple[str, ...] = (
    "series",
    "targets_up",
    "targets_down",
    "targets_total",
    "rules_loaded",
    "rules_missing",
    "alerts_firing",
    "alerts_pending",
)

#: what the prober of a deploy, rollback or drill measures of the service's answers
PROBE_FIGURES: tuple[str, ...] = (
    "downtime_ms",
    "longest_outage_ms",
    "outages",
    "failed_probes",
    "availability_pct",
)
#: the phases of a deploy under load, and what the load measures in each
LOAD_PHASES: tuple[str, ...] = ("before", "during", "after")
UNDER_LOAD_FIGURES: tuple[str, ...] = tuple(
    f"{stem}_{phase}"
    for stem in ("load_requests", "load_failures", "p95_ms")
    for phase in LOAD_PHASES
)

_HOST = frozenset({"mismatches"})
_OPERATIONS = frozenset(OPERATIONS_FIGURES)
_PROBES = frozenset(PROBE_FIGURES)
_UNDER_LOAD = frozenset(UNDER_LOAD_FIGURES)

#: built-in type -> the figures it owns
BUILTIN_OWNS: dict[str, frozenset[str]] = {
    "file": _HOST | {"size"},
    "service": _HOST,
    "package": _HOST,
    "socket": _HOST,
    "process": _HOST | {"count"},
    "user": _HOST,
    "group": _HOST,
    "sysctl": _HOST,
    "mount": _HOST,
    "listening": _HOST | {"unexpected"},
    "sshd": _HOST,
    "login_users": _HOST | {"unexpected"},
    "sudo_members": _HOST,
    "private_keys": _HOST | {"readable_keys"},
    "audit_trail": _HOST | {"entries", "last_entry_age_s"},
    "prometheus": _OPERATIONS | set(PROMETHEUS_FIGURES),
    "metric": _OPERATIONS | {"incidents", "share_pct"},
    "availability": frozenset({"availability_pct", "errors", "probes"})
    | {"p50_ms", "p95_ms", "p99_ms", "max_ms"},
    "http": frozenset({"http_status"}),
    "tls": frozenset({"days_valid"}),
    "scan": frozenset(
        {"findings", "findings_blocking", "unaudited", "unknown", "scanned"}
        | {"critical", "high", "medium", "low"}
    ),
    "junit": frozenset(
        {"tests", "failures", "errors", "skipped", "passed", "pass_ratio", "files", "flaky"}
    ),
    "handoff": frozenset({"missing_deliverables", "age_s", "files"}),
    "load": frozenset(LOCUST_FIGURES),
    "deploy": _PROBES
    | _UNDER_LOAD
    | {
        "duration_s",
        "lost_writes",
        "writes_acknowledged",
        "success_ratio",
        "p95_latency_ms",
        "version_changed",
    },
    "rollback": _PROBES | {"recovery_s", "trigger_s"},
    "drill": frozenset({"mttd_s", "mttr_s", "mttd_probe_s"}) | (_PROBES - {"outages"}),
}


def figure_owners(by_type: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """figure -> the types that own it, from type -> owned figures."""
    owners: dict[str, set[str]] = {}
    for type_name, figures in by_type.items():
        for figure in figures:
            owners.setdefault(figure, set()).add(type_name)
    return {figure: frozenset(types) for figure, types in owners.items()}


#: the built-in table turned around (figure -> owning types)
BUILTIN_OWNERS: dict[str, frozenset[str]] = figure_owners(BUILTIN_OWNS)


def owned_message(key: str, owners: Iterable[str]) -> str:
    """Why ``gate_record(key, ...)`` is refused."""
    types = ", ".join(sorted(owners))
    return (
        f"gate_record({key!r}, ...): {key} is evidence only a check measures ({types}); "
        f"run the check (a YAML check, gate_check({sorted(owners)[0]!r}, ...) or its fixture) "
        "instead, or record a figure of your own name"
    )
