// The public HTTP API, as any client uses it: JSON envelopes, `Authorization: <JWT>`.

import { auth } from "./auth.js";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const UNREACHABLE = "The server cannot be reached. Check the connection and try again.";

// Set by the app: what to do when the server says the token is no longer good (401).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = auth.token;
  if (token) headers.Authorization = token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, UNREACHABLE);
  }
}

async function failure(response) {
  let message = `Unexpected answer from the server (HTTP ${response.status})`;
  try {
    const payload = await response.json();
    if (payload && typeof payload.error === "string") message = payload.error;
  } catch {
    // not JSON: keep the generic message
  }
  if (response.status === 401 && auth.token) onUnauthorized(message);
  return new ApiError(response.status, message);
}

export async function api(method, path, body) {
  const response = await send(method, path, body);
  if (!response.ok) throw await failure(response);
  try {
    const payload = await response.json();
    if (payload && payload.success === true) return payload.data;
  } catch {
    // fall through
  }
  throw new ApiError(response.status, "Unexpected answer from the server");
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const patch = (path, body) => api("PATCH", path, body ?? {});
export const del = (path) => api("DELETE", path);

// The file name a Content-Disposition header offers: RFC 6266's filename* first, then filename.
export function dispositionFilename(header, fallback) {
  if (!header) return fallback;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // malformed: try the plain one
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"/i.exec(header) ?? /filename\s*=\s*([^;]+)/i.exec(header);
  return plain ? plain[1].trim() : fallback;
}

// Fetch a file with the token (a plain link cannot send it) and hand it to the browser as a download.
export async function download(path, fallbackName) {
  const response = await send("GET", path);
  if (!response.ok) throw await failure(response);
  const blob = await response.blob();
  const name = dispositionFilename(response.headers.get("Content-Disposition"), fallbackName);
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}
