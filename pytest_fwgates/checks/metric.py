"""``metric``: a number from a JSON/YAML/CSV file or an HTTP JSON endpoint, or a figure
computed over records (availability, MTTR, MTTD, accuracy/precision/recall, reduction).

```yaml
- metric: reports/uptime.json          # a value by path
  path: summary.availability
  as: availability_pct
- metric: records/incidents.csv        # started/detected/resolved times -> mttr_s, mttd_s
  compute: mttr
- metric: records/predictions.csv      # label/predicted -> accuracy_pct, precision_pct, recall_pct
  compute: accuracy
  positive: anomaly
- metric: records/costs.json           # (before - after) / before -> reduction_pct
  compute: reduction
  before: q1.total
  after: q2.total
  as: cost_reduction_pct
```

Every result names its inputs (file, records, window). An empty or malformed records file is
an ERROR that names ``file:line``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..bounds import count_support, mean_support
from .base import Check, CheckError, Measurement
from .figures import FIGURES, as_schema
from .records import Record, RecordError, load_document, load_records, parse_time, truthy

__all__ = ["MetricCheck"]

COMPUTED = (
    "availability",
    "mttr",
    "mttd",
    "accuracy",
    "precision",
    "recall",
    "reduction",
    "share",
)
#: default field names of records, each with the names also accepted
FIELDS: dict[str, tuple[str, ...]] = {
    "started": ("started", "started_at", "start", "begin", "opened"),
    "detected": ("detected", "detected_at", "acknowledged"),
    "resolved": ("resolved", "resolved_at", "recovered", "end", "closed"),
    "label": ("label", "actual", "truth", "expected", "is_anomaly"),
    "predicted": ("predicted", "prediction", "detected_anomaly", "flagged"),
    "ok": ("ok", "success", "up", "healthy"),
    "successes": ("successes", "succeeded", "good"),
    "total": ("total", "requests", "count"),
}
_NUMBER_OR_PATH = {"type": ["number", "string"]}
#: the values each form measures (the criterion's standards apply to these)
_MEASURES: dict[str | None, tuple[str, ...]] = {
    None: ("value",),
    "reduction": ("reduction_pct",),
    "share": ("share_pct", "records"),
    "availability": ("availability_pct", "errors", "records"),
    "mttr": ("mttr_s", "mttd_s", "incidents", "records"),
    "mttd": ("mttr_s", "mttd_s", "incidents", "records"),
    "accuracy": ("accuracy_pct", "precision_pct", "recall_pct", "records"),
    "precision": ("accuracy_pct", "precision_pct", "recall_pct", "records"),
    "recall": ("accuracy_pct", "precision_pct", "recall_pct", "records"),
}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} is {value!r}, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} is {value!r}, not a finite number")
    return number


#: fields that name a record (an incident, a probe, a prediction): each is counted once
_ID_FIELDS = ("id", "incident", "incident_id", "key")


def _unique_ids(records: list[Record]) -> None:
    """An error naming the line of a record whose id an earlier record has: the same
    incident or probe twice (a file appended to twice, two exports merged) would count as
    more evidence than there is."""
    for name in _ID_FIELDS:
        seen: dict[str, Record] = {}
        for record in records:
            value = record.fields.get(name)
            if value is None or value == "":
                continue
            text = str(value)
            first = seen.get(text)
            if first is not None:
                at = f"line {first.line}" if first.line is not None else f"record {first.index + 1}"
                raise record.error(f"{name} {text!r} appears twice (first at {at})")
            seen[text] = record


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MetricCheck(Check):
    type_name = "metric"
    mask_env = True
    summary = "A number from a JSON/YAML/CSV file or HTTP JSON, or a figure over records."
    target_schema: ClassVar[dict[str, Any]] = {
        "type": "string",
        "minLength": 1,
        "description": "a file (relative to the rootdir) or an http(s):// URL answering JSON",
    }
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "path": {"type": "string", "minLength": 1, "description": "path of the value"},
        "compute": {"enum": list(COMPUTED)},
        "as": as_schema(),
        "format": {"enum": ["json", "jsonl", "yaml", "csv"], "description": "default: suffix"},
        "records": {"type": "string", "minLength": 1, "description": "path to the record list"},
        "fields": {
            "type": "object",
            "properties": {name: {"type": "string", "minLength": 1} for name in FIELDS},
            "additionalProperties": False,
        },
        "positive": {"type": "string", "description": "label value meaning yes (anomaly)"},
        "field": {"type": "string", "minLength": 1, "description": "yes/no field of 'share'"},
        "since": {
            "type": ["string", "number"],
            "description": "only records that start within this span before now (e.g. 30d)",
        },
        "before": _NUMBER_OR_PATH,
        "after": _NUMBER_OR_PATH,
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "verify": {"type": "boolean"},
        "ca": {"type": "string", "minLength": 1},
    }
    threshold_keys: ClassVar[frozenset[str]] = frozenset(
        {"value", "records", "incidents", "errors", "share_pct", *FIGURES}
    )
    default_timeout = 30.0

    @classmethod
    def measures(cls, target: Any, options: dict[str, Any]) -> frozenset[str]:
        keys = set(_MEASURES[options.get("compute")])
        if options.get("as"):
            keys.add(str(options["as"]))
        return frozenset(keys)

    # -- inputs ----------------------------------------------------------------------------
    def _text(self) -> tuple[str, str, str | None]:
        """(text, where, format) of the target: a file or an HTTP JSON answer."""
        from . import _web
        from .records import read_text

        target = str(self.spec.target)
        given = self.spec.options.get("format")
        if target.startswith(("http://", "https://")):
            headers = {str(k): str(v) for k, v in (self.spec.options.get("headers") or {}).items()}
            _web.register_secrets(self.context.redactor, headers)
            fetched = _web.fetch(
                _web.session_for(self.context),
                "GET",
                target,
                timeout=self.timeout,
                headers={"Accept": "application/json", **headers},
                verify=_web.tls_verify(self.context, self.spec.options),
            )
            if fetched.status >= 400:
                raise CheckError(f"GET {target}: status {fetched.status} {fetched.reason}")
            if fetched.truncated:
                raise CheckError(f"GET {target}: the answer is larger than {_web.MAX_BODY} bytes")
            return fetched.text, target, given or "json"
        path = _web.resolve_path(self.context, target)
        return read_text(path), str(path), given

    def _records(self, text: str, where: str, kind: str | None) -> list[Record]:
        records = load_records(text, where, kind, self.spec.options.get("records"))
        _unique_ids(records)
        return records

    def _field(self, record: Record, name: str, *, required: bool = True) -> Any:
        given = (self.spec.options.get("fields") or {}).get(name)
        names = (given,) if given else FIELDS[name]
        for candidate in names:
            value = record.fields.get(candidate)
            if value is not None and value != "":
                return value
        if not required:
            return None
        raise record.error(f"no '{names[0]}' field (record fields: {', '.join(record.fields)})")

    # -- measuring -------------------------------------------------------------------------
    def measure(self) -> Measurement:
        compute = self.spec.options.get("compute")
        #: what computed figures were counted from, filled by the methods below
        self.support: dict[str, dict[str, Any]] = {}
        text, where, kind = self._text()
        facts: dict[str, Any] = {"source": where}
        if compute is None:
            if not self.spec.options.get("path"):
                raise CheckError("metric needs 'path:' (a value) or 'compute:' (a figure)")
            values = self._value(text, where, kind)
        elif compute == "reduction":
            values = self._reduction(text, where, kind, facts)
        else:
            records = self._records(text, where, kind)
            if compute in ("mttr", "mttd"):
                values = self._incidents(records, facts, compute)
            elif compute == "availability":
                values = self._availability(records, facts)
            elif compute == "share":
                values = self._share(records, facts)
            else:
                values = self._classification(records, facts)
        figure = self.spec.options.get("as")
        if figure:
            main = {
                None: "value",
                "reduction": "reduction_pct",
                "share": "share_pct",
                "availability": "availability_pct",
                "mttr": "mttr_s",
                "mttd": "mttd_s",
                "accuracy": "accuracy_pct",
                "precision": "precision_pct",
                "recall": "recall_pct",
            }[compute]
            if main in values:
                values[str(figure)] = values[main]
                if main in self.support:
                    self.support[str(figure)] = self.support[main]
        return Measurement(values=values, facts=facts, support=self.support)

    def _document(self, text: str, where: str, kind: str | None) -> Any:
        from .records import _kind

        return load_document(text, where, _kind(where, kind))

    def _at(self, document: Any, path: str, where: str) -> float:
        from ._web import PathError, lookup

        try:
            found = lookup(document, path)
        except PathError as exc:
            raise RecordError(where, None, str(exc)) from None
        try:
            return _number(found, path)
        except ValueError as exc:
            raise RecordError(where, getattr(found, "line", None), str(exc)) from None

    def _value(self, text: str, where: str, kind: str | None) -> dict[str, float]:
        document = self._document(text, where, kind)
        return {"value": self._at(document, str(self.spec.options["path"]), where)}

    def _reduction(
        self, text: str, where: str, kind: str | None, facts: dict[str, Any]
    ) -> dict[str, float]:
        options = self.spec.options
        if "before" not in options or "after" not in options:
            raise CheckError("compute: reduction needs 'before:' and 'after:' (numbers or paths)")
        document: Any = None
        found: dict[str, float] = {}
        for name in ("before", "after"):
            given = options[name]
            if isinstance(given, int | float) and not isinstance(given, bool):
                found[name] = float(given)
            else:
                if document is None:
                    document = self._document(text, where, kind)
                found[name] = self._at(document, str(given), where)
        before, after = found["before"], found["after"]
        if before <= 0:
            raise CheckError(f"{where}: before = {before:g}; a reduction needs a positive before")
        facts.update(before=before, after=after)
        return {"reduction_pct": round((before - after) / before * 100.0, 6)}

    def _since(self, records: list[Record], starts: list[float], facts: dict[str, Any]) -> None:
        """Keep records that start within ``since`` before now (in place)."""
        since = self.spec.options.get("since")
        if since is None:
            return
        from .figures import SpanError, parse_span

        try:
            seconds = parse_span(since)
        except SpanError as exc:
            raise CheckError(f"since: {exc}") from None
        cutoff = datetime.now(UTC).timestamp() - seconds
        keep = [i for i, start in enumerate(starts) if start >= cutoff]
        facts["since"] = _iso(cutoff)
        records[:] = [records[i] for i in keep]
        starts[:] = [starts[i] for i in keep]
        if not records:
            raise CheckError(f"no records start after {_iso(cutoff)} (since: {since})")

    def _time(self, record: Record, name: str, *, required: bool = True) -> float | None:
        value = self._field(record, name, required=required)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise record.error(f"{name}: {exc}") from None

    def _incidents(
        self, records: list[Record], facts: dict[str, Any], compute: str
    ) -> dict[str, float]:
        starts = [t for r in records if (t := self._time(r, "started")) is not None]
        self._since(records, starts, facts)
        recovery: list[float] = []
        detection: list[float] = []
        ends: list[float] = []
        for record, start in zip(records, starts, strict=True):
            resolved = self._time(record, "resolved", required=compute == "mttr")
            detected = self._time(record, "detected", required=compute == "mttd")
            if resolved is not None:
                if resolved < start:
                    raise record.error("resolved before it started")
                recovery.append(resolved - start)
                ends.append(resolved)
            if detected is not None:
                if detected < start:
                    raise record.error("detected before it started")
                if resolved is not None and detected > resolved:
                    raise record.error("detected after it was resolved")
                detection.append(detected - start)
        values: dict[str, float] = {"incidents": float(len(records)), "records": len(records)}
        if recovery:
            values["mttr_s"] = round(math.fsum(recovery) / len(recovery), 3)
            self.support["mttr_s"] = mean_support(recovery, "incidents")
            values["max_ttr_s"] = round(max(recovery), 3)
        if detection:
            values["mttd_s"] = round(math.fsum(detection) / len(detection), 3)
            self.support["mttd_s"] = mean_support(detection, "incidents")
        facts["window"] = f"{_iso(min(starts))} .. {_iso(max(ends or starts))}"
        facts["records"] = len(records)
        return values

    def _availability(self, records: list[Record], facts: dict[str, Any]) -> dict[str, float]:
        good = total = 0.0
        first = records[0]
        counted = self._field(first, "total", required=False) is not None
        for record in records:
            if counted:
                try:
                    successes = _number(self._field(record, "successes"), "successes")
                    count = _number(self._field(record, "total"), "total")
                except ValueError as exc:
                    raise record.error(str(exc)) from None
                if count < 0 or not 0 <= successes <= count:
                    raise record.error(f"successes {successes:g} of total {count:g}")
                good += successes
                total += count
            else:
                try:
                    ok = truthy(self._field(record, "ok"))
                except ValueError as exc:
                    raise record.error(f"ok: {exc}") from None
                good += ok
                total += 1
        if total <= 0:
            raise CheckError(f"{first.where}: total is 0; availability is not defined")
        times = [t for r in records if (t := self._time(r, "started", required=False))]
        if times:
            facts["window"] = f"{_iso(min(times))} .. {_iso(max(times))}"
        facts["records"] = len(records)
        if good.is_integer() and total.is_integer():
            self.support["availability_pct"] = count_support(
                int(good), int(total), "requests" if counted else "records", "good"
            )
        return {
            "availability_pct": round(good / total * 100.0, 6),
            "errors": total - good,
            "records": float(len(records)),
        }

    def _share(self, records: list[Record], facts: dict[str, Any]) -> dict[str, float]:
        """The share of records whose yes/no ``field`` is yes (auto-responded, prevented)."""
        name = str(self.spec.options.get("field") or "ok")
        positive = self.spec.options.get("positive")
        yes = 0
        for record in records:
            value = record.fields.get(name)
            if value is None or value == "":
                fields = ", ".join(record.fields)
                raise record.error(f"no '{name}' field (record fields: {fields})")
            try:
                yes += truthy(value, positive)
            except ValueError as exc:
                raise record.error(f"{name}: {exc}") from None
        facts.update(records=len(records), field=name, yes=yes)
        self.support["share_pct"] = count_support(yes, len(records), "records", f"{name}")
        return {"share_pct": round(yes / len(records) * 100.0, 6), "records": float(len(records))}

    def _classification(self, records: list[Record], facts: dict[str, Any]) -> dict[str, float]:
        positive = self.spec.options.get("positive")
        tp = fp = tn = fn = 0
        for record in records:
            try:
                label = truthy(self._field(record, "label"), positive)
                predicted = truthy(self._field(record, "predicted"), positive)
            except ValueError as exc:
                raise record.error(str(exc)) from None
            if label and predicted:
                tp += 1
            elif predicted:
                fp += 1
            elif label:
                fn += 1
            else:
                tn += 1
        total = tp + fp + tn + fn
        values: dict[str, float] = {
            "accuracy_pct": round((tp + tn) / total * 100.0, 6),
            "records": float(total),
        }
        self.support["accuracy_pct"] = count_support(tp + tn, total, "records", "correct")
        if tp + fp:
            values["precision_pct"] = round(tp / (tp + fp) * 100.0, 6)
            self.support["precision_pct"] = count_support(tp, tp + fp, "positives", "true")
        if tp + fn:
            values["recall_pct"] = round(tp / (tp + fn) * 100.0, 6)
            self.support["recall_pct"] = count_support(tp, tp + fn, "actual positives", "found")
        facts.update(records=total, true_positive=tp, false_positive=fp)
        facts.update(true_negative=tn, false_negative=fn)
        return values
