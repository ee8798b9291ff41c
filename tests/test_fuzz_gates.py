"""Fuzzing: the catalog and example gate files, mutated, through the loader and the verdict,
and a few through a real pytest run.

Mutations work on the text (odd scalars and thresholds, tags, anchors and aliases, merge
keys, control characters, duplicated, dropped, swapped or re-indented lines, misspelt keys)
and on the document (a value replaced by one of another type, shared values dumped as
anchors). Whatever comes out, the loader gives a Gate or a ``path:line: message`` error
per line, the verdict decides without an exception, and a pytest run ends with an exit status
in {0, 1, 2, 4, 6}, never a traceback or INTERNALERROR.

Examples per run: ``FWGATES_FUZZ_EXAMPLES`` (loader, default 500) and ``FWGATES_FUZZ_RUNS``
(pytest runs, default 6); CI runs the defaults, a long local session can raise them.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_fwgates.loader import GateLoader, catalog_dir
from pytest_fwgates.model import CheckResult, Outcome
from pytest_fwgates.verdict import decide_all, overall
from pytest_fwgates.waivers import WaiverSet
from pytest_fwgates.yamlsrc import SourceError

ROOT = Path(__file__).resolve().parent.parent
SEEDS = {
    path: path.read_text("utf-8")
    for path in [
        *sorted((ROOT / "gates").glob("*.yaml")),
        *sorted((ROOT / "examples/gates").glob("*.yaml")),
    ]
}
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

LOADER = settings(
    max_examples=int(os.environ.get("FWGATES_FUZZ_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RUNS = settings(
    max_examples=int(os.environ.get("FWGATES_FUZZ_RUNS", "6")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

ODD_VALUES = [
    "-1", "-0", "0", "1e308", "1e309", "-.inf", ".nan", "0x1F", "0o17", "1_000", "~", "[]", "{}",
    "true", "no", "''", "'< -5'", "'<= +10'", "'== nan'", "'< 5 m'", "'>= 99.9%%'", "'>='",
    "'< 1e999ms'", "'<5m'", "'<= -10%'", "'!= -0'", "'${x}'", "'${env:HOME}'", "'$${x}'",
    "'${'", "'$(touch PWNED)'", "'`touch PWNED`'", "99999999999999999999999999999999",
    "'" + "9" * 400 + "'", "!!binary aGVsbG8=", "!!python/object/apply:os.system ['touch PWNED']",
    "!!set {a, b}", "!!omap [a: 1]", "!foo bar", "!!float x", "!!int 0b2", "!!str 5",
    "!!timestamp 2020-01-01", "*undefined", "\"\\e[2J\"", "\"a\\nb\"", "\"\\u2028\"", "2020-01-01",
    "[1, [2, [3]]]", "{a: {b: {c: 1}}}", "{<<: {a: 1, a: 2}}", "'line one\n  line two'",
]  # fmt: skip
CONTROL = ["\x00", "\x07", "\x1b", "\x0c", "\x7f", "\x85", "\x9b", "\u2028", "\ufeff", "\t", "\r"]
KEYS = [
    "gate", "title", "phase", "status", "includes", "vars", "criteria", "checks", "required",
    "human_review", "thresholds", "expect", "timeout", "id", "command", "description", "<<",
    "exit_status", "duration_s", "stdout_contains", "comand", "expct", "x", "Criteria", "gate ",
]  # fmt: skip
# edits that keep the file YAML more often come more often: the loader's own checks get work
OPERATIONS = [
    *["value"] * 3, *["rename"] * 2, *["append"] * 2, *["alias"] * 2, *["merge"] * 2,
    "duplicate", "delete", "swap", "indent", "control",
]  # fmt: skip
KEY_LINE = re.compile(r"^(\s*(?:- )?)([^\s:#][^:#]*?):(\s|$)(.*)$")


def _key_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if KEY_LINE.match(line)]


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> str:
    """0-3 edits of the text of a gate file."""
    lines = text.split("\n")
    anchors = 0
    for _ in range(draw(st.integers(0, 3))):
        keyed = _key_lines(lines)
        op = draw(st.sampled_from(OPERATIONS))
        if op == "control" or not keyed:
            offset = draw(st.integers(0, max(0, len("\n".join(lines)))))
            joined = "\n".join(lines)
            lines = (joined[:offset] + draw(st.sampled_from(CONTROL)) + joined[offset:]).split("\n")
            continue
        index = draw(st.sampled_from(keyed))
        match = KEY_LINE.match(lines[index])
        assert match is not None
        lead, key = match.group(1), match.group(2)
        if op == "value":
            lines[index] = f"{lead}{key}: {draw(st.sampled_from(ODD_VALUES))}"
        elif op == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[index])
        elif op == "delete":
            del lines[index]
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif op == "indent":
            delta = draw(st.sampled_from([-2, -1, 1, 2]))
            line = lines[index]
            lines[index] = line[-delta:] if delta < 0 else " " * delta + line
        elif op == "rename":
            lines[index] = lines[index].replace(key, draw(st.sampled_from(KEYS)), 1)
        elif op == "alias":
            anchors += 1
            name = f"a{anchors}"
            rest = match.group(4)
            lines[index] = f"{lead}{key}: &{name} {rest}"
            target = draw(st.sampled_from(keyed))
            other = KEY_LINE.match(lines[target])
            if other is not None and target != index:
                lines[target] = f"{other.group(1)}{other.group(2)}: *{name}"
        elif op == "merge":
            indent = " " * len(lead.replace("- ", "  "))
            merged = draw(st.sampled_from(
                ["<<: {x: 1}", "<<: {a: 1, a: 2}", "<<: *a1", "<<: [{a: 1}, {b: 2}]", "<<: 5"]
            ))  # fmt: skip
            lines.insert(index + 1, indent + merged)
        else:  # append a check with odd parts to the last criterion-like place
            command, key, value = (
                draw(st.sampled_from(ODD_VALUES)),
                draw(st.sampled_from(KEYS)),
                draw(st.sampled_from(ODD_VALUES)),
            )
            # a criterion of its own at the end (every seed ends inside 'criteria:')
            lines += [
                f"  fuzz-{len(lines)}:",
                "    title: Added by the fuzzer",
                "    checks:",
                f"      - command: {command}",
                f"        expect: {{{key}: {value}}}",
            ]
    return "\n".join(lines)


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "< 5m", ">= 99.9%", "-1", "${x}", "true", "a\nb", "\x1b[2J", "é"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def document_mutation(draw: st.DrawFn, text: str) -> str:
    """A value of the document replaced (shared values become anchors when dumped)."""
    doc = yaml.safe_load(text)
    shared = draw(JSONISH)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        value = shared if draw(st.booleans()) else draw(JSONISH)
        if not path:
            doc = value
            continue
        parent = doc
        for part in path[:-1]:
            if parent is shared:
                value = copy.deepcopy(value)  # no value inside itself: anchors, not cycles
            parent = parent[part]
        if parent is shared:
            value = copy.deepcopy(value)
        parent[path[-1]] = value
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


SEED = st.sampled_from(sorted(SEEDS))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Path, str]:
    seed = draw(SEED)
    text = SEEDS[seed]
    how = draw(st.sampled_from(["text", "text", "document"]))
    mutation = text_mutation(text) if how == "text" else document_mutation(text)
    return seed, draw(mutation)


LINE = re.compile(r"^\S.*\.ya?ml(:\d+)?: \S")


def assert_error_lines(error: SourceError) -> None:
    lines = str(error).split("\n")
    assert lines
    for line in lines:
        assert LINE.match(line), line
        assert line.isprintable(), line


def load_and_decide(folder: Path, catalog: Path | None, name: str) -> None:
    loader = GateLoader([folder], environ={}, catalog=catalog)
    try:
        names = loader.closure([name])
        gates = [loader.load(n) for n in names]
    except SourceError as exc:
        assert_error_lines(exc)
        return
    outcomes = list(Outcome)
    results = [
        CheckResult(
            nodeid=spec.id,
            gate=spec.gate,
            criterion=spec.criterion,
            check_id=spec.id,
            outcome=outcomes[index % len(outcomes)],
            measured={key: 1.0 for key in spec.thresholds},
            overrides=dict(spec.overrides),
        )
        for gate in gates
        for index, spec in enumerate(gate.checks())
    ]
    decisions = decide_all(gates, results, WaiverSet.empty())
    assert overall(decisions) in set(overall(decisions).__class__)


@LOADER
@given(mutated(), st.booleans())
def test_mutated_gate_files_through_the_loader(case: tuple[Path, str], as_catalog: bool) -> None:
    seed, text = case
    with tempfile.TemporaryDirectory(prefix="fwgates-fuzz-") as tmp:
        folder = Path(tmp) / "gates"
        folder.mkdir()
        path = folder / seed.name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        if as_catalog and seed.parent == ROOT / "gates":
            # the mutated file stands in for the catalog's own
            catalog = Path(tmp) / "catalog"
            catalog.mkdir()
            for original in catalog_dir().glob("*.yaml"):
                (catalog / original.name).write_bytes(original.read_bytes())
            path.replace(catalog / seed.name)
            load_and_decide(folder, catalog, seed.stem)
        else:
            load_and_decide(folder, None, seed.stem)
        assert not (Path(tmp) / "PWNED").exists()


# -- a few through a real pytest run ---------------------------------------------------------------

RUN_SEED = """\
gate: production-readiness
vars:
  word: ok
criteria:
  infrastructure-validation:
    - command: "echo ${word}"
      id: echo-word
      expect: {exit_status: 0, stdout_contains: ok, duration_s: "< 5s"}
  security-compliance:
    - command: "exit 1"
      expect: {exit_status: "== 1"}
  performance-verification:
    - command: "true"
      timeout: 10
  monitoring-operational:
    - command: "true"
  rollback-capability:
    - command: "true"
      expect: {duration_s: "< 2m"}
"""


@RUNS
@given(text=text_mutation(RUN_SEED))
def test_mutated_gate_file_through_pytest(pytester: pytest.Pytester, text: str) -> None:
    pytester.makeini("[pytest]\n")
    folder = pytester.path / "gates"
    folder.mkdir(exist_ok=True)
    (folder / "production-readiness.yaml").write_text(text, encoding="utf-8")
    result = pytester.runpytest("--gate=production-readiness", *QUIET)
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert int(result.ret) in {0, 1, 2, 4, 6}
    assert not (pytester.path / "PWNED").exists()
