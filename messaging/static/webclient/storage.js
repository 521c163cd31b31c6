// Durable client state in localStorage: the device identity, the session, and
// per user the sync key and the outbox. Everything is namespaced under "wc:".

const PREFIX = "wc:";

function read(name, fallback = null) {
  try {
    const raw = localStorage.getItem(PREFIX + name);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function write(name, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(PREFIX + name);
    else localStorage.setItem(PREFIX + name, JSON.stringify(value));
  } catch (error) {
    console.warn("localStorage unavailable", error);
  }
}

/** A random UUID v4, also where crypto.randomUUID is missing (plain-http origins). */
export function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** This browser's stable device id, generated once. */
export function deviceUuid() {
  let value = read("device");
  if (typeof value !== "string" || !/^[0-9a-f-]{36}$/i.test(value)) {
    value = uuid4();
    write("device", value);
  }
  return value;
}

export const session = {
  get: () => read("session"),
  set: (value) => write("session", value),
  clear: () => write("session", null),
};

/** The sync key of one user: the last seq of their log this browser applied. */
export function syncKey(userId) {
  return {
    get() {
      const value = read(`u${userId}:key`);
      return Number.isInteger(value) && value >= 0 ? value : null;
    },
    set(value) {
      write(`u${userId}:key`, value);
    },
  };
}

/**
 * Until when (ms since the epoch) the server told this user's client not to
 * connect (a connection refused as overloaded, the traffic guard): every page and
 * tab of this browser waits it out, reloads included.
 */
export function pausedUntil(userId) {
  return {
    get() {
      const value = read(`u${userId}:paused-until`);
      return Number.isFinite(value) && value > Date.now() ? value : 0;
    },
    set(value) {
      write(`u${userId}:paused-until`, value > Date.now() ? Math.round(value) : null);
    },
  };
}

/**
 * The outbox of one user: every message not yet acknowledged by the server, in
 * send order, each with its client_msg_id. It survives reloads; the link resends
 * everything in it, with the same ids, whenever it (re)connects.
 */
export class Outbox {
  constructor(userId) {
    this.name = `u${userId}:outbox`;
    const stored = read(this.name, []);
    this.items = Array.isArray(stored) ? stored.filter((i) => i && i.client_msg_id) : [];
    this.listeners = new Set();
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  save() {
    write(this.name, this.items.length ? this.items : null);
    for (const listener of this.listeners) listener();
  }

  /** `meta`: what the client shows of the content but does not send (a file's name, size). */
  add(conversation, content, meta = null) {
    const item = {
      client_msg_id: `web-${uuid4()}`,
      conversation,
      content,
      meta,
      created_at: new Date().toISOString(),
      attempts: 0,
      state: "pending", // pending | failed
      error: null,
      matched: null, // id of the synced message believed to be this one
    };
    this.items.push(item);
    this.save();
    return item;
  }

  get(clientMsgId) {
    return this.items.find((i) => i.client_msg_id === clientMsgId) || null;
  }

  /** The oldest message still to transmit (failed ones wait for the user). */
  nextPending() {
    return this.items.find((i) => i.state === "pending") || null;
  }

  pending() {
    return this.items.filter((i) => i.state === "pending");
  }

  forConversation(conversation) {
    return this.items.filter((i) => i.conversation === conversation);
  }

  remove(clientMsgId) {
    const before = this.items.length;
    this.items = this.items.filter((i) => i.client_msg_id !== clientMsgId);
    if (this.items.length !== before) this.save();
  }

  fail(clientMsgId, error) {
    const item = this.get(clientMsgId);
    if (!item) return;
    item.state = "failed";
    item.error = { code: error.code || "error", message: error.message || String(error) };
    this.save();
  }

  /** Try a failed message again, with the same client_msg_id. */
  retry(clientMsgId) {
    const item = this.get(clientMsgId);
    if (!item) return;
    item.state = "pending";
    item.error = null;
    this.save();
  }

  clear() {
    this.items = [];
    this.save();
  }
}

/** Forget everything this browser kept for one user (on logout). */
export function forgetUser(userId) {
  write(`u${userId}:key`, null);
  write(`u${userId}:outbox`, null);
  write(`u${userId}:paused-until`, null);
}
