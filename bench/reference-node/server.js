// bench/http_bench.py's reference: the routes the benchmark calls, in the spec's own stack (Express,
// jsonwebtoken, ws, better-sqlite3), reading the same SQLite file the project's server uses. As little as
// it takes, written as a Node developer would: a token check and a user lookup per request, prepared
// statements, JSON.stringify. Not a second implementation of the project: no limits, no validation
// beyond what these routes need.
//
//     JWT_SECRET=... node server.js PORT DATABASE_FILE
"use strict";

const http = require("node:http");
const { createSecretKey } = require("node:crypto");
const express = require("express");
const jwt = require("jsonwebtoken");
const Database = require("better-sqlite3");
const { WebSocketServer } = require("ws");

const [port, file] = process.argv.slice(2);
// The key made once: given the secret as a string, jsonwebtoken 9 first tries it as a public key (an OpenSSL
// error and a caught exception per call): 350 µs per verify here, against 16 µs with a KeyObject.
const secret = createSecretKey(Buffer.from(process.env.JWT_SECRET));
const db = new Database(file, { readonly: true, fileMustExist: true });
db.pragma("busy_timeout = 20000");

// The project's schema as this checkout has it: sessions with a `state` and records tied to them by
// `sessionId` (durable live sessions), or the earlier `committed` flag and records tied by (class, startedAt).
const durable = db.prepare("SELECT name FROM pragma_table_info('attendance_sessions') WHERE name = 'state'").get();
const persisted = durable ? "s.state = 'persisted'" : "s.committed = 1";
const joinOf = (a, s) => durable
  ? `JOIN attendance_sessions ${s} ON ${s}._id = ${a}.sessionId AND ${s}.state = 'persisted'`
  : `JOIN attendance_sessions ${s} ON ${s}.classId = ${a}.classId AND ${s}.startedAt = ${a}.startedAt AND ${s}.committed = 1`;
const joinSession = joinOf("a", "s");
// Classes with at-risk settings (docs/api.md "Reports and roster"), or an earlier checkout's without them.
const settings = db.prepare("SELECT name FROM pragma_table_info('classes') WHERE name = 'min_rate'").get();

const q = {
  user: db.prepare("SELECT _id, name, email, role FROM accounts_user WHERE _id = ? AND is_active = 1"),
  klass: db.prepare(
    "SELECT _id, class_name, teacher_id" + (settings ? ", min_rate, max_consecutive_absences" : "") +
      " FROM classes WHERE _id = ?"),
  members: db.prepare(
    "SELECT u._id, u.name, u.email FROM enrollments e JOIN accounts_user u ON u._id = e.studentId " +
      "WHERE e.classId = ? ORDER BY e._id"),
  enrolled: db.prepare("SELECT 1 FROM enrollments WHERE classId = ? AND studentId = ?"),
  taught: db.prepare("SELECT _id, class_name, teacher_id FROM classes WHERE teacher_id = ? ORDER BY _id DESC"),
  joined: db.prepare(
    "SELECT c._id, c.class_name, c.teacher_id FROM enrollments e JOIN classes c ON c._id = e.classId " +
      "WHERE e.studentId = ? ORDER BY e._id DESC"),
  size: db.prepare("SELECT COUNT(*) AS n FROM enrollments WHERE classId = ?"),
  sessions: db.prepare(`SELECT COUNT(*) AS n FROM attendance_sessions s WHERE s.classId = ? AND ${persisted}`),
  counts: db.prepare(
    "SELECT a.studentId, SUM(a.status = 'present') AS present, SUM(a.status = 'absent') AS absent, " +
      "SUM(a.status = 'late') AS late, SUM(a.status = 'excused') AS excused " +
      `FROM attendance a ${joinSession} WHERE a.classId = ? GROUP BY a.studentId`),
  // Each student's run of absences: those after their last present or late session (excused ones neither count
  // nor break it).
  runs: db.prepare(
    `SELECT a.studentId, COUNT(*) AS n FROM attendance a ${joinSession} WHERE a.classId = ? AND a.status = 'absent' ` +
      "AND a.startedAt > COALESCE((SELECT MAX(b.startedAt) FROM attendance b " + joinOf("b", "t") +
      " WHERE b.classId = a.classId AND b.studentId = a.studentId AND b.status IN ('present', 'late')), '') " +
      "GROUP BY a.studentId"),
  latest: db.prepare(
    `SELECT a.status FROM attendance a ${joinSession} WHERE a.classId = ? AND a.studentId = ? ` +
      "ORDER BY a.startedAt DESC LIMIT 1"),
  history: db.prepare(
    `SELECT a.startedAt, a.status FROM attendance a ${joinSession} WHERE a.classId = ? AND a.studentId = ? ` +
      "ORDER BY a.startedAt DESC"),
};

const live = new Map(); // classId → {teacherId, startedAt, attendance}

const iso = (stored) => new Date(stored.replace(" ", "T") + "Z").toISOString();
const ok = (res, data, status = 200) => res.status(status).json({ success: true, data });
const fail = (res, status, error) => res.status(status).json({ success: false, error });

function userOf(header) {
  if (!header) return null;
  const parts = header.split(" ").filter(Boolean);
  const token = parts.length === 1 ? parts[0] : parts.length === 2 && parts[0].toLowerCase() === "bearer" ? parts[1] : null;
  if (!token) return null;
  try {
    const claims = jwt.verify(token, secret, { algorithms: ["HS256"] });
    return q.user.get(claims.userId) ?? null;
  } catch {
    return null;
  }
}

const auth = (role) => (req, res, next) => {
  const user = userOf(req.headers.authorization);
  if (!user) return fail(res, 401, "Unauthorized, token missing or invalid");
  if (role && user.role !== role) return fail(res, 403, `Forbidden, ${role} access required`);
  req.user = user;
  next();
};

function classFor(req, res, check) {
  const klass = q.klass.get(req.params.id);
  if (!klass) return fail(res, 404, "Class not found");
  if (!check(klass)) return fail(res, 403, "Forbidden");
  return klass;
}

const app = express();
app.disable("x-powered-by");
app.disable("etag");
app.use(express.json());

app.get("/auth/me", auth(), (req, res) => {
  const { _id, name, email, role } = req.user;
  ok(res, { _id, name, email, role });
});

app.get("/classes", auth(), (req, res) => {
  const rows = req.user.role === "teacher" ? q.taught.all(req.user._id) : q.joined.all(req.user._id);
  ok(res, rows.map((c) => ({ _id: c._id, className: c.class_name, teacherId: c.teacher_id, studentCount: q.size.get(c._id).n })));
});

app.get("/class/:id", auth(), (req, res) => {
  const klass = q.klass.get(req.params.id);
  if (!klass) return fail(res, 404, "Class not found");
  const students = q.members.all(klass._id);
  if (klass.teacher_id !== req.user._id && !students.some((s) => s._id === req.user._id)) {
    return fail(res, 403, "Forbidden, not class teacher");
  }
  const extra = settings ? { minRate: klass.min_rate, maxConsecutiveAbsences: klass.max_consecutive_absences } : {};
  ok(res, { _id: klass._id, className: klass.class_name, teacherId: klass.teacher_id, students, ...extra });
});

app.get("/class/:id/report", auth("teacher"), (req, res) => {
  const klass = classFor(req, res, (k) => k.teacher_id === req.user._id);
  if (!klass || res.headersSent) return;
  const counts = new Map(q.counts.all(klass._id).map((r) => [r.studentId, r]));
  const runs = new Map(settings ? q.runs.all(klass._id).map((r) => [r.studentId, r.n]) : []);
  const students = q.members.all(klass._id).map((s) => {
    const { present = 0, absent = 0, late = 0, excused = 0 } = counts.get(s._id) ?? {};
    // Late counts as attended, excused is left out (docs/api.md).
    const counted = present + late + absent;
    const rate = counted ? Math.round(((present + late) / counted) * 10000) / 10000 : null;
    if (!settings) return { _id: s._id, name: s.name, email: s.email, present, absent, late, excused, rate };
    const consecutiveAbsences = runs.get(s._id) ?? 0;
    const atRisk = (rate !== null && rate < klass.min_rate) || consecutiveAbsences >= klass.max_consecutive_absences;
    return { _id: s._id, name: s.name, email: s.email, present, absent, late, excused, rate, consecutiveAbsences, atRisk };
  });
  students.sort((a, b) => a.name.localeCompare(b.name, "en", { sensitivity: "base" }) || a.email.localeCompare(b.email));
  ok(res, { classId: klass._id, className: klass.class_name, sessions: q.sessions.get(klass._id).n, students });
});

app.get("/class/:id/my-attendance", auth("student"), (req, res) => {
  const klass = classFor(req, res, (k) => q.enrolled.get(k._id, req.user._id));
  if (!klass || res.headersSent) return;
  ok(res, { classId: klass._id, status: q.latest.get(klass._id, req.user._id)?.status ?? null });
});

app.get("/class/:id/my-history", auth("student"), (req, res) => {
  const klass = classFor(req, res, (k) => q.enrolled.get(k._id, req.user._id));
  if (!klass || res.headersSent) return;
  ok(res, q.history.all(klass._id, req.user._id).map((r) => ({ startedAt: iso(r.startedAt), status: r.status })));
});

app.post("/attendance/start", auth("teacher"), (req, res) => {
  const classId = req.body?.classId;
  const klass = classId && q.klass.get(classId);
  if (!klass) return fail(res, 404, "Class not found");
  if (klass.teacher_id !== req.user._id) return fail(res, 403, "Forbidden, not class teacher");
  const startedAt = new Date().toISOString();
  live.set(klass._id, { teacherId: req.user._id, startedAt, attendance: {} });
  ok(res, { classId: klass._id, startedAt });
});

app.use((req, res) => fail(res, 404, "Not found"));

const server = http.createServer(app);
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname !== "/ws") return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    const user = userOf(url.searchParams.get("token"));
    if (!user) {
      ws.send(JSON.stringify({ event: "ERROR", data: { message: "Unauthorized or invalid token" } }));
      return ws.close(4001);
    }
    ws.on("error", () => ws.terminate()); // a client's bad frame ends its socket, not the server
    ws.on("message", (raw) => {
      let frame;
      try {
        frame = JSON.parse(raw);
      } catch {
        return ws.send(JSON.stringify({ event: "ERROR", data: { message: "Invalid message format" } }));
      }
      if (frame.event === "MY_ATTENDANCE" && user.role === "student") {
        const session = live.get(frame.data?.classId);
        if (!session) return ws.send(JSON.stringify({ event: "ERROR", data: { message: "No active attendance session" } }));
        const status = session.attendance[user._id] ?? "not yet updated";
        return ws.send(JSON.stringify({ event: "MY_ATTENDANCE", data: { status } }));
      }
      ws.send(JSON.stringify({ event: "ERROR", data: { message: "Unknown event" } }));
    });
  });
});

server.listen(Number(port), "127.0.0.1", () => console.log("ready"));
