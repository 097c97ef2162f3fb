"""server.prepare: migrations and static files prepared once, under a lock, never half-written, however many
`make run` start together; collectstatic skipped when the sources did not change."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from common import messages
from server import prepare
from tests.servers import ROOT, free_port, scratch_database
from tests.support import Person, assert_error


def fake_collect(calls: list[Path], content: str = "v1"):
    """A collectstatic stand-in: writes a manifest and one file, and records where."""

    def collect(build: Path) -> None:
        calls.append(build)
        (build / "app.js").write_text(content)
        (build / "staticfiles.json").write_text(json.dumps({"paths": {"app.js": "app.js"}}))

    return collect


# --- the lock --------------------------------------------------------------------------------------------
def test_the_lock_lets_one_holder_through_at_a_time(tmp_path):
    lock = tmp_path / "prepare.lock"
    entered = threading.Event()

    def second() -> None:
        with prepare.exclusive_lock(lock):
            entered.set()

    with prepare.exclusive_lock(lock):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.3), "a second holder got the lock while the first held it"
    assert entered.wait(5), "the second holder never got the lock after the first let it go"
    thread.join()


# --- skipping collectstatic ------------------------------------------------------------------------------
def test_unchanged_sources_are_collected_once(tmp_path):
    link, calls = tmp_path / "static", []
    assert prepare.prepare_static(link, "aaaa", fake_collect(calls)) is True
    assert prepare.prepare_static(link, "aaaa", fake_collect(calls)) is False
    assert len(calls) == 1
    assert link.is_symlink() and (link / "app.js").read_text() == "v1"
    assert [p.name for p in prepare.builds_dir(link).iterdir()] == [calls[0].name]


def test_force_collects_even_when_unchanged(tmp_path):
    link, calls = tmp_path / "static", []
    prepare.prepare_static(link, "aaaa", fake_collect(calls))
    assert prepare.prepare_static(link, "aaaa", fake_collect(calls, "v2"), force=True) is True
    assert len(calls) == 2 and (link / "app.js").read_text() == "v2"


def test_the_fingerprint_follows_the_sources_content(tmp_path, settings):
    source = tmp_path / "extra"
    source.mkdir()
    (source / "page.js").write_text("one")
    settings.STATICFILES_DIRS = [str(source)]
    first = prepare.static_fingerprint()
    assert prepare.static_fingerprint() == first
    assert prepare.static_sources()["page.js"] == str(source / "page.js")
    (source / "page.js").write_text("two")
    assert prepare.static_fingerprint() != first
    (source / "page.js").write_text("one")
    (source / "new.js").write_text("")
    assert prepare.static_fingerprint() != first


# --- the atomic switch -----------------------------------------------------------------------------------
def test_a_new_build_is_written_beside_the_served_one_then_switched_in(tmp_path):
    link, calls = tmp_path / "static", []
    prepare.prepare_static(link, "aaaa", fake_collect(calls, "v1"))
    first = calls[0]

    def collect_v2(build: Path) -> None:
        # While the new build is being written the link still names the old, complete one.
        assert (link / "app.js").read_text() == "v1"
        assert link.resolve() == first.resolve()
        fake_collect(calls, "v2")(build)

    assert prepare.prepare_static(link, "bbbb", collect_v2) is True
    assert (link / "app.js").read_text() == "v2"
    assert os.readlink(link) == f"static.builds/{calls[1].name}"  # relative: the checkout may move
    # The replaced build stays for the servers started on it; the one before goes.
    prepare.prepare_static(link, "cccc", fake_collect(calls, "v3"))
    assert sorted(p.name for p in prepare.builds_dir(link).iterdir()) == sorted([calls[1].name, calls[2].name])


def test_a_failed_collect_leaves_the_served_build_alone(tmp_path):
    link, calls = tmp_path / "static", []
    prepare.prepare_static(link, "aaaa", fake_collect(calls))

    def broken(build: Path) -> None:
        (build / "half.js").write_text("")
        raise RuntimeError("collectstatic failed")

    with pytest.raises(RuntimeError):
        prepare.prepare_static(link, "bbbb", broken)
    assert (link / "app.js").read_text() == "v1"
    assert [p.name for p in prepare.builds_dir(link).iterdir()] == [calls[0].name]


def test_a_directory_from_a_plain_collectstatic_makes_way_for_the_link(tmp_path):
    link, calls = tmp_path / "static", []
    link.mkdir()
    (link / "old.js").write_text("old")
    assert prepare.prepare_static(link, "aaaa", fake_collect(calls)) is True
    assert link.is_symlink() and (link / "app.js").read_text() == "v1"
    kept = [p for p in prepare.builds_dir(link).iterdir() if p != calls[0]]
    assert [(p / "old.js").read_text() for p in kept] == ["old"]


# --- over the wire: three `make run` at once -------------------------------------------------------------
def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {url} within {timeout} s:\n{log.read_text()}")


@pytest.mark.wire
def test_three_make_run_started_together_all_serve(tmp_path):
    static_root = tmp_path / "static"
    ports = [free_port() for _ in range(3)]
    python = shlex.quote(sys.executable)
    # What `make run` runs, with DEBUG off: the pages then name hashed files that only collectstatic makes.
    command = f"{python} -m server.prepare && exec {python} -m server.serve"
    with scratch_database(tmp_path) as database:
        processes, logs = [], []
        try:
            for port in ports:
                env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "prepare-test-secret", "BCRYPT_ROUNDS": "4",
                       "STATIC_ROOT": str(static_root), **database, "PORT": str(port)}
                log = tmp_path / f"run-{port}.log"
                logs.append(log)
                with open(log, "wb") as out:
                    processes.append(subprocess.Popen(["sh", "-c", command], cwd=ROOT, env=env, stdout=out,
                                                      stderr=subprocess.STDOUT, start_new_session=True))
            for port, process, log in zip(ports, processes, logs, strict=True):
                me = wait_until_answering(f"http://127.0.0.1:{port}/auth/me", process, log, timeout=120)
                assert_error(me, 401, messages.UNAUTHORIZED)

            # One build, collected once, complete: every server serves the manifest's hashed files.
            builds = list(prepare.builds_dir(static_root).iterdir())
            assert static_root.is_symlink() and len(builds) == 1
            manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
            hashed = manifest["console/app.js"]
            for port in ports:
                page = httpx.get(f"http://127.0.0.1:{port}/static/{hashed}", timeout=5)
                assert page.status_code == 200
                assert page.content == (static_root / hashed).read_bytes()

            # One migrated database behind them all: an account made on one logs in on another.
            with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=10) as first:
                teacher = Person(first, "teacher")
            login = httpx.post(f"http://127.0.0.1:{ports[2]}/auth/login", timeout=10,
                               json={"email": teacher.email, "password": teacher.password})
            assert login.status_code == 200, login.text
        finally:
            # Each pair is a process group of its own: a prepare still running goes with its shell.
            for process in processes:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
