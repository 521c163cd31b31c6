// The login screen: phone number or e-mail address, and password.

import { h, icon, replace } from "./dom.js";
import { languageSwitch, t } from "./i18n.js";

/**
 * Show the login form in `root`; `onSubmit(identifier, password)` returns a
 * promise that rejects with an ApiError to show. `notice` explains why we are here.
 */
export function showLogin(root, { onSubmit, onSignup = null, notice = "", identifier: prefill = "" }) {
  const identifier = h("input", {
    id: "login-identifier",
    testid: "login-identifier",
    type: "text",
    autocomplete: "username",
    required: true,
    placeholder: t("Phone number or e-mail"),
    maxlength: "254",
    value: prefill,
  });
  const password = h("input", {
    id: "login-password",
    testid: "login-password",
    type: "password",
    autocomplete: "current-password",
    required: true,
    placeholder: t("Password"),
  });
  const error = h("p", { class: "login-error", testid: "login-error", role: "alert", hidden: !notice }, notice);
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-wide", testid: "login-submit" }, t("Log in"));
  const form = h(
    "form",
    {
      class: "login-card",
      testid: "login-form",
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        submit.textContent = t("Logging in…");
        error.hidden = true;
        try {
          await onSubmit(identifier.value.trim(), password.value);
        } catch (failure) {
          error.textContent = loginMessage(failure);
          error.hidden = false;
          submit.disabled = false;
          submit.textContent = t("Log in");
          password.select();
        }
      },
    },
    h("div", { class: "login-logo" }, icon("logo", 40)),
    h("h1", {}, t("WeChat Web")),
    h("p", { class: "login-sub" }, t("Log in to chat from this browser")),
    h("label", { for: "login-identifier", class: "visually-hidden" }, t("Phone number or e-mail")),
    identifier,
    h("label", { for: "login-password", class: "visually-hidden" }, t("Password")),
    password,
    error,
    submit,
    onSignup ? h("button", {
      type: "button", class: "btn btn-link login-switch", testid: "signup-open",
      onclick: () => showSignup(root, { onSignup, onLogin: () => showLogin(root, { onSubmit, onSignup }) }),
    }, t("Create an account")) : null,
  );
  replace(root, h("div", { class: "login-screen" }, languageSwitch({ className: "btn language-switch login-language" }), form));
  (prefill ? password : identifier).focus();
}

function loginMessage(error) {
  switch (error && error.code) {
    case "invalid_credentials": {
      const left = error.details && error.details.attempts_left;
      if (left === undefined) return t("Wrong login or password.");
      return left === 1
        ? t("Wrong login or password (1 attempt left).")
        : t("Wrong login or password ({n} attempts left).", { n: left });
    }
    case "login_locked": {
      // The server says for how long (details.retry_after, seconds): say it too.
      const seconds = Number(error.details && error.details.retry_after);
      if (!(seconds > 0)) return t("Too many failed attempts. Try again later.");
      return t("Too many failed attempts. Try again in {duration}.", { duration: duration(seconds) });
    }
    case "account_disabled":
      return t("This account is disabled.");
    case "home_elsewhere": {
      // Leaving for the home's web client (app.js), or nowhere to go: the server's words.
      const datacenter = error.details && error.details.datacenter;
      if (!error.details.leaving) return error.message || t("Could not log in.");
      return t("Your account lives in data centre {datacenter}: continuing there…", { datacenter });
    }
    default:
      return (error && error.message) || t("Could not log in.");
  }
}

/** 45 → "45 seconds", 600 → "10 minutes", 5400 → "1 h 30 min" (in the user's language). */
export function duration(seconds) {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return s === 1 ? t("1 second") : t("{n} seconds", { n: s });
  const minutes = Math.ceil(s / 60);
  if (minutes < 60) return minutes === 1 ? t("1 minute") : t("{n} minutes", { n: minutes });
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? t("{h} h {m} min", { h: hours, m: rest }) : hours === 1 ? t("1 hour") : t("{n} hours", { n: hours });
}

/**
 * The sign-up form: a name, a phone number or e-mail address, and a password.
 * `onSignup({nickname, identifier, password})` rejects with an ApiError to show.
 */
export function showSignup(root, { onSignup, onLogin }) {
  const input = (testid, props) => h("input", { id: testid, testid, required: true, ...props });
  const nickname = input("signup-nickname", { type: "text", autocomplete: "nickname", maxlength: "64", placeholder: t("Your name") });
  const identifier = input("signup-identifier", { type: "text", autocomplete: "username", maxlength: "254", placeholder: t("Phone number or e-mail") });
  const password = input("signup-password", { type: "password", autocomplete: "new-password", placeholder: t("Password") });
  const error = h("p", { class: "login-error", testid: "signup-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-wide", testid: "signup-submit" }, t("Sign up"));
  const form = h("form", {
    class: "login-card",
    testid: "signup-form",
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        await onSignup({ nickname: nickname.value.trim(), identifier: identifier.value.trim(), password: password.value });
      } catch (failure) {
        error.textContent = signupMessage(failure);
        error.hidden = false;
        submit.disabled = false;
      }
    },
  },
  h("div", { class: "login-logo" }, icon("logo", 40)),
  h("h1", {}, t("Create an account")),
  h("label", { for: "signup-nickname", class: "visually-hidden" }, t("Your name")), nickname,
  h("label", { for: "signup-identifier", class: "visually-hidden" }, t("Phone number or e-mail")), identifier,
  h("label", { for: "signup-password", class: "visually-hidden" }, t("Password")), password,
  error,
  submit,
  h("button", { type: "button", class: "btn btn-link login-switch", testid: "login-open", onclick: onLogin }, t("I have an account: log in")));
  replace(root, h("div", { class: "login-screen" }, languageSwitch({ className: "btn language-switch login-language" }), form));
  nickname.focus();
}

function signupMessage(error) {
  const fields = (error && error.details && error.details.fields) || {};
  if (error && error.code === "account_exists") return t("This phone number or e-mail is registered already: log in instead.");
  if (fields.password) return t("Password: {why}", { why: fields.password[0] });
  if (fields.phone) return t("Phone number: {why}", { why: fields.phone[0] });
  if (fields.email) return t("E-mail: {why}", { why: fields.email[0] });
  return (error && error.message) || t("Could not sign up.");
}
