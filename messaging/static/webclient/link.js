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
// - obey throttle frames: nothing is sent before `retry_after` has passed (plus
//   jitter when the server is overloaded; a refused sync is asked again then); a
//   tier-2 throttle (the traffic guard, closing the link with 4029), or a
//   connection refused as overloaded (a throttle frame before any hello, close
//   4013), also means no reconnecting before then, whatever the network or the
//   user says; that pause is kept in localStorage (`pause`), so a reload of the
//   page, or another tab of the same user, waits it out too;
// - follow `move` frames (the link's campus was blocked, docs/protocol.md §2a):
//   the frame's endpoints first, a reconnect after a random pause within
//   `retry.spread_seconds`, resuming from the sync key;
// - a `home` frame (the user's home is another data centre, §2b) goes to the app
//   first (`onHome`), which may take the user to the home's web client; if it
//   does not (the page is served by the home already), the home's endpoints
//   replace ours for good and the link reconnects there at once, same ticket;
// - report delivery receipts: each message from someone else, once, about a
//   second after it was shown, with how long ago (`receipt` frame); held while
//   the server's tier is above 0 (its last admitted answer's: hello, heartbeat.ack,
//   X-Throttle-Tier; or a refusal's, but only until the refusal's retry time) or a
//   pause is in force, so after a refused reconnect they go at the first tick after
//   the hello; a receipt refused as overloaded is reported again after its wait.
//
// - websockets blocked (a proxy that refuses them) while HTTP works: after a full
//   round of endpoints failed, one quick HTTP sync tells which; then chat over the
//   HTTP long-poll (docs/protocol.md §5: sync, send, read, recall, receipts) and
//   try a websocket again now and then (15 s, doubling to 2 min), returning to it
//   as soon as one says hello (a refused one, a throttle frame then close 4013 or
//   4029, is not "back": its pause is kept as any refused connection's, and the
//   client stays on the long-poll, polling again once the pause is over; one
//   probe at a time). Over HTTP a 429 or 503 is the throttle frame; a refused
//   poll (or the quick sync that chose HTTP) is a refused connection: the same
//   pause, kept in localStorage, before anything connects again.
//
// - composite connect: when the chosen endpoint has not opened within 1.5 s (or
//   failed), the next one is tried beside it, and the first to open is kept;
//   endpoints are ranked by their measured connect time and recent failures,
//   remembered in localStorage (the order the topology gave breaks ties);
// - link statistics (each attempt's outcome and time to connect, heartbeat round
//   trips) go to POST /api/messaging/link-stats every minute: monitoring metrics;
//   not while the server's pause is in force (they wait for the next minute:
//   statistics are the least urgent request there is).
//
// This mirrors messaging/client.py.

export const SUBPROTOCOL = "wechat.sync.v1";
const CLOSE_TICKET = 4001;
const CLOSE_GUARD = 4029; // the traffic guard: stay away for the throttle's retry_after
const CLOSE_OVERLOADED = 4013; // FastReject refused the connection: stay away for retry_after
export const CLOSE_MOVED = 4010; // the campus was blocked: go to the move frame's endpoints
export const CLOSE_HOME = 4021; // the user's home is another data centre: the home frame says where
const RECEIPT_EVERY_MS = 1000;
const OPEN_TIMEOUT_MS = 5000;
const HELLO_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 15000;
const STABLE_AFTER_MS = 3000; // a link this old resets the backoff
const SYNC_LIMIT = 200;
const LONGPOLL_SECONDS = 25; // the server waits this long for an entry (0–30)
const LONGPOLL_GRACE_MS = 10000; // beyond the server's wait, a poll is lost
const PROBE_FIRST_MS = 15000; // in long-poll mode: a websocket tried again after this…
const PROBE_MAX_MS = 120000; // …doubling to this
// Composite connect (Mars' complexconnect): the next endpoint is tried when the
// first has not opened after this long (or has failed), the first to open is kept.
const COMPOSITE_STAGGER_MS = 1500;
const COMPOSITE_MAX = 3; // sockets racing at most
const STATS_EVERY_MS = 60000; // link statistics go to the server this often
const STATS_MAX = 20; // reports per request (settings.MONITORING_LINK_REPORT_MAX_ENTRIES)
const RANKING_KEY = "wc:endpoint-ranking";
const FAILURE_MEMORY_MS = 10 * 60 * 1000; // failures this recent push an endpoint back
const PAUSE_MAX_MS = 10 * 60 * 1000; // a stored pause longer than this is not believed
// HTTP paths of the frames (docs/protocol.md §5); send and recall answer the ack itself.
const HTTP_COMMANDS = {
  send: ["/api/messaging/send", "message"],
  recall: ["/api/messaging/recall", "message"],
  read: ["/api/messaging/read", null],
  receipt: ["/api/messaging/receipts", null],
};

/** An error frame answering one of our requests. */
export class ServerError extends Error {
  constructor(frame) {
    super(frame.message || frame.code || "error");
    this.code = String(frame.code || "error");
    this.details = frame.details || {};
    this.status = null; // the HTTP status of an HTTP answer
  }
}

/**
 * An HTTP request refused for the rate (429) or overload (503) as the websocket's
 * `throttle` frame (docs/protocol.md §5), keeping its tier and reason so that the
 * same rules apply (jitter for `overloaded`, tier 2 keeps the link away); null
 * for any other failure.
 */
export function refusalOf(error) {
  if (!(error instanceof ServerError) || (error.status !== 429 && error.status !== 503)) return null;
  const details = error.details || {};
  return {
    type: "throttle",
    id: null,
    retry_after: Number(details.retry_after) || 1,
    tier: Number(details.tier) || 0,
    reason: details.reason || error.code,
  };
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
 *   onSynced({first, fresh}), onFatal(error), onState(snapshot), onHello(frame)?,
 *   onHome(frame)? (true: the app takes the user elsewhere, the link stops),
 *   pause: {get(), set(ms)}? (durable "no connection before", ms since the epoch)
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
    this.tier = 0; // the server's throttle tier in its last admitted answer (hello, heartbeat.ack, X-Throttle-Tier)
    this.refusalTier = 0; // the tier of the last refusal (throttle): it holds until throttledUntil only
    this.throttleReason = null; // the last throttle's reason ("overloaded", "traffic_guard", none: the rate)
    this.stoppedUntil = 0; // a tier-2 throttle, a refused connection: no reconnect before this
    this.pauseReason = null; // why: "overloaded", "traffic_guard"; null: unknown (another page's pause)
    this.readPause();
    this.shown = []; // [message id, performance.now()] not reported yet
    this.receiptsSent = 0;
    this.heartbeatSeconds = 30;
    this.requests = new Map();
    this.requestSeq = 0;
    this.syncWanted = false;
    this.announced = 0; // the highest seq the server announced (notify, heartbeat, hello)
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
    this.moves = 0; // move frames followed
    this.moveSpreadMs = null; // set by a move frame until the reconnect
    this.lastError = null;
    this.transport = "websocket"; // or "longpoll" (websockets blocked, HTTP works)
    this.fallbacks = 0; // times the link fell back to the long-poll
    this.polls = 0; // long-poll answers received
    this.probeMs = PROBE_FIRST_MS;
    this.pollAbort = null; // aborts the long-poll in flight
    this.probeNow = null; // on the long-poll: try a websocket now
    this.ranking = new EndpointRanking();
    this.reports = []; // link statistics not sent yet
    this.rtts = []; // heartbeat round trips (ms) of the current link, not sent yet
    this.statsSent = 0;
    this.cancelOpen = null; // gives up the composite connect in progress
    this.movedTo = []; // a move frame's endpoints, until a hello
    this.homes = 0; // home frames followed
    this.homeEndpoints = null; // a home frame's endpoints: the only ones from then on
  }

  // --- Public ------------------------------------------------------------------------

  start() {
    if (this.running) return;
    this.running = this.run();
    this.receiptTimer = setInterval(() => this.sendReceipts(), RECEIPT_EVERY_MS);
    this.statsTimer = setInterval(() => this.flushStats().catch(() => {}), STATS_EVERY_MS);
  }

  /** The app showed these messages (from others): report them in the next receipt. */
  reportShown(ids) {
    const now = performance.now();
    for (const id of ids) this.shown.push([id, now]);
  }

  /**
   * The server's throttle tier as far as this client knows now: its last admitted
   * answer's (hello, heartbeat.ack, X-Throttle-Tier), or a refusal's, but a refusal's
   * only until its retry time. A refused reconnect said tier 2 for its pause, not
   * until the next heartbeat: after it, the hello (or the next answer) tells.
   */
  currentTier() {
    return Math.max(this.tier, this.throttledUntil > Date.now() ? this.refusalTier : 0);
  }

  sendReceipts() {
    // Tier above 0, or told to stay away: receipts wait (they are the least urgent frame).
    if (!this.shown.length || !this.isUp() || this.currentTier() || this.pauseLeft()) return;
    const batch = this.shown.splice(0, 100);
    const now = performance.now();
    const messages = batch.map(([id, at]) => ({ id, shown_ago_ms: Math.round(now - at) }));
    this.request({ type: "receipt", messages })
      .then((reply) => {
        if (reply.type === "throttle") {
          // Refused (overloaded, the rate): it did nothing; report them after retry_after.
          this.throttle(reply);
          this.shown.unshift(...batch);
          return;
        }
        this.receiptsSent += messages.length;
      })
      .catch((error) => {
        if (!(error instanceof ServerError)) this.shown.unshift(...batch); // the next link reports them
      });
  }

  stop() {
    this.stopped = true;
    clearInterval(this.receiptTimer);
    clearInterval(this.statsTimer);
    this.setState("stopped");
    if (this.cancelOpen) this.cancelOpen();
    if (this.wake) this.wake();
    if (this.ws) this.ws.close(1000, "bye");
    if (this.abandon) this.abandon("stopped");
    if (this.pollAbort) this.pollAbort.abort();
  }

  /**
   * Break the current link as a lost network would: give the socket up at once
   * (a close handshake cannot finish on a dead network) and reconnect.
   */
  drop(reason = "dropped") {
    if (this.abandon) this.abandon(reason);
    else if (this.cancelOpen) this.cancelOpen();
  }

  /** Skip the current backoff wait (the network came back, or the user asked). */
  retryNow() {
    if (this.stoppedUntil > Date.now()) return; // the server said to stay away
    if (this.probeNow) {
      this.probeNow(); // on the long-poll: try a websocket at once
      return;
    }
    this.backoff.reset();
    if (this.wake) this.wake();
  }

  /** Milliseconds left of the server's pause (a refused connection, a tier-2 throttle):
   * 0 if none. Requests that can wait (statistics, background refreshes) wait this long. */
  pauseLeft() {
    return Math.max(0, this.stoppedUntil - Date.now());
  }

  isUp() {
    if (this.transport === "longpoll") return this.up;
    return this.up && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Tell the link there is something new in the outbox. */
  flushOutbox() {
    this.pump();
  }

  /** Send one frame on the current link and wait for the reply with its id. */
  request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (this.transport === "longpoll") return this.httpRequest(frame, timeoutMs);
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
      throttleReason: this.throttleReason,
      stoppedUntil: this.stoppedUntil,
      pauseReason: this.pauseReason,
      tier: this.currentTier(),
      receiptsPending: this.shown.length,
      receiptsSent: this.receiptsSent,
      duplicates: this.duplicates,
      notifiesIgnored: this.notifiesIgnored,
      heartbeat: this.heartbeatSeconds,
      heartbeats: this.heartbeats,
      moves: this.moves,
      homes: this.homes,
      lastError: this.lastError,
      transport: this.transport,
      fallbacks: this.fallbacks,
      polls: this.polls,
      statsPending: this.reports.length,
      statsSent: this.statsSent,
      ranking: this.ranking.snapshot(),
    };
  }

  // --- The connection loop ----------------------------------------------------------------

  setState(state, extra = {}) {
    this.state = state;
    Object.assign(this, extra);
    if (this.options.onState) this.options.onState(this.snapshot());
  }

  async refreshEndpoints() {
    if (this.homeEndpoints) return; // the topology here is another data centre's
    try {
      const list = await this.options.endpoints();
      if (list && list.length) {
        const current = this.endpoints[this.endpointIndex % (this.endpoints.length || 1)];
        this.endpoints = this.ranking.rank(list); // fastest, least failing first
        const at = this.endpoints.indexOf(current);
        this.endpointIndex = at >= 0 && this.failures ? at : 0;
      }
    } catch (error) {
      this.lastError = `topology: ${error.message}`;
    }
    if (!this.endpoints.length) this.endpoints = [defaultEndpoint()];
  }

  async run() {
    await this.refreshEndpoints();
    while (!this.stopped) {
      // Told to stay away (here, before a reload, or in another tab): wait it out
      // before connecting anywhere.
      this.readPause();
      const paused = this.stoppedUntil - Date.now();
      if (paused > 0) {
        this.setState("waiting", { waitUntil: this.stoppedUntil });
        await this.sleep(paused);
        this.waitUntil = 0;
        continue;
      }
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
      if (this.moveSpreadMs !== null) {
        // Moved: the frame's first endpoint, after a pause that spreads the
        // moved clients' reconnects over the other campuses.
        const spread = this.moveSpreadMs;
        this.moveSpreadMs = null;
        this.endpointIndex = 0;
        this.failures = 0;
        const delay = Math.random() * spread;
        this.setState("waiting", { waitUntil: Date.now() + delay });
        await this.sleep(delay);
        this.waitUntil = 0;
        continue;
      }
      // Refused (the traffic guard, an overloaded server): not a failed endpoint;
      // the top of the loop waits out retry_after.
      if (this.stoppedUntil > Date.now()) continue;
      // Failover: the next endpoint at once; back off after a full round failed.
      this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
      this.failures = (outcome.wasUp ? 0 : this.failures) + 1;
      if (this.failures >= this.endpoints.length) {
        this.failures = 0;
        // Websockets refused everywhere: if HTTP answers, chat over the long-poll.
        if (!this.stopped && (await this.httpWorks())) {
          await this.runLongPoll();
          if (this.stopped) return;
          continue;
        }
        if (this.stoppedUntil > Date.now()) continue; // HTTP refused too: the top waits
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
  async connectOnce(endpoint) {
    const opened = await this.openComposite(endpoint);
    if (!opened.ws || this.stopped) {
      if (opened.ws) opened.ws.close(1000, "bye");
      if (!this.stopped) this.report("websocket", false);
      return { wasUp: false };
    }
    this.endpoint = opened.endpoint;
    const outcome = await this.linkOn(opened.ws, opened);
    if (!outcome.wasUp) this.report("websocket", false);
    return outcome;
  }

  /**
   * Composite connect: `first`, then (after COMPOSITE_STAGGER_MS without an open,
   * or at once when it fails) the next endpoints beside it; the first socket to
   * open wins and the others are closed. Resolves {ws, endpoint, t0} or {}.
   */
  openComposite(first) {
    // After a move frame only the frame's endpoints race: the blocked campus's
    // own endpoints would only move us again.
    const pool = this.movedTo.length ? this.movedTo : this.endpoints;
    const candidates = [first, ...pool.filter((url) => url !== first)].slice(0, COMPOSITE_MAX);
    return new Promise((resolve) => {
      const sockets = [];
      let started = 0;
      let failed = 0;
      let done = false;
      let stagger = null;
      const t0 = performance.now();
      const finish = (result) => {
        if (done) return;
        done = true;
        clearTimeout(stagger);
        clearTimeout(overall);
        this.cancelOpen = null;
        for (const socket of sockets) {
          if (socket === result.ws) continue;
          socket.onopen = socket.onclose = socket.onerror = null;
          try {
            socket.close(1000, "composite: another endpoint answered first");
          } catch {
            // still connecting: closing is all we can do
          }
        }
        resolve(result);
      };
      const failOne = (url, why) => {
        failed += 1;
        this.ranking.failed(url);
        this.lastError = `${url}: ${why}`;
        if (failed >= candidates.length) finish({});
        else if (failed >= started) startNext(); // nothing racing: the next one now
      };
      const startNext = () => {
        if (done || started >= candidates.length) return;
        clearTimeout(stagger);
        const url = candidates[started];
        started += 1;
        const began = performance.now();
        let ws;
        try {
          ws = new WebSocket(url, [SUBPROTOCOL, `ticket.${this.ticket}`]);
        } catch (error) {
          failOne(url, `bad endpoint: ${error.message}`);
          return;
        }
        sockets.push(ws);
        ws.onopen = () => {
          this.ranking.opened(url, performance.now() - began);
          finish({ ws, endpoint: url, t0 });
        };
        ws.onclose = () => {
          if (!done) failOne(url, "closed before opening");
        };
        if (started < candidates.length) stagger = setTimeout(startNext, COMPOSITE_STAGGER_MS);
      };
      const overall = setTimeout(() => {
        for (const url of candidates.slice(failed, started)) this.ranking.failed(url);
        this.lastError = "open timeout";
        finish({});
      }, OPEN_TIMEOUT_MS);
      this.cancelOpen = () => finish({});
      startNext();
    });
  }

  /** One open websocket, from its hello to its close. Resolves {wasUp, fatal}. */
  linkOn(ws, opened) {
    return new Promise((resolve) => {
      this.ws = ws;
      this.rtts = [];
      let wasUp = false;
      let fatal = null;
      let heartbeatTimer = null;
      let stableTimer = null;
      const openTimer = null; // open already (openComposite)
      let helloTimer = setTimeout(() => abandon("no hello"), HELLO_TIMEOUT_MS);

      const beat = async () => {
        if (this.ws !== ws || !this.up) return;
        try {
          const sent = performance.now();
          const reply = await this.request(
            { type: "heartbeat" },
            Math.min(this.heartbeatSeconds * 1000, REQUEST_TIMEOUT_MS),
          );
          if (this.rtts.length < STATS_MAX) this.rtts.push(Math.round(performance.now() - sent));
          this.heartbeats += 1;
          if (reply.interval) this.heartbeatSeconds = Number(reply.interval);
          this.tier = Number(reply.tier) || 0; // FastReject's tier: above 0, slow down
          this.announce(reply.max_seq); // above the key: a notify was lost
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

      ws.onopen = null;
      ws.onerror = null;

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
            this.report("websocket", true, performance.now() - opened.t0);
            this.onHello(frame);
            stableTimer = setTimeout(() => this.backoff.reset(), STABLE_AFTER_MS);
            heartbeatTimer = setTimeout(beat, this.heartbeatSeconds * 1000);
          } else if (frame.type === "error") {
            fatal = new ServerError(frame);
            ws.close();
          } else if (frame.type === "move") {
            this.followMove(frame); // a blocked campus: the close (4010) follows
          } else if (frame.type === "home") {
            this.followHome(frame); // another data centre: the close (4021) follows
          } else if (frame.type === "throttle") {
            // Refused as overloaded (the close, 4013, follows): stay away until retry_after.
            this.refused(frame);
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
        this.refusedByClose(code); // 4029, 4013 whose throttle frame was lost
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
    this.movedTo = [];
    this.probeMs = PROBE_FIRST_MS;
    this.lastError = null;
    this.connects += 1;
    if (frame.heartbeat) this.heartbeatSeconds = Number(frame.heartbeat);
    this.tier = Number(frame.tier) || 0; // admitted: the server says how busy it is now
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
    this.announced = Math.max(this.announced, Number(frame.max_seq) || 0);
    this.requestSync();
    this.pump();
  }

  /** The link's campus is blocked: the frame's endpoints first, ours after them. */
  followMove(frame) {
    const offered = (Array.isArray(frame.endpoints) ? frame.endpoints : []).filter(
      (url) => typeof url === "string",
    );
    this.endpoints = [...offered, ...this.endpoints.filter((url) => !offered.includes(url))];
    this.movedTo = offered;
    if (!this.endpoints.length) this.endpoints = [defaultEndpoint()];
    this.moves += 1;
    const spread = Number((frame.retry || {}).spread_seconds);
    this.moveSpreadMs = Math.max(0, Math.min(30, Number.isFinite(spread) ? spread : 1)) * 1000;
    this.lastError = `campus ${frame.campus} blocked: moving`;
  }

  /** The user's home is another data centre: the app's way, else its endpoints. */
  followHome(frame) {
    this.homes += 1;
    this.lastError = `home is data centre ${frame.datacenter}`;
    if (this.options.onHome && this.options.onHome(frame)) {
      this.stop(); // the page goes to the home's web client
      return;
    }
    const offered = (Array.isArray(frame.endpoints) ? frame.endpoints : []).filter(
      (url) => typeof url === "string" && /^wss?:\/\//.test(url),
    );
    if (!offered.length) return; // nowhere to go: an ordinary failed attempt
    // A ticket is good at home only: its endpoints, and no others, from now on.
    this.homeEndpoints = offered;
    this.endpoints = [...offered];
    this.movedTo = offered;
    this.moveSpreadMs = 0; // not a failure: reconnect at once, without backing off
  }

  dispatch(frame, ws) {
    const type = frame.type;
    if (type === "move") {
      this.followMove(frame);
      return;
    }
    if (type === "notify") {
      if (this.ignoreNotifies) {
        this.notifiesIgnored += 1;
        return;
      }
      this.announce(frame.seq);
      return;
    }
    if (type === "typing") {
      // Another member is writing (best effort, docs/protocol.md §3): the app shows it.
      if (this.onTyping) this.onTyping(frame);
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
    // An overloaded server's refusals get up to half as much again at random, so
    // refused clients do not all come back at once.
    const jitter = frame.reason === "overloaded" ? 1 + Math.random() / 2 : 1;
    const until = Date.now() + Math.max(0, Number(frame.retry_after) || 1) * 1000 * jitter;
    const stillRefused = this.throttledUntil > Date.now() ? this.refusalTier : 0;
    this.refusalTier = Math.max(stillRefused, Number(frame.tier) || 0);
    this.throttledUntil = Math.max(this.throttledUntil, until);
    this.throttleReason = frame.reason || null;
    if (Number(frame.tier) >= 2) this.stayAway(until, this.throttleReason);
    this.setState(this.state);
  }

  /** A connection refused (its `throttle` frame): nothing before retry_after and its jitter. */
  refused(frame) {
    this.throttle(frame);
    this.stayAway(this.throttledUntil, frame.reason || null);
  }

  /** The close of a connection refused without its throttle frame (lost): a pause all the same. */
  refusedByClose(code) {
    if (this.stoppedUntil > Date.now()) return;
    if (code === CLOSE_GUARD) this.stayAway(Date.now() + 60000, "traffic_guard"); // a minute
    if (code === CLOSE_OVERLOADED) this.stayAway(Date.now() + 2000 * (1 + Math.random() / 2), "overloaded");
  }

  /** No connection before `until` (ms since the epoch); kept across reloads and tabs.
   * `reason` (the refusal's: "overloaded", "traffic_guard") is what the app shows. */
  stayAway(until, reason = null) {
    if (until > this.stoppedUntil) this.pauseReason = reason;
    this.stoppedUntil = Math.max(this.stoppedUntil, until);
    if (this.options.pause) this.options.pause.set(this.stoppedUntil);
  }

  /** A pause stored by an earlier page or another tab of this user (bounded: a clock
   * set back, or a damaged entry, must not keep the link away for long). */
  readPause() {
    const stored = this.options.pause ? Number(this.options.pause.get()) || 0 : 0;
    this.stoppedUntil = Math.max(this.stoppedUntil, Math.min(stored, Date.now() + PAUSE_MAX_MS));
  }

  failRequests(ws) {
    for (const [id, pending] of this.requests) {
      if (pending.ws !== ws) continue;
      clearTimeout(pending.timer);
      this.requests.delete(id);
      pending.reject(new LinkLost());
    }
  }

  // --- Link statistics (seed 002's smc) --------------------------------------------------

  /** One link attempt: its transport, whether it connected, how long that took. */
  report(transport, ok, connectMs = null) {
    if (this.reports.length >= STATS_MAX * 5) this.reports.shift(); // a long outage: keep the latest
    this.reports.push({ transport, ok, connect_ms: connectMs === null ? null : Math.round(connectMs) });
  }

  /** Send what was measured since the last time (failures to send are dropped: statistics). */
  async flushStats() {
    // Told to stay away: the statistics wait for the next minute, kept.
    if (this.pauseLeft() > 0) return { counted: 0, deferred: true };
    const reports = this.reports.splice(0, STATS_MAX);
    if (this.rtts.length && reports.length < STATS_MAX) {
      reports.push({ transport: this.transport, ok: null, rtt_ms: this.rtts.splice(0) });
    }
    if (!reports.length) return { counted: 0 };
    const answer = await this.http("POST", "/api/messaging/link-stats", { body: { reports } });
    this.statsSent += reports.length;
    return answer;
  }

  // --- The HTTP long-poll (websockets blocked) ----------------------------------------

  /** One HTTP call with the ticket; resolves the JSON body, rejects like request(). */
  async http(method, path, { body, query, timeoutMs = REQUEST_TIMEOUT_MS, signal } = {}) {
    const controller = new AbortController();
    const abort = () => controller.abort();
    if (signal) signal.addEventListener("abort", abort);
    const timer = setTimeout(abort, timeoutMs);
    let url = path;
    if (query) url += `?${new URLSearchParams(query)}`;
    try {
      const response = await fetch(url, {
        method,
        headers: {
          Accept: "application/json",
          Authorization: `Ticket ${this.ticket}`,
          ...(body ? { "Content-Type": "application/json" } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        credentials: "omit",
        signal: controller.signal,
      });
      const payload = await response.json().catch(() => ({}));
      if (response.ok && this.transport === "longpoll") {
        // Over HTTP the tier comes with every answer (as in heartbeat.ack on a websocket).
        this.tier = Number(response.headers.get("X-Throttle-Tier")) || 0;
      }
      if (!response.ok) {
        const error = new ServerError({ code: payload.code || `http_${response.status}`, message: payload.message, details: payload.details });
        error.status = response.status;
        throw error;
      }
      return payload;
    } catch (error) {
      if (error instanceof ServerError) throw error;
      if (controller.signal.aborted && !(signal && signal.aborted)) throw new RequestTimeout();
      throw new LinkLost(String(error && error.message));
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", abort);
    }
  }

  /** A frame as an HTTP request, its answer shaped as the websocket's reply. */
  async httpRequest(frame, timeoutMs) {
    if (!this.isUp()) throw new LinkLost("not connected");
    if (frame.type === "heartbeat") return { type: "heartbeat.ack" };
    if (frame.type === "sync") {
      try {
        const page = await this.http("GET", "/api/messaging/sync", {
          query: { key: frame.key || 0, limit: frame.limit || SYNC_LIMIT, timeout: 0 },
          timeoutMs,
        });
        return { type: "sync.result", ...page };
      } catch (error) {
        const refusal = refusalOf(error);
        if (refusal) return refusal;
        throw error;
      }
    }
    const route = HTTP_COMMANDS[frame.type];
    if (!route) throw new ServerError({ code: "unknown_frame_type", message: `${frame.type} has no HTTP form` });
    const { type, id, ...body } = frame;
    let answer;
    try {
      answer = await this.http("POST", route[0], { body, timeoutMs });
    } catch (error) {
      // Refused for the rate (429) or overload (503): a throttle, as the websocket says it.
      const refusal = refusalOf(error);
      if (refusal) return refusal;
      throw error;
    }
    return route[1] ? { type: `${type}.ack`, [route[1]]: answer } : { type: `${type}.ack`, ...answer };
  }

  /** Does HTTP reach the server (with this ticket) while websockets do not? */
  async httpWorks() {
    this.httpCheckedAt = performance.now();
    try {
      await this.http("GET", "/api/messaging/sync", { query: { key: this.key || 0, limit: 1, timeout: 0 } });
      return true;
    } catch (error) {
      if (error instanceof ServerError && String(error.code).startsWith("ticket")) return true; // the poll says so
      const refusal = refusalOf(error);
      if (refusal) this.refused(refusal); // the run loop waits it out, then tries again
      return false;
    }
  }

  /**
   * Chat over HTTP until a websocket opens again (or the link stops, or HTTP
   * fails too: then the normal reconnect loop with its backoff resumes).
   */
  async runLongPoll() {
    const pollStarted = this.httpCheckedAt || performance.now();
    this.transport = "longpoll";
    this.fallbacks += 1;
    this.lastError = "websockets blocked: long-poll";
    const abort = new AbortController();
    this.pollAbort = abort;
    this.abandon = (reason) => {
      this.lastError = reason;
      abort.abort();
    };
    let probeTimer = null;
    let probing = false; // a probe's socket is open or opening: no second one beside it
    const probe = () => {
      // A websocket that says hello means the way is clear again: leave the long-poll.
      if (abort.signal.aborted || this.stopped || probing) return;
      const paused = this.stoppedUntil - Date.now();
      if (paused > 0) {
        // Told to stay away (a refused probe, a refused request): no websocket before then.
        probeTimer = setTimeout(probe, paused);
        return;
      }
      const endpoint = this.endpoints[this.endpointIndex % this.endpoints.length];
      let ws;
      try {
        ws = new WebSocket(endpoint, [SUBPROTOCOL, `ticket.${this.ticket}`]);
      } catch {
        ws = null;
      }
      const retry = () => {
        this.probeMs = Math.min(PROBE_MAX_MS, this.probeMs * 2);
        if (!abort.signal.aborted) probeTimer = setTimeout(probe, this.probeMs);
      };
      if (!ws) return retry();
      probing = true;
      let back = false;
      let giveUp = setTimeout(() => ws.close(), OPEN_TIMEOUT_MS);
      ws.onopen = () => {
        // Open is not back yet: an overloaded server opens the socket to refuse it.
        clearTimeout(giveUp);
        giveUp = setTimeout(() => ws.close(), HELLO_TIMEOUT_MS);
      };
      ws.onmessage = (event) => {
        clearTimeout(giveUp);
        ws.onmessage = null;
        let frame = null;
        try {
          frame = JSON.parse(event.data);
        } catch {
          frame = null;
        }
        if (frame && frame.type === "hello") {
          back = true;
          ws.close(1000, "probe");
          this.probeMs = PROBE_FIRST_MS;
          this.lastError = "websocket back";
          abort.abort();
          return;
        }
        // Refused (overloaded, the traffic guard): the pause of a refused connection;
        // the poll in flight goes on, but no new poll or probe before its end. A
        // move, home or error frame is not back either; their close follows.
        if (frame && frame.type === "throttle") this.refused(frame);
        ws.close();
      };
      ws.onclose = (event) => {
        clearTimeout(giveUp);
        probing = false;
        if (back) return;
        this.refusedByClose(event.code); // 4013 or 4029 whose throttle frame was lost
        if (!abort.signal.aborted) retry();
      };
    };
    probeTimer = setTimeout(probe, this.probeMs);
    this.probeNow = () => {
      clearTimeout(probeTimer);
      probe();
    };
    try {
      if (this.key === null) {
        // A browser that never synced this user starts at the log's end (as a hello's max_seq).
        let key = 0;
        for (;;) {
          const page = await this.http("GET", "/api/messaging/sync", { query: { key, limit: SYNC_LIMIT, timeout: 0 }, signal: abort.signal });
          key = Math.max(key, Number(page.key) || 0);
          if (!page.more || !(page.entries || []).length) break;
        }
        this.key = key;
        this.options.key.set(key);
        this.freshKey = true;
      }
      this.up = true;
      this.connects += 1;
      this.report("longpoll", true, performance.now() - pollStarted);
      this.firstSyncOfLink = true;
      this.setState("online");
      this.requestSync(); // what happened while we were away; then the outbox
      this.pump();
      while (!abort.signal.aborted && !this.stopped) {
        // Each poll is a new request: none while told to stay away (a refused probe,
        // a tier-2 throttle, another tab's pause). Wait it out here, on the long-poll:
        // leaving it would only try a websocket next, which a server that refused
        // one refuses again, never coming back to HTTP (docs/protocol.md §5).
        this.readPause();
        const paused = this.stoppedUntil - Date.now();
        if (paused > 0) {
          await untilAborted(paused, abort.signal);
          continue;
        }
        const page = await this.http("GET", "/api/messaging/sync", {
          query: { key: this.key, limit: SYNC_LIMIT, timeout: LONGPOLL_SECONDS },
          timeoutMs: LONGPOLL_SECONDS * 1000 + LONGPOLL_GRACE_MS,
          signal: abort.signal,
        });
        this.polls += 1;
        if (this.syncing) {
          this.announce(Number(page.key) || 0); // the running sync (or the next) applies it
        } else {
          const more = this.applyPage(page);
          if (this.firstSyncOfLink) {
            this.firstSyncOfLink = false;
            this.options.onSynced({ fresh: this.freshKey });
            this.freshKey = false;
          }
          if (more) this.requestSync();
        }
        this.pump();
      }
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal) {
        // A refused poll is a refused connection (docs/protocol.md §2, §5): nothing
        // (poll, websocket, quick sync) before retry_after and its jitter; the run
        // loop waits the pause out, which a reload or another tab keeps too.
        this.refused(refusal);
        this.lastError = `long-poll refused: ${error.code}`;
      } else if (!(error instanceof LinkLost && abort.signal.aborted)) {
        this.lastError = `long-poll: ${error.message}`;
      }
    } finally {
      clearTimeout(probeTimer);
      abort.abort();
      this.probeNow = null;
      this.pollAbort = null;
      this.abandon = null;
      this.up = false;
      this.transport = "websocket";
      this.failRequests(null);
    }
  }

  // --- Sync ---------------------------------------------------------------------------

  announce(seq) {
    this.announced = Math.max(this.announced, Number(seq) || 0);
    if (Number(seq) > this.key) this.requestSync();
  }

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
          if (page.type === "throttle") {
            // Overloaded (docs/overload.md): ask again after retry_after and its jitter.
            this.throttle(page);
            await new Promise((resolve) => setTimeout(resolve, this.throttledUntil - Date.now()));
            continue;
          }
          more = this.applyPage(page);
        }
        // Notifies that came in during the sync are covered by what it returned:
        // sync again only for one above the key (docs/protocol.md §4).
        if (this.announced <= this.key) this.syncWanted = false;
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
          if (error instanceof ServerError && error.code === "server_error") {
            // It may be stored already: the same id again after a pause (docs/protocol.md §4).
            const pause = Math.min(10000, 500 * 2 ** Math.min(item.attempts, 5));
            await new Promise((resolve) => setTimeout(resolve, pause));
            continue;
          }
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

/**
 * Endpoints ranked by what this browser measured (Mars' IP sort): a smoothed
 * connect time, and failures in the last ten minutes each pushing an endpoint
 * back; kept in localStorage across reloads. Unmeasured endpoints keep the
 * topology's order, behind measured ones that work.
 */
export class EndpointRanking {
  constructor(storage = globalThis.localStorage) {
    this.storage = storage;
    this.stats = {};
    try {
      this.stats = JSON.parse(storage.getItem(RANKING_KEY) || "{}") || {};
    } catch {
      this.stats = {};
    }
  }

  save() {
    try {
      this.storage.setItem(RANKING_KEY, JSON.stringify(this.stats));
    } catch {
      // storage refused: ranked for this page only
    }
  }

  entry(url) {
    this.stats[url] = this.stats[url] || { ms: null, failures: [] };
    return this.stats[url];
  }

  opened(url, ms) {
    const entry = this.entry(url);
    entry.ms = entry.ms === null ? Math.round(ms) : Math.round(0.7 * entry.ms + 0.3 * ms);
    this.save();
  }

  failed(url) {
    const now = Date.now();
    const entry = this.entry(url);
    entry.failures = [...entry.failures.filter((at) => now - at < FAILURE_MEMORY_MS), now].slice(-10);
    this.save();
  }

  score(url, index) {
    const entry = this.stats[url];
    const now = Date.now();
    const failures = entry ? entry.failures.filter((at) => now - at < FAILURE_MEMORY_MS).length : 0;
    const ms = entry && entry.ms !== null ? entry.ms : 5000 + index; // unmeasured: in the given order
    return failures * 60000 + ms;
  }

  rank(list) {
    return list.map((url, index) => [this.score(url, index), index, url])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .map(([, , url]) => url);
  }

  snapshot() {
    return JSON.parse(JSON.stringify(this.stats));
  }
}

/** Wait `ms`, or less if `signal` aborts first. */
function untilAborted(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
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
