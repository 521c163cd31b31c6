// Full-history message search (GET /api/messaging/search, docs/api.md): every
// message you received, Chinese from one character on; a hit opens its chat at
// the message (app.jumpToMessage).

import { modal, toast } from "./dialogs.js";
import { avatar, h, replace } from "./dom.js";
import { t } from "./i18n.js";

const PAGE = 20;
const TYPING_PAUSE_MS = 300;

function when(iso) {
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString();
}

/** The snippet as text nodes, the match in a <mark>. */
function snippetNodes(snippet, [start, end]) {
  const chars = Array.from(snippet); // match offsets count code points
  if (end <= start) return [snippet];
  return [chars.slice(0, start).join(""), h("mark", {}, chars.slice(start, end).join("")), chars.slice(end).join("")];
}

function hitRow(app, hit, conversations, close) {
  const { store } = app;
  const message = hit.message;
  const meta = conversations[String(message.conversation)];
  // A chat you left is not in the list: its hit is named from the answer alone.
  const conv = store.conversation(message.conversation);
  const title = conv ? store.title(conv)
    : meta && meta.kind === "direct" && meta.peer ? store.nameOf(meta.peer) : (meta && meta.name) || t("Chat");
  const sender = message.sender === store.me.id ? t("Me") : store.nameOf(message.sender);
  return h("button", {
    type: "button",
    class: "search-hit",
    testid: "message-search-result",
    dataset: { conversationId: String(message.conversation), messageId: String(message.id) },
    onclick: () => {
      close();
      app.jumpToMessage(message.conversation, message.id, message.seq);
    },
  },
  avatar(title, message.conversation, { size: 36, group: meta && meta.kind === "group" }),
  h("span", { class: "search-hit-main" },
    h("span", { class: "search-hit-head" },
      h("span", { class: "search-hit-title" }, title),
      h("span", { class: "search-hit-time muted small" }, when(message.created_at))),
    h("span", { class: "search-hit-text", testid: "message-search-snippet" },
      sender ? `${sender}: ` : "", snippetNodes(hit.snippet, hit.match))));
}

/** The search dialog: type, see hits newest first, page on, open one. */
export function messageSearchDialog(app) {
  const input = h("input", {
    type: "search", class: "input", testid: "message-search-input",
    placeholder: t("Search all messages"), "aria-label": t("Search all messages"),
    maxlength: "64",
  });
  const status = h("p", { class: "muted small", testid: "message-search-status", role: "status" });
  const results = h("div", { class: "search-hits", testid: "message-search-results" });
  const more = h("button", { type: "button", class: "btn btn-link", testid: "message-search-more", hidden: true }, t("More results"));
  let asked = 0;
  let nextBefore = null;
  let query = "";
  let close = () => {};

  async function ask(q, before) {
    const ticket = ++asked;
    status.textContent = t("Searching…");
    try {
      const answer = await app.api.get("/api/messaging/search", { q, before, limit: PAGE });
      if (ticket !== asked) return; // a newer query is on its way
      if (before === null) replace(results);
      results.append(...answer.results.map((hit) => hitRow(app, hit, answer.conversations, close)));
      nextBefore = answer.next_before;
      more.hidden = nextBefore === null;
      const shown = results.childElementCount;
      status.textContent = shown ? t("{n} messages found", { n: shown }) + (nextBefore === null ? "" : "+")
        : t("No messages found for “{q}”.", { q });
    } catch (error) {
      if (ticket !== asked) return;
      status.textContent = error.code === "rate_limited"
        ? t("Too many searches; wait {s} s.", { s: (error.details && error.details.retry_after) || 60 })
        : error.message;
    }
  }

  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const q = input.value.trim();
      if (q === query) return;
      query = q;
      nextBefore = null;
      if (!q) {
        asked += 1;
        replace(results);
        status.textContent = "";
        more.hidden = true;
        return;
      }
      ask(q, null);
    }, TYPING_PAUSE_MS);
  });
  more.addEventListener("click", () => {
    if (nextBefore !== null) ask(query, nextBefore).catch((e) => toast(e.message, { error: true }));
  });
  close = modal("message-search-dialog", t("Search messages"), [input, status, results, more],
    (done) => [h("button", { type: "button", class: "btn", onclick: done }, t("Close"))]);
  setTimeout(() => input.focus(), 0);
}
