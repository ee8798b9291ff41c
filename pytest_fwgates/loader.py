"""Gate files: found in the user's gate folders and the catalog, validated, merged, resolved.

A user file named like a catalog gate extends it: it adds checks to the catalog's criteria,
may add criteria (as a mapping with a title), may tighten or visibly override a standard
threshold, and may include other gates. Every mistake is a :class:`SourceError` that names
the file and line.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .bounds import parse_confidence
from .checks import Check, CheckRegistry
from .fsutil import read_regular
from .hosts import LOCAL, HostError, HostPool, spec_password, split_hosts
from .ids import default_id, id_problem, readable
from .model import CheckSpec, Criterion, Gate, Source
from .redact import Redactor, secret_name
from .schema import check_validator, gate_validator, validate, validate_all
from .thresholds import Threshold, ThresholdError, parse, parse_duration
from .variables import VariableError, interpolate, interpolate_shell
from .yamlsrc import (
    LineDict,
    LineList,
    SourceError,
    SourceErrors,
    leaves,
    line_of,
    load_yaml,
)

__all__ = ["GateLoader", "SourceError", "catalog_dir"]

_SUFFIXES = (".yaml", ".yml")
# a reference to a gate file variable (not ${env:...}, not the literal $${)
_VAR_REFERENCE = re.compile(r"(?<!\$)\$\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}")
# the top-level 'gate:' line, read without parsing the file
_GATE_LINE = re.compile(r"""^gate:[ \t]*(["']?)([a-z0-9][a-z0-9-]*)\1[ \t]*(?:#.*)?$""", re.M)


def catalog_dir() -> Path:
    """The catalog shipped with the package (or the checkout's ``gates/``)."""
    packaged = Path(str(resources.files("pytest_fwgates") / "_catalog"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "gates"


def _gate_files(folder: Path, clashes: dict[str, SourceError] | None = None) -> dict[str, Path]:
    """Gate files of ``folder`` by gate name; ``a.yaml`` beside ``a.yml`` goes to ``clashes``."""
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in _SUFFIXES and path.is_file() and not path.name.startswith("."):
            if path.stem in found and clashes is not None:
                message = f"gate {path.stem} is also defined by {found[path.stem].name}"
                clashes[path.stem] = SourceError(path, None, message)
            found.setdefault(path.stem, path)
    return found


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


class GateLoader:
    """Finds, loads and caches gates by name."""

    def __init__(
        self,
        user_dirs: Sequence[Path],
        registry: CheckRegistry | None = None,
        cli_vars: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        catalog: Path | None = None,
        host_pool: HostPool | None = None,
    ) -> None:
        self.registry = registry or CheckRegistry()
        #: the hosts of the run: host checks fan out over them (one spec per host)
        self.host_pool = host_pool or HostPool()
        #: ``hosts:`` of the gate file being applied (host specs, variables expanded)
        self._file_hosts: list[str] = []
        self.cli_vars = dict(cli_vars or {})
        self.environ = _EnvReads(os.environ if environ is None else environ)
        self.redactor = Redactor.from_environ(self.environ)
        self.redactor.add(v for k, v in self.cli_vars.items() if secret_name(k))
        self.redactor.add_credentials(self.cli_vars.values())
        self.catalog = catalog_dir() if catalog is None else catalog
        self._catalog_files = _gate_files(self.catalog)
        self._clashes: dict[str, SourceError] = {}
        self._user_files: dict[str, list[Path]] = {}
        catalog_resolved = {p.resolve() for p in self._catalog_files.values()}
        for folder in user_dirs:
            for name, path in _gate_files(folder, self._clashes).items():
                if path.resolve() in catalog_resolved:
                    continue
                files = self._user_files.setdefault(name, [])
                if path.resolve() not in {p.resolve() for p in files}:
                    files.append(path)
        self._cache: dict[str, Gate] = {}
        #: gates that failed to load: the error is given again, not found again
        self._failed: dict[str, SourceError] = {}
        self._loading: list[str] = []
        #: check ids of each criterion: (gate, criterion) -> id -> spec
        self._ids: dict[tuple[str, str], dict[str, CheckSpec]] = {}
        #: variable names the loaded files declare or refer to
        self._var_names: set[str] = set()
        self._misnamed_files: dict[Path, str] | None = None
        #: id of a check spec -> threshold keys its own 'expect' sets (they beat the criterion's)
        self._own_thresholds: dict[int, frozenset[str]] = {}

    # -- discovery -------------------------------------------------------------------------
    def known(self) -> list[str]:
        return sorted(set(self._catalog_files) | set(self._user_files))

    def user_files(self, name: str) -> list[Path]:
        """The user files of gate ``name``; also a file that says ``gate: name`` under
        another file name (loading it gives its error, so it is not silently left out)."""
        files = list(self._user_files.get(name, []))
        files += [path for path, gate in self.misnamed().items() if gate == name]
        return files

    def misnamed(self) -> dict[Path, str]:
        """User gate files whose ``gate:`` differs from their file name: path -> ``gate:``."""
        if self._misnamed_files is None:
            found: dict[Path, str] = {}
            for name, paths in self._user_files.items():
                for path in paths:
                    declared = _declared_gate(path)
                    if declared is not None and declared != name:
                        found[path] = declared
            self._misnamed_files = found
        return self._misnamed_files

    def check_variables(self, names: Sequence[str] | Any) -> None:
        """Raise :class:`VariableError` for a ``--gate-var`` name no loaded gate file
        declares in ``vars:`` or refers to as ``${name}`` (with a "did you mean")."""
        if self._failed or not self._cache:
            return  # a file that failed to load may be the one that uses it
        known = sorted(self._var_names)
        for name in names:
            if name in self._var_names:
                continue
            hint = difflib.get_close_matches(name, known, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            uses = f"; variables used: {', '.join(known)}" if known else ""
            gates = ", ".join(sorted(self._cache))
            raise VariableError(
                f"--gate-var {name}: no loaded gate file ({gates}) declares or uses "
                f"${{{name}}}{extra}{uses}"
            )

    def in_catalog(self, name: str) -> bool:
        return name in self._catalog_files

    def closure(self, names: Sequence[str]) -> list[str]:
        """``names`` and every gate they include, each once, includes first."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            if name in ordered:
                return
            for included in self.load(name).includes:
                visit(included)
            ordered.append(name)

        for name in names:
            visit(name)
        return ordered

    # -- loading ---------------------------------------------------------------------------
    def load(self, name: str) -> Gate:
        if name in self._cache:
            return self._cache[name]
        if name in self._failed:
            raise self._failed[name]
        if name not in self._catalog_files and name not in self._user_files:
            raise KeyError(name)
        if name in self._clashes:
            raise self._clashes[name]
        self._loading.append(name)
        self._ids = {key: ids for key, ids in self._ids.items() if key[0] != name}
        try:
            gate = Gate(name=name, title=name, in_catalog=name in self._catalog_files)
            if gate.in_catalog:
                self._apply(gate, self._catalog_files[name], base=True)
            for index, path in enumerate(self._user_files.get(name, [])):
                self._apply(gate, path, base=not gate.in_catalog and index == 0)
        except SourceError as exc:
            errors = exc.errors if isinstance(exc, SourceErrors) else [exc]
            if not any(e.message.startswith("include cycle") for e in errors):
                # a cycle reads differently from where it is entered: found again
                self._failed[name] = exc
            raise
        finally:
            self._loading.pop()
        self._cache[name] = gate
        return gate

    def _apply(self, gate: Gate, path: Path, *, base: bool) -> None:
        """Apply one file to ``gate``; every mistake of the file is raised together."""
        doc = load_yaml(path)
        if not isinstance(doc, LineDict):
            found = "the file is empty" if doc is None else f"found {_kind(doc)}"
            raise SourceError(
                path, getattr(doc, "line", 1), f"{found}; a gate file is a mapping with 'gate:'"
            )
        problems = validate_all(doc, gate_validator())
        if problems:
            raise SourceErrors.of(
                [SourceError(path, line_of(doc, where), message) for where, message in problems]
            )
        if doc["gate"] != path.stem:
            raise SourceError(
                path,
                doc.line_of("gate"),
                f"gate '{doc['gate']}' must be in a file named {doc['gate']}{path.suffix}",
            )
        gate.files.append(path)
        self._var_names.update(doc.get("vars") or ())
        if self.cli_vars:
            for text in leaves(doc):
                if isinstance(text, str) and "${" in text:
                    self._var_names.update(_VAR_REFERENCE.findall(text))
        variables = self._variables(doc, path)
        errors: list[SourceError] = []
        if base:
            gate.title = str(doc.get("title", gate.title))
            gate.description = str(doc.get("description", ""))
            gate.phase = str(doc.get("phase", ""))
            gate.status = str(doc.get("status", ""))
        else:
            for key in ("phase", "status"):
                if key in doc and str(doc[key]) != getattr(gate, key):
                    errors.append(
                        SourceError(
                            path,
                            doc.line_of(key),
                            f"cannot change '{key}' of catalog gate {gate.name}",
                        )
                    )
            gate.title = str(doc.get("title", gate.title))
            gate.description = str(doc.get("description", gate.description))
        try:
            self._includes(gate, doc, path)
        except SourceError as exc:
            errors.append(exc)
        try:
            self._file_hosts = split_hosts(self._expand(doc.get("hosts"), variables))
        except VariableError as exc:
            errors.append(SourceError(path, doc.line_of("hosts"), str(exc)))
            self._file_hosts = []
        criteria = doc.get("criteria") or LineDict()
        try:
            for crit_id, body in criteria.items():
                line = criteria.line_of(crit_id)
                try:
                    self._criterion(gate, crit_id, body, path, line, variables, base, errors)
                except SourceError as exc:
                    errors.append(exc)
        finally:
            self._file_hosts = []
        if base and not gate.criteria and not errors:
            errors.append(SourceError(path, doc.line, f"gate {gate.name} declares no criteria"))
        if errors:
            raise SourceErrors.of(errors)

    def _variables(self, doc: LineDict, path: Path) -> dict[str, str]:
        # --gate-var values win, and the file's own vars: may use them
        variables: dict[str, str] = dict(self.cli_vars)
        declared = doc.get("vars") or LineDict()
        errors: list[SourceError] = []
        for name, value in declared.items():
            if name in self.cli_vars:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            try:
                variables[name] = interpolate(text, variables, self.environ)
            except VariableError as exc:
                errors.append(SourceError(path, declared.line_of(name), str(exc)))
                continue
            if secret_name(name):
                self.redactor.add([variables[name]])
            self.redactor.add_credentials([variables[name]])
        if errors:
            # later references to these would only repeat them
            raise SourceErrors.of(errors)
        return variables

    def _includes(self, gate: Gate, doc: LineDict, path: Path) -> None:
        includes = doc.get("includes") or LineList()
        for index, included in enumerate(includes):
            line = includes.line_of(index)
            if included == gate.name or included in self._loading:
                chain = " -> ".join([*self._loading[self._loading.index(included) :], included])
                raise SourceError(path, line, f"include cycle: {chain}")
            if included not in self.known():
                raise SourceError(path, line, self.unknown_gate_message(included))
            try:
                self.load(included)
            except SourceError as exc:
                # a cycle closed inside the catalog was made by this file's include
                catalog = set(self._catalog_files.values())
                if exc.message.startswith("include cycle") and exc.path in catalog - {path}:
                    raise SourceError(path, line, exc.message) from None
                raise
            if included not in gate.includes:
                gate.includes.append(included)
                gate.criteria[included] = Criterion(
                    id=included,
                    title=f"included gate {included} passes",
                    include=included,
                    source=Source(path, line),
                )

    def unknown_gate_message(self, name: str) -> str:
        known = self.known()
        hint = difflib.get_close_matches(name, known, n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"unknown gate '{name}'{extra}; known gates: {', '.join(known)}"

    def _criterion(
        self,
        gate: Gate,
        crit_id: str,
        body: Any,
        path: Path,
        line: int,
        variables: dict[str, str],
        base: bool,
        errors: list[SourceError],
    ) -> None:
        settings: LineDict = body if isinstance(body, LineDict) else LineDict()
        checks: LineList = (
            body if isinstance(body, LineList) else settings.get("checks", LineList())
        )
        criterion = gate.criteria.get(crit_id)
        if criterion is not None and criterion.include is not None:
            raise SourceError(path, line, f"'{crit_id}' names an included gate, not a criterion")
        if criterion is None:
            if not base and gate.in_catalog and "title" not in settings:
                hint = difflib.get_close_matches(crit_id, list(gate.criteria), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise SourceError(
                    path,
                    line,
                    f"unknown criterion '{crit_id}' of gate {gate.name}{extra}; "
                    "to add a criterion, write it as a mapping with a title",
                )
            criterion = Criterion(
                id=crit_id,
                title=str(settings.get("title", crit_id)),
                description=str(settings.get("description", "")),
                required=bool(settings.get("required", True)),
                human_review=bool(settings.get("human_review", False)),
                source=Source(path, line),
            )
            criterion.confidence = self._confidence(settings, path)
            criterion.standard_confidence = criterion.confidence
            gate.criteria[crit_id] = criterion
            criterion.measures = [str(m) for m in settings.get("measures") or []]
            for key, text in self._thresholds(settings, path, variables).items():
                criterion.standards[key] = text
        else:
            self._extend(criterion, settings, path, variables)
        ids = self._ids.get((gate.name, crit_id))
        if ids is None:
            ids = self._ids[gate.name, crit_id] = {c.id: c for c in criterion.checks}
        for index, raw in enumerate(checks):
            try:
                spec = self._check(gate, criterion, raw, path, checks.line_of(index), variables)
                specs = self._on_hosts(spec)
            except SourceError as exc:
                errors.append(exc)
                continue
            for one in specs:
                other = ids.get(one.id)
                if other is not None:
                    errors.append(
                        SourceError(
                            path,
                            one.source.line,
                            f"duplicate check id '{one.id}' in criterion {crit_id} "
                            f"(first at {other.source}); give one of them an 'id:'",
                        )
                    )
                    continue
                ids[one.id] = one
                criterion.checks.append(one)

    def _on_hosts(self, spec: CheckSpec) -> list[CheckSpec]:
        """A host check fans out: one spec per host, the host id appended to its id.

        The check's own ``hosts:`` wins, then ``--hosts``, then the file's ``hosts:``; with
        none of them it runs once on this machine and keeps its id.
        """
        cls = self.registry.get(spec.type)
        own = split_hosts(spec.options.get("hosts"))
        if not cls.host_check and not own:
            return [spec]
        given = own or list(self.host_pool.options.hosts) or self._file_hosts
        # a password in a host spec is a secret: masked in every output of the run
        self.redactor.add(p for p in map(spec_password, given) if p)
        if not given:
            spec.host = LOCAL
            return [spec]
        try:
            ids = self.host_pool.expand(given)
        except HostError as exc:
            raise SourceError(spec.source.path, spec.source.line, str(exc)) from None
        if not ids:
            raise SourceError(
                spec.source.path, spec.source.line, f"hosts {', '.join(given)} name no host"
            )
        own_thresholds = self._own_thresholds.get(id(spec), frozenset())
        specs = []
        for hid in ids:
            one = dataclasses.replace(
                spec,
                id=f"{spec.id}[{hid}]",
                host=hid,
                thresholds=dict(spec.thresholds),
                overrides=dict(spec.overrides),
            )
            self._own_thresholds[id(one)] = own_thresholds
            specs.append(one)
        self._own_thresholds.pop(id(spec), None)
        return specs

    def _extend(
        self, criterion: Criterion, settings: LineDict, path: Path, variables: dict[str, str]
    ) -> None:
        if settings.get("required") is False and criterion.required:
            raise SourceError(
                path,
                settings.line_of("required"),
                f"criterion {criterion.id} is required by the catalog and cannot be made "
                "advisory; waive it with --gate-waivers instead",
            )
        if settings.get("human_review") is False and criterion.human_review:
            raise SourceError(
                path,
                settings.line_of("human_review"),
                f"criterion {criterion.id} needs human review by the catalog",
            )
        criterion.required = criterion.required or bool(settings.get("required", False))
        criterion.human_review = criterion.human_review or bool(settings.get("human_review", False))
        for key in settings.get("measures") or []:
            if str(key) not in criterion.measures:
                criterion.measures.append(str(key))
        if "confidence" in settings:
            criterion.confidence = self._confidence(settings, path)
        if "title" in settings:
            criterion.title = str(settings["title"])
        if "description" in settings:
            criterion.description = str(settings["description"])
        for key, text in self._thresholds(settings, path, variables).items():
            standard = criterion.standards.get(key)
            if standard is None:
                criterion.standards[key] = text
            elif not parse(standard).same_bound(key, parse(text)):
                criterion.overrides[key] = (standard, text)
        # checks an earlier file gave this criterion are held to what is now in force
        for spec in criterion.checks:
            self._hold_to_criterion(spec, self.registry.get(spec.type), criterion)

    @staticmethod
    def _confidence(settings: LineDict, path: Path) -> float | None:
        """A criterion's ``confidence:`` as a fraction, or None when it gives none."""
        if "confidence" not in settings:
            return None
        try:
            return parse_confidence(settings["confidence"])
        except ValueError as exc:
            raise SourceError(path, settings.line_of("confidence"), str(exc)) from None

    def _thresholds(
        self, settings: LineDict, path: Path, variables: dict[str, str]
    ) -> dict[str, str]:
        raw = settings.get("thresholds") or LineDict()
        found: dict[str, str] = {}
        for key, value in raw.items():
            found[key] = str(self._threshold(key, value, path, raw.line_of(key), variables))
        return found

    def _threshold(
        self, key: str, value: Any, path: Path, line: int, variables: dict[str, str]
    ) -> Threshold:
        try:
            if isinstance(value, str):
                value = interpolate(value, variables, self.environ)
            threshold = parse(value)
            threshold.check_key(key)
        except (ThresholdError, VariableError) as exc:
            raise SourceError(path, line, f"{key}: {exc}") from None
        return threshold

    def _check(
        self,
        gate: Gate,
        criterion: Criterion,
        raw: LineDict,
        path: Path,
        line: int,
        variables: dict[str, str],
    ) -> CheckSpec:
        if not raw:
            raise SourceError(path, line, "a check is a mapping whose first key is its type")
        type_name = next(iter(raw))
        if type_name not in self.registry:
            names = self.registry.names()
            hint = difflib.get_close_matches(type_name, names, n=1)
            if type_name in ("id", "expect", "timeout"):
                message = f"a check starts with its type (one of: {', '.join(names)})"
            else:
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                message = f"unknown check type '{type_name}'{extra}; known: {', '.join(names)}"
            raise SourceError(path, line, message)
        cls = self.registry.get(type_name)
        problem = validate(raw, check_validator(cls))
        if problem is not None:
            where, message = problem
            raise SourceError(path, line_of(raw, where), message)
        given_id = raw.get("id")
        if isinstance(given_id, str) and (why := id_problem(given_id)) is not None:
            raise SourceError(path, raw.line_of("id"), why)
        self.environ.reads.clear()
        try:
            # values reach shell text only as environment variables (FWGATES_VAR_name, ...)
            env: dict[str, str] = {}
            target = self._expand(raw[type_name], variables, env if cls.shell_target else None)
            display = self._expand(raw[type_name], variables) if cls.shell_target else target
            options = {
                key: self._expand(value, variables, env if key in cls.shell_options else None)
                for key, value in raw.items()
                if key not in (type_name, "id", "expect", "timeout")
            }
        except VariableError as exc:
            raise SourceError(path, line, str(exc)) from None
        # the password of a URL is masked in every form, not only inside the URL
        self.redactor.add_credentials(leaves([display, options]))
        spec = CheckSpec(
            type=type_name,
            target=target,
            id="",
            gate=gate.name,
            criterion=criterion.id,
            source=Source(path, line),
            options=options,
            env=env,
            display_target=readable(display),
        )
        if "timeout" in raw:
            try:
                spec.timeout = parse_duration(raw["timeout"])
            except ThresholdError as exc:
                raise SourceError(path, raw.line_of("timeout"), f"timeout: {exc}") from None
        self._expectations(spec, cls, criterion, raw, path, variables)
        # ${env:...} values an HTTP-like check uses are masked in every output, whatever
        # their name (a command's output is compared with its expectations unmasked)
        if cls.mask_env:
            self.redactor.add(self.environ.reads)
        elif cls.shell_target:
            # a command line's environment values (tokens, keys passed as arguments) are not
            # masked run-wide (its output is compared with them), but its id and shown target
            # hold them masked
            spec.private_values = tuple(dict.fromkeys(self.environ.reads))
        spec.id = self._check_id(type_name, raw, display, spec.private_values)
        return spec

    def _check_id(
        self, type_name: str, raw: LineDict, resolved: Any, private: Sequence[str] = ()
    ) -> str:
        """The given id, or ``type[target]`` from the target with its variables resolved;
        credentials in URLs removed and secrets masked (as every output shows a target)."""
        if raw.get("id"):
            return self.redactor.text(str(raw["id"]))
        local = Redactor(private)
        return default_id(type_name, resolved, lambda t: local.text(self.redactor.target(t)))

    def _expectations(
        self,
        spec: CheckSpec,
        cls: type[Check],
        criterion: Criterion,
        raw: LineDict,
        path: Path,
        variables: dict[str, str],
    ) -> None:
        expect: LineDict = raw.get("expect") or LineDict()
        in_force = criterion.thresholds_in_force()
        measured = cls.measures(spec.target, spec.options)
        for key, text in in_force.items():
            if key in measured:
                spec.thresholds[key] = parse(text)
        for key, value in cls.default_expect.items():
            if key not in expect and key not in spec.thresholds:
                spec.thresholds[key] = parse(value)
        for key, value in expect.items():
            line = expect.line_of(key)
            if key in cls.threshold_keys:
                spec.thresholds[key] = self._threshold(key, value, path, line, variables)
            else:
                try:
                    spec.expect[key] = self._expand(value, variables)
                except VariableError as exc:
                    raise SourceError(path, line, str(exc)) from None
        self._own_thresholds[id(spec)] = frozenset(k for k in expect if k in cls.threshold_keys)
        spec.confidence = criterion.confidence
        self._record_overrides(spec, criterion)

    def _hold_to_criterion(self, spec: CheckSpec, cls: type[Check], criterion: Criterion) -> None:
        """Apply the criterion's thresholds in force that the check's own expect does not set,
        and record where the check's thresholds differ from the standards."""
        own = self._own_thresholds.get(id(spec), frozenset())
        measured = cls.measures(spec.target, spec.options)
        for key, text in criterion.thresholds_in_force().items():
            if key in measured and key not in own:
                spec.thresholds[key] = parse(text)
        spec.confidence = criterion.confidence
        self._record_overrides(spec, criterion)

    @staticmethod
    def _record_overrides(spec: CheckSpec, criterion: Criterion) -> None:
        spec.overrides = {}
        for key, threshold in spec.thresholds.items():
            standard = criterion.standards.get(key)
            if standard is not None and not parse(standard).same_bound(key, threshold):
                spec.overrides[key] = (standard, str(threshold))

    def _expand(
        self, value: Any, variables: dict[str, str], env: dict[str, str] | None = None
    ) -> Any:
        """``value`` with references resolved; with ``env``, as shell text whose values are
        added to ``env`` and referenced as environment variables."""
        if isinstance(value, str):
            if "${" not in value:
                return value  # no reference: nothing to resolve
            if env is not None:
                return interpolate_shell(value, variables, self.environ, env)
            return interpolate(value, variables, self.environ)
        if isinstance(value, list):
            return [self._expand(v, variables, env) for v in value]
        if isinstance(value, dict):
            return {k: self._expand(v, variables, env) for k, v in value.items()}
        return value

    def spec_from_mapping(
        self,
        gate: Gate | None,
        criterion: Criterion | None,
        mapping: Mapping[str, Any],
        where: Source,
    ) -> CheckSpec:
        """A check given from Python (the ``gate_check`` fixture), validated like YAML."""
        raw = _to_lines(dict(mapping), where.line)
        spec = self._check(
            gate or Gate(name="", title=""),
            criterion or Criterion(id="", title=""),
            raw,
            where.path,
            where.line,
            {},
        )
        specs = self._on_hosts(spec)
        if len(specs) > 1:
            hosts = ", ".join(str(s.host) for s in specs)
            raise SourceError(
                where.path,
                where.line,
                f"a check run from Python runs on one host, not on {hosts}: name one in 'hosts:'",
            )
        return specs[0]


def _to_lines(value: Any, line: int) -> Any:
    if isinstance(value, Mapping):
        mapping = LineDict()
        mapping.line = line
        for key, item in value.items():
            mapping[str(key)] = _to_lines(item, line)
        return mapping
    if isinstance(value, list | tuple):
        sequence = LineList()
        sequence.line = line
        sequence.extend(_to_lines(item, line) for item in value)
        return sequence
    return value


def _declared_gate(path: Path) -> str | None:
    """The ``gate:`` a file declares, read cheaply; ``None`` when it cannot be read."""
    try:
        head = read_regular(path, 64 * 1024)[: 64 * 1024].decode("utf-8", "replace")
    except OSError:
        return None
    match = _GATE_LINE.search(head)
    if match is not None:
        return match.group(2)
    try:
        doc = load_yaml(path)
    except SourceError:
        return None
    declared = doc.get("gate") if isinstance(doc, dict) else None
    return declared if isinstance(declared, str) else None


class _EnvReads(dict[str, str]):
    """The environment, remembering the values read through ``${env:NAME}`` references."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.reads: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key)
        if value is not None:
            self.reads.append(value)
            return value
        return default
