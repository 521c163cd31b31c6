// Official accounts: finding and following them (a contacts pane), and the menu
// bar of an account's chat. The server decides everything (publicplatform);
// this only shows it and reports taps.

import { avatar, h, replace } from "./dom.js";
import { toast } from "./dialogs.js";
import { t } from "./i18n.js";

/** The "Official accounts" pane: search by name or id, follow, open the chat. */
export function officialPane(app) {
  const query = h("input", {
    type: "search", class: "input", testid: "official-query", maxlength: "64",
    placeholder: t("Account name, or its ID"), "aria-label": t("Account name or ID"),
  });
  const results = h("div", { class: "search-results", testid: "official-results" });
  const following = h("div", { class: "search-results", testid: "official-following" });
  const status = h("p", { class: "muted", testid: "official-status", hidden: true });
  const say = (text) => {
    status.textContent = text;
    status.hidden = !text;
  };
  const showFollowing = async () => {
    try {
      const answer = await app.api.followingOfficial();
      replace(following, answer.results.length
        ? answer.results.map((card) => accountCard(card, app, showFollowing))
        : h("p", { class: "muted" }, t("You follow no official accounts yet.")));
    } catch (error) {
      replace(following, h("p", { class: "error" }, error.message));
    }
  };
  const form = h("form", {
    class: "search-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const q = query.value.trim();
      if (!q) return;
      say(t("Searching…"));
      results.replaceChildren();
      try {
        const answer = await app.api.searchOfficial(q);
        say(answer.results.length ? "" : t("No official account found."));
        replace(results, answer.results.map((card) => accountCard(card, app, showFollowing)));
      } catch (error) {
        say(error.message);
      }
    },
  }, query, h("button", { type: "submit", class: "btn btn-primary", testid: "official-search" }, t("Search")));
  showFollowing();
  setTimeout(() => query.focus(), 0);
  return h("section", { class: "pane" },
    h("header", { class: "pane-header" }, h("h2", {}, t("Official accounts"))),
    h("div", { class: "pane-body" }, form, status, results,
      h("h3", { class: "list-heading" }, t("Following")), following));
}

function accountCard(card, app, refresh) {
  const actions = h("div", { class: "card-actions" });
  const draw = (current) => {
    const follow = async (call) => {
      for (const b of actions.querySelectorAll("button")) b.disabled = true;
      try {
        const next = await call(current.id);
        draw(next);
        refresh();
        if (next.following && next.conversation_id) await app.openOfficialChat(next.conversation_id);
      } catch (error) {
        toast(error.message, { error: true });
        draw(current);
      }
    };
    replace(actions, current.following
      ? [h("button", { type: "button", class: "btn btn-primary", testid: "official-open",
        onclick: () => app.openOfficialChat(current.conversation_id) }, t("Open chat")),
      h("button", { type: "button", class: "btn", testid: "official-unfollow",
        onclick: () => follow((id) => app.api.unfollowOfficial(id)) }, t("Unfollow"))]
      : h("button", { type: "button", class: "btn btn-primary", testid: "official-follow",
        onclick: () => follow((id) => app.api.followOfficial(id)) }, t("Follow")));
  };
  draw(card);
  return h("div", { class: "card search-result", testid: "official-card", dataset: { accountId: String(card.id) } },
    h("div", { class: "card-head" },
      avatar(card.name, -card.id, { size: 48 }),
      h("div", {},
        h("div", { class: "card-title", testid: "official-name" }, card.name, card.is_verified ? " ✓" : ""),
        card.description ? h("div", { class: "muted" }, card.description) : null,
        h("div", { class: "muted small" }, t("ID: {id}", { id: card.original_id })))),
    actions);
}

/** The menu bar under an account's chat: click buttons send CLICK, view buttons open their page. */
export function menuBar(app, conv) {
  const bar = h("div", { class: "official-menu", testid: "official-menu" });
  const account = app.officialAccounts.get(conv.id);
  if (!account) {
    app.loadOfficial(conv.id);
    return bar;
  }
  if (!account.following) {
    replace(bar, h("span", { class: "muted", testid: "official-unfollowed" }, t("You no longer follow this account.")));
    return bar;
  }
  const tap = async (button) => {
    const page = button.type === "view" ? window.open("about:blank", "_blank") : null;
    try {
      const answer = await app.api.officialMenuTap(account.id, button);
      if (page && answer.open_url) page.location.href = answer.open_url;
    } catch (error) {
      if (page) page.close();
      toast(error.message, { error: true });
    }
  };
  const item = (button) => h("button", {
    type: "button", class: "menu-button", testid: "official-menu-button",
    dataset: { key: button.key || "", url: button.url || "" }, onclick: () => tap(button),
  }, button.name);
  replace(bar, (account.menu || []).map((top) => {
    if (!top.sub_button) return item(top);
    const list = h("div", { class: "menu-sub", hidden: true }, top.sub_button.map(item));
    return h("span", { class: "menu-group" },
      h("button", { type: "button", class: "menu-button", testid: "official-menu-group",
        onclick: () => { list.hidden = !list.hidden; } }, `☰ ${top.name}`), list);
  }));
  return bar;
}

/** A developer's link, only if it is http(s): anything else (javascript:, data:) could run. */
const webUrl = (url) => (/^https?:\/\//i.test(url || "") ? url : "#");

/** A news message (图文) as cards. */
export function articleCards(official) {
  return h("span", { class: "articles", testid: "message-articles" }, (official.articles || []).map((a) =>
    h("a", { class: "article", href: webUrl(a.url), target: "_blank", rel: "noopener noreferrer" },
      h("strong", {}, a.title || a.url || t("Article")),
      a.description ? h("span", { class: "muted small" }, a.description) : null)));
}
