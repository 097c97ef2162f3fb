"""HTTP benchmark: the project's routes against the spec's own stack, on the same database file, in one run.

Starts the server (`python -m server.serve`, as `make run` does, DEBUG off) and the reference
(`bench/reference-node/server.js`: Express, jsonwebtoken, ws, better-sqlite3, reading the same SQLite file;
installed here with `npm ci` the first time), seeds the database once (a teacher's class of 30 students with
20 persisted sessions, and a class of N students), and measures, alternating between the two servers:

- GET /auth/me, GET /classes, GET /class/:id (30 students), GET /class/:id/report (30 × 20 sessions):
  requests per second, p50/p95 latency, server CPU per request (utime + stime from /proc/<pid>/stat);
- a lesson start: the teacher starts the session, then N students (default 1,000) with stored tokens each make
  the console's calls (GET /auth/me, /classes, /class/:id, /class/:id/my-attendance, /class/:id/my-history),
  open the socket and ask MY_ATTENDANCE — timed until the last student has their live status (`--repeat` times
  per server, alternating; after the first, the servers have seen the students' tokens).

The reference verifies each token with a key made once (`crypto.createSecretKey`): given the secret as a string,
jsonwebtoken 9 spends ~350 µs per verify on a failed public-key parse, and runs before 2026-12-07 measured against
that slower reference.

Every figure is reported with its ratio to the reference from the same run (a shared machine's numbers compare
only within one run). `--baseline DIR` also serves the same database from another checkout of this project
(e.g. `git worktree add /tmp/before <commit>`) and alternates it with the other two: a change's before and
after, measured in one run. The load client is `wrk` (one thread, C connections) when it is installed, else a
keep-alive client in Python (`--client`); the lesson start's client is Python (picows for the sockets). The
project runs as in production behind nginx, without Daphne's access log (ACCESS_LOG=0; `--access-log` keeps it):
the reference writes none.

    .venv/bin/python -m bench.http_bench                        # make bench-http
    .venv/bin/python -m bench.http_bench --students 1000 --duration 5 --repeat 3
    .venv/bin/python -m bench.http_bench --quick                # a smoke run: a few requests, N = 20
    .venv/bin/python -m bench.http_bench --baseline /tmp/before  # before/after in one run
    .venv/bin/python -m bench.http_bench --servers uvicorn,granian,floor  # is Daphne the floor?

`--servers` also serves the project's HTTP application (attendance_site/asgi.py) under uvicorn (uvloop,
httptools) and granian, and measures them on the routes beside the others (no lesson start: the sockets are
Daphne's); `floor` is Daphne serving one fixed answer (bench/floor_app.py), measured on GET /auth/me: what the
server alone costs before the application does anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.harness import ReferenceProcess, access_log_env, add_access_log_option, argument_parser, save
from bench.stats import medians, percentile
from tests.servers import (
    ROOT,
    DaphneServer,
    LoopbackServer,
    free_port,
    process_cpu_seconds,
    stop_process,
    wait_until_answering,
)

REFERENCE_DIR = Path(__file__).resolve().parent / "reference-node"

# --- seeding (runs inside `manage.py shell`, with the server's settings) -------------------------------


def seed(students: int, sessions: int = 20, small: int = 30) -> dict[str, Any]:
    """Users, two classes and persisted sessions, written straight to the database (no bcrypt, no HTTP):
    a teacher's class of `small` students with `sessions` persisted sessions, and a class of `students`
    (the first `small` are in both). Returns the ids and a token for everyone."""
    from datetime import UTC, datetime, timedelta

    from accounts.models import Role, User
    from accounts.tokens import issue_token
    from classes.models import Class, Enrollment
    from live.models import Attendance, AttendanceSession, Status

    tag = secrets.token_hex(3)

    def user(i: int, role: str) -> User:
        return User(name=f"{role.title()} {i:05d}", email=f"{role}{i}-{tag}@bench.example.com", role=role,
                    password="!")  # unusable: the bench never logs in

    teachers = User.objects.bulk_create([user(i, Role.TEACHER) for i in range(2)])
    pupils = User.objects.bulk_create([user(i, Role.STUDENT) for i in range(students)], batch_size=500)
    report_class = Class.objects.create(class_name="Bench 30", teacher=teachers[0])
    lesson_class = Class.objects.create(class_name=f"Bench {students}", teacher=teachers[1])
    Enrollment.objects.bulk_create([Enrollment(klass=report_class, student=s) for s in pupils[:small]])
    Enrollment.objects.bulk_create([Enrollment(klass=lesson_class, student=s) for s in pupils], batch_size=500)
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    records = []
    # Persisted as this checkout's models say: a `state` and records tied to their session, or the
    # earlier `committed` flag (bench/reference-node/server.js reads either).
    durable = any(f.name == "state" for f in AttendanceSession._meta.get_fields())
    for n in range(sessions):
        started = start + timedelta(days=n)
        extra: dict[str, Any] = (
            {"state": "persisted", "teacher": teachers[0], "updated_at": started} if durable else {"committed": True}
        )
        session = AttendanceSession.objects.create(klass=report_class, started_at=started, ended_at=started, **extra)
        tie: dict[str, Any] = {"session": session} if durable else {}
        records += [Attendance(klass=report_class, student=s, started_at=started,
                               status=Status.PRESENT if (n + k) % 3 else Status.ABSENT, **tie)
                    for k, s in enumerate(pupils[:small])]
    Attendance.objects.bulk_create(records, batch_size=500)

    def who(u: User) -> dict[str, str]:
        return {"id": u.id, "token": issue_token(u.id, u.role)}

    return {"teachers": [who(t) for t in teachers], "students": [who(s) for s in pupils],
            "report_class": report_class.id, "lesson_class": lesson_class.id}


# --- the servers ----------------------------------------------------------------------------------------


def install_reference() -> None:
    """`npm ci` from the lock, once: better-sqlite3 built from source against the installed Node."""
    if (REFERENCE_DIR / "node_modules").is_dir():
        return
    subprocess.run(["npm", "ci", "--build-from-source", "--nodedir=/usr", "--no-audit", "--no-fund"],
                   cwd=REFERENCE_DIR, check=True)


def node_reference(script: str, *args: str, jwt_secret: str = "") -> ReferenceProcess:
    """One of bench/reference-node's servers in a process of its own (installed from its lock the first time)."""
    install_reference()
    return ReferenceProcess(["node", script], *args, cwd=REFERENCE_DIR,
                            env={**os.environ, "JWT_SECRET": jwt_secret, "NODE_ENV": "production"})


def reference_server(database: Path, jwt_secret: str) -> ReferenceProcess:
    """bench/reference-node/server.js, on the project's database file."""
    return node_reference("server.js", str(database), jwt_secret=jwt_secret)


@dataclass
class Target:
    name: str
    port: int
    pid: int
    ws_url: str
    http_only: bool = False  # another server for the API alone (--servers): no socket, so no lesson start
    fixed: bool = False  # one fixed answer to every request (Daphne's floor): measured on GET /auth/me only


# --- other servers for the same application (--servers) ------------------------------------------------

# The project's HTTP application (attendance_site.asgi, as Daphne serves it) under another ASGI server, for
# issue 27's question: is Daphne the floor? And `floor`: Daphne serving one fixed answer (bench/floor_app.py),
# what Daphne alone costs per request. Each reads the same database as the project, with the same settings.
OTHER_SERVERS: dict[str, list[str]] = {
    "uvicorn": ["-m", "uvicorn", "attendance_site.asgi:application", "--port", "{port}", "--loop", "uvloop",
                "--http", "httptools", "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
    "granian": ["-m", "granian", "--interface", "asginl", "--port", "{port}", "--workers", "1", "--no-ws",
                "--log-level", "warning",
                "attendance_site.asgi:application"],
    "floor": ["-m", "daphne", "-p", "{port}", "-v", "0", "bench.floor_app:application"],
}


class OtherServer(LoopbackServer):
    """One of OTHER_SERVERS in a process of its own, with the project's environment."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name, self.port = name, free_port()
        # Each with the production server's collector settings (bench/tuned.py), as the project is served.
        module, *args = OTHER_SERVERS[name][1:]  # (each is "-m module ...")
        argv = [sys.executable, "-m", "bench.tuned", module, *(arg.format(port=self.port) for arg in args)]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
        wait_until_answering(self.process, self.http_url, 30, name, log_path)

    def stop(self) -> None:
        stop_process(self.process)

    def target(self) -> Target:
        return Target(self.name, self.port, self.serving_pid(), self.ws_url, http_only=True, fixed=self.name == "floor")

    def serving_pid(self) -> int:
        """The process whose CPU a request costs: the worker the server started, if it started one (granian's
        main process only watches its worker), else the server's own."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0]) if len(children) == 1 else pid


# --- the load clients -------------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its response read by Content-Length (or chunks)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str, token: str = "") -> tuple[int, bytes]:
        auth = f"Authorization: {token}\r\n" if token else ""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode())
        return await self.read()

    async def post(self, path: str, body: dict[str, Any], token: str = "") -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        return await self.read()

    async def read(self) -> tuple[int, bytes]:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head[9:12])
        if "transfer-encoding: chunked" in head:
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n"))[:-2], 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
            return status, body
        length = head.find("content-length:")
        size = int(head[length + 15: head.find("\r\n", length)]) if length >= 0 else 0
        return status, await self.reader.readexactly(size)

    def close(self) -> None:
        self.writer.close()


async def python_load(port: int, path: str, token: str, connections: int, duration: float,
                      requests: int | None) -> dict[str, Any]:
    """`connections` keep-alive connections asking `path` back to back for `duration` seconds (or `requests`
    in all): the latencies, and how many answers were not 200."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    remaining = [requests if requests is not None else -1]

    async def worker() -> None:
        nonlocal errors
        conn = await Connection.open(port)
        try:
            while time.perf_counter() < deadline and remaining[0] != 0:
                remaining[0] -= 1
                sent = time.perf_counter()
                status, _ = await conn.get(path, token)
                latencies.append(time.perf_counter() - sent)
                errors += status != 200
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    return {"requests": len(latencies), "seconds": elapsed, "errors": errors,
            "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000}


WRK_SCRIPT = """
wrk.headers["Authorization"] = os.getenv("BENCH_TOKEN")
done = function(summary, latency, requests)
  io.stderr:write(string.format('{"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p95_ms": %f}\\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
"""


def wrk_load(port: int, path: str, token: str, connections: int, duration: float, script: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "30s", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"],
        env={**os.environ, "BENCH_TOKEN": token}, capture_output=True, text=True, check=True,
    )
    return dict(json.loads(result.stderr.strip().splitlines()[-1]))


# --- the lesson start ----------------------------------------------------------------------------------------


class StatusListener(WSListener):
    """A student's socket: resolves `status` with the first MY_ATTENDANCE answer."""

    def __init__(self) -> None:
        self.status: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT or self.status.done():
            return
        message = json.loads(frame.get_payload_as_bytes())
        if message.get("event") == "MY_ATTENDANCE":
            self.status.set_result(message["data"]["status"])
        elif message.get("event") == "ERROR":
            self.status.set_exception(RuntimeError(message["data"]["message"]))


async def lesson_start(target: Target, seeded: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """The teacher starts the lesson's session; then every student does what the console does on opening
    the class page, `concurrency` at a time: the wall time until the last one has their live status."""
    class_id = seeded["lesson_class"]
    conn = await Connection.open(target.port)
    status, body = await conn.post("/attendance/start", {"classId": class_id}, seeded["teachers"][1]["token"])
    conn.close()
    assert status == 200, body
    paths = ["/auth/me", "/classes", f"/class/{class_id}", f"/class/{class_id}/my-attendance",
             f"/class/{class_id}/my-history"]
    semaphore = asyncio.Semaphore(concurrency)
    times: list[float] = []
    sockets: list[WSTransport] = []
    frame = json.dumps({"event": "MY_ATTENDANCE", "data": {"classId": class_id}}).encode()

    async def student(token: str) -> None:
        async with semaphore:
            began = time.perf_counter()
            conn = await Connection.open(target.port)
            try:
                for path in paths:
                    status, body = await conn.get(path, token)
                    assert status == 200, (path, status, body)
            finally:
                conn.close()
            transport, listener = await ws_connect(StatusListener, f"{target.ws_url}?token={token}")
            sockets.append(transport)
            transport.send(WSMsgType.TEXT, frame)
            assert isinstance(listener, StatusListener)
            assert await asyncio.wait_for(listener.status, 60) == "not yet updated"
            times.append(time.perf_counter() - began)

    cpu = process_cpu_seconds(target.pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(student(s["token"]) for s in seeded["students"]))
    wall = time.perf_counter() - t0
    cpu = process_cpu_seconds(target.pid) - cpu
    for transport in sockets:
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()
    await asyncio.sleep(0.5)
    requests = len(seeded["students"]) * (len(paths) + 1)
    return {"seconds": wall, "p50_ms": percentile(times, 50) * 1000, "p95_ms": percentile(times, 95) * 1000,
            "cpu_us_per_request": cpu / requests * 1e6}


# --- the run -----------------------------------------------------------------------------------------------


def routes(seeded: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Route label → (path, token): each asked by who the console would ask it as."""
    student, teacher = seeded["students"][0]["token"], seeded["teachers"][0]["token"]
    report_class = seeded["report_class"]
    return {
        "GET /auth/me": ("/auth/me", student),
        "GET /classes": ("/classes", student),
        "GET /class/:id (30 students)": (f"/class/{report_class}", teacher),
        "GET /class/:id/report (30 × 20)": (f"/class/{report_class}/report", teacher),
    }


async def same_answers(targets: list[Target], seeded: dict[str, Any]) -> list[str]:
    """The reference must answer what the project answers, or the comparison means nothing: the routes whose
    `data` differ."""
    differ = []
    for label, (path, token) in routes(seeded).items():
        bodies = []
        for target in targets:
            conn = await Connection.open(target.port)
            status, body = await conn.get(path, token)
            conn.close()
            assert status == 200, (target.name, path, status, body)
            bodies.append(json.loads(body))
        if any(body != bodies[0] for body in bodies[1:]):
            differ.append(label)
    return differ


async def measure_route(target: Target, path: str, token: str, args: argparse.Namespace,
                        script: Path | None) -> dict[str, Any]:
    cpu = process_cpu_seconds(target.pid)
    if script is not None:
        result = await asyncio.to_thread(wrk_load, target.port, path, token, args.connections, args.duration, script)
    else:
        result = await python_load(target.port, path, token, args.connections, args.duration,
                                   args.requests or None)
    cpu = process_cpu_seconds(target.pid) - cpu
    if result["errors"]:
        raise AssertionError(f"{target.name} {path}: {result['errors']} answers were not 200")
    return {"rps": result["requests"] / result["seconds"], "p50_ms": result["p50_ms"], "p95_ms": result["p95_ms"],
            "cpu_us_per_request": cpu / max(result["requests"], 1) * 1e6}


async def run(args: argparse.Namespace, targets: list[Target], seeded: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": f"{platform.node()} ({os.cpu_count()} cores, load "
                                          f"{os.getloadavg()[0]:.2f} at start)",
                               "client": "wrk" if args.client == "wrk" else "python", "students": args.students,
                               "connections": args.connections, "repeat": args.repeat}
    results["differ"] = await same_answers([t for t in targets if not t.fixed], seeded)
    script = None
    if args.client == "wrk":
        script = Path(tempfile.mkdtemp(prefix="http-bench-")) / "report.lua"
        script.write_text(WRK_SCRIPT)
    for label, (path, token) in routes(seeded).items():
        measured = [t for t in targets if not t.fixed or path == "/auth/me"]
        # Warm each (first requests import and compile), then alternate batches.
        for target in measured:
            await python_load(target.port, path, token, 4, 30, 40)
        batches: dict[str, list[dict[str, float]]] = {t.name: [] for t in measured}
        for _ in range(args.repeat):
            for target in measured:
                batches[target.name].append(await measure_route(target, path, token, args, script))
        results[label] = {name: medians(b) for name, b in batches.items()}
    # Alternating too, each batch's order reversed from the last's: one lesson start per target was as noisy as
    # the difference between targets (the first to run met a cold page cache).
    sockets = [t for t in targets if not t.http_only]
    lessons: dict[str, list[dict[str, Any]]] = {t.name: [] for t in sockets}
    for batch in range(args.repeat):
        for target in sockets if batch % 2 == 0 else sockets[::-1]:
            lessons[target.name].append(await lesson_start(target, seeded, args.concurrency))
    results[f"lesson start (N = {args.students})"] = {name: medians(runs) for name, runs in lessons.items()}
    return results


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs else "-"


def report(results: dict[str, Any]) -> None:
    print(f"\nmachine: {results['machine']}; client: {results['client']}, {results['connections']} connections; "
          f"medians of {results['repeat']} alternating batches")
    if results["differ"]:
        print(f"WARNING: the servers answer differently on: {', '.join(results['differ'])}")
    columns: list[tuple[str, str, Callable[[float], str]]] = [
        ("rps", "req/s", lambda v: f"{v:.0f}"), ("p50_ms", "p50 ms", lambda v: f"{v:.1f}"),
        ("p95_ms", "p95 ms", lambda v: f"{v:.1f}"), ("cpu_us_per_request", "CPU µs/req", lambda v: f"{v:.0f}"),
        ("seconds", "seconds", lambda v: f"{v:.2f}"),
    ]
    for label, figures in results.items():
        if not isinstance(figures, dict) or "project" not in figures:
            continue
        ours, theirs, before = figures["project"], figures["reference"], figures.get("baseline")
        # The other servers (--servers), each with its ratio to the reference.
        others = [name for name in figures if name not in ("project", "reference", "baseline")]
        print(f"\n{label}")
        print(f"  {'':12} {'project':>10} {'reference':>10} {'ratio':>8}"
              + (f" {'baseline':>10} {'÷ baseline':>10}" if before else "")
              + "".join(f" {name:>10} {'ratio':>8}" for name in others))
        for key, title, fmt in columns:
            if key in ours:
                line = f"  {title:12} {fmt(ours[key]):>10} {fmt(theirs[key]):>10} {ratio(ours[key], theirs[key]):>8}"
                if before:
                    line += f" {fmt(before[key]):>10} {ratio(ours[key], before[key]):>10}"
                for name in others:
                    line += f" {fmt(figures[name][key]):>10} {ratio(figures[name][key], theirs[key]):>8}"
                print(line)


def main() -> None:
    parser = argument_parser(__doc__, "N: the lesson start's class size")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per batch of one route")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=100,
                        help="lesson start: students opening the console at once")
    parser.add_argument("--requests", type=int, default=0, help="stop each batch after this many (Python client)")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--quick", action="store_true", help="a smoke run: N = 20, a few requests per route")
    parser.add_argument("--baseline", type=Path, help="another checkout of this project, measured alongside")
    parser.add_argument("--servers", type=lambda text: [name for name in text.split(",") if name],
                        default=[], metavar="NAME,...",
                        help=f"also measure the API under other servers, routes only: {', '.join(OTHER_SERVERS)} "
                             "(floor: Daphne with one fixed answer, on GET /auth/me)")
    add_access_log_option(parser)
    args = parser.parse_args()
    unknown = sorted(set(args.servers) - set(OTHER_SERVERS))
    if unknown:
        parser.error(f"--servers: no such server: {', '.join(unknown)} (choose from {', '.join(OTHER_SERVERS)})")
    if args.quick:
        args.students, args.repeat, args.connections, args.requests, args.client = 20, 1, 2, 10, "python"
        args.concurrency = 10
    if shutil.which("node") is None:
        sys.exit("http_bench: node is not installed (the reference runs on Node 20)")
    install_reference()

    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        database = Path(tmp) / "bench.sqlite3"
        secret = secrets.token_urlsafe(32)
        env = {"DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": secret, "JWT_SECRET": secret,
               # A whole class behind one address: the per-address socket limit would refuse it.
               "WS_MAX_SOCKETS_PER_IP": "0", "LOG_LEVEL": "ERROR", **access_log_env(args)}
        server = DaphneServer(env, log_path=Path(tmp) / "server.log")
        server.migrate()
        code = f"import json; from bench.http_bench import seed; print(json.dumps(seed({args.students})))"
        seeded = json.loads(server.shell(code, timeout=300).strip().splitlines()[-1])
        servers = {"project": server.start()}
        others: list[OtherServer] = []
        try:
            if args.baseline:
                baseline = DaphneServer(env, log_path=Path(tmp) / "baseline.log", root=args.baseline)
                servers["baseline"] = baseline.start()
            for name in args.servers:
                others.append(OtherServer(name, server.env, Path(tmp) / f"{name}.log"))
            reference = reference_server(database, secret)
            try:
                targets = [Target(name, s.port, s.process.pid, s.ws_url) for name, s in servers.items()
                           if s.process is not None]
                targets.insert(1, Target("reference", reference.port, reference.process.pid, reference.ws_url))
                targets += [other.target() for other in others]
                results = asyncio.run(run(args, targets, seeded))
            finally:
                reference.stop()
        finally:
            for running in [*servers.values(), *others]:
                running.stop()
    report(results)
    save(results, args.save)


if __name__ == "__main__":
    main()
