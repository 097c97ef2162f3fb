// Self check-in (docs/console.md "Self check-in"): the teacher's panel and full-screen projector view, the
// student's code field, and the check-in link (CHECKIN_CODE `url`) that a phone opens.

import { get, post } from "./api.js";
import { field, h, replace } from "./dom.js";
import { showError, statusLabel } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const NOT_CONNECTED = "Not connected to the live server yet: reconnecting, please try again in a moment.";
// The settings of CHECKIN_OPEN (docs/api.md): each an integer in its range.
const SETTINGS = {
  minutes: { label: "Open for (minutes)", min: 1, max: 240, value: 10 },
  rotateSeconds: { label: "New code every (seconds)", min: 10, max: 300, value: 30 },
  lateAfterMinutes: { label: "Late after (minutes)", min: 0, max: 240, value: "", optional: true,
    placeholder: "Never" },
};
const CODE = /^\d{6}$/;
const CHECKIN_NOT_OPEN = "Check-in is not open";
// The link's check-in, kept in this tab until the student is logged in and on the class page.
const PENDING_KEY = "liveAttendance.checkin";
const PENDING_MAX_AGE_MS = 15 * 60_000;

// "9:05", "1:02:03": what is left of a duration, never negative.
export function clock(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const s = total % 60;
  const m = Math.floor(total / 60) % 60;
  const hours = Math.floor(total / 3600);
  const mm = hours ? String(m).padStart(2, "0") : String(m);
  return `${hours ? `${hours}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const at = (date) => timeFormat.format(date);

// --- the check-in link ---------------------------------------------------------------------------------
// `#/check-in/<classId>/<code>` (CHECKIN_CODE `url`): the code goes from the address bar at once (a reload,
// a bookmark or a shared screen never repeats or shows it) into this tab's sessionStorage, which survives
// the log-in; the class page `#/class/<classId>` takes the place of the link and checks in.
export function keepCheckinLink(classId, code) {
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ code, classId, at: Date.now() }));
  const target = `#/class/${encodeURIComponent(classId)}`;
  history.replaceState(null, "", `${location.pathname}${location.search}${target}`);
  return target;
}

// The link's check-in for `classId`, once: {code} or null.
export function takePendingCheckin(classId) {
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null");
  } catch {
    // unreadable: dropped below
  }
  if (!pending || pending.classId !== classId) return null;
  sessionStorage.removeItem(PENDING_KEY);
  return Date.now() - pending.at < PENDING_MAX_AGE_MS ? { code: String(pending.code) } : null;
}

// Who holds a check-in link but is logged in as a teacher: say so, once.
export function dropPendingCheckin() {
  if (sessionStorage.getItem(PENDING_KEY) === null) return false;
  sessionStorage.removeItem(PENDING_KEY);
  return true;
}

// --- the QR code ---------------------------------------------------------------------------------------
// Drawn from GET /qr's path (the server's segno): an <svg> built here, so no image comes from anywhere.
function qrSvg(label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "qr");
  svg.setAttribute("shape-rendering", "crispEdges");
  return svg;
}

function drawQr(svg, { size, path }) {
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(size));
  background.setAttribute("height", String(size));
  background.setAttribute("fill", "#fff");
  const modules = document.createElementNS(SVG, "path");
  modules.setAttribute("d", path);
  modules.setAttribute("fill", "#000");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.replaceChildren(background, modules);
}

// --- teacher -------------------------------------------------------------------------------------------
// The "Self check-in" part of a live session: the settings and "Open check-in"; once open, the state, the
// projector view and "Close check-in". `info()` gives {className, checkedIn, total} for the counter: students
// marked present or late (by check-in or by the teacher) of those enrolled.
export function teacherCheckin(ctx, info) {
  let open = null; // {closesAt: Date | null (not known yet)} while a window is open
  let code = null; // the last CHECKIN_CODE {code, expiresAt, url}
  let showOnOpen = false; // this tab opened the window: show the projector view when it opens
  let qrAsked = 0; // a later QR answer wins over an earlier one
  let ticker = null;

  const inputs = {};
  const fields = Object.entries(SETTINGS).map(([name, s]) => {
    const f = field(s.label, { type: "number", name, min: s.min, max: s.max, step: 1, inputmode: "numeric",
      value: s.value, placeholder: s.placeholder, "data-focus": `checkin-${name}` });
    inputs[name] = f;
    return f.element;
  });
  const openButton = h("button", { type: "submit", class: "primary", "data-focus": "checkin-open" }, "Open check-in");
  const form = h("form", { class: "inline-form checkin-settings", "aria-label": "Check-in settings", novalidate: true },
    fields, openButton);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    openWindow();
  });
  const state = h("p", { class: "checkin-state" });
  const showButton = h("button", { type: "button", "data-focus": "checkin-show", onclick: () => showView() },
    "Show projector view");
  const closeButton = h("button", { type: "button", "data-focus": "checkin-close", onclick: closeWindow },
    "Close check-in");
  const openArea = h("div", {}, state, h("div", { class: "actions" }, showButton, closeButton));
  const element = h("section", { class: "checkin-panel", "aria-labelledby": "checkin-title" },
    h("h3", { id: "checkin-title" }, "Self check-in"),
    h("p", { class: "hint" }, "Students check themselves in with a code that changes on your screen."),
    form, openArea);

  // The projector view: a modal <dialog> over the whole screen; Escape or "Exit" leaves it.
  const viewTitle = h("h2", { id: "projector-title" }, "Check in");
  const qr = qrSvg("QR code of the check-in link");
  const codeText = h("p", { class: "projector-code" });
  const codeHint = h("p", { class: "projector-next" });
  const counter = h("p", { class: "projector-count", "aria-live": "polite", "aria-atomic": "true" });
  const timeLeft = h("p", { class: "projector-time" });
  const fullButton = h("button", { type: "button", "aria-pressed": "false", onclick: toggleFullScreen },
    "Full screen");
  const viewClose = h("button", { type: "button", onclick: closeWindow }, "Close check-in");
  const exitButton = h("button", { type: "button", class: "primary", onclick: () => view.close() }, "Exit");
  const qrBox = h("div", { class: "projector-qr" }, qr);
  const how = h("p", { class: "projector-how" }, "Scan the code, or type it on your class page:");
  // The dialog's content is one box, the one made full screen: a modal dialog itself cannot be, and the page's
  // root would cover the dialog.
  const screen = h("div", { class: "projector-screen" },
    h("div", { class: "projector-bar" }, viewTitle,
      h("div", { class: "actions" }, document.fullscreenEnabled ? fullButton : null, viewClose, exitButton)),
    h("div", { class: "projector-body" }, qrBox,
      h("div", { class: "projector-info" }, how, codeText, codeHint, counter, timeLeft)));
  const view = h("dialog", { class: "projector", "aria-labelledby": "projector-title" }, screen);
  screen.addEventListener("fullscreenchange", () => {
    fullButton.setAttribute("aria-pressed", String(document.fullscreenElement === screen));
  });
  view.addEventListener("close", () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    view.remove();
    // Back where the person was: "Show projector view", or "Open check-in" when the window closed meanwhile.
    if (element.isConnected) (open ? showButton : openButton).focus({ preventScroll: true });
  });

  function toggleFullScreen() {
    const done = document.fullscreenElement ? document.exitFullscreen() : screen.requestFullscreen();
    done.catch((error) => showError(`Full screen: ${error.message}`));
  }

  function showView() {
    if (!open) return;
    if (!view.isConnected) document.body.append(view);
    if (!view.open) view.showModal();
    exitButton.focus();
    render();
  }

  function readSettings() {
    const data = {};
    let first = null;
    for (const [name, s] of Object.entries(SETTINGS)) {
      const raw = inputs[name].input.value.trim();
      let message = null;
      if (raw === "" && s.optional) {
        inputs[name].setError(null);
        continue;
      }
      const value = Number(raw);
      if (raw === "" || !Number.isInteger(value) || value < s.min || value > s.max) {
        message = `${s.label}: a whole number from ${s.min} to ${s.max}${s.optional ? ", or empty" : ""}.`;
      }
      inputs[name].setError(message);
      if (message) first ??= inputs[name];
      else data[name] = value;
    }
    first?.input.focus();
    return first ? null : data;
  }

  function openWindow() {
    const data = readSettings();
    if (!data) return;
    if (!ctx.send("CHECKIN_OPEN", data)) {
      showError(NOT_CONNECTED);
      return;
    }
    showOnOpen = true;
  }

  function closeWindow() {
    if (!ctx.send("CHECKIN_CLOSE")) showError(NOT_CONNECTED);
  }

  function setQr(url) {
    const asked = ++qrAsked;
    get(`/qr?text=${encodeURIComponent(url)}`)
      .then((drawn) => {
        if (asked !== qrAsked || !code || code.url !== url) return;
        drawQr(qr, drawn);
        qrBox.dataset.url = url; // which link the drawing holds (the browser tests decode it)
      })
      .catch((error) => showError(`Could not draw the QR code: ${error.message}`));
  }

  function render() {
    const { className, checkedIn, total } = info();
    const count = `${checkedIn} of ${total} checked in`;
    form.hidden = open !== null;
    openArea.hidden = open === null;
    const left = open?.closesAt ? clock(open.closesAt - Date.now()) : null;
    if (open) {
      state.textContent = [left ? `Open until ${at(open.closesAt)} (${left} left)` : "Open", count,
        code ? `code ${code.code}` : null].filter(Boolean).join(" · ");
    }
    viewTitle.textContent = className ? `Check in · ${className}` : "Check in";
    if (counter.textContent !== count) counter.textContent = count;
    codeText.classList.toggle("projector-message", !(open && code));
    if (open && code) {
      if (codeText.textContent !== code.code) {
        replace(codeText, h("span", {}, code.code.slice(0, 3)), h("span", {}, code.code.slice(3)));
      }
      const next = Math.max(0, Math.ceil((Date.parse(code.expiresAt) - Date.now()) / 1000));
      codeHint.textContent = `New code in ${next} s`;
      timeLeft.textContent = left ? `Closes in ${left}` : "";
      qrBox.hidden = false;
      how.hidden = false;
    } else {
      replace(codeText, open ? "Waiting for the code…" : "Check-in closed");
      codeHint.textContent = "";
      timeLeft.textContent = left ? `Closes in ${left}` : "";
      qrBox.hidden = !open;
      how.hidden = !open;
    }
    viewClose.hidden = open === null;
  }

  function startTicking() {
    if (ticker === null) ticker = setInterval(render, 1000);
  }

  function stopTicking() {
    clearInterval(ticker);
    ticker = null;
  }

  function opened(closesAt) {
    const date = closesAt ? new Date(closesAt) : null;
    open = { closesAt: date && !Number.isNaN(date.getTime()) ? date : null };
    startTicking();
    render();
    if (showOnOpen) {
      showOnOpen = false;
      showView();
    }
  }

  function closed() {
    open = null;
    code = null;
    showOnOpen = false;
    qrAsked += 1;
    qr.replaceChildren();
    delete qrBox.dataset.url;
    stopTicking();
    render(); // an open projector view stays, showing "Check-in closed" and the final count
  }

  render();
  return {
    element,
    // The window as GET /attendance/active `checkIn` tells it after a reload or reconnect: {closesAt, …} or null.
    restore(checkin) {
      if (checkin?.closesAt) {
        if (open?.closesAt?.getTime() !== Date.parse(checkin.closesAt)) opened(checkin.closesAt);
      } else if (open) {
        closed();
      }
    },
    // The counter's numbers changed (a mark, a clear, MARK_ALL).
    refresh: render,
    // The session ended or is not this page's: no window any more.
    sessionEnded() {
      if (view.open) view.close();
      closed();
    },
    onSocketEvent(event, data) {
      if (event === "CHECKIN_OPENED") {
        opened(data.closesAt);
        return true;
      }
      if (event === "CHECKIN_CODE") {
        if (!open) opened(null); // a code comes only while a window is open; its end follows (restore)
        code = { code: String(data.code), expiresAt: data.expiresAt, url: data.url };
        render();
        setQr(code.url);
        return true;
      }
      if (event === "CHECKIN_CLOSED") {
        closed();
        return true;
      }
      if (event === "ERROR") showOnOpen = false;
      return false;
    },
    dispose() {
      stopTicking();
      if (view.open) view.close();
    },
  };
}

// --- student -------------------------------------------------------------------------------------------
// The "Check in" form of a student's class page: shown while a window is open and the student is not marked
// yet. POST /attendance/check-in answers with the status or the reason, shown under the field.
export function studentCheckin(classId, { onCheckedIn }) {
  let open = false;
  let marked = false; // the live status says the student has a mark
  let done = false; // checked in here, or "Already marked": until the session ends
  let blocked = false; // "Too many attempts": no more tries in this window
  let busy = false;

  const code = field("Check-in code", { type: "text", name: "code", inputmode: "numeric", autocomplete: "one-time-code",
    pattern: "[0-9]{6}", maxlength: 6, placeholder: "6 digits", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Check in");
  const form = h("form", { class: "inline-form checkin-form", "aria-label": "Self check-in", novalidate: true },
    code.element, submit);
  const result = h("p", { class: "checkin-result", "aria-live": "polite" });
  const hint = h("p", { class: "muted checkin-hint" });
  const element = h("div", { class: "checkin", hidden: true }, hint, form, result);
  let closesAt = null;

  function say(text, kind) {
    result.textContent = text;
    result.className = `checkin-result${kind ? ` status-${kind}` : ""}`;
  }

  function render() {
    element.hidden = !(open || result.textContent);
    form.hidden = !open || marked || done || blocked;
    hint.hidden = form.hidden;
    hint.textContent = closesAt
      ? `Check-in is open until ${at(closesAt)}: type the code your teacher shows, or scan its QR code.`
      : "Check-in is open: type the code your teacher shows, or scan its QR code.";
    submit.disabled = busy;
  }

  async function checkIn(value) {
    if (busy) return;
    if (!CODE.test(value)) {
      code.setError("Check-in code: the 6 digits shown by your teacher.");
      code.input.focus();
      return;
    }
    busy = true;
    say("Checking in…");
    render();
    try {
      const answer = await post("/attendance/check-in", { classId, code: value });
      done = true;
      code.input.value = "";
      say(`Checked in · ${statusLabel(answer.status)}`, answer.status);
      onCheckedIn?.(answer.status);
    } catch (error) {
      // What the answer says of the window (docs/api.md POST /attendance/check-in): a wrong code or too many
      // of them, it is open; "Check-in is not open" or no live session, it is not; "Already marked", no need.
      if (error.status === 400 || error.status === 429) open = true;
      if (error.status === 429) blocked = true;
      if (error.message === CHECKIN_NOT_OPEN || error.status === 404) open = false;
      if (error.status === 409 && error.message !== CHECKIN_NOT_OPEN) done = true;
      say(error.message, "error");
      code.setError(error.message);
      code.input.select();
    } finally {
      busy = false;
      render();
      if (!form.hidden && result.classList.contains("status-error")) code.input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    checkIn(code.input.value.trim());
  });
  // The error under the field says the same as the result line: keep only the line once the person types.
  code.input.addEventListener("input", () => {
    if (result.classList.contains("status-error")) say("");
    render();
  });

  return {
    element,
    // The window: open (true, with its closesAt when known) or not; a new window lets a student who ran out of
    // attempts try again.
    setOpen(isOpen, until) {
      const date = until ? new Date(until) : null;
      if (!isOpen) closesAt = null;
      else if (date && !Number.isNaN(date.getTime())) closesAt = date;
      if (isOpen && !open) {
        blocked = false;
        if (!done) say("");
      }
      if (!isOpen && open && !done) say("");
      open = isOpen;
      render();
    },
    // The student's mark while live: only an unmarked student can check in.
    setMarked(isMarked) {
      marked = isMarked;
      render();
    },
    // The check-in link's code: sent at once (the page shows the outcome whether a window was seen or not).
    submit(value) {
      element.hidden = false;
      code.input.value = value;
      checkIn(value);
    },
    reset() {
      open = false;
      marked = false;
      done = false;
      blocked = false;
      say("");
      code.setError(null);
      render();
    },
  };
}

