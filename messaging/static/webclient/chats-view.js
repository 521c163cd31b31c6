// The chat list (left) and the open conversation (right).

import { avatar, h, icon, renderKeyed, replace } from "./dom.js";
import { clockTime, fileSize, listTime, separatorTime } from "./format.js";
import { articleCards, menuBar } from "./official-view.js";

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
        h("p", {}, "No chats yet."),
        h("button", { class: "btn btn-link", onclick: () => app.showTab("contacts") }, "Start one from your contacts")),
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
  const sig = JSON.stringify([title, preview, time, conv.unread, conv.kind, pending.length, failed, conv.memberCount]);
  if (node.__sig === sig) return;
  node.__sig = sig;
  const peerUser = conv.kind === "direct" ? store.users.get(conv.peer) : null;
  const lastPending = pending.length ? pending[pending.length - 1] : null;
  replace(
    node,
    h("span", { class: "chat-item-avatar" },
      avatar(title, conv.kind === "direct" ? conv.peer : -conv.id, {
        url: peerUser && peerUser.avatar_url, group: conv.kind === "group",
      }),
      conv.unread > 0
        ? h("span", { class: "badge", testid: "chat-item-unread" }, conv.unread > 99 ? "99+" : String(conv.unread))
        : null),
    h("span", { class: "chat-item-body" },
      h("span", { class: "chat-item-top" },
        h("span", { class: "chat-item-name", testid: "chat-item-name" }, title),
        h("span", { class: "chat-item-time" }, time)),
      h("span", { class: "chat-item-preview", testid: "chat-item-preview" },
        failed ? h("span", { class: "preview-failed" }, "[Not sent] ") : lastPending ? h("span", { class: "preview-pending" }, "[Sending] ") : null,
        lastPending ? lastPending.content.text || "" : preview)),
  );
}

// --- The open conversation --------------------------------------------------------------

export function renderChat(main, app) {
  const { store, ui } = app;
  const conv = store.conversation(ui.openId);
  if (!conv || conv.gone) {
    main.__chat = null;
    replace(main, placeholder("Select a chat to start messaging"));
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

  const wasAtBottom = view.scroller.scrollHeight - view.scroller.scrollTop - view.scroller.clientHeight < 40;
  const before = view.rows.childElementCount;
  renderKeyed(view.rows, chatRows(conv, app), (r) => r.key, (r) => buildRow(r, app), (n, r) => updateRow(n, r, app));
  if (view.stickToBottom || wasAtBottom || before === 0) {
    view.scroller.scrollTop = view.scroller.scrollHeight;
    view.stickToBottom = false;
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
  }, "Load earlier messages");
  const loading = h("div", { class: "loading" }, "Loading…");
  const scroller = h("div", { class: "message-list", testid: "message-list" }, more, loading, rows);
  const input = h("textarea", {
    class: "composer-input",
    testid: "composer-input",
    rows: "3",
    maxlength: "4000",
    placeholder: "Type a message (Enter to send, Shift+Enter for a new line)",
    "aria-label": "Message",
  });
  const send = () => {
    const text = input.value;
    if (!text.trim()) return;
    app.send(conv.id, { kind: "text", text });
    input.value = "";
    app.drafts.delete(conv.id);
    view.stickToBottom = true;
    input.focus();
  };
  input.value = app.drafts.get(conv.id) || "";
  input.addEventListener("input", () => app.drafts.set(conv.id, input.value));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  const menuSlot = conv.kind === "official" ? h("div", { class: "official-menu-slot" }) : null;
  const root = h("section", { class: "chat", testid: "chat-view", dataset: { conversationId: String(conv.id), kind: conv.kind } },
    h("header", { class: "chat-header" }, h("span", { class: "chat-heading" }, title, subtitle)),
    scroller,
    menuSlot,
    h("footer", { class: "composer" },
      input,
      h("div", { class: "composer-actions" },
        h("span", { class: "composer-hint", testid: "throttle-hint" }),
        h("button", { type: "button", class: "btn btn-primary", testid: "composer-send", onclick: send }, "Send"))),
  );
  const view = { id: conv.id, root, title, subtitle, rows, scroller, more, loading, input, menuSlot, stickToBottom: true };
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
  const recallable = mine && !m.recalled && canRecall(m);
  return JSON.stringify(["m", m.recalled, mine, recallable, app.store.nameOf(m.sender), m.kind, m.body]);
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
    const who = mine ? "You" : store.nameOf(message.sender);
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
  const conv = store.conversation(message.conversation);
  bubbleRow(node, {
    mine,
    senderId: message.sender,
    showName: !mine && conv && conv.kind === "group",
    content: messageContent(message, app),
    time: clockTime(message.created_at),
    status: mine && canRecall(message)
      ? h("button", {
        type: "button", class: "msg-action", testid: "recall-button", title: "Recall this message",
        onclick: () => app.recall(message),
      }, "Recall")
      : null,
    actions: null,
    app,
  });
}

function fillPending(node, item, app) {
  node.dataset.testid = "message";
  node.dataset.clientMsgId = item.client_msg_id;
  node.dataset.state = item.state; // pending | failed
  node.dataset.mine = "true";
  const throttled = app.link && app.link.throttledUntil > Date.now();
  const status = item.state === "failed"
    ? h("span", { class: "msg-status failed", testid: "message-status", title: item.error ? item.error.message : "" }, "!")
    : h("span", { class: "msg-status pending", testid: "message-status", title: throttled ? "Waiting: sending too fast" : "Sending…" },
      h("span", { class: "spinner", "aria-label": "Sending" }));
  const actions = item.state === "failed"
    ? [
      h("span", { class: "msg-error" }, item.error ? item.error.message : "Not sent"),
      h("button", { type: "button", class: "msg-action", testid: "retry-button", onclick: () => app.retrySend(item.client_msg_id) }, "Retry"),
      h("button", { type: "button", class: "msg-action", testid: "discard-button", onclick: () => app.discardSend(item.client_msg_id) }, "Delete"),
    ]
    : null;
  bubbleRow(node, {
    mine: true,
    senderId: app.store.me.id,
    showName: false,
    content: textContent(item.content.text || ""),
    time: clockTime(item.created_at),
    status,
    actions,
    app,
  });
}

function bubbleRow(node, { mine, senderId, showName, content, time, status, actions, app }) {
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
        h("div", { class: "bubble", title: time }, content)),
      actions ? h("div", { class: "msg-actions" }, actions) : null),
  );
}

function textContent(text) {
  return h("span", { class: "message-text", testid: "message-text" }, text);
}

function messageContent(message, app) {
  const body = message.body || {};
  if (message.kind === "text" && body.official && body.official.type === "news") return articleCards(body.official);
  if (message.kind === "text") return textContent(body.text || "");
  if (message.kind === "image") {
    const holder = h("span", { class: "message-image", testid: "message-image" }, "[Image] loading…");
    app.loadAttachment(body.attachment).then((url) => {
      replace(holder, h("img", { src: url, alt: body.name || "image" }));
    }).catch(() => replace(holder, "[Image unavailable]"));
    return h("span", {}, holder, body.text ? h("span", { class: "caption message-text", testid: "message-text" }, body.text) : null);
  }
  if (message.kind === "file") {
    return h("span", { class: "message-file" },
      h("button", {
        type: "button", class: "btn btn-link", testid: "message-file",
        onclick: () => app.downloadAttachment(body.attachment, body.name),
      }, icon("file", 18), ` ${body.name || "file"}`),
      h("span", { class: "file-size" }, fileSize(body.size)),
      body.text ? h("span", { class: "caption message-text", testid: "message-text" }, body.text) : null);
  }
  return textContent(`[${message.kind}]`);
}
