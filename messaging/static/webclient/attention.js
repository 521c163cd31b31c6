// Getting a person's attention: desktop notifications (the Notification API) and
// a short sound for new messages from others, unless the chat is muted (a mention
// of you, or @all, gets through a mute) or already on screen; and who is typing.

import { h } from "./dom.js";
import { t } from "./i18n.js";

const FRESH_MS = 60 * 1000; // older messages (a backlog synced on login) stay quiet
const MAX_PER_BATCH = 3; // beyond that, one summary notification
const TYPING_SHOW_MS = 6000; // how long "typing…" shows without another notice
const TYPING_SEND_MS = 3000; // MESSAGING_TYPING_INTERVAL_SECONDS: no point sending more often
const NOTIFIED_KINDS = new Set(["text", "image", "file", "redpacket"]);

export class Attention {
  constructor(app) {
    this.app = app;
    this.shown = []; // notifications shown: {title, body, conversation} (tests and curious users)
    this.typingBy = new Map(); // conversation id → Map(user id → until)
    this.typingSent = new Map(); // conversation id → when we last told the server
    this.audio = null;
  }

  supported() {
    return typeof window.Notification === "function";
  }

  permission() {
    return this.supported() ? Notification.permission : "unsupported";
  }

  async requestPermission() {
    if (!this.supported()) return "unsupported";
    const answer = await Notification.requestPermission();
    this.app.scheduleRender();
    return answer;
  }

  /** The "turn on notifications" prompt above the chat list, while the browser has not been asked. */
  banner() {
    if (this.permission() !== "default") return null;
    return h("div", { class: "notify-banner", testid: "notify-banner" },
      h("span", {}, t("Get notified of new messages.")),
      h("button", { type: "button", class: "btn btn-link", testid: "notify-enable", onclick: () => this.requestPermission() },
        t("Turn on desktop notifications")));
  }

  mentionsMe(message) {
    const body = message.body || {};
    return Boolean(body.mention_all) || (Array.isArray(body.mentions) && body.mentions.includes(this.app.store.me.id));
  }

  /** New messages from sync: notify those that deserve it. */
  onMessages(messages) {
    const { store, ui } = this.app;
    const now = Date.now();
    const due = [];
    for (const message of messages) {
      if (!message || message.sender === null || message.sender === store.me.id) continue;
      if (!NOTIFIED_KINDS.has(message.kind) || message.recalled) continue;
      this.stopTyping(message.conversation, message.sender);
      if (now - Date.parse(message.created_at) > FRESH_MS) continue;
      const conv = store.conversation(message.conversation);
      if (!conv) continue;
      const mention = this.mentionsMe(message);
      if (conv.muted && !mention) continue;
      const onScreen = ui.tab === "chats" && ui.openId === conv.id
        && document.visibilityState === "visible" && document.hasFocus();
      if (onScreen) continue;
      due.push({ message, conv, mention });
    }
    if (!due.length) return;
    this.beep();
    if (this.permission() !== "granted") return;
    if (due.length > MAX_PER_BATCH) {
      this.notify(t("WeChat Web"), t("{n} new messages", { n: due.length }), null);
      return;
    }
    for (const { message, conv, mention } of due) {
      const title = store.title(conv);
      const who = conv.kind === "group" ? `${store.nameOf(message.sender)}: ` : "";
      const preview = store.preview(message);
      const body = mention ? `${t("[You were mentioned]")} ${who}${preview}` : `${who}${preview}`;
      this.notify(title, body, conv.id);
    }
  }

  notify(title, body, conversationId) {
    this.shown.push({ title, body, conversation: conversationId });
    try {
      const note = new Notification(title, {
        body,
        tag: conversationId ? `chat-${conversationId}` : "chat-summary",
        silent: true, // our own sound plays instead, once per batch
      });
      note.onclick = () => {
        window.focus();
        if (conversationId) this.app.openConversation(conversationId);
        note.close();
      };
    } catch (error) {
      console.warn("webclient: notification refused", error);
    }
  }

  /** A short two-tone chime (Web Audio: no sound file to fetch). */
  beep() {
    try {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      this.audio = this.audio || new Context();
      const ctx = this.audio;
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      const gain = ctx.createGain();
      gain.gain.setValueAtTime(0.0001, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.15, ctx.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.35);
      gain.connect(ctx.destination);
      for (const [freq, at] of [[880, 0], [1320, 0.12]]) {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.2);
      }
      this.beeps = (this.beeps || 0) + 1;
    } catch {
      // No audio (autoplay refused before any click): the notification still shows.
    }
  }

  // --- Typing ------------------------------------------------------------------------

  /** We are typing in `conversationId`: tell the others, at most every few seconds. */
  typing(conversationId) {
    const now = Date.now();
    if (now - (this.typingSent.get(conversationId) || 0) < TYPING_SEND_MS) return;
    if (!this.app.link.isUp()) return;
    this.typingSent.set(conversationId, now);
    this.app.link.request({ type: "typing", conversation: conversationId }).catch(() => {});
  }

  onTyping(frame) {
    const conversation = Number(frame.conversation);
    const users = this.typingBy.get(conversation) || new Map();
    users.set(Number(frame.user), Date.now() + TYPING_SHOW_MS);
    this.typingBy.set(conversation, users);
    this.app.scheduleRender();
    setTimeout(() => this.app.scheduleRender(), TYPING_SHOW_MS + 50);
  }

  stopTyping(conversation, user) {
    const users = this.typingBy.get(conversation);
    if (users && users.delete(user)) this.app.scheduleRender();
  }

  /** Who is typing in `conversation` now (user ids). */
  typists(conversation) {
    const users = this.typingBy.get(conversation);
    if (!users) return [];
    const now = Date.now();
    return [...users].filter(([, until]) => until > now).map(([user]) => user);
  }
}
