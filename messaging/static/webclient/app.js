// The web chat client: boot, session, the shell, and the glue between the
// link (link.js), the model (store.js) and the views.

import { Api, ApiError } from "./api.js";
import { Attention } from "./attention.js";
import { renderChat, renderChatList } from "./chats-view.js";
import { renderContactList, renderContactPane } from "./contacts-view.js";
import { confirmDialog, groupDialog, toast } from "./dialogs.js";
import { avatar, h, icon, replace } from "./dom.js";
import { CHAT_SEARCH, Flags } from "./flags.js";
import { countdown } from "./format.js";
import { arrival, goHome } from "./home.js";
import { Link, endpointsFromTopology } from "./link.js";
import { showLogin } from "./login-view.js";
import { deviceUuid, forgetUser, Outbox, pausedUntil, session as storedSession, syncKey } from "./storage.js";
import { profileDialog } from "./profile-view.js";
import { RedPackets } from "./redpacket-view.js";
import { messageSearchDialog } from "./search-view.js";
import { ShakePage } from "./shake-view.js";
import { Store } from "./store.js";
import { WalletPage } from "./wallet-view.js";
import { languageSwitch, t } from "./i18n.js";

const CLIENT_VERSION = "3.0.0";
const HISTORY_PAGE = 50;
// A jump to a found message loads the history down to it, in pages this big (the
// server's API_MAX_PAGE_SIZE), at most JUMP_MAX_PAGES of them.
const JUMP_PAGE = 200;
const JUMP_MAX_PAGES = 50;

const root = document.getElementById("app");

class App {
  constructor(session) {
    this.session = session;
    this.api = new Api({
      ticket: session.ticket,
      onTicketRefused: (e) => this.sessionEnded(e),
      onHomeElsewhere: (e) => this.homeElsewhere(e.details.datacenter, e.details.endpoints),
    });
    this.store = new Store(session.user);
    this.outbox = new Outbox(session.user.id);
    this.ui = { tab: "chats", openId: null, contact: null, chatFilter: "" };
    this.flags = new Flags(session.device && session.device.id, session.flags || {});
    this.contactsVersion = 0;
    this.unsentReads = new Map();
    this.drafts = new Map(); // conversation id → text being written
    this.attachmentUrls = new Map();
    this.officialAccounts = new Map(); // official chat's conversation id → its account
    this.wallet = new WalletPage(this);
    this.redpackets = new RedPackets(this);
    this.shake = new ShakePage(this);
    this.renderQueued = false;
    this.ended = false;
    this.link = new Link({
      ticket: session.ticket,
      key: syncKey(session.user.id),
      pause: pausedUntil(session.user.id),
      outbox: this.outbox,
      endpoints: async () => endpointsFromTopology(await this.api.topology()),
      onEntries: (entries, conversations) => this.onEntries(entries, conversations),
      onAck: (item, ack) => this.onAck(item, ack),
      onSendFailed: (item, error) => toast(t("Message not sent: {error}", { error: error.message }), { error: true }),
      onSynced: ({ fresh }) => this.onSynced(fresh),
      onHello: (hello) => this.onHello(hello),
      onFatal: (error) => this.sessionEnded(error),
      onHome: (frame) => this.homeElsewhere(frame.datacenter, frame.http_endpoints),
      onState: () => this.renderConnection(),
    });
    this.attention = new Attention(this);
    this.link.onTyping = (frame) => this.attention.onTyping(frame);
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
    this.wallet.stop();
    this.shake.stop();
    clearInterval(this.ticker);
    clearTimeout(this.conversationsTimer);
    clearTimeout(this.contactsTimer);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    for (const url of this.attachmentUrls.values()) url.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  }

  async logout() {
    const unsent = this.outbox.items.length;
    if (unsent && !(await confirmDialog(t("Log out?"), t("{n} message(s) are not sent yet and will be lost.", { n: unsent }), t("Log out")))) {
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
    boot(t("Your session has ended{code}. Please log in again.", { code }));
  }

  /**
   * The user's home is another data centre (a `home` frame, or a 421 to this
   * session's requests): this session cannot be served here, so go to the
   * home's web client to log in there. Returns whether the page is leaving.
   */
  homeElsewhere(datacenter, endpoints) {
    if (this.ended) return true;
    const me = { ...this.session.user, ...this.store.me };
    const address = goHome({ datacenter, endpoints, identifier: me.email || me.phone || "", automatic: true });
    if (!address) return false; // the home is this origin (the link follows the frame), or we were just sent here
    this.stop();
    storedSession.clear(); // its ticket is good at home only
    return true;
  }

  async loadMe() {
    const me = await this.api.me();
    Object.assign(this.store.me, me);
    this.store.rememberUser(me);
    storedSession.set({ ...this.session, user: me });
    this.renderMe();
  }

  async refreshContacts() {
    this.contactsTriedAt = Date.now();
    const [friends, requests] = await Promise.all([this.api.friends(), this.api.incomingRequests()]);
    this.contactsLoaded = true;
    this.store.setFriends(friends.results);
    this.store.setRequests(requests.results);
    this.contactsVersion += 1;
    this.scheduleRender();
  }

  // Background refreshes (an entry said the lists changed) wait out a pause the
  // server asked for (docs/protocol.md §5): the entries are applied already; the
  // counters and contacts can come a few seconds later.
  refreshConversationsSoon() {
    clearTimeout(this.conversationsTimer);
    const delay = Math.max(300, this.link.pauseLeft());
    this.conversationsTimer = setTimeout(() => this.refreshConversations().catch(() => {}), delay);
  }

  refreshContactsSoon() {
    clearTimeout(this.contactsTimer);
    const delay = this.link.pauseLeft();
    this.contactsTimer = setTimeout(() => this.refreshContacts().catch(() => {}), delay);
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
    let moneyMoved = false;
    for (const entry of entries) {
      if (entry.kind === "flag") this.flags.applyEntry(entry.payload);
      if (entry.kind === "shake_assets") this.shake.assets.take(entry.payload); // a new manifest: fetch in idle time
      if (entry.kind === "message_update" && entry.payload && entry.payload.hidden) {
        this.store.markHidden(entry.conversation, entry.payload.message); // deleted on one of my devices
      }
      if (entry.kind === "message_update" && entry.payload) {
        // A bubble's state changed for me (a red packet opened, all taken, expired, credited).
        this.redpackets.applyUpdate(entry.payload);
        if (entry.payload.redpacket && entry.payload.redpacket.credit === "credited") moneyMoved = true;
      }
      if (entry.kind === "message" && entry.message && entry.message.kind === "system"
        && entry.message.body && entry.message.body.event === "redpacket_refunded") moneyMoved = true;
    }
    if (moneyMoved && this.ui.tab === "wallet") this.wallet.refresh().catch(() => {});
    // Our own messages come back as entries: match those not yet acknowledged to
    // their sends, so a message never shows twice while its ack is on the way.
    const own = entries
      .map((entry) => entry.kind === "message" && entry.message)
      .filter((m) => m && m.sender === this.store.me.id && ["text", "image", "file"].includes(m.kind))
      .filter((m) => !(this.store.conversation(m.conversation)?.messages.has(m.id)));
    const fresh = entries
      .map((entry) => entry.kind === "message" && entry.message)
      .filter((m) => m && !(this.store.conversation(m.conversation)?.messages.has(m.id)));
    const effects = this.store.applyEntries(entries, conversations);
    this.attention.onMessages(fresh);
    // Delivery receipts (end-to-end delay): others' messages, now in the lists.
    this.link.reportShown(entries
      .map((entry) => entry.kind === "message" && entry.message)
      .filter((m) => m && m.sender !== null && m.sender !== this.store.me.id)
      .map((m) => m.id));
    for (const message of own) this.matchOutbox(message);
    if (effects.contacts) this.refreshContactsSoon();
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
    if (tab === "wallet") this.ui.walletMain = true;
    this.scheduleRender();
    if (tab === "chats") this.markOpenRead();
    if (tab === "wallet") this.wallet.open();
    if (tab === "shake") this.shake.open();
    else this.shake.close();
  }

  async openConversation(id) {
    this.ui.tab = "chats";
    this.ui.openId = Number(id);
    this.scheduleRender();
    const conv = this.store.conversation(id);
    if (!conv) return;
    // What was unread on opening ("N new messages ↑"), before reading it clears the count.
    conv.unreadAtOpen = conv.unread;
    conv.readSeqAtOpen = conv.readSeq;
    this.markOpenRead();
    if (!conv.historyLoaded) await this.loadHistory(conv.id).catch((e) => toast(e.message, { error: true }));
    if (!conv.members || (conv.kind === "direct" && !this.store.users.has(conv.peer))) {
      conv.membersRequest = null;
      this.ensureMembers(conv);
    }
  }

  /** Fetch a conversation's members once (names of senders we do not know). Returns
   * the request in flight, so that a caller (the mention picker) can redraw when the
   * members arrive after the keystroke that asked for them. */
  ensureMembers(conv) {
    if (conv.membersRequest) return conv.membersRequest;
    conv.membersRequest = this.api.conversation(conv.id)
      .then((detail) => this.store.setMembers(conv, detail))
      .catch(() => {
        conv.membersRequest = null;
      });
    return conv.membersRequest;
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

  /** Open a chat at one of its messages (a search hit): load history down to it, show it. */
  async jumpToMessage(conversationId, messageId, seq) {
    if (!this.store.conversation(conversationId)) await this.refreshConversations().catch(() => {});
    const conv = this.store.conversation(conversationId);
    if (!conv || conv.gone) {
      toast(t("You are no longer in this chat: its messages cannot be opened."), { error: true });
      return;
    }
    conv.gone = false;
    await this.openConversation(conv.id);
    try {
      for (let page = 0; !conv.messages.has(messageId) && conv.oldestLoadedSeq !== null
        && conv.oldestLoadedSeq > seq && page < JUMP_MAX_PAGES; page += 1) {
        const answer = await this.api.history(conv.id, { before: conv.oldestLoadedSeq, limit: JUMP_PAGE });
        this.store.mergeHistory(conv, answer.messages, JUMP_PAGE);
        if (!answer.messages.length) break;
      }
    } catch (error) {
      toast(error.message, { error: true });
    }
    this.render();
    const node = document.querySelector(`[data-testid=message][data-message-id="${messageId}"]`);
    if (!node) return;
    node.scrollIntoView({ block: "center" });
    node.classList.add("message-found");
    node.dataset.found = "true";
    setTimeout(() => {
      node.classList.remove("message-found");
      delete node.dataset.found;
    }, 4000);
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

  /** Phones: from the open chat (or contact, or wallet page) back to the list. */
  back() {
    if (this.ui.tab === "chats") this.ui.openId = null;
    else if (this.ui.tab === "contacts") this.ui.contact = null;
    else this.ui.walletMain = false;
    this.scheduleRender();
  }

  selectContact(selection) {
    this.ui.contact = selection;
    this.scheduleRender();
  }

  send(conversation, content, meta = null) {
    this.outbox.add(conversation, content, meta);
    this.link.flushOutbox();
  }

  /** We are writing in `conversation` (the others see "typing…"). */
  typing(conversation) {
    this.attention.typing(conversation);
  }

  /** Mute or pin a chat on every one of our devices (the server logs it for them). */
  async setChatSetting(conversation, fields) {
    const answer = await this.api.chatSettings(conversation, fields);
    const conv = this.store.conversation(conversation);
    if (conv) {
      conv.muted = answer.muted;
      conv.pinned = answer.pinned;
      this.store.changed("conversations");
    }
  }

  /** We left (or were removed from) a chat: it goes from the list. */
  leftConversation(conversation) {
    const conv = this.store.conversation(conversation);
    if (conv) conv.gone = true;
    if (this.ui.openId === conversation) this.ui.openId = null;
    this.store.changed("conversations");
    this.refreshConversationsSoon();
  }

  /** Delete a message for ourselves only (all our devices; the others keep it). */
  async hideMessage(message) {
    try {
      await this.api.hideMessage(message.id);
      this.store.markHidden(message.conversation, message.id);
    } catch (error) {
      toast(error.message, { error: true });
    }
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
        ? t("Messages can only be recalled within 2 minutes.")
        : error.code === "link_lost" ? t("You are offline; try again when connected.") : error.message;
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
      me: h("button", {
        type: "button", class: "sidebar-me", testid: "me", "aria-label": t("My account"),
        onclick: () => profileDialog(this),
      }),
      chatsNav: nav("chats", t("Chats"), "chats"),
      contactsNav: nav("contacts", t("Contacts"), "contacts"),
      walletNav: nav("wallet", t("Wallet"), "wallet"),
      shakeNav: nav("shake", t("Shake"), "shake"),
      connection: h("div", { class: "conn", testid: "conn-state", role: "status" }),
      notifyBanner: h("div", { class: "notify-slot" }),
      listTitle: h("h2", { class: "list-title" }),
      search: h("input", {
        type: "search", class: "chat-search-input", testid: "chat-search-input", placeholder: t("Search chats"),
        "aria-label": t("Search chats"), oninput: (event) => this.filterChats(event.target.value),
      }),
      list: h("div", { class: "list", testid: "chat-list" }),
      contacts: h("div", { class: "list", testid: "contact-list" }),
      walletSide: h("div", { class: "list", testid: "wallet-side" }),
      shakeSide: h("div", { class: "list", testid: "shake-side" }),
      main: h("main", { class: "mainpane" }),
      // Phones show one pane at a time (app.css): this leads back to the list.
      back: h("button", {
        type: "button", class: "icon-button phone-back", testid: "phone-back", title: t("Back"), "aria-label": t("Back"),
        onclick: () => this.back(),
      }, "‹"),
    };
    const newGroup = this.el.newGroup = h("button", {
      type: "button", class: "icon-button add-button", testid: "new-group-button", title: t("New group chat"),
      "aria-label": t("New group chat"), onclick: () => this.newGroup(),
    }, icon("plus", 18));
    const searchMessages = this.el.searchMessages = h("button", {
      type: "button", class: "icon-button add-button", testid: "message-search-button",
      title: t("Search messages"), "aria-label": t("Search messages"), onclick: () => messageSearchDialog(this),
    }, icon("search", 18));
    replace(root, this.el.shell = h("div", { class: "shell", testid: "app-shell" },
      h("nav", { class: "sidebar" },
        this.el.me, this.el.chatsNav, this.el.contactsNav, this.el.walletNav, this.el.shakeNav,
        h("div", { class: "sidebar-spacer" }),
        languageSwitch({ className: "nav-button language-switch" }),
        h("button", {
          type: "button", class: "nav-button", testid: "logout-button", title: t("Log out"), "aria-label": t("Log out"),
          onclick: () => this.logout(),
        }, h("span", { class: "nav-icon" }, icon("logout", 22)))),
      h("section", { class: "listpane" },
        h("header", { class: "listpane-header" }, this.el.listTitle, searchMessages, newGroup),
        this.el.connection,
        this.el.notifyBanner,
        h("div", { class: "chat-search", testid: "chat-search", hidden: true }, this.el.search),
        this.el.list,
        this.el.contacts,
        this.el.walletSide,
        this.el.shakeSide),
      this.el.main,
      this.el.back));
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
    this.el.walletNav.classList.toggle("active", tab === "wallet");
    this.el.shakeNav.classList.toggle("active", tab === "shake");
    setBadge(this.el.chatsNav, this.store.totalUnread(), "nav-chats-badge");
    setBadge(this.el.contactsNav, this.store.pendingRequests().length, "nav-contacts-badge");
    this.el.list.hidden = tab !== "chats";
    this.el.contacts.hidden = tab !== "contacts";
    this.el.walletSide.hidden = tab !== "wallet";
    this.el.shakeSide.hidden = tab !== "shake";
    this.el.newGroup.hidden = tab === "wallet" || tab === "shake";
    this.el.searchMessages.hidden = tab !== "chats";
    // Which pane a phone shows (app.css): the list, or what was picked in it.
    const picked = tab === "chats" ? Boolean(this.ui.openId) : tab === "contacts" ? Boolean(this.ui.contact) : this.ui.walletMain !== false;
    this.el.shell.dataset.pane = picked ? "main" : "list";
    this.el.listTitle.textContent = { chats: t("Chats"), contacts: t("Contacts"), wallet: t("Wallet"), shake: t("Shake") }[tab];
    // Chat search is behind a flag (gray release): it comes and goes without a reload.
    const searching = tab === "chats" && this.flags.enabled(CHAT_SEARCH);
    this.el.search.parentElement.hidden = !searching;
    if (!searching && this.ui.chatFilter) {
      this.ui.chatFilter = "";
      this.el.search.value = "";
    }
    const permission = this.attention.permission();
    if (this.el.notifyBanner.__sig !== permission) {
      this.el.notifyBanner.__sig = permission;
      replace(this.el.notifyBanner, this.attention.banner());
    }
    const unread = this.store.totalUnread();
    document.title = unread ? `(${unread}) ${t("WeChat Web")}` : t("WeChat Web");
    // Each tab owns the main pane while shown; the others rebuild theirs on return.
    if (tab !== "wallet") this.el.main.__wallet = null;
    if (tab !== "shake") this.el.main.__shake = null;
    if (tab === "chats") {
      renderChatList(this.el.list, this);
      if (this.el.main.__contactSelection !== undefined) {
        this.el.main.__contactSelection = undefined;
        this.el.main.__chat = null;
      }
      renderChat(this.el.main, this);
    } else if (tab === "shake") {
      this.el.main.__chat = null;
      this.el.main.__contactSelection = undefined;
      this.shake.renderSide(this.el.shakeSide);
      this.shake.render(this.el.main);
    } else if (tab === "wallet") {
      this.el.main.__chat = null;
      this.el.main.__contactSelection = undefined;
      this.wallet.renderSide(this.el.walletSide);
      this.wallet.render(this.el.main);
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
    if (s.state === "online" && s.stoppedUntil > now) {
      // Connected, but told to stay away (a refused websocket tried from the
      // long-poll, a tier-2 throttle): nothing new is asked for until then.
      state = "paused";
      text = s.pauseReason === "overloaded"
        ? t("Server busy · retrying in {time}", { time: countdown(s.stoppedUntil - now) })
        : t("Paused by the server · retrying in {time}", { time: countdown(s.stoppedUntil - now) });
    } else if (s.state === "online") {
      state = "online";
      text = s.transport === "longpoll" ? t("Online · over HTTP (websockets blocked)") : t("Online");
    } else if (s.state === "waiting" && s.stoppedUntil > now) {
      state = "paused";
      text = t("Paused by the server · reconnecting in {time}", { time: countdown(s.stoppedUntil - now) });
    } else if (s.state === "waiting") {
      state = "offline";
      text = t("Offline · reconnecting in {time}", { time: countdown(s.waitUntil - now) });
      retry = true;
    } else if (s.state === "connecting" && s.connects > 0) {
      state = "connecting";
      text = t("Reconnecting…");
    } else if (s.state === "connecting" || s.state === "idle") {
      state = "connecting";
      text = t("Connecting…");
    } else {
      state = "offline";
      text = t("Disconnected");
    }
    if (state === "online" && s.throttledUntil > now) {
      // An overloaded server refused a request: not the user's doing.
      text = s.throttleReason === "overloaded"
        ? t("Online · server busy, retrying in {time}", { time: countdown(s.throttledUntil - now) })
        : t("Online · sending too fast, wait {time}", { time: countdown(s.throttledUntil - now) });
    }
    const sig = `${state}|${text}|${retry}`;
    if (node.__sig === sig) return;
    node.__sig = sig;
    node.dataset.state = state;
    replace(node,
      h("span", { class: "conn-dot", "aria-hidden": "true" }),
      h("span", { class: "conn-text", testid: "conn-text" }, text),
      retry ? h("button", { type: "button", class: "btn btn-link conn-retry", testid: "conn-retry", onclick: () => this.link.retryNow() }, t("Retry now")) : null);
  }

  tick() {
    this.renderConnection();
    const now = Date.now();
    // Contacts that failed to load (an overloaded server refused them past the
    // retries) are asked again every 10 s: never "Friends (0)" for good.
    if (!this.contactsLoaded && this.link.isUp() && !this.link.pauseLeft()
      && now - (this.contactsTriedAt || 0) > 10000) {
      this.refreshContacts().catch(() => {});
    }
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
      flushLinkStats: () => this.link.flushStats(), // link statistics to the server now
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
      notifications: () => this.attention.shown.map((n) => ({ ...n })),
      beeps: () => this.attention.beeps || 0,
      shutdown: () => this.stop(), // no more frames or requests from this page
      shake: () => this.shake.snapshot(), // the shake page's counts and its requests' log
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
let arrivalShown = false;

/** Sent here by another data centre's web client (home.js): say why, prefill the login. */
function arrivalNotice() {
  if (!arrival || arrivalShown) return { notice: "", identifier: "" };
  arrivalShown = true;
  return {
    notice: t("Your account lives in data centre {datacenter}: log in here to continue.", { datacenter: arrival.datacenter }),
    identifier: arrival.identifier,
  };
}

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
  const device = () => ({ platform: "web", client_version: CLIENT_VERSION, name: browserName(), device_uuid: deviceUuid() });
  const started = (answer) => {
    storedSession.set({ ticket: answer.ticket, expiresAt: answer.expires_at, user: answer.user, device: answer.device, flags: answer.flags });
    boot();
  };
  const sentHere = arrivalNotice();
  showLogin(root, {
    notice: notice || sentHere.notice,
    identifier: sentHere.identifier,
    onSubmit: async (identifier, password) => {
      let answer;
      try {
        answer = await new Api().login(identifier, password, device());
      } catch (error) {
        // Another data centre is this user's home (docs/protocol.md §2b): log in there.
        if (error instanceof ApiError && error.homeElsewhere) {
          const { datacenter, endpoints } = error.details;
          error.details.leaving = Boolean(goHome({ datacenter, endpoints, identifier }));
        }
        throw error;
      }
      started(answer);
    },
    // Sign-up (POST /api/accounts/register): a phone number or an e-mail address.
    onSignup: async ({ nickname, identifier, password }) => {
      const body = { nickname, password, device: device() };
      body[identifier.includes("@") ? "email" : "phone"] = identifier;
      started(await new Api().call("POST", "/api/accounts/register", { body, auth: false }));
    },
  });
}

window.addEventListener("error", (event) => console.error("webclient:", event.message));
boot();

export { ApiError };
