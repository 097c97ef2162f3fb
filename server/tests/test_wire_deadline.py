"""Over the wire: a connection that has not completed its request or handshake within 10 s is closed
(docs/production.md "Limits against abuse"; server.daphne_limits). Raw TCP clients against the real server.

Every case runs at once, so the module takes one deadline (~10 s), not one per case.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support import NO_SESSION, Person, ask, error, frame, own_wire_server

pytestmark = pytest.mark.wire

DEADLINE = 10.0
# Twisted's idle timeout (60 s) would close none of these within the bound; the deadline closes them all.
EARLIEST, LATEST = DEADLINE - 1.0, DEADLINE + 3.0


async def open_tcp(server):
    return await asyncio.open_connection("127.0.0.1", server.port)


async def closed_after(reader: asyncio.StreamReader, opened: float) -> tuple[float, bytes]:
    """Seconds from `opened` until the server closed the connection, and what it sent before."""
    received = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), LATEST + 5)
        if not chunk:
            return time.monotonic() - opened, received
        received += chunk


async def silent_client(server):
    opened = time.monotonic()
    reader, writer = await open_tcp(server)
    try:
        return await closed_after(reader, opened)
    finally:
        writer.close()


async def partial_request(server, data: bytes):
    opened = time.monotonic()
    reader, writer = await open_tcp(server)
    try:
        writer.write(data)
        await writer.drain()
        return await closed_after(reader, opened)
    finally:
        writer.close()


async def slowloris(server):
    """Headers trickled a byte a second: an idle timeout restarts on each byte; the deadline does not."""
    opened = time.monotonic()
    reader, writer = await open_tcp(server)
    request = b"GET /auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100

    async def trickle() -> None:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1.0)

    trickling = asyncio.create_task(trickle())
    try:
        return await closed_after(reader, opened)
    finally:
        trickling.cancel()
        writer.close()


async def kept_alive_then_idle(server):
    """A completed request is not cut: the idle connection stays open past the deadline and serves again."""
    reader, writer = await open_tcp(server)
    request = b"GET /auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answers = []
    try:
        for pause in (0.0, DEADLINE + 2):
            await asyncio.sleep(pause)
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.split(b"\r\n")
            length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
            await asyncio.wait_for(reader.readexactly(length), 5)
            answers.append(lines[0])
    finally:
        writer.close()
    return answers


async def open_socket_then_idle(ws_open, token):
    ws = await ws_open(token)
    await asyncio.sleep(DEADLINE + 2)
    return await ask(ws, frame("TODAY_SUMMARY"))


async def test_connections_that_do_not_complete_their_request_are_closed_within_10_s(wire_server, ws_open,
                                                                                      make_person):
    teacher = make_person("teacher")
    upgrade = (
        b"GET /ws?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
    )
    cut_cases = {
        "sends nothing": silent_client(wire_server),
        "half the headers": partial_request(wire_server, b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        "half a WebSocket handshake": partial_request(wire_server, upgrade),
        "half the body": partial_request(
            wire_server,
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n" + b'{"email": "',
        ),
        "a byte a second": slowloris(wire_server),
    }
    results = await asyncio.gather(
        *cut_cases.values(), kept_alive_then_idle(wire_server), open_socket_then_idle(ws_open, teacher.token)
    )
    *cut, kept_alive, socket_answer = results
    for name, (seconds, received) in zip(cut_cases, cut, strict=True):
        assert EARLIEST <= seconds <= LATEST, f"{name}: closed after {seconds:.1f} s"
        assert received == b"", f"{name}: sent {received!r}"
    assert kept_alive == [b"HTTP/1.1 401 Unauthorized"] * 2
    assert socket_answer == error(NO_SESSION)


async def still_open_after(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if the server neither closed the connection nor sent anything within `seconds`."""
    try:
        await asyncio.wait_for(reader.read(65536), seconds)
    except TimeoutError:
        return True
    return False


async def silent_and_half_handshake_open_after(server, seconds: float) -> list[bool]:
    connections = [await open_tcp(server) for _ in range(2)]
    _, half_handshake = connections[1]
    half_handshake.write(b"GET /ws?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    await half_handshake.drain()
    try:
        return list(await asyncio.gather(*(still_open_after(reader, seconds) for reader, _ in connections)))
    finally:
        for _, writer in connections:
            writer.close()


async def test_the_deadline_is_set_by_env_and_0_turns_it_off(tmp_path, wire_sockets):
    (tmp_path / "short").mkdir()
    (tmp_path / "off").mkdir()
    with (
        own_wire_server(tmp_path / "short", {"REQUEST_DEADLINE_SECONDS": "2"}) as short,
        own_wire_server(tmp_path / "off", {"REQUEST_DEADLINE_SECONDS": "0"}) as off,
    ):
        (short_seconds, _), (half_seconds, _), open_without_deadline = await asyncio.gather(
            silent_client(short),
            partial_request(short, b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
            silent_and_half_handshake_open_after(off, DEADLINE + 2),
        )
        assert 1.0 <= short_seconds <= 5.0 and 1.0 <= half_seconds <= 5.0, (short_seconds, half_seconds)
        assert open_without_deadline == [True, True]  # past the default's 10 s: only the idle timeout is left
        # Off does not refuse sockets (Daphne's connect timeout has no 0): a socket opens and is served.
        with httpx.Client(base_url=off.http_url, timeout=10) as api:
            teacher = Person(api, "teacher")
        ws = await wire_sockets(off, teacher.token)
        assert await ask(ws, frame("TODAY_SUMMARY")) == error(NO_SESSION)
