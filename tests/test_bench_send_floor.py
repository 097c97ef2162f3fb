"""The send-floor benchmark's smoke run (`bench/send_floor.py`, tiny N): the reader and both senders start and
report a figure from every batch (a sender that fails or reports fewer rounds than asked fails the run) — so the
bench still runs when someone needs its figures."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.servers import ROOT
from tests.support import bench_smoke

pytestmark = bench_smoke


def test_send_floor_quick_run(tmp_path) -> None:
    saved = tmp_path / "floor.json"
    result = subprocess.run([sys.executable, "-m", "bench.send_floor", "--sockets", "20", "--rounds", "3",
                             "--repeat", "2", "--save", str(saved)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Python socket.send()" in result.stdout and "Node socket.write()" in result.stdout
    figures = json.loads(saved.read_text())
    assert [len(figures["batches"][name]) for name in ("python", "node")] == [2, 2]  # a figure from each batch
    assert all(value > 0 for name in ("python", "node") for value in figures["batches"][name])
