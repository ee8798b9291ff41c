"""Host checks: the same N checks as a gate vs hand-written pytest-testinfra tests, and over ssh.

Both sides measure the same host facts through the same testinfra calls (a file's existence,
mode and owner; a user's uid; a group's gid; a kernel parameter), one pytest process each,
from the minimal venv, in interleaved pairs:

1. **local**: the gate on ``local://`` vs the parametrized pytest-testinfra tests on
   ``local://``: gate time / plain time (target <= 1.10).
2. **ssh**: the gate on one ``ssh://`` host (a real sshd on 127.0.0.1, ControlPath reuse on) vs
   the same gate on ``local://``: ssh time / local time (target <= 3).
3. **fleet**: the gate on three ssh aliases of that sshd, under ``-n 2`` vs serial: the speedup.
4. **plain ssh** (``--plain-ssh``): the pytest-testinfra tests on the same ssh host, which open
   one ssh connection per command (no ControlPath), for reference.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import Row, interleaved, minimal_venv, run_pytest

LOCAL_TARGET = 1.10
SSH_TARGET = 3.0

_CHECKS = (
    '      - file: /etc/passwd\n        id: c{i}\n        expect: {{mode: "0644", owner: root}}',
    "      - user: root\n        id: c{i}\n        expect: {{uid: 0}}",
    "      - group: root\n        id: c{i}\n        expect: {{gid: 0}}",
    "      - sysctl: kernel.ostype\n        id: c{i}\n        expect: {{value: Linux}}",
)

_PLAIN = """import pytest


@pytest.mark.parametrize("i", range({count}))
def test_host(host, i):
    kind = i % 4
    if kind == 0:
        f = host.file("/etc/passwd")
        assert f.exists
        assert f.mode == 0o644
        assert f.user == "root"
    elif kind == 1:
        u = host.user("root")
        assert u.exists
        assert u.uid == 0
    elif kind == 2:
        g = host.group("root")
        assert g.exists
        assert g.gid == 0
    else:
        assert host.sysctl("kernel.ostype") == "Linux"
"""


def write(folder: Path, count: int) -> tuple[Path, Path]:
    """The gate side in ``folder/gate``, the plain side in ``folder/plain`` (apart, so that
    neither run collects the other's tests)."""
    checks = "\n".join(_CHECKS[i % len(_CHECKS)].format(i=i) for i in range(count))
    gate_dir, plain_dir = folder / "gate", folder / "plain"
    (gate_dir / "gates").mkdir(parents=True, exist_ok=True)
    plain_dir.mkdir(exist_ok=True)
    (gate_dir / "gates" / "bench.yaml").write_text(
        "gate: bench\ntitle: host check benchmark\ncriteria:\n"
        f"  hosts:\n    title: host checks\n    checks:\n{checks}\n"
    )
    (plain_dir / "test_testinfra.py").write_text(_PLAIN.format(count=count))
    return gate_dir, plain_dir


def measure(count: int, pairs: int, ssh: bool, plain_ssh: bool = False) -> list[Row]:
    python = minimal_venv()
    rows: list[Row] = []
    off = ["-p", "no:xdist"]
    with tempfile.TemporaryDirectory(prefix="fwgates-bench-hosts-") as tmp:
        folder = Path(tmp)
        folder, plain_dir = write(folder, count)
        gate = [*off, "--gate=bench", "--gate-junit=out/g.xml"]
        local = ["--hosts=local://"]
        pair = interleaved(
            lambda: run_pytest(python, folder, [*gate, *local]),
            lambda: run_pytest(python, plain_dir, [*off, *local, "test_testinfra.py"]),
            pairs,
        )
        print(f"{count} host checks as a gate (local): {pair.a:7.2f} s (median of {pair.pairs})")
        print(f"{count} pytest-testinfra tests (local): {pair.b:7.2f} s")
        print(f"ratio gate/testinfra (local) at {count}: {pair.ratio:.3f}")
        rows.append(
            Row(
                f"hosts: {count} host checks, local",
                f"{pair.a:.2f} s vs {pair.b:.2f} s = {pair.ratio:.3f}",
                f"<= {LOCAL_TARGET:.2f}",
                pair.ratio <= LOCAL_TARGET,
            )
        )
        if ssh:
            rows.extend(
                _ssh(python, folder, plain_dir, count, max(3, pairs // 2), gate, local, plain_ssh)
            )
    return rows


def _ssh(
    python: Path,
    folder: Path,
    plain_dir: Path,
    count: int,
    pairs: int,
    gate: list[str],
    local: list[str],
    plain_ssh: bool,
) -> list[Row]:
    from tests.integration.sshd import running_sshd

    with (
        tempfile.TemporaryDirectory(prefix="fwgates-bench-sshd-") as tmp,
        running_sshd(Path(tmp)) as fleet,
    ):
        remote = ["--hosts=ssh://web1", f"--ssh-config={fleet.config}"]
        pair = interleaved(
            lambda: run_pytest(python, folder, [*gate, *remote]),
            lambda: run_pytest(python, folder, [*gate, *local]),
            pairs,
        )
        print(f"{count} host checks as a gate (ssh): {pair.a:7.2f} s (median of {pair.pairs})")
        print(f"{count} host checks as a gate (local): {pair.b:7.2f} s")
        print(f"ratio ssh/local at {count}: {pair.ratio:.3f}")
        # a fleet: three aliases of the sshd, the same checks on each, serial vs -n 2
        fleet_hosts = [f"--hosts={fleet.hosts('ssh')}", f"--ssh-config={fleet.config}"]
        gate_only = [a for a in gate if a not in ("-p", "no:xdist")]
        spread = interleaved(
            lambda: run_pytest(python, folder, [*gate_only, *fleet_hosts, "-n", "2"]),
            lambda: run_pytest(python, folder, [*gate, *fleet_hosts]),
            1,
        )
        speedup = spread.b / spread.a
        print(f"{3 * count} checks on 3 ssh hosts: -n 2 {spread.a:.2f} s, serial {spread.b:.2f} s")
        print(f"speedup of -n 2 on 3 hosts: {speedup:.2f}x (2 cores, shared with the sshd)")
        if plain_ssh:  # testinfra without a ControlPath: one ssh connection per command
            plain = ["-p", "no:xdist", *remote, "test_testinfra.py"]
            seconds = run_pytest(python, plain_dir, plain)
            print(f"{count} pytest-testinfra tests (ssh, no ControlPath): {seconds:7.2f} s")
    return [
        Row(
            f"hosts: {count} host checks, ssh/local",
            f"{pair.a:.2f} s vs {pair.b:.2f} s = {pair.ratio:.3f}",
            f"<= {SSH_TARGET:.2f}",
            pair.ratio <= SSH_TARGET,
        ),
        Row(
            f"hosts: {3 * count} checks on 3 ssh hosts, -n 2",
            f"{spread.a:.2f} s vs serial {spread.b:.2f} s = {speedup:.2f}x",
        ),
    ]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--no-ssh", action="store_true", help="only the local comparison")
    parser.add_argument(
        "--plain-ssh", action="store_true", help="also time plain pytest-testinfra over ssh (slow)"
    )
    args = parser.parse_args(argv)
    return measure(args.checks, args.pairs, not args.no_ssh, args.plain_ssh)


if __name__ == "__main__":
    main()
