// The student's class page: the live status (MY_ATTENDANCE and the class's broadcasts) and the history.

import { get } from "./api.js";
import { h, replace } from "./dom.js";
import { formatDate, loadingText, section, statusLabel } from "./ui.js";

const NO_SESSION = "No active attendance session";
// While no session is live, ask now and then, in case one was started by a client that tells nobody.
const IDLE_POLL_MS = 20_000;

export function studentClassPage(root, ctx, classId) {
  let alive = true;
  let loaded = false;
  let live = false; // a session of this class is live
  let myStatus = null; // "present" | "absent" | "not yet updated" while live
  let ended = false; // a session we watched has just ended
  let lastPersisted = null; // GET /class/:id/my-attendance: status of the latest saved session
  let pending = 0; // MY_ATTENDANCE questions not answered yet (answers come in order)

  const title = h("h1", {}, "Class");
  const status = h("p", { role: "status", class: "live-status big" }, "Connecting…");
  const historyArea = h("div", {}, loadingText());
  replace(root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "← All classes")),
    title,
    h("section", { class: "card live", "aria-labelledby": "status-title" },
      h("h2", { id: "status-title" }, "Your attendance"), status),
    section("Your history", historyArea));

  function renderStatus() {
    status.className = "live-status big";
    if (live) {
      status.textContent = `Session in progress · ${statusLabel(myStatus)}`;
      status.classList.add(`status-${(myStatus ?? "none").replace(/ /g, "-")}`);
    } else if (ended) {
      status.textContent = `Session ended · ${statusLabel(lastPersisted)}`;
      status.classList.add(`status-${lastPersisted ?? "none"}`);
    } else if (loaded) {
      status.textContent = lastPersisted
        ? `No live session · Last session: ${statusLabel(lastPersisted)}`
        : "No live session";
    }
  }

  function ask() {
    if (ctx.send("MY_ATTENDANCE", { classId })) pending += 1;
  }

  async function loadPersisted() {
    const [mine, history] = await Promise.all([
      get(`/class/${encodeURIComponent(classId)}/my-attendance`),
      get(`/class/${encodeURIComponent(classId)}/my-history`).catch((error) => error),
    ]);
    if (!alive) return;
    lastPersisted = mine.status;
    loaded = true;
    renderStatus();
    if (history instanceof Error) {
      replace(historyArea, h("p", { class: "error-text" }, `Could not load your history: ${history.message}`));
    } else if (history.length === 0) {
      replace(historyArea, h("p", { class: "muted" }, "No saved session yet."));
    } else {
      replace(historyArea, h("ul", { class: "sessions", "aria-label": "Past sessions" }, history.map((r) =>
        h("li", {}, h("span", {}, formatDate(r.startedAt)), " · ",
          h("span", { class: `status-${r.status}` }, statusLabel(r.status))))));
    }
  }

  function sessionGone() {
    const wasLive = live;
    live = false;
    myStatus = null;
    if (wasLive) ended = true;
    renderStatus();
    if (wasLive) loadPersisted().catch(() => {});
  }

  get(`/class/${encodeURIComponent(classId)}`)
    .then((klass) => {
      if (!alive) return;
      title.textContent = klass.className;
      document.title = `${klass.className} · Live Attendance`;
      return loadPersisted();
    })
    .catch((error) => {
      if (!alive) return;
      status.textContent = error.message;
      replace(historyArea);
    });
  if (ctx.connected) ask();
  const poll = setInterval(() => { if (!live) ask(); }, IDLE_POLL_MS);

  return {
    dispose: () => {
      alive = false;
      clearInterval(poll);
    },
    onSocketOpen() {
      pending = 0;
      ask(); // restore: the live status after a reload or a reconnect
    },
    onSocketEvent(event, data) {
      if (event === "MY_ATTENDANCE") {
        pending = Math.max(0, pending - 1);
        live = true;
        ended = false;
        myStatus = data.status;
        renderStatus();
        return true;
      }
      if (event === "ERROR" && pending > 0) {
        pending -= 1;
        if (data.message === NO_SESSION) {
          sessionGone();
          return true;
        }
        return false;
      }
      if (event === "ATTENDANCE_MARKED") {
        // Broadcasts do not name their class: ask about this class to know whether the mark is ours here.
        if (data.studentId === ctx.user._id) ask();
        return true;
      }
      if (event === "TODAY_SUMMARY" || event === "DONE") {
        ask(); // a session started, or one ended: which one, MY_ATTENDANCE for this class tells
        return true;
      }
      return false;
    },
  };
}
