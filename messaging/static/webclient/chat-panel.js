// The panel a chat's header opens: one's own settings of the chat (mute, pin:
// the same on all one's devices), and for a group its administration: members
// (add, remove, admins), name, announcement, leaving. What a member may do
// follows their role; the server checks it again.

import { confirmDialog, toast } from "./dialogs.js";
import { avatar, h, replace } from "./dom.js";
import { t } from "./i18n.js";

const ROLE_LABELS = { owner: "Owner", admin: "Admin" };

export function closeChatPanel() {
  const panel = document.querySelector("[data-testid=chat-panel]");
  if (panel) panel.__close();
}

/** Open (or refresh) the panel of `conv` beside the chat. */
export function openChatPanel(conv, app) {
  closeChatPanel();
  const body = h("div", { class: "chat-panel-body" });
  const panel = h("aside", { class: "chat-panel", testid: "chat-panel", role: "dialog", "aria-label": t("Chat info") },
    h("header", { class: "chat-panel-header" },
      h("h2", {}, t("Chat info")),
      h("button", { type: "button", class: "icon-button", testid: "chat-panel-close", "aria-label": t("Close"), onclick: () => close() }, "×")),
    body);
  const onKey = (event) => {
    if (event.key === "Escape") close();
  };
  const unsubscribe = app.store.onChange(() => render());
  function close() {
    panel.remove();
    document.removeEventListener("keydown", onKey);
    unsubscribe();
  }
  panel.__close = close;
  document.addEventListener("keydown", onKey);
  document.body.append(panel);

  let lastSig = null;
  function render() {
    if (!panel.isConnected) return;
    const current = app.store.conversation(conv.id);
    if (!current || current.gone) {
      close();
      return;
    }
    if (current.kind === "group" && !current.members) {
      // A member joined or left (the sync said so): ask for the list again.
      app.ensureMembers(current).then(() => {
        if (current.members) render();
      });
    }
    const sig = JSON.stringify([current.name, current.muted, current.pinned, current.announcement,
      current.members, current.role, current.owner]);
    if (sig === lastSig) return;
    lastSig = sig;
    // A change (a member added, say) rebuilds the panel: keep what is being typed.
    const edited = {};
    for (const field of body.querySelectorAll("[data-original]")) {
      if (field.value !== field.dataset.original) edited[field.dataset.testid] = field.value;
    }
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    replace(body, settingsSection(current, app), current.kind === "group" ? groupSections(current, app, reload) : null);
    for (const [testid, value] of Object.entries(edited)) {
      const field = body.querySelector(`[data-testid="${testid}"]`);
      if (field) field.value = value;
    }
    const again = focused && body.querySelector(`[data-testid="${focused}"]`);
    if (again) again.focus();
  }
  async function reload() {
    try {
      app.store.setMembers(conv, await app.api.conversation(conv.id));
    } catch (error) {
      toast(error.message, { error: true });
    }
    render();
  }
  render();
  reload();
  return panel;
}

function settingsSection(conv, app) {
  const toggle = (testid, label, value, field) => {
    const box = h("input", {
      type: "checkbox", testid, checked: Boolean(value),
      onchange: async () => {
        box.disabled = true;
        try {
          await app.setChatSetting(conv.id, { [field]: box.checked });
        } catch (error) {
          box.checked = !box.checked;
          toast(error.message, { error: true });
        } finally {
          box.disabled = false;
        }
      },
    });
    return h("label", { class: "panel-toggle" }, box, h("span", {}, label));
  };
  return h("section", { class: "panel-section" },
    toggle("chat-mute", t("Mute notifications"), conv.muted, "muted"),
    toggle("chat-pin", t("Pin to top"), conv.pinned, "pinned"));
}

function groupSections(conv, app, reload) {
  const { store, api } = app;
  const me = store.me.id;
  const manager = conv.role === "owner" || conv.role === "admin";
  const act = async (work, done) => {
    try {
      await work();
      if (done) toast(done);
      await reload();
    } catch (error) {
      toast(error.message, { error: true });
    }
  };

  // Name
  const nameInput = h("input", {
    type: "text", class: "input", testid: "group-rename-input", maxlength: "64",
    value: conv.name || "", dataset: { original: conv.name || "" },
  });
  const name = h("section", { class: "panel-section" },
    h("h3", {}, t("Group name")),
    manager
      ? h("div", { class: "panel-row" }, nameInput,
        h("button", {
          type: "button", class: "btn", testid: "group-rename-save",
          onclick: () => act(() => api.updateGroup(conv.id, { name: nameInput.value.trim() }), t("Group renamed")),
        }, t("Save")))
      : h("p", { testid: "group-name-text" }, conv.name));

  // Announcement
  const note = h("textarea", {
    class: "input", testid: "group-announcement-input", rows: "3", maxlength: "2000",
    dataset: { original: conv.announcement || "" },
  });
  note.value = conv.announcement || "";
  const announcement = h("section", { class: "panel-section" },
    h("h3", {}, t("Announcement")),
    manager
      ? [note, h("button", {
        type: "button", class: "btn", testid: "group-announcement-save",
        onclick: () => act(() => api.updateGroup(conv.id, { announcement: note.value }), t("Announcement posted")),
      }, t("Post"))]
      : h("p", { class: "announcement", testid: "group-announcement-text" }, conv.announcement || t("No announcement")));

  // Members
  const members = [...(conv.members || [])].sort((a, b) =>
    rank(a.role) - rank(b.role) || store.nameOf(a.id).localeCompare(store.nameOf(b.id)));
  const memberRows = members.map((m) => {
    const canRemove = m.id !== me && (conv.role === "owner" ? m.role !== "owner" : conv.role === "admin" && m.role === "member");
    const canPromote = conv.role === "owner" && m.id !== me && m.role !== "owner";
    return h("div", { class: "panel-member", testid: "group-member", dataset: { userId: String(m.id), role: m.role } },
      avatar(store.nameOf(m.id), m.id, { size: 28 }),
      h("span", { class: "panel-member-name" }, store.nameOf(m.id)),
      ROLE_LABELS[m.role] ? h("span", { class: "role-badge", testid: "member-role" }, t(ROLE_LABELS[m.role])) : null,
      canPromote
        ? h("button", {
          type: "button", class: "msg-action", testid: m.role === "admin" ? "member-unadmin" : "member-admin",
          onclick: () => act(() => api.setGroupAdmin(conv.id, m.id, m.role !== "admin")),
        }, m.role === "admin" ? t("Remove admin") : t("Make admin"))
        : null,
      canRemove
        ? h("button", {
          type: "button", class: "msg-action danger", testid: "member-remove",
          onclick: async () => {
            if (await confirmDialog(t("Remove member?"), t("Remove {name} from the group?", { name: store.nameOf(m.id) }), t("Remove"))) {
              act(() => api.removeFromGroup(conv.id, m.id));
            }
          },
        }, t("Remove"))
        : null);
  });
  const adder = h("div", { class: "panel-add", testid: "group-add-panel", hidden: true });
  const showAdder = () => {
    const inGroup = new Set((conv.members || []).map((m) => m.id));
    const candidates = [...store.friends].map((f) => f.user.id).filter((id) => !inGroup.has(id));
    const chosen = new Set();
    const confirm = h("button", {
      type: "button", class: "btn btn-primary", testid: "group-add-confirm", disabled: true,
      onclick: () => act(() => api.inviteToGroup(conv.id, [...chosen]), t("Members added")),
    }, t("Add"));
    replace(adder,
      candidates.length
        ? candidates.map((id) => {
          const box = h("input", {
            type: "checkbox",
            onchange: () => {
              if (box.checked) chosen.add(id);
              else chosen.delete(id);
              confirm.disabled = chosen.size === 0;
            },
          });
          return h("label", { class: "pick-item", testid: "group-add-option", dataset: { userId: String(id) } },
            box, avatar(store.nameOf(id), id, { size: 24 }), h("span", {}, store.nameOf(id)));
        })
        : h("p", { class: "muted" }, t("All your friends are in this group.")),
      candidates.length ? confirm : null);
    adder.hidden = false;
  };
  const membersSection = h("section", { class: "panel-section" },
    h("h3", {}, t("Members ({n})", { n: members.length })),
    h("button", { type: "button", class: "btn btn-link", testid: "group-add-button", onclick: showAdder }, t("+ Add members")),
    adder,
    h("div", { class: "panel-members", testid: "group-members" }, memberRows));

  const leave = h("section", { class: "panel-section" },
    h("button", {
      type: "button", class: "btn btn-danger", testid: "group-leave",
      onclick: async () => {
        const owner = conv.role === "owner";
        const text = owner ? t("You own this group: it passes to an admin, or else the longest-standing member.")
          : t("You will no longer receive its messages.");
        if (!(await confirmDialog(t("Leave the group?"), text, t("Leave")))) return;
        try {
          await api.leaveGroup(conv.id);
          closeChatPanel();
          app.leftConversation(conv.id);
        } catch (error) {
          toast(error.message, { error: true });
        }
      },
    }, t("Leave group")));
  return [name, announcement, membersSection, leave];
}

function rank(role) {
  return role === "owner" ? 0 : role === "admin" ? 1 : 2;
}
