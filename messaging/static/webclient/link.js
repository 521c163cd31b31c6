// The SYNC link (docs/protocol.md), with link management in the spirit of Mars:
//
// - one long websocket; the ticket travels as a subprotocol, never in the URL;
// - heartbeats at the interval the server suggests; a heartbeat that goes
//   unanswered means a dead link; `heartbeat.ack.max_seq` above the key means a
//   notify was lost, so sync;
// - on a dropped link: try the next access endpoint at once (failover), and back
//   off exponentially with jitter only after a full round of endpoints failed;
// - resume from the sync key (kept durably by the caller): only entries with
//   seq > key are ever applied, in seq order, so each arrives once and in order;
// - send through the outbox, one message at a time in send order, resending
//   everything unacknowledged (same client_msg_id) on every reconnect;
// - obey throttle frames: nothing is sent before `retry_after` has passed; a
//   tier-2 throttle (the traffic guard, closing the link with 4029) also means no
//   reconnecting before then, whatever the network or the user says;
// - report delivery receipts: each message from someone else, once, about a
//   second after it was shown, with how long ago (`receipt` frame).
//
// This mirrors messaging/client.py.

export const SUBPROTOCOL = "wechat.sync.v1";
const CLOSE_TICKET = 4001;
const CLOSE_GUARD = 4029; // the traffic guard: stay away for the throttle's retry_after
const RECEIPT_EVERY_MS = 1000;
const OPEN_TIMEOUT_MS = 5000;
const HELLO_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 15000;
const STABLE_AFTER_MS = 3000; // a link this old resets the backoff
const SYNC_LIMIT = 200;

/** An error frame answering one of our requests. */
export class ServerError extends Error {
  constructor(frame) {
    super(frame.message || frame.code || "error");
    this.code = String(frame.code || "error");
    this.details = frame.details || {};
  }
}

export class LinkLost extends Error {
  constructor(message = "link lost") {
    super(message);
    this.code = "link_lost";
  }
}

export class RequestTimeout extends Error {
  constructor() {
    super("no answer in time");
    this.code = "timeout";
  }
}

/** Exponential backoff with full jitter: min(cap, base * 2^n) * random[0, 1). */
export class Backoff {
  constructor(baseMs = 200, capMs = 10000) {
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.attempt = 0;
  }
  next() {
    const delay = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
    this.attempt += 1;
    return Math.random() * delay;
  }
  reset() {
    this.attempt = 0;
  }
}

/**
 * Options:
 *   ticket, endpoints(): Promise<string[]>, key: {get(), set(n)}, outbox: Outbox,
 *   onEntries(entries, conversations), onAck(item, ack), onSendFailed(item, error),
 *   onSynced({first, fresh}), onFatal(error), onState(snapshot), onHello(frame)?
 */
export class Link {
  constructor(options) {
    this.options = options;
    this.ticket = options.ticket;
    this.outbox = options.outbox;
    this.backoff = new Backoff();
    this.endpoints = [];
    this.endpointIndex = 0;
    this.key = options.key.get();
    this.resumedFrom = this.key; // null: this browser never synced this user
    this.ws = null;
    this.up = false; // hello received on the current socket
    this.state = "idle"; // idle | connecting | online | waiting | stopped | fatal
    this.endpoint = null;
    this.connects = 0;
    this.failures = 0;
    this.waitUntil = 0;
    this.throttledUntil = 0;
    this.stoppedUntil = 0; // a tier-2 throttle: no reconnect before this
    this.shown = []; // [message id, performance.now()] not reported yet
    this.receiptsSent = 0;
    this.heartbeatSeconds = 30;
    this.requests = new Map();
    this.requestSeq = 0;
    this.syncWanted = false;
    this.syncing = false;
    this.pumping = false;
    this.stopped = false;
    this.wake = null; // resolves the current backoff wait early
    this.firstSyncOfLink = false;
    this.duplicates = 0; // acks that were for messages the server already had
    this.loseAck = false; // test hook: drop the link instead of taking the next send.ack
    this.ignoreNotifies = false; // test hook: lose every notify (heartbeats must cover)
    this.notifiesIgnored = 0;
    this.heartbeats = 0; // heartbeat.acks received
    this.lastError = null;
  }

  // --- Public ------------------------------------------------------------------------

  start() {
    if (this.running) return;
    this.running = this.run();
    this.receiptTimer = setInterval(() => this.sendReceipts(), RECEIPT_EVERY_MS);
  }

  /** The app showed these messages (from others): report them in the next receipt. */
  reportShown(ids) {
    const now = performance.now();
    for (const id of ids) this.shown.push([id, now]);
  }

  sendReceipts() {
    if (!this.shown.length || !this.isUp()) return;
    const batch = this.shown.splice(0, 100);
    const now = performance.now();
    const messages = batch.map(([id, at]) => ({ id, shown_ago_ms: Math.round(now - at) }));
    this.request({ type: "receipt", messages })
      .then(() => {
        this.receiptsSent += messages.length;
      })
      .catch((error) => {
        if (!(error instanceof ServerError)) this.shown.unshift(...batch); // the next link reports them
      });
  }

  stop() {
    this.stopped = true;
    clearInterval(this.receiptTimer);
    this.setState("stopped");
    if (this.wake) this.wake();
    if (this.ws) this.ws.close(1000, "bye");
    if (this.abandon) this.abandon("stopped");
  }

  /**
   * Break the current link as a lost network would: give the socket up at once
   * (a close handshake cannot finish on a dead network) and reconnect.
   */
  drop(reason = "dropped") {
    if (this.abandon) this.abandon(reason);
  }

  /** Skip the current backoff wait (the network came back, or the user asked). */
  retryNow() {
    if (this.stoppedUntil > Date.now()) return; // the server said to stay away
    this.backoff.reset();
    if (this.wake) this.wake();
  }

  isUp() {
    return this.up && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Tell the link there is something new in the outbox. */
  flushOutbox() {
    this.pump();
  }

  /** Send one frame on the current link and wait for the reply with its id. */
  request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    const ws = this.ws;
    if (!this.isUp()) return Promise.reject(new LinkLost("not connected"));
    const id = `r${++this.requestSeq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(id);
        reject(new RequestTimeout());
      }, timeoutMs);
      this.requests.set(id, { ws, resolve, reject, timer });
      try {
        ws.send(JSON.stringify({ ...frame, id }));
      } catch (error) {
        clearTimeout(timer);
        this.requests.delete(id);
        reject(new LinkLost(String(error)));
      }
    });
  }

  snapshot() {
    return {
      state: this.state,
      connected: this.isUp(),
      key: this.key,
      resumedFrom: this.resumedFrom,
      connects: this.connects,
      outbox: this.outbox.items.length,
      endpoint: this.endpoint,
      endpoints: [...this.endpoints],
      waitUntil: this.waitUntil,
      throttledUntil: this.throttledUntil,
      stoppedUntil: this.stoppedUntil,
      receiptsSent: this.receiptsSent,
      duplicates: this.duplicates,
      notifiesIgnored: this.notifiesIgnored,
      heartbeat: this.heartbeatSeconds,
      heartbeats: this.heartbeats,
      lastError: this.lastError,
    };
  }

  // --- The connection loop ----------------------------------------------------------------

  setState(state, extra = {}) {
    this.state = state;
    Object.assign(this, extra);
    if (this.options.onState) this.options.onState(this.snapshot());
  }

  async refreshEndpoints() {
    try {
      const list = await this.options.endpoints();
      if (list && list.length) {
        const current = this.endpoints[this.endpointIndex % (this.endpoints.length || 1)];
        this.endpoints = list;
        const at = list.indexOf(current);
        this.endpointIndex = at >= 0 ? at : 0;
      }
    } catch (error) {
      this.lastError = `topology: ${error.message}`;
    }
    if (!this.endpoints.length) this.endpoints = [defaultEndpoint()];
  }

  async run() {
    await this.refreshEndpoints();
    while (!this.stopped) {
      const endpoint = this.endpoints[this.endpointIndex % this.endpoints.length];
      this.setState("connecting", { endpoint, waitUntil: 0 });
      const outcome = await this.connectOnce(endpoint);
      if (this.stopped) return;
      if (outcome.fatal) {
        this.stopped = true;
        this.setState("fatal");
        this.options.onFatal(outcome.fatal);
        return;
      }
      const stopped = this.stoppedUntil - Date.now();
      if (stopped > 0) {
        // The traffic guard: wait out retry_after before connecting anywhere.
        this.setState("waiting", { waitUntil: this.stoppedUntil });
        await this.sleep(stopped);
        this.waitUntil = 0;
        continue;
      }
      // Failover: the next endpoint at once; back off after a full round failed.
      this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
      this.failures = (outcome.wasUp ? 0 : this.failures) + 1;
      if (this.failures >= this.endpoints.length) {
        this.failures = 0;
        const delay = this.backoff.next();
        this.setState("waiting", { waitUntil: Date.now() + delay });
        await this.sleep(delay);
        this.waitUntil = 0;
        if (!this.stopped) await this.refreshEndpoints();
      }
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wake === done) self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  /** One websocket, from opening to closing. Resolves {wasUp, fatal}. */
  connectOnce(endpoint) {
    return new Promise((resolve) => {
      let ws;
      try {
        ws = new WebSocket(endpoint, [SUBPROTOCOL, `ticket.${this.ticket}`]);
      } catch (error) {
        this.lastError = `bad endpoint ${endpoint}: ${error.message}`;
        resolve({ wasUp: false });
        return;
      }
      this.ws = ws;
      let wasUp = false;
      let fatal = null;
      let heartbeatTimer = null;
      let stableTimer = null;
      const openTimer = setTimeout(() => abandon("open timeout"), OPEN_TIMEOUT_MS);
      let helloTimer = null;

      const beat = async () => {
        if (this.ws !== ws || !this.up) return;
        try {
          const reply = await this.request(
            { type: "heartbeat" },
            Math.min(this.heartbeatSeconds * 1000, REQUEST_TIMEOUT_MS),
          );
          this.heartbeats += 1;
          if (reply.interval) this.heartbeatSeconds = Number(reply.interval);
          if (Number(reply.max_seq) > this.key) this.requestSync(); // a notify was lost
        } catch (error) {
          if (error instanceof RequestTimeout && this.ws === ws) {
            this.drop("heartbeat unanswered"); // a dead link: reconnect
            return;
          }
        }
        if (this.ws === ws && this.up) {
          heartbeatTimer = setTimeout(beat, this.heartbeatSeconds * 1000);
        }
      };

      ws.onopen = () => {
        clearTimeout(openTimer);
        helloTimer = setTimeout(() => abandon("no hello"), HELLO_TIMEOUT_MS);
      };

      ws.onmessage = (event) => {
        if (this.ws !== ws) return;
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!wasUp) {
          clearTimeout(helloTimer);
          if (frame.type === "hello") {
            wasUp = true;
            this.onHello(frame);
            stableTimer = setTimeout(() => this.backoff.reset(), STABLE_AFTER_MS);
            heartbeatTimer = setTimeout(beat, this.heartbeatSeconds * 1000);
          } else if (frame.type === "error") {
            fatal = new ServerError(frame);
            ws.close();
          }
          return;
        }
        this.dispatch(frame, ws);
      };

      let finished = false;
      const finish = (code) => {
        if (finished) return;
        finished = true;
        clearTimeout(openTimer);
        clearTimeout(helloTimer);
        clearTimeout(heartbeatTimer);
        clearTimeout(stableTimer);
        if (code === CLOSE_GUARD && this.stoppedUntil <= Date.now()) {
          this.stoppedUntil = Date.now() + 60000; // its throttle frame was lost: a minute
        }
        if (code === CLOSE_TICKET && !fatal) {
          fatal = new ServerError({ code: "ticket_refused", message: "The server refused the ticket." });
        }
        if (fatal && !String(fatal.code).startsWith("ticket") && fatal.code !== "not_authenticated") {
          this.lastError = `${fatal.code}: ${fatal.message}`;
          fatal = null; // not about the ticket: just another failed attempt
        }
        if (this.ws === ws) {
          this.ws = null;
          this.up = false;
          this.abandon = null;
        }
        ws.onmessage = null;
        this.failRequests(ws);
        resolve({ wasUp, fatal });
      };
      // Giving a socket up does not wait for its close handshake.
      const abandon = (reason) => {
        this.lastError = reason;
        try {
          ws.close(4000, reason);
        } catch {
          // already closing
        }
        finish(null);
      };
      this.abandon = abandon;
      ws.onclose = (event) => finish(event.code);
    });
  }

  onHello(frame) {
    this.up = true;
    this.lastError = null;
    this.connects += 1;
    if (frame.heartbeat) this.heartbeatSeconds = Number(frame.heartbeat);
    this.firstSyncOfLink = true;
    let fresh = false;
    if (this.key !== null && Number(frame.max_seq) < this.key) {
      // Seqs never go backwards, so this server's log was reset (a development
      // database, a restore): our key means nothing there any more.
      console.warn(`sync key ${this.key} is above the server's max_seq ${frame.max_seq}; starting over`);
      this.key = null;
    }
    if (this.key === null) {
      // A browser that never synced this user starts at the log's end: the REST
      // lists give the state so far (the app reloads them after this first sync).
      this.key = Number(frame.max_seq) || 0;
      this.options.key.set(this.key);
      fresh = true;
    }
    this.freshKey = fresh;
    if (this.options.onHello) this.options.onHello(frame);
    this.setState("online");
    this.requestSync();
    this.pump();
  }

  dispatch(frame, ws) {
    const type = frame.type;
    if (type === "notify") {
      if (this.ignoreNotifies) {
        this.notifiesIgnored += 1;
        return;
      }
      if (Number(frame.seq) > this.key) this.requestSync();
      return;
    }
    const pending = frame.id !== undefined && frame.id !== null ? this.requests.get(String(frame.id)) : null;
    if (type === "throttle" && !pending) {
      this.throttle(frame);
      return;
    }
    if (type === "error" && !pending && String(frame.code).startsWith("ticket")) {
      return; // the close (4001) that follows ends the link for good
    }
    if (!pending) return;
    if (type === "send.ack" && this.loseAck) {
      // Test hook: the server processed the send but its ack is "lost" with the link.
      this.loseAck = false;
      this.drop("ack lost");
      return;
    }
    this.requests.delete(String(frame.id));
    clearTimeout(pending.timer);
    if (type === "error") pending.reject(new ServerError(frame));
    else pending.resolve(frame);
  }

  throttle(frame) {
    const until = Date.now() + Math.max(0, Number(frame.retry_after) || 1) * 1000;
    this.throttledUntil = Math.max(this.throttledUntil, until);
    if (Number(frame.tier) >= 2) this.stoppedUntil = Math.max(this.stoppedUntil, until);
    this.setState(this.state);
  }

  failRequests(ws) {
    for (const [id, pending] of this.requests) {
      if (pending.ws !== ws) continue;
      clearTimeout(pending.timer);
      this.requests.delete(id);
      pending.reject(new LinkLost());
    }
  }

  // --- Sync ---------------------------------------------------------------------------

  requestSync() {
    this.syncWanted = true;
    if (!this.syncing) this.runSync();
  }

  async runSync() {
    this.syncing = true;
    try {
      while (this.syncWanted && this.isUp()) {
        this.syncWanted = false;
        let more = true;
        while (more) {
          const page = await this.request({ type: "sync", key: this.key, limit: SYNC_LIMIT });
          more = this.applyPage(page);
        }
        if (this.firstSyncOfLink) {
          this.firstSyncOfLink = false;
          this.options.onSynced({ fresh: this.freshKey });
          this.freshKey = false;
        }
      }
    } catch (error) {
      // Link lost or a timeout: the reconnect (or the next notify) syncs again.
      if (error instanceof ServerError) this.lastError = `sync: ${error.code}`;
    } finally {
      this.syncing = false;
      if (this.syncWanted && this.isUp()) queueMicrotask(() => this.requestSync());
    }
  }

  /** Apply one sync.result page; returns whether another page waits. */
  applyPage(page) {
    const fresh = [];
    for (const entry of page.entries || []) {
      const seq = Number(entry.seq);
      if (seq > this.key) {
        // Never apply an entry twice; entries come in seq order.
        fresh.push(entry);
        this.key = seq;
      }
    }
    this.key = Math.max(this.key, Number(page.key) || 0);
    if (fresh.length) this.options.onEntries(fresh, page.conversations || {});
    this.options.key.set(this.key);
    this.setState(this.state);
    return Boolean(page.more) && (page.entries || []).length > 0;
  }

  // --- Sending ---------------------------------------------------------------------------

  /** Transmit the outbox in order, one message at a time, until it is empty. */
  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.isUp()) {
        const item = this.outbox.nextPending();
        if (!item) break;
        const wait = this.throttledUntil - Date.now();
        if (wait > 0) {
          this.setState(this.state);
          await new Promise((resolve) => setTimeout(resolve, wait));
          continue;
        }
        item.attempts += 1;
        this.outbox.save();
        const ws = this.ws;
        let reply;
        try {
          reply = await this.request({
            type: "send",
            conversation: item.conversation,
            client_msg_id: item.client_msg_id,
            content: item.content,
          });
        } catch (error) {
          if (error instanceof ServerError) {
            this.outbox.fail(item.client_msg_id, error);
            this.options.onSendFailed(item, error);
            continue;
          }
          if (error instanceof RequestTimeout) continue; // same id again: idempotent
          if (this.isUp() && this.ws !== ws) continue; // already on a new link
          break; // the link is gone: the reconnect resends
        }
        if (reply.type === "throttle") {
          this.throttle(reply);
          continue;
        }
        if (reply.message && reply.message.duplicate) this.duplicates += 1;
        this.outbox.remove(item.client_msg_id);
        this.options.onAck(item, reply.message);
        this.setState(this.state);
      }
    } finally {
      this.pumping = false;
    }
  }
}

export function defaultEndpoint() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/sync`;
}

/** Access endpoints from the topology: unblocked campuses, the answering one first. */
export function endpointsFromTopology(topology) {
  const campuses = (topology && topology.campuses) || [];
  const open = campuses.filter((c) => !c.blocked && Array.isArray(c.endpoints));
  open.sort((a, b) => (b.code === topology.campus) - (a.code === topology.campus));
  const seen = new Set();
  const list = [];
  for (const campus of open) {
    for (const url of campus.endpoints) {
      if (typeof url === "string" && /^wss?:\/\//.test(url) && !seen.has(url)) {
        seen.add(url);
        list.push(url);
      }
    }
  }
  return list.length ? list : [defaultEndpoint()];
}
