"""``sysctl``: a kernel parameter's value, exact or held to a threshold (``>= 1024``)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..thresholds import ThresholdError, parse
from .base import CheckError, Measurement
from .host import Expectations, HostCheck

_OPERATORS = ("<", ">", "=", "!")


class SysctlCheck(HostCheck):
    type_name = "sysctl"
    summary = "A kernel parameter: its value, exactly or against a threshold ('>= 1024')."
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "value": {"type": ["string", "integer", "number"]},
    }

    def inspect(self, host: Any) -> Measurement:
        key = self.spec.target
        try:
            actual = host.sysctl(key)
        except AssertionError:
            raise CheckError(f"sysctl {key} does not exist on {self.host_id}") from None
        seen = Expectations(key)
        text = " ".join(str(actual).split())
        seen.fact("value", actual)
        if "value" in self.spec.expect:
            wanted = self.spec.expect["value"]
            if isinstance(wanted, str) and wanted.strip().startswith(_OPERATORS):
                try:
                    threshold = parse(wanted)
                except ThresholdError as exc:
                    raise CheckError(f"value: {exc}") from None
                if not isinstance(actual, int | float) or not threshold.holds("value", actual):
                    seen.fail(f"{key} is {text}, expected {threshold}")
            elif text != " ".join(str(wanted).split()):
                seen.fail(f"{key} is {text}, expected {wanted}")
        return seen.measurement()
