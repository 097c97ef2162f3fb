"""Live attendance benchmark: a real server, real sockets, numbers you can compare between runs.

Starts the server (`python -m attendance_site.serve`, as `make run` does) with a low BCRYPT_ROUNDS,
creates two teachers and N students through the HTTP API, connects every one of them over WebSocket,
and measures:

- connecting N authenticated sockets (wall time);
- ATTENDANCE_MARKED from send to the last delivery, for a class of 100 and a class of N (p50/p95);
- MY_ATTENDANCE round trip with every socket open (p50/p95);
- DONE for the class of N: send → the teacher's DONE, and send → the last participant's DONE;
- server memory per open socket (RSS growth while connecting / N).

With --processes 2 it starts two servers sharing Redis (REDIS_URL) and a PostgreSQL database and
spreads the sockets across them (the teacher on the first).

    .venv/bin/python bench/live_bench.py                       # N=1000, one process, SQLite
    .venv/bin/python bench/live_bench.py --processes 2         # two processes, Redis + PostgreSQL
    .venv/bin/python bench/live_bench.py --save run.json --compare old.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import DaphneServer, scratch_database  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Collector:
    """Waits for `expected` messages of one event across many sockets, keeping their arrival times.

    One shared counter instead of a task per socket per round keeps the client's own cost per
    message low, so the numbers measure the server rather than the load generator."""

    def __init__(self) -> None:
        self.event = ""
        self.expected = 0
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.done: asyncio.Future[None] | None = None

    def expect(self, event: str, count: int) -> None:
        self.event, self.expected, self.arrivals = event, count, []
        self.done = asyncio.get_running_loop().create_future()

    def record(self, arrived: float, raw: str | bytes) -> None:
        if self.done is None or self.done.done():
            return
        message = json.loads(raw)
        if message["event"] != self.event:
            raise AssertionError(f"expected {self.event}, got {message}")
        self.arrivals.append((arrived, message))
        if len(self.arrivals) == self.expected:
            self.done.set_result(None)

    async def wait(self, timeout: float = 60.0) -> list[tuple[float, dict[str, Any]]]:
        await asyncio.wait_for(self.done, timeout)
        return self.arrivals


class Participant(WSListener):
    """One socket (picows, a client cheap enough per message not to dominate the measurement);
    what it reads goes to the collector it is attached to."""

    def __init__(self, user_id: str, collector: Collector) -> None:
        self.user_id = user_id
        self.collector = collector
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.collector.record(time.perf_counter(), frame.get_payload_as_bytes())

    def send(self, text: str) -> None:
        self.transport.send(WSMsgType.TEXT, text.encode())

    async def close(self) -> None:
        self.transport.send_close()
        self.transport.disconnect()


async def create_users(client: httpx.AsyncClient, role: str, count: int, concurrency: int = 16) -> list[dict]:
    semaphore = asyncio.Semaphore(concurrency)
    tag = secrets.token_hex(3)

    async def one(i: int) -> dict:
        async with semaphore:
            email = f"{role}{i}-{tag}@bench.example.com"
            body = {"name": f"{role} {i}", "email": email, "password": "benchpass", "role": role}
            signup = await client.post("/auth/signup", json=body)
            signup.raise_for_status()
            login = await client.post("/auth/login", json={"email": email, "password": "benchpass"})
            login.raise_for_status()
            return {"id": signup.json()["data"]["_id"], "token": login.json()["data"]["token"]}

    return await asyncio.gather(*(one(i) for i in range(count)))


async def create_class(client: httpx.AsyncClient, teacher: dict, students: list[dict], concurrency: int = 16) -> str:
    headers = {"Authorization": teacher["token"]}
    created = await client.post("/class", json={"className": f"Bench {len(students)}"}, headers=headers)
    created.raise_for_status()
    class_id = created.json()["data"]["_id"]
    semaphore = asyncio.Semaphore(concurrency)

    async def enrol(student: dict) -> None:
        async with semaphore:
            response = await client.post(
                f"/class/{class_id}/add-student", json={"studentId": student["id"]}, headers=headers
            )
            response.raise_for_status()

    await asyncio.gather(*(enrol(s) for s in students))
    return class_id


async def connect_all(urls: list[str], users: list[dict], collector: Collector,
                      concurrency: int = 64) -> list[Participant]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int, user: dict) -> Participant:
        async with semaphore:
            url = f"{urls[i % len(urls)]}?token={user['token']}"
            _, participant = await ws_connect(lambda: Participant(user["id"], collector), url)
            return participant

    return await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))


async def broadcast_latency(collector: Collector, teacher: Participant, audience: int, student_ids: list[str],
                            rounds: int) -> list[float]:
    """Send ATTENDANCE_MARKED and time it to the last of `audience` sockets (teacher included) to get it."""
    latencies = []
    for r in range(rounds):
        frame = {"event": "ATTENDANCE_MARKED",
                 "data": {"studentId": student_ids[r % len(student_ids)], "status": "present" if r % 2 else "absent"}}
        collector.expect("ATTENDANCE_MARKED", audience)
        sent = time.perf_counter()
        teacher.send(json.dumps(frame))
        arrivals = await collector.wait()
        latencies.append(max(t for t, _ in arrivals) - sent)
    return latencies


async def round_trips(collector: Collector, student: Participant, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        collector.expect("MY_ATTENDANCE", 1)
        sent = time.perf_counter()
        student.send('{"event":"MY_ATTENDANCE"}')
        [(arrived, _)] = await collector.wait()
        times.append(arrived - sent)
    return times


def start_profiler(args: argparse.Namespace, pid: int, phase: str) -> subprocess.Popen | None:
    """py-spy (pip install py-spy) samples the first server during one phase of the run."""
    if not args.profile or args.profile_phase != phase:
        return None
    return subprocess.Popen(["py-spy", "record", "-p", str(pid), "-f", "raw", "-o", str(args.profile)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(30)


async def run(args: argparse.Namespace, servers: list[DaphneServer]) -> dict[str, Any]:
    n = args.students
    ws_urls = [s.ws_url for s in servers]
    results: dict[str, Any] = {"students": n, "processes": len(servers)}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=servers[0].http_url, timeout=60, limits=limits) as client:
        t0 = time.perf_counter()
        teachers = await create_users(client, "teacher", 2)
        students = await create_users(client, "student", n)
        small, large = students[: min(100, n)], students
        small_class = await create_class(client, teachers[0], small)
        large_class = await create_class(client, teachers[1], large)
        results["setup_s"] = round(time.perf_counter() - t0, 2)
        for teacher, class_id in ((teachers[0], small_class), (teachers[1], large_class)):
            started = await client.post("/attendance/start", json={"classId": class_id},
                                        headers={"Authorization": teacher["token"]})
            started.raise_for_status()

    pids = [s.process.pid for s in servers]
    profiler = start_profiler(args, pids[0], "connect")
    rss_before = sum(rss_kib(pid) for pid in pids)
    t0 = time.perf_counter()
    collector = Collector()
    teacher_small, teacher_large = await connect_all(ws_urls[:1], teachers, collector)
    student_sockets = await connect_all(ws_urls, students, collector)
    results["connect_s"] = round(time.perf_counter() - t0, 3)
    stop_profiler(profiler)
    await asyncio.sleep(1.0)
    rss_after = sum(rss_kib(pid) for pid in pids)
    results["memory_per_socket_kib"] = round((rss_after - rss_before) / (n + 2), 1)

    profiler = start_profiler(args, pids[0], "mark")
    if profiler:
        await asyncio.sleep(1.0)
    for label, teacher, members in (("small", teacher_small, small), ("large", teacher_large, large)):
        ids = [m["id"] for m in members]
        await broadcast_latency(collector, teacher, len(members) + 1, ids, 3)  # warm-up
        latencies = await broadcast_latency(collector, teacher, len(members) + 1, ids, args.rounds)
        results[f"mark_{label}_n"] = len(members)
        results[f"mark_{label}_p50_ms"] = round(percentile(latencies, 50) * 1000, 1)
        results[f"mark_{label}_p95_ms"] = round(percentile(latencies, 95) * 1000, 1)

    stop_profiler(profiler)
    rtts = await round_trips(collector, student_sockets[-1], args.rounds * 4)
    results["my_attendance_p50_ms"] = round(percentile(rtts, 50) * 1000, 2)
    results["my_attendance_p95_ms"] = round(percentile(rtts, 95) * 1000, 2)

    collector.expect("DONE", n + 1)
    sent = time.perf_counter()
    teacher_large.send('{"event":"DONE"}')
    arrivals = await collector.wait(timeout=120)
    assert arrivals[0][1]["data"]["total"] == n, arrivals[0][1]
    results["done_teacher_ms"] = round((arrivals[0][0] - sent) * 1000, 1)
    results["done_last_delivery_ms"] = round((max(t for t, _ in arrivals) - sent) * 1000, 1)

    await asyncio.gather(*(p.close() for p in [teacher_small, teacher_large, *student_sockets]))
    return results


TARGETS = {  # metric: (limit, description)
    "mark_large_p50_ms": (100, "ATTENDANCE_MARKED to 1,000: p50 ≤ 100 ms"),
    "mark_large_p95_ms": (150, "ATTENDANCE_MARKED to 1,000: p95 ≤ 150 ms"),
    "my_attendance_p50_ms": (5, "MY_ATTENDANCE p50 ≤ 5 ms"),
    "done_teacher_ms": (1000, "DONE for 1,000 ≤ 1 s"),
    "memory_per_socket_kib": (64, "memory ≤ 64 KB per socket"),
    "connect_s": (5, "connect 1,000 sockets ≤ 5 s"),
}


def report(results: dict[str, Any], previous: dict[str, Any] | None) -> None:
    print(f"\nmachine: {results['machine']}")
    print(f"{'metric':32} {'value':>10} {'previous':>10}  target")
    for key, value in results.items():
        if key == "machine":
            continue
        before = previous.get(key, "") if previous else ""
        target = TARGETS.get(key)
        verdict = ""
        if target and results["students"] >= 1000:
            verdict = ("ok   " if value <= target[0] else "MISS ") + target[1]
        print(f"{key:32} {value!s:>10} {before!s:>10}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--processes", type=int, default=1, choices=[1, 2])
    parser.add_argument("--save", type=Path, help="write the results as JSON")
    parser.add_argument("--compare", type=Path, help="a JSON file from an earlier --save")
    parser.add_argument("--profile", type=Path, help="record the server with py-spy (raw format) to this file")
    parser.add_argument("--profile-phase", choices=["connect", "mark"], default="mark")
    args = parser.parse_args()

    env = {"BCRYPT_ROUNDS": "4", "LOG_LEVEL": "WARNING"}
    if args.processes == 2:
        env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
        os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        db_env = stack.enter_context(scratch_database(Path(tmp)))
        servers = [DaphneServer({**env, **db_env}, log_path=Path(tmp) / f"server{i}.log")
                   for i in range(args.processes)]
        servers[0].migrate()
        for server in servers:
            server.start()
            stack.callback(server.stop)
        results = asyncio.run(run(args, servers))
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    previous = json.loads(args.compare.read_text()) if args.compare else None
    report(results, previous)
    if args.save:
        args.save.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
