// My account: profile (name, avatar, region, signature, WeChat ID), privacy,
// password, and the devices logged in with log-out of one (docs/api.md, account).

import { ApiError } from "./api.js";
import { modal, toast } from "./dialogs.js";
import { avatar, h, replace } from "./dom.js";
import { t } from "./i18n.js";

async function uploadAvatar(api, file) {
  const form = new FormData();
  form.append("avatar", file);
  const response = await fetch("/api/accounts/me/avatar", {
    method: "PUT",
    headers: { Authorization: `Ticket ${api.ticket}`, Accept: "application/json" },
    body: form,
    credentials: "omit",
  });
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

function field(label, input) {
  return h("label", { class: "form-field" }, h("span", { class: "form-label" }, label), input);
}

function section(title, ...children) {
  return h("section", { class: "profile-section" }, h("h3", {}, title), ...children);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** The account dialog; `app.loadMe()` refreshes the shell after each change. */
export function profileDialog(app) {
  const { api } = app;
  const me = app.store.me;
  const error = h("p", { class: "error", testid: "profile-error", role: "alert", hidden: true });
  const fail = (failure) => {
    error.textContent = failure.message;
    error.hidden = false;
  };
  const done = async (text) => {
    error.hidden = true;
    await app.loadMe().catch(() => {});
    toast(text);
    redraw();
  };

  // --- Profile ---------------------------------------------------------------------
  const picture = h("span", { class: "profile-avatar", testid: "profile-avatar" });
  const file = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp,image/gif", testid: "profile-avatar-input", class: "visually-hidden" });
  file.addEventListener("change", async () => {
    if (!file.files.length) return;
    try {
      await uploadAvatar(api, file.files[0]);
      await done(t("Avatar changed."));
    } catch (failure) {
      fail(failure);
    }
    file.value = "";
  });
  const nickname = h("input", { class: "input", testid: "profile-nickname", maxlength: "64", required: true });
  const region = h("input", { class: "input", testid: "profile-region", maxlength: "64" });
  const signature = h("input", { class: "input", testid: "profile-signature", maxlength: "200" });
  const save = h("button", {
    type: "button", class: "btn btn-primary", testid: "profile-save",
    onclick: async () => {
      try {
        await api.call("PATCH", "/api/accounts/me", {
          body: { nickname: nickname.value.trim(), region: region.value.trim(), signature: signature.value.trim() },
        });
        await done(t("Profile saved."));
      } catch (failure) {
        fail(failure);
      }
    },
  }, t("Save"));

  // --- WeChat ID (chosen once) -------------------------------------------------------
  const wechatSlot = h("div", { class: "wechat-id-slot" });

  // --- Privacy -----------------------------------------------------------------------
  const privacy = [
    ["discoverable_by_wechat_id", t("Others can find me by my WeChat ID")],
    ["discoverable_by_phone", t("Others can find me by my phone number")],
    ["discoverable_by_email", t("Others can find me by my e-mail address")],
  ].map(([name, label]) => {
    const box = h("input", {
      type: "checkbox", testid: `privacy-${name}`,
      onchange: async () => {
        try {
          await api.call("PATCH", "/api/accounts/me", { body: { [name]: box.checked } });
          await done(t("Privacy setting saved."));
        } catch (failure) {
          box.checked = !box.checked;
          fail(failure);
        }
      },
    });
    return { name, box, row: h("label", { class: "check-row" }, box, h("span", {}, label)) };
  });

  // --- Password ----------------------------------------------------------------------
  const oldPassword = h("input", { type: "password", class: "input", testid: "password-old", autocomplete: "current-password" });
  const newPassword = h("input", { type: "password", class: "input", testid: "password-new", autocomplete: "new-password" });
  const changePassword = h("button", {
    type: "button", class: "btn", testid: "password-change",
    onclick: async () => {
      try {
        const answer = await api.post("/api/accounts/me/password", { old_password: oldPassword.value, new_password: newPassword.value });
        oldPassword.value = "";
        newPassword.value = "";
        await done(t("Password changed; {n} other device(s) logged out.", { n: answer.revoked }));
        loadDevices();
      } catch (failure) {
        fail(failure.code === "wrong_password" ? new Error(t("The current password is wrong.")) : failure);
      }
    },
  }, t("Change password"));

  // --- Devices -----------------------------------------------------------------------
  const devices = h("div", { class: "device-list", testid: "device-list" }, t("Loading…"));
  async function loadDevices() {
    try {
      const answer = await api.get("/api/accounts/devices", { page_size: 100 });
      replace(devices, answer.results.map((device) => h("div", {
        class: "device-item", testid: "device-item", dataset: { deviceId: String(device.id), current: String(device.current) },
      },
      h("span", { class: "device-main" },
        h("span", { class: "device-name" }, device.name),
        h("span", { class: "muted small" }, `${device.platform} ${device.client_version} · ${t("last seen {when}", { when: when(device.last_seen_at) })}`)),
      device.current
        ? h("span", { class: "badge-inline muted small", testid: "device-current" }, t("This device"))
        : h("button", {
          type: "button", class: "btn btn-link", testid: "device-logout",
          onclick: async () => {
            try {
              await api.call("DELETE", `/api/accounts/devices/${device.id}`);
              toast(t("Logged out of {name}.", { name: device.name }));
              loadDevices();
            } catch (failure) {
              fail(failure);
            }
          },
        }, t("Log out")))));
    } catch (failure) {
      fail(failure);
    }
  }

  function redraw() {
    const current = app.store.me;
    replace(picture, avatar(current.nickname, current.id, { size: 64, url: current.avatar_url }));
    if (current.avatar_url) picture.dataset.url = current.avatar_url;
    nickname.value = current.nickname || "";
    region.value = current.region || "";
    signature.value = current.signature || "";
    for (const { name, box } of privacy) box.checked = current[name] !== false;
    if (current.wechat_id) {
      replace(wechatSlot, h("span", { testid: "profile-wechat-id" }, current.wechat_id));
    } else {
      const input = h("input", { class: "input", testid: "wechat-id-input", maxlength: "20", placeholder: t("6–20 letters, digits, _ or -, starting with a letter") });
      replace(wechatSlot, input, h("button", {
        type: "button", class: "btn", testid: "wechat-id-save",
        onclick: async () => {
          try {
            await api.call("PUT", "/api/accounts/me/wechat-id", { body: { wechat_id: input.value.trim() } });
            await done(t("WeChat ID set."));
          } catch (failure) {
            fail(failure);
          }
        },
      }, t("Set (once only)")));
    }
  }

  const identity = [me.phone, me.email].filter(Boolean).join(" · ");
  modal("profile-dialog", t("My account"), [
    error,
    section(t("Profile"),
      h("div", { class: "profile-head" }, picture,
        h("span", {}, h("button", { type: "button", class: "btn", testid: "profile-avatar-change", onclick: () => file.click() }, t("Change avatar")), file,
          h("p", { class: "muted small" }, identity))),
      field(t("Name"), nickname), field(t("Region"), region), field(t("What's up"), signature), save),
    section(t("WeChat ID"), wechatSlot),
    section(t("Privacy"), ...privacy.map((p) => p.row)),
    section(t("Password"), field(t("Current password"), oldPassword), field(t("New password"), newPassword), changePassword),
    section(t("Devices"), devices),
  ], (close) => [h("button", { type: "button", class: "btn", testid: "profile-close", onclick: close }, t("Close"))]);
  redraw();
  loadDevices();
}
