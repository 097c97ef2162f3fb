"""The live benchmark's smoke run against Node's `ws` (`bench/live_bench.py --reference node`, tiny N): the
project and the Node reference (bench/reference-node/broadcast.js) start, take the same sockets and broadcasts,
and every figure comes out — so the bench still runs when someone needs its figures."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import ROOT
from tests.support import bench_smoke

pytestmark = bench_smoke


def test_live_bench_small_run_against_node() -> None:
    # The first run may install the reference (`npm ci`, better-sqlite3 built from source): minutes, hence the bound.
    result = subprocess.run(
        [sys.executable, "-m", "bench.live_bench", "--students", "10", "--rounds", "2", "--repeat", "1",
         "--reference", "node"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the reference: node" in result.stdout
    for figure in ("p95_ms", "cpu_us_per_delivery", "cpu_user_us_per_delivery", "cpu_system_us_per_delivery",
                   "connect_s", "connect_cpu_us_per_socket", "done_last_delivery_ms"):
        assert figure in result.stdout
