// Building the page: every piece of text goes in as a text node or an attribute value, never as HTML,
// so names, class names and server messages can hold any characters (<script> included).

function appendAll(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// h("button", {type: "button", onclick: fn, "aria-pressed": "true"}, "Present")
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "value") {
      element.value = value;
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  appendAll(element, children);
  return element;
}

// svg("rect", {x: 0, y: 0, width: 10, height: 10}): an SVG element, for the charts the project draws itself
// (charts.js); the same rules as h(): text goes in as text nodes.
const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, props, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  appendAll(element, children);
  return element;
}

let uniqueCounter = 0;
export function uniqueId(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

// A labelled form field: <label for=id>Label</label><input id=id ...>, and its own error message
// (`setError("Email: …")`), tied to the input by aria-describedby and aria-invalid.
export function field(label, inputProps) {
  const id = uniqueId("field");
  const input = h("input", { id, ...inputProps });
  const error = h("p", { id: `${id}-error`, class: "field-error", hidden: true });
  const setError = (message) => {
    error.textContent = message ?? "";
    error.hidden = !message;
    if (message) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", error.id);
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
  };
  input.addEventListener("input", () => setError(null));
  return { input, setError, element: h("div", { class: "field" }, h("label", { for: id }, label), input, error) };
}

// An email address that may wrap only where a reader expects it: before the "@" and after each "." (<wbr>).
export function emailText(email) {
  const parts = [];
  for (const piece of String(email).split(/(?=@)|(?<=\.)/)) {
    if (parts.length) parts.push(h("wbr", {}));
    parts.push(piece);
  }
  return parts;
}
