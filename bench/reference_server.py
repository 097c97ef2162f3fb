"""The benchmark's reference: the same broadcast in about as little Python as it takes.

A `websockets` server that accepts every socket on /ws (no token check, no database) and, when a client
sends ATTENDANCE_MARKED, sends the same text back to every open socket (the sender included, as the
project echoes to the teacher). `bench/live_bench.py` measures it with the same client in the same run,
so that its figures are ratios against this rather than numbers from a good day.

    .venv/bin/python bench/reference_server.py PORT
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

connections: set[ServerConnection] = set()


async def handle(connection: ServerConnection) -> None:
    connections.add(connection)
    try:
        async for text in connection:
            if json.loads(text).get("event") == "ATTENDANCE_MARKED":
                broadcast(connections, text)  # frames once per socket, writes without awaiting
    except ConnectionClosed:
        pass  # the client left: not the reference's concern
    finally:
        connections.discard(connection)


async def main(port: int) -> None:
    gc.freeze()  # as server.serve does: start-up objects stay out of GC passes
    async with serve(handle, "127.0.0.1", port, compression=None, max_queue=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
