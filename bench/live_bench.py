"""Live attendance benchmark: a real server, real sockets, numbers you can compare between runs.

Starts the server (`python -m server.serve`, as `make run` does) with a low BCRYPT_ROUNDS and, as in production
behind nginx, without Daphne's access log (ACCESS_LOG=0; `--access-log` keeps it),
creates two teachers and N students through the HTTP API, connects every one of them over WebSocket,
and measures:

- connecting N authenticated sockets (wall time, and the server's CPU per socket);
- ATTENDANCE_MARKED from send to the last delivery, for a class of 100 and a class of N (p50/p95);
- MY_ATTENDANCE round trip with every socket open (p50/p95);
- DONE for the class of N: send → the teacher's DONE, and send → the last participant's DONE;
- server memory per open socket (RSS growth while connecting / N);
- server CPU per delivered ATTENDANCE_MARKED (utime + stime from /proc/<pid>/stat of every server
  process, before and after the rounds, over the number of deliveries), and each part alone: user time (the
  server's own code) and system time (the kernel's for it: mostly each frame's send(), which both servers pay).

In the same run it starts the reference server (`bench/reference_server.py`, a minimal `websockets`
broadcast server; with `--reference node`, the same in Node's `ws`: bench/reference-node/broadcast.js, which on
SQLite authenticates each socket as the spec's server does, its token verified and its user looked up in the
project's database file; `--reference node-open` checks no token), connects as many sockets to it with the same
client — the same users' tokens — and measures the same broadcast,
alternating batches of rounds between the two (`--repeat`, default 3; the medians are reported), so that
every figure comes with its ratio to the reference — numbers from one run on a shared machine compare
only within that run.

With --processes 2 it starts two servers sharing a private Redis (a `redis-server` of its own on a free
port, never the shared one) and a scratch PostgreSQL database, and spreads the sockets across them (the
teacher on the first).

    .venv/bin/python -m bench.live_bench                       # N=1000, one process, SQLite
    .venv/bin/python -m bench.live_bench --students 5000       # N=5000
    .venv/bin/python -m bench.live_bench --reference node      # against Node's ws (the spec's stack)
    .venv/bin/python -m bench.live_bench --processes 2         # two processes, Redis + PostgreSQL
    .venv/bin/python -m bench.live_bench --redis               # one process on that same stack
    .venv/bin/python -m bench.live_bench --save run.json --compare old.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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

from bench.harness import ReferenceProcess, access_log_env, add_access_log_option, argument_parser, save
from bench.stats import medians, percentile
from tests.servers import (
    DaphneServer,
    RedisServer,
    backend_of,
    process_cpu_seconds,
    process_cpu_split,
    scratch_database,
)

BENCH_DIR = Path(__file__).resolve().parent


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def reference_server(kind: str = "python", database: Path | None = None, jwt_secret: str = "") -> ReferenceProcess:
    """The reference in a process of its own: bench/reference_server.py (`websockets`), or with `node` the same
    broadcast in Node's `ws` (bench/reference-node/broadcast.js, installed from its lock the first time). Node's
    authenticates each socket as the spec's server does (jsonwebtoken, a user lookup with better-sqlite3) when
    given the project's SQLite `database`; `node-open`, or no database, accepts any."""
    if kind in {"node", "node-open"}:
        from bench.http_bench import node_reference

        authenticated = [str(database)] if kind == "node" and database is not None else []
        return node_reference("broadcast.js", *authenticated, jwt_secret=jwt_secret)
    return ReferenceProcess([sys.executable, str(BENCH_DIR / "reference_server.py")])


def sqlite_file(env: dict[str, str]) -> Path | None:
    """The SQLite file a scratch database's environment names (tests.servers.scratch_database), if on SQLite."""
    if backend_of(env) != "sqlite":
        return None
    return Path(env["DATABASE_URL"].removeprefix("sqlite:///"))


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
            url = f"{urls[i % len(urls)]}?token={user.get('token', '')}"
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


async def connect_phase(urls: list[str], users: list[dict], pids: list[int], collector: Collector,
                        sockets: int) -> tuple[list[Participant], dict[str, float]]:
    """Connect `users`; the wall time and the servers' RSS growth per socket."""
    rss_before = sum(rss_kib(pid) for pid in pids)
    cpu_before = process_cpu_seconds(*pids)
    t0 = time.perf_counter()
    participants = await connect_all(urls, users, collector)
    connect_s = time.perf_counter() - t0
    cpu = process_cpu_seconds(*pids) - cpu_before
    await asyncio.sleep(1.0)
    rss_after = sum(rss_kib(pid) for pid in pids)
    return participants, {"connect_s": round(connect_s, 3),
                          "connect_cpu_us_per_socket": round(cpu / sockets * 1e6),
                          "memory_per_socket_kib": round((rss_after - rss_before) / sockets, 1)}


async def broadcast_batch(collector: Collector, teacher: Participant, audience: int, student_ids: list[str],
                          rounds: int, pids: list[int]) -> dict[str, float]:
    """`rounds` broadcasts to `audience` sockets: latency percentiles and server CPU per delivery, also split into
    its user time (the server's own code) and system time (the kernel's: mostly each frame's send())."""
    (user_before, system_before) = process_cpu_split(*pids)
    latencies = await broadcast_latency(collector, teacher, audience, student_ids, rounds)
    (user_after, system_after) = process_cpu_split(*pids)
    user, system, deliveries = user_after - user_before, system_after - system_before, rounds * audience
    return {"p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
            "max_ms": max(latencies) * 1000, "cpu_us_per_delivery": (user + system) / deliveries * 1e6,
            "cpu_user_us_per_delivery": user / deliveries * 1e6,
            "cpu_system_us_per_delivery": system / deliveries * 1e6}


def on_scaleout_stack(args: argparse.Namespace) -> bool:
    """Redis and PostgreSQL (two processes need them; --redis puts one process on them too)."""
    return bool(args.processes == 2 or args.redis)


async def run(args: argparse.Namespace, servers: list[DaphneServer], reference: ReferenceProcess) -> dict[str, Any]:
    n = args.students
    ws_urls = [s.ws_url for s in servers]
    stack = "redis+postgresql" if on_scaleout_stack(args) else "memory+sqlite"
    results: dict[str, Any] = {"students": n, "processes": len(servers), "stack": stack, "rounds": args.rounds,
                               "repeat": args.repeat}
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
    reference_pids = [reference.process.pid]
    collector = Collector()

    profiler = start_profiler(args, pids[0], "connect")
    project_sockets, connected = await connect_phase(ws_urls[:1], teachers, pids, collector, 2)
    student_sockets, connected = await connect_phase(ws_urls, students, pids, collector, n)
    stop_profiler(profiler)
    teacher_small, teacher_large = project_sockets
    # The reference's sockets, with the same tokens (checked only by an authenticated reference); the first one
    # plays the teacher.
    reference_sockets, reference_connected = await connect_phase(
        [reference.ws_url], [teachers[1], *students], reference_pids, collector, n + 1)
    # The load client holds 2N sockets: its own full collections would show up as latency of whichever
    # server is being measured (both, bimodally, at N = 5,000). Keep its long-lived objects out of them.
    gc.collect()
    gc.freeze()

    profiler = start_profiler(args, pids[0], "mark")
    if profiler:
        await asyncio.sleep(1.0)
    ids = [m["id"] for m in small]
    await broadcast_latency(collector, teacher_small, len(small) + 1, ids, 3)  # warm-up
    latencies = await broadcast_latency(collector, teacher_small, len(small) + 1, ids, args.rounds)
    results["mark_small_n"] = len(small)
    results["mark_small_p50_ms"] = round(percentile(latencies, 50) * 1000, 1)
    results["mark_small_p95_ms"] = round(percentile(latencies, 95) * 1000, 1)

    # The class of N and the reference, in alternating batches (each after a warm-up of its own).
    ids = [m["id"] for m in large]
    await broadcast_latency(collector, teacher_large, n + 1, ids, 3)
    await broadcast_latency(collector, reference_sockets[0], n + 1, ids, 3)
    project_batches, reference_batches = [], []
    for _ in range(args.repeat):
        reference_batches.append(
            await broadcast_batch(collector, reference_sockets[0], n + 1, ids, args.rounds, reference_pids))
        project_batches.append(await broadcast_batch(collector, teacher_large, n + 1, ids, args.rounds, pids))
    stop_profiler(profiler)
    project, ref = medians(project_batches), medians(reference_batches)
    project.update(connected)
    ref.update(reference_connected)
    results["large"] = project
    results["reference"] = ref
    results["ratio"] = {key: round(project[key] / ref[key], 2) if ref[key] else None for key in ref}
    results["batches"] = {"project": project_batches, "reference": reference_batches}
    await asyncio.gather(*(p.close() for p in reference_sockets))

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


# Issue 15's targets, as ratios to the reference server measured in the same run.
RATIO_TARGETS = {
    "cpu_us_per_delivery": (1.5, "server CPU per delivery ≤ 1.5× the reference"),
    "p95_ms": (2.0, "p95 ≤ 2× the reference (targeted at N = 5,000)"),
}
MEMORY_TARGET_KIB = 20


def report(results: dict[str, Any], previous: dict[str, Any] | None) -> None:
    n = results["students"]
    print(f"\nmachine: {results['machine']}")
    print(f"N = {n}, {results['processes']} process(es) on {results.get('stack', 'memory+sqlite')}, "
          f"{results['repeat']} batches of {results['rounds']} rounds (medians of the batches)")
    print(f"the reference: {results.get('reference_server', 'python')}")
    print(f"{'ATTENDANCE_MARKED to N + 1':28} {'project':>10} {'reference':>10} {'ratio':>7} {'previous':>9}  target")
    for key in results["large"]:
        ratio = results["ratio"].get(key)
        before = (previous or {}).get("ratio", {}).get(key, "")
        target = RATIO_TARGETS.get(key)
        verdict = ""
        if target and ratio is not None:
            verdict = ("ok   " if ratio <= target[0] else "MISS ") + target[1]
        if key == "memory_per_socket_kib":
            verdict = ("ok   " if results["large"][key] <= MEMORY_TARGET_KIB else "MISS ") + "RSS ≤ 20 KiB per socket"
        print(f"{key:28} {results['large'][key]!s:>10} {results['reference'][key]!s:>10} {ratio!s:>7} "
              f"{before!s:>9}  {verdict}")
    print()
    for key, value in results.items():
        if key in {"machine", "large", "reference", "ratio", "batches", "reference_server"}:
            continue
        before = previous.get(key, "") if previous else ""
        print(f"{key:32} {value!s:>10} {before!s:>10}")


def main() -> None:
    parser = argument_parser(__doc__, "N (the issue's sizes: 1000, 5000)")
    parser.add_argument("--rounds", type=int, default=30, help="broadcasts per batch")
    parser.add_argument("--reference", choices=["python", "node", "node-open"], default="python",
                        help="the reference server: `websockets` (bench/reference_server.py), or Node's `ws` "
                             "(node: its sockets authenticated on SQLite; node-open: never)")
    parser.add_argument("--processes", type=int, default=1, choices=[1, 2])
    parser.add_argument("--redis", action="store_true",
                        help="one process on the two-process stack (private Redis + PostgreSQL): the fair "
                             "'one process' to compare --processes 2 with")
    parser.add_argument("--compare", type=Path, help="a JSON file from an earlier --save")
    parser.add_argument("--profile", type=Path, help="record the server with py-spy (raw format) to this file")
    parser.add_argument("--profile-phase", choices=["connect", "mark"], default="mark")
    add_access_log_option(parser)
    args = parser.parse_args()

    # Every socket comes from 127.0.0.1: the per-address socket limit would refuse all but 200 of them.
    env = {"BCRYPT_ROUNDS": "4", "LOG_LEVEL": "WARNING", "WS_MAX_SOCKETS_PER_IP": "0", **access_log_env(args)}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if on_scaleout_stack(args):
            redis_server = RedisServer(Path(tmp)).start()  # private: the shared Redis is never touched
            stack.callback(redis_server.kill)
            env["REDIS_URL"] = redis_server.url
            os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        db_env = stack.enter_context(scratch_database(Path(tmp)))
        servers = [DaphneServer({**env, **db_env}, log_path=Path(tmp) / f"server{i}.log")
                   for i in range(args.processes)]
        servers[0].migrate()
        for server in servers:
            server.start()
            stack.callback(server.stop)
        database = sqlite_file({**env, **db_env})
        reference = reference_server(args.reference, database, servers[0].jwt_secret)
        stack.callback(reference.stop)
        results = asyncio.run(run(args, servers, reference))
    results["reference_server"] = args.reference
    if args.reference == "node":
        results["reference_server"] += (" (authenticated: jsonwebtoken, a user lookup in better-sqlite3)" if database
                                         else " (no token check: no SQLite file to look users up in)")
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    previous = json.loads(args.compare.read_text()) if args.compare else None
    report(results, previous)
    save(results, args.save)


if __name__ == "__main__":
    main()
