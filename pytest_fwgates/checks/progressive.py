"""``deploy`` in steps (canary, rolling), judged canary against stable during each pause.

    - deploy: examples/deploy/deploy-canary v2
      health: ${url}/
      version: {json: version, expect: v2}
      steps: [{weight: 10, pause: 20s}, {weight: 50, pause: 20s}, {weight: 100}]
      analysis:
        failure_rate: {max_increase: "0.5%"}
        p95_ms: {max_increase: "+20%"}
      on_abort: examples/deploy/rollback
      expect: {aborted: "== 0", duration_s: "< 5m"}

Each step runs the command with ``$FWGATES_STEP_WEIGHT`` (``$FWGATES_STEP``,
``$FWGATES_STEPS``, and ``$FWGATES_STEP_INSTANCE`` when the step names an instance), then
pauses while the prober keeps probing. During the pause the analysis compares what the prober
saw of the new version (``version.expect``) with what it saw of the version that served
before, over the same window (from the step's command end on), every ``analysis.every``
(see :mod:`pytest_fwgates.canary_judge`).

A pause is the least a step is watched. From its end on, the step goes on only when the
evidence *proves* the new version within the allowances (a proof look passes); until then it
keeps observing (the prober keeps probing), up to ``analysis.max_pause`` (default: three times
the pause, as far as the check's timeout leaves room), with a proof look at the pause's end and
then evenly up to ``max_pause`` (every ``analysis.every`` at most, :data:`MAX_PROOF_LOOKS` at
most per step). A step still unproven then stops the deploy as **unproven**: ``on_abort`` runs
(an unproven version is not promoted) and the check is INCONCLUSIVE, with the one-line reason
of what the evidence shows and how many answers would show the allowance.

Error rates, each at most ``1 - confidence`` over the whole deploy (Bonferroni): a false
abort of a version within the allowances (every look, regression side, spends
``(1 - confidence) / looks``), and the promotion of a version beyond them (every proof look
spends ``(1 - confidence) / proof looks``). The two errors are of disjoint cases (a version is
either within the allowance or beyond it), so each has the whole budget.

When a look fails, the deploy stops at once: ``on_abort`` runs (bounded by
``on_abort_timeout``), and the check waits for the service to be stable on the old version.
Figures: ``aborted``, ``aborted_at_step``, ``detect_s`` (first bad answer of the new version
-> abort), ``rollback_s`` (abort -> the first answer of a stable run on the old version),
``bad_answers`` (failed answers of the new version: the blast radius), ``canary_answers``,
``analysis_looks``, ``capacity_pct`` (share of probes answered by any version, not a 5xx or
no answer), with the deploy's ``duration_s`` and probe figures. An interrupt (Ctrl-C) during
the steps runs ``on_abort`` too before it goes on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import canary_prom
from ..bounds import count_support
from ..canary_judge import Increase, JudgeError, Sample, Verdict, judge, parse_increase
from ..canary_picture import canary_svg
from ..fsutil import write_file
from ..probe import Probe, Prober
from ..process import ProcessResult
from ..stats import binomial_upper
from ..thresholds import Threshold, ThresholdError, format_value
from ..thresholds import parse as parse_threshold
from .base import CheckError, Measurement
from .timed import DURATION, SHOWN, duration, exit_value, last_line

if TYPE_CHECKING:
    from .deploy import DeployCheck
    from .under_load import BackgroundLoad

__all__ = ["STEP_KEYS", "STEP_OPTIONS", "run_steps"]

WEIGHT_VAR = "FWGATES_STEP_WEIGHT"
#: the figures of a deploy in steps, each one a threshold key
#: proof looks of one step at most (at the pause's end, then evenly up to ``max_pause``):
#: each one spends a share of the promotion error rate
MAX_PROOF_LOOKS = 10
#: figures a deploy stopped unproven does not judge (they describe a deploy that was stopped
#: for want of evidence, not for a regression): its check is INCONCLUSIVE
UNPROVEN_MOOT = frozenset(
    {"aborted", "aborted_at_step", "steps_done", "duration_s", "version_changed"}
)
STEP_KEYS = (
    "aborted",
    "aborted_at_step",
    "detect_s",
    "rollback_s",
    "bad_answers",
    "canary_answers",
    "analysis_looks",
    "capacity_pct",
    "steps_done",
)
_INCREASE_RULE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["max_increase"],
    "properties": {"max_increase": {"type": ["string", "number"]}},
}
STEP_OPTIONS: dict[str, dict[str, Any]] = {
    "steps": {
        "description": "deploy in steps: the command runs once per step with "
        "$FWGATES_STEP_WEIGHT (and $FWGATES_STEP_INSTANCE), then pauses",
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "weight": {"type": "number", "minimum": 0, "maximum": 100},
                "instance": {"type": "integer", "minimum": 0},
                "pause": DURATION,
            },
            "anyOf": [{"required": ["weight"]}, {"required": ["instance"]}],
        },
    },
    "analysis": {
        "description": "judged during every pause: the new version against the stable one",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "failure_rate": _INCREASE_RULE,
            "p95_ms": _INCREASE_RULE,
            "min_answers": {"type": "integer", "minimum": 5, "maximum": 100000},
            "every": DURATION,
            "max_pause": {
                **DURATION,
                "description": "the longest a step is watched until the new version is "
                "proven (default: 3x its pause, within the check's timeout)",
            },
            "confidence": {"type": "number", "minimum": 0.5, "maximum": 0.9999},
            "load": {
                "description": "with under_load: Locust's figures since the step began must "
                "hold these during each pause, or the deploy is aborted (k6's abortOnFail)",
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "failure_ratio": {"type": ["string", "number"]},
                    "p95_ms": {"type": ["string", "number"]},
                },
            },
            "prometheus": canary_prom.SCHEMA,
            "load_version_header": {
                "description": "with under_load: the response header naming the version "
                "that answered Locust's requests (default: the version rule's header, if it "
                "reads one); the new version's answers are then judged against the old one's "
                "by failure_rate and p95_ms",
                "type": "string",
                "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$",
            },
        },
        "anyOf": [
            {"required": ["failure_rate"]},
            {"required": ["p95_ms"]},
            {"required": ["load"]},
            {"required": ["prometheus"]},
        ],
    },
    "on_abort": {"type": "string", "minLength": 1, "description": "run at once on an abort"},
    "on_abort_timeout": DURATION,
}


@dataclass
class Step:
    index: int
    weight: float | None
    instance: int | None
    pause_s: float
    #: the longest the step is watched until its new version is proven (analysis.max_pause)
    max_pause_s: float = 0.0

    @property
    def label(self) -> str:
        what = []
        if self.weight is not None:
            what.append(f"{self.weight:g}%")
        if self.instance is not None:
            what.append(f"instance {self.instance}")
        return f"step {self.index}: " + ", ".join(what)


@dataclass
class Analysis:
    failure_rate: Increase | None
    p95: Increase | None
    min_answers: int
    every_s: float
    confidence: float
    looks_planned: int = 1
    #: proof looks of the whole deploy (at a pause's end and after it, until max_pause)
    proof_looks_planned: int = 1
    #: thresholds on Locust's figures during each pause (``analysis.load``)
    load: dict[str, Threshold] = field(default_factory=dict)
    #: PromQL per version at each look (``analysis.prometheus``, see :mod:`..canary_prom`)
    prometheus: list[canary_prom.PromRule] = field(default_factory=list)
    #: the response header naming the version of Locust's answers (under_load), or ""
    load_version_header: str = ""

    @property
    def alpha(self) -> float:
        """The chance each look may abort a version within the allowances: split between
        the prober's judge and Locust's by version when both judge (either can abort)."""
        split = 2 if self.load_version_header else 1
        return (1 - self.confidence) / max(self.looks_planned, 1) / split

    @property
    def proof_alpha(self) -> float:
        """The chance each proof look may pass a version beyond the allowances."""
        return (1 - self.confidence) / max(self.proof_looks_planned, 1)

    def proof_times(self, step: Step) -> list[float]:
        """When the step's proof looks are due, in seconds from its pause's start."""
        extra = max(step.max_pause_s - step.pause_s, 0.0)
        if extra <= 0:
            return [step.pause_s]
        count = min(math.ceil(extra / self.every_s - 1e-9) + 1, MAX_PROOF_LOOKS)
        gap = extra / max(count - 1, 1)
        return [step.pause_s + i * gap for i in range(count)]


@dataclass
class Abort:
    at: float
    step: int
    reason: str
    verdict: Verdict | None = None
    first_bad: float | None = None


@dataclass
class StepRecord:
    step: Step
    started: float
    judged_from: float | None = None
    ended: float | None = None
    looks: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    #: Locust's progress when the step's traffic began (under_load)
    load_at: dict[str, Any] = field(default_factory=dict)
    last_load: dict[str, Any] = field(default_factory=dict)

    def to_json(self, origin: float) -> dict[str, Any]:
        found: dict[str, Any] = {"step": self.step.index, "looks": self.looks}
        if self.step.weight is not None:
            found["weight"] = self.step.weight
        if self.step.instance is not None:
            found["instance"] = self.step.instance
        found["at_s"] = round(self.started - origin, 3)
        if self.judged_from is not None and self.ended is not None:
            found["window_s"] = round(self.ended - self.judged_from, 3)
        found.update(self.last)
        return found


def parse_steps(raw: list[dict[str, Any]]) -> list[Step]:
    steps = []
    for index, item in enumerate(raw, 1):
        weight = item.get("weight")
        instance = item.get("instance")
        steps.append(
            Step(
                index,
                None if weight is None else float(weight),
                None if instance is None else int(instance),
                duration(item.get("pause"), 0.0, f"steps[{index}].pause"),
            )
        )
    return steps


def parse_analysis(
    raw: dict[str, Any] | None,
    steps: list[Step],
    confidence: float = 0.95,
    budget_s: float = math.inf,
) -> Analysis | None:
    """``budget_s``: the seconds the check's timeout leaves for watching steps (pauses and
    the time after them, until proof)."""
    if not raw:
        return None
    try:
        rate = raw.get("failure_rate")
        p95 = raw.get("p95_ms")
        analysis = Analysis(
            failure_rate=parse_increase(rate["max_increase"], rate=True) if rate else None,
            p95=parse_increase(p95["max_increase"], rate=False) if p95 else None,
            min_answers=int(raw.get("min_answers", 20)),
            every_s=max(duration(raw.get("every"), 1.0, "analysis.every"), 0.1),
            confidence=float(raw.get("confidence", confidence)),
        )
        for key, text in (raw.get("load") or {}).items():
            analysis.load[key] = parse_threshold(text)
        analysis.load_version_header = str(raw.get("load_version_header") or "")
        if raw.get("prometheus") is not None:
            analysis.prometheus = canary_prom.parse_rules(raw["prometheus"])
    except canary_prom.PromQLError as exc:
        raise CheckError(f"analysis.{exc}") from None
    except JudgeError as exc:
        raise CheckError(f"analysis: {exc}") from None
    except ThresholdError as exc:
        raise CheckError(f"analysis.load: {exc}") from None
    for step in steps:
        if step.pause_s > 0 and step.instance is None and step.weight in (0.0, 100.0):
            side = "stable" if step.weight == 100 else "new"
            raise CheckError(
                f"analysis: step {step.index}: weight {step.weight:g} with a pause: the "
                f"{side} version gets no answers there, so it could never be judged"
            )
    paused = [s for s in steps if s.pause_s > 0]
    if not paused:
        raise CheckError("analysis: no step pauses, so nothing could ever be judged")
    given = raw.get("max_pause")
    if given is not None:
        longest = duration(given, 0.0, "analysis.max_pause")
        for step in paused:
            if longest < step.pause_s:
                raise CheckError(
                    f"analysis.max_pause: {longest:g} s is shorter than step {step.index}'s "
                    f"pause ({step.pause_s:g} s): a pause is the least a step is watched"
                )
            step.max_pause_s = longest
        if math.isfinite(budget_s) and longest * len(paused) >= budget_s:
            raise CheckError(
                f"analysis.max_pause: {len(paused)} step(s) watched up to {longest:g} s each "
                f"do not fit in the check's timeout ({budget_s:.0f} s left for them)"
            )
    else:
        # three times the pause, as far as the timeout leaves room beside the pauses
        spare = max(budget_s - sum(s.pause_s for s in paused), 0.0) / len(paused)
        for step in paused:
            step.max_pause_s = step.pause_s + min(2 * step.pause_s, spare)
    proofs = [analysis.proof_times(s) for s in paused]
    analysis.proof_looks_planned = sum(len(p) for p in proofs)
    # every look may abort: the regular ones up to max_pause, and the proof looks
    analysis.looks_planned = sum(
        max(math.ceil(s.max_pause_s / analysis.every_s), 1) + len(p)
        for s, p in zip(paused, proofs, strict=True)
    )
    return analysis


def _canary_probe(probe: Probe, new: str, old: str) -> bool:
    """An answer of the new version, or one that is not the stable version's (``old``): a
    failed one that names no version (no answer at all, a proxy's error page), a good one
    whose version cannot be read (a body that is not the service's answer) or names a third
    version. Such an answer could come from either version, or should not have been given
    at all: it counts against the canary, in the analysis, the blast radius and ``detect_s``
    alike, so that a new version whose bad answers hide their version can never look healthy
    or harmless. With no stable version known (``old`` empty), only failed answers without a
    version count."""
    if probe.version == new:
        return True
    if not old:
        return probe.version is None and not probe.ok
    return probe.version != old


def _canary_bad(probe: Probe, new: str) -> bool:
    """A bad answer against the canary (see :func:`_canary_probe`): a failed one, or one that
    does not show the new version."""
    return not probe.ok or probe.version != new


def _proof_probes(share: float, alpha: float, probes: int = 1) -> int:
    """How many answers in a row of the old version prove that a share ``share`` of requests
    no longer reaches the new one, when the run is looked for among ``probes`` answers at
    most (the settling scans every answer for such a run, so each one could start it).

    The chance that ``n`` answers in a row all miss a share still in place: ``(1 - share) **
    n`` for a run from the first answer, ``share * (1 - share) ** n`` for one after an answer
    of the new version; by the union bound over the starts, at most ``(1 - share) ** n * (1 +
    (probes - 1) * share)``, which must be ``<= alpha`` (a share of 1 % at least). With one
    start only this is ``(1 - share) ** n <= alpha``; a run looked for in a long wait needs
    more answers, else it would turn up by chance while the share is still in place."""
    share = min(max(share, 0.01), 1.0)
    if share >= 1.0:
        return 1
    starts = 1 + (max(probes, 1) - 1) * share
    return max(math.ceil(math.log(alpha / starts) / math.log(1 - share)), 1)


def _first_bad(
    probes: list[Probe], since: float, new: str, verdict: Verdict, old: str = ""
) -> float | None:
    """When the first answer of the new version (see :func:`_canary_probe`) since ``since``
    that is bad by the rules ``verdict`` failed on started: a failed one (failure rate, a
    Locust threshold), a good one slower than the allowed p95 (latency).

    A PromQL rule (``analysis.prometheus``) may measure anything, so every kind of bad answer
    the prober can see counts for it: a failed one, and a good one slower than the p95 rule's
    limit when there is one. When the prober saw none, the time runs from the new version's
    first answer: the earliest it could have been bad (``detect_s`` is then an upper bound,
    never shorter than the truth); see :func:`_detect_from`."""
    prom = "prometheus" in verdict.failed_rules
    rate = prom or any(r == "failure_rate" or r.startswith("load.") for r in verdict.failed_rules)
    slow_ms = verdict.slow_ms if prom or "p95_ms" in verdict.failed_rules else None
    first: float | None = None
    for probe in probes:
        if probe.start < since or not _canary_probe(probe, new, old):
            continue
        if first is None:
            first = probe.start
        if rate and _canary_bad(probe, new):
            return probe.start
        if slow_ms is not None and probe.ok and probe.latency_ms > slow_ms:
            return probe.start
    return first if prom else None


def _detect_from(
    probes: list[Probe], since: float, new: str, verdict: Verdict, old: str = ""
) -> str:
    """What ``detect_s`` is measured from, for the record."""
    found = _first_bad(probes, since, new, verdict, old)
    if found is None:
        return "not measured: no bad answer of the new version seen"
    if "prometheus" in verdict.failed_rules:
        plain = Verdict("fail", failed_rules=["failure_rate", "p95_ms"], slow_ms=verdict.slow_ms)
        if _first_bad(probes, since, new, plain, old) is None:
            return (
                f"the first answer of {new}: the prober saw no bad one (a PromQL rule aborted), "
                "so detect_s is an upper bound"
            )
    return f"the first bad answer of {new} the prober saw"


def _samples(
    probes: list[Probe], start: float, end: float, new: str, old: str
) -> tuple[Sample, Sample, int]:
    """What each version answered in ``[start, end]``; and how many answers were of neither.

    An answer of neither (a failed one that names no version, a good one whose version cannot
    be read, one of a third version) counts against the canary, as a failed one (see
    :func:`_canary_probe`), so that a new version whose bad answers hide their version can
    never look healthy."""
    canary, stable, neither = Sample(), Sample(), 0
    for probe in probes:
        if probe.start < start or probe.start > end:
            continue
        if probe.version == old and old:
            sample = stable
        elif _canary_probe(probe, new, old):
            sample = canary
            neither += probe.version != new
        else:
            neither += 1
            continue
        sample.answers += 1
        if probe.ok and probe.version in (new, old):
            sample.latencies_ms.append(probe.latency_ms)
        else:
            sample.failed += 1
    return canary, stable, neither


def _load_delta(latest: Any, base: Any) -> dict[str, tuple[int, int, dict[int, int]]]:
    """Per version: requests, failures and good answers' times (ms -> count) between two of
    the listener's cumulative ``versions`` figures; malformed entries count as nothing."""
    found: dict[str, tuple[int, int, dict[int, int]]] = {}
    if not isinstance(latest, dict):
        return found
    base = base if isinstance(base, dict) else {}
    for version, now in latest.items():
        if not isinstance(now, dict):
            continue
        before = base.get(version) if isinstance(base.get(version), dict) else {}
        hist: dict[int, int] = {}
        old_hist = before.get("hist") or {}
        for ms, count in (now.get("hist") or {}).items():
            left = int(count) - int(old_hist.get(ms, 0))
            if left > 0:
                hist[int(ms)] = left
        requests = int(now.get("n") or 0) - int(before.get("n") or 0)
        failures = int(now.get("fail") or 0) - int(before.get("fail") or 0)
        found[str(version)] = (max(requests, 0), max(failures, 0), hist)
    return found


def _judge(analysis: Analysis, canary: Sample, stable: Sample, *, proof: bool) -> Verdict:
    """The new version's answers against the old one's by ``analysis``'s allowances; a proof
    look also asks that they be shown at ``proof_alpha``."""
    return judge(
        canary,
        stable,
        failure_rate=analysis.failure_rate,
        p95=analysis.p95,
        alpha=analysis.alpha,
        min_answers=analysis.min_answers,
        proof_alpha=analysis.proof_alpha if proof else None,
    )


def load_samples(latest: Any, base: Any, new: str, old: str) -> tuple[Sample, Sample, int]:
    """Locust's answers of each version between two progress figures (see :func:`_samples`
    for the prober's): an answer of neither version (no header, a third version, the
    listener's ``"other"``) counts against the new one as a failed one."""
    canary, stable, neither = Sample(), Sample(), 0
    for version, (requests, failures, hist) in _load_delta(latest, base).items():
        if version == old and old:
            sample = stable
        elif version == new:
            sample = canary
        else:
            neither += requests
            canary.answers += requests
            canary.failed += requests
            continue
        sample.answers += requests
        sample.failed += min(failures, requests)
        for ms, count in sorted(hist.items()):
            sample.latencies_ms.extend([float(ms)] * count)
    return canary, stable, neither


class _Steps:
    def __init__(self, check: DeployCheck, measurement: Measurement, deadline: float) -> None:
        self.check = check
        self.measurement = measurement
        self.deadline = deadline
        self.steps = parse_steps(list(check.option("steps")))
        last = self.steps[-1]
        if last.instance is None and last.weight is not None and last.weight < 100:
            # the check then waits until the service is stable on the new version: with a
            # share still on the old one, only a run of new answers by chance could show that
            raise CheckError(
                f"steps: the last step sends {last.weight:g} % of the requests to the new "
                f"version and leaves the rest on the old one, so the deploy never completes "
                f"(the check waits for the service to be stable on the new version): end the "
                f"steps on weight 100"
            )
        pauses, bound = sum(s.pause_s for s in self.steps), deadline - time.monotonic()
        if pauses >= bound:
            raise CheckError(
                f"steps: the steps' pauses add up to {pauses:g} s, not less than the check's "
                f"timeout ({bound:.0f} s left): the deploy could never finish in it"
            )
        # judged at the run's confidence level (its criterion's) unless analysis says otherwise
        level = check.context.confidence(check.spec)
        # beside the pauses, the least the settling after the last step takes, and commands
        budget = bound - check.stable_s - 10.0
        self.analysis = parse_analysis(check.option("analysis"), self.steps, level, budget)
        rule = check.version_rule()
        self.new = rule.expect if rule else None
        if self.analysis is not None and (rule is None or self.new is None):
            raise CheckError("analysis: needs version: {..., expect: <the new version>}")
        if self.analysis is not None and self.analysis.load and not check.option("under_load"):
            raise CheckError("analysis.load: needs under_load (the Locust run it judges)")
        if self.analysis is not None and self.analysis.load_version_header:
            if not check.option("under_load"):
                raise CheckError(
                    "analysis.load_version_header: needs under_load (the Locust run it splits)"
                )
        elif self.analysis is not None and rule is not None and rule.header:
            # the version rule reads a header: Locust's answers name their version there too
            self.analysis.load_version_header = rule.header if check.option("under_load") else ""
        if (
            self.analysis is not None
            and self.analysis.load_version_header
            and not (self.analysis.failure_rate or self.analysis.p95)
        ):
            # nothing to judge the versions by: Locust's figures stay aggregate
            self.analysis.load_version_header = ""
        if (
            self.analysis is not None
            and not (self.analysis.failure_rate or self.analysis.p95 or self.analysis.prometheus)
            and "failure_ratio" not in self.analysis.load
        ):
            raise CheckError(
                "analysis.load: p95_ms alone can abort a step but never prove one (Locust's "
                "p95 is one number without its samples): add failure_rate, p95_ms or "
                "load.failure_ratio"
            )
        self.rule = rule
        self.load: BackgroundLoad | None = None
        self.records: list[StepRecord] = []
        self.abort: Abort | None = None
        self.failures: list[str] = []
        #: why the deploy stopped unproven (the check is INCONCLUSIVE)
        self.unproven: list[str] = []
        self.outputs: list[tuple[str, ProcessResult]] = []

    # --- the whole deploy --------------------------------------------------------------------

    def run(self) -> None:
        check, measurement = self.check, self.measurement
        prober = check.prober(self.rule, limit_s=max(self.deadline - time.monotonic(), 1.0) + 5.0)
        with prober:
            good = check.wait_healthy_before(prober, self.deadline)
            old = good.version
            measurement.facts["version_before"] = old
            if self.analysis is not None and (old is None or old == self.new):
                raise CheckError(
                    f"the service answers on version {old!r} before the deploy: there is no "
                    f"stable version to judge {self.new} against"
                )
            self.old = old or ""
            load = check._load("", self.deadline) if check.option("under_load") else None
            if load is not None and self.analysis is not None:
                load.plan.version_header = self.analysis.load_version_header
            try:
                if load is not None:
                    check._start_load(load, prober, self.deadline)
                    self.load = load
                # Locust's clock is the wall clock: prober time + offset
                offset = time.time() - prober.now()
                started = prober.mark("deploy start")
                try:
                    for step in self.steps:
                        if not self._step(prober, step, started):
                            break
                except BaseException:
                    # an interrupt (or a bug) mid-deploy: take the new version out first
                    if self.abort is None and check.option("on_abort"):
                        at = prober.mark("abort: interrupted")
                        self.abort = Abort(at, self._at_step(), "interrupted")
                        self._on_abort(prober)
                    raise
                settled = self._settle(prober, started)
            finally:
                if load is not None and load.stop() is not None:
                    prober.mark("load stop")
            stopped = prober.now()
        self._figures(prober, started, settled, stopped)
        if load is not None:
            from .deploy import RunResult  # deploy imports this module

            run = RunResult(1, self.new)
            end = settled if settled is not None else stopped
            check._load_figures(load, run, measurement, offset + started, offset + end, "")
            measurement.values.update(run.values)
            measurement.facts.update(run.facts)
            measurement.failures.extend(run.failures)

    def _at_step(self) -> int:
        return self.records[-1].step.index if self.records else 0

    def _step(self, prober: Prober, step: Step, origin: float) -> bool:
        """Run one step and its pause; False when the deploy stops here."""
        check = self.check
        record = StepRecord(step, prober.mark(step.label))
        self.records.append(record)
        left = self.deadline - time.monotonic()
        if left <= 0:
            return self._stop(prober, step, "no time left in the check's bound", fail=True)
        env: dict[str, str] = {
            "FWGATES_STEP": str(step.index),
            "FWGATES_STEPS": str(len(self.steps)),
        }
        if self.new:
            env["FWGATES_DEPLOY_VERSION"] = self.new
        if step.weight is not None:
            env[WEIGHT_VAR] = f"{step.weight:g}"
        if step.instance is not None:
            env["FWGATES_STEP_INSTANCE"] = str(step.instance)
        result = check.run(check.spec.target, left, "deploy", env)
        self.outputs.append((f"deploy-step{step.index}", result))
        self.measurement.values["exit_status"] = exit_value(result)
        why = check.failed_command(f"step {step.index}: deploy", result, left)
        if why:
            self.measurement.facts["deploy_output"] = (last_line(result) or "")[:SHOWN]
            return self._stop(prober, step, why, fail=True)
        record.judged_from = prober.now()
        if self.load is not None:
            record.load_at = dict(self.load.latest)
        pause_end = record.judged_from + step.pause_s
        if step.pause_s <= 0:
            record.ended = record.judged_from
            return True
        analysis = self.analysis
        if analysis is None:
            while (now := prober.now()) < pause_end:
                if time.monotonic() >= self.deadline:
                    record.ended = now
                    return self._stop(prober, step, "no time left in the check's bound", fail=True)
                time.sleep(max(min(pause_end - now, 1.0), 0.01))
            record.ended = prober.now()
            return True
        # the pause is the least the step is watched; from its end on, the proof looks
        proofs = [record.judged_from + t for t in analysis.proof_times(step)]
        next_look = record.judged_from + analysis.every_s
        verdict: Verdict | None = None
        while True:
            now = prober.now()
            if time.monotonic() >= self.deadline:
                record.ended = now
                if now >= pause_end:  # watched its pause, the timeout cut the proof short
                    return self._unproven(prober, step, verdict, "the check's timeout came")
                return self._stop(prober, step, "no time left in the check's bound", fail=True)
            proof = bool(proofs) and now >= proofs[0]
            if now >= next_look or proof:
                verdict = self._look(prober, record, now, proof=proof)
                next_look = now + analysis.every_s
                while proofs and proofs[0] <= now:
                    proofs.pop(0)
                if verdict.outcome == "fail":
                    record.ended = now
                    return self._stop(prober, step, "; ".join(verdict.reasons), verdict=verdict)
                if proof and verdict.outcome == "pass":
                    break
                if proof and not proofs:
                    record.ended = now
                    return self._unproven(prober, step, verdict, "max_pause ran out")
            wake = min(next_look, proofs[0]) if proofs else next_look
            time.sleep(max(wake - prober.now(), 0.01))
        record.ended = prober.now()
        return True

    def _unproven(self, prober: Prober, step: Step, verdict: Verdict | None, why: str) -> bool:
        """Stop the deploy for want of proof: on_abort runs (an unproven version is not
        promoted), and the check is INCONCLUSIVE with what the evidence showed."""
        where = f"step {step.index}"
        if step.weight is not None:
            where += f" (weight {step.weight:g} %)"
        elif step.instance is not None:
            where += f" (instance {step.instance})"
        shown = "; ".join(verdict.reasons) if verdict is not None and verdict.reasons else why
        reason = f"{where}: {shown}"
        self.unproven.append(f"unproven, not promoted: {reason}")
        return self._stop(prober, step, f"unproven ({why}): {reason}", verdict=verdict)

    def _look(self, prober: Prober, record: StepRecord, now: float, *, proof: bool) -> Verdict:
        analysis = self.analysis
        assert analysis is not None and self.new is not None and record.judged_from is not None
        canary, stable, neither = _samples(
            prober.probes, record.judged_from, now, self.new, self.old
        )
        verdict = _judge(analysis, canary, stable, proof=proof)
        if analysis.load:
            self._judge_load(record, verdict, analysis.proof_alpha if proof else None)
        if analysis.load_version_header and self.load is not None:
            self._judge_load_versions(record, verdict, proof=proof)
        prom: list[canary_prom.PromLook] = []
        if analysis.prometheus:
            prom = canary_prom.look(
                analysis.prometheus,
                self.check.context,
                new=self.new,
                old=self.old,
                deadline=self.deadline,
                window_s=now - record.judged_from,
            )
            canary_prom.apply(prom, verdict)
        record.looks += 1
        record.last = {
            "canary": {"version": self.new, **canary.to_json()},
            "stable": {"version": self.old, **stable.to_json()},
            "unattributed": neither,
            "alpha": round(analysis.alpha, 6),
            **({"proof_alpha": round(analysis.proof_alpha, 6)} if proof else {}),
            **verdict.to_json(),
            **({"load": record.last_load} if record.last_load else {}),
            **({"prometheus": [p.to_json() for p in prom]} if prom else {}),
        }
        if verdict.outcome == "fail":
            # from the deploy's start: a bad answer users got in an earlier step (not yet
            # significant then) is where the time to detect it begins
            since = self.records[0].started
            self._first_bad = _first_bad(prober.probes, since, self.new, verdict, self.old)
            self._detect_from = _detect_from(prober.probes, since, self.new, verdict, self.old)
        return verdict

    def _judge_load(
        self, record: StepRecord, verdict: Verdict, proof_alpha: float | None = None
    ) -> None:
        """Locust's figures since the step's traffic began against ``analysis.load``: a
        threshold that does not hold fails the look (k6's abortOnFail). A look that would
        pass (a proof look, ``proof_alpha``) passes only when ``failure_ratio`` is *shown*:
        the exact upper bound of Locust's failure ratio at ``1 - proof_alpha`` holds it, not
        only its point (3 requests without a failure show nothing). Locust's ``p95_ms`` is one
        number without its samples: it can abort, it proves nothing."""
        assert self.analysis is not None and self.load is not None
        latest, base = self.load.latest, record.load_at
        requests = int(latest.get("requests") or 0) - int(base.get("requests") or 0)
        failures = int(latest.get("failures") or 0) - int(base.get("failures") or 0)
        p95 = latest.get("p95_ms")
        record.last_load = {"requests": requests, "failures": failures, "p95_ms": p95}
        if requests <= 0:
            if verdict.outcome == "pass":
                verdict.outcome = "inconclusive"
                verdict.reasons.append("under_load: no request of Locust answered in the step")
            return
        seen: dict[str, float | None] = {
            "failure_ratio": failures / requests,
            "p95_ms": float(p95) if isinstance(p95, int | float) else None,
        }
        for key, threshold in self.analysis.load.items():
            value = seen.get(key)
            if value is None:
                continue
            if threshold.holds(key, value) is False:
                verdict.failed_rules.append(f"load.{key}")
                verdict.reasons.append(
                    f"under load: {key} = {format_value(key, value)} "
                    f"({failures}/{requests} failed), expected {threshold}"
                )
                verdict.outcome = "fail"
        ratio = self.analysis.load.get("failure_ratio")
        if verdict.outcome == "pass" and proof_alpha is not None and ratio is not None:
            upper = binomial_upper(min(max(failures, 0), requests), requests, 1 - proof_alpha)
            if ratio.holds("failure_ratio", upper) is not True:
                verdict.outcome = "inconclusive"
                verdict.reasons.append(
                    f"under load: {failures}/{requests} requests failed: failure_ratio <= "
                    f"{format_value('failure_ratio', upper)} at {(1 - proof_alpha) * 100:.4g} % "
                    f"confidence, not shown {ratio}"
                )

    def _judge_load_versions(self, record: StepRecord, verdict: Verdict, *, proof: bool) -> None:
        """Locust's answers since the step's traffic began, split by the version that gave
        them (``analysis.load_version_header``), judged as the prober's answers are: the new
        version against the old one by ``failure_rate`` and ``p95_ms``. An answer of neither
        (no version header, a third version) counts against the new one, as a failed one. A
        fail aborts the look; a look passes only when this judge passes too."""
        analysis = self.analysis
        assert analysis is not None and self.load is not None and self.new is not None
        canary, stable, neither = load_samples(
            self.load.latest.get("versions"), record.load_at.get("versions"), self.new, self.old
        )
        found = _judge(analysis, canary, stable, proof=proof)
        where = f"under load, {self.new} against {self.old}"
        record.last_load = {
            **record.last_load,
            "by_version": {
                "canary": {"version": self.new, **canary.to_json()},
                "stable": {"version": self.old, **stable.to_json()},
                "unattributed": neither,
                **found.to_json(),
            },
        }
        if found.outcome == "fail":
            verdict.failed_rules.extend(f"load.{rule}" for rule in found.failed_rules)
            verdict.reasons.extend(f"{where}: {why}" for why in found.reasons)
            verdict.outcome = "fail"
        elif found.outcome != "pass" and verdict.outcome == "pass":
            verdict.outcome = "inconclusive"
            verdict.reasons.extend(f"{where}: {why}" for why in found.reasons)

    def _stop(
        self,
        prober: Prober,
        step: Step,
        reason: str,
        *,
        fail: bool = False,
        verdict: Verdict | None = None,
    ) -> bool:
        """Stop the deploy here: the abort, ``on_abort`` at once; ``fail``: the check fails
        whatever its thresholds say (the deploy broke or was never judged)."""
        if fail:
            self.failures.append(reason)
        label = (
            "abort"
            if verdict is not None and verdict.outcome == "fail"
            else "unproven"
            if reason.startswith("unproven")
            else "stopped"
        )
        at = prober.mark(f"{label}: step {step.index}")
        first_bad = getattr(self, "_first_bad", None) if label == "abort" else None
        self.abort = Abort(at, step.index, reason, verdict, first_bad)
        self._on_abort(prober)
        return False

    def _on_abort(self, prober: Prober) -> None:
        check = self.check
        command = check.option("on_abort")
        if not command:
            return
        bound = duration(check.option("on_abort_timeout"), 120.0, "on_abort_timeout")
        bound = min(bound, max(self.deadline - time.monotonic(), 1.0) + 30.0)
        result = check.run(str(command), bound, "on_abort")
        prober.mark("on_abort end")
        self.outputs.append(("on_abort", result))
        self.measurement.values["on_abort_exit_status"] = exit_value(result)
        why = check.failed_command("on_abort", result, bound)
        if why:
            self.failures.append(why)

    def _settle(self, prober: Prober, started: float) -> float | None:
        """When the service became stable: on the old version after an abort, else the new."""
        check = self.check
        since = self.abort.at if self.abort else started
        version = (self.old or None) if self.abort else self.new
        now = prober.now()
        # the most answers the settling can scan for a run: from ``since`` to its bound
        bound = min(check.settle_s, max(self.deadline - time.monotonic(), 0.0))
        scanned = math.ceil((now - since + bound) / max(check.interval, 1e-3)) + 1
        settled = check.wait_settled(
            prober,
            since=since,
            version=version,
            until=now,
            deadline=self.deadline,
            min_probes=self._rollback_proof(scanned)
            if self.abort
            else self._promotion_proof(scanned),
        )
        if settled is not None:
            prober.mark(f"stable on {version}" if version else "stable")
        return settled

    def _rollback_proof(self, scanned: int) -> int:
        """The answers in a row of the old version that show the new one's share is gone: a
        run of ``stable`` seconds alone is likely by chance while a small share still reaches
        the new version (ten probes miss a 10 % share 35 % of the time), and so is a longer
        run looked for among many answers (``scanned``: the most the settling may see). The
        share is the aborted step's weight, else the new version's share of the last look's
        answers."""
        if self.new is None or not self.records:
            return 0
        record = self.records[-1]
        share = record.step.weight / 100 if record.step.weight is not None else None
        if share is None or share <= 0:
            canary = record.last.get("canary", {}).get("answers", 0)
            stable = record.last.get("stable", {}).get("answers", 0)
            share = canary / (canary + stable) if canary + stable else 0.0
        if share <= 0:
            return 0
        return _proof_probes(share, 1 - self._level(), scanned)

    def _promotion_proof(self, scanned: int) -> int:
        """The answers in a row of the new version that show the old one's share is gone after
        the last step: a last step command that exits 0 but shifts nothing leaves the old
        version the share it had before (10 % after a step at 90 %), and a run of ``stable``
        seconds of the new version turns up by chance in a long settling. The share is what
        the step before the last one left on the old version (all of it when there is none);
        for a step that names an instance, the old version's share of the last look's
        answers."""
        if self.new is None or not self.records:
            return 0
        last = self.records[-1].step
        if last.weight is not None and last.instance is None:
            before = self.records[-2].step.weight if len(self.records) > 1 else 0.0
            share = 1 - (before or 0.0) / 100
        else:
            looked = [r.last for r in self.records if r.last.get("stable")]
            if not looked:
                return 0
            canary = looked[-1].get("canary", {}).get("answers", 0)
            stable = looked[-1].get("stable", {}).get("answers", 0)
            share = stable / (canary + stable) if canary + stable else 0.0
        if share <= 0:
            return 0
        return _proof_probes(share, 1 - self._level(), scanned)

    def _level(self) -> float:
        """The confidence of the proofs of the settling: the analysis's, else the run's."""
        if self.analysis is not None:
            return self.analysis.confidence
        return self.check.context.confidence(self.check.spec)

    # --- figures -----------------------------------------------------------------------------

    def _figures(
        self, prober: Prober, started: float, settled: float | None, stopped: float
    ) -> None:
        check, m = self.check, self.measurement
        figures = prober.figures(start=started, end=stopped)
        m.values.update({k: v for k, v in figures.values().items() if k != "probes"})
        end = settled if settled is not None else stopped
        m.values["duration_s"] = round(end - started, 3)
        probes = [p for p in prober.probes if started <= p.start <= stopped]
        answered = sum(1 for p in probes if p.ok)
        m.values["capacity_pct"] = round(100.0 * answered / len(probes), 3) if probes else 0.0
        m.support.update(figures.support(check.context.confidence(check.spec)))
        m.support["capacity_pct"] = count_support(answered, len(probes), "probes", "answered")
        if self.new is not None:
            until = settled if settled is not None else stopped
            old = self.old
            canary = [p for p in probes if _canary_probe(p, self.new, old) and p.start <= until]
            m.values["canary_answers"] = float(len(canary))
            m.values["bad_answers"] = float(sum(1 for p in canary if _canary_bad(p, self.new)))
        abort = self.abort
        if abort is not None or self.analysis is not None:
            m.values["aborted"] = float(abort is not None)
        else:
            # nothing judged the new version: "not aborted" would be no evidence of anything,
            # so a standard on it is not measured (never a pass)
            m.facts["analysis"] = "none: no step was judged, so aborted is not measured"
        m.values["steps_done"] = float(
            sum(
                1
                for r in self.records
                if r.ended is not None and not (abort and abort.step == r.step.index)
            )
        )
        m.values["analysis_looks"] = float(sum(r.looks for r in self.records))
        m.facts["steps"] = [r.to_json(started) for r in self.records]
        m.facts["versions_seen"] = figures.versions
        m.facts["probes"] = figures.probes
        m.facts["interval_ms"] = round(check.interval * 1000, 1)
        after = prober.last_good()
        m.facts["version_after"] = after.version if after else None
        if self.rule is not None:
            # as a plain deploy: one that ends on the version it began on changed nothing
            # (an aborted canary), whatever it showed on the way
            before = m.facts.get("version_before")
            changed = before is not None and after is not None and before != after.version
            m.values["version_changed"] = 1.0 if changed else 0.0
        if abort is not None:
            m.values["aborted_at_step"] = float(abort.step)
            expected = {"aborted", "aborted_at_step"} & set(check.spec.thresholds)
            if abort.verdict is not None and abort.verdict.outcome == "fail" and not expected:
                # the new version was not deployed: only a check that expects an abort (a
                # known-bad build deployed on purpose) can pass with one
                self.failures.append(
                    f"the deploy was aborted at step {abort.step} ({abort.reason}); a check "
                    f"that deploys a bad build on purpose expects it: aborted == 1"
                )
            m.facts["abort_reason"] = abort.reason[:SHOWN]
            if abort.verdict is not None and abort.verdict.outcome == "fail":
                m.facts["detect_from"] = getattr(self, "_detect_from", "")
            if abort.first_bad is not None:
                m.values["detect_s"] = round(max(abort.at - abort.first_bad, 0.0), 3)
                prober.mark("first bad answer", at=abort.first_bad)
            if settled is not None:
                m.values["rollback_s"] = round(max(settled - abort.at, 0.0), 3)
            else:
                old = self.old or "the old version"
                m.failures.append(
                    f"after the abort the service was not stable on {old} for "
                    f"{check.stable_s:g} s within {check.settle_s:g} s"
                )
        elif settled is None:
            m.failures.append(
                f"the service was not stable{f' on {self.new}' if self.new else ''} for "
                f"{check.stable_s:g} s within {check.settle_s:g} s after the last step"
            )
        m.failures.extend(self.failures)
        if self.unproven:
            m.inconclusive.extend(self.unproven)
            m.moot = m.moot | UNPROVEN_MOOT
        for name, result in self.outputs:
            check.keep_output(m, name, result)
        check.keep_timeline(m, prober, figures, title=f"deploy {check.spec.id} (in steps)")
        if self.new is not None:
            svg = canary_svg(
                prober.probes,
                prober.marks,
                new=self.new,
                steps=[(r.judged_from or r.started, r.step.weight) for r in self.records],
                start=started,
                end=stopped,
                title=f"deploy {check.spec.id}: {self.old or '?'} -> {self.new} by version",
            )
            path = check.context.evidence_dir(check.spec) / "canary.svg"
            m.evidence["canary_svg"] = write_file(path, svg)


def run_steps(check: DeployCheck, measurement: Measurement, deadline: float) -> Measurement:
    """A deploy in steps; see the module docstring."""
    _Steps(check, measurement, deadline).run()
    return measurement
