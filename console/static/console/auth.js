// The signed-in user of this tab: the token lives in sessionStorage (one login per tab, gone with it).

const KEY = "liveAttendance.auth";

function read() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
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
    sessionStorage.setItem(KEY, JSON.stringify({ token, user }));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};
