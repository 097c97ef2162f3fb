// Shared pieces of the page: error and info notices, confirmation dialogs, formatting.

import { h, replace } from "./dom.js";

const NOTICE_MS = 15_000;

// Every error a person should know about, in words (HTTP errors and socket ERROR events alike).
export function showError(message) {
  const notices = document.getElementById("notices");
  const close = h("button", { type: "button", class: "link-button", "aria-label": "Dismiss" }, "×");
  const notice = h("div", { class: "notice notice-error" }, h("span", {}, message), close);
  close.addEventListener("click", () => notice.remove());
  notices.append(notice);
  while (notices.children.length > 3) notices.firstElementChild.remove();
  setTimeout(() => notice.remove(), NOTICE_MS);
}

export function clearErrors() {
  replace(document.getElementById("notices"));
}

// A modal <dialog>: resolves true when the person presses the confirming button (named `confirmLabel`).
export function confirmDialog({ title, text, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${Date.now()}`;
    const confirm = h("button", { type: "submit", value: "confirm", class: danger ? "danger" : "primary" }, confirmLabel);
    const cancel = h("button", { type: "submit", value: "cancel", formnovalidate: true }, "Cancel");
    const dialog = h(
      "dialog",
      { "aria-labelledby": titleId },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: titleId }, title),
        h("p", {}, text),
        h("div", { class: "actions" }, cancel, confirm),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus; Escape cancels too
  });
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : dateFormat.format(date);
}

// With the seconds: two sessions started in the same minute read differently in a history.
// `precise`: with the milliseconds too, for sessions started within the same second.
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const preciseFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit",
  fractionalSecondDigits: 3,
});
export function formatDateTime(iso, precise = false) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return (precise ? preciseFormat : dateTimeFormat).format(date);
}

export function statusLabel(status) {
  if (status === "present") return "Present";
  if (status === "absent") return "Absent";
  if (status === "late") return "Late";
  if (status === "excused") return "Excused";
  if (status === "not yet updated") return "Not marked yet";
  return status ? String(status) : "No record";
}

export function formatRate(rate) {
  return rate === null || rate === undefined ? "—" : `${Math.round(rate * 1000) / 10}\u00a0%`;
}

export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

// A section with a heading, labelled by it.
export function section(title, ...children) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export function loadingText(text = "Loading…") {
  return h("p", { class: "muted" }, text);
}
