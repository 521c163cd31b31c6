// Modal dialogs and toasts.

import { avatar, h } from "./dom.js";
import { t } from "./i18n.js";

let toastTimer = null;

/** A short message at the bottom of the screen. */
export function toast(text, { error = false } = {}) {
  let node = document.querySelector("[data-testid=toast]");
  if (!node) {
    node = h("div", { class: "toast", testid: "toast", role: "status", "aria-live": "polite" });
    document.body.append(node);
  }
  node.textContent = text;
  node.classList.toggle("toast-error", error);
  node.classList.add("visible");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.remove("visible"), 4000);
}

/** A modal dialog; `actions(close)` gives the footer's buttons. Returns `close`. */
export function modal(testid, title, body, actions, onClose) {
  const close = () => {
    overlay.remove();
    document.removeEventListener("keydown", onKey);
    if (onClose) onClose();
  };
  const onKey = (event) => {
    if (event.key === "Escape") close();
  };
  const overlay = h("div", { class: "overlay", onclick: (e) => e.target === overlay && close() },
    h("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-label": title, testid },
      h("header", { class: "dialog-header" }, h("h2", {}, title),
        h("button", { type: "button", class: "icon-button", "aria-label": t("Close"), onclick: close }, "×")),
      h("div", { class: "dialog-body" }, body),
      h("footer", { class: "dialog-footer" }, actions(close))));
  document.addEventListener("keydown", onKey);
  document.body.append(overlay);
  return close;
}

/** Ask a yes/no question; resolves true or false. */
export function confirmDialog(title, text, okLabel = t("OK")) {
  return new Promise((resolve) => {
    let answered = false;
    modal("confirm-dialog", title, h("p", {}, text), (close) => [
      h("button", { type: "button", class: "btn", onclick: close }, t("Cancel")),
      h("button", {
        type: "button", class: "btn btn-danger", testid: "confirm-ok",
        onclick: () => { answered = true; close(); },
      }, okLabel),
    ], () => resolve(answered));
  });
}

/** Pick friends and a name for a new group; `onCreate(name, ids)` returns a promise. */
export function groupDialog(app, onCreate) {
  const { store } = app;
  const chosen = new Set();
  const name = h("input", { type: "text", class: "input", testid: "group-name", maxlength: "64", placeholder: t("Group name (optional)"), "aria-label": t("Group name") });
  const error = h("p", { class: "error", testid: "group-error", hidden: true });
  const friends = [...store.friends].sort((a, b) => store.nameOf(a.user.id).localeCompare(store.nameOf(b.user.id)));
  const list = h("div", { class: "pick-list" }, friends.length
    ? friends.map((f) => {
      const box = h("input", {
        type: "checkbox",
        onchange: () => {
          if (box.checked) chosen.add(f.user.id);
          else chosen.delete(f.user.id);
          create.disabled = chosen.size === 0;
        },
      });
      return h("label", { class: "pick-item", testid: "group-member-option", dataset: { userId: String(f.user.id) } },
        box, avatar(store.nameOf(f.user.id), f.user.id, { size: 28 }), h("span", {}, store.nameOf(f.user.id)));
    })
    : h("p", { class: "muted" }, t("Add some friends first.")));
  let create;
  modal("group-dialog", t("New group chat"), [name, h("p", { class: "muted small" }, t("Members")), list, error], (close) => {
    create = h("button", {
      type: "button", class: "btn btn-primary", testid: "group-create", disabled: true,
      onclick: async () => {
        const ids = [...chosen];
        const title = name.value.trim() || [store.me.nickname, ...ids.map((id) => store.nameOf(id))].join(", ").slice(0, 64);
        create.disabled = true;
        try {
          await onCreate(title, ids);
          close();
        } catch (failure) {
          error.textContent = failure.message;
          error.hidden = false;
          create.disabled = false;
        }
      },
    }, t("Create"));
    return [h("button", { type: "button", class: "btn", onclick: close }, t("Cancel")), create];
  });
  setTimeout(() => name.focus(), 0);
}
