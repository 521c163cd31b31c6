// The web chat client: boot, session, the shell, and the glue between the
// link (link.js), the model (store.js) and the views.

import { Api, ApiError } from "./api.js";
import { renderChat, renderChatList } from "./chats-view.js";
import { renderContactList, renderContactPane } from "./contacts-view.js";
import { confirmDialog, groupDialog, toast } from "./dialogs.js";
import { avatar, h, icon, replace } from "./dom.js";
import { CHAT_SEARCH, Flags } from "./flags.js";
import { countdown } from "./format.js";
import { Link, endpointsFromTopology } from "./link.js";
import { showLogin } from "./login-view.js";
import { deviceUuid, forgetUser, Outbox, session as storedSession, syncKey } from "./storage.js";
import { Store } from "./store.js";

const CLIENT_VERSION = "3.0.0";
const HISTORY_PAGE = 50;

const root = document.getElementById("app");

class App {
  constructor(session) {
    this.session = session;
    this.api = new Api({ ticket: session.ticket, onTicketRefused: (e) => this.sessionEnded(e) });
    this.store = new Store(session.user);
    this.outbox = new Outbox(session.user.id);
    this.ui = { tab: "chats", openId: null, contact: null, chatFilter: "" };
    this.flags = new Flags(session.device && session.device.id, session.flags || {});
    this.contactsVersion = 0;
    this.unsentReads = new Map();
    this.drafts = new Map(); // conversation id → text being written
    this.attachmentUrls = new Map();
    this.officialAccounts = new Map(); // official chat's conversation id → its account
    this.renderQueued = false;
    this.ended = false;
    this.link = new Link({
      ticket: session.ticket,
      key: syncKey(session.user.id),
      outbox: this.outbox,
      endpoints: async () => endpointsFromTopology(await this.api.topology()),
      onEntries: (entries, conversations) => this.onEntries(entries, conversations),
      onAck: (item, ack) => this.onAck(item, ack),
      onSendFailed: (item, error) => toast(`Message not sent: ${error.message}`, { error: true }),
      onSynced: ({ fresh }) => this.onSynced(fresh),
      onHello: (hello) => this.onHello(hello),
      onFatal: (error) => this.sessionEnded(error),
      onState: () => this.renderConnection(),
    });
    this.store.onChange(() => this.scheduleRender());
    this.outbox.onChange(() => this.scheduleRender());
    this.flags.onChange(() => this.scheduleRender());
  }

  // --- Lifecycle ----------------------------------------------------------------------

  async start() {
    this.buildShell();
    this.installHooks();
    this.link.start();
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.ticker = setInterval(() => this.tick(), 500);
    await Promise.allSettled([this.loadMe(), this.refreshContacts(), this.refreshConversations()]);
  }

  // Network changes, as Mars watches them: a network that comes back skips the
  // backoff wait; one that goes away takes the socket with it.
  onOnline = () => this.link.retryNow();

  onOffline = () => this.link.drop("network offline");

  onVisible = () => {
    if (document.visibilityState === "visible") this.markOpenRead();
  };

  stop() {
    this.ended = true;
    this.link.stop();
    clearInterval(this.ticker);
    clearTimeout(this.conversationsTimer);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    for (const url of this.attachmentUrls.values()) url.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  }

  async logout() {
    const unsent = this.outbox.items.length;
    if (unsent && !(await confirmDialog("Log out?", `${unsent} message(s) are not sent yet and will be lost.`, "Log out"))) {
      return;
    }
    this.stop();
    try {
      await this.api.logout();
    } catch {
      // The ticket dies with the session either way.
    }
    forgetUser(this.session.user.id);
    storedSession.clear();
    boot("");
  }

  sessionEnded(error) {
    if (this.ended) return;
    this.stop();
    storedSession.clear();
    const code = error && error.code ? ` (${error.code})` : "";
    boot(`Your session has ended${code}. Please log in again.`);
  }

  async loadMe() {
    const me = await this.api.me();
    Object.assign(this.store.me, me);
    this.store.rememberUser(me);
    storedSession.set({ ...this.session, user: me });
    this.renderMe();
  }

  async refreshContacts() {
    const [friends, requests] = await Promise.all([this.api.friends(), this.api.incomingRequests()]);
    this.store.setFriends(friends.results);
    this.store.setRequests(requests.results);
    this.contactsVersion += 1;
    this.scheduleRender();
  }

  refreshConversationsSoon() {
    clearTimeout(this.conversationsTimer);
    this.conversationsTimer = setTimeout(() => this.refreshConversations().catch(() => {}), 300);
  }

  async refreshConversations() {
    const askedAt = Date.now();
    const { results, complete } = await this.api.conversations();
    this.store.mergeConversationList(results, complete, askedAt);
    this.markOpenRead();
  }

  // --- Link callbacks ------------------------------------------------------------------

  onHello(hello) {
    // Every hello carries this device's flags as they stand: what a device missed
    // while away (or before this page loaded) is put right here.
    if (hello.device !== undefined) this.flags.deviceId = String(hello.device);
    if (hello.flags) this.flags.applySnapshot(hello.flags);
  }

  onEntries(entries, conversations) {
    for (const entry of entries) if (entry.kind === "flag") this.flags.applyEntry(entry.payload);
    // Our own messages come back as entries: match those not yet acknowledged to
    // their sends, so a message never shows twice while its ack is on the way.
    const own = entries
      .map((entry) => entry.kind === "message" && entry.message)
      .filter((m) => m && m.sender === this.store.me.id && m.kind === "text")
      .filter((m) => !(this.store.conversation(m.conversation)?.messages.has(m.id)));
    const effects = this.store.applyEntries(entries, conversations);
    // Delivery receipts (end-to-end delay): others' messages, now in the lists.
    this.link.reportShown(entries
      .map((entry) => entry.kind === "message" && entry.message)
      .filter((m) => m && m.sender !== null && m.sender !== this.store.me.id)
      .map((m) => m.id));
    for (const message of own) this.matchOutbox(message);
    if (effects.contacts) this.refreshContacts().catch(() => {});
    if (effects.conversations) this.refreshConversationsSoon();
    if (this.ui.openId && effects.touched.has(this.ui.openId)) this.markOpenRead();
  }

  matchOutbox(message) {
    const taken = new Set(this.outbox.items.map((i) => i.matched));
    if (taken.has(message.id)) return;
    // The server returns our client_msg_id on our own messages (docs/protocol.md).
    const item = message.client_msg_id
      ? this.outbox.get(message.client_msg_id)
      : this.outbox.items.find((i) => i.conversation === message.conversation && i.attempts > 0
        && !i.matched && (i.content.text || "") === ((message.body && message.body.text) || ""));
    if (item) {
      item.matched = message.id;
      this.outbox.save();
    }
  }

  onAck(item, ack) {
    this.store.applyAck(item, ack);
  }

  onSynced(fresh) {
    // After every (re)connect: the server's counters, and reads made while offline.
    this.refreshConversations().catch(() => {});
    const open = this.store.conversation(this.ui.openId);
    if (open && (fresh || !open.historyLoaded)) this.loadHistory(open.id, { reset: fresh }).catch(() => {});
    for (const [conversation, seq] of this.unsentReads) this.sendRead(conversation, seq);
  }

  // --- Actions -------------------------------------------------------------------------

  showTab(tab) {
    this.ui.tab = tab;
    this.scheduleRender();
    if (tab === "chats") this.markOpenRead();
  }

  async openConversation(id) {
    this.ui.tab = "chats";
    this.ui.openId = Number(id);
    this.scheduleRender();
    const conv = this.store.conversation(id);
    if (!conv) return;
    this.markOpenRead();
    if (!conv.historyLoaded) await this.loadHistory(conv.id).catch((e) => toast(e.message, { error: true }));
    if (!conv.members || (conv.kind === "direct" && !this.store.users.has(conv.peer))) {
      conv.membersRequested = false;
      this.ensureMembers(conv);
    }
  }

  /** Fetch a conversation's members once (names of senders we do not know). */
  ensureMembers(conv) {
    if (conv.membersRequested) return;
    conv.membersRequested = true;
    this.api.conversation(conv.id)
      .then((detail) => this.store.setMembers(conv, detail))
      .catch(() => {
        conv.membersRequested = false;
      });
  }

  async loadHistory(id, { reset = false } = {}) {
    const conv = this.store.conversation(id);
    if (!conv) return;
    if (reset) {
      conv.oldestLoadedSeq = null;
      conv.moreHistory = true;
    }
    const answer = await this.api.history(conv.id, { limit: HISTORY_PAGE });
    this.store.mergeHistory(conv, answer.messages, HISTORY_PAGE);
    this.markOpenRead();
  }

  async loadEarlier(id) {
    const conv = this.store.conversation(id);
    if (!conv || conv.oldestLoadedSeq === null) return;
    const view = document.querySelector("[data-testid=message-list]");
    const height = view ? view.scrollHeight : 0;
    try {
      const answer = await this.api.history(conv.id, { before: conv.oldestLoadedSeq, limit: HISTORY_PAGE });
      this.store.mergeHistory(conv, answer.messages, HISTORY_PAGE);
      this.render();
      if (view) view.scrollTop = view.scrollHeight - height;
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  async openDirect(userId) {
    try {
      const detail = await this.api.openDirect(userId);
      const conv = this.store.upsertConversation(detail.conversation);
      conv.gone = false;
      conv.seenAt = Date.now();
      this.store.setMembers(conv, detail);
      await this.openConversation(conv.id);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  newGroup() {
    groupDialog(this, async (name, ids) => {
      const detail = await this.api.createGroup(name, ids);
      const conv = this.store.upsertConversation(detail.conversation);
      conv.gone = false;
      conv.seenAt = Date.now();
      conv.lastActivity = conv.lastActivity || new Date().toISOString();
      this.store.setMembers(conv, detail);
      await this.openConversation(conv.id);
    });
  }

  filterChats(text) {
    this.ui.chatFilter = text;
    this.scheduleRender();
  }

  /** The account behind an official chat (its menu, whether we still follow it). */
  loadOfficial(conversationId) {
    if (this.officialLoading && this.officialLoading.has(conversationId)) return;
    this.officialLoading = this.officialLoading || new Set();
    this.officialLoading.add(conversationId);
    this.api.officialForConversation(conversationId)
      .then((account) => {
        this.officialAccounts.set(conversationId, account);
        // The account writes as its service identity, which is not a member anyone lists.
        this.store.rememberUser({ id: account.service_user_id, nickname: account.name });
        this.scheduleRender();
      })
      .catch(() => {})
      .finally(() => this.officialLoading.delete(conversationId));
  }

  async openOfficialChat(conversationId) {
    this.officialAccounts.delete(conversationId);
    if (!this.store.conversation(conversationId)) await this.refreshConversations();
    const conv = this.store.conversation(conversationId);
    if (!conv) return;
    conv.gone = false;
    conv.seenAt = Date.now();
    await this.openConversation(conv.id);
  }

  selectContact(selection) {
    this.ui.contact = selection;
    this.scheduleRender();
  }

  send(conversation, content) {
    this.outbox.add(conversation, content);
    this.link.flushOutbox();
  }

  retrySend(clientMsgId) {
    this.outbox.retry(clientMsgId);
    this.link.flushOutbox();
  }

  discardSend(clientMsgId) {
    this.outbox.remove(clientMsgId);
  }

  async recall(message) {
    try {
      const reply = await this.link.request({ type: "recall", message: message.id });
      const conv = this.store.conversation(message.conversation);
      if (conv && reply.message) this.store.markRecalled(conv, message.id);
      this.store.changed("messages");
    } catch (error) {
      const text = error.code === "recall_window_passed"
        ? "Messages can only be recalled within 2 minutes."
        : error.code === "link_lost" ? "You are offline; try again when connected." : error.message;
      toast(text, { error: true });
    }
  }

  /** The open chat is on screen: report it read (read frame) and clear its badge. */
  markOpenRead() {
    if (this.ui.tab !== "chats" || !this.ui.openId || document.visibilityState !== "visible") return;
    const conv = this.store.conversation(this.ui.openId);
    const seq = this.store.markRead(conv);
    if (seq !== null) this.sendRead(conv.id, seq);
  }

  sendRead(conversation, seq) {
    this.unsentReads.set(conversation, Math.max(seq, this.unsentReads.get(conversation) || 0));
    if (!this.link.isUp()) return;
    this.link.request({ type: "read", conversation, seq })
      .then(() => {
        if ((this.unsentReads.get(conversation) || 0) <= seq) this.unsentReads.delete(conversation);
      })
      .catch((error) => {
        // A refusal is final (e.g. we left the chat); a lost link retries on reconnect.
        if (error.code !== "link_lost" && error.code !== "timeout") this.unsentReads.delete(conversation);
      });
  }

  loadAttachment(id) {
    if (!this.attachmentUrls.has(id)) {
      this.attachmentUrls.set(id, this.api.attachment(id).then((blob) => URL.createObjectURL(blob)));
    }
    return this.attachmentUrls.get(id);
  }

  async downloadAttachment(id, name) {
    try {
      const url = await this.loadAttachment(id);
      const a = h("a", { href: url, download: name || "file" });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  // --- Rendering ---------------------------------------------------------------------------

  buildShell() {
    const nav = (tab, label, iconName) => h("button", {
      type: "button", class: "nav-button", testid: `nav-${tab}`, title: label, "aria-label": label,
      onclick: () => this.showTab(tab),
    }, h("span", { class: "nav-icon" }, icon(iconName, 24)), h("span", { class: "nav-badge", hidden: true }));
    this.el = {
      me: h("div", { class: "sidebar-me", testid: "me" }),
      chatsNav: nav("chats", "Chats", "chats"),
      contactsNav: nav("contacts", "Contacts", "contacts"),
      connection: h("div", { class: "conn", testid: "conn-state", role: "status" }),
      listTitle: h("h2", { class: "list-title" }),
      search: h("input", {
        type: "search", class: "chat-search-input", testid: "chat-search-input", placeholder: "Search chats",
        "aria-label": "Search chats", oninput: (event) => this.filterChats(event.target.value),
      }),
      list: h("div", { class: "list", testid: "chat-list" }),
      contacts: h("div", { class: "list", testid: "contact-list" }),
      main: h("main", { class: "mainpane" }),
    };
    const newGroup = h("button", {
      type: "button", class: "icon-button add-button", testid: "new-group-button", title: "New group chat",
      "aria-label": "New group chat", onclick: () => this.newGroup(),
    }, icon("plus", 18));
    replace(root, h("div", { class: "shell", testid: "app-shell" },
      h("nav", { class: "sidebar" },
        this.el.me, this.el.chatsNav, this.el.contactsNav,
        h("div", { class: "sidebar-spacer" }),
        h("button", {
          type: "button", class: "nav-button", testid: "logout-button", title: "Log out", "aria-label": "Log out",
          onclick: () => this.logout(),
        }, h("span", { class: "nav-icon" }, icon("logout", 22)))),
      h("section", { class: "listpane" },
        h("header", { class: "listpane-header" }, this.el.listTitle, newGroup),
        this.el.connection,
        h("div", { class: "chat-search", testid: "chat-search", hidden: true }, this.el.search),
        this.el.list,
        this.el.contacts),
      this.el.main));
    this.renderMe();
    this.renderConnection();
    this.render();
  }

  renderMe() {
    if (!this.el) return;
    const me = this.store.me;
    replace(this.el.me, avatar(me.nickname, me.id, { size: 36, url: me.avatar_url }));
    this.el.me.title = `${me.nickname}${me.wechat_id ? ` (${me.wechat_id})` : ""}`;
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    if (!this.el || this.ended) return;
    const { tab } = this.ui;
    this.el.chatsNav.classList.toggle("active", tab === "chats");
    this.el.contactsNav.classList.toggle("active", tab === "contacts");
    setBadge(this.el.chatsNav, this.store.totalUnread(), "nav-chats-badge");
    setBadge(this.el.contactsNav, this.store.pendingRequests().length, "nav-contacts-badge");
    this.el.list.hidden = tab !== "chats";
    this.el.contacts.hidden = tab !== "contacts";
    this.el.listTitle.textContent = tab === "chats" ? "Chats" : "Contacts";
    // Chat search is behind a flag (gray release): it comes and goes without a reload.
    const searching = tab === "chats" && this.flags.enabled(CHAT_SEARCH);
    this.el.search.parentElement.hidden = !searching;
    if (!searching && this.ui.chatFilter) {
      this.ui.chatFilter = "";
      this.el.search.value = "";
    }
    const unread = this.store.totalUnread();
    document.title = unread ? `(${unread}) WeChat Web` : "WeChat Web";
    if (tab === "chats") {
      renderChatList(this.el.list, this);
      if (this.el.main.__contactSelection !== undefined) {
        this.el.main.__contactSelection = undefined;
        this.el.main.__chat = null;
      }
      renderChat(this.el.main, this);
    } else {
      renderContactList(this.el.contacts, this);
      renderContactPane(this.el.main, this);
    }
  }

  renderConnection() {
    if (!this.el) return;
    const s = this.link.snapshot();
    const node = this.el.connection;
    const now = Date.now();
    let state;
    let text;
    let retry = false;
    if (s.state === "online") {
      state = "online";
      text = "Online";
    } else if (s.state === "waiting" && s.stoppedUntil > now) {
      state = "paused";
      text = `Paused by the server · reconnecting in ${countdown(s.stoppedUntil - now)}`;
    } else if (s.state === "waiting") {
      state = "offline";
      text = `Offline · reconnecting in ${countdown(s.waitUntil - now)}`;
      retry = true;
    } else if (s.state === "connecting" && s.connects > 0) {
      state = "connecting";
      text = "Reconnecting…";
    } else if (s.state === "connecting" || s.state === "idle") {
      state = "connecting";
      text = "Connecting…";
    } else {
      state = "offline";
      text = "Disconnected";
    }
    if (state === "online" && s.throttledUntil > now) {
      text = `Online · sending too fast, wait ${countdown(s.throttledUntil - now)}`;
    }
    const sig = `${state}|${text}|${retry}`;
    if (node.__sig === sig) return;
    node.__sig = sig;
    node.dataset.state = state;
    replace(node,
      h("span", { class: "conn-dot", "aria-hidden": "true" }),
      h("span", { class: "conn-text", testid: "conn-text" }, text),
      retry ? h("button", { type: "button", class: "btn btn-link conn-retry", testid: "conn-retry", onclick: () => this.link.retryNow() }, "Retry now") : null);
  }

  tick() {
    this.renderConnection();
    const now = Date.now();
    const throttled = this.link.throttledUntil > now;
    if (throttled !== this.wasThrottled || now - (this.lastChatRefresh || 0) > 10000) {
      // Refresh time-dependent bits: the recall buttons, the throttle state of unsent messages.
      this.wasThrottled = throttled;
      this.lastChatRefresh = now;
      this.scheduleRender();
    }
  }

  installHooks() {
    // A small hook for tests and for curious operators.
    window.__chat = {
      state: () => ({
        ...this.link.snapshot(),
        userId: this.store.me.id,
        openConversation: this.ui.openId,
        busy: this.link.requests.size + this.api.inFlight, // requests awaiting an answer
        flags: this.flags.snapshot(),
      }),
      dropLink: () => this.link.drop(),
      request: (frame) => this.link.request(frame), // a raw frame, as a buggy build might
      retryNow: () => this.link.retryNow(),
      loseNextAck: () => {
        this.link.loseAck = true;
      },
      injectFrame: (frame) => this.link.dispatch(frame, this.link.ws),
      loseNotifies: (lose = true) => {
        this.link.ignoreNotifies = lose;
      },
      outbox: () => this.outbox.items.map((i) => ({ ...i })),
      shutdown: () => this.stop(), // no more frames or requests from this page
    };
  }
}

function setBadge(button, count, testid) {
  const badge = button.querySelector(".nav-badge");
  badge.hidden = !count;
  badge.dataset.testid = testid;
  badge.textContent = count > 99 ? "99+" : String(count);
}

function browserName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox"
    : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Android/.test(ua) ? "Android"
    : /iPhone|iPad/.test(ua) ? "iOS" : /Linux/.test(ua) ? "Linux" : "";
  return `${browser}${os ? ` on ${os}` : ""}`.slice(0, 64);
}

let current = null;

function boot(notice = "") {
  if (current) current.stop();
  current = null;
  window.__chat = undefined;
  const saved = storedSession.get();
  if (saved && saved.ticket && saved.user && saved.user.id) {
    current = new App(saved);
    current.start().catch((error) => console.error(error));
    return;
  }
  showLogin(root, {
    notice,
    onSubmit: async (identifier, password) => {
      const api = new Api();
      const answer = await api.login(identifier, password, {
        platform: "web",
        client_version: CLIENT_VERSION,
        name: browserName(),
        device_uuid: deviceUuid(),
      });
      storedSession.set({ ticket: answer.ticket, expiresAt: answer.expires_at, user: answer.user, device: answer.device, flags: answer.flags });
      boot();
    },
  });
}

window.addEventListener("error", (event) => console.error("webclient:", event.message));
boot();

export { ApiError };
