"""Over the wire: what the HTTP channel refuses or leaves alone before the application (server.http_guard), and
a Host Django refuses with DEBUG on (common.api.BadHostMiddleware).

- bodies over 1 MiB are 413 without being read: from `Content-Length` at once, or as a chunked body arrives;
- a form body that does not parse reaches Django (the contract reads every body as JSON);
- a WebSocket upgrade on any path but `/ws` is the JSON 404, with no traceback in the log;
- an invalid Host is the JSON 400 with DEBUG on too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support import (
    INVALID_SCHEMA,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    log_since,
    log_size,
    own_wire_server,
)

pytestmark = pytest.mark.wire

MIB = 1024 * 1024
# Growth of the server's memory that is noise, not a body read into it (the bodies sent are far larger).
RSS_TOLERANCE = 8 * MIB


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the first byte sent to the whole answer
    sent_before: int  # body bytes the client had sent when the answer came
    closed: bool  # the server closed the connection after the answer

    def envelope(self) -> object:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        return json.loads(self.body)


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body[: int(headers.get("content-length", len(body)))]


async def exchange(port: int, head: bytes, body: Iterable[bytes], timeout: float = 5.0) -> Answer:
    """Send `head`, then the pieces of `body` until the server answers (reading all along, as a client that
    expects an early answer does); the answer and what had been sent by then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    received = bytearray()
    answered = asyncio.Event()
    sent = 0

    async def read() -> bool:
        """Read until the whole answer is in; True if the server then closed the connection."""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                answered.set()
                return True
            received.extend(chunk)
            if b"\r\n\r\n" in received:
                _, headers, _ = parse_answer(bytes(received))
                if len(received.partition(b"\r\n\r\n")[2]) >= int(headers.get("content-length", 0)):
                    answered.set()
                    try:
                        return await asyncio.wait_for(reader.read(65536), 1.0) == b""
                    except (TimeoutError, ConnectionError):
                        return False

    async def send() -> int:
        nonlocal sent
        try:
            writer.write(head)
            await writer.drain()
            for piece in body:
                if answered.is_set():
                    break
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
                await asyncio.sleep(0.002)  # let the answer in, if there is one
        except ConnectionError:
            pass  # the server stopped reading: its answer says why
        return sent

    reading = asyncio.create_task(read())
    sending = asyncio.create_task(send())
    try:
        closed = await asyncio.wait_for(reading, timeout)
        seconds = time.monotonic() - started
        sent_before = sent
    finally:
        sending.cancel()
        writer.close()
    status, headers, content = parse_answer(bytes(received))
    return Answer(status, headers, content, seconds, sent_before, closed)


def memory_kib(pid: int) -> dict[str, int]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in KiB (proc(5))."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def assert_no_growth(before: dict[str, int], after: dict[str, int]) -> None:
    for name in before:
        grown = (after[name] - before[name]) * 1024
        assert grown < RSS_TOLERANCE, f"{name} grew by {grown / MIB:.1f} MiB ({before} → {after})"


def post_head(path: str, length: int | None, extra: bytes = b"") -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
        + framing + b"\r\n" + extra + b"\r\n"
    )


def assert_too_large(answer: Answer) -> None:
    assert (answer.status, answer.envelope()) == (413, {"success": False, "error": PAYLOAD_TOO_LARGE}), answer
    assert answer.headers["connection"] == "close"
    assert answer.closed


# --- bodies over 1 MiB --------------------------------------------------------------------------------------
async def test_a_declared_800_mb_body_is_refused_at_once_unread(wire_server):
    pid = wire_server.process.pid
    before = memory_kib(pid)
    answer = await exchange(wire_server.port, post_head("/class", 800_000_000), [b'{"className": "x'])
    assert_too_large(answer)  # no token: the size is refused before anything reads the body
    assert answer.seconds < 2.0, answer.seconds
    assert_no_growth(before, memory_kib(pid))


async def test_a_large_body_sent_whole_never_reaches_memory(wire_server):
    """Out of the box the whole body was handed to the application in memory, then Django refused it."""
    pid = wire_server.process.pid
    await exchange(wire_server.port, post_head("/class", 2 * MIB), [b"x" * 65536] * 32)  # warm the path up
    before = memory_kib(pid)
    size = 64 * MIB
    answer = await exchange(wire_server.port, post_head("/class", size), [b"x" * MIB] * 64, timeout=10.0)
    assert_too_large(answer)
    assert answer.sent_before < size
    assert_no_growth(before, memory_kib(pid))


async def test_an_expect_100_continue_client_is_refused_before_it_sends_the_body(wire_server):
    answer = await exchange(wire_server.port, post_head("/auth/login", 2 * MIB, b"Expect: 100-continue\r\n"), [])
    assert answer.status == 413  # not "100 Continue"
    assert_too_large(answer)


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_1_mib(wire_server):
    piece = b"x" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    total = 32 * MIB
    answer = await exchange(wire_server.port, post_head("/auth/login", None), [chunk] * (total // len(piece)))
    assert_too_large(answer)
    assert answer.sent_before < total, "answered only once the whole body was sent"


async def test_bodies_within_the_limit_still_arrive_whole(wire_server, make_person, api):
    teacher = make_person("teacher")
    name = "Chunked " + "y" * 190

    def pieces():
        body = json.dumps({"className": name}).encode()
        for start in range(0, len(body), 100):
            yield body[start:start + 100]

    created = assert_ok(api.post("/class", content=pieces(), headers=teacher.headers), 201)  # chunked
    assert created["className"] == name
    padded = b'{"className": "Padded", "pad": "' + b"z" * (MIB - 100) + b'"}'  # just under 1 MiB
    assert len(padded) <= MIB
    assert assert_ok(api.post("/class", content=padded, headers=teacher.headers), 201)["className"] == "Padded"


# --- form bodies are not parsed by the server --------------------------------------------------------------------
MULTIPART = "multipart/form-data; boundary=----nope"


def test_a_form_body_that_does_not_parse_gets_the_contracts_answer(api, make_person):
    garbage = b"this is not multipart at all\r\n------nope\r\nbroken"
    assert_error(api.post("/class", content=garbage, headers={"Content-Type": MULTIPART}), 401, UNAUTHORIZED)
    teacher = make_person("teacher")
    for content_type in (MULTIPART, "application/x-www-form-urlencoded"):
        headers = {**teacher.headers, "Content-Type": content_type}
        assert_error(api.post("/class", content=garbage, headers=headers), 400, INVALID_SCHEMA)
    # JSON is read whatever the Content-Type says.
    headers = {**teacher.headers, "Content-Type": MULTIPART}
    assert assert_ok(api.post("/class", content=b'{"className": "Form"}', headers=headers), 201)["className"] == "Form"


# --- WebSocket upgrades on paths with no socket ----------------------------------------------------------------
async def test_an_upgrade_on_a_path_with_no_socket_is_the_json_404(wire_server):
    offset = log_size(wire_server)
    for path in ("/ws/", "//ws", "/WS", "/nope", "/nope?token=x"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{wire_server.port}{path}", open_timeout=5):
                pass
        response = refused.value.response
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["Content-Type"].startswith("application/json"), path
        assert json.loads(response.body) == {"success": False, "error": NOT_FOUND}, path
    async with connect(f"{wire_server.ws_url}?token=x", open_timeout=5):  # the socket's own path still opens
        pass
    await asyncio.sleep(0.3)  # anything logged late
    assert "Traceback" not in log_since(wire_server, offset)


# --- an invalid Host with DEBUG on -----------------------------------------------------------------------------
def test_an_invalid_host_is_the_json_400_with_debug_on(tmp_path):
    with (
        own_wire_server(tmp_path, {"DEBUG": "1"}) as server,
        httpx.Client(base_url=server.http_url, timeout=10) as client,
    ):
        for host in ("bad_host", "example.com:port"):
            assert_error(client.get("/auth/me", headers={"Host": host}), 400, "Bad request")
        assert_error(client.get("/auth/me"), 401, UNAUTHORIZED)  # a good Host is served as ever
