// The one WebSocket of a signed-in tab (/ws?token=...): reconnects by itself with backoff.

export const AUTH_FAILED = "Unauthorized or invalid token";

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

export class LiveSocket {
  // handlers: {onEvent(event, data), onOpen(), onStateChange(state), onAuthFailed()}
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.state = "connecting";
    this.reconnectNow = () => {
      if (!this.stopped && this.state !== "open") this.open();
    };
    window.addEventListener("online", this.reconnectNow);
    this.open();
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  setState(state) {
    this.state = state;
    this.handlers.onStateChange?.(state);
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(this.token)}`);
    this.socket = socket;
    let authFailed = false;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    socket.onopen = () => {
      this.attempt = 0;
      this.setState("open");
      this.handlers.onOpen?.();
    };
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (!frame || typeof frame.event !== "string") return;
      if (frame.event === "ERROR" && frame.data?.message === AUTH_FAILED) authFailed = true;
      this.handlers.onEvent?.(frame.event, frame.data ?? {});
    };
    socket.onclose = () => {
      if (this.socket !== socket || this.stopped) return;
      if (authFailed) {
        this.stop();
        this.handlers.onAuthFailed?.();
        return;
      }
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    // 0.5 s, 1 s, 2 s, 4 s, 8 s, then every 10 s; ±20 % so that a restarted server is not hit by
    // every client in the same millisecond.
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const delay = base * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.setState("reconnecting");
    this.timer = setTimeout(() => this.open(), delay);
  }

  send(event, data) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(data === undefined ? { event } : { event, data }));
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.reconnectNow);
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000);
      this.socket = null;
    }
    this.setState("closed");
  }
}
