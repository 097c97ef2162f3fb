// Teacher pages (and the classes list both roles share): classes, one class live, one past session.

import { del, download, get, patch, post } from "./api.js";
import { rateChart, riskReasons, STRIP_LENGTH, strip, stripLegend } from "./charts.js";
import { teacherCheckin } from "./checkin.js";
import { checkName, showFieldErrors } from "./checks.js";
import { emailText, field, h, replace } from "./dom.js";
import { classSettings, importForm, settingsForm } from "./roster.js";
import {
  confirmDialog, formatDate, formatDateTime, formatRate, loadingText, plural, section, showError, statusLabel,
} from "./ui.js";

const NOT_CONNECTED = "Not connected to the live server yet: reconnecting, please try again in a moment.";
const NO_SESSION = "No active attendance session";
const PICKER_LIMIT = 25;
// A student's classes whose live state the list asks about over the socket (MY_ATTENDANCE, one per class).
const LIVE_CHECK_LIMIT = 50;
const SESSIONS_PAGE = 20;
// The rate chart shows the latest sessions of the date range, at most this many.
const CHART_SESSIONS = 100;
// Session details asked at once for the students' strips.
const DETAIL_REQUESTS = 5;

// The four statuses in button order: Present and Absent first, as before (Tab from "Present" reaches
// "Absent"); each with its key on a focused row (docs/console.md "Marking").
export const STATUSES = [
  { status: "present", label: "Present", key: "p" },
  { status: "absent", label: "Absent", key: "a" },
  { status: "late", label: "Late", key: "l" },
  { status: "excused", label: "Excused", key: "e" },
];
const REMARK_MAX = 500;

// "Present 2 · Late 1 · Absent 1": late and excused only when there are some, so that a class that uses only
// present/absent reads as before.
export function countsText(c, sep = " · ", lower = false) {
  const parts = [["Present", c.present], ["Late", c.late], ["Excused", c.excused], ["Absent", c.absent]]
    .filter(([label, n]) => n || label === "Present" || label === "Absent");
  return parts.map(([label, n]) => (lower ? `${n} ${label.toLowerCase()}` : `${label} ${n}`)).join(sep);
}

// A status button for the row of `name`: pressed when it is the current status.
function statusButton(def, id, onclick) {
  return h("button", { type: "button", class: `mark mark-${def.status}`, "aria-pressed": "false",
    "data-focus": `${def.status}:${id}`, "aria-keyshortcuts": def.key.toUpperCase(), onclick }, check(), def.label);
}

// P/L/E/A on a row (focus on any of its buttons) choose that status; typing in a remark is left alone.
function statusKeys(row, choose) {
  row.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target.tagName === "INPUT") return;
    const def = STATUSES.find((d) => d.key === event.key.toLowerCase());
    if (!def) return;
    event.preventDefault();
    choose(def.status);
  });
}

// The remark field of a row: sent (by `save`) on Enter or when it loses the focus, only when changed.
function remarkField(name, id, value, save) {
  const input = h("input", { type: "text", class: "remark", "aria-label": `Remark for ${name}`, maxlength: REMARK_MAX,
    placeholder: "Remark", autocomplete: "off", "data-focus": `remark:${id}`, value: value ?? "" });
  // Enter and the change event that may follow it (or a blur) send one change, not two.
  let last = (value ?? "").trim();
  const commit = () => {
    const text = input.value.trim();
    if (text === last) return;
    last = text;
    if (save(text, input) === false) last = input.value.trim(); // refused: the field shows what holds
  };
  input.addEventListener("change", commit);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      commit();
    }
  });
  return input;
}

const byName = (a, b) => a.name.localeCompare(b.name) || a.email.localeCompare(b.email);

// For the picker's search: lower case, accents dropped ("Chloé" → "chloe"), spaces collapsed.
export function searchable(text) {
  return String(text).normalize("NFD").replace(/\p{M}/gu, "").toLowerCase().replace(/\s+/g, " ").trim();
}

// Shown on the pressed button; hidden from the accessible name, which stays "Present", "Late", ...
function check() {
  return h("span", { class: "check", "aria-hidden": "true" }, "✓ ");
}

function errorText(error, what) {
  return h("p", { class: "error-text" }, what ? `Could not load ${what}: ${error.message}` : error.message);
}

// --- #/ : the caller's classes (GET /classes); teachers also create classes here --------------------
export function classesPage(root, ctx) {
  const isTeacher = ctx.user.role === "teacher";
  let alive = true;
  const listArea = h("div", {}, loadingText());
  const parts = [h("h1", {}, "Your classes")];

  if (isTeacher) {
    const className = field("Class name", { type: "text", name: "className", required: true, maxlength: 200 });
    const create = h("button", { type: "submit", class: "primary" }, "Create class");
    const form = h("form", { class: "inline-form", "aria-label": "New class", novalidate: true },
      className.element, create);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!showFieldErrors([[className, checkName("Class name", className.input.value)]])) return;
      create.disabled = true;
      try {
        const klass = await post("/class", { className: className.input.value });
        ctx.navigate(`#/class/${encodeURIComponent(klass._id)}`);
      } catch (error) {
        showError(error.message);
      } finally {
        create.disabled = false;
      }
    });
    parts.push(section("New class", form));
  }
  parts.push(section(isTeacher ? "Classes you teach" : "Classes you are enrolled in", listArea));
  replace(root, ...parts);

  // Which classes have a live session: a teacher's from GET /attendance/active; a student's from the socket,
  // MY_ATTENDANCE per class (a status: live; "No active attendance session": not).
  const badges = new Map(); // classId → its "Live now" slot
  const questions = []; // classIds asked, answers come in order
  const setLive = (classId, isLive) => {
    const slot = badges.get(classId);
    if (slot) replace(slot, isLive ? h("span", { class: "badge" }, "Live now") : null);
  };
  const askAll = () => {
    if (isTeacher) return;
    questions.length = 0;
    for (const classId of [...badges.keys()].slice(0, LIVE_CHECK_LIMIT)) {
      if (ctx.send("MY_ATTENDANCE", { classId })) questions.push(classId);
    }
  };

  Promise.all([get("/classes"), isTeacher ? get("/attendance/active").catch(() => null) : null])
    .then(([classes, active]) => {
      if (!alive) return;
      if (classes.length === 0) {
        replace(listArea, h("p", { class: "muted" }, isTeacher
          ? "No classes yet: create one above."
          : "You are not enrolled in any class yet. Your teacher enrols you."));
        return;
      }
      replace(listArea, h("ul", { class: "class-list", "aria-label": "Classes" }, classes.map((klass) => {
        const slot = h("span", { class: "live-slot" });
        badges.set(klass._id, slot);
        return h("li", {},
          h("a", { href: `#/class/${encodeURIComponent(klass._id)}` }, klass.className),
          h("span", { class: "muted" }, ` · ${plural(klass.studentCount, "student", "students")}`),
          slot);
      })));
      if (active) setLive(active.classId, true);
      askAll();
    })
    .catch((error) => alive && replace(listArea, errorText(error, "your classes")));

  return {
    dispose: () => { alive = false; },
    onSocketOpen: askAll,
    onSocketEvent(event, data) {
      if (isTeacher) return false;
      if (event === "MY_ATTENDANCE" && questions.length) {
        setLive(questions.shift(), true);
        return true;
      }
      if (event === "ERROR" && questions.length) {
        setLive(questions.shift(), false);
        return data.message === NO_SESSION;
      }
      if (event === "TODAY_SUMMARY" || event === "DONE") {
        askAll(); // a session started or ended somewhere: ask again
        return true;
      }
      return event === "ATTENDANCE_MARKED" || event === "MARK_ALL" || event === "ATTENDANCE_CLEARED";
    },
  };
}

// --- #/class/<id> for the owning teacher -------------------------------------------------------------
export function teacherClassPage(root, ctx, classId) {
  let alive = true;
  let klass = null; // GET /class/:id
  let roster = []; // enrolled students, by name
  let session = null; // this class's live session {classId, startedAt, attendance}
  let otherLive = null; // the teacher's live session in another class
  let ended = null; // the last DONE's summary, shown until the next start
  let allStudents = null; // GET /students, for the picker
  let rows = new Map(); // studentId → {buttons: {status → button}, remark} of the live table
  let remarks = {}; // studentId → the live session's remark (remarks are never broadcast: ours, or from marks)
  let lastMarkAll = null; // {status, studentIds} of the last MARK_ALL broadcast, for "Undo"
  let bulk = null; // the "Mark all present" / "Undo" area of the live table
  let sessionsCursor = null; // `before` of the next page of past sessions
  // Bumped by everything that tells us the live session's state (a start, a mark, DONE, each question to
  // GET /attendance/active): an answer asked for before the latest of them is older than what we show.
  let liveVersion = 0;
  // A CHECKIN_CODE that came before the page knew its live session (a reload: the socket connects first).
  let heldCode = null;

  const status = h("p", { role: "status", class: "live-status" });
  const liveHeading = h("h2", { id: "live-title", tabindex: "-1" }, "Attendance");
  const liveBody = h("div", {});
  const liveSection = h("section", { class: "card live", "aria-labelledby": "live-title" }, liveHeading, status, liveBody);
  const enrolled = h("div", {}, loadingText());
  const search = field("Search students", { type: "search", name: "q", autocomplete: "off",
    placeholder: "Name or email" });
  const matches = h("div", { class: "picker-results" });
  const sessionsArea = h("div", {}, loadingText());
  const reportArea = h("div", {}, loadingText());
  const riskArea = h("div", {});
  const downloads = h("div", { class: "actions" });
  const chartArea = h("div", {}, loadingText());
  const settingsArea = h("div", {}, loadingText());
  let range = { from: null, to: null }; // the date range of the history (ISO date-times, `to` exclusive)
  let historyLoads = 0; // a newer load of the history wins over an older answer
  const rangeForm = dateRangeForm((chosen) => {
    range = chosen;
    loadHistory();
  });
  const title = h("h1", {}, "Class");
  // Self check-in: its counter is students marked present or late (docs/console.md "Self check-in").
  const checkin = teacherCheckin(ctx, () => {
    const c = counts();
    return { className: klass?.className, checkedIn: c.present + c.late, total: roster.length };
  });

  replace(root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "← All classes")),
    title,
    liveSection,
    section("Students", enrolled, h("div", { class: "picker" }, search.element, matches),
      h("div", { class: "import" }, h("h3", {}, "Import students"), importForm(classId, {
        onImported: (data) => {
          if (!alive) return;
          klass = { ...klass, ...data };
          roster = [...data.students].sort(byName);
          renderEnrolled();
          renderPicker();
          if (session) renderLive();
          loadReport().catch((error) => alive && replace(reportArea, errorText(error, "the report")));
        },
        nameOf: (id) => roster.find((s) => s._id === id)?.name ?? id,
      }))),
    section("Class settings", settingsArea),
    section("History", rangeForm, sessionsArea, h("h3", {}, "By student"), riskArea, reportArea, downloads),
    section("Rate over time", chartArea),
  );
  renderDownloads();
  search.input.addEventListener("input", renderPicker);

  // --- live session ---
  function counts() {
    const marks = Object.values(session?.attendance ?? {});
    const c = { present: 0, absent: 0, late: 0, excused: 0 };
    for (const s of marks) if (s in c) c[s] += 1;
    return { ...c, unmarked: Math.max(0, roster.length - marks.length) };
  }

  function renderStatus() {
    ctx.setSession(session ? "live" : ended ? "ended" : "none");
    checkin.refresh();
    if (session) {
      const c = counts();
      status.textContent = `Session live since ${formatDate(session.startedAt)} · ${countsText(c)} · `
        + `Not marked ${c.unmarked} of ${roster.length}`;
    } else if (ended) {
      status.textContent = `Session ended · ${countsText(ended)} · Total ${ended.total}`;
    } else {
      status.textContent = "No live session.";
    }
  }

  function updateRow(studentId) {
    const row = rows.get(studentId);
    if (!row) return;
    const mark = session?.attendance?.[studentId];
    for (const [value, button] of Object.entries(row.buttons)) {
      button.setAttribute("aria-pressed", String(mark === value));
    }
    if (document.activeElement !== row.remark) row.remark.value = remarks[studentId] ?? "";
  }

  // Clicking the current status clears it (ATTENDANCE_CLEARED); any other sets it.
  function mark(studentId, value) {
    const sent = session?.attendance?.[studentId] === value
      ? ctx.send("ATTENDANCE_CLEARED", { studentId })
      : ctx.send("ATTENDANCE_MARKED", { studentId, status: value });
    if (!sent) showError(NOT_CONNECTED);
  }

  function saveRemark(studentId, remark, input) {
    if (remark === (remarks[studentId] ?? "")) return;
    const current = session?.attendance?.[studentId];
    if (!current) {
      showError("Mark the student first: a remark goes with a status.");
      input.value = remarks[studentId] ?? "";
      return false;
    }
    if (!ctx.send("ATTENDANCE_MARKED", { studentId, status: current, remark })) {
      showError(NOT_CONNECTED);
      return false;
    }
    remarks = { ...remarks, [studentId]: remark };
  }

  function markAll() {
    if (!ctx.send("MARK_ALL", { status: "present" })) showError(NOT_CONNECTED);
  }

  // Undo the last MARK_ALL: clear the students it marked that still have the status it gave them.
  function undoMarkAll() {
    const last = lastMarkAll;
    lastMarkAll = null;
    renderBulk();
    for (const studentId of last?.studentIds ?? []) {
      if (session?.attendance?.[studentId] === last.status && !ctx.send("ATTENDANCE_CLEARED", { studentId })) {
        showError(NOT_CONNECTED);
        return;
      }
    }
  }

  function renderBulk() {
    if (!bulk) return;
    const hadFocus = bulk.contains(document.activeElement);
    const all = h("button", { type: "button", "data-focus": "mark-all", onclick: markAll,
      disabled: counts().unmarked === 0 }, "Mark all present");
    const undo = lastMarkAll?.studentIds.length
      ? h("button", { type: "button", "data-focus": "undo", onclick: undoMarkAll }, "Undo")
      : null;
    replace(bulk, all, undo, lastMarkAll
      ? h("span", { class: "muted" }, ` ${plural(lastMarkAll.studentIds.length, "student", "students")} marked `
        + `${statusLabel(lastMarkAll.status).toLowerCase()}`)
      : null);
    if (hadFocus) (undo ?? all).focus({ preventScroll: true });
  }

  async function endSession() {
    const confirmed = await confirmDialog({
      title: "End the session?",
      text: `Students not marked (${counts().unmarked}) will be marked absent, and the attendance of all `
        + `${roster.length} students is saved.`,
      confirmLabel: "End session",
      danger: true,
    });
    if (confirmed && !ctx.send("DONE")) showError(NOT_CONNECTED);
  }

  async function startSession(button) {
    if (otherLive) {
      const confirmed = await confirmDialog({
        title: "Start a session here?",
        text: "You have a live session in another class. Starting one here ends it without saving its marks.",
        confirmLabel: "Start session",
      });
      if (!confirmed) return;
    }
    button.disabled = true;
    try {
      const started = await post("/attendance/start", { classId });
      liveVersion += 1;
      session = { classId: started.classId, startedAt: started.startedAt, attendance: {} };
      remarks = {};
      lastMarkAll = null;
      otherLive = null;
      ended = null;
      renderLive();
      liveHeading.focus();
      ctx.send("TODAY_SUMMARY"); // tells the class's students at once that a session is live
    } catch (error) {
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  }

  // Rebuilding the live area (a late /attendance/active answer, a reconnect) must not take the keyboard
  // user's focus away: the control that had it is found again by its data-focus key; when it is gone
  // (e.g. "End session" after DONE) the focus goes to the area's heading, not to the end of the page.
  function keepFocus(rebuild) {
    const hadFocus = liveBody.contains(document.activeElement);
    const focused = hadFocus ? document.activeElement.dataset.focus : undefined;
    rebuild();
    if (!hadFocus) return;
    const again = focused ? liveBody.querySelector(`[data-focus="${CSS.escape(focused)}"]`) : null;
    (again ?? liveHeading).focus({ preventScroll: true });
  }

  function renderLive() {
    keepFocus(buildLive);
  }

  function buildLive() {
    renderStatus();
    rows = new Map();
    bulk = null;
    if (!session) {
      checkin.sessionEnded();
      const start = h("button", { type: "button", class: "primary", "data-focus": "start" }, "Start session");
      start.addEventListener("click", () => startSession(start));
      replace(liveBody,
        otherLive ? h("p", { class: "muted" }, "You have a live session in another class.") : null,
        roster.length === 0 ? h("p", { class: "muted" }, "Add students below, then start a session.") : null,
        h("div", { class: "actions" }, start));
      return;
    }
    const body = h("tbody", {});
    for (const student of roster) {
      const buttons = {};
      for (const def of STATUSES) {
        buttons[def.status] = statusButton(def, student._id, () => mark(student._id, def.status));
      }
      const remark = remarkField(student.name, student._id, remarks[student._id],
        (text, input) => saveRemark(student._id, text, input));
      const row = h("tr", { "aria-label": student.name },
        h("th", { scope: "row" }, h("span", { class: "student-name" }, student.name),
          h("span", { class: "student-email" }, emailText(student.email))),
        h("td", { class: "mark-buttons" }, Object.values(buttons)),
        h("td", { class: "remark-cell" }, remark));
      statusKeys(row, (value) => mark(student._id, value));
      body.append(row);
      rows.set(student._id, { buttons, remark });
      updateRow(student._id);
    }
    bulk = roster.length ? h("div", { class: "actions bulk", role: "group", "aria-label": "All students" }) : null;
    renderBulk();
    const endButton = h("button", { type: "button", class: "danger", "data-focus": "end", onclick: endSession },
      "End session");
    replace(liveBody,
      bulk,
      roster.length
        ? h("table", { class: "marks" },
          h("caption", { class: "visually-hidden" },
            "Mark each student present, absent, late or excused (keys P, A, L, E on a row)"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Student"), h("th", { scope: "col" }, "Mark"),
            h("th", { scope: "col" }, "Remark"))),
          body)
        : h("p", { class: "muted" }, "No students enrolled yet: add some below."),
      checkin.element,
      h("div", { class: "actions" }, endButton));
  }

  async function loadActive() {
    const asked = ++liveVersion;
    const active = await get("/attendance/active");
    if (!alive || asked !== liveVersion) return; // out of date: a later answer or event already told us more
    const wasLive = session !== null;
    session = active && active.classId === classId ? active : null;
    otherLive = active && active.classId !== classId ? active : null;
    remarks = {};
    for (const [studentId, m] of Object.entries(session?.marks ?? {})) {
      if (m?.remark) remarks[studentId] = m.remark;
    }
    if (!session) lastMarkAll = null;
    if (session) ended = null;
    renderLive();
    if (session) checkin.restore(session.checkIn ?? null);
    if (session?.checkIn && heldCode) checkin.onSocketEvent("CHECKIN_CODE", heldCode);
    heldCode = null;
    if (wasLive && !session) {
      loadHistory(); // ended while we were away (another tab, or DONE while reconnecting)
    }
  }

  function restoreActive() {
    loadActive().catch((error) => showError(`Could not load the live session: ${error.message}`));
  }

  // --- students and picker ---
  function renderEnrolled() {
    replace(enrolled, roster.length
      ? h("ul", { class: "people", "aria-label": "Enrolled students" }, roster.map((s) => {
        // Named "Remove <student name>" (an aria-label, so that the list holds the name once as text).
        const remove = h("button", { type: "button", "data-focus": `remove:${s._id}`, "aria-label": `Remove ${s.name}` },
          "Remove");
        remove.addEventListener("click", () => removeStudent(s, remove));
        return h("li", {}, h("span", { class: "student-name" }, s.name),
          h("span", { class: "student-email" }, emailText(s.email)), remove);
      }))
      : h("p", { class: "muted" }, "No students enrolled yet."));
  }

  // DELETE /class/:id/students/:studentId after a confirmation; the student's records stay in the history.
  async function removeStudent(student, button) {
    const confirmed = await confirmDialog({
      title: `Remove ${student.name}?`,
      text: `${student.name} leaves the class${session ? " and its live session" : ""}. Their past attendance stays `
        + "in the history and the reports.",
      confirmLabel: "Remove",
      danger: true,
    });
    if (!confirmed || !alive) {
      button.focus();
      return;
    }
    button.disabled = true;
    try {
      const data = await del(`/class/${encodeURIComponent(classId)}/students/${encodeURIComponent(student._id)}`);
      if (!alive) return;
      const index = roster.findIndex((s) => s._id === student._id);
      roster = data.students ? [...data.students].sort(byName) : roster.filter((s) => s._id !== student._id);
      renderEnrolled();
      renderPicker();
      if (session) renderLive();
      loadReport().catch((error) => alive && replace(reportArea, errorText(error, "the report")));
      // The focus goes to the next student's button (or the previous one, or the search field).
      const next = roster[Math.min(index, roster.length - 1)];
      const again = next ? enrolled.querySelector(`[data-focus="${CSS.escape(`remove:${next._id}`)}"]`) : null;
      (again ?? search.input).focus();
    } catch (error) {
      showError(error.message);
      button.disabled = false;
    }
  }

  function renderSettings() {
    replace(settingsArea, settingsForm(classId, klass, {
      onSaved: (saved) => {
        if (!alive) return;
        klass = { ...klass, ...saved };
        title.textContent = klass.className;
        document.title = `${klass.className} · Live Attendance`;
        loadHistory();
      },
    }));
  }

  function renderPicker() {
    // Nothing is listed before something is typed; then every word typed must appear in the name or the
    // email, case and accents aside ("chloe m" finds "Chloé Martin").
    const words = searchable(search.input.value).split(" ").filter(Boolean);
    if (words.length === 0) {
      replace(matches, h("p", { class: "muted" }, "Type a name or an email to find a student."));
      return;
    }
    if (allStudents === null) {
      replace(matches, loadingText("Loading students…"));
      return;
    }
    const enrolledIds = new Set(roster.map((s) => s._id));
    const found = allStudents.filter((s) => {
      if (enrolledIds.has(s._id)) return false;
      const text = `${searchable(s.name)} ${searchable(s.email)}`;
      return words.every((word) => text.includes(word));
    });
    if (found.length === 0) {
      replace(matches, h("p", { class: "muted" }, "No student matches (students already enrolled are left out)."));
      return;
    }
    replace(matches,
      h("ul", { class: "people", "aria-label": "Matching students" }, found.slice(0, PICKER_LIMIT).map((s) => {
        // Named "Add <student name>": each button says whom it adds.
        const add = h("button", { type: "button" }, "Add", h("span", { class: "visually-hidden" }, ` ${s.name}`));
        add.addEventListener("click", () => addStudent(s, add));
        return h("li", { "aria-label": s.name },
          h("span", { class: "student-name" }, s.name), h("span", { class: "student-email" }, emailText(s.email)),
          add);
      })),
      found.length > PICKER_LIMIT
        ? h("p", { class: "muted" }, `${found.length - PICKER_LIMIT} more: type to narrow the list.`) : null);
  }

  async function addStudent(student, button) {
    button.disabled = true;
    try {
      await post(`/class/${encodeURIComponent(classId)}/add-student`, { studentId: student._id });
      if (!alive) return;
      if (!roster.some((s) => s._id === student._id)) roster = [...roster, student].sort(byName);
      renderEnrolled();
      renderPicker();
      if (session) renderLive();
      search.input.focus();
    } catch (error) {
      showError(error.message);
      button.disabled = false;
    }
  }

  // --- history and report ---
  // Each session reads differently: to the second, and to the millisecond when another one listed shares
  // its second.
  function sessionItems(page, shown) {
    const plain = page.map((s) => formatDateTime(s.startedAt));
    const seen = new Map();
    for (const label of [...shown, ...plain]) seen.set(label, (seen.get(label) ?? 0) + 1);
    return page.map((s, i) => {
      const label = seen.get(plain[i]) > 1 ? formatDateTime(s.startedAt, true) : plain[i];
      return sessionItem(s, label);
    });
  }

  function sessionItem(s, label) {
    return h("li", {},
      h("a", { href: `#/class/${encodeURIComponent(classId)}/sessions/${encodeURIComponent(s._id)}` }, label),
      h("span", { class: "muted" }, ` · ${countsText(s, ", ", true)} of ${s.total}`));
  }

  const classPath = () => `/class/${encodeURIComponent(classId)}`;
  // ?from=&to= of the date range, on every history request and download.
  function rangeQuery(extra = {}) {
    const query = new URLSearchParams(extra);
    if (range.from) query.set("from", range.from);
    if (range.to) query.set("to", range.to);
    return query;
  }

  async function loadSessions(more = false) {
    const query = rangeQuery({ limit: String(SESSIONS_PAGE) });
    if (more && sessionsCursor) query.set("before", sessionsCursor);
    const mine = historyLoads;
    const page = await get(`${classPath()}/sessions?${query}`);
    if (!alive || mine !== historyLoads) return;
    sessionsCursor = page.length === SESSIONS_PAGE ? page[page.length - 1].startedAt : null;
    let list = sessionsArea.querySelector("ul.sessions");
    if (!more || !list) {
      list = h("ul", { class: "sessions", "aria-label": "Past sessions" });
      replace(sessionsArea, page.length ? list
        : h("p", { class: "muted" }, range.from || range.to ? "No session saved in these dates." : "No session saved yet."));
    }
    const shown = [...list.querySelectorAll("a")].map((a) => a.textContent);
    list.append(...sessionItems(page, shown));
    sessionsArea.querySelector(".more")?.remove();
    if (sessionsCursor) {
      const older = h("button", { type: "button", class: "more" }, "Older sessions");
      older.addEventListener("click", () => loadSessions(true).catch((e) => showError(e.message)));
      sessionsArea.append(older);
    }
  }

  // "Download CSV" and "Download Excel" (the workbook's session columns in this browser's time zone), both
  // with the date range.
  function renderDownloads() {
    const button = (label, path, fallback, extra = {}) => {
      const b = h("button", { type: "button" }, label);
      b.addEventListener("click", () => {
        b.disabled = true;
        download(`${classPath()}/${path}?${rangeQuery(extra)}`, fallback)
          // A browser zone the server does not know (400): the workbook in UTC rather than none.
          .catch((error) => (extra.tz && extra.tz !== "UTC" && error.status === 400
            ? download(`${classPath()}/${path}?${rangeQuery({ ...extra, tz: "UTC" })}`, fallback)
            : Promise.reject(error)))
          .catch((error) => showError(error.message))
          .finally(() => { b.disabled = false; });
      });
      return b;
    };
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    replace(downloads,
      button("Download CSV", "report.csv", "attendance.csv"),
      button("Download Excel", "report.xlsx", "attendance.xlsx", { tz }));
  }

  // The report, with each student's strip of the latest sessions and the students at risk (with the reason).
  async function loadReport() {
    const mine = historyLoads;
    const [report, recent] = await Promise.all([
      get(`${classPath()}/report?${rangeQuery()}`),
      get(`${classPath()}/sessions?${rangeQuery({ limit: String(CHART_SESSIONS) })}`),
    ]);
    if (!alive || mine !== historyLoads) return;
    const settings = { ...classSettings(klass), ...pickSettings(report) };
    const dated = range.from || range.to;
    replace(chartArea, recent.length
      ? [h("p", { class: "muted" }, `The rate of each session${dated ? " in the dates chosen above" : ""}`
        + ` (at most the latest ${CHART_SESSIONS}); the dashed line is the class's minimum.`),
      rateChart([...recent].reverse(), { minRate: settings.minRate })]
      : h("p", { class: "muted" }, dated ? "No session saved in these dates." : "No session saved yet: nothing to draw."));
    const atRisk = report.students.filter((s) => s.atRisk);
    replace(riskArea, atRisk.length
      ? h("div", { class: "risk-summary" },
        h("h4", { id: "risk-title" }, plural(atRisk.length, "student at risk", "students at risk")),
        h("ul", { "aria-labelledby": "risk-title", class: "risk-list" }, atRisk.map((s) =>
          h("li", {}, h("span", { class: "student-name" }, s.name), ` · ${riskReasons(s, settings).join(", ")}`))))
      : report.students.length ? h("p", { class: "muted" }, "No student at risk.") : null);
    const strips = new Map(); // studentId → the cell that gets the strip
    replace(reportArea,
      report.students.length
        ? h("div", { class: "table-scroll" }, h("table", { class: "report" },
          h("caption", {}, `${plural(report.sessions, "session", "sessions")} saved`
            + `${range.from || range.to ? " in these dates" : ""}`),
          h("thead", {}, h("tr", {}, ["Student", "Present", "Late", "Excused", "Absent", "Rate",
            `Last ${STRIP_LENGTH} sessions`, "At risk"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, report.students.map((s) => {
            const cell = h("td", { class: "strip-cell" }, h("span", { class: "muted" }, "…"));
            strips.set(s._id, { cell, name: s.name });
            const reasons = s.atRisk ? riskReasons(s, settings) : [];
            return h("tr", { class: s.atRisk ? "at-risk" : null },
              h("th", { scope: "row" }, h("span", { class: "student-name" }, s.name),
                h("span", { class: "student-email" }, emailText(s.email))),
              h("td", {}, String(s.present)), h("td", {}, String(s.late ?? 0)), h("td", {}, String(s.excused ?? 0)),
              h("td", {}, String(s.absent)),
              h("td", { class: "rate" }, formatRate(s.rate)),
              cell,
              h("td", { class: "risk" }, reasons.length
                ? [h("span", { class: "risk-badge" }, "At risk"), " ", reasons.join(", ")]
                : h("span", { class: "muted" }, "—")));
          }))))
        : h("p", { class: "muted" }, "No students yet."),
      h("p", { class: "muted" }, "Rate = (present + late) / (present + late + absent); excused sessions are left out. "
        + `At risk: a rate under ${formatRate(settings.minRate)}, or ${settings.maxConsecutiveAbsences} or more `
        + "unexcused absences in a row."),
      report.students.length ? stripLegend() : null);
    if (report.students.length) await loadStrips(recent.slice(0, STRIP_LENGTH), strips, mine);
  }

  // Each student's latest sessions, from those sessions' records (GET …/sessions/:id, a few at a time).
  async function loadStrips(latest, strips, mine) {
    if (latest.length === 0) {
      for (const { cell } of strips.values()) replace(cell, h("span", { class: "muted" }, "—"));
      return;
    }
    const details = new Array(latest.length);
    let next = 0;
    const worker = async () => {
      while (next < latest.length) {
        const i = next++;
        details[i] = await get(`${classPath()}/sessions/${encodeURIComponent(latest[i]._id)}`);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(DETAIL_REQUESTS, latest.length) }, worker));
    } catch (error) {
      if (alive && mine === historyLoads) {
        for (const { cell } of strips.values()) replace(cell, h("span", { class: "error-text" }, "—"));
        showError(`Could not load the latest sessions: ${error.message}`);
      }
      return;
    }
    if (!alive || mine !== historyLoads) return;
    const oldestFirst = details.reverse();
    for (const [studentId, { cell, name }] of strips) {
      const cells = oldestFirst.map((d) => ({
        startedAt: d.startedAt, status: d.records.find((r) => r.studentId === studentId)?.status ?? null,
      }));
      replace(cell, strip(cells, { who: `${name}: last ${plural(cells.length, "session", "sessions")}` }));
    }
  }

  function loadHistory() {
    historyLoads += 1;
    loadSessions().catch((error) => alive && replace(sessionsArea, errorText(error, "the past sessions")));
    loadReport().catch((error) => {
      if (!alive) return;
      replace(reportArea, errorText(error, "the report"));
      replace(chartArea);
      replace(riskArea);
    });
  }

  // --- first load ---
  renderStatus();
  get(`/class/${encodeURIComponent(classId)}`)
    .then((data) => {
      if (!alive) return;
      klass = data;
      title.textContent = klass.className;
      document.title = `${klass.className} · Live Attendance`;
      roster = [...klass.students].sort(byName);
      renderSettings();
      renderEnrolled();
      renderPicker();
      renderLive();
      restoreActive();
      loadHistory();
      get("/students").then((students) => {
        if (!alive) return;
        allStudents = [...students].sort(byName);
        renderPicker();
      }).catch((error) => alive && replace(matches, errorText(error, "the students")));
    })
    .catch((error) => {
      if (!alive) return;
      replace(liveBody, errorText(error));
      replace(enrolled);
      replace(sessionsArea);
      replace(reportArea);
      replace(chartArea);
      replace(settingsArea);
      status.textContent = "";
    });

  return {
    dispose: () => {
      alive = false;
      checkin.dispose();
    },
    onSocketOpen() {
      // Restore after a reconnect: marks may have been made by another tab while we were away.
      if (klass) restoreActive();
    },
    onSocketEvent(event, data) {
      if (event.startsWith("CHECKIN_")) {
        // The teacher's one live session's window: this page's only when that session is this class's. A code
        // before the session is known is kept for it (GET /attendance/active says whether it is this class's).
        if (klass && session) checkin.onSocketEvent(event, data);
        else if (event === "CHECKIN_CODE") heldCode = data;
        if (klass && !session && event !== "CHECKIN_CLOSED") restoreActive();
        return true;
      }
      if (!klass) return false;
      if (event === "ATTENDANCE_MARKED") {
        if (session && rows.has(data.studentId)) {
          liveVersion += 1;
          session.attendance = { ...session.attendance, [data.studentId]: data.status };
          updateRow(data.studentId);
          renderStatus();
          renderBulk();
        } else {
          restoreActive(); // another tab's session
        }
        return true;
      }
      if (event === "ATTENDANCE_CLEARED") {
        if (session && rows.has(data.studentId)) {
          liveVersion += 1;
          const { [data.studentId]: _cleared, ...rest } = session.attendance;
          session.attendance = rest;
          const { [data.studentId]: _remark, ...otherRemarks } = remarks; // a clear removes the remark
          remarks = otherRemarks;
          updateRow(data.studentId);
          renderStatus();
          renderBulk();
        } else {
          restoreActive();
        }
        return true;
      }
      if (event === "MARK_ALL") {
        if (session && data.studentIds.every((id) => rows.has(id))) {
          liveVersion += 1;
          const marked = Object.fromEntries(data.studentIds.map((id) => [id, data.status]));
          session.attendance = { ...session.attendance, ...marked };
          data.studentIds.forEach(updateRow);
          lastMarkAll = { status: data.status, studentIds: [...data.studentIds] };
          renderStatus();
          renderBulk();
        } else {
          restoreActive();
        }
        return true;
      }
      if (event === "DONE") {
        if (session) {
          liveVersion += 1;
          ended = { present: data.present, absent: data.absent, late: data.late ?? 0, excused: data.excused ?? 0,
            total: data.total };
          session = null;
          lastMarkAll = null;
          renderLive();
          loadHistory();
        } else {
          restoreActive();
        }
        return true;
      }
      if (event === "ERROR") checkin.onSocketEvent(event, data);
      if (event === "ERROR" && data.message === NO_SESSION && session) {
        restoreActive(); // replaced or expired meanwhile: show what is live now (the message is shown too)
      }
      return event === "TODAY_SUMMARY"; // the counts are the marks we hold
    },
  };
}

// The class settings a report may carry (the class's own are used otherwise).
function pickSettings(report) {
  const picked = {};
  if (typeof report.minRate === "number") picked.minRate = report.minRate;
  if (typeof report.maxConsecutiveAbsences === "number") picked.maxConsecutiveAbsences = report.maxConsecutiveAbsences;
  return picked;
}

// A day in this browser's time zone ("2026-03-01") → the ISO instant it starts at.
function dayStart(value, plusDays = 0) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
}

// "From" and "To" (days, both included, in this browser's time zone) → `onChange({from, to})`, ISO date-times
// with `to` exclusive as the API takes them (the start of the day after "To").
function dateRangeForm(onChange) {
  const from = field("From", { type: "date", name: "from" });
  const to = field("To", { type: "date", name: "to" });
  const apply = h("button", { type: "submit" }, "Show these dates");
  const all = h("button", { type: "button" }, "All dates");
  const form = h("form", { class: "inline-form range-form", "aria-label": "Date range", novalidate: true },
    from.element, to.element, apply, all);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const valid = (f) => !f.input.value || /^\d{4}-\d{2}-\d{2}$/.test(f.input.value);
    const ok = showFieldErrors([
      [from, valid(from) ? null : "From: choose a day."],
      [to, !valid(to) ? "To: choose a day."
        : from.input.value && to.input.value && to.input.value < from.input.value ? "To: on or after From." : null],
    ]);
    if (!ok) return;
    onChange({ from: from.input.value ? dayStart(from.input.value) : null,
      to: to.input.value ? dayStart(to.input.value, 1) : null });
  });
  all.addEventListener("click", () => {
    from.input.value = "";
    to.input.value = "";
    from.setError(null);
    to.setError(null);
    onChange({ from: null, to: null });
  });
  return form;
}

// --- #/class/<id>/sessions/<sessionId>: one persisted session's records, editable, and its change log ----
export function sessionPage(root, ctx, classId, sessionId) {
  let alive = true;
  let klass = null;
  let loads = 0; // a newer load wins over an older answer
  const title = h("h1", {}, "Session");
  const body = h("div", {}, loadingText());
  const log = h("div", {}, loadingText());
  const base = `/class/${encodeURIComponent(classId)}/sessions/${encodeURIComponent(sessionId)}`;
  replace(root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/" }, "All classes"), " / ",
      h("a", { href: `#/class/${encodeURIComponent(classId)}`, class: "class-crumb" }, "Class")),
    title, h("section", { class: "card" }, body), section("Change log", log));

  // Who made a change: "you", a student of the session (a check-in), or the user id.
  function who(by, records) {
    if (by === ctx.user._id) return "you";
    return records.find((r) => r.studentId === by)?.name ?? by ?? "the server";
  }

  function renderLog(changes, records) {
    if (changes.length === 0) {
      replace(log, h("p", { class: "muted" }, "No change recorded."));
      return;
    }
    const names = new Map(records.map((r) => [r.studentId, r.name]));
    replace(log, h("ol", { class: "changes", "aria-label": "Changes" }, changes.map((c) => h("li", {},
      h("span", {}, formatDateTime(c.at, true)), " · ",
      h("span", { class: "student-name" }, names.get(c.studentId) ?? c.studentId), " · ",
      h("span", { class: c.status ? `status-${c.status}` : "" }, c.status ? statusLabel(c.status) : "Cleared"),
      c.remark ? h("span", { class: "remark-text" }, ` (“${c.remark}”)`) : null,
      h("span", { class: "muted" }, ` · ${c.source} by ${who(c.by, records)}`)))));
  }

  async function correct(record, status, remark) {
    const change = { status };
    if (remark !== undefined) change.remark = remark;
    try {
      await patch(`${base}/records/${encodeURIComponent(record.studentId)}`, change);
      if (alive) await load();
    } catch (error) {
      showError(error.message);
      if (alive) load().catch(() => {}); // show what the server holds, not what was refused
    }
  }

  function recordRow(r) {
    const buttons = STATUSES.map((def) => {
      const button = statusButton(def, r.studentId, () => {
        if (r.status !== def.status) correct(r, def.status);
      });
      button.setAttribute("aria-pressed", String(r.status === def.status));
      return button;
    });
    const remark = remarkField(r.name, r.studentId, r.remark, (text) => {
      if (text !== (r.remark ?? "")) correct(r, r.status, text);
    });
    const row = h("tr", { "aria-label": r.name },
      h("th", { scope: "row" }, h("span", { class: "student-name" }, r.name),
        h("span", { class: "student-email" }, emailText(r.email))),
      h("td", { class: `mark-buttons status-${r.status}` }, buttons),
      h("td", { class: "remark-cell" }, remark));
    statusKeys(row, (value) => { if (r.status !== value) correct(r, value); });
    return row;
  }

  async function load() {
    const mine = ++loads;
    // The change log failing to load leaves the records usable (its own message in its area).
    const [s, changes] = await Promise.all([get(base), get(`${base}/changes`).catch((error) => error)]);
    if (!alive || mine !== loads) return;
    // Keep the keyboard user's place across the rebuild (the control is found again by its data-focus key).
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.focus : undefined;
    title.textContent = `${klass.className}: session of ${formatDateTime(s.startedAt)}`;
    document.title = `${title.textContent} · Live Attendance`;
    replace(body,
      h("p", {}, `${countsText(s)} · Total ${s.total} · ended ${formatDate(s.endedAt)}`),
      h("p", { class: "muted" }, "Corrections are saved at once: choose a status, or edit a remark and press Enter."),
      h("div", { class: "table-scroll" }, h("table", { class: "report marks" },
        h("caption", { class: "visually-hidden" }, "Records of this session (keys P, A, L, E on a row)"),
        h("thead", {}, h("tr", {}, ["Student", "Status", "Remark"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, s.records.map(recordRow)))));
    if (changes instanceof Error) replace(log, errorText(changes, "the change log"));
    else renderLog(changes, s.records);
    if (focused) body.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
  }

  get(`/class/${encodeURIComponent(classId)}`).then((data) => {
    if (!alive) return;
    klass = data;
    root.querySelector(".class-crumb").textContent = klass.className;
    return load();
  }).catch((error) => {
    if (!alive) return;
    replace(body, errorText(error, "this session"));
    replace(log);
  });
  return { dispose: () => { alive = false; } };
}
