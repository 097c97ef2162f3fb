// The console's entry point: sign-up and log-in, the header, the hash router and the socket.

import { ApiError, get, post, setUnauthorizedHandler } from "./api.js";
import { auth } from "./auth.js";
import { dropPendingCheckin, keepCheckinLink } from "./checkin.js";
import { checkEmail, checkName, checkPassword, showFieldErrors } from "./checks.js";
import { field, h, replace } from "./dom.js";
import { AUTH_FAILED, LiveSocket } from "./live.js";
import { studentClassPage } from "./student.js";
import { classesPage, sessionPage, teacherClassPage } from "./teacher.js";
import { clearErrors, showError } from "./ui.js";

const main = document.getElementById("main");
const account = document.getElementById("account");

let socket = null;
let view = null; // the mounted page: {onSocketEvent?, onSocketOpen?, dispose?}
let connection = "closed";
let sessionState = null; // the mounted class page's session: "live" | "ended" | "none"; null elsewhere

// --- routes: #/login, #/signup, #/ (classes), #/class/<id>, #/class/<id>/sessions/<sessionId>, and the
// check-in link #/check-in/<classId>/<code> ---------------------------------------------------------------
function parseRoute() {
  let parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "check-in" && parts.length === 3) {
    // The link of the projector's QR code: its class page, which checks in (through the log-in if needed).
    keepCheckinLink(parts[1], parts[2]);
    parts = ["class", parts[1]];
  }
  if (parts[0] === "login" || parts[0] === "signup") return { name: parts[0] };
  if (parts[0] === "class" && parts.length === 2) return { name: "class", classId: parts[1] };
  if (parts[0] === "class" && parts[2] === "sessions" && parts.length === 4) {
    return { name: "session", classId: parts[1], sessionId: parts[3] };
  }
  return { name: "classes" };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function context() {
  return {
    user: auth.user,
    navigate,
    setSession(state) {
      sessionState = state;
      renderIndicators();
    },
    send: (event, data) => socket?.send(event, data) ?? false,
    get connected() {
      return socket?.isOpen ?? false;
    },
  };
}

function render() {
  view?.dispose?.();
  view = null;
  sessionState = null;
  const route = parseRoute();
  const user = auth.user;
  renderAccount();
  if (!user) {
    if (route.name !== "signup" && route.name !== "login") {
      // A deep link (a shared `#/class/<id>`) opened signed out: go there once logged in.
      if (route.name !== "classes") auth.rememberNext(location.hash);
      history.replaceState(null, "", "#/login");
    }
    view = route.name === "signup" ? signupPage(main) : loginPage(main);
  } else if (user.role === "teacher" && dropPendingCheckin()) {
    showError("That was a check-in link, for students: you are logged in as a teacher.");
    navigate("#/");
    return;
  } else if (route.name === "login" || route.name === "signup") {
    history.replaceState(null, "", "#/");
    view = classesPage(main, context());
  } else if (route.name === "class") {
    view = user.role === "teacher"
      ? teacherClassPage(main, context(), route.classId)
      : studentClassPage(main, context(), route.classId);
  } else if (route.name === "session" && user.role === "teacher") {
    view = sessionPage(main, context(), route.classId, route.sessionId);
  } else {
    view = classesPage(main, context());
  }
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Live Attendance` : "Live Attendance";
  // A new page: start at its top, and give keyboard and screen-reader users the new content.
  window.scrollTo(0, 0);
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

// --- header and indicators ----------------------------------------------------------------------------
// Two separate indicators: the socket's connection, and (on a class page) that class's session.
const CONNECTION_TEXT = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};
const SESSION_TEXT = { live: "Live", ended: "Ended", none: "Not live" };

const indicators = document.getElementById("indicators");
const connectionValue = h("dd", { class: "indicator-value", "aria-live": "polite" });
const sessionValue = h("dd", { class: "indicator-value", "aria-live": "polite" });
const sessionIndicator = h("div", { class: "indicator indicator-session" }, h("dt", {}, "Session"), sessionValue);
replace(indicators,
  h("div", { class: "indicator indicator-connection" }, h("dt", {}, "Connection"), connectionValue),
  sessionIndicator);

function renderIndicators() {
  indicators.hidden = !auth.user;
  connectionValue.textContent = CONNECTION_TEXT[connection];
  connectionValue.dataset.state = connection;
  sessionIndicator.hidden = sessionState === null;
  sessionValue.textContent = SESSION_TEXT[sessionState] ?? "";
  sessionValue.dataset.state = sessionState ?? "";
}

function renderAccount() {
  renderIndicators();
  const user = auth.user;
  if (!user) {
    replace(account);
    return;
  }
  const role = user.role === "teacher" ? "Teacher" : "Student";
  replace(
    account,
    h("span", { class: "who", title: `${user.name} · ${role}` }, h("span", { class: "who-name" }, user.name),
      ` · ${role}`),
    h("button", { type: "button", onclick: () => logOut() }, "Log out"),
  );
}

// --- session (login state) -------------------------------------------------------------------------
function startSocket() {
  socket?.stop();
  socket = new LiveSocket(auth.token, {
    onStateChange(state) {
      connection = state;
      renderIndicators();
    },
    onOpen() {
      view?.onSocketOpen?.();
    },
    onEvent(event, data) {
      if (event === "ERROR" && data.message === AUTH_FAILED) return; // onAuthFailed follows
      const handled = view?.onSocketEvent?.(event, data);
      if (event === "ERROR" && !handled) showError(data.message ?? "The server reported an error");
    },
    onAuthFailed() {
      logOut("Your login has expired or is no longer valid. Please log in again.");
    },
  });
}

function logOut(reason) {
  socket?.stop();
  socket = null;
  connection = "closed";
  auth.clear(); // every other tab hears it (the storage event) and logs out too
  clearErrors();
  if (reason) showError(reason);
  navigate("#/login");
}

// Another tab logged out, logged in (perhaps as someone else) or refreshed the user: follow it.
auth.onOtherTab(() => {
  if (!auth.token) {
    if (socket) logOut("You logged out in another tab.");
    return;
  }
  if (!auth.user) return; // the other tab is half-way through its log-in
  if (!socket || socket.token !== auth.token) {
    clearErrors();
    startSocket();
    render();
  } else {
    renderAccount();
  }
});

setUnauthorizedHandler(() => logOut("Your login has expired or is no longer valid. Please log in again."));

async function logIn(email, password) {
  const { token } = await post("/auth/login", { email, password });
  auth.save(token, null);
  const user = await get("/auth/me");
  auth.save(token, user);
  clearErrors();
  startSocket();
  navigate(auth.takeNext() ?? "#/");
}

// --- log-in and sign-up pages ----------------------------------------------------------------------
function busy(button, promise) {
  button.disabled = true;
  return promise.finally(() => {
    button.disabled = false;
  });
}

function loginPage(root) {
  const email = field("Email", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = field("Password", {
    type: "password", name: "password", autocomplete: "current-password", required: true,
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h("form", { class: "card narrow", "aria-labelledby": "login-title", novalidate: true },
    h("h1", { id: "login-title" }, "Log in"),
    email.element, password.element,
    h("div", { class: "actions" }, submit),
    h("p", { class: "muted" }, "New here? ", h("a", { href: "#/signup" }, "Create an account")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const valid = showFieldErrors([
      [email, checkEmail(email.input.value)],
      [password, password.input.value ? null : "Password: enter your password."],
    ]);
    if (!valid) return;
    busy(submit, logIn(email.input.value, password.input.value)).catch((error) => showError(error.message));
  });
  replace(root, form);
  email.input.focus();
  return {};
}

function signupPage(root) {
  const name = field("Name", { type: "text", name: "name", autocomplete: "name", required: true, maxlength: 200 });
  const email = field("Email", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = field("Password", {
    type: "password", name: "password", autocomplete: "new-password", required: true, minlength: 6,
  });
  const radio = (value, label, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "role", value, required: true, checked }), label);
  const submit = h("button", { type: "submit", class: "primary" }, "Sign up");
  const form = h("form", { class: "card narrow", "aria-labelledby": "signup-title", novalidate: true },
    h("h1", { id: "signup-title" }, "Sign up"),
    name.element, email.element, password.element,
    h("p", { class: "hint", id: "password-hint" }, "At least 6 characters."),
    h("fieldset", { class: "roles" }, h("legend", {}, "I am a"),
      radio("teacher", "Teacher", false), radio("student", "Student", false)),
    h("div", { class: "actions" }, submit),
    h("p", { class: "muted" }, "Already have an account? ", h("a", { href: "#/login" }, "Log in instead")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const valid = showFieldErrors([
      [name, checkName("Name", name.input.value)],
      [email, checkEmail(email.input.value)],
      [password, checkPassword(password.input.value)],
    ]);
    if (!valid) return;
    const role = form.elements.role.value;
    if (!role) {
      showError("I am a: choose Teacher or Student.");
      form.querySelector("input[name=role]").focus();
      return;
    }
    const signUp = post("/auth/signup", {
      name: name.input.value, email: email.input.value, password: password.input.value, role,
    }).then(() => logIn(email.input.value, password.input.value));
    busy(submit, signUp).catch((error) => showError(error.message));
  });
  replace(root, form);
  name.input.focus();
  return {};
}

// --- start ------------------------------------------------------------------------------------------
async function boot() {
  if (auth.token) {
    try {
      auth.save(auth.token, await get("/auth/me")); // the account may have changed since
      startSocket();
    } catch (error) {
      // A 401 has logged out already; otherwise (server unreachable) keep the saved user and let
      // the socket connect as soon as the server is back.
      if (!(error instanceof ApiError) || error.status !== 401) {
        showError(error.message);
        if (auth.user) startSocket();
      }
    }
  }
  window.addEventListener("hashchange", render);
  render();
}

boot();
