// The shake page (摇一摇, docs/protocol.md §10, docs/shake.md): the user shakes (the
// button, the space bar, or the phone itself), the page counts the shakes and sends
// at most one shake request per interval the server hands out; it shows the round's
// countdown, the result card with the sponsor, opens (拆) what was won, and passes a
// sponsor packet's extra shares on into a chat as a red packet.
//
// Seed 004's "the front end protects the back end": however fast the user shakes,
// the server sees one request per `interval` (longer in a busy tier), none at all
// once the signed record says the user has won all they may this round, and none
// before a refusal's `retry_after`. Shakes go over HTTP, one at a time.
//
// Seed 003's staggered groups (错峰): in a staggered round the server tells each user
// their group's start (`group.starts_at`); the page counts down to it and sends no shake
// before it (a shake pressed earlier waits for it); a `not_yet` answer (the clocks
// disagreed) is sent again when its `interval` runs out, at the group's start.
//
// Sponsor logos and backgrounds come from the activity's asset manifest, fetched and
// checked ahead of the show (shake-assets.js); a card shows the kept copy.

import { modal, toast } from "./dialogs.js";
import { ShakeAssets } from "./shake-assets.js";
import { avatar, h, icon, renderKeyed, replace } from "./dom.js";
import { countdown } from "./format.js";
import { errorText } from "./redpacket-view.js";
import { yuan } from "./wallet-view.js";
import { t } from "./i18n.js";

// A shake of the phone: this much acceleration (m/s², gravity removed), at most one
// shake per MOTION_GAP_MS however long the phone jerks.
const MOTION_THRESHOLD = 15;
const MOTION_GAP_MS = 500;
// Without a round in sight, the schedule is asked again this often while the page shows.
const SCHEDULE_POLL_MS = 30_000;
// An opened prize reaches the wallet shortly after (payout_fast): asked again this
// often (opening again answers the same, `credited` included), this many times.
const CREDIT_POLL_MS = 1500;
const CREDIT_POLLS = 40;
// Refusals that come before any handler: the shake did not count, so it is sent again
// after `retry_after` plus up to half as much at random (docs/overload.md).
const REFUSALS = new Set(["overloaded", "throttled"]);
const REFUSED_RETRIES = 3;
const FALLBACK_INTERVAL = 5;

export class ShakePage {
  constructor(app) {
    this.app = app;
    this.assets = new ShakeAssets(app); // the sponsors' images, fetched ahead
    this.shakes = 0; // the user's shakes on this page (button, space bar, motion)
    this.sent = 0; // shake requests sent
    this.wanting = false; // a shake waits for the next request the interval allows
    this.inFlight = false;
    this.nextAt = 0; // no request before this (the interval, or a refusal's retry_after)
    this.refusedUntil = 0;
    this.refusals = 0; // in a row
    this.interval = null; // seconds, the server's
    this.tier = 0;
    this.record = null; // the signed record of my wins, carried to the next shake
    this.scheduleToken = null; // carried too (live control's third route)
    this.schedule = null;
    this.group = null; // my staggered group in the schedule's round: {index, count, stagger, starts_at}
    this.scheduleAt = 0;
    this.cappedRound = null; // the round in which I have won all I may…
    this.cappedUntil = 0; // …until it ends
    this.latest = null; // the last answer's outcome: {result, sponsor}
    this.prizes = []; // what I won here, newest first: {packet, opened, forwarded, …}
    this.answers = []; // every request: {sentAt, answeredAt, interval, tier, result, code}
    this.error = "";
    this.shown = false;
    this.timer = null;
    this.ticker = null;
    this.view = null;
    this.lastMotion = 0;
    this.motion = typeof DeviceMotionEvent === "undefined" ? "none"
      : typeof DeviceMotionEvent.requestPermission === "function" ? "ask" : "on";
  }

  // --- Showing and leaving -----------------------------------------------------------

  open() {
    if (this.shown) return;
    this.shown = true;
    document.addEventListener("keydown", this.onKey);
    if (this.motion !== "none") window.addEventListener("devicemotion", this.onMotion);
    this.ticker = setInterval(() => this.tick(), 250);
    this.assets.start();
    this.loadSchedule();
    // Drawn on the next render: then the space bar presses the shake button.
    setTimeout(() => {
      if (this.shown && this.view && this.view.root.isConnected) this.view.button.focus();
    }, 0);
  }

  close() {
    if (!this.shown) return;
    this.shown = false;
    document.removeEventListener("keydown", this.onKey);
    window.removeEventListener("devicemotion", this.onMotion);
    clearInterval(this.ticker);
    this.assets.stop();
  }

  stop() {
    this.close();
    clearTimeout(this.timer);
    this.timer = null;
    this.wanting = false;
    this.stopped = true;
  }

  // The space bar shakes, unless it is typing or pressing a focused control (the shake
  // button, focused when the page opens, shakes by its own click; disabled, by this).
  onKey = (event) => {
    if (event.code !== "Space" && event.key !== " ") return;
    const target = event.target;
    const control = target && target.closest && target.closest("input, textarea, select, button, [contenteditable]");
    if (control && !(this.view && control === this.view.button && control.disabled)) return;
    if (document.querySelector(".overlay")) return; // a dialog is open
    event.preventDefault();
    if (!event.repeat) this.shake("key");
  };

  onMotion = (event) => {
    if (this.motion === "ask") {
      // Motion flows without asking (this browser does not need the permission).
      this.motion = "on";
      this.app.scheduleRender();
    }
    const a = event.acceleration;
    const g = event.accelerationIncludingGravity;
    let force;
    if (a && a.x !== null && a.x !== undefined) force = Math.hypot(a.x || 0, a.y || 0, a.z || 0);
    else if (g && g.x !== null && g.x !== undefined) force = Math.abs(Math.hypot(g.x || 0, g.y || 0, g.z || 0) - 9.81);
    else return;
    const now = Date.now();
    if (force < MOTION_THRESHOLD || now - this.lastMotion < MOTION_GAP_MS) return;
    this.lastMotion = now;
    this.shake("motion");
  };

  /** Where the browser asks the user first (iOS), the sensors' events only come once
   * the user allowed them, from a tap; the listener is there all along. */
  async enableMotion() {
    try {
      const answer = await DeviceMotionEvent.requestPermission();
      this.motion = answer === "granted" ? "on" : "denied";
    } catch {
      this.motion = "denied";
    }
    this.app.scheduleRender();
  }

  // --- Shaking ----------------------------------------------------------------------

  capped() {
    return this.cappedRound !== null && Date.now() < this.cappedUntil;
  }

  /** One shake of the user's: counted, and sent when the interval allows. */
  shake(source = "button") {
    if (this.stopped) return;
    this.shakes += 1;
    this.lastSource = source;
    if (!this.capped()) this.wanting = true;
    this.pump();
    this.app.scheduleRender();
  }

  pump() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.capped()) this.wanting = false;
    if (this.stopped || !this.wanting || this.inFlight) return; // (an answer pumps again)
    const wait = Math.max(this.nextAt, this.groupOpensAt()) - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => this.pump(), wait);
      return;
    }
    this.send();
  }

  async send() {
    this.wanting = false;
    this.inFlight = true;
    this.sent += 1;
    const entry = { sentAt: Date.now(), answeredAt: null, interval: null, tier: null, result: null, code: null };
    this.answers.push(entry);
    this.app.scheduleRender();
    try {
      const answer = await this.app.api.callOnce("POST", "/api/shake", {
        body: { record: this.record, schedule: this.scheduleToken },
      });
      Object.assign(entry, { answeredAt: Date.now(), interval: answer.interval, tier: answer.tier, result: answer.result });
      this.apply(answer);
    } catch (error) {
      entry.answeredAt = Date.now();
      entry.code = error.code;
      this.refused(error);
    } finally {
      this.inFlight = false;
    }
    this.pump();
    this.app.scheduleRender();
  }

  apply(answer) {
    this.error = "";
    this.refusals = 0;
    this.interval = Number(answer.interval) || FALLBACK_INTERVAL;
    this.tier = Number(answer.tier) || 0;
    this.nextAt = Date.now() + this.interval * 1000;
    if (answer.record) this.record = answer.record;
    this.takeSchedule(answer.schedule, answer.group);
    if (answer.result === "not_yet") {
      // Before my group's start: the shake did not count; it goes again at the start
      // (the interval counts down to it).
      this.wanting = true;
      this.latest = { result: "not_yet", packet: null, round: answer.round };
      return;
    }
    if (answer.capped && answer.round) {
      this.cappedRound = answer.round;
      const ends = this.schedule && this.schedule.round === answer.round ? Date.parse(this.schedule.ends_at) : NaN;
      this.cappedUntil = Number.isFinite(ends) ? ends : Date.now() + 3600_000;
      this.wanting = false;
    }
    const packet = answer.result === "packet" ? answer.packet : null;
    this.latest = { result: packet ? "packet" : "nothing", packet, round: answer.round };
    if (packet) this.prizes.unshift({ packet, opened: null, opening: false, forwarded: null, error: "" });
  }

  refused(error) {
    const now = Date.now();
    if (REFUSALS.has(error.code)) {
      // Refused before any handler: the shake did not count; send it again after the wait.
      const seconds = Number(error.details && error.details.retry_after) || FALLBACK_INTERVAL;
      this.nextAt = now + seconds * 1000 * (1 + Math.random() / 2);
      this.refusedUntil = this.nextAt;
      this.tier = Math.max(this.tier, Number(error.details && error.details.tier) || 1);
      this.refusals += 1;
      this.wanting = this.refusals <= REFUSED_RETRIES;
      this.error = "";
      return;
    }
    // Anything else: the shake is dropped, and the next one waits an interval all the same.
    this.nextAt = now + (this.interval || FALLBACK_INTERVAL) * 1000;
    this.error = error.code === "network_error" ? t("No connection to the server.") : error.message;
  }

  takeSchedule(schedule, group) {
    this.scheduleAt = Date.now();
    if (schedule === undefined) return;
    this.schedule = schedule;
    this.group = schedule && group ? group : null;
    if (schedule && schedule.token) this.scheduleToken = schedule.token;
  }

  /** When my group may shake (ms), in a staggered round; 0 when nothing holds me back. */
  groupOpensAt() {
    const g = this.group;
    if (!g || !g.stagger) return 0;
    const at = Date.parse(g.starts_at);
    return Number.isFinite(at) ? at : 0;
  }

  /** The round now (or next), without shaking: the countdown before the first shake. */
  async loadSchedule() {
    if (this.loadingSchedule) return;
    this.loadingSchedule = true;
    try {
      const answer = await this.app.api.callOnce("GET", "/api/shake/schedule");
      this.takeSchedule(answer.schedule, answer.group);
      this.assets.take(answer.assets);
      if (this.interval === null) {
        this.interval = Number(answer.interval) || FALLBACK_INTERVAL;
        this.tier = Number(answer.tier) || 0;
      }
    } catch {
      this.scheduleAt = Date.now(); // asked again later
    } finally {
      this.loadingSchedule = false;
    }
    this.app.scheduleRender();
  }

  /** The round's phase as the page shows it: waiting (countdown), running, paused, none. */
  phase(now = Date.now()) {
    const s = this.schedule;
    if (!s) return { state: "none" };
    const starts = Date.parse(s.starts_at);
    const ends = Date.parse(s.ends_at);
    if (s.ended || (!s.paused && now >= ends)) return { state: "over" };
    if (now < starts) return { state: "waiting", left: Math.max(starts, this.groupOpensAt()) - now };
    if (s.paused) return { state: "paused" };
    const opens = this.groupOpensAt();
    if (now < opens) return { state: "group", left: opens - now };
    return { state: "running", left: ends - now };
  }

  tick() {
    const now = Date.now();
    const phase = this.phase(now);
    // The countdown ran out (has the round started?), or no round is in sight: ask again.
    const stale = now - this.scheduleAt;
    const due = phase.state === "waiting" || phase.state === "group" ? phase.left <= 0 && stale > 2000
      : phase.state !== "running" && stale > SCHEDULE_POLL_MS;
    if (due) this.loadSchedule();
    if (this.view) this.renderClock(now);
  }

  // --- Opening and passing shares on --------------------------------------------------

  async openPrize(prize) {
    if (prize.opening) return;
    prize.opening = true;
    prize.error = "";
    this.app.scheduleRender();
    try {
      prize.opened = await this.reopen(prize);
      if (prize.opened.kind === "coupon") this.followCoupon(prize, 0);
      else if (!prize.opened.credited) this.followCredit(prize, 0);
      else this.app.wallet.refresh().catch(() => {});
    } catch (error) {
      prize.error = openErrorText(error);
    } finally {
      prize.opening = false;
    }
    this.app.scheduleRender();
  }

  reopen(prize) {
    const p = prize.packet;
    return this.app.api.post("/api/shake/open", {
      packet: p.id, round: p.round, amount: p.amount, sponsor: p.sponsor.id, signature: p.signature,
    });
  }

  /** A coupon goes to its business, not the wallet: reads its delivery (GET) until it
   * is delivered, or waits on the user (deferred: no account there yet; failed). */
  followCoupon(prize, polls) {
    if (this.stopped || polls >= CREDIT_POLLS) return;
    const read = async () => {
      try {
        prize.coupon = await this.app.api.get(`/api/shake/coupons/${prize.packet.id}`);
        this.app.scheduleRender();
        if (["delivered", "deferred", "failed"].includes(prize.coupon.state)) return;
      } catch {
        // asked again below
      }
      this.followCoupon(prize, polls + 1);
    };
    if (polls === 0) read();
    else setTimeout(read, CREDIT_POLL_MS);
  }

  /** "Retry delivery" (docs/api.md): deferred or failed goes back to pending. */
  async retryCoupon(prize) {
    if (prize.retrying) return;
    prize.retrying = true;
    prize.error = "";
    this.app.scheduleRender();
    try {
      prize.coupon = await this.app.api.post(`/api/shake/coupons/${prize.packet.id}/retry`, {});
      if (prize.coupon.state !== "delivered") this.followCoupon(prize, 1);
    } catch (error) {
      prize.error = openErrorText(error);
    } finally {
      prize.retrying = false;
    }
    this.app.scheduleRender();
  }

  /** Reads the opened packet (GET, no write) until `credited` says it reached the wallet. */
  followCredit(prize, polls) {
    if (this.stopped || polls >= CREDIT_POLLS) return;
    setTimeout(async () => {
      try {
        const answer = await this.app.api.get(`/api/shake/packets/${prize.packet.id}`);
        prize.opened = answer;
        if (answer.credited) {
          this.app.wallet.refresh().catch(() => {});
          this.app.scheduleRender();
          return;
        }
      } catch {
        // asked again below
      }
      this.followCredit(prize, polls + 1);
    }, CREDIT_POLL_MS);
  }

  /** Pick a chat (a group or a friend) and send the extra shares there as a red packet. */
  forwardDialog(prize) {
    const store = this.app.store;
    const chats = store.sortedConversations().filter((c) => c.kind === "group" || c.kind === "direct");
    const greeting = h("input", { class: "input", testid: "shake-forward-greeting", maxlength: "100",
      placeholder: t("Best wishes"), "aria-label": t("Greeting") });
    const error = h("p", { class: "error", testid: "shake-forward-error", role: "alert", hidden: true });
    let close;
    const pick = async (conv, button) => {
      button.disabled = true;
      error.hidden = true;
      try {
        const sent = await this.app.api.post("/api/shake/shares", {
          packet: prize.packet.id, conversation: conv.id, greeting: greeting.value.trim(),
        });
        prize.forwarded = { ...sent, title: store.title(conv) };
        close();
        toast(t("{n} share(s) sent to {chat}.", { n: sent.shares, chat: store.title(conv) }));
        this.app.wallet.refresh().catch(() => {});
      } catch (failure) {
        error.textContent = failure.code === "shake_shares_unavailable"
          ? t("These shares cannot be passed on any more.") : errorText(failure);
        error.hidden = false;
        button.disabled = false;
      }
      this.app.scheduleRender();
    };
    const list = h("div", { class: "pick-list" }, chats.length
      ? chats.map((conv) => {
        const button = h("button", {
          type: "button", class: "pick-item shake-forward-chat", testid: "shake-forward-chat",
          dataset: { conversationId: String(conv.id), kind: conv.kind },
          onclick: () => pick(conv, button),
        }, avatar(store.title(conv), conv.id, { size: 28, group: conv.kind === "group" }), h("span", {}, store.title(conv)));
        return button;
      })
      : h("p", { class: "muted" }, t("No chats yet.")));
    close = modal("shake-forward-dialog", t("Pass the shares on"), [
      h("p", { class: "muted small" }, t("{n} share(s) worth {amount} together, as a lucky red packet.", {
        n: prize.packet.extra_shares, amount: yuan(prize.opened ? prize.opened.extra_amount : 0),
      })),
      greeting, list, error,
    ], (done) => [h("button", { type: "button", class: "btn", testid: "shake-forward-cancel", onclick: done }, t("Cancel"))]);
  }

  snapshot() {
    return {
      shakes: this.shakes,
      sent: this.sent,
      wanting: this.wanting,
      inFlight: this.inFlight,
      waiting: Boolean(this.timer),
      capped: this.capped(),
      groupOpensAt: this.groupOpensAt(),
      interval: this.interval,
      tier: this.tier,
      answers: this.answers.map((a) => ({ ...a })),
      assets: this.assets.snapshot(),
    };
  }

  // --- Rendering ------------------------------------------------------------------------

  renderSide(container) {
    const sig = `${this.shakes}|${this.prizes.length}`;
    if (container.__sig === sig) return;
    container.__sig = sig;
    replace(container, h("div", { class: "wallet-side-card" },
      h("div", { class: "muted small" }, t("Shakes")),
      h("div", { class: "wallet-side-balance", testid: "shake-side-count" }, String(this.shakes)),
      h("div", { class: "muted small" }, t("Won: {n}", { n: this.prizes.length }))));
  }

  render(main) {
    if (!this.view || main.__shake !== this.view) {
      this.view = this.build();
      main.__shake = this.view;
      replace(main, this.view.root);
    }
    const view = this.view;
    view.count.textContent = String(this.shakes);
    view.motion.hidden = this.motion !== "ask";
    view.error.textContent = this.error;
    view.error.hidden = !this.error;
    this.renderLatest(view.latest);
    renderKeyed(view.prizes, this.prizes, (p) => p.packet.id, (p) => this.prizeCard(p), (node, p) => this.fillPrize(node, p));
    this.renderClock(Date.now());
  }

  /** What changes with the clock: the round's countdown and the shaking state. */
  renderClock(now) {
    const view = this.view;
    const phase = this.phase(now);
    const scheduleText = {
      none: t("No round right now."),
      over: t("This round is over."),
      waiting: t("Next round in {time}", { time: countdown(phase.left || 0) }),
      group: t("Round on · your group's turn in {time}", { time: countdown(phase.left || 0) }),
      paused: t("The round is paused."),
      running: t("Round on · ends in {time}", { time: countdown(phase.left || 0) }),
    }[phase.state];
    setText(view.schedule, scheduleText, { state: phase.state });
    let state;
    let text;
    if (this.capped()) {
      state = "capped";
      text = t("You have won all you may this round.");
    } else if (this.inFlight) {
      state = "sending";
      text = t("Shaking…");
    } else if (this.groupOpensAt() > now) {
      state = "group";
      text = t("Your group starts in {time}: shakes wait until then.", { time: countdown(this.groupOpensAt() - now) });
    } else if (this.refusedUntil > now) {
      state = "refused";
      text = t("The server is overloaded: next shake in {time}", { time: countdown(this.refusedUntil - now) });
    } else if (this.nextAt > now) {
      state = "waiting";
      text = this.wanting ? t("Next shake in {time}", { time: countdown(this.nextAt - now) }) : t("Shake again in {time}", { time: countdown(this.nextAt - now) });
    } else {
      state = "ready";
      text = t("Shake! (button, space bar, or your phone)");
    }
    setText(view.status, text, { state });
    if (view.button.disabled !== (state === "capped")) view.button.disabled = state === "capped";
    const tierText = this.tier > 0 && this.interval
      ? t("The server is busy: tier {tier}, one shake every {n} s.", { tier: this.tier, n: this.interval }) : "";
    setText(view.tier, tierText, { tier: String(this.tier) });
    view.tier.hidden = !tierText;
  }

  renderLatest(node) {
    const latest = this.latest;
    const sig = latest ? `${latest.result}|${latest.packet ? latest.packet.id : ""}|${this.sent}` : "";
    if (node.__sig === sig) return;
    node.__sig = sig;
    node.hidden = !latest;
    if (!latest) return;
    node.dataset.result = latest.result;
    if (latest.result === "not_yet") {
      replace(node, h("p", { testid: "shake-not-yet" }, t("Not your group's turn yet: your shake goes again when it starts.")));
      return;
    }
    if (latest.result === "nothing") {
      replace(node, h("p", { testid: "shake-nothing" }, latest.round === null || latest.round === undefined
        ? t("No round is on: nothing to win right now.") : t("Nothing this time. Shake again!")));
      return;
    }
    const sponsor = latest.packet.sponsor.name;
    replace(node, h("p", { testid: "shake-won" }, latest.packet.kind === "coupon"
      ? t("You won a coupon from {sponsor}!", { sponsor }) : t("You won a red packet from {sponsor}!", { sponsor })));
  }

  prizeCard(prize) {
    const node = h("div", { class: "card shake-prize", testid: "shake-prize", dataset: { packetId: String(prize.packet.id) } });
    this.fillPrize(node, prize);
    return node;
  }

  fillPrize(node, prize) {
    const p = prize.packet;
    const opened = prize.opened;
    // The sponsor's kept images may arrive after the card is drawn: redrawn then.
    const sig = JSON.stringify([opened, prize.opening, prize.forwarded, prize.error, this.assets.held.size,
      prize.coupon, prize.retrying]);
    if (node.__sig === sig) return;
    node.__sig = sig;
    const sponsor = p.sponsor || {};
    const logoUrl = this.assets.urlOf(sponsor.id, "logo") || sponsor.logo_url;
    applyBackground(node, this.assets.urlOf(sponsor.id, "background") || sponsor.background);
    node.dataset.kind = p.kind;
    node.dataset.opened = String(Boolean(opened));
    const logo = logoUrl
      ? h("img", { class: "shake-logo", testid: "shake-sponsor-logo", src: logoUrl, alt: sponsor.name, width: "56", height: "56" })
      : avatar(sponsor.name || "?", sponsor.id || 0, { size: 56 });
    const shares = opened && opened.extra_shares > 0;
    replace(node,
      h("div", { class: "shake-prize-head" }, logo,
        h("div", {},
          h("div", { class: "shake-sponsor", testid: "shake-sponsor-name" }, sponsor.name || t("Red packet")),
          h("div", { class: "muted small" }, prizeKindText(p)))),
      opened && opened.kind === "coupon"
        ? this.couponPart(prize, opened)
        : opened
        ? [h("p", { class: "redpacket-amount", testid: "shake-amount", dataset: { fen: String(opened.amount) } }, yuan(opened.amount)),
          h("p", { class: "muted small", testid: "shake-credit", dataset: { credited: String(opened.credited) } },
            opened.credited ? t("In your wallet") : t("Arriving in your wallet"))]
        : h("button", {
          type: "button", class: "redpacket-open shake-open", testid: "shake-open", "aria-label": t("Open"),
          disabled: prize.opening, onclick: () => this.openPrize(prize),
        }, "拆"),
      shares && !prize.forwarded
        ? h("button", { type: "button", class: "btn btn-redpacket", testid: "shake-forward", onclick: () => this.forwardDialog(prize) },
          t("Forward {n} share(s) · {amount}", { n: opened.extra_shares, amount: yuan(opened.extra_amount) }))
        : null,
      prize.forwarded
        ? h("p", { class: "muted small", testid: "shake-forwarded" },
          t("{n} share(s) sent to {chat}.", { n: prize.forwarded.shares, chat: prize.forwarded.title }))
        : null,
      prize.error ? h("p", { class: "error", testid: "shake-open-error" }, prize.error) : null);
  }

  /** An opened coupon: its face value and where its delivery to the business stands. */
  couponPart(prize, opened) {
    const coupon = prize.coupon;
    const state = coupon ? coupon.state : opened.delivery || "pending";
    const business = (coupon && coupon.business) || t("the business");
    const hours = coupon && coupon.arrives_within_hours ? coupon.arrives_within_hours : 24;
    const text = {
      delivered: t("Coupon delivered to your {business} account.", { business }),
      deferred: t("You have no {business} account yet: open one there, then retry.", { business }),
      failed: t("Delivery to {business} failed for now: it is tried again, or retry now.", { business }),
    }[state] || t("Coupon from {business}: arrives within {hours} h.", { business, hours });
    return [
      h("p", { class: "redpacket-amount", testid: "shake-amount", dataset: { fen: String(opened.amount) } }, yuan(opened.amount)),
      h("p", { class: "muted small", testid: "shake-coupon", dataset: { state } }, text),
      coupon && coupon.can_retry
        ? h("button", { type: "button", class: "btn", testid: "shake-coupon-retry", disabled: Boolean(prize.retrying),
          onclick: () => this.retryCoupon(prize) }, t("Retry delivery"))
        : null,
    ];
  }

  build() {
    const view = {
      count: h("span", { class: "shake-count", testid: "shake-count" }, "0"),
      schedule: h("p", { class: "shake-schedule", testid: "shake-schedule", role: "status" }),
      status: h("p", { class: "muted", testid: "shake-status", role: "status" }),
      tier: h("p", { class: "shake-tier", testid: "shake-tier", hidden: true }),
      error: h("p", { class: "error", testid: "shake-error", hidden: true }),
      latest: h("div", { class: "shake-latest", testid: "shake-result", role: "status", hidden: true }),
      prizes: h("div", { class: "shake-prizes", testid: "shake-prizes" }),
      motion: h("button", { type: "button", class: "btn btn-link", testid: "shake-motion-enable", hidden: true,
        onclick: () => this.enableMotion() }, t("Shake with your phone")),
    };
    view.button = h("button", {
      type: "button", class: "shake-button", testid: "shake-button", "aria-label": t("Shake"),
      onclick: () => this.shake("button"),
    }, icon("shake", 56), h("span", {}, t("Shake")), view.count);
    view.root = h("section", { class: "pane", testid: "shake-page" },
      h("header", { class: "pane-header" }, h("h2", {}, t("Shake"))),
      h("div", { class: "pane-body shake-body" },
        view.schedule, view.button, view.status, view.tier, view.motion, view.error, view.latest, view.prizes));
    return view;
  }
}

function prizeKindText(packet) {
  if (packet.kind === "coupon") return t("Coupon");
  if (packet.kind === "sponsor" && packet.extra_shares) {
    return t("Sponsor red packet · {n} more share(s) to pass on", { n: packet.extra_shares });
  }
  return t("Red packet");
}

function setText(node, text, dataset) {
  if (node.textContent !== text) node.textContent = text;
  for (const [name, value] of Object.entries(dataset)) {
    if (node.dataset[name] !== value) node.dataset[name] = value;
  }
}

/** A sponsor's background: a colour, or an image's address. */
function applyBackground(node, background) {
  const value = String(background || "").trim();
  node.dataset.background = value;
  if (/^(#[0-9a-f]{3,8}|[a-z]+|rgba?\([\d\s.,%]+\))$/i.test(value)) {
    node.style.background = value;
  } else if (/^(https?:|data:image\/|blob:|\/)/i.test(value)) {
    node.style.backgroundImage = `url("${value.replace(/["\\\n]/g, "")}")`;
    node.style.backgroundSize = "cover";
  }
}

function openErrorText(error) {
  if (error.code === "shake_win_invalid") return t("This packet can no longer be opened.");
  if (error.code === "shake_prize_unknown") return t("This packet is unknown.");
  if (error.code === "network_error") return t("No connection to the server.");
  return error.message || t("Something went wrong.");
}
