// What the client knows: users, contacts, conversations and their messages.
// Filled from the REST lists and kept current by sync entries (docs/protocol.md).
//
// Messages are keyed by id and shown in conversation-seq order, so a message
// learnt twice (history and sync, or a resend's duplicate ack) shows once.

import { yuan } from "./wallet-view.js";
import { t } from "./i18n.js";

// What the server counts as unread (messaging.services.kinds.unread_kinds: text,
// images, files and the registered kinds that declare counts_unread, red packets):
// counting otherwise here would make the badge jump when the conversation list comes.
const CONTENT_KINDS = new Set(["text", "image", "file", "redpacket"]);

export class Store {
  constructor(me) {
    this.me = me;
    this.users = new Map([[me.id, me]]);
    this.friends = []; // [{user, remark, created_at}]
    this.requests = []; // incoming friend requests
    this.conversations = new Map();
    this.listeners = new Set();
    this.openId = null;
  }

  /** Call `listener` on every change; returns a function that stops it. */
  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(what) {
    for (const listener of this.listeners) listener(what);
  }

  // --- Users ---------------------------------------------------------------------

  rememberUser(user) {
    if (!user || !user.id) return;
    this.users.set(user.id, { ...(this.users.get(user.id) || {}), ...user });
  }

  friendOf(userId) {
    return this.friends.find((f) => f.user.id === userId) || null;
  }

  /** The name to show for a user: the remark you gave them, else their nickname. */
  nameOf(userId) {
    if (userId === this.me.id) return this.me.nickname;
    const friend = this.friendOf(userId);
    if (friend && friend.remark) return friend.remark;
    const user = this.users.get(userId);
    return user ? user.nickname : t("User {id}", { id: userId });
  }

  setFriends(list) {
    this.friends = list;
    for (const f of list) this.rememberUser(f.user);
    this.changed("contacts");
  }

  setRequests(list) {
    this.requests = list;
    for (const r of list) {
      this.rememberUser(r.from_user);
      this.rememberUser(r.to_user);
    }
    this.changed("contacts");
  }

  pendingRequests() {
    return this.requests.filter((r) => r.status === "pending");
  }

  // --- Conversations -----------------------------------------------------------------

  conversation(id) {
    return this.conversations.get(Number(id)) || null;
  }

  /** Create or update a conversation's description (never its counters). */
  upsertConversation(meta) {
    const id = Number(meta.id);
    let conv = this.conversations.get(id);
    if (!conv) {
      conv = {
        id,
        kind: meta.kind,
        name: "",
        peer: null,
        memberCount: 0,
        lastSeq: 0,
        readSeq: 0,
        unread: 0,
        lastMessage: null,
        lastActivity: null,
        messages: new Map(),
        historyLoaded: false,
        oldestLoadedSeq: null,
        moreHistory: true,
        members: null,
        recalled: new Set(),
      };
      this.conversations.set(id, conv);
    }
    if (meta.kind) conv.kind = meta.kind;
    if (meta.name !== undefined) conv.name = meta.name;
    if (meta.peer !== undefined) conv.peer = meta.peer;
    if (meta.member_count !== undefined) conv.memberCount = meta.member_count;
    if (meta.adapted_from !== undefined) conv.adaptedFrom = meta.adapted_from;
    return conv;
  }

  title(conv) {
    if (!conv) return "";
    if (conv.kind === "direct" && conv.peer) return this.nameOf(conv.peer);
    return conv.name || (conv.kind === "group" ? t("Group chat") : t("Chat"));
  }

  /** Conversations: pinned first, then most recent activity first. */
  sortedConversations() {
    return [...this.conversations.values()]
      .filter((c) => !c.gone)
      .sort((a, b) => {
        // Pinned chats first, the most recently pinned on top (as the server lists them).
        if (Boolean(a.pinned) !== Boolean(b.pinned)) return a.pinned ? -1 : 1;
        const ta = a.lastActivity || "";
        const tb = b.lastActivity || "";
        if (ta !== tb) return ta < tb ? 1 : -1;
        return b.id - a.id;
      });
  }

  totalUnread() {
    let total = 0;
    for (const conv of this.conversations.values()) if (!conv.gone && !conv.muted) total += conv.unread;
    return total;
  }

  /**
   * Merge the REST conversation list: the server's counters win unless ours are
   * newer. With the complete list, conversations missing from it are gone (left,
   * removed), unless we learnt of them after the list was asked for.
   */
  mergeConversationList(rows, complete, askedAt = 0) {
    const seen = new Set();
    for (const row of rows) {
      const conv = this.upsertConversation(row.conversation);
      seen.add(conv.id);
      conv.gone = false;
      if (row.muted !== undefined) conv.muted = Boolean(row.muted);
      if (row.pinned !== undefined) conv.pinned = Boolean(row.pinned);
      const serverLast = Number(row.conversation.last_seq) || 0;
      if (serverLast >= conv.lastSeq) {
        conv.lastSeq = serverLast;
        conv.unread = Number(row.unread) || 0;
        conv.readSeq = Math.max(conv.readSeq, Number(row.read_seq) || 0);
        if (row.last_message) {
          conv.lastMessage = row.last_message;
          conv.lastActivity = row.last_message.created_at;
        }
      }
    }
    if (complete) {
      for (const conv of this.conversations.values()) {
        if (!seen.has(conv.id) && (conv.seenAt || 0) < askedAt) conv.gone = true;
      }
    }
    this.changed("conversations");
  }

  // --- Messages ----------------------------------------------------------------------

  /** Put one message in its conversation; returns true if it was new. */
  putMessage(conv, message) {
    const existing = conv.messages.get(message.id);
    if (existing) {
      if (message.recalled && !existing.recalled) {
        existing.recalled = true;
        existing.body = {};
      }
      return false;
    }
    const stored = { ...message };
    if (conv.recalled.has(stored.id)) {
      stored.recalled = true;
      stored.body = {};
    }
    conv.messages.set(stored.id, stored);
    if (stored.kind === "recall") this.markRecalled(conv, stored.body && stored.body.message_id);
    return true;
  }

  markRecalled(conv, messageId) {
    if (!messageId) return;
    conv.recalled.add(messageId);
    const target = conv.messages.get(messageId);
    if (target) {
      target.recalled = true;
      target.body = {};
    }
    if (conv.lastMessage && conv.lastMessage.id === messageId) {
      conv.lastMessage = { ...conv.lastMessage, recalled: true, body: {} };
    }
  }

  /** Deleted for me (on this or another of my devices): no longer shown. */
  markHidden(conversationId, messageId) {
    const conv = this.conversation(conversationId);
    if (!conv || !messageId) return;
    conv.hidden = conv.hidden || new Set();
    conv.hidden.add(Number(messageId));
    this.changed("messages");
  }

  /** Messages of a conversation in seq order. */
  orderedMessages(conv) {
    return [...conv.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Merge a page of history (oldest first). */
  mergeHistory(conv, messages, limit) {
    for (const message of messages) this.putMessage(conv, message);
    if (messages.length) {
      const oldest = messages[0].seq;
      conv.oldestLoadedSeq = conv.oldestLoadedSeq === null ? oldest : Math.min(conv.oldestLoadedSeq, oldest);
    }
    if (messages.length < limit) conv.moreHistory = false;
    conv.historyLoaded = true;
    this.changed("messages");
  }

  /**
   * Apply sync entries (all with seq above the key, in order). Returns what the
   * app must do next: refresh contacts or the conversation list.
   */
  applyEntries(entries, conversations) {
    const effects = { contacts: false, conversations: false, touched: new Set() };
    for (const [id, meta] of Object.entries(conversations || {})) {
      this.upsertConversation({ ...meta, id: Number(id) });
    }
    for (const entry of entries) {
      if (entry.kind === "message" && entry.message) {
        this.applyMessage(entry.message, effects);
      } else if (entry.kind === "read" && entry.payload) {
        const conv = this.conversation(entry.payload.conversation ?? entry.conversation);
        if (!conv) continue;
        conv.readSeq = Math.max(conv.readSeq, Number(entry.payload.read_seq) || 0);
        if (conv.readSeq >= conv.lastSeq) conv.unread = 0;
        else effects.conversations = true; // only the server can count the rest
        effects.touched.add(conv.id);
      } else if (entry.kind === "conversation" && entry.payload) {
        // Muted or pinned on one of my devices (this one included).
        const conv = this.conversation(entry.payload.conversation ?? entry.conversation);
        if (!conv) continue;
        conv.muted = Boolean(entry.payload.muted);
        conv.pinned = Boolean(entry.payload.pinned);
        effects.touched.add(conv.id);
      } else if (entry.kind === "contact") {
        effects.contacts = true;
        if (entry.payload && entry.payload.user) this.rememberUser(entry.payload.user);
      }
    }
    this.changed("entries");
    return effects;
  }

  applyMessage(message, effects) {
    const conv = this.upsertConversation({ id: message.conversation });
    conv.gone = false;
    conv.seenAt = Date.now();
    this.putMessage(conv, message);
    effects.touched.add(conv.id);
    if (message.seq > conv.lastSeq) {
      conv.lastSeq = message.seq;
      conv.lastMessage = message;
      conv.lastActivity = message.created_at;
      if (message.sender !== this.me.id && CONTENT_KINDS.has(message.kind)) conv.unread += 1;
      if (message.sender === this.me.id) {
        // Writing in a chat reads it, on the server too.
        conv.readSeq = Math.max(conv.readSeq, message.seq);
      }
    }
    if (message.kind === "system" && message.body) {
      const body = message.body;
      if (body.event === "renamed" && body.name) conv.name = body.name;
      if (body.event === "announcement") conv.announcement = body.text || "";
      if ((body.event === "admin_added" || body.event === "admin_removed") && body.user) {
        const role = body.event === "admin_added" ? "admin" : "member";
        const member = (conv.members || []).find((m) => m.id === body.user);
        if (member) member.role = role;
        if (body.user === this.me.id) conv.role = role;
      }
      if ((body.event === "left" && body.user === this.me.id) || (body.event === "removed" && body.user === this.me.id)) {
        effects.conversations = true;
      }
      if (["joined", "left", "removed"].includes(body.event)) {
        // Stale: whoever shows the members asks again (app.ensureMembers).
        conv.members = null;
        conv.membersRequest = null;
      }
    }
  }

  /** The chat is on screen: everything up to lastSeq is read. Returns the seq to report, or null. */
  markRead(conv) {
    if (!conv) return null;
    const hadUnread = conv.unread > 0;
    conv.unread = 0;
    if (conv.lastSeq > conv.readSeq) {
      conv.readSeq = conv.lastSeq;
      this.changed("conversations");
      return conv.lastSeq;
    }
    if (hadUnread) this.changed("conversations");
    return null;
  }

  setMembers(conv, detail) {
    conv.members = detail.members.map((m) => ({ id: m.user.id, role: m.role }));
    conv.owner = detail.owner;
    conv.role = detail.role;
    conv.announcement = detail.announcement;
    if (detail.muted !== undefined) conv.muted = Boolean(detail.muted);
    if (detail.pinned !== undefined) conv.pinned = Boolean(detail.pinned);
    for (const m of detail.members) this.rememberUser(m.user);
    this.upsertConversation(detail.conversation);
    this.changed("members");
  }

  /** An acknowledged send becomes a message of the conversation. */
  applyAck(item, ack) {
    const conv = this.upsertConversation({ id: ack.conversation });
    this.putMessage(conv, {
      id: ack.id,
      conversation: ack.conversation,
      seq: ack.seq,
      sender: this.me.id,
      kind: item.content.kind || "text",
      body: { ...(item.meta || {}), ...item.content },
      recalled: false,
      created_at: ack.created_at,
    });
    if (ack.seq > conv.lastSeq) {
      conv.lastSeq = ack.seq;
      conv.lastMessage = conv.messages.get(ack.id);
      conv.lastActivity = ack.created_at;
    }
    conv.readSeq = Math.max(conv.readSeq, ack.seq);
    this.changed("messages");
  }

  /** Describe a message for the chat list (group messages of others name their sender). */
  preview(message, { group = false } = {}) {
    if (!message) return "";
    const who = message.sender === this.me.id ? t("You") : this.nameOf(message.sender);
    if (message.recalled) return t("{name} recalled a message", { name: who });
    const body = message.body || {};
    const from = group && message.sender !== this.me.id ? `${who}: ` : "";
    switch (message.kind) {
      case "text":
        return from + (body.text || "");
      case "image":
        return `${from}${t("[Image]")}`;
      case "file":
        return `${from}${t("[File]")} ${body.name || ""}`;
      case "redpacket":
        return `${from}${t("[Red packet]")} ${body.greeting || t("Best wishes")}`;
      case "recall":
        return t("{name} recalled a message", { name: who });
      case "system":
        return this.systemText(message);
      default:
        return `[${message.kind}]`;
    }
  }

  systemText(message) {
    const b = message.body || {};
    const name = (id) => (id === this.me.id ? t("You") : this.nameOf(id));
    const names = (ids) => (ids || []).map(name).join(", ");
    switch (b.event) {
      case "created":
        return t("{name} created the group \"{group}\"", { name: name(message.sender), group: b.name || "" });
      case "joined":
        return t("{name} invited {names}", { name: name(b.by), names: names(b.users) });
      case "left":
        return t("{name} left the group", { name: name(b.user) }) + (b.new_owner ? t("; {name} is the new owner", { name: name(b.new_owner) }) : "");
      case "removed":
        return t("{name} removed {user}", { name: name(b.by), user: name(b.user) });
      case "renamed":
        return t("{name} renamed the group to \"{group}\"", { name: name(b.by), group: b.name || "" });
      case "announcement":
        return t("{name} posted an announcement: {text}", { name: name(b.by), text: b.text || "" });
      case "admin_added":
        return t("{name} made {user} an admin", { name: name(b.by), user: name(b.user) });
      case "admin_removed":
        return t("{name} removed {user} as admin", { name: name(b.by), user: name(b.user) });
      case "redpacket_refunded":
        if (b.refunded_to === "budget") {
          return t("{name}'s red packet expired with {n} unopened share(s); {amount} went back to the prize pool", { name: name(b.user), n: b.unopened || 0, amount: yuan(b.amount) });
        }
        return b.user === this.me.id
          ? t("Your red packet expired with {n} unopened share(s); {amount} went back to your wallet", { n: b.unopened || 0, amount: yuan(b.amount) })
          : t("{name}'s red packet expired with {n} unopened share(s)", { name: name(b.user), n: b.unopened || 0 });
      case "official_unavailable":
        // The server's text is WeChat's Chinese original: shown in the user's language here.
        return t("This official account cannot serve you right now; please try again later.");
      default:
        return b.text || t("System message");
    }
  }
}
