"""Over the wire: open sockets per client address (WS_MAX_SOCKETS_PER_IP) on a real Daphne process of its own,
behind a "proxy" (PROXY_HEADERS on), so that each test names its client addresses in X-Forwarded-For."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import DaphneServer
from tests.support import (
    CLOSE_POLICY_VIOLATION,
    NO_SESSION,
    TOO_MANY_CONNECTIONS,
    Person,
    ask,
    error,
    expect_close,
    frame,
    own_wire_server,
    recv,
)

pytestmark = pytest.mark.wire

SOCKETS_PER_IP = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DaphneServer]:
    env = {"PROXY_HEADERS": "1", "WS_MAX_SOCKETS_PER_IP": str(SOCKETS_PER_IP)}
    with own_wire_server(tmp_path_factory.mktemp("sockets-per-ip"), env) as server:
        yield server


def made_up_address() -> str:
    return "198.18.{}.{}".format(*secrets.token_bytes(2))  # RFC 2544's benchmarking range


async def test_a_socket_beyond_the_cap_of_its_address_gets_too_many_connections_and_close_1008(server):
    with httpx.Client(base_url=server.http_url, timeout=10) as api:
        people = [Person(api, "student") for _ in range(SOCKETS_PER_IP + 1)]
    address = made_up_address()

    async def open_(stack: AsyncExitStack, person: Person, forwarded_for: str) -> ClientConnection:
        url = f"{server.ws_url}?token={person.token}"
        headers = {"X-Forwarded-For": forwarded_for}
        return await stack.enter_async_context(connect(url, additional_headers=headers, open_timeout=5))

    async with AsyncExitStack() as stack:
        # One socket each for different users: the cap is the address's, not a user's.
        sockets = [await open_(stack, person, address) for person in people[:SOCKETS_PER_IP]]
        answers = await asyncio.gather(*(ask(ws, frame("MY_ATTENDANCE")) for ws in sockets))
        assert answers == [error(NO_SESSION)] * SOCKETS_PER_IP
        refused = await open_(stack, people[-1], address)
        assert await recv(refused) == error(TOO_MANY_CONNECTIONS)
        await expect_close(refused, CLOSE_POLICY_VIOLATION)
        # The same user from another address is let in.
        elsewhere = await open_(stack, people[-1], made_up_address())
        assert await ask(elsewhere, frame("MY_ATTENDANCE")) == error(NO_SESSION)
        # Closing one gives its slot back (once the server has seen the close).
        await sockets[0].close()
        deadline = time.monotonic() + 5
        while True:
            again = await open_(stack, people[-1], address)
            answer = await ask(again, frame("MY_ATTENDANCE"))
            if answer == error(NO_SESSION) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert answer == error(NO_SESSION)
