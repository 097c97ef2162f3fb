// bench/live_bench.py's Node reference (`--reference node`): the broadcast of bench/reference_server.py in the
// spec's own socket library. Accepts every socket on /ws (no token check, no database) and, when a client
// sends ATTENDANCE_MARKED, sends the same text to every open socket, the sender included.
//
//     node bench/reference-node/broadcast.js PORT
"use strict";

const http = require("http");
const { WebSocketServer } = require("ws");

const server = http.createServer((req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on("upgrade", (req, socket, head) => {
  if (!req.url.startsWith("/ws")) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on("error", () => ws.terminate());
    ws.on("message", (raw, isBinary) => {
      if (isBinary) return;
      let frame;
      try {
        frame = JSON.parse(raw);
      } catch {
        return;
      }
      if (frame && frame.event === "ATTENDANCE_MARKED") {
        const text = raw.toString();
        for (const client of wss.clients) client.send(text);
      }
    });
  });
});

server.listen(Number(process.argv[2]), "127.0.0.1", () => console.log("ready"));
