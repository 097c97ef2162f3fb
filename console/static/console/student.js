// The student's class page: the live status (MY_ATTENDANCE and the class's broadcasts) and the history.

import { get } from "./api.js";
import { riskReasons, STRIP_LENGTH, strip, stripLegend } from "./charts.js";
import { studentCheckin, takePendingCheckin } from "./checkin.js";
import { h, replace } from "./dom.js";
import { formatDateTime, formatRate, loadingText, plural, section, showError, statusLabel } from "./ui.js";

const NO_SESSION = "No active attendance session";
// While no session is live, ask now and then, in case one was started by a client that tells nobody.
const IDLE_POLL_MS = 20_000;

// What DONE made of a mark: unmarked students are absent (docs/api.md, DONE).
const MARKS = ["present", "absent", "late", "excused"];
const finalStatus = (status) => (MARKS.includes(status) ? status : "absent");

export function studentClassPage(root, ctx, classId) {
  let alive = true;
  let loaded = false;
  let live = false; // a session of this class is live (MY_ATTENDANCE answered with a status)
  let myStatus = null; // "present" | "absent" | "late" | "excused" | "not yet updated" while live
  let lastMarked = null; // our own last ATTENDANCE_MARKED while live, until MY_ATTENDANCE confirms it
  let doneSeen = null; // the final status a DONE broadcast gives us, until MY_ATTENDANCE says whose DONE it was
  let ended = null; // the final status of the session we watched end (by DONE): "Session ended · …"
  let lastPersisted = null; // GET /class/:id/my-attendance: status of the latest saved session
  // startedAt of the newest saved session before the one we saw live (undefined: history not loaded), to
  // tell a session that was persisted while we were away from one that simply disappeared.
  let newestSaved;
  let newestBeforeLive;
  // MY_ATTENDANCE questions not answered yet, in order (answers come in order): each says whether it was
  // asked after a DONE we have not placed yet.
  const questions = [];

  const title = h("h1", {}, "Class");
  const status = h("p", { role: "status", class: "live-status big" }, "Connecting…");
  const historyArea = h("div", {}, loadingText());
  const summaryArea = h("div", {}, loadingText());
  let klass = null; // GET /class/:id: its minRate and maxConsecutiveAbsences explain an at-risk notice
  // Self check-in: the code field while a window is open; a check-in's mark then arrives as any mark does.
  const checkin = studentCheckin(classId, { onCheckedIn: () => ask() });
  replace(root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "← All classes")),
    title,
    h("section", { class: "card live", "aria-labelledby": "status-title" },
      h("h2", { id: "status-title" }, "Your attendance"), status, checkin.element),
    section("Your record", summaryArea),
    section("Your history", historyArea));

  function renderStatus() {
    status.className = "live-status big";
    checkin.setMarked(live && myStatus !== null && myStatus !== "not yet updated");
    if (live) {
      status.textContent = `Session in progress · ${statusLabel(myStatus)}`;
      status.classList.add(`status-${(myStatus ?? "none").replace(/ /g, "-")}`);
      ctx.setSession("live");
    } else if (ended) {
      status.textContent = `Session ended · ${statusLabel(ended)}`;
      status.classList.add(`status-${ended}`);
      ctx.setSession("ended");
    } else if (loaded) {
      status.textContent = lastPersisted
        ? `No live session · Last session: ${statusLabel(lastPersisted)}`
        : "No live session";
      ctx.setSession("none");
    }
  }

  function ask() {
    if (ctx.send("MY_ATTENDANCE", { classId })) questions.push(doneSeen !== null);
  }

  // GET /class/:id/my-summary and the last sessions of my-history: the rate, the at-risk notice, the strip.
  function renderSummary(summary, history) {
    const latest = history.slice(0, STRIP_LENGTH).reverse();
    const reasons = summary.atRisk ? riskReasons(summary, klass) : [];
    if (latest.length === 0 && !summary.atRisk) {
      replace(summaryArea, h("p", { class: "muted" }, "Your rate shows here after your first saved session."));
      return;
    }
    replace(summaryArea,
      summary.atRisk
        ? h("div", { class: "at-risk-notice", role: "note", "aria-label": "At risk" },
          h("p", {}, h("strong", {}, "You are at risk in this class: "), `${reasons.join(", ")}.`),
          h("p", {}, "Talk to your teacher about the sessions you missed."))
        : null,
      h("p", { class: "my-rate" }, h("span", { class: "rate-figure" }, `Your rate: ${formatRate(summary.rate)}`),
        h("span", { class: "muted" }, ` · ${summary.present} present, ${summary.late ?? 0} late, `
          + `${summary.excused ?? 0} excused, ${summary.absent} absent`)),
      latest.length
        ? [h("h3", {}, `Your last ${plural(latest.length, "session", "sessions")}`),
          strip(latest, { who: `Your last ${plural(latest.length, "session", "sessions")}` }), stripLegend()]
        : h("p", { class: "muted" }, "No saved session yet."));
  }

  async function loadSummary(history) {
    try {
      const summary = await get(`/class/${encodeURIComponent(classId)}/my-summary`);
      if (alive) renderSummary(summary, history);
    } catch (error) {
      if (alive) replace(summaryArea, h("p", { class: "error-text" }, `Could not load your record: ${error.message}`));
    }
  }

  function renderHistory(history) {
    newestSaved = history[0]?.startedAt ?? null;
    loadSummary(history);
    if (history.length === 0) {
      replace(historyArea, h("p", { class: "muted" }, "No saved session yet."));
      return;
    }
    replace(historyArea, h("ul", { class: "sessions", "aria-label": "Past sessions" }, history.map((r) =>
      h("li", {}, h("span", {}, formatDateTime(r.startedAt)), " · ",
        h("span", { class: `status-${r.status}` }, statusLabel(r.status)),
        r.remark ? h("span", { class: "remark-text" }, ` · Remark: ${r.remark}`) : null))));
  }

  async function loadHistory() {
    try {
      const history = await get(`/class/${encodeURIComponent(classId)}/my-history`);
      if (alive) renderHistory(history);
      return history;
    } catch (error) {
      if (alive) {
        replace(historyArea, h("p", { class: "error-text" }, `Could not load your history: ${error.message}`));
      }
      throw error;
    }
  }

  async function loadPersisted() {
    const [mine] = await Promise.all([
      get(`/class/${encodeURIComponent(classId)}/my-attendance`),
      loadHistory().catch(() => null), // shown in the history area
    ]);
    if (!alive) return;
    lastPersisted = mine.status;
    loaded = true;
    renderStatus();
  }

  function becameLive() {
    if (!live) {
      newestBeforeLive = newestSaved;
      lastMarked = null;
    }
    live = true;
    ended = null;
  }

  // The session we showed live is gone. After DONE its final status is the one the socket delivered; without
  // DONE (the server restarted, the session was replaced or expired) it ended only if its record was saved.
  function sessionGone() {
    const wasLive = live;
    const final = doneSeen;
    if (wasLive) checkin.reset();
    live = false;
    myStatus = null;
    doneSeen = null;
    if (wasLive && final) {
      ended = final;
      lastPersisted = final;
      renderStatus();
      loadHistory().catch((error) => showError(`Could not load your history: ${error.message}`));
      return;
    }
    renderStatus();
    if (!wasLive) return;
    const before = newestBeforeLive;
    loadHistory().then((history) => {
      if (!alive || live) return;
      const newest = history[0];
      // Saved after the newest we knew of when it went live: the session we watched, persisted meanwhile.
      if (newest && before !== undefined && (before === null || newest.startedAt > before)) {
        ended = newest.status;
        lastPersisted = newest.status;
        renderStatus();
      }
    }).catch((error) => showError(`Could not check whether the session was saved: ${error.message}`));
  }

  get(`/class/${encodeURIComponent(classId)}`)
    .then((data) => {
      if (!alive) return;
      klass = data;
      title.textContent = klass.className;
      document.title = `${klass.className} · Live Attendance`;
      return loadPersisted();
    })
    .catch((error) => {
      if (!alive) return;
      status.textContent = error.message;
      showError(error.message);
      replace(historyArea);
      replace(summaryArea);
    });
  // Whether the class's live session has a check-in window open: on load, on a reconnect, on each window's
  // broadcast. A later question's answer wins.
  let checkinAsked = 0;
  function loadCheckin() {
    const asked = ++checkinAsked;
    get(`/class/${encodeURIComponent(classId)}/check-in`)
      .then((state) => {
        if (alive && asked === checkinAsked) checkin.setOpen(state.open, state.closesAt);
      })
      .catch(() => {}); // the class's own errors are shown by its load; the field simply stays as it is
  }

  loadCheckin();
  if (ctx.connected) ask();
  // Opened from a check-in link (docs/console.md "The check-in link"): check in at once.
  const pending = takePendingCheckin(classId);
  if (pending) checkin.submit(pending.code);
  const poll = setInterval(() => { if (!live) ask(); }, IDLE_POLL_MS);

  return {
    dispose: () => {
      alive = false;
      clearInterval(poll);
    },
    onSocketOpen() {
      questions.length = 0;
      ask(); // restore: the live status after a reload or a reconnect
      loadCheckin();
    },
    onSocketEvent(event, data) {
      if (event === "MY_ATTENDANCE") {
        const afterDone = questions.shift() ?? false;
        becameLive();
        myStatus = data.status;
        lastMarked = null; // this class's own answer is newer than any mark we held
        if (afterDone) doneSeen = null; // still live after that DONE: it was another class's
        renderStatus();
        return true;
      }
      if (event === "ERROR" && questions.length > 0) {
        questions.shift();
        if (data.message === NO_SESSION) {
          sessionGone();
          return true;
        }
        return false;
      }
      if (event === "ATTENDANCE_MARKED") {
        // Broadcasts do not name their class: keep the mark, and ask about this class to know it is ours here.
        if (data.studentId === ctx.user._id) {
          if (live) lastMarked = data.status;
          ask();
        }
        return true;
      }
      if (event === "MARK_ALL" || event === "ATTENDANCE_CLEARED") {
        // MARK_ALL names the students it marked; a clear names one. Ours: keep it, and ask this class as above.
        const mine = event === "MARK_ALL" ? data.studentIds.includes(ctx.user._id) : data.studentId === ctx.user._id;
        if (mine) {
          if (live) lastMarked = event === "MARK_ALL" ? data.status : "not yet updated";
          ask();
        }
        return true;
      }
      if (event === "DONE") {
        // Our final status is what the socket told us: our last mark, or absent when we were never marked.
        // MY_ATTENDANCE then says whether this DONE ended this class's session or another's.
        if (live) doneSeen = finalStatus(lastMarked ?? myStatus);
        ask();
        return true;
      }
      if (event === "TODAY_SUMMARY") {
        ask(); // perhaps a session started: MY_ATTENDANCE for this class tells
        return true;
      }
      if (event === "CHECKIN_OPENED" || event === "CHECKIN_CLOSED") {
        // Like every broadcast it names no class: shown at once while this class is live, then the class's own
        // state (GET /class/:id/check-in) says whether it was this one's.
        if (live || event === "CHECKIN_CLOSED") checkin.setOpen(event === "CHECKIN_OPENED", data.closesAt);
        loadCheckin();
        return true;
      }
      return false;
    },
  };
}
