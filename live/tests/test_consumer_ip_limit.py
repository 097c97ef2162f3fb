"""Open sockets per client address in this process (WS_MAX_SOCKETS_PER_IP), in-process; over the wire:
test_wire_ip_limit.py."""

from __future__ import annotations

import contextlib

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from attendance_site.asgi import application
from common.limits import SocketSlots, open_sockets_per_ip
from tests.support import (
    CLOSE_POLICY_VIOLATION,
    NO_SESSION,
    TOO_MANY_CONNECTIONS,
    WS_UNAUTHORIZED,
    comm_ask,
    comm_recv,
    error,
    frame,
    make_user,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS, OTHER_ADDRESS = "203.0.113.20", "203.0.113.21"


@pytest.fixture
async def sockets_from(fresh_live):
    """Open in-process sockets from a client address: `await open_(token, address)` → (accepted, communicator);
    every socket is disconnected at the end of the test."""
    opened: list[WebsocketCommunicator] = []

    async def open_(token: str | None, address: str = ADDRESS) -> tuple[bool, WebsocketCommunicator]:
        communicator = WebsocketCommunicator(application, "/ws" if token is None else f"/ws?token={token}")
        communicator.scope["client"] = (address, 50000 + len(opened))  # what Daphne sets from the peer
        opened.append(communicator)
        accepted, _ = await communicator.connect(timeout=5)
        return accepted, communicator

    yield open_
    for communicator in opened:
        with contextlib.suppress(Exception):
            await communicator.disconnect(timeout=5)


async def token_of(role: str) -> str:
    return token_for(await database_sync_to_async(make_user)(role))


async def expect_refused(ws, message: str) -> None:
    assert await comm_recv(ws) == error(message)
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION}


async def test_a_socket_beyond_the_cap_of_its_address_is_refused_whoever_it_is_and_its_slot_comes_back(
    sockets_from, settings
):
    settings.WS_MAX_SOCKETS_PER_IP = 2
    _, first = await sockets_from(await token_of("teacher"))
    _, second = await sockets_from(await token_of("student"))
    assert open_sockets_per_ip.count(ADDRESS) == 2
    _, third = await sockets_from(await token_of("student"))  # a third user: the address is full
    await expect_refused(third, TOO_MANY_CONNECTIONS)
    _, bad_token = await sockets_from("not-a-token")
    await expect_refused(bad_token, TOO_MANY_CONNECTIONS)  # checked before the token: a flood costs nothing
    assert open_sockets_per_ip.count(ADDRESS) == 2
    # Another address has slots of its own.
    _, elsewhere = await sockets_from(await token_of("student"), OTHER_ADDRESS)
    assert await comm_ask(elsewhere, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    await first.disconnect(timeout=5)
    assert open_sockets_per_ip.count(ADDRESS) == 1
    _, again = await sockets_from(await token_of("student"))
    assert await comm_ask(again, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert await comm_ask(second, frame("MY_ATTENDANCE")) == error(NO_SESSION)


async def test_a_refused_bad_token_gives_its_slot_back(sockets_from, settings):
    settings.WS_MAX_SOCKETS_PER_IP = 1
    for _ in range(3):
        _, ws = await sockets_from("not-a-token")
        await expect_refused(ws, WS_UNAUTHORIZED)
    assert open_sockets_per_ip.count(ADDRESS) == 0
    _, ws = await sockets_from(await token_of("student"))
    assert await comm_ask(ws, frame("MY_ATTENDANCE")) == error(NO_SESSION)


async def test_a_cap_of_zero_is_off(sockets_from, settings):
    settings.WS_MAX_SOCKETS_PER_IP, settings.WS_MAX_SOCKETS_PER_USER = 0, 0
    token = await token_of("student")
    sockets = [(await sockets_from(token))[1] for _ in range(5)]
    assert await comm_ask(sockets[-1], frame("MY_ATTENDANCE")) == error(NO_SESSION)


def test_the_per_address_slots_read_their_own_setting(settings):
    slots = SocketSlots("WS_MAX_SOCKETS_PER_IP")
    settings.WS_MAX_SOCKETS_PER_IP, settings.WS_MAX_SOCKETS_PER_USER = 2, 0
    assert [slots.acquire(ADDRESS, f"s{i}") for i in range(3)] == [True, True, False]
    settings.WS_MAX_SOCKETS_PER_IP = 0  # off: far beyond the default of 200
    assert all(slots.acquire(OTHER_ADDRESS, f"t{i}") for i in range(500))


async def test_a_socket_whose_server_names_no_client_address_is_not_counted(communicators, settings):
    settings.WS_MAX_SOCKETS_PER_IP = 1
    token = await token_of("student")
    sockets = [await communicators(token) for _ in range(3)]  # no scope["client"]: not lumped into one address
    assert await comm_ask(sockets[-1], frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert open_sockets_per_ip.by_user == {}
