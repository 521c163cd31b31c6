// Contacts: friends, new friend requests, and adding friends by WeChat ID, phone or e-mail.

import { avatar, h, icon, renderKeyed, replace } from "./dom.js";
import { listTime } from "./format.js";
import { officialPane } from "./official-view.js";
import { t } from "./i18n.js";

export function renderContactList(container, app) {
  const { store, ui } = app;
  const pending = store.pendingRequests().length;
  const friends = [...store.friends].sort((a, b) =>
    store.nameOf(a.user.id).localeCompare(store.nameOf(b.user.id), undefined, { sensitivity: "base" }));
  const items = [
    { key: "add", kind: "special" },
    { key: "requests", kind: "special" },
    { key: "official", kind: "special" },
    { key: "heading", kind: "heading" },
    ...friends.map((f) => ({ key: `f${f.user.id}`, kind: "friend", friend: f })),
  ];
  if (!container.__keyed) container.replaceChildren();
  renderKeyed(container, items, (i) => i.key, (i) => fillContact(h("div"), i, app, pending), (n, i) => fillContact(n, i, app, pending));
  for (const node of container.children) {
    node.classList.toggle("active", node.dataset.selection === String(ui.contact));
  }
}

function fillContact(node, item, app, pending) {
  const { store } = app;
  // The heading shows the friend count: it is part of what the node depends on.
  const sig = JSON.stringify([item.key, pending, item.kind === "heading" && store.friends.length, item.friend && store.nameOf(item.friend.user.id), item.friend && item.friend.user.wechat_id]);
  if (node.__sig === sig) return node;
  node.__sig = sig;
  if (item.kind === "heading") {
    node.className = "list-heading";
    replace(node, t("Friends ({n})", { n: store.friends.length }));
    return node;
  }
  let selection;
  let testid;
  let children;
  if (item.key === "add") {
    [selection, testid] = ["add", "contacts-add"];
    children = [h("span", { class: "icon-tile icon-add" }, icon("addUser", 22)),
      h("span", { class: "contact-name" }, t("Add friend"))];
  } else if (item.key === "requests") {
    [selection, testid] = ["requests", "contacts-requests"];
    children = [h("span", { class: "icon-tile icon-requests" }, icon("wave", 22)),
      h("span", { class: "contact-name" }, t("New friends")),
      pending ? h("span", { class: "badge badge-inline", testid: "requests-badge" }, String(pending)) : null];
  } else if (item.key === "official") {
    [selection, testid] = ["official", "contacts-official"];
    children = [h("span", { class: "icon-tile icon-official" }, icon("logo", 22)),
      h("span", { class: "contact-name" }, t("Official accounts"))];
  } else {
    const user = item.friend.user;
    const name = store.nameOf(user.id);
    [selection, testid] = [String(user.id), "friend-item"];
    node.dataset.userId = String(user.id);
    children = [avatar(name, user.id, { size: 36, url: user.avatar_url }), h("span", { class: "contact-name" }, name)];
  }
  node.className = "contact-item";
  node.dataset.testid = testid;
  node.dataset.selection = selection;
  node.setAttribute("role", "button");
  node.tabIndex = 0;
  node.onclick = () => app.selectContact(selection);
  node.onkeydown = (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      app.selectContact(selection);
    }
  };
  replace(node, children);
  return node;
}

// --- The right-hand pane -------------------------------------------------------------------

export function renderContactPane(main, app) {
  const { ui } = app;
  const same = main.__contactSelection === ui.contact;
  // A contacts refresh redraws lists and profiles, not a search being looked at.
  const keep = ui.contact === "add" || ui.contact === "official";
  if (same && (keep || main.__contactVersion === app.contactsVersion)) return;
  main.__contactSelection = ui.contact;
  main.__contactVersion = app.contactsVersion;
  main.__chat = null;
  if (ui.contact === "add") replace(main, addFriendPane(app));
  else if (ui.contact === "requests") replace(main, requestsPane(app));
  else if (ui.contact === "official") replace(main, officialPane(app));
  else if (ui.contact) replace(main, friendPane(app, Number(ui.contact)));
  else {
    replace(main, h("div", { class: "placeholder" },
      h("div", { class: "placeholder-logo" }, icon("group", 72)),
      h("p", {}, t("Pick a friend, or add one"))));
  }
}

function pane(title, ...children) {
  return h("section", { class: "pane" }, h("header", { class: "pane-header" }, h("h2", {}, title)), h("div", { class: "pane-body" }, children));
}

function addFriendPane(app) {
  const query = h("input", {
    type: "search",
    class: "input",
    testid: "add-friend-query",
    placeholder: t("WeChat ID, phone number or e-mail"),
    maxlength: "254",
    "aria-label": t("WeChat ID, phone number or e-mail"),
  });
  const results = h("div", { class: "search-results", testid: "search-results" });
  const status = h("p", { class: "muted", testid: "search-status", hidden: true });
  const say = (text) => {
    status.textContent = text;
    status.hidden = !text;
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
        const answer = await app.api.search(q);
        say(answer.results.length ? "" : t("No user found. Check the WeChat ID, phone number or e-mail."));
        replace(results, answer.results.map((user) => searchResult(user, app)));
      } catch (error) {
        say(error.message);
      }
    },
  }, query, h("button", { type: "submit", class: "btn btn-primary", testid: "add-friend-search" }, t("Search")));
  setTimeout(() => query.focus(), 0);
  return pane(t("Add friend"), form, status, results);
}

function searchResult(user, app) {
  const { store } = app;
  app.store.rememberUser(user);
  const isMe = user.id === store.me.id;
  const isFriend = Boolean(store.friendOf(user.id));
  const greeting = h("input", {
    type: "text",
    class: "input",
    testid: "greeting-input",
    maxlength: "512",
    value: t("Hi, I'm {name}", { name: store.me.nickname }),
    "aria-label": t("Greeting"),
  });
  const outcome = h("span", { class: "muted", testid: "request-outcome" });
  const send = h("button", {
    type: "button",
    class: "btn btn-primary",
    testid: "search-result-add",
    onclick: async () => {
      send.disabled = true;
      try {
        const answer = await app.api.sendRequest(user.id, greeting.value);
        outcome.textContent = answer.outcome === "friends" ? t("You are now friends.") : t("Request sent.");
        if (answer.outcome === "friends") app.refreshContacts();
      } catch (error) {
        outcome.textContent = error.message;
        send.disabled = false;
      }
    },
  }, t("Add to contacts"));
  return h("div", { class: "card search-result", testid: "search-result", dataset: { userId: String(user.id) } },
    h("div", { class: "card-head" },
      avatar(user.nickname, user.id, { size: 48, url: user.avatar_url }),
      h("div", {},
        h("div", { class: "card-title" }, user.nickname),
        user.wechat_id ? h("div", { class: "muted" }, t("WeChat ID: {id}", { id: user.wechat_id })) : null,
        user.region ? h("div", { class: "muted" }, user.region) : null)),
    isMe
      ? h("p", { class: "muted" }, t("That's you."))
      : isFriend
        ? h("div", { class: "card-actions" },
          h("button", { type: "button", class: "btn btn-primary", onclick: () => app.openDirect(user.id) }, t("Send message")))
        : h("div", { class: "card-actions" }, greeting, send, outcome));
}

function requestsPane(app) {
  const { store } = app;
  if (!store.requests.length) return pane(t("New friends"), h("p", { class: "muted" }, t("No friend requests.")));
  return pane(t("New friends"), h("div", { class: "request-list" }, store.requests.map((r) => requestItem(r, app))));
}

function requestItem(request, app) {
  const from = request.from_user;
  const actions = h("div", { class: "request-actions" });
  const answer = (call, done) => async () => {
    for (const b of actions.querySelectorAll("button")) b.disabled = true;
    try {
      await call(request.id);
      replace(actions, h("span", { class: "muted", testid: "request-status" }, done));
      app.refreshContacts();
    } catch (error) {
      replace(actions, h("span", { class: "error", testid: "request-status" }, error.message));
    }
  };
  if (request.status === "pending") {
    replace(actions,
      h("button", { type: "button", class: "btn btn-primary", testid: "request-accept", onclick: answer((id) => app.api.acceptRequest(id), t("Added")) }, t("Accept")),
      h("button", { type: "button", class: "btn", testid: "request-decline", onclick: answer((id) => app.api.declineRequest(id), t("Declined")) }, t("Decline")));
  } else {
    replace(actions, h("span", { class: "muted", testid: "request-status" }, statusLabel(request.status)));
  }
  return h("div", { class: "card request-item", testid: "request-item", dataset: { requestId: String(request.id), userId: String(from.id) } },
    h("div", { class: "card-head" },
      avatar(from.nickname, from.id, { size: 44, url: from.avatar_url }),
      h("div", { class: "request-text" },
        h("div", { class: "card-title" }, from.nickname),
        h("div", { class: "muted greeting", testid: "request-greeting" }, request.greeting || t("(no greeting)")),
        h("div", { class: "muted small" }, listTime(request.created_at))),
      actions));
}

function statusLabel(status) {
  return { accepted: t("Added"), declined: t("Declined"), expired: t("Expired") }[status] || status;
}

function friendPane(app, userId) {
  const { store } = app;
  const friend = store.friendOf(userId);
  if (!friend) return pane(t("Contact"), h("p", { class: "muted" }, t("This person is not in your contacts.")));
  const user = friend.user;
  const name = store.nameOf(user.id);
  return h("section", { class: "pane profile", testid: "friend-profile", dataset: { userId: String(user.id) } },
    h("div", { class: "profile-card" },
      h("div", { class: "card-head" },
        avatar(name, user.id, { size: 64, url: user.avatar_url }),
        h("div", {},
          h("div", { class: "profile-name" }, name),
          friend.remark ? h("div", { class: "muted" }, t("Nickname: {name}", { name: user.nickname })) : null,
          user.wechat_id ? h("div", { class: "muted" }, t("WeChat ID: {id}", { id: user.wechat_id })) : null,
          user.region ? h("div", { class: "muted" }, t("Region: {region}", { region: user.region })) : null)),
      user.signature ? h("p", { class: "signature" }, user.signature) : null,
      h("div", { class: "card-actions" },
        h("button", {
          type: "button", class: "btn btn-primary", testid: "friend-message-button",
          onclick: () => app.openDirect(user.id),
        }, t("Send message")))));
}
