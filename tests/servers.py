"""Real Daphne processes for over-the-wire tests (and the benchmark).

Each server runs `python -m server.serve` — what `make run` runs — on a free port, against a
database of its own so that tests never touch the user's data: a temporary SQLite file, a scratch
PostgreSQL database beside DATABASE_URL's, or a scratch MongoDB database beside MONGODB_URI's.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_static_root: Path | None = None


def collected_static() -> Path:
    """A scratch STATIC_ROOT filled by `server.prepare` (as `make run` does), once per test process and
    shared by every server: with DEBUG off the pages name hashed files that only collectstatic makes."""
    global _static_root
    if _static_root is None:
        scratch = Path(tempfile.mkdtemp(prefix="attendance-static-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        root = scratch / "static"  # server.prepare makes it a link to its build, beside it
        subprocess.run(
            [sys.executable, "-m", "server.prepare", "--only", "static"], cwd=ROOT, check=True, capture_output=True,
            env={**os.environ, "DEBUG": "0", "SECRET_KEY": "collectstatic", "STATIC_ROOT": str(root)},
        )
        _static_root = root
    return _static_root


def _with_db_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def backend_of(env: Mapping[str, str]) -> str:
    """The database an environment selects, as Django's `connection.vendor` names it: MONGODB_URI wins, as
    in settings."""
    if env.get("MONGODB_URI"):
        return "mongodb"
    if env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return "postgresql"
    return "sqlite"


@contextmanager
def scratch_database(tmp_dir: Path, env: Mapping[str, str] = os.environ) -> Iterator[dict[str, str]]:
    """Environment variables naming a fresh, empty database on the backend `env` selects (the run's, by
    default); dropped after."""
    suffix = secrets.token_hex(4)
    backend = backend_of(env)
    if backend == "mongodb":
        mongodb_uri = env["MONGODB_URI"]
        import pymongo

        name = f"attendance_wire_{suffix}"
        yield {"MONGODB_URI": _with_db_name(mongodb_uri, name)}
        with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(name)
    elif backend == "postgresql":
        import psycopg

        database_url = env["DATABASE_URL"]
        name = f"attendance_wire_{suffix}"
        maintenance_url = _with_db_name(database_url, "postgres")
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield {"DATABASE_URL": _with_db_name(database_url, name)}
        finally:
            with psycopg.connect(maintenance_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        yield {"DATABASE_URL": f"sqlite:///{tmp_dir / f'wire-{suffix}.sqlite3'}"}


def process_cpu_seconds(*pids: int) -> float:
    """CPU time (user + system, every thread) the processes have used so far, from /proc/<pid>/stat."""
    return sum(process_cpu_split(*pids))


def process_cpu_split(*pids: int) -> tuple[float, float]:
    """The processes' CPU time so far (every thread) as (user, system) seconds, from /proc/<pid>/stat: the
    interpreter's own work, and the kernel's on its behalf (system calls: a socket's send(), TCP)."""
    user = system = 0
    for pid in pids:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11])  # utime and stime: fields 14 and 15 of proc(5)
        system += int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


def wait_until_answering(process: subprocess.Popen[bytes], http_url: str, timeout: float, what: str,
                         log_path: Path | None) -> None:
    """Return once the server `process` answers HTTP at `http_url` (any status); raise if it exits first, or,
    stopping it, if it does not answer within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log_path}")
        try:
            httpx.get(http_url + "/auth/me", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(f"{what} did not start in time; see {log_path}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class LoopbackServer:
    """A server on 127.0.0.1:`port`: its HTTP and WebSocket addresses (the project's and the benchmarks'
    reference servers alike)."""

    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class DaphneServer(LoopbackServer):
    """One `python -m server.serve` process."""

    def __init__(self, env: dict[str, str], port: int | None = None, log_path: Path | None = None,
                 root: Path = ROOT) -> None:
        self.port = port or free_port()
        self.root = root  # the checkout it serves: another commit's for a benchmark's before/after
        self.env = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "wire-test-secret"),
            "BCRYPT_ROUNDS": os.environ.get("BCRYPT_ROUNDS", "4"),
            # Every test signs up from 127.0.0.1, hundreds of accounts a run: off unless a test sets it.
            "SIGNUPS_PER_IP": "0",
            "STATIC_ROOT": str(collected_static()),
            **env,
            "PORT": str(self.port),
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def jwt_secret(self) -> str:
        """The key its tokens are signed with (settings.JWT_SECRET: JWT_SECRET, else SECRET_KEY)."""
        return self.env.get("JWT_SECRET") or self.env["SECRET_KEY"]

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "server.prepare", "--only", "migrate"], cwd=ROOT, env=self.env, check=True,
            capture_output=True,
        )

    def shell(self, code: str, timeout: float = 60) -> str:
        """Run `code` in `manage.py shell` with this server's settings — another process, as the admin or an
        operator would be; returns what it printed."""
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.env, timeout=timeout,
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self, timeout: float = 30.0) -> DaphneServer:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.serve"], cwd=self.root, env=self.env, stdout=log, stderr=log
        )
        wait_until_answering(self.process, self.http_url, timeout, "server", self.log_path)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)


class PrivateProcess:
    """A server process of a test's own (never a shared service), which the test kills and starts again."""

    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Any:
        raise NotImplementedError

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        """SIGKILL, then start again on the same port."""
        self.kill()
        self.start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


class MongoServer(PrivateProcess):
    """A private SecantusDB server (scripts/mongo-test-server's venv) on a free port with storage on disk, for
    tests that kill and restart the database under a running server (never the run's shared server). The
    same topology as the run (MONGODB_TOPOLOGY); commits are synced, so a SIGKILL loses nothing committed."""

    def __init__(self, work_dir: Path, standalone: bool | None = None) -> None:
        self.port = free_port()
        self.storage = work_dir / f"secantus-{self.port}"
        self.log_path = work_dir / f"secantus-{self.port}.log"
        if standalone is None:
            standalone = os.environ.get("MONGODB_TOPOLOGY") == "standalone"
        self.standalone = standalone
        self._executable: str | None = None  # the venv's secantusd-py, found once

    def uri(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    def executable(self) -> str:
        if self._executable is None:
            installed = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "mongo-test-server"), "install"],
                check=True, capture_output=True, text=True,
            )
            self._executable = installed.stdout.strip()
        return self._executable

    def start(self, timeout: float = 60.0) -> MongoServer:
        import pymongo

        command = [self.executable(), "--host", "127.0.0.1", "--port", str(self.port),
                   "--storage-path", str(self.storage), "--sync-on-commit", "--log-level", "WARNING",
                   *(["--standalone"] if self.standalone else [])]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        with pymongo.MongoClient(self.uri("admin"), serverSelectionTimeoutMS=int(timeout * 1000)) as client:
            try:
                client.admin.command("ping")
            except pymongo.errors.PyMongoError:
                self.kill()
                raise
        return self


class RedisServer(PrivateProcess):
    """A private `redis-server` on a free port, for tests that kill, restart or cut its connections (never
    the shared server). Nothing is kept on disk: a restart forgets everything, as a crash of a Redis without
    persistence does."""

    def __init__(self, work_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.work_dir = work_dir

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.work_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                    client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

