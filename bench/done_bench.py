"""DONE for a class of N students, on several databases in one run, as ratios to SQLite's.

One server per database (`python -m server.serve`, as `make run` does, each on a scratch database),
the same class of N enrolled students on each, then rounds of: POST /attendance/start, and DONE on the
teacher's socket, timed from send to the teacher's DONE (that is the bulk write of N records and its commit;
the broadcast to the students' sockets is bench/live_bench.py's business). The databases take turns within
each round, so that a machine busy with other work slows them all alike: read the ratios, not the
milliseconds.

    .venv/bin/python -m bench.done_bench                        # SQLite only
    .venv/bin/python -m bench.done_bench --mongodb              # + SecantusDB, replica set and standalone
    .venv/bin/python -m bench.done_bench --mongodb-uri rs=mongodb://127.0.0.1:27017/bench  # + your server

--mongodb starts two throw-away SecantusDB servers with scripts/mongo-test-server (docs/mongodb.md) and
stops them afterwards. A URI's database is only the base name: each server gets a scratch database beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.servers import DaphneServer, scratch_database
from tests.support import PERSISTED, Person, big_class

ROOT = Path(__file__).resolve().parent.parent

MONGO_TEST_SERVER = ROOT / "scripts" / "mongo-test-server"


def start_secantus(stack: ExitStack, standalone: bool) -> str:
    """A SecantusDB server for this run (stopped when the stack closes); its MONGODB_URI."""
    command = [sys.executable, str(MONGO_TEST_SERVER), "start", *(["--standalone"] if standalone else [])]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    stack.callback(subprocess.run, [sys.executable, str(MONGO_TEST_SERVER), "stop", values["PID"]], check=False)
    return values["MONGODB_URI"]


def server_for(stack: ExitStack, tmp: Path, label: str, mongodb_uri: str | None) -> DaphneServer:
    """A server on a scratch database of the backend: SQLite when `mongodb_uri` is None."""
    db_env = stack.enter_context(scratch_database(tmp, {"MONGODB_URI": mongodb_uri} if mongodb_uri else {}))
    env = {"BCRYPT_ROUNDS": "4", "LOG_LEVEL": "WARNING", "MONGODB_URI": "", "DATABASE_URL": "", **db_env}
    server = DaphneServer(env, log_path=tmp / f"{label}.log")
    server.migrate()
    server.start()
    stack.callback(server.stop)
    return server


class Target:
    """One server with a teacher, a class of N and the teacher's socket."""

    def __init__(self, label: str, server: DaphneServer) -> None:
        self.label = label
        self.server = server
        self.times_ms: list[float] = []

    async def prepare(self, students: int) -> None:
        with httpx.Client(base_url=self.server.http_url, timeout=60) as client:
            self.teacher = Person(client, "teacher")
        self.class_id, _ = big_class(self.server, self.teacher, students)
        self.students = students
        self.ws = await connect(f"{self.server.ws_url}?token={self.teacher.token}", max_size=None)

    async def round(self, client: httpx.AsyncClient) -> None:
        started = await client.post(f"{self.server.http_url}/attendance/start", json={"classId": self.class_id},
                                    headers=self.teacher.headers)
        started.raise_for_status()
        sent = time.perf_counter()
        await self.ws.send('{"event":"DONE"}')
        reply = json.loads(await asyncio.wait_for(self.ws.recv(), 120))
        self.times_ms.append((time.perf_counter() - sent) * 1000)
        expected = {"message": PERSISTED, "present": 0, "absent": self.students, "late": 0, "excused": 0}
        expected["total"] = self.students
        assert reply == {"event": "DONE", "data": expected}, reply


async def measure(targets: list[Target], students: int, rounds: int) -> None:
    for target in targets:
        t0 = time.perf_counter()
        await target.prepare(students)
        print(f"{target.label}: {students} students enrolled in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    async with httpx.AsyncClient(timeout=60) as client:
        for target in targets:  # warm-up: the first DONE of a process pays for imports and caches
            await target.round(client)
            target.times_ms.clear()
        for _ in range(rounds):
            for target in targets:
                await target.round(client)
    for target in targets:
        await target.ws.close()


def report(targets: list[Target], students: int) -> dict[str, Any]:
    reference = statistics.median(targets[0].times_ms)
    print(f"\nDONE for {students} enrolled students, send → teacher's DONE, {len(targets[0].times_ms)} rounds")
    print(f"{'database':28} {'median':>9} {'min–max':>17} {'× ' + targets[0].label:>12}")
    results: dict[str, Any] = {"students": students, "rounds": len(targets[0].times_ms)}
    for target in targets:
        median = statistics.median(target.times_ms)
        low, high = min(target.times_ms), max(target.times_ms)
        print(f"{target.label:28} {median:7.0f} ms {low:7.0f}–{high:.0f} ms {median / reference:11.1f}×")
        results[target.label] = {"median_ms": round(median, 1), "min_ms": round(low, 1), "max_ms": round(high, 1),
                                 "ratio": round(median / reference, 2)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mongodb", action="store_true", help="add SecantusDB, replica set and standalone")
    parser.add_argument("--mongodb-uri", action="append", default=[], metavar="LABEL=URI",
                        help="add a MongoDB server of yours (repeatable)")
    parser.add_argument("--save", type=Path, help="write the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        backends: list[tuple[str, str | None]] = [("SQLite", None)]
        if args.mongodb:
            backends.append(("SecantusDB replica set", start_secantus(stack, standalone=False)))
            backends.append(("SecantusDB standalone", start_secantus(stack, standalone=True)))
        for item in args.mongodb_uri:
            label, _, uri = item.partition("=")
            backends.append((label, uri))
        targets = [Target(label, server_for(stack, Path(tmp), f"server{i}", uri))
                   for i, (label, uri) in enumerate(backends)]
        asyncio.run(measure(targets, args.students, args.rounds))
        results = report(targets, args.students)
    if args.save:
        args.save.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
