"""Gate and waiver files as an attacker or a hurried user writes them: merge keys, control
characters, odd thresholds, huge aliased documents, check ids, misnamed files, unknown
variables, several mistakes at once, loosened standards, and libyaml against pure Python.

Each example here was reproduced against the loader before it was hardened.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fwgates import yamlsrc
from pytest_fwgates.loader import GateLoader
from pytest_fwgates.model import CheckResult, Gate, GateVerdict, Outcome
from pytest_fwgates.verdict import decide_all, decide_gate
from pytest_fwgates.waivers import Waiver, WaiverSet, load_waivers
from pytest_fwgates.yamlsrc import LineDict, LineList, SourceError, SourceErrors, load_yaml

if TYPE_CHECKING:
    from conftest import GateProject

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "bad_gates"
CORPUS = [
    *sorted(BAD.glob("*.yaml")),
    *sorted((ROOT / "gates").glob("*.yaml")),
    *sorted((ROOT / "examples" / "gates").glob("*.yaml")),
]
ZDD = "zero-downtime-deployment"
TODAY = dt.date.today()
LATER = (TODAY + dt.timedelta(days=30)).isoformat()


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def loader_for(tmp_path: Path, files: dict[str, str], **kwargs: Any) -> GateLoader:
    for name, text in files.items():
        write(tmp_path / "gates", name, text)
    kwargs.setdefault("environ", {})
    return GateLoader([tmp_path / "gates"], **kwargs)


def load_error(tmp_path: Path, name: str, text: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        loader_for(tmp_path, {name: text}).load(name)
    return info.value


def one_line(result: pytest.RunResult, text: str) -> str:
    """The one output line that contains ``text``."""
    found = [line for line in result.outlines + result.errlines if text in line]
    assert found, f"{text!r} not in the output"
    return found[0]


# -- YAML: merge keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # a duplicate inside a merge source, written inline
        ("x:\n  <<: {a: 1, a: 2}\n", 2, "duplicate key 'a' (first at line 2)"),
        # the same in a list of merge sources
        ("x:\n  <<: [{b: 1}, {a: 1,\n    a: 2}]\n", 3, "duplicate key 'a' (first at line 2)"),
        # two merge keys in one mapping
        ("s: &s {a: 1}\nt: &t {a: 2}\nx:\n  <<: *s\n  <<: *t\n", 5, "duplicate key '<<'"),
        # a merge source that itself merges a source with a duplicate
        ("x:\n  <<: {<<: {a: 1, a: 2}}\n", 2, "duplicate key 'a'"),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "python"])
def test_merge_key_duplicates_are_refused(
    tmp_path: Path, text: str, line: int, message: str, fast: bool
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SourceError) as info:
        load_yaml(path, fast=fast)
    assert (info.value.line, info.value.message[: len(message)]) == (line, message)


def test_merge_keys_still_merge(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "a: &a {k: 1, m: 1}\nb: &b {k: 2, n: 2}\nx:\n  <<: [*a, *b]\n  m: 3\n", encoding="utf-8"
    )
    for fast in (True, False):
        doc = load_yaml(path, fast=fast)
        # an earlier source wins over a later one, the mapping's own key over both
        assert doc["x"] == {"k": 1, "n": 2, "m": 3}
        assert doc["x"].line_of("m") == 5 and doc["x"].line_of("k") == 1


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        # the failing check of the first smoke must not vanish behind the second (a pass)
        (
            '<<: {smoke: [{command: "exit 1"}], smoke: [{command: "true"}]}',
            ":3: duplicate key 'smoke'",
        ),
        (
            '<<: {smoke: [{command: "exit 1"}]}\n<<: {smoke: [{command: "true"}]}',
            ":4: duplicate key '<<' (first at line 3)",
        ),
    ],
    ids=["in-one-merge-source", "two-merge-keys"],
)
def test_a_merge_key_duplicate_in_a_gate_file_is_refused(
    project: GateProject, criteria: str, message: str
) -> None:
    project.pytester.makeini("[pytest]\n")
    path = project.gate("my-gate", "gate: my-gate\ncriteria:\n" + textwrap.indent(criteria, "  "))
    result = project.run("--gate=my-gate")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert one_line(result, f"{path}{message}")
    assert project.summary()["verdict"] == "FAILED"


# -- YAML: control characters ------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x1b", "\x0c", "\x00", "\x7f", "\x9b", "\ufffe"])
@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "python"])
def test_control_character_is_a_line_error(tmp_path: Path, char: str, fast: bool) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(f"gate: a\n# note\ncriteria: x{char}y\n", encoding="utf-8")
    with pytest.raises(SourceError) as info:
        load_yaml(path, fast=fast)
    assert info.value.line == 3
    assert info.value.message == (
        f"control character U+{ord(char):04X} is not allowed in YAML; remove it"
    )


def test_control_character_in_a_gate_file(project: GateProject) -> None:
    project.pytester.makeini("[pytest]\n")
    path = project.path / "gates" / "my-gate.yaml"
    path.parent.mkdir()
    path.write_bytes(b'gate: my-gate\ncriteria:\n  smoke:\n    - command: "true\x1b[2J"\n')
    result = project.run("--gate=my-gate")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, not INTERNALERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert one_line(result, f"{path}:4: control character U+001B is not allowed in YAML")


def test_control_character_in_a_waivers_file(project: GateProject) -> None:
    project.pytester.makeini("[pytest]\n")
    project.production_ready()
    path = project.path / "waivers.yaml"
    path.write_bytes(b"waivers:\n  - gate: production-readiness\x0c\n")
    result = project.run("--gate=production-readiness", f"--gate-waivers={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert one_line(result, f"{path}:2: control character U+000C is not allowed in YAML")


# -- thresholds: negative numbers ----------------------------------------------------------------


NEGATIVE = """
    gate: my-gate
    criteria:
      smoke:
        title: Smoke
        thresholds: {exit_status: -1}
        checks:
          - command: "exit 3"
"""


def test_negative_criterion_threshold_loads(tmp_path: Path) -> None:
    gate = loader_for(tmp_path, {"my-gate": NEGATIVE}).load("my-gate")
    (spec,) = gate.checks()
    assert str(spec.thresholds["exit_status"]) == "== -1"
    assert gate.criteria["smoke"].standards == {"exit_status": "== -1"}


def test_negative_threshold_through_pytest(project: GateProject) -> None:
    """``thresholds: {exit_status: -1}`` crashed collection (ThresholdError)."""
    project.pytester.makeini("[pytest]\n")
    project.gate("my-gate", NEGATIVE)
    result = project.run("--gate=my-gate")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=1)
    assert result.ret == 1
    assert project.criteria("my-gate") == {"smoke": "FAIL"}


# -- the work per file is bounded by the expanded document ----------------------------------------


def big_aliased_file(folder: Path, chars: int = 800_000, criteria: int = 15_000) -> Path:
    lines = ["gate: my-gate", "vars:", '  big: &big "' + "x" * chars + '"', "criteria:"]
    lines += [f"  c{i}: {{title: *big, checks: [{{command: 'true'}}]}}" for i in range(criteria)]
    return write(folder, "my-gate", "\n".join(lines) + "\n")


def test_one_string_aliased_into_many_criteria_is_refused_quickly(tmp_path: Path) -> None:
    path = big_aliased_file(tmp_path / "gates")
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        GateLoader([tmp_path / "gates"], environ={}).load("my-gate")
    # took hours before; the bound is generous for a busy machine
    assert time.monotonic() - started < 60
    assert info.value.path == path
    assert info.value.message == (
        f"more than {yamlsrc.MAX_CHARS} characters once aliases are expanded"
    )


# -- check ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given", ['"a\\nb"', '"x\\r\\noverall: PASSED"', '"\\e[31mred"', '"tab\\there"', '"a\\u2028b"']
)
def test_given_id_must_be_one_printable_line(tmp_path: Path, given: str) -> None:
    error = load_error(
        tmp_path,
        "my-gate",
        f"""
        gate: my-gate
        criteria:
          smoke:
            - command: "true"
              id: {given}
        """,
    )
    assert error.line == 5
    assert error.message.startswith("id: must be one line of printable text (found U+")


def test_generated_id_is_one_printable_line(tmp_path: Path) -> None:
    gate = loader_for(
        tmp_path,
        {
            "my-gate": r"""
            gate: my-gate
            criteria:
              smoke:
                - command: "printf '\e[2J'\r\necho overall: PASSED"
            """
        },
    ).load("my-gate")
    (spec,) = gate.checks()
    assert spec.id.isprintable()
    assert spec.id == r"command[printf '\x1b[2J' echo overall: PASSED]"


def test_id_with_a_line_break_cannot_fake_a_verdict_line(project: GateProject) -> None:
    project.pytester.makeini("[pytest]\n")
    path = project.gate(
        "my-gate",
        """
        gate: my-gate
        criteria:
          smoke:
            - command: "exit 1"
              id: "x\\r\\noverall: PASSED"
        """,
    )
    result = project.run("--gate=my-gate")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert one_line(result, f"{path}:5: id: must be one line of printable text")
    assert not [line for line in result.outlines if line.startswith("overall: PASSED")]


LONG = "curl -fsS --max-time 5 https://example.invalid/a/very/long/path/that/goes/on?x=1&y=2"


def test_waiver_names_a_long_generated_id_by_its_full_target(tmp_path: Path) -> None:
    gate = loader_for(
        tmp_path,
        {"my-gate": f"gate: my-gate\ncriteria:\n  smoke:\n    - command: '{LONG}'\n"},
    ).load("my-gate")
    (spec,) = gate.checks()
    assert "…~" in spec.id and len(spec.id) < len(LONG)
    full = Waiver(
        "my-gate", "smoke", f"command[{LONG}]", "known flaky, fixed soon", "ops", TODAY, "w"
    )
    short = Waiver("my-gate", "smoke", spec.id, "known flaky, fixed soon", "ops", TODAY, "w")
    other = Waiver(
        "my-gate", "smoke", f"command[X{LONG}]", "known flaky, fixed soon", "ops", TODAY, "w"
    )
    for waiver, covers in ((full, True), (short, True), (other, False)):
        waivers = WaiverSet([waiver], [])
        assert (waivers.for_check("my-gate", "smoke", spec.id) is not None) is covers
        result = CheckResult("n", "my-gate", "smoke", spec.id, Outcome.FAILED, message="x")
        decision = decide_gate(gate, [result], waivers)
        assert decision.verdict is (
            GateVerdict.HUMAN_REVIEW_REQUIRED if covers else GateVerdict.FAILED
        )
        assert bool(decision.warnings) is not covers  # an unmatched waiver is said so


def test_waiver_with_the_full_target_through_pytest(project: GateProject) -> None:
    project.pytester.makeini("[pytest]\n")
    project.gate(
        "my-gate", f"gate: my-gate\ncriteria:\n  smoke:\n    - command: 'exit 1 # {LONG}'\n"
    )
    waivers = project.waivers(
        f"""
        waivers:
          - gate: my-gate
            criterion: smoke
            check: "command[exit 1 # {LONG}]"
            justification: the endpoint moves next sprint
            approved_by: ops lead
            expires: "{LATER}"
        """
    )
    result = project.run("--gate=my-gate", f"--gate-waivers={waivers}")
    assert result.ret == 6  # human review: passed only under a waiver
    assert project.criteria("my-gate") == {"smoke": "WAIVED"}


# -- silent mistakes: misnamed files, unknown --gate-var, one error per run ---------------------


def test_misnamed_gate_file_is_a_collection_error(project: GateProject) -> None:
    """``gates/prod.yaml`` saying ``gate: production-readiness`` was silently left out."""
    project.pytester.makeini("[pytest]\n")
    project.production_ready()
    path = project.gate(
        "prod",
        """
        gate: production-readiness
        criteria:
          rollback-capability:
            - command: "touch RAN; exit 1"
        """,
    )
    result = project.run("--gate=production-readiness")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    message = f"{path}:1: gate 'production-readiness' must be in a file named"
    assert one_line(result, message)
    assert project.summary()["verdict"] == "FAILED"
    assert not (project.path / "RAN").exists()


def test_misnamed_files_found_by_the_loader(tmp_path: Path) -> None:
    loader = loader_for(
        tmp_path,
        {
            "prod": "gate: production-readiness\ncriteria: {}\n",
            "other": "{gate: 'production-readiness', criteria: {}}\n",
            "fine": "gate: fine # comment\ncriteria: {x: {title: X}}\n",
        },
    )
    gates = tmp_path / "gates"
    assert loader.misnamed() == {
        gates / "other.yaml": "production-readiness",
        gates / "prod.yaml": "production-readiness",
    }
    assert set(loader.user_files("production-readiness")) == set(loader.misnamed())
    assert loader.user_files("fine") == [gates / "fine.yaml"]


def test_unknown_gate_var_is_a_usage_error(project: GateProject) -> None:
    project.pytester.makeini("[pytest]\n")
    project.gate(
        "my-gate",
        """
        gate: my-gate
        vars:
          base_url: http://127.0.0.1:1
        criteria:
          smoke:
            - command: "echo ${base_url} ${token}"
        """,
    )
    result = project.run("--gate=my-gate", "--gate-var=base_ur=x", "--gate-var=token=t")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = one_line(result, "--gate-var base_ur:")
    assert "(did you mean 'base_url'?)" in line
    # declared in vars: or referred to as ${name}: both fine
    result = project.run("--gate=my-gate", "--gate-var=base_url=x", "--gate-var=token=t")
    assert result.ret == 0


def test_check_variables_on_the_loader(tmp_path: Path) -> None:
    loader = loader_for(
        tmp_path,
        {"my-gate": "gate: my-gate\ncriteria:\n  smoke:\n    - command: 'echo ${who}'\n"},
        cli_vars={"who": "me", "whom": "you"},
    )
    loader.load("my-gate")
    loader.check_variables(["who"])
    with pytest.raises(ValueError, match=r"--gate-var whom: .* \(did you mean 'who'\?\)"):
        loader.check_variables(["who", "whom"])


def test_all_errors_of_a_file_are_reported_together(project: GateProject) -> None:
    project.pytester.makeini("[pytest]\n")
    path = project.gate(
        "my-gate",
        """
        gate: my-gate
        criteria:
          smoke:
            - comand: "true"
            - command: "true"
              expect: {duration_s: "fast"}
            - command: "touch RAN"
            - command: "touch RAN"
          other:
            - command: "true"
              id: "a\\nb"
        """,
    )
    result = project.run("--gate=my-gate")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    lines = [line for line in result.outlines if line.startswith(f"{path}:")]
    assert [line.split(": ", 1)[0] for line in lines[:4]] == [
        f"{path}:4",
        f"{path}:6",
        f"{path}:8",
        f"{path}:11",
    ]
    assert "unknown check type 'comand'" in lines[0]
    assert "duration_s: bad threshold 'fast'" in lines[1]
    assert "duplicate check id 'command[touch RAN]'" in lines[2]
    assert "id: must be one line of printable text" in lines[3]
    result.assert_outcomes(errors=1)
    assert not (project.path / "RAN").exists()


def test_several_schema_errors_of_a_file(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "my-gate",
        """
        gate: my-gate
        colour: blue
        criteria:
          smoke: 5
          Bad_Name: []
        """,
    )
    assert isinstance(error, SourceErrors)
    assert [(e.line, e.message.split(" ")[0]) for e in error.errors] == [
        (2, "unknown"),
        (3, "criteria:"),  # a bad name is shown at its mapping
        (4, "criteria.smoke:"),
    ]
    assert len(str(error).splitlines()) == 3


def test_several_errors_of_a_waivers_file(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        "  - {gate: a, criterion: b, justification: short, approved_by: x, expires: '2030-01-01'}\n"
        "  - {gate: a, criterion: b, justification: long enough text, approved_by: x,"
        " expires: '2030-02-31'}\n"
        "  - {gate: a, criterion: b, justification: long enough text, approved_by: x}\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as info:
        load_waivers(path)
    lines = str(info.value).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"{path}:2", f"{path}:4"]
    # the bad date is found once the schema holds
    path.write_text(
        "waivers:\n"
        "  - {gate: a, criterion: b, justification: long enough text, approved_by: x,"
        " expires: '2030-02-31'}\n"
        "  - {gate: a, criterion: b, justification: long enough text, approved_by: x,"
        " expires: '2030-13-01'}\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as info:
        load_waivers(path)
    assert len(str(info.value).splitlines()) == 2


def test_a_failed_gate_is_reported_with_the_same_error_again(tmp_path: Path) -> None:
    loader = loader_for(tmp_path, {"my-gate": "gate: my-gate\ncriteria:\n  x: 5\n  y: 6\n"})
    with pytest.raises(SourceError) as first:
        loader.load("my-gate")
    with pytest.raises(SourceError) as second:
        loader.load("my-gate")
    assert first.value is second.value


# -- loosened standards ------------------------------------------------------------------------


def zdd_results(gate: Gate, duration_s: float = 42.0) -> list[CheckResult]:
    """One passing result per criterion of zero-downtime-deployment, standards met."""
    values = {
        "deployment-reliability": {"success_ratio": 1.0, "version_changed": 1.0},
        "deployment-time": {"duration_s": duration_s, "version_changed": 1.0},
        "zero-data-loss": {"lost_writes": 0, "version_changed": 1.0},
        "automated-rollback": {"recovery_s": 30.0},
        "real-time-validation": {"availability_pct": 100.0, "version_changed": 1.0},
    }
    # enough evidence for the 99.9 % standards at 95 % confidence (3000 of 3000)
    counts = {
        "success_ratio": {"count": [3000, 3000], "of": "deploys", "event": "successful"},
        "availability_pct": {"count": [3000, 3000], "of": "probes", "event": "good"},
    }
    results = []
    for criterion in gate.criteria.values():
        ids = [c.id for c in criterion.checks] or [f"test_{criterion.id}"]
        for check_id in ids:
            results.append(
                CheckResult(
                    nodeid=check_id,
                    gate=gate.name,
                    criterion=criterion.id,
                    check_id=check_id,
                    outcome=Outcome.PASSED,
                    measured=dict(values[criterion.id]),
                    support={k: v for k, v in counts.items() if k in values[criterion.id]},
                    # the catalog's figures count from the check types that own them
                    check_type="rollback" if criterion.id == "automated-rollback" else "deploy",
                    overrides=next(
                        (dict(c.overrides) for c in criterion.checks if c.id == check_id), {}
                    ),
                )
            )
    return results


def zdd(tmp_path: Path, deployment_time: str) -> Gate:
    text = f"gate: {ZDD}\ncriteria:\n  deployment-time:\n" + textwrap.indent(
        textwrap.dedent(deployment_time).strip("\n"), "    "
    )
    return loader_for(tmp_path, {ZDD: text + "\n"}).load(ZDD)


def test_loosened_catalog_standard_needs_review(tmp_path: Path) -> None:
    gate = zdd(tmp_path, 'thresholds: {duration_s: "< 1000h"}')
    (decision,) = decide_all([gate], zdd_results(gate), WaiverSet.empty())
    assert decision.verdict is GateVerdict.HUMAN_REVIEW_REQUIRED
    assert "deployment-time loosened standard duration_s < 5m to < 1000h" in decision.reason


@pytest.mark.parametrize("tighter", ['"< 2m"', '"<= 299s"', '"== 1m"', "60"])
def test_tightened_standard_stays_free(tmp_path: Path, tighter: str) -> None:
    gate = zdd(tmp_path, f"thresholds: {{duration_s: {tighter}}}")
    (decision,) = decide_all([gate], zdd_results(gate, duration_s=60.0), WaiverSet.empty())
    assert decision.verdict is GateVerdict.PASSED, decision.reason


def test_loosened_percentage_needs_review(tmp_path: Path) -> None:
    text = (
        f"gate: {ZDD}\ncriteria:\n  deployment-reliability:\n"
        '    thresholds: {success_ratio: ">= 50%"}\n'
    )
    gate = loader_for(tmp_path, {ZDD: text}).load(ZDD)
    (decision,) = decide_all([gate], zdd_results(gate), WaiverSet.empty())
    assert decision.verdict is GateVerdict.HUMAN_REVIEW_REQUIRED
    assert "success_ratio >= 99.9% to >= 50%" in decision.reason


@pytest.mark.parametrize(
    ("level", "run_level", "verdict"),
    [
        ("90%", 0.95, GateVerdict.HUMAN_REVIEW_REQUIRED),  # the gate file lowers it
        (None, 0.90, GateVerdict.HUMAN_REVIEW_REQUIRED),  # gate_confidence lowers it
        # raising it needs no review, but more evidence: 3000 of 3000 show only 99.84 % at 99 %
        ("99%", 0.95, GateVerdict.INCONCLUSIVE),
        (None, 0.95, GateVerdict.PASSED),
    ],
)
def test_lowered_confidence_of_a_catalog_standard_needs_review(
    tmp_path: Path, level: str | None, run_level: float, verdict: GateVerdict
) -> None:
    text = f"gate: {ZDD}\ncriteria:\n  deployment-reliability:\n"
    text += f"    confidence: {level}\n" if level else '    title: "Deploys succeed"\n'
    gate = loader_for(tmp_path, {ZDD: text}).load(ZDD)
    results = zdd_results(gate)
    (decision,) = decide_all([gate], results, WaiverSet.empty(), confidence=run_level)
    assert decision.verdict is verdict, decision.reason
    if verdict is GateVerdict.HUMAN_REVIEW_REQUIRED:
        assert "deployment-reliability loosened standard confidence 95% to 90%" in (decision.reason)
    else:
        assert "loosened" not in decision.reason


def test_a_higher_confidence_can_leave_a_standard_unproven(tmp_path: Path) -> None:
    """3000 of 3000 show 99.9 % at 95 % confidence, not at 99.9 %."""
    text = f"gate: {ZDD}\ncriteria:\n  deployment-reliability:\n    confidence: 99.9%\n"
    gate = loader_for(tmp_path, {ZDD: text}).load(ZDD)
    (decision,) = decide_all([gate], zdd_results(gate), WaiverSet.empty())
    assert decision.verdict is GateVerdict.INCONCLUSIVE
    assert "3000/3000 deploys successful: >= 0.9977 at 99.9 % confidence" in decision.reason


@pytest.mark.parametrize("bad", ["100%", "40%", "high", "true"])
def test_a_bad_confidence_is_a_load_error_naming_its_line(tmp_path: Path, bad: str) -> None:
    text = f"gate: {ZDD}\ncriteria:\n  deployment-reliability:\n    confidence: {bad}\n"
    with pytest.raises(SourceError, match=r":4: .*confidence"):
        loader_for(tmp_path, {ZDD: text}).load(ZDD)


def test_loosened_standard_in_a_checks_expect_needs_review(tmp_path: Path) -> None:
    gate = zdd(tmp_path, '- command: "true"\n  expect: {duration_s: "< 1000h"}')
    (spec,) = gate.criteria["deployment-time"].checks
    (decision,) = decide_all([gate], zdd_results(gate), WaiverSet.empty())
    assert decision.verdict is GateVerdict.HUMAN_REVIEW_REQUIRED
    assert f"duration_s < 5m to < 1000h in {spec.id}" in decision.reason
    # a waiver of that check covers it
    waiver = Waiver(ZDD, "deployment-time", spec.id, "slow staging box, ok", "ops", TODAY, "w")
    (decision,) = decide_all([gate], zdd_results(gate), WaiverSet([waiver], []))
    assert decision.verdict is GateVerdict.PASSED, decision.reason


def test_waiver_of_the_criterion_covers_a_loosened_standard(tmp_path: Path) -> None:
    gate = zdd(tmp_path, 'thresholds: {duration_s: "< 1000h"}')
    waiver = Waiver(ZDD, "deployment-time", None, "big migration this once", "cto", TODAY, "w")
    (decision,) = decide_all([gate], zdd_results(gate), WaiverSet([waiver], []))
    assert decision.verdict is GateVerdict.PASSED
    by_id = {c.criterion.id: c for c in decision.criteria}
    assert by_id["deployment-time"].reason.startswith(
        "loosened standard approved: duration_s < 5m to < 1000h (waiver "
    )


def test_loosened_standard_through_pytest(project: GateProject) -> None:
    """The issue's example: ``< 5m`` overridden to ``< 1000h`` passed without review."""
    project.pytester.makeini("[pytest]\n")
    project.gate(
        ZDD,
        f"""
        gate: {ZDD}
        criteria:
          deployment-time:
            thresholds: {{duration_s: "< 1000h"}}
            checks:
              - stand_in: {{duration_s: 1, version_changed: 1}}
        """,
    )
    project.pytester.makepyfile(
        test_deploy=f"""
        import pytest

        @pytest.mark.gate("{ZDD}", criterion="deployment-reliability")
        def test_reliability(gate_check):
            gate_check("stand_in", {{"success_ratio": [3000, 3000], "version_changed": 1}})

        @pytest.mark.gate("{ZDD}", criterion="zero-data-loss")
        def test_data(gate_check):
            gate_check("stand_in", {{"lost_writes": 0, "version_changed": 1}})

        @pytest.mark.gate("{ZDD}", criterion="automated-rollback")
        def test_rollback(gate_check):
            gate_check("stand_in", {{"recovery_s": 20}})

        @pytest.mark.gate("{ZDD}", criterion="real-time-validation")
        def test_availability(gate_check):
            gate_check("stand_in", {{"availability_pct": [3000, 3000], "version_changed": 1}})
        """
    )
    project.stand_in()
    result = project.run(f"--gate={ZDD}")
    assert result.ret == 6
    summary = project.gate_summary(ZDD)
    assert summary["verdict"] == "HUMAN_REVIEW_REQUIRED"
    assert "duration_s < 5m to < 1000h" in json.dumps(summary)


# -- libyaml and pure Python give the same documents, lines and messages ------------------------


def shape(value: Any) -> Any:
    if isinstance(value, LineDict):
        return ("map", value.line, {k: (value.key_lines[k], shape(v)) for k, v in value.items()})
    if isinstance(value, LineList):
        return (
            "seq",
            value.line,
            [(n, shape(v)) for n, v in zip(value.item_lines, value, strict=True)],
        )
    return (type(value).__name__, value)


def read_both(path: Path) -> tuple[Any, Any]:
    found = []
    for fast in (True, False):
        try:
            found.append(shape(load_yaml(path, fast=fast)))
        except SourceError as exc:
            found.append(("error", str(exc)))
    return found[0], found[1]


@pytest.mark.skipif(yamlsrc._CLoader is None, reason="PyYAML was built without libyaml")
@pytest.mark.parametrize("path", CORPUS, ids=[f"{p.parent.name}/{p.name}" for p in CORPUS])
def test_libyaml_and_python_read_alike(path: Path) -> None:
    fast, pure = read_both(path)
    assert fast == pure


def test_libyaml_is_used_when_present() -> None:
    import yaml

    assert (yamlsrc._CLoader is not None) is bool(getattr(yaml, "__with_libyaml__", False))


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_gate_errors_alike_on_both_parsers(
    tmp_path: Path, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "gates"
    folder.mkdir()
    name = path.read_text("utf-8").split("\n", 1)[0].removeprefix("# as: ")
    (folder / f"{name}.yaml").write_bytes(path.read_bytes())
    messages = []
    for loader in (yamlsrc._CLoader, None):
        monkeypatch.setattr(yamlsrc, "_CLoader", loader)
        with pytest.raises(SourceError) as info:
            GateLoader([folder], environ={}).load(name)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# -- the compiled fast path never accepts what jsonschema refuses ---------------------------------

SCHEMA_KEYS = [
    "gate", "title", "criteria", "checks", "command", "expect", "exit_status", "duration_s",
    "stdout_contains", "timeout", "id", "required", "human_review", "thresholds", "vars",
    "includes", "status", "phase", "waivers", "criterion", "justification", "approved_by",
    "expires", "check", "x", "Bad", "smoke", "env", "cwd", "shell",
]  # fmt: skip
DOCS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "a", "true", "< 5m", "smoke", "2030-01-01", "PRODUCTION_READY", "A b"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(SCHEMA_KEYS), children, max_size=5)
    ),
    max_leaves=20,
)


def _schemas() -> list[dict[str, Any]]:
    from pytest_fwgates.checks import CheckRegistry
    from pytest_fwgates.schema import check_schema, gate_schema, waivers_schema

    registry = CheckRegistry()
    found = [check_schema(registry.get(name)) for name in registry.names()]
    return [*found, gate_schema(), gate_schema(registry.classes()), waivers_schema()]


SCHEMAS = _schemas()


STRINGS = st.sampled_from(["", "a", "smoke", "a-b", "Bad_Name", "< 5m", "2030-01-01", "x" * 12])


@st.composite
def near(draw: st.DrawFn, schema: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """A document shaped by ``schema``: mostly valid, now and then a wrong value or key."""
    if depth > 6 or not isinstance(schema, dict) or draw(st.integers(0, 19)) == 0:
        return draw(DOCS)
    if "$ref" in schema:
        return draw(near(root["$defs"][schema["$ref"].split("/")[-1]], root, depth + 1))
    if "anyOf" in schema:
        return draw(near(draw(st.sampled_from(schema["anyOf"])), root, depth + 1))
    if "if" in schema:
        return draw(near(schema[draw(st.sampled_from(["then", "else"]))], root, depth + 1))
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]))
    kinds = schema.get("type", "object")
    kind = draw(st.sampled_from(kinds)) if isinstance(kinds, list) else kinds
    if kind == "object":
        properties = schema.get("properties", {})
        names = draw(st.lists(st.sampled_from(sorted(properties) or ["x"]), max_size=4))
        names = [*schema.get("required", []), *names]
        if draw(st.booleans()) and not properties:
            names.append(draw(st.sampled_from(["smoke", "Bad_Name", "a-b"])))
        extra = schema.get("additionalProperties", True)
        return {name: draw(near(properties.get(name, extra), root, depth + 1)) for name in names}
    if kind == "array":
        return draw(st.lists(near(schema.get("items", True), root, depth + 1), max_size=3))
    if kind == "string":
        return draw(STRINGS)
    if kind == "boolean":
        return draw(st.booleans())
    if kind in ("number", "integer"):
        return draw(st.integers(-3, 100) | st.floats(-1, 100, allow_nan=False))
    return draw(DOCS)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_fast_path_accepts_only_what_jsonschema_accepts(data: st.DataObject) -> None:
    import jsonschema

    from pytest_fwgates.schema import fast_valid

    schema = data.draw(st.sampled_from(SCHEMAS))
    document = data.draw(near(schema, schema) | DOCS)
    valid = jsonschema.Draft202012Validator(schema).is_valid(document)
    fast = fast_valid(schema, document)
    assert fast is None or (fast is True and valid)


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        ({"type": "integer"}, True),
        ({"type": "number"}, False),
        ({"enum": [1]}, True),
        ({"const": 0}, False),
        ({"multipleOf": 2}, 3),
        ({"not": {"type": "string"}}, "a"),
        ({"type": "object", "patternProperties": {"^x": False}}, {"x": 1}),
        ({"items": {"type": "string"}, "uniqueItems": True}, ["a", "a"]),
        ({"minLength": 2}, "é"),
        ({"pattern": "^a$"}, "ab"),
        ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"b": "x"}),
        ({"$ref": "https://example.invalid/schema"}, {}),
    ],
)
def test_fast_path_refuses_or_defers(schema: dict[str, Any], document: Any) -> None:
    from pytest_fwgates.schema import fast_valid

    assert fast_valid(schema, document) is None


@pytest.mark.parametrize("path", CORPUS[-8:], ids=lambda p: p.name)
def test_fast_path_accepts_the_catalog(path: Path) -> None:
    from pytest_fwgates.schema import fast_valid, gate_schema

    assert fast_valid(gate_schema(), load_yaml(path)) is True


def test_waiver_text_is_one_printable_line(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    entry = "  - {gate: a, criterion: b, approved_by: x, expires: '2030-01-01',"
    fake = f'{entry} justification: "fine\\r\\noverall: PASSED"}}\n'
    folded = (
        "  - gate: a\n    criterion: b\n    approved_by: x\n    expires: '2030-01-01'\n"
        "    justification: >\n      folded over\n      two lines\n"
    )
    path.write_text(
        f'waivers:\n{fake}{entry} check: "\\e[2Jx", justification: long enough text}}\n{folded}',
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as info:
        load_waivers(path)
    assert str(info.value) == f"{path}:3: check: must be one line of printable text"
    path.write_text(f"waivers:\n{fake}{folded}", encoding="utf-8")
    first, second = load_waivers(path).active
    # a line break in a justification cannot start a line of its own in a report
    assert first.justification == "fine overall: PASSED"
    assert second.justification == "folded over two lines"
