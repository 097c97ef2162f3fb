// The console's charts, drawn by the project as SVG (no library, nothing from another host): the class's rate
// per session, a student's last sessions as a strip of cells, and the at-risk reasons. Every chart is an
// image with a text alternative: an aria-label that sums it up, and for the rate chart a visually hidden
// table with every number (docs/console.md "Charts").

import { h, svg } from "./dom.js";
import { formatDate, formatDateTime, formatRate, statusLabel } from "./ui.js";

// Each status's cell: a letter as well as a colour, so that no one needs to tell red from green (the colours
// are the console's status colours, each at least 5.6:1 under white text).
export const CELLS = {
  present: { letter: "P", label: "Present" },
  late: { letter: "L", label: "Late" },
  excused: { letter: "E", label: "Excused" },
  absent: { letter: "A", label: "Absent" },
  none: { letter: "–", label: "No record" },
};
export const STRIP_LENGTH = 20;

// The rate the server computes (docs/console.md "Marking"): (present + late) / (present + late + absent).
export function sessionRate(s) {
  const counted = s.present + (s.late ?? 0) + s.absent;
  return counted ? Math.round(((s.present + (s.late ?? 0)) / counted) * 10_000) / 10_000 : null;
}

const shortDate = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const pct = (rate) => formatRate(rate).replace("\u00a0", " ");

// Why a student is at risk, in words: "rate 62.5 % < 80 %", "4 absences in a row". `settings` holds the
// class's minRate and maxConsecutiveAbsences; the server's `atRisk` decides, this only explains it.
export function riskReasons(student, settings) {
  const reasons = [];
  const minRate = settings?.minRate;
  const maxAbsences = settings?.maxConsecutiveAbsences;
  if (typeof minRate === "number" && student.rate !== null && student.rate !== undefined && student.rate < minRate) {
    reasons.push(`rate ${pct(student.rate)} < ${pct(minRate)}`);
  }
  const streak = student.consecutiveAbsences ?? 0;
  if (typeof maxAbsences === "number" && streak >= maxAbsences) {
    reasons.push(`${streak} ${streak === 1 ? "absence" : "absences"} in a row`);
  }
  if (reasons.length === 0 && student.atRisk) {
    // The settings unknown here: say what the numbers show.
    if (streak > 0) reasons.push(`${streak} ${streak === 1 ? "absence" : "absences"} in a row`);
    if (student.rate !== null && student.rate !== undefined) reasons.push(`rate ${pct(student.rate)}`);
    if (reasons.length === 0) reasons.push("at risk");
  }
  return reasons;
}

// --- the class's rate per session --------------------------------------------------------------------
const W = 640;
const H = 220;
const PAD = { left: 44, right: 12, top: 14, bottom: 30 };
const LABEL_EACH = 12;

// `sessions`: oldest first, each {startedAt, present, absent, late, excused, total}. A bar per session, a
// dashed line at the class's minimum rate; a session with no counted record (all excused) has no bar.
export function rateChart(sessions, { minRate, title = "Rate per session" } = {}) {
  const rates = sessions.map(sessionRate);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (rate) => PAD.top + plotH * (1 - rate);
  const step = plotW / Math.max(sessions.length, 1);
  const barW = Math.max(2, Math.min(28, step * 0.7));
  const parts = [];
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: "chart-grid" }));
    parts.push(svg("text", { x: PAD.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "chart-axis" },
      `${tick * 100} %`));
  }
  sessions.forEach((s, i) => {
    const rate = rates[i];
    const x = PAD.left + step * i + (step - barW) / 2;
    const tip = `${formatDateTime(s.startedAt)}: ${rate === null ? "no rate (all excused)" : pct(rate)}`;
    if (rate === null) {
      parts.push(svg("text", { x: x + barW / 2, y: y(0) - 4, "text-anchor": "middle", class: "chart-axis" }, "–"));
      return;
    }
    const under = typeof minRate === "number" && rate < minRate;
    parts.push(svg("rect", { x, y: y(rate), width: barW, height: Math.max(1, y(0) - y(rate)),
      class: under ? "chart-bar chart-bar-under" : "chart-bar" }, svg("title", {}, tip)));
  });
  if (typeof minRate === "number") {
    parts.push(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(minRate), y2: y(minRate), class: "chart-min" }));
    parts.push(svg("text", { x: W - PAD.right, y: y(minRate) - 4, "text-anchor": "end", class: "chart-min-label" },
      `minimum ${pct(minRate)}`));
  }
  if (sessions.length <= LABEL_EACH) {
    // A date under each bar while they fit; else the first and the last.
    sessions.forEach((s, i) => parts.push(svg("text", { x: PAD.left + step * (i + 0.5), y: H - 8,
      "text-anchor": "middle", class: "chart-axis" }, shortDate.format(new Date(s.startedAt)))));
  } else {
    const first = sessions[0].startedAt;
    const last = sessions[sessions.length - 1].startedAt;
    parts.push(svg("text", { x: PAD.left, y: H - 8, class: "chart-axis" }, shortDate.format(new Date(first))));
    parts.push(svg("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end", class: "chart-axis" },
      shortDate.format(new Date(last))));
  }
  const summary = rateSummary(sessions, rates, minRate);
  const image = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${summary}`,
    class: "chart rate-chart", preserveAspectRatio: "xMidYMid meet" }, parts);
  const table = h("table", {},
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, ["Session", "Rate", "Present", "Late", "Excused", "Absent"]
      .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, sessions.map((s, i) => h("tr", {},
      h("th", { scope: "row" }, formatDateTime(s.startedAt)), h("td", {}, formatRate(rates[i])),
      h("td", {}, String(s.present)), h("td", {}, String(s.late ?? 0)), h("td", {}, String(s.excused ?? 0)),
      h("td", {}, String(s.absent))))));
  return h("figure", { class: "chart-figure" }, image, h("figcaption", { class: "muted" }, summary),
    h("div", { class: "visually-hidden" }, table));
}

function rateSummary(sessions, rates, minRate) {
  if (sessions.length === 0) return "no session saved in these dates.";
  const known = rates.filter((r) => r !== null);
  const from = formatDate(sessions[0].startedAt);
  const to = formatDate(sessions[sessions.length - 1].startedAt);
  const span = sessions.length === 1 ? `1 session, ${from}` : `${sessions.length} sessions from ${from} to ${to}`;
  if (known.length === 0) return `${span}; no rate (every record excused).`;
  const latest = [...rates].reverse().find((r) => r !== null);
  let text = `${span}; latest ${pct(latest)}, lowest ${pct(Math.min(...known))}, highest ${pct(Math.max(...known))}`;
  if (typeof minRate === "number") {
    const under = known.filter((r) => r < minRate).length;
    text += `; ${under} under the minimum of ${pct(minRate)}`;
  }
  return `${text}.`;
}

// --- a student's last sessions ----------------------------------------------------------------------
const CELL_W = 18;
const CELL_H = 24;
const GAP = 2;

// `cells`: oldest first, each {startedAt, status} (status null: no record of this student in that session).
// A lettered cell per session; the aria-label lists them all in words.
export function strip(cells, { who = "Last sessions" } = {}) {
  const width = Math.max(cells.length, 1) * (CELL_W + GAP);
  const label = cells.length
    ? `${who}, oldest first: ${cells.map((c) => (CELLS[c.status] ?? CELLS.none).label).join(", ")}`
    : `${who}: no session yet`;
  return svg("svg", { viewBox: `0 0 ${width} ${CELL_H}`, width, height: CELL_H, role: "img", "aria-label": label,
    class: "strip" }, cells.map((c, i) => {
    const kind = CELLS[c.status] ? c.status : "none";
    const x = i * (CELL_W + GAP);
    return svg("g", { class: `cell cell-${kind}` },
      svg("title", {}, `${formatDateTime(c.startedAt)}: ${c.status ? statusLabel(c.status) : "no record"}`),
      svg("rect", { x, y: 0, width: CELL_W, height: CELL_H, rx: 3 }),
      svg("text", { x: x + CELL_W / 2, y: CELL_H / 2 + 5, "text-anchor": "middle" }, CELLS[kind].letter));
  }));
}

// The key to the strips' letters and colours.
export function stripLegend() {
  return h("p", { class: "strip-legend muted" }, "Cells, oldest first: ",
    ["present", "late", "excused", "absent", "none"].map((kind) => [h("span", { class: "legend-item" },
      h("span", { class: `legend-cell cell-${kind}`, "aria-hidden": "true" }, CELLS[kind].letter),
      ` ${CELLS[kind].label}`), " "]));
}
