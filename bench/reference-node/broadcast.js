// bench/live_bench.py's Node reference (`--reference node`): the broadcast of bench/reference_server.py in the
// spec's own socket library. When a client sends ATTENDANCE_MARKED, it sends the same text to every open socket,
// the sender included.
//
// Given the project's SQLite file (and JWT_SECRET), each socket is authenticated as the spec's server does it and
// as bench/reference-node/server.js does: its `?token=` verified with jsonwebtoken and its user looked up with
// better-sqlite3; a socket without a valid token gets the contract's ERROR and is closed (4001, as in server.js).
// Without a file every socket on /ws is accepted (`--reference node-open`: no token check, no database).
//
//     [JWT_SECRET=...] node bench/reference-node/broadcast.js PORT [DATABASE_FILE]
"use strict";

const http = require("http");
const { WebSocketServer } = require("ws");

const [port, file] = process.argv.slice(2);
let userOf = () => ({}); // without a database file: anyone
if (file) {
  const jwt = require("jsonwebtoken");
  const Database = require("better-sqlite3");
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma("busy_timeout = 20000");
  const user = db.prepare("SELECT _id, role FROM accounts_user WHERE _id = ? AND is_active = 1");
  // Made once, as server.js does (a string secret costs jsonwebtoken 9 a failed public-key parse per call).
  const secret = require("node:crypto").createSecretKey(Buffer.from(process.env.JWT_SECRET));
  userOf = (token) => {
    try {
      return user.get(jwt.verify(token ?? "", secret, { algorithms: ["HS256"] }).userId) ?? null;
    } catch {
      return null;
    }
  };
}

const server = http.createServer((req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname !== "/ws") return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!userOf(url.searchParams.get("token"))) {
      ws.send(JSON.stringify({ event: "ERROR", data: { message: "Unauthorized or invalid token" } }));
      return ws.close(4001);
    }
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

server.listen(Number(port), "127.0.0.1", () => console.log("ready"));
