"""The floor under a broadcast: what writing one frame to each of N loopback TCP sockets costs, in Python and in
Node, alternating in one run — `socket.send()` in a plain loop against Node's `net.Socket.write`, with no WebSocket
library, token, JSON or event loop on top. (Node's `ws` writes a server frame as two writes under a cork, which
become one writev: a plain write is a lower bound for its path, as a plain send() is for the project's.)

The live benchmark (bench/live_bench.py) reports the server's CPU per delivery against Node's `ws`, and splits it
into user and system time. This measures the write alone, in each runtime, so that the rest — what each server
spends around it — can be told apart from the floor both pay (docs/benchmark.md). A reader process (Python,
selectors) accepts the connections and discards what it reads; it exits when this script does (its stdin closes).
Each sender is a process of its own, so its CPU (user + system, the process's own) is only its writes; Node's is
read after the writes' completions it defers (`afterWrite`, one per socket) have run.

    .venv/bin/python -m bench.send_floor                              # N = 1,000, 60 rounds, 3 batches each
    .venv/bin/python -m bench.send_floor --sockets 5000 --frame 160
    .venv/bin/python -m bench.send_floor --sockets 20 --rounds 3 --repeat 1   # a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import save
from tests.servers import free_port

REFERENCE_DIR = Path(__file__).resolve().parent / "reference-node"

# The reader: accepts every connection and reads until each closes (its CPU is not measured); it stops when its
# stdin closes, which happens when this script ends however it ends.
READER = """
import selectors, socket, sys
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=8192)
listener.setblocking(False)
selector = selectors.DefaultSelector()
selector.register(listener, selectors.EVENT_READ)
selector.register(sys.stdin, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in selector.select():
        if key.fileobj is sys.stdin:
            sys.exit(0)
        if key.fileobj is listener:
            connection, _ = listener.accept()
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ)
            continue
        try:
            data = key.fileobj.recv(1 << 16)
        except BlockingIOError:
            continue
        if not data:
            selector.unregister(key.fileobj)
            key.fileobj.close()
"""

# The Python sender: as the project's write-now path sends (server/write_now.py), one send() per socket.
SENDER = """
import socket, sys, time
port, count, rounds, size = map(int, sys.argv[1:5])
frame = b"x" * size
sockets = []
for _ in range(count):
    connection = socket.create_connection(("127.0.0.1", port))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection.setblocking(False)
    sockets.append(connection)
time.sleep(0.3)
for _ in range(rounds):
    before = time.process_time()
    for connection in sockets:
        connection.send(frame)
    print(f"{(time.process_time() - before) / count * 1e6:.3f}", flush=True)
    time.sleep(0.02)
"""


def per_write(command: list[str], rounds: int, cwd: Path | None = None) -> float:
    """Median CPU µs per write over the sender's rounds (it prints one figure per round)."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    figures = result.stdout.split()
    if result.returncode != 0 or len(figures) != rounds:
        sys.exit(f"send_floor: {command[0]} failed (exit {result.returncode}, {len(figures)} of {rounds} rounds):\n"
                 f"{result.stderr[-2000:]}")
    return statistics.median(float(figure) for figure in figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=60, help="writes to every socket, per batch")
    parser.add_argument("--repeat", type=int, default=3, help="alternating batches (Python, Node)")
    parser.add_argument("--frame", type=int, default=98,
                        help="bytes per write (98: an ATTENDANCE_MARKED broadcast, 96 bytes of JSON and a 2-byte "
                             "header)")
    parser.add_argument("--save", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    if min(args.sockets, args.rounds, args.repeat, args.frame) < 1:
        parser.error("--sockets, --rounds, --repeat and --frame must be at least 1")
    if shutil.which("node") is None:
        sys.exit("send_floor: node is not installed")

    port = free_port()
    reader = subprocess.Popen([sys.executable, "-c", READER, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert reader.stdout is not None
        if reader.stdout.readline().strip() != b"ready":
            sys.exit("send_floor: the reader did not start")
        sender_args = [str(port), str(args.sockets), str(args.rounds), str(args.frame)]
        senders = {"python": ([sys.executable, "-c", SENDER, *sender_args], None),
                   "node": (["node", "send_floor.js", *sender_args], REFERENCE_DIR)}
        batches: dict[str, list[float]] = {"python": [], "node": []}
        for batch in range(args.repeat):
            for name in ("python", "node") if batch % 2 == 0 else ("node", "python"):  # each goes first in turn
                command, cwd = senders[name]
                batches[name].append(per_write(command, args.rounds, cwd))
                time.sleep(0.5)  # the reader closes the last batch's sockets
    finally:
        reader.terminate()
        reader.wait(10)

    python, node = (statistics.median(batches[name]) for name in ("python", "node"))
    print(f"\nsend floor: one {args.frame}-byte write to each of {args.sockets} loopback sockets, "
          f"medians of {args.repeat} alternating batches of {args.rounds} rounds")
    print(f"  Python socket.send()   {python:7.2f} µs CPU per write   (batches: "
          + ", ".join(f"{value:.2f}" for value in batches["python"]) + ")")
    print(f"  Node socket.write()    {node:7.2f} µs CPU per write   (batches: "
          + ", ".join(f"{value:.2f}" for value in batches["node"]) + ")")
    print(f"  ratio                  {python / node:7.2f}×")
    save({"sockets": args.sockets, "frame": args.frame, "batches": batches,
          "python_us": python, "node_us": node, "ratio": python / node}, args.save)


if __name__ == "__main__":
    main()
