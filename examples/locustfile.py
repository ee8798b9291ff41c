"""Load for the example stack (Locust), e.g. from a load check or by hand:

    locust -f examples/locustfile.py --headless --host "$FWGATES_APP_URL" \\
        --users 20 --spawn-rate 10 --run-time 30s

Mostly reads, with realistic latency (``/work?ms=20``), and some acknowledged writes read back.
"""

from __future__ import annotations

import uuid

from locust import HttpUser, between, task


class AppUser(HttpUser):
    wait_time = between(0.01, 0.05)

    @task(5)
    def version(self) -> None:
        self.client.get("/version")

    @task(3)
    def work(self) -> None:
        self.client.get("/work?ms=20", name="/work?ms=20")

    @task(1)
    def write_then_read(self) -> None:
        created = self.client.post("/items", json={"token": uuid.uuid4().hex})
        if created.status_code == 201:
            self.client.get(f"/items/{created.json()['id']}", name="/items/[id]")
