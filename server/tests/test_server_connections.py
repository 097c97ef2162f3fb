"""server.daphne_ext.AttendanceServer lets go of a connection as soon as it is gone and its application has
finished — what Daphne's once-a-second application_checker does with it, done at once — and leaves every other
connection to that checker as before (the close timeout of an application still running; the error answer of one
that raised while its client is still there)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from server.daphne_ext import AttendanceServer


class Protocol:
    """A connection as the server sees it: what it was told of its application's error, if anything."""

    def __init__(self) -> None:
        self.handled: list[BaseException] = []

    def handle_exception(self, exception: BaseException) -> None:
        self.handled.append(exception)


def new_server(application: Any) -> AttendanceServer:
    server = AttendanceServer(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])  # not started
    server.connections = {}  # what Server.run() would set up
    return server


def connect(server: AttendanceServer) -> Protocol:
    protocol = Protocol()
    server.protocol_connected(protocol)
    server.create_application(protocol, {"type": "http"})
    return protocol


async def settle() -> None:
    """Let the applications run and their done callbacks fire."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_request_answered_then_disconnected_is_forgotten_at_once() -> None:
    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    server = new_server(application)
    protocol = connect(server)
    await settle()
    assert protocol in server.connections  # finished, but its client is still there
    server.protocol_disconnected(protocol)
    assert server.connections == {}


async def test_a_request_disconnected_then_finished_is_forgotten_when_it_finishes() -> None:
    release = asyncio.Event()

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await release.wait()

    server = new_server(application)
    protocol = connect(server)
    await settle()
    server.protocol_disconnected(protocol)
    assert protocol in server.connections  # still running: the checker's close timeout still applies to it
    release.set()
    await settle()
    assert server.connections == {}


async def test_an_application_that_raised_while_its_client_is_there_is_left_to_the_checker() -> None:
    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("broken")

    server = new_server(application)
    protocol = connect(server)
    await settle()
    # Daphne's checker answers it (protocol.handle_exception: a 500) at its next turn, as before.
    assert server.connections[protocol]["application_instance"].done()
    assert protocol.handled == []


async def test_the_error_of_an_application_whose_client_left_is_logged_once_as_daphne_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("broken")

    server = new_server(application)
    protocol = connect(server)
    server.protocol_disconnected(protocol)
    with caplog.at_level(logging.ERROR, logger="daphne.server"):
        await settle()
    assert server.connections == {}
    errors = [record for record in caplog.records if record.name == "daphne.server"]
    assert [record.getMessage() for record in errors] == ["Exception inside application: broken"]
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], ValueError)
    assert protocol.handled == []  # no one to answer


async def test_a_cancelled_application_is_forgotten_without_a_word(caplog: pytest.LogCaptureFixture) -> None:
    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    server = new_server(application)
    protocol = connect(server)
    await settle()
    server.protocol_disconnected(protocol)
    server.connections[protocol]["application_instance"].cancel()
    with caplog.at_level(logging.ERROR, logger="daphne.server"):
        await settle()
    assert server.connections == {}
    assert [record for record in caplog.records if record.name == "daphne.server"] == []
