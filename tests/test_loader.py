"""GateLoader: catalog, user files that extend it, merge rules, includes, vars, check specs.

The first part calls the loader directly; the second runs gates through pytester to prove
that gate folders are found and that variables cannot add shell commands.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_fwgates.loader import GateLoader, catalog_dir
from pytest_fwgates.model import CheckSpec, Gate, Source
from pytest_fwgates.schema import gate_schema, validate
from pytest_fwgates.thresholds import Threshold, parse
from pytest_fwgates.yamlsrc import MAX_BYTES, LineDict, LineList, SourceError, load_yaml

PR = "production-readiness"
CATALOG = {
    "production-readiness": [
        "infrastructure-validation",
        "security-compliance",
        "performance-verification",
        "monitoring-operational",
        "rollback-capability",
    ],
    "zero-downtime-deployment": [
        "deployment-reliability",
        "deployment-time",
        "zero-data-loss",
        "automated-rollback",
        "real-time-validation",
    ],
    "security-compliance": [
        "security-scanning",
        "compliance-validation",
        "access-control",
        "data-protection",
        "audit-trail",
    ],
    "operations-handoff": [
        "production-readiness",
        "production-deployment",
        "monitoring-active",
        "security-controls",
        "performance-baseline",
        "incident-response",
        "operations-documentation",
        "handoff-deliverables",
    ],
    "operations-excellence": [
        "system-availability",
        "incident-response",
        "performance-optimization",
        "cost-management",
        "security-operations",
    ],
    "predictive-operations": [
        "anomaly-detection",
        "incident-prevention",
        "capacity-planning",
        "performance-prediction",
    ],
}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def loader_for(tmp_path: Path, files: dict[str, str], **kwargs: Any) -> GateLoader:
    folder = tmp_path / "gates"
    for name, text in files.items():
        write(folder, name, text)
    kwargs.setdefault("environ", {})
    return GateLoader([folder], **kwargs)


def load(tmp_path: Path, text: str, name: str = PR, **kwargs: Any) -> Gate:
    return loader_for(tmp_path, {name: text}, **kwargs).load(name)


def load_error(tmp_path: Path, text: str, name: str = PR, **kwargs: Any) -> SourceError:
    with pytest.raises(SourceError) as info:
        load(tmp_path, text, name, **kwargs)
    return info.value


def only_check(gate: Gate) -> CheckSpec:
    (spec,) = gate.checks()
    return spec


# -- the catalog ---------------------------------------------------------------------------


def test_catalog_gates_and_criteria() -> None:
    loader = GateLoader([], environ={})
    handoff_gates = ["deployment-handoff-validation", "development-handoff-validation"]
    assert loader.known() == sorted([*CATALOG, *handoff_gates])
    for name, criteria in CATALOG.items():
        gate = loader.load(name)
        assert gate.in_catalog
        assert list(gate.criteria) == criteria, name
        assert gate.checks() == []
        assert gate.files == [catalog_dir() / f"{name}.yaml"]


def test_catalog_files_are_valid_and_strict() -> None:
    for path in sorted(catalog_dir().glob("*.yaml")):
        doc = load_yaml(path)
        assert validate(doc, gate_schema()) is None, path
        assert doc["gate"] == path.stem


def test_catalog_standards_and_advisory_criteria() -> None:
    loader = GateLoader([], environ={})
    zdd = loader.load("zero-downtime-deployment").criteria
    switched = {"version_changed": "== 1"}  # a deploy must show a version switch
    assert zdd["deployment-reliability"].standards == {"success_ratio": ">= 99.9%", **switched}
    assert zdd["deployment-time"].standards == {"duration_s": "< 5m", **switched}
    assert zdd["zero-data-loss"].standards == {"lost_writes": "== 0", **switched}
    assert zdd["automated-rollback"].standards == {"recovery_s": "< 2m"}
    assert zdd["real-time-validation"].standards == {"availability_pct": ">= 99.9%", **switched}
    excellence = loader.load("operations-excellence").criteria
    assert excellence["system-availability"].standards == {"availability_pct": "> 99.9%"}
    assert excellence["incident-response"].standards == {"mttr_s": "< 2m"}
    assert not excellence["cost-management"].required
    assert all(c.required for c in loader.load(PR).criteria.values())
    statuses = {name: loader.load(name).status for name in CATALOG}
    assert statuses[PR] == "PRODUCTION_READY"
    assert statuses["operations-handoff"] == "OPERATIONS_HANDOFF_READY"


def test_catalog_includes() -> None:
    loader = GateLoader([], environ={})
    handoff = loader.load("operations-handoff")
    assert handoff.includes == [PR]
    included = handoff.criteria[PR]
    assert included.include == PR and included.checks == []
    assert loader.closure(["operations-handoff"]) == [PR, "operations-handoff"]
    assert loader.closure([PR, "operations-handoff", PR]) == [PR, "operations-handoff"]


def test_unknown_gate_is_a_key_error_with_a_hint() -> None:
    loader = GateLoader([], environ={})
    with pytest.raises(KeyError):
        loader.load("production-readyness")
    assert "did you mean 'production-readiness'?" in loader.unknown_gate_message(
        "production-readyness"
    )


# -- a user file extends a catalog gate ----------------------------------------------------


def test_user_file_adds_checks_to_catalog_criteria(tmp_path: Path) -> None:
    gate = load(
        tmp_path,
        """
        gate: production-readiness
        criteria:
          infrastructure-validation:
            - command: "true"
            - command: test -d /
          rollback-capability:
            checks:
              - command: ./rollback.sh
        """,
    )
    assert gate.in_catalog
    assert gate.files == [catalog_dir() / f"{PR}.yaml", tmp_path / "gates" / f"{PR}.yaml"]
    assert list(gate.criteria) == CATALOG[PR]
    infra = gate.criteria["infrastructure-validation"]
    assert [c.id for c in infra.checks] == ["command[true]", "command[test -d /]"]
    assert [c.source.line for c in infra.checks] == [4, 5]
    assert gate.criteria["rollback-capability"].checks[0].source.line == 8
    assert gate.title == "Production readiness"
    assert gate.status == "PRODUCTION_READY"


def test_user_file_adds_a_criterion_as_a_mapping_with_a_title(tmp_path: Path) -> None:
    gate = load(
        tmp_path,
        """
        gate: production-readiness
        criteria:
          backups-restorable:
            title: Last night's backup restores
            required: false
            thresholds:
              duration_s: "< 10m"
            checks:
              - command: ./restore-test.sh
        """,
    )
    assert list(gate.criteria)[-1] == "backups-restorable"
    added = gate.criteria["backups-restorable"]
    assert added.title == "Last night's backup restores"
    assert not added.required
    assert added.standards == {"duration_s": "< 10m"}
    assert added.overrides == {}
    assert only_check(gate).thresholds["duration_s"] == Threshold("<", 10.0, "m")


def test_user_file_may_change_title_and_make_advisory_required(tmp_path: Path) -> None:
    gate = load(
        tmp_path,
        """
        gate: operations-excellence
        title: Our operations excellence
        criteria:
          cost-management:
            required: true
            description: we hold ourselves to it
        """,
        name="operations-excellence",
    )
    assert gate.title == "Our operations excellence"
    assert gate.criteria["cost-management"].required
    assert gate.criteria["cost-management"].description == "we hold ourselves to it"


def test_criterion_threshold_override_is_recorded(tmp_path: Path) -> None:
    gate = load(
        tmp_path,
        """
        gate: zero-downtime-deployment
        criteria:
          deployment-time:
            thresholds:
              duration_s: "< 10m"
            checks:
              - command: ./deploy.sh
        """,
        name="zero-downtime-deployment",
    )
    criterion = gate.criteria["deployment-time"]
    assert criterion.standards == {"duration_s": "< 5m", "version_changed": "== 1"}
    assert criterion.overrides == {"duration_s": ("< 5m", "< 10m")}
    assert criterion.thresholds_in_force() == {"duration_s": "< 10m", "version_changed": "== 1"}
    spec = only_check(gate)
    assert spec.thresholds["duration_s"] == parse("< 10m")
    assert spec.overrides == {"duration_s": ("< 5m", "< 10m")}


@pytest.mark.parametrize(
    ("threshold", "expect"),
    [("<5m", "< 5 m"), ("< 300s", "< 300000ms")],
    ids=["same-threshold", "equal-bound-in-another-unit"],
)
def test_an_equal_threshold_is_no_override(tmp_path: Path, threshold: str, expect: str) -> None:
    gate = load(
        tmp_path,
        f"""
        gate: zero-downtime-deployment
        criteria:
          deployment-time:
            thresholds: {{duration_s: "{threshold}"}}
            checks:
              - command: ./deploy.sh
                expect: {{duration_s: "{expect}"}}
        """,
        name="zero-downtime-deployment",
    )
    assert gate.criteria["deployment-time"].overrides == {}
    assert only_check(gate).overrides == {}


def test_yaml_and_yml_for_one_gate_is_an_error(tmp_path: Path) -> None:
    text = "gate: smoke\ncriteria:\n  up: [{command: 'true'}]\n"
    folder = tmp_path / "gates"
    folder.mkdir()
    (folder / "smoke.yaml").write_text(text)
    (folder / "smoke.yml").write_text(text)
    loader = GateLoader([folder], environ={})
    with pytest.raises(SourceError, match=r"also defined by smoke\.yaml"):
        loader.load("smoke")


def test_standard_applies_to_checks_that_measure_it(tmp_path: Path) -> None:
    gate = load(
        tmp_path,
        """
        gate: zero-downtime-deployment
        criteria:
          deployment-time:
            - command: ./deploy.sh
        """,
        name="zero-downtime-deployment",
    )
    spec = only_check(gate)
    assert spec.thresholds == {"duration_s": parse("< 5m"), "exit_status": parse("== 0")}
    assert spec.overrides == {}


def test_check_expect_override_of_a_standard_is_recorded(tmp_path: Path) -> None:
    gate = load(
        tmp_path,
        """
        gate: zero-downtime-deployment
        criteria:
          deployment-time:
            - command: ./deploy.sh
              expect: {duration_s: "< 3m"}
        """,
        name="zero-downtime-deployment",
    )
    spec = only_check(gate)
    assert spec.thresholds["duration_s"] == parse("< 3m")
    assert spec.overrides == {"duration_s": ("< 5m", "< 3m")}
    assert gate.criteria["deployment-time"].overrides == {}


def test_human_review_cannot_be_switched_off(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    write(
        catalog,
        "reviewed",
        """
        gate: reviewed
        criteria:
          sign-off:
            title: A person signs off
            human_review: true
        """,
    )
    folder = tmp_path / "gates"
    path = write(
        folder,
        "reviewed",
        """
        gate: reviewed
        criteria:
          sign-off:
            human_review: false
        """,
    )
    loader = GateLoader([folder], catalog=catalog, environ={})
    with pytest.raises(SourceError) as info:
        loader.load("reviewed")
    assert (info.value.path, info.value.line) == (path, 4)
    assert "needs human review by the catalog" in info.value.message


def test_two_gate_folders_both_extend(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, PR, "gate: production-readiness\ncriteria:\n  rollback-capability:\n"
          "    - command: one\n")  # fmt: skip
    write(second, PR, "gate: production-readiness\ncriteria:\n  rollback-capability:\n"
          "    - command: two\n")  # fmt: skip
    loader = GateLoader([first, second, first], environ={})
    assert loader.user_files(PR) == [first / f"{PR}.yaml", second / f"{PR}.yaml"]
    gate = loader.load(PR)
    assert [c.target for c in gate.checks()] == ["one", "two"]
    assert loader.load(PR) is gate  # cached


def test_override_in_a_later_file_holds_earlier_checks(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    name = "zero-downtime-deployment"
    write(
        first,
        name,
        """
        gate: zero-downtime-deployment
        criteria:
          deployment-time:
            - command: ./deploy.sh
            - command: ./own.sh
              expect: {duration_s: "< 5m"}
        """,
    )
    write(
        second,
        name,
        """
        gate: zero-downtime-deployment
        criteria:
          deployment-time:
            thresholds: {duration_s: "< 3m"}
            checks:
              - command: ./deploy2.sh
        """,
    )
    criterion = GateLoader([first, second], environ={}).load(name).criteria["deployment-time"]
    deploy, own, deploy2 = criterion.checks
    assert criterion.overrides == {"duration_s": ("< 5m", "< 3m")}
    assert deploy.thresholds["duration_s"] == deploy2.thresholds["duration_s"] == parse("< 3m")
    assert deploy.overrides == deploy2.overrides == {"duration_s": ("< 5m", "< 3m")}
    # a check's own expect wins over the criterion's
    assert own.thresholds["duration_s"] == parse("< 5m")
    assert own.overrides == {}


def test_catalog_folder_given_as_user_folder_is_not_loaded_twice() -> None:
    loader = GateLoader([catalog_dir()], environ={})
    assert loader.user_files(PR) == []
    assert loader.load(PR).files == [catalog_dir() / f"{PR}.yaml"]


def test_duplicate_check_id_across_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, PR, "gate: production-readiness\ncriteria:\n  rollback-capability:\n"
          "    - command: same\n")  # fmt: skip
    path = write(second, PR, "gate: production-readiness\ncriteria:\n  rollback-capability:\n"
                 "    - command: same\n")  # fmt: skip
    with pytest.raises(SourceError) as info:
        GateLoader([first, second], environ={}).load(PR)
    assert (info.value.path, info.value.line) == (path, 4)
    assert "duplicate check id 'command[same]'" in info.value.message
    assert f"{first / PR}.yaml:4" in info.value.message


# -- user gates and includes ---------------------------------------------------------------


def test_user_gate_not_in_catalog(tmp_path: Path) -> None:
    gate = load(
        tmp_path,
        """
        gate: my-gate
        title: Mine
        phase: 9
        includes: [production-readiness]
        criteria:
          smoke:
            - command: "true"
        """,
        name="my-gate",
    )
    assert not gate.in_catalog
    assert (gate.title, gate.phase) == ("Mine", "9")
    assert list(gate.criteria) == [PR, "smoke"]
    assert gate.criteria[PR].include == PR


def test_user_file_adds_an_include_to_a_catalog_gate(tmp_path: Path) -> None:
    loader = loader_for(
        tmp_path,
        {
            "operations-handoff": """
                gate: operations-handoff
                includes: [production-readiness, zero-downtime-deployment]
                """,
        },
    )
    gate = loader.load("operations-handoff")
    assert gate.includes == [PR, "zero-downtime-deployment"]
    assert loader.closure(["operations-handoff"]) == [
        PR,
        "zero-downtime-deployment",
        "operations-handoff",
    ]


def test_include_cycle(tmp_path: Path) -> None:
    loader = loader_for(
        tmp_path,
        {
            "gate-a": "gate: gate-a\nincludes: [gate-b]\n",
            "gate-b": "gate: gate-b\ncriteria:\n  x:\n    - command: 'true'\nincludes: [gate-a]\n",
        },
    )
    for _ in range(2):  # a failed load is not cached
        with pytest.raises(SourceError) as info:
            loader.closure(["gate-a"])
        assert info.value.path == tmp_path / "gates" / "gate-b.yaml"
        assert info.value.line == 5
        assert info.value.message == "include cycle: gate-a -> gate-b -> gate-a"


def test_self_include(tmp_path: Path) -> None:
    error = load_error(tmp_path, "gate: gate-a\nincludes:\n  - gate-a\n", name="gate-a")
    assert (error.line, error.message) == (3, "include cycle: gate-a -> gate-a")


# -- check specs ---------------------------------------------------------------------------


def test_command_check_defaults(tmp_path: Path) -> None:
    spec = only_check(
        load(
            tmp_path,
            "gate: production-readiness\ncriteria:\n  rollback-capability:\n"
            "    - command: ./rollback.sh\n",
        )
    )
    assert spec.type == "command"
    assert spec.gate == PR and spec.criterion == "rollback-capability"
    assert spec.thresholds == {"exit_status": Threshold("==", 0.0)}
    assert spec.overrides == {}
    assert spec.timeout is None
    assert spec.source == Source(tmp_path / "gates" / f"{PR}.yaml", 4)


def test_command_check_settings(tmp_path: Path) -> None:
    spec = only_check(
        load(
            tmp_path,
            """
            gate: production-readiness
            criteria:
              rollback-capability:
                - command: ./rollback.sh
                  id: rollback-drill
                  timeout: 2m
                  expect:
                    exit_status: 3
                    duration_s: "< 90s"
                    stdout_contains: [rolled back, v1]
                    stderr_contains: warning
            """,
        )
    )
    assert spec.id == "rollback-drill"
    assert spec.timeout == 120.0
    assert spec.thresholds == {"exit_status": parse("== 3"), "duration_s": parse("< 90s")}
    assert spec.expect == {"stdout_contains": ["rolled back", "v1"], "stderr_contains": "warning"}


def test_check_id_is_from_the_resolved_target(tmp_path: Path) -> None:
    long = "echo " + "x" * 100
    gate = load(
        tmp_path,
        f"""
        gate: production-readiness
        vars:
          name: "x; touch PWNED"
        criteria:
          rollback-capability:
            - command: echo ${{name}}
            - command: "echo   a\\n   b"
            - command: {long}
            - command: {"y" * 60}
        """,
    )
    ids = [c.id for c in gate.checks()]
    assert ids[0] == "command[echo x; touch PWNED]"  # what runs, not the variable's name
    assert gate.checks()[0].target == "IFS=; echo ${FWGATES_VAR_name}"
    assert gate.checks()[0].env == {"FWGATES_VAR_name": "x; touch PWNED"}
    assert gate.checks()[0].display_target == "echo x; touch PWNED"
    assert ids[1] == "command[echo a b]"
    assert ids[2].startswith(f"command[{long[:52]}…~") and ids[2].endswith("]")
    assert len(ids[2]) == len("command[]") + 60
    assert ids[3] == f"command[{'y' * 60}]"


def test_ids_are_readable_and_hold_no_secret(tmp_path: Path) -> None:
    """Variables resolved, secrets masked, credentials removed, lists written ``a, b``."""
    environ = {
        "SHOP_API_TOKEN": "tok-0123456789abcdef",
        "SHOP_URL": "https://ops:pa55w0rd-xyz@shop.test:8443",
    }
    gate = load(
        tmp_path,
        """
        gate: production-readiness
        vars:
          url: ${env:SHOP_URL}
          token: ${env:SHOP_API_TOKEN}
        criteria:
          security-compliance:
            - http: ${url}/health?token=${token}
            - tls: ${url}
            - private_keys: [/etc/ssl/private, /srv]
          monitoring-operational:
            - prometheus: {targets: [app, node]}
              server: http://127.0.0.1:9
            - prometheus: {rules: [AppDown]}
              server: http://127.0.0.1:9
        """,
        environ=environ,
    )
    ids = [c.id for c in gate.checks()]
    assert ids[0].startswith("http[https://shop.test:8443/health?token=")
    assert ids[1] == "tls[https://shop.test:8443]"
    assert ids[2].startswith("private_keys[/etc/ssl/private, /srv]")
    assert ids[3:] == ["prometheus[targets: app, node]", "prometheus[rules: AppDown]"]
    for text in ids:
        assert "tok-0123456789abcdef" not in text and "pa55w0rd" not in text
    for text in (*ids, *(c.display_target for c in gate.checks())):
        assert "['" not in text and "${" not in text
    assert gate.checks()[3].display_target == "targets: app, node"


def test_targets_that_differ_after_the_cut_keep_two_ids(tmp_path: Path) -> None:
    """A gate file that loads with a short URL loads with a long one too: resolved targets
    that differ only after the cut are two ids (a short hash of the whole target)."""
    text = """
        gate: production-readiness
        vars: {url: "${env:SHOP_URL}"}
        criteria:
          security-compliance:
            - http: ${url}/api/v1/orders/health
            - http: ${url}/api/v1/orders/ready
        """
    for url in ("http://a.test", "https://shop-" + "x" * 60 + ".internal.example:8443"):
        ids = [c.id for c in load(tmp_path, text, environ={"SHOP_URL": url}).checks()]
        assert len(set(ids)) == 2 and all(len(i) <= len("http[]") + 60 for i in ids), ids


def test_environment_values_of_a_command_are_masked_in_its_id(tmp_path: Path) -> None:
    """A command's ``${env:...}`` values reach its id and displayed target masked, whatever
    the variable's name (they were never shown before ids were resolved); its gate variables
    are shown resolved."""
    gate = load(
        tmp_path,
        """
        gate: production-readiness
        vars: {script: ./deploy.sh}
        criteria:
          rollback-capability:
            - command: ${script} --key ${env:DEPLOY_K}
            - command: 'curl -H "X-Api= ${env:DEPLOY_K}" http://127.0.0.1:9'
            - rollback: ${script} ${env:DEPLOY_K}
              health: http://127.0.0.1:9/health
        """,
        environ={"DEPLOY_K": "zq9Xr7plmK2"},
    )
    checks = gate.checks()
    assert checks[0].id == "command[./deploy.sh --key ***]"
    assert checks[0].shown_target() == "./deploy.sh --key ***"
    for check in checks:
        assert "zq9Xr7plmK2" not in check.id + check.shown_target(), check.id


def test_expect_values_are_not_shell_quoted(tmp_path: Path) -> None:
    spec = only_check(
        load(
            tmp_path,
            """
            gate: production-readiness
            vars: {word: "a b; c"}
            criteria:
              rollback-capability:
                - command: echo ${word}
                  expect: {stdout_contains: "${word}"}
            """,
        )
    )
    assert spec.target == "IFS=; echo ${FWGATES_VAR_word}"
    assert spec.env == {"FWGATES_VAR_word": "a b; c"}
    assert spec.expect == {"stdout_contains": "a b; c"}


def test_spec_from_mapping() -> None:
    loader = GateLoader([], environ={})
    where = Source(Path("test_x.py"), 7)
    spec = loader.spec_from_mapping(
        None, None, {"command": "true", "expect": {"exit_status": 0}}, where
    )
    assert spec.id == "command[true]" and spec.source == where
    for bad in ({}, {"comand": "true"}, {"command": 5}, {"command": "x", "bogus": 1}):
        with pytest.raises(SourceError) as info:
            loader.spec_from_mapping(None, None, bad, where)
        assert info.value.line == 7


# -- variables -----------------------------------------------------------------------------

VARS_FILE = """
    gate: production-readiness
    vars:
      host: ${env:TARGET_HOST:-localhost}
      port: 8080
      debug: false
      url: http://${host}:${port}
      token: ${env:API_TOKEN:-none}
    criteria:
      monitoring-operational:
        - command: curl ${url}/metrics --debug=${debug}
          expect:
            stdout_contains: ${url}
"""


def test_vars_and_env(tmp_path: Path) -> None:
    spec = only_check(load(tmp_path, VARS_FILE, environ={"TARGET_HOST": "web1"}))
    assert spec.display_target == "curl http://web1:8080/metrics --debug=false"
    assert spec.expect == {"stdout_contains": "http://web1:8080"}


def test_env_default(tmp_path: Path) -> None:
    spec = only_check(load(tmp_path, VARS_FILE, environ={}))
    assert spec.display_target == "curl http://localhost:8080/metrics --debug=false"


def test_gate_var_wins_and_is_usable_in_vars(tmp_path: Path) -> None:
    spec = only_check(
        load(tmp_path, VARS_FILE, environ={"TARGET_HOST": "web1"}, cli_vars={"port": "9"})
    )
    assert spec.display_target == "curl http://web1:9/metrics --debug=false"
    spec = only_check(load(tmp_path, VARS_FILE, cli_vars={"url": "http://x"}))
    assert spec.display_target == "curl http://x/metrics --debug=false"
    spec = only_check(
        load(
            tmp_path,
            "gate: production-readiness\nvars:\n  url: http://${host}/\ncriteria:\n"
            "  monitoring-operational:\n    - command: curl ${url}\n",
            cli_vars={"host": "given"},
        )
    )
    assert spec.display_target == "curl http://given/"


def test_secret_vars_are_redacted(tmp_path: Path) -> None:
    loader = loader_for(tmp_path, {PR: VARS_FILE}, environ={"API_TOKEN": "s3cr3t-value"})
    loader.load(PR)
    assert "s3cr3t-value" not in loader.redactor.text("token s3cr3t-value sent")


def test_var_order_matters(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "gate: production-readiness\nvars:\n  url: ${host}/x\n  host: h\n",
    )
    assert error.line == 3
    assert "undefined variable 'host'" in error.message


def test_threshold_from_a_variable(tmp_path: Path) -> None:
    spec = only_check(
        load(
            tmp_path,
            """
            gate: production-readiness
            vars: {limit: "< 300ms"}
            criteria:
              performance-verification:
                thresholds: {duration_s: "${limit}"}
                checks:
                  - command: ./bench.sh
            """,
        )
    )
    assert spec.thresholds["duration_s"] == Threshold("<", 300.0, "ms")


# -- YAML with line numbers ----------------------------------------------------------------


def yaml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_lines_of_keys_and_items(tmp_path: Path) -> None:
    doc = load_yaml(yaml_file(tmp_path, "a: 1\nb:\n  - x\n  -\n    c: 2\nd: 2020-01-01\n"))
    assert isinstance(doc, LineDict) and doc.line == 1
    assert doc.line_of("b") == 2 and doc.line_of("missing") == 1
    assert isinstance(doc["b"], LineList)
    assert doc["b"].line_of(0) == 3 and doc["b"].line_of(1) == 5
    assert doc["d"] == "2020-01-01"


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    doc = load_yaml(
        yaml_file(
            tmp_path,
            """
            base: &base {command: "true", id: one, timeout: 5}
            other:
              <<: *base
              id: two
            """,
        )
    )
    assert doc["other"] == {"command": "true", "id": "two", "timeout": 5}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a' (first at line 1)"),
        ("x: &x {a: 1}\ny:\n  <<: *x\n  a: 2\n  a: 3\n", 5, "duplicate key 'a'"),
        ("a: &a [*a]\n", 1, "an alias refers to itself"),
        ("a: !!python/object/apply:os.system ['touch PWNED']\n", 1, "YAML syntax error"),
        ("a: !!int abc\n", 1, "cannot read !!int"),
        ("a: !!bool maybe\n", 1, "cannot read !!bool"),
        ("a:\n  b: " + "1" * 5000 + "\n", 2, "cannot read !!int"),
        ("a: [\n", 2, "YAML syntax error"),
    ],
)
def test_yaml_errors(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(SourceError) as info:
        load_yaml(yaml_file(tmp_path, text))
    assert info.value.line == line
    assert message in info.value.message
    assert not (tmp_path / "PWNED").exists()


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 9):
        text += f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]\n"
    with pytest.raises(SourceError, match="once aliases are expanded"):
        load_yaml(yaml_file(tmp_path, text))


LIMIT = sys.getrecursionlimit()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "not UTF-8 text"),
        # every level of nesting costs the parser at least one frame
        (b"a: " + b"[" * LIMIT + b"]" * LIMIT, "nested too deeply"),
        (b"#" * (MAX_BYTES + 1), "file larger than"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        load_yaml(path)


# -- through pytest: folders, variables that try to add commands ---------------------------

# hypothesis' plugin costs a second per in-process run; these runs do not need it
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
GATE_ARGS = ("--gate=production-readiness", *QUIET)


def summary(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (pytester.path / "reports" / "summary.json").read_text(encoding="utf-8")
    )
    return data


def user_gate(pytester: pytest.Pytester, folder: str = "gates", name: str = "my-gate") -> None:
    (pytester.path / folder).mkdir(parents=True, exist_ok=True)
    (pytester.path / folder / f"{name}.yaml").write_text(
        f"gate: {name}\ncriteria:\n  smoke:\n    - command: 'true'\n", encoding="utf-8"
    )


def test_default_folder_is_gates_under_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    user_gate(pytester)
    result = pytester.runpytest("--gate=my-gate", *QUIET)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert summary(pytester)["verdict"] == "PASSED"


def test_gate_dir_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    user_gate(pytester, folder="quality")
    result = pytester.runpytest("--gate=my-gate", "--gate-dir=quality", *QUIET)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result = pytester.runpytest("--gate=my-gate", *QUIET)
    assert result.ret == 4  # not found in gates/: a usage error
    result.stderr.fnmatch_lines(["*unknown gate 'my-gate'*"])


def test_gate_dirs_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngate_dirs = ci/gates\n")
    user_gate(pytester, folder="ci/gates")
    (pytester.path / "gates").mkdir()
    result = pytester.runpytest("--gate=my-gate", *QUIET)
    result.assert_outcomes(passed=1)
    assert result.ret == 0


def test_catalog_gate_without_user_file_fails_closed(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("--gate=zero-downtime-deployment", *QUIET)
    assert result.ret == 1
    assert summary(pytester)["verdict"] == "FAILED"
    result.stdout.fnmatch_lines(["*deployment-time*NOT_EVALUATED*"])


def test_operations_handoff_includes_production_readiness(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makefile(
        ".yaml",
        **{
            "gates/production-readiness": """
                gate: production-readiness
                criteria:
                  rollback-capability:
                    - command: 'true'
            """,
            "gates/operations-handoff": """
                gate: operations-handoff
                criteria:
                  handoff-deliverables:
                    - command: 'true'
            """,
        },
    )
    result = pytester.runpytest("--gate=operations-handoff", *QUIET)
    result.assert_outcomes(passed=2)
    gates = {g["name"]: g for g in summary(pytester)["gates"]}
    assert set(gates) == {PR, "operations-handoff"}
    assert gates[PR]["verdict"] == "FAILED"
    included = gates["operations-handoff"]["criteria"][0]
    assert (included["id"], included["verdict"]) == (PR, "FAIL")
    assert result.ret == 1


def test_user_gates_compose_through_includes(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    user_gate(pytester, name="base-gate")
    pytester.makefile(
        ".yaml",
        **{
            "gates/top-gate": """
                gate: top-gate
                includes: [base-gate]
                criteria:
                  own:
                    - command: 'true'
            """,
        },
    )
    result = pytester.runpytest("--gate=top-gate", *QUIET)
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    assert [g["name"] for g in summary(pytester)["gates"]] == ["base-gate", "top-gate"]


SHELL_ATTACKS = [
    "x; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; echo '",
    '"; touch PWNED; echo "',
    "x && touch PWNED",
    "x | touch PWNED",
]


@pytest.mark.parametrize("value", SHELL_ATTACKS)
def test_variable_cannot_add_commands(pytester: pytest.Pytester, value: str) -> None:
    pytester.makeini("[pytest]\n")
    quoted = json.dumps(value)
    pytester.makefile(
        ".yaml",
        **{
            "gates/production-readiness": f"""
                gate: production-readiness
                vars:
                  v: {quoted}
                criteria:
                  infrastructure-validation:
                    - command: echo ${{v}}
                      expect: {{stdout_contains: {quoted}}}
                    - command: echo "quoted ${{v}}"
                      expect: {{stdout_contains: {json.dumps("quoted " + value)}}}
                    - command: sh -c 'echo "single ${{v}}"'
                      expect: {{stdout_contains: {json.dumps("single " + value)}}}
                    - command: echo "$(echo "${{v}}")"
                      expect: {{stdout_contains: {quoted}}}
                  rollback-capability:
                    - command: echo "${{v}}"; exit 3
            """,
        },
    )
    result = pytester.runpytest(*GATE_ARGS)
    result.assert_outcomes(passed=4, failed=1)
    assert not (pytester.path / "PWNED").exists()
    # the failed check shows what the command printed: the value, literally
    result.stdout.fnmatch_lines(["*exit_status = 3*", f"*stdout = {value.replace('[', '[[]')}"])
    assert "Traceback" not in result.stdout.str()


def test_gate_var_cannot_add_commands(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makefile(
        ".yaml",
        **{
            "gates/production-readiness": """
                gate: production-readiness
                vars: {v: harmless}
                criteria:
                  infrastructure-validation:
                    - command: echo "${v}" ${v}
                      expect: {stdout_contains: "$(touch PWNED) $(touch PWNED)"}
            """,
        },
    )
    result = pytester.runpytest(*GATE_ARGS, "--gate-var", "v=$(touch PWNED)")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "PWNED").exists()


def test_env_var_cannot_add_commands(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWGATES_TEST_VALUE", "`touch PWNED`; touch PWNED")
    pytester.makeini("[pytest]\n")
    pytester.makefile(
        ".yaml",
        **{
            "gates/production-readiness": """
                gate: production-readiness
                criteria:
                  infrastructure-validation:
                    - command: echo ${env:FWGATES_TEST_VALUE}
                      expect: {stdout_contains: "`touch PWNED`; touch PWNED"}
            """,
        },
    )
    result = pytester.runpytest(*GATE_ARGS)
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "PWNED").exists()


def test_command_output_that_is_not_utf8(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makefile(
        ".yaml",
        **{
            "gates/production-readiness": r"""
                gate: production-readiness
                criteria:
                  infrastructure-validation:
                    - command: printf 'ok \377\n'
                      expect: {stdout_contains: ok}
                    - command: exit 124
                      expect: {exit_status: 124}
            """,
        },
    )
    result = pytester.runpytest(*GATE_ARGS)
    result.assert_outcomes(passed=2)
