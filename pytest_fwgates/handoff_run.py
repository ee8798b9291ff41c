"""What a gate run does for handoffs: the package and the progress file, on the controller.

Called from two small hooks in ``plugin.py``: :func:`configure` checks the options (a
mistake is a usage error before any check runs) and removes the previous package, so that
a run that does not finish leaves no package behind; :func:`finish` writes the package and
updates the progress file after the verdict.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .model import EXIT_FAILED, EXIT_PASSED

if TYPE_CHECKING:
    from .run import GateRun

__all__ = ["configure", "finish"]

DEFAULT_PROGRESS = ".ai_context/framework_progress.md"


class _Settings:
    def __init__(self) -> None:
        self.started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.package: Any = None  # HandoffOptions
        self.progress: Path | None = None


settings_key = pytest.StashKey[_Settings]()


def _path(config: pytest.Config, option: str | None, ini: str) -> tuple[Path | None, bool]:
    """The path of an option or its ini value (relative to the invocation dir or rootdir)."""
    if option:
        path = Path(option)
        return (path if path.is_absolute() else config.invocation_params.dir / path), True
    value = str(config.getini(ini) or "").strip()
    if not value:
        return None, False
    path = Path(value)
    return (path if path.is_absolute() else config.rootpath / path), False


def configure(config: pytest.Config, run: GateRun) -> None:
    settings = _Settings()
    config.stash[settings_key] = settings
    option = config.option
    target, _ = _path(config, option.fwgates_handoff, "handoff_package")
    if target is not None:
        from .handoff import HandoffError, HandoffOptions, check_target, parse_deliverable
        from .integrity import IntegrityError, load_private_key

        key, _ = _path(config, option.fwgates_sign_key, "handoff_sign_key")
        deliverables: dict[str, Path] = {}
        try:
            check_target(target)
            for text in config.getini("handoff_deliverables"):
                name, path = parse_deliverable(text, config.rootpath)
                deliverables[name] = path
            for text in option.fwgates_deliverables:
                name, path = parse_deliverable(text, config.invocation_params.dir)
                deliverables[name] = path
            if key is not None:
                load_private_key(key)  # a wrong key fails now, not after the run
        except HandoffError as exc:
            raise pytest.UsageError(f"--handoff-package: {exc}") from None
        except IntegrityError as exc:
            raise pytest.UsageError(f"--handoff-sign-key: {exc}") from None
        archive = bool(option.fwgates_handoff_archive or config.getini("handoff_archive"))
        settings.package = HandoffOptions(target, archive, key, deliverables)
    elif option.fwgates_sign_key or option.fwgates_handoff_archive or option.fwgates_deliverables:
        raise pytest.UsageError(
            "--handoff-sign-key, --handoff-archive and --handoff-deliverable need --handoff-package"
        )
    progress, given = _path(config, option.fwgates_progress, "gate_progress")
    if progress is None:
        default = config.rootpath / DEFAULT_PROGRESS
        progress = default if default.is_file() else None
    elif given and progress.is_dir():
        raise pytest.UsageError(f"--gate-progress {option.fwgates_progress}: is a folder")
    settings.progress = progress
    if settings.package is not None and not run.is_worker:
        from .handoff import HandoffError, discard_previous

        try:
            discard_previous(settings.package.target)
        except (HandoffError, OSError) as exc:
            raise pytest.UsageError(f"--handoff-package: {exc}") from None


def _say(config: pytest.Config, text: str, **markup: bool) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.line(text, **markup)


def _hosts(config: pytest.Config) -> list[str]:
    hosts = getattr(config.option, "hosts", None)
    return [h for h in str(hosts).split(",") if h] if hosts else []


def finish(session: pytest.Session, run: GateRun) -> None:
    config = session.config
    settings = config.stash.get(settings_key, None)
    if settings is None or run.is_worker or config.option.collectonly or not run.decisions:
        return
    finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    package_path: str | None = None
    failed = False
    if settings.package is not None:
        from .environment import collect_environment, run_ids
        from .handoff import HandoffError, waiver_records, write_package
        from .integrity import IntegrityError

        gates = run.gates()
        targets = [
            [spec.target, spec.options, spec.env] for gate in gates for spec in gate.checks()
        ]
        redactor = run.loader.redactor
        run_info = dict(run.run_info)
        run_info.setdefault("finished", finished)
        environment = collect_environment(
            rootdir=config.rootpath,
            hosts=_hosts(config),
            targets=targets,
            started=settings.started,
            finished=finished,
            redactor=redactor,
            argv=["pytest", *config.invocation_params.args],
        )
        reports: dict[str, str] = {}
        for name, path in (
            ("junit.xml", run.junit_path),
            ("summary.json", run.junit_path.with_name("summary.json")),
        ):
            if path in run.written and path.is_file():
                reports[name] = path.read_text(encoding="utf-8", errors="surrogateescape")
        try:
            written = write_package(
                settings.package,
                run.decisions,
                run_info=run_info,
                environment=environment,
                redactor=redactor,
                rootdir=config.rootpath,
                waivers=waiver_records(run.waivers, run.decisions),
                reports=reports,
                run_ids=run_ids(os.environ),
            )
        except (HandoffError, IntegrityError, OSError) as exc:
            failed = True
            _say(config, f"handoff package not written: {redactor.text(str(exc))}", red=True)
        else:
            package_path = str(written.path)
            run.written.append(written.path)
            if written.archive is not None:
                run.written.append(written.archive)
            handoff = any(d.gate.name == "operations-handoff" for d in run.decisions)
            given = settings.package.deliverables
            lost = [name for name in written.missing_deliverables if name in given]
            if lost:
                # a deliverable named on the command line that is not there: the handoff the
                # user asked for cannot be complete, whatever the gates decided
                failed = True
                _say(
                    config,
                    "handoff package: deliverables given but not found or empty: "
                    + ", ".join(f"{name}={given[name]}" for name in lost),
                    red=True,
                )
            elif written.missing_deliverables and (handoff or given):
                _say(
                    config,
                    "handoff package: deliverables missing: "
                    + ", ".join(written.missing_deliverables),
                    yellow=True,
                )
    if settings.progress is not None:
        from .progress import ProgressError, update_progress

        try:
            update_progress(settings.progress, run.decisions, time=finished, package=package_path)
        except (ProgressError, OSError) as exc:
            failed = True
            _say(config, f"progress file not updated: {exc}", red=True)
        else:
            run.written.append(settings.progress)
    if failed and session.exitstatus == EXIT_PASSED:
        session.exitstatus = EXIT_FAILED
