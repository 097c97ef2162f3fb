"""server.daphne_ext.AttendanceServer lets go of a connection as soon as it is gone and its application has
finished without an error — what Daphne's once-a-second application_checker does with it, done at once — and leaves
every other connection to that checker as before (the close timeout of an application still running; the error
logged, and answered while its client is still there, of one that raised)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from daphne import server as daphne_server

from server.daphne_ext import AttendanceServer


class Protocol:
    """A connection as the server sees it: what it was told of its application's error, if anything. Told one,
    it answers (a 500) and is done, which tells the server it is gone — as Daphne's HTTP request does."""

    def __init__(self, server: AttendanceServer | None = None) -> None:
        self.server = server
        self.handled: list[BaseException] = []

    def handle_exception(self, exception: BaseException) -> None:
        self.handled.append(exception)
        if self.server is not None:
            self.server.protocol_disconnected(self)


@pytest.fixture
def checker_turns(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Daphne's checker, run by hand: the delays it asks to run again after (never run by the reactor here)."""
    turns: list[float] = []
    monkeypatch.setattr(daphne_server.reactor, "callLater", lambda delay, *args, **kwargs: turns.append(delay))
    return turns


def new_server(application: Any) -> AttendanceServer:
    server = AttendanceServer(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])  # not started
    server.connections = {}  # what Server.run() would set up
    return server


def connect(server: AttendanceServer, protocol: Protocol | None = None) -> Protocol:
    protocol = protocol or Protocol()
    server.protocol_connected(protocol)
    server.create_application(protocol, {"type": "http"})
    return protocol


async def answers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An application that is done at once."""


async def raises(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise ValueError("broken")


async def settle() -> None:
    """Let the applications run and their done callbacks fire."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_request_answered_then_disconnected_is_forgotten_at_once() -> None:
    server = new_server(answers)
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


async def test_an_application_that_raised_while_its_client_is_there_is_answered_by_the_checker(
    checker_turns: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """The checker answers it (handle_exception: a 500), which tells the server the connection is gone while the
    checker is still at its entry: the entry stays for the checker to finish with, and the checker runs on."""
    server = new_server(raises)
    protocol = connect(server, Protocol(server))
    await settle()
    assert protocol in server.connections  # left to the checker
    with caplog.at_level(logging.ERROR, logger="daphne.server"):
        server.application_checker()
    assert [type(error) for error in protocol.handled] == [ValueError]
    errors = [record.getMessage() for record in caplog.records if record.name == "daphne.server"]
    assert errors == ["Exception inside application: broken"]  # once
    assert checker_turns == [1]  # it got to its end, and will run again
    server.application_checker()  # its next turn drops the answered, gone connection, as Daphne's does
    assert server.connections == {}
    assert checker_turns == [1, 1]


async def test_the_error_of_an_application_whose_client_left_is_left_for_the_checker_to_log(
    checker_turns: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    server = new_server(raises)
    protocol = connect(server)
    server.protocol_disconnected(protocol)
    await settle()
    assert protocol in server.connections
    with caplog.at_level(logging.ERROR, logger="daphne.server"):
        server.application_checker()
    assert server.connections == {}
    errors = [record for record in caplog.records if record.name == "daphne.server"]
    assert [record.getMessage() for record in errors] == ["Exception inside application: broken"]
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], ValueError)
    assert protocol.handled == []  # no one to answer


async def test_a_connection_told_it_is_gone_again_after_it_was_forgotten() -> None:
    """A WebSocket refused, then closed: told twice. The second time, after the entry was dropped, is nothing."""

    server = new_server(answers)
    protocol = connect(server)
    await settle()
    server.protocol_disconnected(protocol)
    assert server.connections == {}
    server.protocol_disconnected(protocol)
    assert server.connections == {}


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
