"""pytest-fwgates: the pytest hooks. The work lives in the modules these call.

Every pytest run imports this module, gate or not, so it imports only what options and
markers need. The engine (loader, schema, YAML, reports, checks) is imported inside the
hooks, and only when ``--gate`` or ``--gate-list`` is given; fixtures import it in their
bodies. ``tests/test_lazy_import.py`` keeps it that way.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import hookspecs
from .fixtures import gate_check, gate_record
from .http_probe import http_probe, mask_report
from .keys import (
    DEFAULT_CONNECT_TIMEOUT,
    finished_key,
    measured_by_key,
    measures_key,
    record_problems_key,
    recorder_key,
    result_key,
    run_key,
    support_key,
)
from .load_fixture import load_test
from .monitor import deploy_monitor

if TYPE_CHECKING:
    from .checks import CheckRegistry
    from .collect import GateFile
    from .hosts import HostPool
    from .loader import GateLoader
    from .redact import Redactor
    from .run import GateRun
    from .waivers import WaiverSet

__all__ = ["deploy_monitor", "gate_check", "gate_record", "http_probe", "load_test"]

DEFAULT_JUNIT = "reports/gates.xml"
#: the gate data every phase report of an item carries (made once per item)
_phase_key: pytest.StashKey[dict[str, Any]] = pytest.StashKey()
#: what this process made of an item's reports in its attempts so far (outcomes.Attempts)
_attempts_key: pytest.StashKey[Any] = pytest.StashKey()
#: the verdict's judgment (an Outcome) of a marked test's values at its call's report
_judged_key: pytest.StashKey[Any] = pytest.StashKey()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    _add_options(parser)
    config = pluginmanager.get_plugin("pytestconfig")
    if isinstance(config, pytest.Config) and not config.args:
        _remove_earlier_before_parsing(config)


def _add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("fwgates", "quality gates (pytest-fwgates)")
    group.addoption(
        "--gate",
        action="append",
        default=[],
        metavar="NAME",
        dest="fwgates_gates",
        help="run the checks of gate NAME and decide its verdict (repeatable); "
        "everything else is deselected",
    )
    group.addoption(
        "--gate-list",
        action="store_true",
        dest="fwgates_list",
        help="list the known gates and their criteria, then exit",
    )
    group.addoption(
        "--gate-dir",
        action="append",
        default=[],
        metavar="DIR",
        dest="fwgates_dirs",
        help="folder of gate files (repeatable; default: ini gate_dirs, else gates/ under rootdir)",
    )
    group.addoption(
        "--gate-var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        dest="fwgates_vars",
        help="set the gate file variable NAME (repeatable; wins over vars: in files)",
    )
    group.addoption(
        "--gate-waivers",
        metavar="FILE",
        dest="fwgates_waivers",
        help="waivers file: signed-off exceptions with an expiry date",
    )
    group.addoption(
        "--gate-junit",
        metavar="PATH",
        dest="fwgates_junit",
        help=f"write the gate JUnit XML here, summary.json beside it (default: {DEFAULT_JUNIT})",
    )
    group.addoption(
        "--handoff-package",
        metavar="DIR",
        dest="fwgates_handoff",
        help="write the handoff package (reports, evidence, environment, signed manifest) "
        "to DIR after the run; DIR holds a whole package or nothing",
    )
    group.addoption(
        "--handoff-archive",
        action="store_true",
        dest="fwgates_handoff_archive",
        help="also write the package as DIR.tar.gz",
    )
    group.addoption(
        "--handoff-sign-key",
        metavar="PATH",
        dest="fwgates_sign_key",
        help="Ed25519 private key (PEM) that signs the package manifest (fwgates keygen)",
    )
    group.addoption(
        "--handoff-deliverable",
        action="append",
        default=[],
        metavar="NAME=PATH",
        dest="fwgates_deliverables",
        help="put a handoff deliverable (file or folder) into the package (repeatable); "
        "NAME is one of the seven of operations-handoff",
    )
    group.addoption(
        "--gate-progress",
        metavar="FILE",
        dest="fwgates_progress",
        help="update the marked block of this progress file with phase statuses and verdicts "
        "(default: .ai_context/framework_progress.md when it exists)",
    )
    group.addoption(
        "--gate-baseline-dir",
        metavar="DIR",
        dest="fwgates_baseline_dir",
        help="folder of stored baseline runs for relative thresholds "
        "(default: ini gate_baseline_dir, else .fwgates/baselines under rootdir)",
    )
    group.addoption(
        "--gate-baseline-save",
        action="store_true",
        dest="fwgates_baseline_save",
        help="store this run's measured figures as the next baseline run of each check",
    )
    group.addoption(
        "--gate-connect-timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        dest="fwgates_connect_timeout",
        help="seconds a host of --hosts or hosts: may take to connect before its checks "
        f"fail (default: ini gate_connect_timeout, else {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    parser.addini("gate_dirs", "folders of gate files", type="paths", default=[])
    parser.addini(
        "gate_connect_timeout",
        "seconds a host may take to connect",
        default=f"{DEFAULT_CONNECT_TIMEOUT:g}",
    )
    parser.addini("gate_junit", "path of the gate JUnit XML", default=DEFAULT_JUNIT)
    parser.addini("gate_waivers", "waivers file used when --gate-waivers is not given", default="")
    parser.addini("gate_baseline_dir", "folder of stored baseline runs", default="")
    parser.addini("gate_vars", "gate file variables, one NAME=VALUE a line", type="linelist")
    parser.addini(
        "gate_prometheus_url", "Prometheus URL of prometheus checks without server:", default=""
    )
    parser.addini("gate_base_url", "base URL of http_probe's relative paths", default="")
    parser.addini(
        "gate_confidence",
        "confidence level thresholds are judged at (e.g. 95%; lowering it loosens the catalog)",
        default="95%",
    )
    parser.addini("handoff_package", "folder of the handoff package", default="")
    parser.addini("handoff_archive", "also write the package as .tar.gz", type="bool")
    parser.addini("handoff_sign_key", "Ed25519 private key that signs the package", default="")
    parser.addini(
        "handoff_deliverables", "handoff deliverables, one NAME=PATH a line", type="linelist"
    )
    parser.addini("gate_progress", "progress file whose fwgates block is updated", default="")


class _EarlyArgs(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise ValueError(message)


def _remove_earlier_before_parsing(config: pytest.Config) -> None:
    """Remove an earlier run's reports and package as soon as the plugin is loaded: before
    pytest parses the options of all plugins, where a usage error in any of them (an option
    without its value, a bad number) stops the run before any later hook.

    The arguments pytest parses are read the way it composes them (``PYTEST_ADDOPTS``, the
    ini's ``addopts``, the command line); only ``--gate``, ``--gate-junit`` and
    ``--handoff-package`` are looked at, and anything unreadable leaves the removal to
    :func:`pytest_load_initial_conftests`."""
    import os
    import shlex

    try:
        args = [
            *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
            *config.getini("addopts"),
            *map(str, config.invocation_params.args),
        ]
        early = _EarlyArgs(add_help=False, allow_abbrev=False)
        early.add_argument("--gate", action="append", default=[], dest="fwgates_gates")
        early.add_argument("--gate-junit", dest="fwgates_junit")
        early.add_argument("--handoff-package", dest="fwgates_handoff")
        known, _ = early.parse_known_args(args)
        if known.fwgates_gates:
            config.rootpath  # noqa: B018 (set once pytest has found its ini: not before)
    except (ValueError, TypeError, AttributeError):
        return
    _remove_earlier(config, known)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:  # (nan too)
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most 3600 seconds, got {text!r}"
        )
    return value


def _host_pool(config: pytest.Config) -> HostPool:
    from .hosts import HostOptions, HostPool

    timeout = config.option.fwgates_connect_timeout
    if timeout is None:
        text = config.getini("gate_connect_timeout")
        try:
            timeout = _positive_seconds(str(text))
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"ini gate_connect_timeout: {exc}") from None
    return HostPool(HostOptions.from_option(config.option, timeout))


def _gate_dirs(config: pytest.Config) -> list[Path]:
    given = [Path(d) for d in config.option.fwgates_dirs]
    if given:
        return [d if d.is_absolute() else config.invocation_params.dir / d for d in given]
    from_ini: list[Path] = config.getini("gate_dirs")
    return from_ini or [config.rootpath / "gates"]


def _loader(config: pytest.Config, registry: CheckRegistry) -> GateLoader:
    from .loader import GateLoader
    from .variables import VariableError, parse_assignment

    variables: dict[str, str] = {}
    for text in [*config.getini("gate_vars"), *config.option.fwgates_vars]:
        try:
            name, value = parse_assignment(text)
        except VariableError as exc:
            raise pytest.UsageError(f"--gate-var: {exc}") from None
        variables[name] = value
    for folder in config.option.fwgates_dirs:
        if not (config.invocation_params.dir / folder).is_dir():
            raise pytest.UsageError(f"--gate-dir {folder}: no such folder")
    return GateLoader(
        _gate_dirs(config), registry=registry, cli_vars=variables, host_pool=_host_pool(config)
    )


def _waivers(config: pytest.Config) -> WaiverSet:
    from .waivers import WaiverSet, load_waivers
    from .yamlsrc import SourceError

    given = config.option.fwgates_waivers or config.getini("gate_waivers")
    if not given:
        return WaiverSet.empty()
    path = Path(given)
    base = config.invocation_params.dir if config.option.fwgates_waivers else config.rootpath
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise pytest.UsageError(f"--gate-waivers {given}: no such file")
    try:
        return load_waivers(path)
    except SourceError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.debug:
        from .debuglog import mask_debug_log

        def current() -> Redactor | None:
            run = config.stash.get(run_key, None)
            return run.loader.redactor if run is not None else None

        mask_debug_log(config, current)
    if not config.option.fwgates_list:
        return None
    from .checks import CheckRegistry
    from .listing import format_gate_list

    registry = CheckRegistry.from_hook(config.hook)
    text, ok = format_gate_list(_loader(config, registry))
    sys.stdout.write(text)
    return 0 if ok else 1


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gate(name, criterion): the test is evidence for criterion of gate name (pytest-fwgates)",
    )
    names: list[str] = config.option.fwgates_gates
    if not names:
        if config.option.fwgates_handoff or config.option.fwgates_progress:
            raise pytest.UsageError("--handoff-package and --gate-progress need --gate NAME")
        return
    _check_paths(config)
    try:
        _configure_run(config, names)
    except OSError as exc:
        # a path given that the system refuses (too long, a loop of links, no access): the
        # run cannot start, and says so in one line
        where = f"{exc.filename}: " if exc.filename else ""
        raise pytest.UsageError(f"{where}{exc.strerror or exc}") from None


#: options that name a path, by their ``config.option`` name
_PATH_OPTIONS = {
    "--junitxml": "xmlpath",
    "--gate-junit": "fwgates_junit",
    "--gate-waivers": "fwgates_waivers",
    "--handoff-package": "fwgates_handoff",
    "--handoff-sign-key": "fwgates_sign_key",
    "--gate-progress": "fwgates_progress",
    "--gate-baseline-dir": "fwgates_baseline_dir",
    "--gate-dir": "fwgates_dirs",
}


def _check_paths(config: pytest.Config) -> None:
    """A usage error for a path option the system cannot look up at all (a name too long,
    a loop of symbolic links): found before the run, not in a traceback after it."""
    import errno
    import os

    for option, dest in _PATH_OPTIONS.items():
        values = getattr(config.option, dest, None)
        for value in values if isinstance(values, list) else [values]:
            if not value or not isinstance(value, str):
                continue
            try:
                os.lstat(value)
            except OSError as exc:
                # pytest's own JUnit writer makes the folder at the end and raises when a
                # part of it is a file: said here, before the run
                refused = (errno.ENAMETOOLONG, errno.ELOOP) + (
                    (errno.ENOTDIR,) if option == "--junitxml" else ()
                )
                if exc.errno in refused:
                    shown = value if len(value) <= 80 else value[:77] + "..."
                    raise pytest.UsageError(f"{option} {shown}: {exc.strerror}") from None


def _configure_run(config: pytest.Config, names: list[str]) -> None:
    from .baselines_run import check_baseline_dir
    from .checks import CheckRegistry
    from .run import EndGuard, GateRun, prepare_reports
    from .variables import VariableError, parse_assignment
    from .watchdog import ensure_watchdog

    # first, so that no usage error below leaves an earlier run's reports in place
    junit_path = prepare_reports(config)
    check_baseline_dir(config)
    # before anything is started: all the run starts carries its mark
    ensure_watchdog()
    registry = CheckRegistry.from_hook(config.hook)
    loader = _loader(config, registry)
    unknown = [name for name in names if name not in loader.known()]
    if unknown:
        raise pytest.UsageError(f"--gate: {loader.unknown_gate_message(unknown[0])}")
    run = GateRun(
        config, list(dict.fromkeys(names)), loader, registry, _waivers(config), junit_path
    )
    try:
        loader.check_variables([parse_assignment(t)[0] for t in config.option.fwgates_vars])
    except VariableError as exc:
        run.close()
        raise pytest.UsageError(str(exc)) from None
    config.stash[run_key] = run
    config.pluginmanager.register(run, "fwgates-run")
    # cleanups run last-registered first: a conftest's own (registered later) comes before it
    config.add_cleanup(run.hold_exit_status)
    config.pluginmanager.register(EndGuard(run), "fwgates-end")
    from .handoff_run import configure as configure_handoff

    configure_handoff(config, run)
    from .baselines_run import BaselineRecorder

    recorder = BaselineRecorder(config, run)
    config.stash[recorder_key] = recorder
    config.pluginmanager.register(recorder, "fwgates-baselines")
    run.start()
    # gate files need no path argument: they join whatever pytest collects
    present = {str(Path(a).resolve()) for a in config.args}
    config.args.extend(str(p) for p in _collect_args(run, config) if str(p) not in present)


def _collect_args(run: GateRun, config: pytest.Config) -> list[Path]:
    """The user's gate files to collect; the catalog's own files join the session's
    collectors in ``GateRun.pytest_make_collect_report`` (named by the gate's file)."""
    catalog = run.loader.catalog.resolve()
    args: list[Path] = []
    for path in (p.resolve() for p in run.gate_files()):
        if path.parent != catalog and path not in args:
            args.append(path)
    return args


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Remove an earlier run's reports and handoff package before anything (a bad option, a
    conftest that fails to import, ``--co``, ``--help``) can stop this one.

    (An xdist worker does it too, harmlessly: the controller writes reports and the package
    only after every worker has finished.)
    """
    _remove_earlier(early_config, early_config.known_args_namespace)


def _remove_earlier(early_config: pytest.Config, known: argparse.Namespace) -> None:
    if not getattr(known, "fwgates_gates", None):
        return
    from .report.paths import remove_stale, remove_stale_package, resolve_junit, summary_path

    junit = resolve_junit(
        getattr(known, "fwgates_junit", None),
        str(early_config.getini("gate_junit")),
        early_config.invocation_params.dir,
        early_config.rootpath,
    )
    remove_stale([junit, summary_path(junit)])
    given = getattr(known, "fwgates_handoff", None)
    ini = str(early_config.getini("handoff_package") or "").strip()
    if given or ini:
        target = Path(given or ini)
        if not target.is_absolute():
            base = early_config.invocation_params.dir if given else early_config.rootpath
            target = base / target
        remove_stale_package(target)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(run_key, None)
    if run is not None:
        run.close()
        config.pluginmanager.unregister(run)
        guard = config.pluginmanager.get_plugin("fwgates-end")
        if guard is not None:
            config.pluginmanager.unregister(guard)
        del config.stash[run_key]
    recorder = config.stash.get(recorder_key, None)
    if recorder is not None:
        config.pluginmanager.unregister(recorder)
        del config.stash[recorder_key]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> GateFile | None:
    run = parent.config.stash.get(run_key, None)
    if run is None or file_path.suffix not in (".yaml", ".yml"):
        return None
    if file_path.resolve() not in run.gate_file_set:
        return None
    from .collect import GateFile

    if file_path.resolve().parent == run.loader.catalog.resolve():
        return None  # the session collects the catalog's files itself (GateRun)
    node: GateFile = GateFile.from_parent(parent, path=file_path)
    node.run = run
    return node


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    run = config.stash.get(run_key, None)
    if run is None:
        return
    # (wrong gate markers were already made collection errors, in GateRun)
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (keep if run.memberships(item) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """After the verdict (GateRun's own hook runs first): baselines saved, then the handoff
    package (which holds them), then the progress file."""
    run = session.config.stash.get(run_key, None)
    if run is not None and not run.is_worker:
        recorder = session.config.stash.get(recorder_key, None)
        if recorder is not None:
            problem = recorder.save_runs()
            if problem is not None:
                from .model import EXIT_FAILED, EXIT_PASSED

                reporter = session.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.ensure_newline()
                    reporter.line("")
                    reporter.line(run.loader.redactor.text(problem), red=True)
                if session.exitstatus == EXIT_PASSED:
                    session.exitstatus = EXIT_FAILED
        from .handoff_run import finish

        finish(session, run)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # tryfirst: the outermost wrapper, so it sees the report as the other plugins left it
    report = yield
    mask_report(item, report)
    run = item.config.stash.get(run_key, None)
    if run is None:
        return report
    # what every phase's report carries, made once per item: pytest keeps every report to
    # the end of the session, and a collection of its oldest objects walks all of them
    shared = item.stash.get(_phase_key, None)
    if shared is None:
        members = run.memberships(item)
        shared = {"members": [list(m) for m in members]} if members else {}
        if members:
            from .collect import GateItem

            if isinstance(item, GateItem):
                shared["check"] = True  # must report a CheckResult to pass
        item.stash[_phase_key] = shared
    if not shared:
        return report
    data = shared
    result_json = None
    # a value recorded once the item's last report is made comes too late (a rerun of the
    # item starts recording again)
    item.stash[finished_key] = call.when == "teardown"
    # the result travels in the report (to the xdist controller too), on the call's report or
    # on the setup's when that ended the item (a check that could not measure); the item
    # lets go of it
    result = item.stash.get(result_key, None)
    if result is not None and (call.when != "setup" or not report.passed):
        data = dict(shared)
        result_json = data["result"] = result.to_json()
        del item.stash[result_key]
    # recorded values go with every phase, so one recorded in setup or teardown counts too
    measures = item.stash.get(measures_key, None)
    problems = item.stash.get(record_problems_key, None)
    if measures or problems:
        data = dict(data)
        if measures:
            data["measured"] = dict(measures)
            by: dict[str, str] = item.stash.get(measured_by_key, {})
            data["measured_by"] = dict(by)
            supports = item.stash.get(support_key, None)
            if supports:
                data["support"] = {k: dict(v) for k, v in supports.items()}
        if problems:
            data["problems"] = list(problems)
    from .outcomes import Attempts, seen_outcome, short_message

    # every report this process makes of the item counts, logged or not (reruns, a plugin
    # that logs only the last attempt, a report changed after it was made)
    outcome = seen_outcome(report)
    attempts = item.stash.get(_attempts_key, None)
    if attempts is None:
        attempts = item.stash[_attempts_key] = Attempts()
    message = short_message(report, run.loader.redactor) if outcome != "passed" else None
    attempts.add(call.when, outcome, message, result_json)
    if attempts.telling():
        data = {**data, "attempts": attempts.to_json()}
    judged = None if shared.get("check") else _judge(item, run, report, call.when)
    if judged is not None:
        # the verdict judges the recorded values itself: for the gate this report passed
        data = {**data, "judged": True, "inconclusive": judged == "inconclusive"}
        message = short_message(report, run.loader.redactor)
    elif result_json is not None and report.failed and result_json["outcome"] == "inconclusive":
        data = {**data, "inconclusive": True}
    if (
        report.failed
        and (call.when != "teardown" or judged is not None)
        and not item.config.option.runxfail
    ):
        # pytest's view agrees with the gate's: a failure that does not fail the gate (an
        # advisory criterion, a waiver) is an expected failure, as an xfail mark makes it
        why = run.not_blocking(item)
        if why:
            report.outcome = "skipped"
            report.wasxfail = f"does not fail the gate ({why}): {message}"
    report.fwgates = data  # type: ignore[attr-defined]  # travels to the xdist controller
    return report


def _judge(item: pytest.Item, run: GateRun, report: pytest.TestReport, when: str) -> str | None:
    """pytest's outcome of a marked test agrees with the verdict's judgment of the values it
    recorded (``GateRun.judge_recorded``, the verdict's own rules): a test that passed with
    values that fail their criterion fails, with values the evidence does not prove is an
    INCONCLUSIVE failure, with values that cannot be judged (a relative standard) is a skip,
    as a YAML check with such values is. Judged at the call, and again at the teardown for
    values recorded after it. Returns the outcome it gave the report, or None."""
    from .model import Outcome
    from .run import JUDGED_RANK

    if when not in ("call", "teardown") or not report.passed or hasattr(report, "wasxfail"):
        return None
    before = item.stash.get(_judged_key, None)
    if when == "teardown" and before is None:
        return None  # the call did not pass: pytest says so already
    outcome, why = run.judge_recorded(item)
    if when == "call":
        item.stash[_judged_key] = outcome
    elif before is not None and JUDGED_RANK[outcome] <= JUDGED_RANK[before]:
        return None  # the call's report said it
    if outcome is Outcome.PASSED:
        return None
    if outcome is Outcome.SKIPPED:
        path, line, _ = report.location
        report.outcome = "skipped"
        report.longrepr = (str(path), (line or 0) + 1, f"Skipped: NOT_EVALUATED: {why}")
        return "skipped"
    word = "INCONCLUSIVE" if outcome is Outcome.INCONCLUSIVE else "FAILED"
    report.outcome = "failed"
    report.longrepr = f"{word}: {why}"
    return word.lower()


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """An item whose evidence its criterion judged INCONCLUSIVE is a category of its own in
    pytest's terminal (``1 inconclusive``, a yellow line); it fails in pytest's JUnit."""
    data = getattr(report, "fwgates", None)
    if (
        isinstance(data, dict)
        and data.get("inconclusive")
        and report.failed
        and not hasattr(report, "wasxfail")
    ):
        return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
    return None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """The item's attempts are forgotten once its whole protocol (reruns included) is over."""
    try:
        return (yield)
    finally:
        for key in (_attempts_key, _judged_key):
            if key in item.stash:
                del item.stash[key]
