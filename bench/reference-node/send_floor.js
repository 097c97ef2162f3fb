// bench/send_floor.py's Node side: one process writes the same WebSocket-sized frame to each of N loopback
// TCP sockets (net.Socket.write: libuv writes at once when nothing is queued; `ws` makes the same write, as two
// under a cork), and prints its own CPU (user + system) per write, one line per round: the floor under a
// broadcast's delivery in the spec's stack, with no WebSocket library, token or JSON on top.
//   node send_floor.js PORT SOCKETS ROUNDS FRAME_BYTES
"use strict";
const net = require("net");
const [port, count, rounds, size] = process.argv.slice(2).map(Number);
const frame = Buffer.alloc(size, "x");
const sockets = [];
let open = 0;

for (let i = 0; i < count; i++) {
  const socket = net.connect(port, "127.0.0.1", () => {
    socket.setNoDelay(true);
    if (++open === count) measure();
  });
  sockets.push(socket);
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure() {
  await pause(300);
  for (let round = 0; round < rounds; round++) {
    const before = process.cpuUsage();
    for (const socket of sockets) socket.write(frame);
    // A write that completes at once still defers its completion (afterWrite, on the next tick): counted too.
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.cpuUsage(before);
    console.log(((used.user + used.system) / count).toFixed(3));
    await pause(20); // the reader drains; the next round starts on empty buffers
  }
  process.exit(0);
}
