"""The HTTP benchmark's smoke run (`bench/http_bench.py --quick`): the servers start, the reference answers
what the project answers, and every phase completes — so the bench still runs when someone needs its figures."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import ROOT
from tests.support import bench_smoke

pytestmark = bench_smoke


def test_http_bench_quick_run() -> None:
    """With this checkout as its own `--baseline` too: the before/after column is there, from a third server."""
    # The first run installs the reference (`npm ci`, better-sqlite3 built from source): minutes, hence the bound.
    # And every other server (--servers): the same answers from uvicorn and granian, routes only; Daphne's floor
    # on GET /auth/me only.
    result = subprocess.run([sys.executable, "-m", "bench.http_bench", "--quick", "--baseline", str(ROOT),
                             "--servers", "uvicorn,granian,floor"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "lesson start (N = 20)" in result.stdout
    assert result.stdout.count("÷ baseline") == 5, result.stdout  # four routes and the lesson start
    headers = [line.split() for line in result.stdout.splitlines() if line.lstrip().startswith("project")]
    assert [header.count("uvicorn") for header in headers] == [1, 1, 1, 1, 0], result.stdout
    assert [header.count("granian") for header in headers] == [1, 1, 1, 1, 0], result.stdout
    assert [header.count("floor") for header in headers] == [1, 0, 0, 0, 0], result.stdout
    assert "WARNING" not in result.stdout, result.stdout  # the reference answered differently
    for route in ("GET /auth/me", "GET /classes", "GET /class/:id (30 students)", "GET /class/:id/report (30 × 20)"):
        assert route in result.stdout
