"""The background prober, its figures, the timeline picture and the exclusive lock.

The prober is tested against a real HTTP server on loopback (the standard library's, with
HTTP/1.1 keep-alive) whose answers the test switches; the figures against timelines built
by hand, where every number is known.
"""

from __future__ import annotations

import http.server
import itertools
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_fwgates.exclusive import LockTimeout, exclusive
from pytest_fwgates.probe import (
    Probe,
    ProbeError,
    Prober,
    VersionRule,
    Writer,
    compute_figures,
)
from pytest_fwgates.timeline import (
    VERSION_PALETTE,
    timeline_csv,
    timeline_svg,
    version_colour,
    version_colours,
    write_timeline,
)


class _Service:
    """A switchable service: ``status`` and ``version`` of its answers, connections counted."""

    def __init__(self) -> None:
        self.status = 200
        self.version = "v1"
        self.connections = 0
        self.items: dict[str, bytes] = {}
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536  # one write per answer: no Nagle/delayed-ACK stall

            def setup(self) -> None:
                service.connections += 1
                super().setup()

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Version", service.version)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.startswith("/items/"):
                    found = service.items.get(self.path.rsplit("/", 1)[1])
                    self._answer(200 if found else 404, found or b"{}")
                    return
                body = json.dumps({"status": "ok", "version": service.version}).encode()
                self._answer(service.status, body)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                item_id = str(len(service.items) + 1)
                service.items[item_id] = data
                self._answer(201, json.dumps({"id": item_id}).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[_Service]:
    served = _Service()
    yield served
    served.close()


def _probe(start: float, ok: bool, version: str | None = "v1", latency: float = 0.002) -> Probe:
    return Probe(start, start + latency, 200 if ok else 502, ok, version if ok else None)


def _prober_threads() -> list[threading.Thread]:
    # the deadlines' watchdog is one thread for the process (it ends when idle), not a prober's
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("fwgates-") and t.name != "fwgates-deadlines"
    ]


# --- figures from known timelines ------------------------------------------------------------


def test_figures_of_a_timeline_with_two_outages() -> None:
    probes = [_probe(i * 0.05, ok=i not in (4, 5, 6, 10)) for i in range(20)]
    figures = compute_figures(probes)
    assert figures.probes == 20
    assert figures.failed_probes == 4
    assert len(figures.outages) == 2
    # first failed probe at 0.20 s, next good answer at 0.35 s + 2 ms
    assert figures.outages[0].ms == pytest.approx(152.0)
    assert figures.outages[1].ms == pytest.approx(52.0)
    assert figures.downtime_ms == pytest.approx(204.0)
    assert figures.longest_outage_ms == pytest.approx(152.0)
    assert figures.availability_pct == pytest.approx(80.0)


def test_figures_of_a_version_switch_and_an_open_outage() -> None:
    probes = [_probe(i * 0.1, True, "v1") for i in range(5)]
    probes += [_probe(0.5 + i * 0.1, True, "v2") for i in range(3)]
    probes += [_probe(0.8, False), _probe(0.9, False)]
    figures = compute_figures(probes, new_version="v2")
    assert figures.versions == ["v1", "v2"]
    assert figures.first_new == pytest.approx(0.502)
    assert figures.last_old == pytest.approx(0.402)
    # an outage still open at the end lasts until the end of the last probe
    assert figures.downtime_ms == pytest.approx(102.0)
    assert compute_figures([]).availability_pct == 0.0


def test_version_rules_read_json_header_and_regex() -> None:
    import http.client

    headers = http.client.HTTPMessage()
    headers["X-Version"] = "v7"
    body = b'{"build": {"version": "v2"}, "text": "release-42"}'
    assert VersionRule(json="build.version").read(headers, body) == "v2"
    assert VersionRule(header="x-version").read(headers, body) == "v7"
    assert VersionRule(regex=r"release-(\d+)").read(headers, body) == "42"
    assert VersionRule(json="missing").read(headers, body) is None
    with pytest.raises(ProbeError, match="exactly one"):
        VersionRule.from_option({"json": "a", "header": "b"})
    with pytest.raises(ProbeError, match="regex"):
        VersionRule.from_option({"regex": "("})


# --- the prober against a real server -------------------------------------------------------


def test_prober_keeps_one_connection_and_its_schedule(service: _Service) -> None:
    with Prober(service.url + "/health", interval=0.02, version=VersionRule(json="version")) as p:
        time.sleep(0.6)
    probes = p.probes
    assert not p.running
    assert len(probes) >= 10
    assert service.connections == 1  # persistent: no connect per probe
    assert all(x.ok and x.version == "v1" for x in probes)
    gaps = sorted(b.start - a.start for a, b in itertools.pairwise(probes))
    assert 0.015 <= gaps[len(gaps) // 2] <= 0.04  # on the schedule, with room for a busy machine
    assert _prober_threads() == []


def test_prober_measures_an_outage_the_server_gives(service: _Service) -> None:
    rule = VersionRule(json="version", expect="v2")
    with Prober(service.url + "/health", interval=0.02, version=rule) as p:
        p.wait_for(lambda probes: len(probes) >= 5, 5)
        service.status = 503
        down = p.mark("down")
        time.sleep(0.3)
        service.status, service.version = 200, "v2"
        up = p.mark("up")
        stable = p.wait_stable(since=down, window_s=0.2, version="v2", timeout=5)
    assert stable is not None and stable >= up - 0.05
    figures = p.figures()
    assert len(figures.outages) == 1
    # generous margins: the machine is shared; the benchmark measures the precision
    injected_ms = (up - down) * 1000
    assert abs(figures.downtime_ms - injected_ms) < 150
    assert figures.versions == ["v1", "v2"]
    assert figures.first_new is not None and figures.last_old is not None
    assert figures.first_new > figures.last_old


def test_prober_counts_refused_connections_as_failures() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Prober(f"http://127.0.0.1:{port}/", interval=0.02) as p:
        p.wait_for(lambda probes: len(probes) >= 5, 5)
    figures = p.figures()
    assert figures.failed_probes == figures.probes >= 5
    assert p.probes[0].error == "connection refused"
    assert figures.availability_pct == 0.0


def test_prober_refuses_bad_settings() -> None:
    with pytest.raises(ProbeError, match=r"below 0\.01"):
        Prober("http://127.0.0.1:1/", interval=0.001)
    with pytest.raises(ProbeError, match="not an http"):
        Prober("ftp://127.0.0.1/")


def test_prober_thread_ends_by_itself_at_its_limit(service: _Service) -> None:
    p = Prober(service.url, interval=0.01, limit_s=0.2).start()
    try:
        p._thread.join(timeout=5)
        assert not p.running
    finally:
        p.stop()


def test_writer_acknowledged_writes_read_back(service: _Service) -> None:
    with Writer(service.url + "/items", service.url + "/items/{id}", interval=0.02) as writer:
        time.sleep(0.3)
    assert len(writer.acknowledged) >= 5
    assert writer.read_back(timeout=10) == []
    service.items.pop("2")  # a write the service acknowledged and then lost
    lost = writer.read_back(timeout=10)
    assert [w.item_id for w in lost] == ["2"]


# --- the picture ----------------------------------------------------------------------------


def test_timeline_svg_shows_outage_marks_and_versions(tmp_path: Path) -> None:
    probes = [_probe(i * 0.05, i not in (8, 9), "v1" if i < 12 else "v2") for i in range(24)]
    marks = [("deploy start", 0.1), ("deploy end", 1.0)]
    figures = compute_figures(probes, new_version="v2")
    svg = timeline_svg(probes, marks, figures, title="deploy <v2>")
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    assert "deploy &lt;v2&gt;" in svg
    assert "deploy start" in svg and "deploy end" in svg
    assert "outage 102 ms" in svg
    assert ">v1<" in svg and ">v2<" in svg
    files = write_timeline(tmp_path, "timeline", probes, marks, figures, "t")
    assert set(files) == {"timeline_csv", "timeline_svg"}
    rows = timeline_csv(probes, marks).splitlines()
    assert rows[0].startswith("t_s,end_s,ok,status,latency_ms,version")
    assert len(rows) == 1 + len(marks) + len(probes)


def test_timeline_labels_never_overlap_and_stay_inside() -> None:
    """Marks close together (a deploy's end, stable, the switch) and near the right edge:
    every label inside the picture, none touching another on its row, the tick labels too."""
    from pytest_fwgates.timeline import _CHAR_W, _WIDTH

    probes = [_probe(i * 0.05, True, "v1" if i < 60 else "v2") for i in range(80)]
    marks = [
        ("deploy start", 0.1),
        ("v2 answers", 2.99),
        ("deploy end", 3.9),
        ("stable", 3.93),
        ("trigger end", 3.94),
        ("healthy", 3.95),
    ]
    svg = timeline_svg(probes, marks, compute_figures(probes, new_version="v2"), title="t")
    root = ET.fromstring(svg)
    boxes: dict[str, list[tuple[float, float]]] = {}
    for text in root.iter("{http://www.w3.org/2000/svg}text"):
        if text.get("transform"):
            continue  # the rotated axis title
        label = text.text or ""
        width = len(label) * _CHAR_W
        at = float(text.get("x", 0))
        anchor = text.get("text-anchor", "start")
        start = at - (width if anchor == "end" else width / 2 if anchor == "middle" else 0)
        assert start >= 0 and start + width <= _WIDTH, label
        boxes.setdefault(text.get("y", ""), []).append((start, start + width))
    for row in boxes.values():
        row.sort()
        for (_, end), (start, _) in itertools.pairwise(row):
            assert start >= end, row
    # the picture says what it shows
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and "80 probes" in (title.text or "")
    assert "answered by v1 then v2" in (title.text or "") and "stable at 3.93 s" in (
        title.text or ""
    )


def test_a_version_has_one_colour_in_every_picture() -> None:
    # the same version, alone or after another, in a rollback or a deploy: the same colour
    alone = timeline_svg([_probe(i * 0.05, True, "v2") for i in range(5)], [])
    after = timeline_svg([_probe(i * 0.05, True, "v1" if i < 3 else "v2") for i in range(6)], [])
    assert f'fill="{version_colour("v2")}"' in alone and f'fill="{version_colour("v2")}"' in after
    # consecutive versions differ, names are stable, no version takes the colour of failures
    numbered = [version_colour(f"v{n}") for n in range(1, len(VERSION_PALETTE) + 1)]
    assert len(set(numbered)) == len(VERSION_PALETTE)
    assert version_colour("1.4.2") != version_colour("1.5.0")
    assert version_colour("Blue") == version_colour("blue") != version_colour("green")
    assert version_colour("release-candidate") == version_colour("release-candidate")
    assert "#c62828" not in VERSION_PALETTE


def test_two_versions_of_one_picture_never_share_a_colour() -> None:
    """Any two names can hash alike; a picture of a deploy between them must still show the
    switch. The colours of a set of versions are distinct (up to the palette's size) and the
    same whatever order the versions come in, so every picture of them agrees."""
    from pytest_fwgates.canary_picture import canary_svg

    names = [f"{a}.{b}" for a in range(3) for b in range(12)] + ["app:1.0", "x", "y", "sha-a1b"]
    alike = [
        (a, b)
        for a, b in itertools.combinations(names, 2)
        if version_colour(a) == version_colour(b)
    ]
    assert alike  # eight colours: some names share one
    for a, b in alike[:20]:
        colours = version_colours([a, b])
        assert colours[a] != colours[b] and colours == version_colours([b, a])
        probes = [_probe(i * 0.05, True, a if i < 3 else b) for i in range(6)]
        for svg in (
            timeline_svg(probes, []),
            canary_svg(probes, [], new=b, steps=[(0.0, 50.0)], start=0.0, end=0.3),
        ):
            assert f'fill="{colours[a]}"' in svg and f'fill="{colours[b]}"' in svg, (a, b)
    for size in range(1, len(VERSION_PALETTE) + 1):
        for group in itertools.islice(itertools.combinations(names, size), 200):
            assert len(set(version_colours(group).values())) == size, group


# --- one state-changing check at a time ------------------------------------------------------


def test_exclusive_lock_serialises_and_is_bounded(tmp_path: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with exclusive(tmp_path):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(LockTimeout, match="held"), exclusive(tmp_path, wait_s=0.2):
            pass
    finally:
        release.set()
        thread.join(10)
    with exclusive(tmp_path, wait_s=1) as waited:
        assert waited < 1
        with exclusive(tmp_path, wait_s=0.1) as nested:  # re-entrant in one thread
            assert nested == 0.0
