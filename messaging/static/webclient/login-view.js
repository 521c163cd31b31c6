// The login screen: phone number or e-mail address, and password.

import { h, icon, replace } from "./dom.js";

/**
 * Show the login form in `root`; `onSubmit(identifier, password)` returns a
 * promise that rejects with an ApiError to show. `notice` explains why we are here.
 */
export function showLogin(root, { onSubmit, notice = "" }) {
  const identifier = h("input", {
    id: "login-identifier",
    testid: "login-identifier",
    type: "text",
    autocomplete: "username",
    required: true,
    placeholder: "Phone number or e-mail",
    maxlength: "254",
  });
  const password = h("input", {
    id: "login-password",
    testid: "login-password",
    type: "password",
    autocomplete: "current-password",
    required: true,
    placeholder: "Password",
  });
  const error = h("p", { class: "login-error", testid: "login-error", role: "alert", hidden: !notice }, notice);
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-wide", testid: "login-submit" }, "Log in");
  const form = h(
    "form",
    {
      class: "login-card",
      testid: "login-form",
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        submit.textContent = "Logging in…";
        error.hidden = true;
        try {
          await onSubmit(identifier.value.trim(), password.value);
        } catch (failure) {
          error.textContent = loginMessage(failure);
          error.hidden = false;
          submit.disabled = false;
          submit.textContent = "Log in";
          password.select();
        }
      },
    },
    h("div", { class: "login-logo" }, icon("logo", 40)),
    h("h1", {}, "WeChat Web"),
    h("p", { class: "login-sub" }, "Log in to chat from this browser"),
    h("label", { for: "login-identifier", class: "visually-hidden" }, "Phone number or e-mail"),
    identifier,
    h("label", { for: "login-password", class: "visually-hidden" }, "Password"),
    password,
    error,
    submit,
  );
  replace(root, h("div", { class: "login-screen" }, form));
  identifier.focus();
}

function loginMessage(error) {
  switch (error && error.code) {
    case "invalid_credentials": {
      const left = error.details && error.details.attempts_left;
      return left !== undefined ? `Wrong login or password (${left} attempts left).` : "Wrong login or password.";
    }
    case "login_locked":
      return "Too many failed attempts. Try again later.";
    case "account_disabled":
      return "This account is disabled.";
    default:
      return (error && error.message) || "Could not log in.";
  }
}
