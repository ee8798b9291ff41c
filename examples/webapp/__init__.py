"""The example web app (WSGI), served by gunicorn in two versions, v1 and v2."""

from __future__ import annotations

VERSIONS = ("v1", "v2")
# Deliberate faults a version can be started with (APP_FAULT).
FAULTS = ("500", "slow", "crash")
#: faults with a measure, for canary and rolling deploys (several joined by commas):
#: ``errors=5%`` (a share of application requests answers 500), ``delay=20ms`` (each one is
#: slower by that much), ``crash-after=50`` (the instance exits after that many of them),
#: ``garbled=5%`` (a share of them answers 200 with a body that is not the app's: no version)
MEASURED_FAULTS = {
    "errors": "FAULT_ERROR_RATE",
    "garbled": "FAULT_GARBLED_RATE",
    "delay": "FAULT_DELAY_MS",
    "crash-after": "FAULT_CRASH_AFTER",
}


def fault_env(fault: str | None) -> dict[str, str]:
    """The app's environment for a fault: ``APP_FAULT`` and the ``FAULT_*`` measures.

    Raises ValueError naming what is wrong; ``None`` or ``""`` is a good build.
    """
    env = {"APP_FAULT": "", **{name: "" for name in MEASURED_FAULTS.values()}}
    if not fault:
        return env
    for part in fault.split(","):
        part = part.strip()
        if part in FAULTS:
            env["APP_FAULT"] = part
            continue
        key, sep, raw = part.partition("=")
        if not sep or key not in MEASURED_FAULTS:
            choices = ", ".join([*FAULTS, "errors=R%", "garbled=R%", "delay=MSms", "crash-after=N"])
            raise ValueError(f"unknown fault {part!r}: expected one of {choices}")
        value = raw.strip()
        try:
            if key in ("errors", "garbled"):
                rate = float(value[:-1]) / 100 if value.endswith("%") else float(value)
                if not 0 <= rate <= 1:
                    raise ValueError
                value = repr(rate)
            elif key == "delay":
                ms = float(value.removesuffix("ms"))
                if not 0 <= ms <= 10_000:
                    raise ValueError
                value = repr(ms)
            else:
                count = int(value)
                if count < 0:
                    raise ValueError
                value = str(count)
        except ValueError:
            raise ValueError(f"fault {part!r}: bad value {raw!r}") from None
        env[MEASURED_FAULTS[key]] = value
    return env
