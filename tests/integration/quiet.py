"""Wait until the stack's Prometheus has seen a healthy app for a while.

Other integration tests break the app on purpose (drills); a test that holds Prometheus'
figures to a standard first waits, bounded, until those drills no longer show.
"""

from __future__ import annotations

from urllib.parse import quote

from examples.stack import Stack, procs


def wait_quiet(stack: Stack, seconds: int = 15, timeout: float = 90.0) -> None:
    """Until ``up{job="app"}`` was 1 for the last ``seconds`` and AppDown is not firing."""
    base = stack.urls["prometheus"]
    query = quote(f'min_over_time(up{{job="app"}}[{seconds}s])')

    def quiet() -> str | None:
        status, body = procs.http_json(f"{base}/api/v1/query?query={query}", timeout=2.0)
        result = (body or {}).get("data", {}).get("result", []) if status == 200 else []
        if not result or result[0]["value"][1] != "1":
            return f"the app was not up for the last {seconds} s"
        status, body = procs.http_json(f"{base}/api/v1/alerts", timeout=2.0)
        alerts = (body or {}).get("data", {}).get("alerts", []) if status == 200 else None
        if alerts is None:
            return f"alerts: status {status}"
        if any(
            a["labels"].get("alertname") == "AppDown" and a["state"] == "firing" for a in alerts
        ):
            return "AppDown is still firing"
        return None

    procs.wait_for("a quiet Prometheus", quiet, timeout, every=0.5)


def wait_history(stack: Stack, job: str, seconds: int, timeout: float = 60.0) -> None:
    """Until Prometheus holds ``seconds`` of scrapes of ``job`` (at 1 s): a range query over
    that window is then covered by its samples."""
    base = stack.urls["prometheus"]
    query = quote(f'count_over_time(up{{job="{job}"}}[{seconds + 2}s])')

    def covered() -> str | None:
        status, body = procs.http_json(f"{base}/api/v1/query?query={query}", timeout=2.0)
        result = (body or {}).get("data", {}).get("result", []) if status == 200 else []
        if not result or float(result[0]["value"][1]) < seconds + 1:
            return f"fewer than {seconds + 1} scrapes of {job} yet"
        return None

    procs.wait_for(f"{seconds} s of scrapes of {job}", covered, timeout, every=0.5)
