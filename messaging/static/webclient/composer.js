// The composer of an open chat: text with a character counter (nothing is cut
// silently), attachments (button, paste, drag and drop) uploaded with progress,
// an emoji picker, the @ picker of a group's members, and the quote being replied to.

import { toast } from "./dialogs.js";
import { avatar, h, replace } from "./dom.js";
import { fileSize } from "./format.js";
import { t } from "./i18n.js";

export const TEXT_LIMIT = 4000; // MESSAGING_TEXT_MAX_CHARS (docs/protocol.md §3)
const COUNTER_FROM = 0.8; // the counter shows from 80 % of the limit
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);
const EMOJI = [
  "😀", "😁", "😂", "🤣", "😊", "😍", "😘", "😎", "🤔", "😅", "😭", "😡",
  "😴", "🙄", "😱", "🥳", "👍", "👎", "👏", "🙏", "💪", "🤝", "👋", "✌️",
  "❤️", "💔", "🔥", "🎉", "🎁", "🧧", "🌹", "☕", "🍵", "🍺", "🍰", "🌙",
  "☀️", "⭐", "✅", "❌",
];

/** Upload a file (kind "image" or "file") with progress; resolves the attachment. */
export function uploadFile(app, file, kind, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/messaging/uploads");
    xhr.setRequestHeader("Authorization", `Ticket ${app.api.ticket}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new Error((body && body.message) || t("Upload failed ({status}).", { status: xhr.status })));
    };
    xhr.onerror = () => reject(new Error(t("No connection to the server.")));
    const form = new FormData();
    form.append("kind", kind);
    form.append("file", file, file.name || (kind === "image" ? "image.png" : "file"));
    xhr.send(form);
  });
}

/** Characters as the server counts them (code points, not UTF-16 units). */
export function charCount(text) {
  let n = 0;
  for (const _ of text) n += 1; // eslint-disable-line no-unused-vars
  return n;
}

export function kindOf(file) {
  return IMAGE_TYPES.has(file.type) ? "image" : "file";
}

/** The text a message shows in a quote, a forward or a notification. */
export function snippet(message, app) {
  if (!message) return t("a message");
  if (message.recalled) return t("a recalled message");
  const body = message.body || {};
  if (message.kind === "image") return t("[Image]");
  if (message.kind === "file") return `${t("[File]")} ${body.name || ""}`;
  if (message.kind === "redpacket") return t("[Red packet]");
  if (message.kind === "text") return (body.text || "").slice(0, 80);
  return app.store.preview(message);
}

/**
 * Build the composer of `conv`. `view.stickToBottom` is set on sending. Returns
 * {root, input, setQuote(message), addFiles(files), focus()}.
 */
export function buildComposer(conv, app, view) {
  const isGroup = conv.kind === "group";
  let quote = null; // the message being replied to
  const mentioned = new Map(); // user id → the name inserted after "@"
  const input = h("textarea", {
    class: "composer-input",
    testid: "composer-input",
    rows: "3",
    placeholder: t("Type a message (Enter to send, Shift+Enter for a new line)"),
    "aria-label": t("Message"),
  });
  const counter = h("span", { class: "composer-counter", testid: "composer-counter", hidden: true });
  const quoteBar = h("div", { class: "composer-quote", testid: "composer-quote", hidden: true });
  const uploads = h("div", { class: "composer-uploads", testid: "composer-uploads" });
  const picker = h("div", { class: "mention-picker", testid: "mention-picker", role: "listbox", hidden: true });
  const emojiPanel = h("div", { class: "emoji-panel", testid: "emoji-panel", hidden: true },
    EMOJI.map((emoji) => h("button", {
      type: "button", class: "emoji", testid: "emoji-option", title: emoji,
      onclick: () => {
        insertAtCursor(emoji);
        emojiPanel.hidden = true;
      },
    }, emoji)));
  const fileInput = h("input", {
    type: "file", multiple: true, hidden: true, testid: "attach-input",
    onchange: () => {
      addFiles([...fileInput.files]);
      fileInput.value = "";
    },
  });
  const sendButton = h("button", { type: "button", class: "btn btn-primary", testid: "composer-send", onclick: () => send() }, t("Send"));

  function insertAtCursor(text) {
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? input.value.length;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    input.selectionStart = input.selectionEnd = start + text.length;
    input.focus();
    changed();
  }

  function changed() {
    app.drafts.set(conv.id, input.value);
    const length = charCount(input.value);
    const over = length > TEXT_LIMIT;
    counter.hidden = length < TEXT_LIMIT * COUNTER_FROM;
    counter.classList.toggle("over", over);
    counter.textContent = over
      ? t("{n} / {limit}: {extra} too many", { n: length, limit: TEXT_LIMIT, extra: length - TEXT_LIMIT })
      : `${length} / ${TEXT_LIMIT}`;
    sendButton.disabled = over;
    if (input.value.trim()) app.typing(conv.id);
    updatePicker();
  }

  // --- @ mentions ------------------------------------------------------------------------

  let choices = [];
  let chosen = 0;

  function mentionQuery() {
    if (!isGroup) return null;
    const before = input.value.slice(0, input.selectionStart ?? input.value.length);
    const match = /(^|\s)@([^\s@]{0,20})$/.exec(before);
    return match ? match[2] : null;
  }

  function updatePicker() {
    const query = mentionQuery();
    if (query === null) {
      picker.hidden = true;
      return;
    }
    if (!conv.members) {
      // Drawn again once the members arrive: the typing that asked may be over by then.
      app.ensureMembers(conv).then(() => {
        if (conv.members) updatePicker();
      });
    }
    const lower = query.toLowerCase();
    const { store } = app;
    const people = (conv.members || [])
      .filter((m) => m.id !== store.me.id)
      .map((m) => ({ id: m.id, name: store.nameOf(m.id) }))
      .filter((p) => p.name.toLowerCase().includes(lower));
    const mayAll = conv.role === "owner" || conv.role === "admin";
    choices = [
      ...(mayAll && "all".startsWith(lower) ? [{ id: "all", name: "all", label: t("Everyone (@all)") }] : []),
      ...people,
    ];
    chosen = Math.min(chosen, Math.max(0, choices.length - 1));
    if (!choices.length) {
      picker.hidden = true;
      return;
    }
    replace(picker, choices.map((choice, index) => h("button", {
      type: "button", role: "option",
      class: index === chosen ? "mention-option active" : "mention-option",
      testid: "mention-option", dataset: { userId: String(choice.id) },
      onmousedown: (event) => event.preventDefault(), // keep the textarea's caret
      onclick: () => pick(choice),
    }, choice.id === "all" ? null : avatar(choice.name, choice.id, { size: 24 }), h("span", {}, choice.label || choice.name))));
    picker.hidden = false;
  }

  function pick(choice) {
    const caret = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, caret).replace(/@([^\s@]{0,20})$/, `@${choice.name} `);
    input.value = before + input.value.slice(caret);
    input.selectionStart = input.selectionEnd = before.length;
    if (choice.id !== "all") mentioned.set(choice.id, choice.name);
    picker.hidden = true;
    chosen = 0;
    input.focus();
    changed();
  }

  // --- Quote -----------------------------------------------------------------------------

  function setQuote(message) {
    quote = message;
    if (!message) {
      quoteBar.hidden = true;
      replace(quoteBar);
      return;
    }
    replace(quoteBar,
      h("span", { class: "composer-quote-text", testid: "composer-quote-text" },
        `${app.store.nameOf(message.sender)}: ${snippet(message, app)}`),
      h("button", {
        type: "button", class: "icon-button", testid: "composer-quote-cancel", "aria-label": t("Cancel the quote"),
        onclick: () => setQuote(null),
      }, "×"));
    quoteBar.hidden = false;
    input.focus();
  }

  // --- Sending ---------------------------------------------------------------------------

  function send() {
    const text = input.value;
    if (!text.trim()) return;
    if (charCount(text) > TEXT_LIMIT) {
      toast(t("The message has {n} characters; the limit is {limit}.", { n: charCount(text), limit: TEXT_LIMIT }), { error: true });
      return;
    }
    const content = { kind: "text", text };
    const ids = [...mentioned].filter(([, name]) => text.includes(`@${name}`)).map(([id]) => id);
    if (ids.length) content.mentions = ids;
    if (isGroup && (conv.role === "owner" || conv.role === "admin") && /(^|\s)@all(\s|$)/.test(text)) {
      content.mention_all = true;
    }
    if (quote) content.reply_to = quote.id;
    app.send(conv.id, content);
    input.value = "";
    mentioned.clear();
    setQuote(null);
    app.drafts.delete(conv.id);
    view.stickToBottom = true;
    changed();
    input.focus();
  }

  // --- Attachments -----------------------------------------------------------------------

  function addFiles(files) {
    for (const file of files) startUpload(file);
  }

  function startUpload(file) {
    const kind = kindOf(file);
    const bar = h("span", { class: "upload-bar" });
    const percent = h("span", { class: "upload-percent", testid: "upload-percent" }, "0%");
    const row = h("div", { class: "upload", testid: "upload", dataset: { state: "uploading" } },
      h("span", { class: "upload-name" }, `${kind === "image" ? t("[Image]") : t("[File]")} ${file.name || ""}`),
      h("span", { class: "upload-size" }, fileSize(file.size)),
      h("span", { class: "upload-track" }, bar),
      percent);
    uploads.append(row);
    const replyTo = quote ? quote.id : null;
    uploadFile(app, file, kind, (fraction) => {
      bar.style.width = `${Math.round(fraction * 100)}%`;
      percent.textContent = `${Math.round(fraction * 100)}%`;
    }).then((attachment) => {
      row.remove();
      // Our own copy shows at once, without fetching back what we just sent.
      app.attachmentUrls.set(attachment.id, Promise.resolve(URL.createObjectURL(file)));
      const content = { kind, attachment: attachment.id };
      if (replyTo) content.reply_to = replyTo;
      app.send(conv.id, content, { name: attachment.name, size: attachment.size, content_type: attachment.content_type });
      view.stickToBottom = true;
    }).catch((error) => {
      row.dataset.state = "failed";
      replace(percent, h("span", { class: "upload-error", testid: "upload-error" }, error.message));
      row.append(
        h("button", { type: "button", class: "msg-action", testid: "upload-retry", onclick: () => { row.remove(); startUpload(file); } }, t("Retry")),
        h("button", { type: "button", class: "msg-action", testid: "upload-dismiss", onclick: () => row.remove() }, t("Dismiss")));
    });
  }

  // --- Events ----------------------------------------------------------------------------

  input.value = app.drafts.get(conv.id) || "";
  input.addEventListener("input", changed);
  input.addEventListener("click", updatePicker);
  input.addEventListener("keydown", (event) => {
    if (!picker.hidden && choices.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        chosen = (chosen + (event.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length;
        updatePicker();
        return;
      }
      if ((event.key === "Enter" || event.key === "Tab") && !event.isComposing) {
        event.preventDefault();
        pick(choices[chosen]);
        return;
      }
      if (event.key === "Escape") {
        picker.hidden = true;
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  input.addEventListener("paste", (event) => {
    const files = [...((event.clipboardData && event.clipboardData.files) || [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });

  const root = h("footer", { class: "composer" },
    quoteBar,
    uploads,
    picker,
    emojiPanel,
    input,
    fileInput,
    h("div", { class: "composer-actions" },
      h("button", {
        type: "button", class: "icon-button composer-tool", testid: "emoji-button", title: t("Emoji"), "aria-label": t("Emoji"),
        onclick: () => { emojiPanel.hidden = !emojiPanel.hidden; },
      }, "😀"),
      h("button", {
        type: "button", class: "icon-button composer-tool", testid: "attach-button", title: t("Send an image or a file"),
        "aria-label": t("Send an image or a file"), onclick: () => fileInput.click(),
      }, "📎"),
      counter,
      h("span", { class: "composer-hint", testid: "throttle-hint" }),
      sendButton));
  changed();
  return { root, input, setQuote, addFiles, focus: () => input.focus() };
}

/** Let files be dropped anywhere on `target` (the open chat). */
export function acceptDrops(target, onFiles) {
  let depth = 0;
  const hasFiles = (event) => [...(event.dataTransfer ? event.dataTransfer.types : [])].includes("Files");
  target.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    target.classList.add("dropping");
  });
  target.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  target.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) target.classList.remove("dropping");
  });
  target.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    target.classList.remove("dropping");
    onFiles([...event.dataTransfer.files]);
  });
}
