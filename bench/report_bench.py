"""Report benchmark: GET /class/:id/report, /report.csv and /report.xlsx for a class of N students with S sessions.

Builds the data fast on a scratch database of the configured backend (SQLite by default; PostgreSQL
through DATABASE_URL; MongoDB through MONGODB_URI; never your own database): N students, one class,
S persisted sessions and N × S attendance records, written with bulk_create. Then, R times each:

- in-process (Django's test client, the whole request path but the network): wall time and the number
  of database queries of the report, the CSV and the session list;
- over the wire: the same requests to a real Daphne (`python -m server.serve`, as `make run`)
  on the same database, timed by an httpx client;
- a reference measured in the same run: GET /class/:id (the class with its N students), so that the
  figures can be read as ratios on a noisy machine.

Prints medians (and min–max) over the R runs.

    .venv/bin/python -m bench.report_bench                          # N=1000, S=100, R=7, SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python -m bench.report_bench
    .venv/bin/python -m bench.report_bench --save run.json --compare old.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.servers import DaphneServer, scratch_database


def backend_name() -> str:
    if os.environ.get("MONGODB_URI"):
        return "mongodb"
    return "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"


def build(students: int, sessions: int) -> tuple[Any, Any, Any]:
    """One teacher, `students` students enrolled, `sessions` committed sessions, a record for everyone in
    each (present about 85% of the time). Returns (teacher, class, first student)."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Role, User
    from classes.models import Class, Enrollment
    from live.models import Attendance, AttendanceSession

    password = make_password("secret123")  # hashed once, shared: nobody logs in
    teacher = User.objects.create(email="teacher@bench.example", name="Bench Teacher", role=Role.TEACHER)
    users = [
        User(email=f"student{i:05d}@bench.example", name=f"Student {i:05d}", role=Role.STUDENT, password=password)
        for i in range(students)
    ]
    User.objects.bulk_create(users, batch_size=1000)
    klass = Class.objects.create(class_name="Bench class, 1ère", teacher=teacher)
    Enrollment.objects.bulk_create([Enrollment(klass=klass, student=u) for u in users], batch_size=1000)
    start = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    markers, records = [], []
    for day in range(sessions):
        started_at = start + timedelta(days=day)
        ended_at = started_at + timedelta(minutes=5)
        session = AttendanceSession(
            klass=klass, teacher=teacher, state="persisted", started_at=started_at, updated_at=ended_at,
            ended_at=ended_at,
        )
        markers.append(session)
        for index, user in enumerate(users):
            status = "absent" if (index * 7 + day * 3) % 20 < 3 else "present"
            records.append(
                Attendance(session=session, klass=klass, student=user, status=status, started_at=started_at)
            )
    AttendanceSession.objects.bulk_create(markers, batch_size=1000)
    for offset in range(0, len(records), 10_000):
        Attendance.objects.bulk_create(records[offset : offset + 10_000], batch_size=10_000)
    return teacher, klass, users[0]


def timed(request: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    response = request()
    return (time.perf_counter() - began) * 1000, response


def in_process(client: Any, path: str, headers: dict[str, str]) -> tuple[float, int, int]:
    """(ms, queries, bytes) of one in-process request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        ms, response = timed(lambda: client.get(path, headers=headers))
    assert response.status_code == 200, response.content[:300]
    return ms, len(queries), len(response.content)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-wire", action="store_true", help="in-process only")
    parser.add_argument("--save", type=Path, help="write the results as JSON")
    parser.add_argument("--compare", type=Path, help="a JSON file from an earlier --save")
    args = parser.parse_args()

    with ExitStack() as stack:
        tmp_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="report-bench-")))
        db_env = stack.enter_context(scratch_database(tmp_dir))
        os.environ.update(db_env)
        os.environ.setdefault("SECRET_KEY", "report-bench-secret-key-not-for-production")
        os.environ["DEBUG"] = "0"
        os.environ["ALLOWED_HOSTS"] = "localhost,127.0.0.1,testserver"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attendance_site.settings")
        warnings.filterwarnings("ignore", "No directory at")  # WhiteNoise: no collectstatic for a benchmark
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections
        from django.test import Client

        from accounts.tokens import issue_token

        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        teacher, klass, student = build(args.students, args.sessions)
        if connections["default"].vendor == "postgresql":
            # What autovacuum does to a live database: without statistics, the planner guesses a hundred
            # rows for the class and sorts 100,000 on disk instead of hashing 1,000 groups.
            with connections["default"].cursor() as cursor:
                cursor.execute("ANALYZE")
        build_s = time.perf_counter() - began
        print(
            f"{backend_name()}: {args.students} students × {args.sessions} sessions = "
            f"{args.students * args.sessions:,} records, built in {build_s:.1f} s; {args.runs} runs each"
        )
        headers = {"Authorization": issue_token(teacher.id, teacher.role)}
        paths = {
            "reference GET /class/:id": f"/class/{klass.id}",
            "GET /class/:id/report": f"/class/{klass.id}/report",
            "GET /class/:id/report.csv": f"/class/{klass.id}/report.csv",
            "GET /class/:id/report.xlsx": f"/class/{klass.id}/report.xlsx?tz=Europe/Paris",
            "GET /class/:id/sessions (100)": f"/class/{klass.id}/sessions",
        }
        client = Client()
        local: dict[str, list[float]] = {name: [] for name in paths}
        queries: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for path in paths.values():  # warm-up: connections, caches, imports
            in_process(client, path, headers)
        for _ in range(args.runs):
            for name, path in paths.items():
                ms, count, size = in_process(client, path, headers)
                local[name].append(ms)
                queries[name], sizes[name] = count, size
        # Peak memory of one request of each route (tracemalloc: Python's allocations, the driver's included).
        peaks: dict[str, int] = {}
        for name, path in paths.items():
            tracemalloc.start()
            in_process(client, path, headers)
            peaks[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        connections.close_all()

        wire: dict[str, list[float]] = {name: [] for name in paths}
        if not args.no_wire:
            server = DaphneServer(db_env, log_path=tmp_dir / "daphne.log")
            server.start()
            stack.callback(server.stop)
            with httpx.Client(base_url=server.http_url, timeout=120) as api:
                for path in paths.values():
                    api.get(path, headers=headers).raise_for_status()
                for _ in range(args.runs):
                    for name, path in paths.items():
                        ms, response = timed(lambda path=path: api.get(path, headers=headers))
                        assert response.status_code == 200, response.text[:300]
                        wire[name].append(ms)

    results: dict[str, Any] = {
        "backend": backend_name(),
        "students": args.students,
        "sessions": args.sessions,
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "routes": {
            name: {
                "queries": queries[name],
                "bytes": sizes[name],
                "peak_bytes": peaks[name],
                "in_process_ms": summary(local[name]),
                **({"wire_ms": summary(wire[name])} if wire[name] else {}),
            }
            for name in paths
        },
    }
    report(results, json.loads(args.compare.read_text()) if args.compare else None)
    if args.save:
        args.save.write_text(json.dumps(results, indent=2))


def report(results: dict[str, Any], previous: dict[str, Any] | None) -> None:
    routes = results["routes"]
    reference = routes["reference GET /class/:id"]
    print(f"{'route':32} {'queries':>7} {'bytes':>9} {'in-process ms':>22} {'× ref':>6} {'wire ms':>22} {'× ref':>6}")
    for name, figures in routes.items():
        local = figures["in_process_ms"]
        line = (
            f"{name:32} {figures['queries']:7d} {figures['bytes']:9,d} "
            f"{local['median']:8.1f} ({local['min']:5.1f}–{local['max']:6.1f}) "
            f"{local['median'] / reference['in_process_ms']['median']:6.1f}"
        )
        if "wire_ms" in figures:
            wire = figures["wire_ms"]
            line += (
                f" {wire['median']:8.1f} ({wire['min']:5.1f}–{wire['max']:6.1f}) "
                f"{wire['median'] / reference['wire_ms']['median']:6.1f}"
            )
        if "peak_bytes" in figures:
            line += f"  peak {figures['peak_bytes'] / 2**20:6.1f} MiB"
        if previous and name in previous.get("routes", {}):
            before = previous["routes"][name]["in_process_ms"]["median"]
            line += f"   was {before:.1f} ms in-process ({local['median'] / before:.2f}×)"
        print(line)


if __name__ == "__main__":
    main()
