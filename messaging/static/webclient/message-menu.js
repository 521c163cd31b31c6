// The context menu of a message (right click, or the "⋯" of a bubble): copy,
// quote, forward, recall, delete for me; and the forward dialog.

import { modal, toast } from "./dialogs.js";
import { avatar, h } from "./dom.js";
import { snippet, uploadFile } from "./composer.js";
import { t } from "./i18n.js";

const RECALL_WINDOW_MS = 120 * 1000;
const FORWARDABLE = new Set(["text", "image", "file"]);

let openMenu = null;

export function closeMessageMenu() {
  if (openMenu) openMenu();
  openMenu = null;
}

export function canRecall(message, app) {
  return message.sender === app.store.me.id && !message.recalled && FORWARDABLE.has(message.kind)
    && Date.now() - Date.parse(message.created_at) < RECALL_WINDOW_MS - 2000;
}

/** Show the menu of `message` at (x, y); `composer` takes quotes. */
export function showMessageMenu(message, app, composer, x, y) {
  closeMessageMenu();
  const body = message.body || {};
  const item = (testid, label, action) => h("button", {
    type: "button", class: "menu-item", role: "menuitem", testid,
    onclick: () => {
      closeMessageMenu();
      action();
    },
  }, label);
  const items = [];
  if (message.kind === "text" && body.text) {
    items.push(item("menu-copy", t("Copy"), () => copyText(body.text)));
  }
  if (FORWARDABLE.has(message.kind) && !message.recalled) {
    items.push(item("menu-quote", t("Quote"), () => composer && composer.setQuote(message)));
    items.push(item("menu-forward", t("Forward"), () => forwardDialog(message, app)));
  }
  if (canRecall(message, app)) items.push(item("menu-recall", t("Recall"), () => app.recall(message)));
  items.push(item("menu-delete", t("Delete for me"), () => app.hideMessage(message)));
  const menu = h("div", { class: "message-menu", testid: "message-menu", role: "menu" }, items);
  document.body.append(menu);
  const rect = menu.getBoundingClientRect();
  menu.style.left = `${Math.max(4, Math.min(x, window.innerWidth - rect.width - 4))}px`;
  menu.style.top = `${Math.max(4, Math.min(y, window.innerHeight - rect.height - 4))}px`;
  const away = (event) => {
    if (!menu.contains(event.target)) closeMessageMenu();
  };
  const key = (event) => {
    if (event.key === "Escape") closeMessageMenu();
  };
  setTimeout(() => document.addEventListener("mousedown", away), 0);
  document.addEventListener("keydown", key);
  openMenu = () => {
    menu.remove();
    document.removeEventListener("mousedown", away);
    document.removeEventListener("keydown", key);
  };
  const first = menu.querySelector("button");
  if (first) first.focus();
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast(t("Copied"));
  } catch {
    // No clipboard permission (an insecure origin): select the text for Ctrl+C instead.
    const area = h("textarea", { class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    const done = document.execCommand && document.execCommand("copy");
    area.remove();
    toast(done ? t("Copied") : t("Could not copy"), { error: !done });
  }
}

/** Pick chats to forward `message` to. Images and files are sent again as new uploads. */
export function forwardDialog(message, app) {
  const { store } = app;
  const chosen = new Set();
  const error = h("p", { class: "error", testid: "forward-error", hidden: true });
  const chats = store.sortedConversations().filter((c) => c.kind !== "official");
  let go;
  const list = h("div", { class: "pick-list" }, chats.map((c) => {
    const box = h("input", {
      type: "checkbox",
      onchange: () => {
        if (box.checked) chosen.add(c.id);
        else chosen.delete(c.id);
        go.disabled = chosen.size === 0;
      },
    });
    const title = store.title(c);
    return h("label", { class: "pick-item", testid: "forward-option", dataset: { conversationId: String(c.id) } },
      box, avatar(title, c.kind === "direct" ? c.peer : -c.id, { size: 28, group: c.kind === "group" }), h("span", {}, title));
  }));
  modal("forward-dialog", t("Forward to…"), [
    h("p", { class: "muted small forward-preview" }, snippet(message, app)),
    list, error,
  ], (close) => {
    go = h("button", {
      type: "button", class: "btn btn-primary", testid: "forward-send", disabled: true,
      onclick: async () => {
        go.disabled = true;
        try {
          await forward(message, [...chosen], app);
          close();
          toast(t("Forwarded"));
        } catch (failure) {
          error.textContent = failure.message;
          error.hidden = false;
          go.disabled = false;
        }
      },
    }, t("Send"));
    return [h("button", { type: "button", class: "btn", onclick: close }, t("Cancel")), go];
  });
}

async function forward(message, conversationIds, app) {
  const body = message.body || {};
  if (message.kind === "text") {
    for (const id of conversationIds) app.send(id, { kind: "text", text: body.text || "" });
    return;
  }
  // An upload belongs to the chat it was sent to: forwarding sends a copy.
  const url = await app.loadAttachment(body.attachment);
  const blob = await (await fetch(url)).blob();
  const file = new File([blob], body.name || "file", { type: body.content_type || blob.type });
  for (const id of conversationIds) {
    const attachment = await uploadFile(app, file, message.kind, () => {});
    app.send(id, { kind: message.kind, attachment: attachment.id },
      { name: attachment.name, size: attachment.size, content_type: attachment.content_type });
  }
}
