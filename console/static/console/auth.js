// The signed-in user, shared by every tab of the browser: the token lives in localStorage (docs/console.md
// "Login and tabs" says why), and a log-in or log-out in one tab reaches the others by the `storage` event.

const KEY = "liveAttendance.auth";
// Where a signed-out visitor was going (a shared `#/class/<id>` link): per tab, consumed by the log-in.
const NEXT_KEY = "liveAttendance.next";

function read() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? "null");
    return saved && typeof saved.token === "string" ? saved : null;
  } catch {
    return null;
  }
}

export const auth = {
  get token() {
    return read()?.token ?? null;
  },
  get user() {
    return read()?.user ?? null;
  },
  save(token, user) {
    localStorage.setItem(KEY, JSON.stringify({ token, user }));
  },
  clear() {
    localStorage.removeItem(KEY);
  },
  // Calls `handler()` when another tab logs in, logs out or refreshes the user.
  onOtherTab(handler) {
    window.addEventListener("storage", (event) => {
      if (event.key === KEY || event.key === null) handler();
    });
  },
  rememberNext(hash) {
    sessionStorage.setItem(NEXT_KEY, hash);
  },
  takeNext() {
    const next = sessionStorage.getItem(NEXT_KEY);
    sessionStorage.removeItem(NEXT_KEY);
    return next && next.startsWith("#/") ? next : null;
  },
};
