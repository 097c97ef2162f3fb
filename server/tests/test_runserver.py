"""`manage.py runserver` installs the project's extensions too (server/management/commands/runserver.py): the
contract's close 1008 works there, which Autobahn refuses to an application on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
import websockets

from common.messages import WS_UNAUTHORIZED
from tests.servers import ROOT, free_port, scratch_database
from tests.support import CLOSE_POLICY_VIOLATION, error, expect_close, recv


@pytest.mark.wire
async def test_runserver_closes_a_bad_token_with_1008(tmp_path):
    port = free_port()
    with scratch_database(tmp_path) as db_env:
        env = {**os.environ, **db_env}
        subprocess.run([sys.executable, "-m", "server.prepare", "--only", "migrate"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        log = (tmp_path / "runserver.log").open("w")
        process = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                                   cwd=ROOT, env={**env, "DEBUG": "1"}, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/auth/me", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None, "runserver did not start"
                    time.sleep(0.2)
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token=nope") as socket:
                assert await recv(socket) == error(WS_UNAUTHORIZED)
                await expect_close(socket, CLOSE_POLICY_VIOLATION)
        finally:
            process.terminate()
            process.wait(10)
