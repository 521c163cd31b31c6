// The chat list (left) and the open conversation (right).

import { openChatPanel } from "./chat-panel.js";
import { acceptDrops, buildComposer, snippet } from "./composer.js";
import { toast } from "./dialogs.js";
import { avatar, h, icon, renderKeyed, replace } from "./dom.js";
import { clockTime, fileSize, listTime, separatorTime } from "./format.js";
import { t } from "./i18n.js";
import { showMessageMenu } from "./message-menu.js";
import { articleCards, menuBar } from "./official-view.js";
import { packetBubble, packetSignature, packetTaps, sendDialog } from "./redpacket-view.js";

const RECALL_WINDOW_MS = 120 * 1000;
const SEPARATOR_GAP_MS = 5 * 60 * 1000;

// --- The chat list ------------------------------------------------------------------------

export function renderChatList(container, app) {
  const { store, ui } = app;
  const all = store.sortedConversations();
  const filter = (ui.chatFilter || "").trim().toLowerCase();
  const convs = filter ? all.filter((c) => matchesFilter(c, app, filter)) : all;
  if (filter && !convs.length) {
    container.__keyed = null;
    replace(container, h("div", { class: "empty-list", testid: "chat-search-empty" }, h("p", {}, `No chats match “${ui.chatFilter.trim()}”.`)));
    return;
  }
  if (!convs.length) {
    container.__keyed = null;
    replace(
      container,
      h("div", { class: "empty-list", testid: "chat-list-empty" },
        h("p", {}, t("No chats yet.")),
        h("button", { class: "btn btn-link", onclick: () => app.showTab("contacts") }, t("Start one from your contacts"))),
    );
    return;
  }
  if (!container.__keyed) container.replaceChildren();
  renderKeyed(
    container,
    convs,
    (c) => c.id,
    (c) => {
      const node = h("button", {
        type: "button",
        class: "chat-item",
        testid: "chat-item",
        dataset: { conversationId: String(c.id) },
        onclick: () => app.openConversation(c.id),
      });
      fillChatItem(node, c, app);
      return node;
    },
    (node, c) => fillChatItem(node, c, app),
  );
  for (const node of container.children) {
    node.classList.toggle("active", Number(node.dataset.conversationId) === ui.openId);
  }
}

function matchesFilter(conv, app, filter) {
  const { store } = app;
  const title = store.title(conv).toLowerCase();
  const preview = store.preview(conv.lastMessage, { group: conv.kind === "group" }).toLowerCase();
  return title.includes(filter) || preview.includes(filter);
}

function fillChatItem(node, conv, app) {
  const { store } = app;
  const title = store.title(conv);
  const preview = store.preview(conv.lastMessage, { group: conv.kind === "group" });
  const sender = conv.lastMessage && conv.lastMessage.sender;
  if (sender && !store.users.has(sender)) {
    if (conv.kind === "official") app.loadOfficial(conv.id); // the account's name
    else app.ensureMembers(conv); // a name we lack
  }
  const time = conv.lastActivity ? listTime(conv.lastActivity) : "";
  const pending = app.outbox.forConversation(conv.id);
  const failed = pending.some((i) => i.state === "failed");
  // The peer gives the avatar its colour, and may be learnt after the first draw.
  const sig = JSON.stringify([title, preview, time, conv.unread, conv.kind, pending.length, failed, conv.memberCount, conv.peer,
    Boolean(conv.muted), Boolean(conv.pinned)]);
  if (node.__sig === sig) return;
  node.__sig = sig;
  node.classList.toggle("pinned", Boolean(conv.pinned));
  node.classList.toggle("muted", Boolean(conv.muted));
  node.dataset.pinned = String(Boolean(conv.pinned));
  node.dataset.muted = String(Boolean(conv.muted));
  const peerUser = conv.kind === "direct" ? store.users.get(conv.peer) : null;
  const lastPending = pending.length ? pending[pending.length - 1] : null;
  replace(
    node,
    h("span", { class: "chat-item-avatar" },
      avatar(title, conv.kind === "direct" ? conv.peer : -conv.id, {
        url: peerUser && peerUser.avatar_url, group: conv.kind === "group",
      }),
      conv.unread > 0
        ? h("span", { class: conv.muted ? "badge badge-muted" : "badge", testid: "chat-item-unread" }, conv.unread > 99 ? "99+" : String(conv.unread))
        : null),
    h("span", { class: "chat-item-body" },
      h("span", { class: "chat-item-top" },
        h("span", { class: "chat-item-name", testid: "chat-item-name" }, title),
        h("span", { class: "chat-item-time" }, time)),
      conv.muted ? h("span", { class: "chat-item-muted", testid: "chat-item-muted", title: t("Muted") }, "🔕") : null,
      h("span", { class: "chat-item-preview", testid: "chat-item-preview" },
        failed ? h("span", { class: "preview-failed" }, t("[Not sent] ")) : lastPending ? h("span", { class: "preview-pending" }, t("[Sending] ")) : null,
        lastPending ? lastPending.content.text || "" : preview)),
  );
}

// --- The open conversation --------------------------------------------------------------

export function renderChat(main, app) {
  const { store, ui } = app;
  const conv = store.conversation(ui.openId);
  if (!conv || conv.gone) {
    main.__chat = null;
    replace(main, placeholder(t("Select a chat to start messaging")));
    return;
  }
  let view = main.__chat;
  if (!view || view.id !== conv.id) {
    view = buildChat(conv, app);
    main.__chat = view;
    replace(main, view.root);
  }
  const title = store.title(conv);
  view.title.textContent = title;
  view.subtitle.textContent = conv.kind === "group" ? `(${conv.memberCount})` : "";
  const typists = app.attention.typists(conv.id).filter((id) => id !== store.me.id);
  view.typing.textContent = !typists.length ? ""
    : conv.kind === "group" ? t("{name} is typing…", { name: typists.map((id) => store.nameOf(id)).join(", ") })
      : t("typing…");
  view.typing.hidden = !typists.length;
  view.more.hidden = !conv.moreHistory || !conv.historyLoaded;
  if (view.menuSlot) {
    const account = app.officialAccounts.get(conv.id);
    const sig = JSON.stringify(account || null);
    if (view.menuSlot.__sig !== sig) {
      view.menuSlot.__sig = sig;
      replace(view.menuSlot, menuBar(app, conv));
    }
  }
  view.loading.hidden = conv.historyLoaded;
  // Sending red packets is gray-released (a flag may switch it off); opening never is.
  if (view.redpacket) view.redpacket.hidden = !app.redpackets.sendingEnabled();

  const wasAtBottom = view.scroller.scrollHeight - view.scroller.scrollTop - view.scroller.clientHeight < 40;
  const before = view.rows.childElementCount;
  renderKeyed(view.rows, chatRows(conv, app), (r) => r.key, (r) => buildRow(r, app), (n, r) => updateRow(n, r, app));
  if (view.stickToBottom || wasAtBottom || before === 0) {
    view.scroller.scrollTop = view.scroller.scrollHeight;
    view.stickToBottom = false;
  }
  updateJump(view, conv, app);
}

/** "N new messages ↑": to the first message unread when the chat was opened. */
function updateJump(view, conv, app) {
  if (view.firstUnread === undefined && conv.historyLoaded) {
    // Noted once, when the chat opens: reading it then moves the read position.
    view.firstUnread = view.unreadAtOpen > 0 ? view.readSeqAtOpen + 1 : null;
  }
  let above = false;
  if (view.firstUnread && !view.jumped) {
    const loaded = !conv.moreHistory || (conv.oldestLoadedSeq !== null && conv.oldestLoadedSeq <= view.firstUnread);
    const target = loaded ? firstRowFrom(view, view.firstUnread) : null;
    above = !target || target.offsetTop < view.scroller.scrollTop;
  }
  const show = Boolean(view.firstUnread) && above && !view.jumped;
  view.jump.hidden = !show;
  if (show) view.jump.textContent = t("↑ {n} new messages", { n: view.unreadAtOpen });
}

function firstRowFrom(view, seq) {
  return [...view.rows.querySelectorAll("[data-seq]")].find((n) => Number(n.dataset.seq) >= seq) || null;
}

async function jumpToFirstUnread(view, conv, app) {
  view.jumped = true;
  view.jump.hidden = true;
  // Older pages until the first unread message is loaded (or there is no more).
  for (let pages = 0; pages < 20; pages++) {
    if (conv.oldestLoadedSeq === null || conv.oldestLoadedSeq <= view.firstUnread || !conv.moreHistory) break;
    await app.loadEarlier(conv.id);
  }
  app.render();
  const target = firstRowFrom(view, view.firstUnread);
  if (target) {
    target.scrollIntoView({ block: "start" });
    target.classList.add("flash");
  }
}

function placeholder(text) {
  return h("div", { class: "placeholder", testid: "chat-placeholder" },
    h("div", { class: "placeholder-logo" }, icon("logo", 72)),
    h("p", {}, text));
}

function buildChat(conv, app) {
  const title = h("span", { class: "chat-title", testid: "chat-title" });
  const subtitle = h("span", { class: "chat-subtitle" });
  const rows = h("div", { class: "message-rows" });
  const more = h("button", {
    type: "button", class: "btn btn-link load-more", testid: "load-earlier",
    onclick: () => app.loadEarlier(conv.id),
  }, t("Load earlier messages"));
  const loading = h("div", { class: "loading" }, t("Loading…"));
  const scroller = h("div", { class: "message-list", testid: "message-list" }, more, loading, rows);
  const typing = h("span", { class: "chat-typing", testid: "typing-indicator", hidden: true });
  const jump = h("button", {
    type: "button", class: "btn jump-unread", testid: "jump-unread", hidden: true,
    onclick: () => jumpToFirstUnread(view, conv, app).catch((error) => toast(error.message, { error: true })),
  });
  // Filled in below: the composer needs the view (it scrolls to the bottom on send).
  const view = { id: conv.id, stickToBottom: true };
  const composer = buildComposer(conv, app, view);
  const { input } = composer;
  const menuSlot = conv.kind === "official" ? h("div", { class: "official-menu-slot" }) : null;
  const redpacket = conv.kind === "direct" || conv.kind === "group"
    ? h("button", {
      type: "button", class: "btn btn-redpacket-action", testid: "redpacket-button", title: t("Send a red packet"),
      onclick: () => sendDialog(conv, app).catch((error) => toast(error.message, { error: true })),
    }, t("Red packet"))
    : null;
  // The header opens the chat's panel (settings; a group's administration).
  const heading = conv.kind === "official"
    ? h("span", { class: "chat-heading" }, title, subtitle)
    : h("button", {
      type: "button", class: "chat-heading chat-heading-button", testid: "chat-header-button",
      title: t("Chat info"), onclick: () => openChatPanel(conv, app),
    }, title, subtitle);
  if (redpacket) composer.root.querySelector(".composer-actions").insertBefore(redpacket, composer.root.querySelector("[data-testid=composer-send]"));
  const root = h("section", { class: "chat", testid: "chat-view", dataset: { conversationId: String(conv.id), kind: conv.kind } },
    h("header", { class: "chat-header" }, heading, typing),
    scroller,
    jump,
    menuSlot,
    composer.root,
  );
  if (conv.kind !== "official") acceptDrops(root, (files) => composer.addFiles(files));
  Object.assign(view, {
    root, title, subtitle, rows, scroller, more, loading, input, menuSlot, redpacket, typing, jump, composer,
    unreadAtOpen: conv.unreadAtOpen ?? conv.unread, readSeqAtOpen: conv.readSeqAtOpen ?? conv.readSeq,
  });
  scroller.addEventListener("scroll", () => updateJump(view, conv, app));
  setTimeout(() => input.focus(), 0);
  return view;
}

/** The rows of a chat: time separators, messages in seq order, then unsent messages. */
function chatRows(conv, app) {
  const { store } = app;
  const rows = [];
  let lastTime = 0;
  const pushSeparator = (key, iso) => {
    const t = Date.parse(iso);
    if (!Number.isNaN(t) && t - lastTime > SEPARATOR_GAP_MS) {
      rows.push({ key: `t:${key}`, type: "time", label: separatorTime(iso) });
    }
    if (!Number.isNaN(t)) lastTime = t;
  };
  const matched = new Set(app.outbox.items.map((i) => i.matched).filter(Boolean));
  for (const message of store.orderedMessages(conv)) {
    if (message.kind === "recall") continue; // shown on the message it recalled
    if (conv.hidden && conv.hidden.has(message.id)) continue; // deleted for me
    pushSeparator(`m${message.id}`, message.created_at);
    rows.push({ key: `m:${message.id}`, type: "message", message, pendingMatch: matched.has(message.id) });
  }
  for (const item of app.outbox.forConversation(conv.id)) {
    if (item.matched && conv.messages.has(item.matched)) continue; // already shown from sync
    pushSeparator(`p${item.client_msg_id}`, item.created_at);
    rows.push({ key: `p:${item.client_msg_id}`, type: "pending", item });
  }
  return rows;
}

function rowSignature(row, app) {
  if (row.type === "time") return row.label;
  if (row.type === "pending") {
    const { item } = row;
    return JSON.stringify(["p", item.state, item.error && item.error.message, app.link && app.link.throttledUntil > Date.now()]);
  }
  const m = row.message;
  const mine = m.sender === app.store.me.id;
  const recallable = mine && !m.recalled && m.kind !== "redpacket" && canRecall(m);
  const packet = m.kind === "redpacket" ? packetSignature(m, app) : null;
  const quoted = m.body && m.body.reply_to ? quotedMessage(m, app) : null;
  const quoteSig = quoted ? [quoted.recalled, app.store.nameOf(quoted.sender)] : null;
  return JSON.stringify(["m", m.recalled, mine, recallable, app.store.nameOf(m.sender), m.kind, m.body, packet, quoteSig]);
}

function buildRow(row, app) {
  const node = h("div", { class: "row" });
  updateRow(node, row, app);
  return node;
}

function updateRow(node, row, app) {
  const sig = rowSignature(row, app);
  if (node.__sig === sig) return;
  node.__sig = sig;
  node.className = "row";
  node.removeAttribute("data-testid");
  for (const name of ["messageId", "seq", "state", "mine", "clientMsgId", "recalled"]) delete node.dataset[name];
  if (row.type === "time") {
    node.classList.add("row-time");
    replace(node, h("span", {}, row.label));
    return;
  }
  if (row.type === "pending") {
    fillPending(node, row.item, app);
    return;
  }
  fillMessage(node, row.message, app);
}

function canRecall(message) {
  return Date.now() - Date.parse(message.created_at) < RECALL_WINDOW_MS - 2000;
}

function fillMessage(node, message, app) {
  const { store } = app;
  const mine = message.sender === store.me.id;
  node.dataset.testid = "message";
  node.dataset.messageId = String(message.id);
  node.dataset.seq = String(message.seq);
  if (message.recalled) {
    node.dataset.state = "recalled";
    node.dataset.recalled = "true";
    node.classList.add("row-notice");
    const who = mine ? t("You") : store.nameOf(message.sender);
    replace(node, h("span", { testid: "message-recalled" }, `${who} recalled a message`));
    return;
  }
  if (message.kind === "system") {
    node.dataset.state = "system";
    node.classList.add("row-notice");
    replace(node, h("span", { testid: "message-system" }, store.systemText(message)));
    return;
  }
  node.dataset.state = "sent";
  node.dataset.mine = String(mine);
  if (app.attention.mentionsMe(message)) node.dataset.mentionsMe = "true";
  else delete node.dataset.mentionsMe;
  const conv = store.conversation(message.conversation);
  if (!node.__menu) {
    // One listener per row node; it reads the row's message when it fires.
    node.__menu = true;
    node.addEventListener("contextmenu", (event) => {
      const current = node.__message;
      if (!current || current.recalled || node.dataset.state !== "sent") return;
      event.preventDefault();
      const view = app.el.main.__chat;
      showMessageMenu(current, app, view && view.composer, event.clientX, event.clientY);
    });
  }
  node.__message = message;
  if (message.kind === "redpacket") packetTaps(node, app);
  bubbleRow(node, {
    mine,
    senderId: message.sender,
    showName: !mine && conv && conv.kind === "group",
    content: messageContent(message, app),
    time: clockTime(message.created_at),
    // A red packet is money already in escrow: it is never recalled.
    status: mine && message.kind !== "redpacket" && canRecall(message)
      ? h("button", {
        type: "button", class: "msg-action", testid: "recall-button", title: t("Recall this message"),
        onclick: () => app.recall(message),
      }, t("Recall"))
      : null,
    actions: null,
    plain: message.kind === "redpacket",
    app,
  });
}

function fillPending(node, item, app) {
  node.__message = null;
  node.dataset.testid = "message";
  node.dataset.clientMsgId = item.client_msg_id;
  node.dataset.state = item.state; // pending | failed
  node.dataset.mine = "true";
  const throttled = app.link && app.link.throttledUntil > Date.now();
  const busy = throttled && app.link.throttleReason === "overloaded"; // the server's load, not the user's rate
  const status = item.state === "failed"
    ? h("span", { class: "msg-status failed", testid: "message-status", title: item.error ? item.error.message : "" }, "!")
    : h("span", { class: "msg-status pending", testid: "message-status", title: busy ? t("Waiting: the server is busy") : throttled ? t("Waiting: sending too fast") : t("Sending…") },
      h("span", { class: "spinner", "aria-label": t("Sending") }));
  const actions = item.state === "failed"
    ? [
      h("span", { class: "msg-error" }, item.error ? item.error.message : t("Not sent")),
      h("button", { type: "button", class: "msg-action", testid: "retry-button", onclick: () => app.retrySend(item.client_msg_id) }, t("Retry")),
      h("button", { type: "button", class: "msg-action", testid: "discard-button", onclick: () => app.discardSend(item.client_msg_id) }, t("Delete")),
    ]
    : null;
  bubbleRow(node, {
    mine: true,
    senderId: app.store.me.id,
    showName: false,
    content: item.content.kind === "image" || item.content.kind === "file"
      ? textContent(`${item.content.kind === "image" ? t("[Image]") : t("[File]")} ${(item.meta && item.meta.name) || ""}`)
      : textContent(item.content.text || ""),
    time: clockTime(item.created_at),
    status,
    actions,
    app,
  });
}

function bubbleRow(node, { mine, senderId, showName, content, time, status, actions, plain = false, app }) {
  const name = app.store.nameOf(senderId);
  const user = app.store.users.get(senderId);
  node.classList.add("row-bubble", mine ? "mine" : "theirs");
  replace(
    node,
    avatar(name, senderId, { size: 36, url: user && user.avatar_url }),
    h("div", { class: "bubble-col" },
      showName ? h("span", { class: "sender-name", testid: "message-sender" }, name) : null,
      h("div", { class: "bubble-line" },
        status,
        h("div", { class: plain ? "bubble bubble-plain" : "bubble", title: time }, content)),
      actions ? h("div", { class: "msg-actions" }, actions) : null),
  );
}

function textContent(text) {
  return h("span", { class: "message-text", testid: "message-text" }, text);
}

/** The message a reply quotes, if we have it. */
function quotedMessage(message, app) {
  const conv = app.store.conversation(message.conversation);
  return conv ? conv.messages.get(message.body.reply_to) || null : null;
}

function quoteBlock(message, app) {
  const quoted = quotedMessage(message, app);
  const text = quoted
    ? `${app.store.nameOf(quoted.sender)}: ${snippet(quoted, app)}`
    : t("A quoted message");
  return h("span", { class: "message-quote", testid: "message-quote", dataset: { replyTo: String(message.body.reply_to) } }, text);
}

/** Text with its mentions ("@Name" of a mentioned member, "@all") highlighted. */
function mentionText(message, app) {
  const body = message.body || {};
  const text = body.text || "";
  const names = (Array.isArray(body.mentions) ? body.mentions : []).map((id) => ({ id, tag: `@${app.store.nameOf(id)}` }));
  if (body.mention_all) names.push({ id: "all", tag: "@all" });
  if (!names.length) return textContent(text);
  const me = app.store.me.id;
  const parts = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const name of names) {
      const at = rest.indexOf(name.tag);
      if (at >= 0 && (!best || at < best.at)) best = { ...name, at };
    }
    if (!best) {
      parts.push(rest);
      break;
    }
    if (best.at) parts.push(rest.slice(0, best.at));
    const mine = best.id === me || best.id === "all";
    parts.push(h("span", { class: mine ? "mention mention-me" : "mention", testid: "mention" }, best.tag));
    rest = rest.slice(best.at + best.tag.length);
  }
  return h("span", { class: "message-text", testid: "message-text" }, parts);
}

function messageContent(message, app) {
  const body = message.body || {};
  if (message.kind === "text" && body.official && body.official.type === "news") return articleCards(body.official);
  const quote = body.reply_to ? quoteBlock(message, app) : null;
  if (quote) return h("span", { class: "with-quote" }, quote, plainContent(message, app));
  return plainContent(message, app);
}

function plainContent(message, app) {
  const body = message.body || {};
  if (message.kind === "text") return mentionText(message, app);
  if (message.kind === "image") {
    const holder = h("span", { class: "message-image", testid: "message-image" }, t("[Image] loading…"));
    app.loadAttachment(body.attachment).then((url) => {
      replace(holder, h("img", { src: url, alt: body.name || "image" }));
    }).catch(() => replace(holder, t("[Image unavailable]")));
    return h("span", {}, holder, body.text ? h("span", { class: "caption message-text", testid: "message-text" }, body.text) : null);
  }
  if (message.kind === "file") {
    return h("span", { class: "message-file" },
      h("button", {
        type: "button", class: "btn btn-link", testid: "message-file",
        onclick: () => app.downloadAttachment(body.attachment, body.name),
      }, icon("file", 18), ` ${body.name || t("file")}`),
      h("span", { class: "file-size" }, fileSize(body.size)),
      body.text ? h("span", { class: "caption message-text", testid: "message-text" }, body.text) : null);
  }
  if (message.kind === "redpacket") return packetBubble(message, app);
  return textContent(`[${message.kind}]`);
}
