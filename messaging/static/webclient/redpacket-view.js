// Red packets in chats (docs/protocol.md §9): the send form, the red bubble, opening
// a packet, and its details. Amounts travel in fen; people type and read yuan.
//
// What a bubble shows for *me* (opened by me, my amount and whether it has reached
// my wallet, all taken, expired, how many opened it) is not in the message: it comes
// from `message_update` entries (every device of every member gets them), from the
// answer to my own grab, and, for a packet the client knows nothing about yet (after
// a reload, in history), from the packet's details asked once.

import { modal, toast } from "./dialogs.js";
import { avatar, h, replace } from "./dom.js";
import { clockTime, separatorTime } from "./format.js";
import { parseYuan, yuan } from "./wallet-view.js";
import { t } from "./i18n.js";

export const REDPACKETS_FEATURE = "redpackets";
const GREETING_MAX = 25;
const DEFAULT_GREETING = t("Best wishes");
const SEND_ATTEMPTS = 4; // a send answered by nothing is repeated, with the same client id
const RETRYABLE = new Set(["link_lost", "timeout", "network_error", "server_error"]);
const FALLBACK_COVERS = [{ id: "default", title: t("Red packet") }];

/** What each refusal means for the person sending or opening (docs/protocol.md §9). */
const ERROR_TEXT = {
  insufficient_funds: t("Your wallet balance is too low for this red packet. Top it up in Wallet."),
  redpackets_disabled: t("Red packets are switched off for you right now."),
  redpacket_client_id_reused: t("This red packet clashed with an earlier one; please send it again."),
  conversation_not_found: t("This chat is no longer available."),
  not_friends: t("You can only send red packets to friends."),
  blocked: t("This person does not accept your messages."),
  throttled: t("You are sending too fast; wait a moment."),
  redpacket_own: t("Only the other side can open a red packet you sent in a 1:1 chat."),
  redpacket_not_found: t("This red packet is not available to you."),
};

export function errorText(error) {
  if (ERROR_TEXT[error.code]) return ERROR_TEXT[error.code];
  const details = error.details || {};
  if (error.code === "redpacket_invalid" && details.limit !== undefined) {
    // The server counts in fen; people read yuan.
    if (details.field === "total_amount") return t("At most {amount} per red packet.", { amount: yuan(details.limit) });
    if (details.field === "shares") return t("At most {n} share(s) in this chat.", { n: details.limit });
    if (details.field === "greeting") return t("A greeting has at most {n} characters.", { n: details.limit });
  }
  if (RETRYABLE.has(error.code)) return t("The server did not answer; try again (no packet is sent twice).");
  return error.message || t("Something went wrong.");
}

export class RedPackets {
  constructor(app) {
    this.app = app;
    this.states = new Map(); // packet id → {state, opened, amount, credit, opened_count, shares, …}
    this.asked = new Set(); // packets whose details were asked for, to learn their state
    this.covers = null;
    this.watchers = new Map(); // packet id → callbacks of open dialogs
  }

  // --- What the client knows ---------------------------------------------------------

  state(packetId) {
    return this.states.get(Number(packetId)) || null;
  }

  /** A `message_update` entry's payload: a later entry replaces what an earlier one said. */
  applyUpdate(payload) {
    const update = payload && payload.redpacket;
    if (!update || !update.packet_id) return;
    const id = Number(update.packet_id);
    const known = this.states.get(id) || {};
    this.states.set(id, { ...known, ...update, message: payload.message, fresh: (known.fresh || 0) + 1 });
    this.changed(id);
  }

  /** The answer to my grab (or my details): what it says about me. */
  learn(packetId, facts) {
    const id = Number(packetId);
    const known = this.states.get(id) || {};
    const next = { ...known };
    for (const [name, value] of Object.entries(facts)) if (value !== undefined) next[name] = value;
    this.states.set(id, next);
    this.changed(id);
  }

  changed(packetId) {
    for (const callback of this.watchers.get(packetId) || []) callback();
    this.app.scheduleRender();
  }

  watch(packetId, callback) {
    const id = Number(packetId);
    if (!this.watchers.has(id)) this.watchers.set(id, new Set());
    this.watchers.get(id).add(callback);
    return () => this.watchers.get(id).delete(callback);
  }

  /** A bubble on screen whose state we do not know: ask its details, once. */
  ensureState(packetId) {
    const id = Number(packetId);
    if (this.states.has(id) || this.asked.has(id)) return;
    this.asked.add(id);
    this.details(id).catch((error) => {
      // Asked again on a later render only if the answer was lost, not refused.
      if (RETRYABLE.has(error.code)) this.asked.delete(id);
    });
  }

  async details(packetId) {
    const id = Number(packetId);
    const fresh = (this.state(id) || {}).fresh || 0;
    const detail = await this.app.api.redPacket(id);
    for (const grab of detail.grabs || []) this.app.store.rememberUser({ id: grab.user, nickname: grab.nickname });
    this.app.store.rememberUser({ id: detail.sender, nickname: detail.sender_nickname });
    // An entry that came while we asked is at least as new as this answer.
    if (((this.state(id) || {}).fresh || 0) === fresh) {
      this.learn(id, {
        state: detail.state,
        opened: detail.my_amount !== null,
        amount: detail.my_amount,
        credit: detail.my_credit,
        opened_count: detail.opened_count,
        shares: detail.shares,
        refunded_amount: detail.refunded_amount,
      });
    }
    return detail;
  }

  // --- Actions ----------------------------------------------------------------------------

  async loadCovers() {
    if (this.covers) return this.covers;
    try {
      this.covers = await this.app.api.redPacketCovers();
    } catch {
      return FALLBACK_COVERS; // a cover is decoration: send with the default one
    }
    return this.covers;
  }

  /** Send through the link (or HTTP while it is down), repeating the same client id. */
  async send(fields) {
    let lastError = null;
    for (let attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
      if (attempt) await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
      try {
        if (this.app.link.isUp()) return await this.app.link.request({ type: "redpacket.send", ...fields });
        return await this.app.api.sendRedPacket(fields);
      } catch (error) {
        lastError = error;
        if (!RETRYABLE.has(error.code)) throw error;
      }
    }
    throw lastError;
  }

  async grab(packetId) {
    const ask = () => (this.app.link.isUp()
      ? this.app.link.request({ type: "redpacket.grab", packet: Number(packetId) })
      : this.app.api.grabRedPacket(packetId));
    let answer;
    try {
      answer = await ask();
    } catch (error) {
      // Opening is safe to repeat: a second try answers `already` with the same share.
      if (!RETRYABLE.has(error.code)) throw error;
      answer = await ask();
    }
    const facts = { state: answer.state };
    if (answer.amount !== null && answer.amount !== undefined) {
      Object.assign(facts, { opened: true, amount: answer.amount, credit: answer.credit });
    }
    this.learn(packetId, facts);
    return answer;
  }

  /** May I send packets? Only a `redpackets` flag that says off hides the action. */
  sendingEnabled() {
    const flags = this.app.flags;
    return !flags.values.has(REDPACKETS_FEATURE) || flags.enabled(REDPACKETS_FEATURE);
  }
}

// --- The bubble ------------------------------------------------------------------------

/** The bubble's state as a short signature (for the chat's keyed rendering). */
export function packetSignature(message, app) {
  const body = message.body || {};
  const state = app.redpackets.state(body.packet_id);
  return state ? [state.state, state.opened, state.amount, state.credit, state.opened_count] : null;
}

/** Status line of a bubble, for me. */
function statusText(state, mine, conv) {
  if (!state) return mine ? t("Red packet") : t("Tap to open");
  const direct = conv && conv.kind === "direct";
  const settled = { finished: t("All taken"), expired: t("Expired") }[state.state] || "";
  if (mine && direct) return { open: t("Not opened yet"), finished: t("Opened"), expired: t("Expired") }[state.state] || "";
  const parts = [];
  if (state.opened) parts.push(t("Opened · {amount}", { amount: yuan(state.amount) }) + (state.credit === "arriving" ? t(" · arriving") : ""));
  if (settled && (mine || !state.opened)) parts.push(settled);
  if (mine) parts.push(t("{opened}/{shares} opened", { opened: state.opened_count || 0, shares: state.shares }));
  if (!parts.length) parts.push(t("Tap to open"));
  return parts.join(" · ");
}

export function packetBubble(message, app) {
  const body = message.body || {};
  const mine = message.sender === app.store.me.id;
  const conv = app.store.conversation(message.conversation);
  const state = app.redpackets.state(body.packet_id);
  if (!state) app.redpackets.ensureState(body.packet_id);
  const cover = body.cover || { id: "default", title: t("Red packet") };
  const done = state && (state.opened || state.state !== "open");
  return h("button", {
    type: "button",
    class: `redpacket-bubble cover-${safeClass(cover.id)}${done ? " redpacket-done" : ""}`,
    testid: "redpacket-bubble",
    dataset: {
      packetId: String(body.packet_id),
      state: state ? state.state : "unknown",
      opened: String(Boolean(state && state.opened)),
      credit: (state && state.credit) || "",
    },
    // Pointer taps are the row's (packetTaps); a click with no pointer (Enter or
    // Space on the focused button) opens it here.
    onclick: (event) => {
      if (event.detail === 0) openPacket(message, app);
    },
  },
  h("span", { class: "redpacket-top" },
    h("span", { class: "redpacket-seal", "aria-hidden": "true" }, cover.id === "surname" && cover.surname ? cover.surname : "¥"),
    h("span", { class: "redpacket-text" },
      h("span", { class: "redpacket-greeting", testid: "redpacket-greeting" }, body.greeting || DEFAULT_GREETING),
      h("span", { class: "redpacket-status", testid: "redpacket-status" }, statusText(state, mine, conv)))),
  h("span", { class: "redpacket-foot" },
    h("span", { testid: "redpacket-cover", dataset: { cover: cover.id } }, cover.id === "default" ? "" : coverLabel(cover)),
    h("span", {}, t("Red packet"))));
}

function coverLabel(cover) {
  if (cover.id === "surname" && cover.surname) return t("{surname} family cover", { surname: cover.surname });
  return cover.title || t("Red packet");
}

function safeClass(text) {
  return String(text || "default").replace(/[^a-z0-9_-]/gi, "") || "default";
}

/** Pointer taps on a row's red packet bubble, listened to on the row, which lives as
 * long as the message: the bubble itself is rebuilt whenever the packet's state
 * arrives or changes (someone else opened a share), and a press on the old button
 * released on the new one makes no click at all, so the tap was lost. */
export function packetTaps(row, app) {
  if (row.__packetTaps) return;
  row.__packetTaps = true;
  let pressed = null; // the pointer that went down on this row's bubble
  const onBubble = (event) => event.target instanceof Element && event.target.closest(".redpacket-bubble");
  row.addEventListener("pointerdown", (event) => {
    pressed = event.button === 0 && onBubble(event) ? event.pointerId : null;
  });
  row.addEventListener("pointerup", (event) => {
    const tapped = pressed !== null && pressed === event.pointerId && onBubble(event);
    pressed = null;
    const message = row.__message;
    if (tapped && message && message.kind === "redpacket") openPacket(message, app);
  });
  row.addEventListener("pointercancel", () => {
    pressed = null;
  });
}

/** Tap on a bubble: open it (grab), or, if it is mine in a 1:1 or already settled, its details. */
function openPacket(message, app) {
  const body = message.body || {};
  const mine = message.sender === app.store.me.id;
  const conv = app.store.conversation(message.conversation);
  const state = app.redpackets.state(body.packet_id);
  if ((mine && conv && conv.kind === "direct") || (state && (state.opened || state.state !== "open"))) {
    detailsDialog(body.packet_id, app);
    return;
  }
  openDialog(message, app);
}

/** The classic 開 card: sender, greeting, the Open button, then what came of it. */
function openDialog(message, app) {
  const body = message.body || {};
  const name = app.store.nameOf(message.sender);
  const result = h("div", { class: "redpacket-result", testid: "redpacket-result", role: "status" });
  let close;
  const open = h("button", {
    type: "button", class: "redpacket-open", testid: "redpacket-open", "aria-label": t("Open"),
    onclick: async () => {
      open.disabled = true;
      try {
        const answer = await app.redpackets.grab(body.packet_id);
        showOutcome(result, answer);
        open.hidden = true;
        more.hidden = false;
      } catch (error) {
        open.disabled = false;
        replace(result, h("p", { class: "error", testid: "redpacket-error" }, errorText(error)));
      }
    },
  }, t("Open"));
  const more = h("button", {
    type: "button", class: "btn btn-link", testid: "redpacket-details-link", hidden: true,
    onclick: () => {
      close();
      detailsDialog(body.packet_id, app);
    },
  }, t("See who opened it"));
  close = modal("redpacket-open-dialog", t("Red packet"), h("div", { class: `redpacket-card cover-${safeClass(body.cover && body.cover.id)}` },
    avatar(name, message.sender, { size: 48 }),
    h("p", { class: "redpacket-from" }, t("From {name}", { name })),
    h("p", { class: "redpacket-card-greeting" }, body.greeting || DEFAULT_GREETING),
    open, result, more), (done) => [h("button", { type: "button", class: "btn", testid: "redpacket-close", onclick: done }, t("Close"))]);
}

function showOutcome(node, answer) {
  if (answer.amount !== null && answer.amount !== undefined) {
    replace(node,
      h("p", { class: "redpacket-amount", testid: "redpacket-amount", dataset: { fen: String(answer.amount) } }, yuan(answer.amount)),
      h("p", { class: "muted small", testid: "redpacket-credit" },
        answer.credit === "credited" ? t("In your wallet") : t("Arriving in your wallet")));
    return;
  }
  replace(node, h("p", { class: "redpacket-missed", testid: "redpacket-missed", dataset: { outcome: answer.outcome } },
    answer.outcome === "expired" ? t("This red packet has expired.") : t("All taken: you were a little late.")));
}

/** Who got how much and when, and the luckiest; kept current while open. */
export function detailsDialog(packetId, app) {
  const body = h("div", { class: "redpacket-details", testid: "redpacket-details" }, h("p", { class: "muted" }, t("Loading…")));
  let stopped = false;
  const load = () => app.redpackets.details(packetId)
    .then((detail) => {
      if (!stopped) fillDetails(body, detail, app);
    })
    .catch((error) => {
      if (!stopped) replace(body, h("p", { class: "error", testid: "redpacket-error" }, errorText(error)));
    });
  let timer = null;
  const unwatch = app.redpackets.watch(packetId, () => {
    clearTimeout(timer);
    timer = setTimeout(load, 150); // several entries at once: ask once
  });
  modal("redpacket-details-dialog", t("Red packet details"), body,
    (close) => [h("button", { type: "button", class: "btn", testid: "redpacket-details-close", onclick: close }, t("Close"))],
    () => {
      stopped = true;
      clearTimeout(timer);
      unwatch();
    });
  load();
}

function fillDetails(node, detail, app) {
  const me = app.store.me.id;
  const who = (id, nickname) => (id === me ? t("You") : app.store.nameOf(id) || nickname);
  const stateText = { open: "", finished: t("All taken"), expired: t("Expired") }[detail.state] || "";
  const summary = t("{opened}/{shares} opened · {amount}/{total}", { opened: detail.opened_count, shares: detail.shares, amount: yuan(detail.opened_amount), total: yuan(detail.total_amount) })
    + (detail.refunded_amount ? t(" · {amount} refunded", { amount: yuan(detail.refunded_amount) }) : "");
  replace(node,
    h("p", { class: "redpacket-details-from" }, t("Red packet from {name}", { name: who(detail.sender, detail.sender_nickname) }),
      detail.shares > 1 ? (detail.kind === "lucky" ? t(" · Lucky") : t(" · Equal")) : ""),
    h("p", { class: "redpacket-card-greeting" }, detail.greeting || DEFAULT_GREETING),
    detail.my_amount !== null
      ? h("p", { class: "redpacket-amount", testid: "redpacket-my-amount", dataset: { fen: String(detail.my_amount) } },
        yuan(detail.my_amount),
        detail.my_credit === "arriving" ? h("span", { class: "muted small" }, t(" arriving")) : null)
      : null,
    h("p", { class: "muted small", testid: "redpacket-summary", dataset: { state: detail.state } },
      stateText ? `${stateText} · ${summary}` : summary),
    h("ol", { class: "redpacket-grabs", testid: "redpacket-grabs" },
      (detail.grabs || []).map((grab) => h("li", {
        class: "redpacket-grab", testid: "redpacket-grab",
        dataset: { user: String(grab.user), amount: String(grab.amount), credit: grab.credit },
      },
      avatar(grab.nickname, grab.user, { size: 28 }),
      h("span", { class: "redpacket-grab-who" },
        h("span", { testid: "redpacket-grab-name" }, who(grab.user, grab.nickname)),
        h("span", { class: "muted small" }, separatorTime(grab.opened_at) || clockTime(grab.opened_at))),
      h("span", { class: "redpacket-grab-amount" },
        h("span", { testid: "redpacket-grab-amount" }, yuan(grab.amount)),
        detail.luckiest === grab.user ? h("span", { class: "redpacket-luckiest", testid: "redpacket-luckiest" }, t("Luckiest")) : null,
        grab.credit === "arriving" ? h("span", { class: "muted small" }, "arriving") : null)))),
    detail.grabs && detail.grabs.length ? null : h("p", { class: "muted", testid: "redpacket-no-grabs" }, t("Nobody has opened it yet.")));
}

// --- Sending --------------------------------------------------------------------------

/** The send form of a chat: amount, shares and kind in groups, greeting, cover. */
export async function sendDialog(conv, app) {
  const group = conv.kind === "group";
  const covers = await app.redpackets.loadCovers();
  const amount = h("input", { class: "input", testid: "redpacket-amount-input", inputmode: "decimal",
    placeholder: group ? t("Total, e.g. 8.88") : t("Amount, e.g. 8.88"), "aria-label": t("Amount in yuan") });
  const shares = h("input", { class: "input", testid: "redpacket-shares-input", type: "number", min: "1",
    step: "1", value: String(Math.min(Math.max(conv.memberCount || 2, 1), 5)), "aria-label": t("Number of shares") });
  const kind = h("select", { class: "input", testid: "redpacket-kind", "aria-label": t("Kind") },
    h("option", { value: "lucky" }, t("Lucky (random amounts)")),
    h("option", { value: "equal" }, t("Equal (same amount each)")));
  const greeting = h("input", { class: "input", testid: "redpacket-greeting-input", maxlength: String(GREETING_MAX),
    placeholder: DEFAULT_GREETING, "aria-label": t("Greeting") });
  const cover = h("select", { class: "input", testid: "redpacket-cover-select", "aria-label": t("Cover") },
    covers.map((c) => h("option", { value: c.id }, c.title)));
  const surname = h("input", { class: "input", testid: "redpacket-surname", maxlength: "2", placeholder: t("Surname, e.g. 王"),
    "aria-label": t("Surname"), hidden: true });
  cover.addEventListener("change", () => {
    surname.hidden = cover.value !== "surname";
  });
  const error = h("p", { class: "error", testid: "redpacket-error", role: "alert", hidden: true });
  const field = (label, input) => h("label", { class: "redpacket-field" }, h("span", { class: "muted small" }, label), input);
  let draft = null; // {clientId, signature}: a retry of the same packet reuses its client id
  let sendButton;
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  const submit = async (close) => {
    error.hidden = true;
    const fen = parseYuan(amount.value);
    const count = group ? Number(shares.value) : 1;
    if (fen === null || fen <= 0) return fail(t("Enter an amount in yuan, like 8.88."));
    if (!Number.isInteger(count) || count < 1) return fail(t("Enter how many shares, 1 or more."));
    if (fen < count) return fail(t("Each share needs at least ¥0.01."));
    const fields = {
      conversation: conv.id,
      kind: group ? kind.value : "equal",
      total_amount: fen,
      shares: count,
      greeting: greeting.value.trim(),
      cover: cover.value || "default",
    };
    if (cover.value === "surname") fields.surname = surname.value.trim();
    const signature = JSON.stringify(fields);
    if (!draft || draft.signature !== signature) draft = { clientId: `rp-${crypto.randomUUID()}`, signature };
    sendButton.disabled = true;
    try {
      const ack = await app.redpackets.send({ ...fields, client_id: draft.clientId });
      draft = null;
      close();
      if (ack.cover_fallback) toast("The cover was not available; the packet went out with the default one.");
      app.wallet.refresh().catch(() => {});
    } catch (failure) {
      // Refused: a new attempt is a new packet. Unanswered: the same id, never a second packet.
      if (!RETRYABLE.has(failure.code)) draft = null;
      fail(errorText(failure));
    } finally {
      sendButton.disabled = false;
    }
    return undefined;
  };
  modal("redpacket-send-dialog", group ? t("Send a red packet to the group") : t("Send a red packet"), [
    field(group ? t("Total amount (¥)") : t("Amount (¥)"), amount),
    group ? field(t("Shares"), shares) : null,
    group ? field(t("Kind"), kind) : null,
    field(t("Greeting"), greeting),
    field(t("Cover"), cover),
    surname,
    error,
  ], (close) => {
    sendButton = h("button", { type: "button", class: "btn btn-redpacket", testid: "redpacket-send", onclick: () => submit(close) },
      "Put money in");
    return [h("button", { type: "button", class: "btn", onclick: close }, t("Cancel")), sendButton];
  });
  setTimeout(() => amount.focus(), 0);
}
