// The teacher's roster and class settings: students imported from a pasted list or a CSV file (read in the
// page), and the class's name, minimum rate and absences in a row (docs/console.md "Roster and settings").

import { get, patch, post } from "./api.js";
import { checkName, showFieldErrors } from "./checks.js";
import { field, h, replace, uniqueId } from "./dom.js";
import { plural, showError } from "./ui.js";

// POST /class/:id/students takes at most this many emails: a longer list goes in several requests.
export const IMPORT_BATCH = 1000;
// An address anywhere in a pasted text ("Ana Lopez <ana@school.org>", a spreadsheet column, a mail's To:).
const EMAIL_IN_TEXT = /[^\s<>,;:"'()[\]]+@[^\s<>,;:"'()[\]]+\.[^\s<>,;:"'()[\]]+/g;
const EMAIL_HEADERS = ["email", "e-mail", "email address", "e-mail address", "mail"];

// Every address in `text`, trimmed, lower-cased as the server stores them, each once, in order.
export function emailsIn(text) {
  const seen = new Set();
  for (const match of String(text).matchAll(EMAIL_IN_TEXT)) {
    seen.add(match[0].replace(/\.+$/, "").toLowerCase());
  }
  return [...seen];
}

// RFC 4180 CSV (quotes, doubled quotes, line breaks in quotes), with the separator of the header line: a
// comma, or the semicolon or tab that spreadsheets in many languages write.
export function parseCsv(text) {
  const source = String(text).replace(/^\ufeff/, "");
  const firstLine = source.split(/\r?\n/, 1)[0] ?? "";
  const separator = [",", ";", "\t"].reduce((best, sep) =>
    firstLine.split(sep).length > firstLine.split(best).length ? sep : best, ",");
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < source.length; i += 1) {
    const c = source[i];
    if (quoted) {
      if (c === '"' && source[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === separator) {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && source[i + 1] === "\n") i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else {
      cell += c;
    }
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

// The `email` column of a CSV file (its header, case aside; "E-mail" and "Email address" too). Throws an
// Error whose message names the problem.
export function emailsFromCsv(text) {
  const rows = parseCsv(text);
  if (rows.length === 0) throw new Error("CSV file: the file is empty.");
  const column = rows[0].findIndex((name) => EMAIL_HEADERS.includes(name.trim().toLowerCase()));
  if (column < 0) throw new Error("CSV file: its first line has no “email” column.");
  return emailsIn(rows.slice(1).map((row) => row[column] ?? "").join("\n"));
}

// --- import -----------------------------------------------------------------------------------------
// `onImported(klass)`: the class as it is after the import (GET /class/:id), to redraw the roster.
export function importForm(classId, { onImported, nameOf }) {
  const textId = uniqueId("field");
  const text = h("textarea", { id: textId, rows: 4, autocomplete: "off", spellcheck: "false",
    placeholder: "ana@school.org, ben@school.org …" });
  const textError = h("p", { id: `${textId}-error`, class: "field-error", hidden: true });
  const file = field("CSV file", { type: "file", accept: ".csv,text/csv,text/plain" });
  const button = h("button", { type: "submit" }, "Import");
  const result = h("div", { class: "import-result", "aria-live": "polite" });
  const form = h("form", { class: "import-form", "aria-label": "Import students", novalidate: true },
    h("div", { class: "field" }, h("label", { for: textId }, "Emails to import"),
      h("p", { class: "hint", id: `${textId}-hint` },
        "Paste addresses (one per line, or separated by commas), or choose a CSV file with an “email” column."),
      text, textError),
    file.element,
    h("div", { class: "actions" }, button),
    result);
  text.setAttribute("aria-describedby", `${textId}-hint`);
  const setTextError = (message) => {
    textError.textContent = message ?? "";
    textError.hidden = !message;
    if (message) {
      text.setAttribute("aria-invalid", "true");
      text.setAttribute("aria-describedby", `${textId}-hint ${textId}-error`);
    } else {
      text.removeAttribute("aria-invalid");
      text.setAttribute("aria-describedby", `${textId}-hint`);
    }
  };
  text.addEventListener("input", () => setTextError(null));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setTextError(null);
    file.setError(null);
    let emails = emailsIn(text.value);
    const chosen = file.input.files?.[0];
    if (chosen) {
      try {
        emails = [...new Set([...emails, ...emailsFromCsv(await chosen.text())])];
      } catch (error) {
        file.setError(error.message);
        file.input.focus();
        return;
      }
    }
    if (emails.length === 0) {
      if (chosen) {
        file.setError("CSV file: no email address under its “email” column.");
        file.input.focus();
      } else {
        setTextError("Emails to import: paste at least one address, or choose a CSV file.");
        text.focus();
      }
      return;
    }
    button.disabled = true;
    replace(result, h("p", { class: "muted" }, `Importing ${plural(emails.length, "address", "addresses")}…`));
    const total = { added: [], alreadyEnrolled: [], notFound: [], notStudents: [] };
    try {
      for (let i = 0; i < emails.length; i += IMPORT_BATCH) {
        const answer = await post(`/class/${encodeURIComponent(classId)}/students`,
          { emails: emails.slice(i, i + IMPORT_BATCH) });
        for (const key of Object.keys(total)) total[key].push(...(answer[key] ?? []));
      }
      const klass = await get(`/class/${encodeURIComponent(classId)}`);
      onImported(klass);
      renderResult(result, total, nameOf);
      if (total.notFound.length === 0 && total.notStudents.length === 0) {
        text.value = "";
        file.input.value = "";
      }
    } catch (error) {
      replace(result, h("p", { class: "error-text" }, `Import failed: ${error.message}`));
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// "2 added · 1 already enrolled · 1 not found · 1 not a student", then who, in each group.
function renderResult(area, total, nameOf) {
  const line = [
    `${total.added.length} added`,
    `${total.alreadyEnrolled.length} already enrolled`,
    `${total.notFound.length} not found`,
    `${total.notStudents.length} ${total.notStudents.length === 1 ? "not a student" : "not students"}`,
  ].join(" · ");
  const group = (title, items, hint) => items.length
    ? h("li", {}, h("strong", {}, `${title}: `), items.join(", "), hint ? h("span", { class: "muted" }, ` (${hint})`) : null)
    : null;
  replace(area,
    h("p", { class: "import-summary" }, `Import: ${line}`),
    h("ul", { class: "import-groups", "aria-label": "Import result" },
      group("Added", total.added.map(nameOf)),
      group("Already enrolled", total.alreadyEnrolled.map(nameOf)),
      group("Not found", total.notFound, "no account with this address: they sign up first"),
      group("Not students", total.notStudents, "teacher accounts cannot be enrolled")));
}

// --- settings ----------------------------------------------------------------------------------------
export const DEFAULT_MIN_RATE = 0.8;
export const DEFAULT_MAX_ABSENCES = 3;

export function classSettings(klass) {
  return {
    minRate: typeof klass?.minRate === "number" ? klass.minRate : DEFAULT_MIN_RATE,
    maxConsecutiveAbsences: typeof klass?.maxConsecutiveAbsences === "number"
      ? klass.maxConsecutiveAbsences : DEFAULT_MAX_ABSENCES,
  };
}

// A whole number in [min, max] typed in `f`, or the message for its field.
function checkWhole(label, value, min, max, decimals = false) {
  const text = value.trim();
  const number = Number(text);
  if (!text || !Number.isFinite(number)) return `${label}: enter a number from ${min} to ${max}.`;
  if (!decimals && !Number.isInteger(number)) return `${label}: a whole number from ${min} to ${max}.`;
  if (number < min || number > max) return `${label}: from ${min} to ${max}.`;
  return null;
}

// `onSaved(klass)`: PATCH /class/:id's answer.
export function settingsForm(classId, klass, { onSaved }) {
  const settings = classSettings(klass);
  const name = field("Class name", { type: "text", name: "className", required: true, maxlength: 200,
    value: klass.className });
  const minRate = field("Minimum rate (%)", { type: "number", min: 0, max: 100, step: "any", inputmode: "decimal",
    value: String(Math.round(settings.minRate * 10_000) / 100) });
  const maxAbsences = field("Absences in a row", { type: "number", min: 1, max: 100, step: 1,
    inputmode: "numeric", value: String(settings.maxConsecutiveAbsences) });
  const save = h("button", { type: "submit", class: "primary" }, "Save settings");
  const result = h("p", { class: "settings-result", "aria-live": "polite" });
  const form = h("form", { class: "settings-form", "aria-label": "Class settings", novalidate: true },
    name.element,
    h("p", { class: "hint" },
      "A student is at risk when their rate is under the minimum, or after that many unexcused absences in a row."),
    h("div", { class: "inline-form" }, minRate.element, maxAbsences.element),
    h("div", { class: "actions" }, save),
    result);
  for (const f of [name, minRate, maxAbsences]) f.input.addEventListener("input", () => { result.textContent = ""; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = "";
    const ok = showFieldErrors([
      [name, checkName("Class name", name.input.value)],
      [minRate, checkWhole("Minimum rate (%)", minRate.input.value, 0, 100, true)],
      [maxAbsences, checkWhole("Absences in a row", maxAbsences.input.value, 1, 100)],
    ]);
    if (!ok) return;
    save.disabled = true;
    try {
      const saved = await patch(`/class/${encodeURIComponent(classId)}`, {
        className: name.input.value.trim(),
        minRate: Math.round(Number(minRate.input.value) * 100) / 10_000,
        maxConsecutiveAbsences: Number(maxAbsences.input.value),
      });
      result.textContent = "Settings saved.";
      onSaved(saved);
    } catch (error) {
      showError(error.message);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}
