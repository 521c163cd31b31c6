// The client's language: English strings are the keys (gettext style), so a string
// without a translation shows in English. `t("Friends ({n})", { n: 3 })` fills
// `{name}` placeholders. The catalogs live in CATALOGS; the language comes from the
// user's choice (kept in localStorage) or else the browser's languages.

import zhHans from "./i18n-zh-Hans.js";

const CATALOGS = {
  en: {},
  "zh-Hans": zhHans,
};

const STORAGE_KEY = "webclient.language";

export const LANGUAGES = { en: "English", "zh-Hans": "简体中文" };

function fromBrowser() {
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith("zh")) return "zh-Hans";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

let current = (() => {
  try {
    const chosen = localStorage.getItem(STORAGE_KEY);
    if (chosen && chosen in CATALOGS) return chosen;
  } catch (e) {
    // storage refused (private mode): fall back to the browser's languages
  }
  return fromBrowser();
})();

document.documentElement.lang = current;

export function language() {
  return current;
}

export function setLanguage(code) {
  if (!(code in CATALOGS)) throw new Error(`unknown language ${code}`);
  current = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch (e) {
    // not remembered across reloads, still switched now
  }
  document.documentElement.lang = code;
}

export function t(text, values) {
  const translated = CATALOGS[current][text] || text;
  if (!values) return translated;
  return translated.replace(/\{(\w+)\}/g, (whole, name) =>
    name in values ? String(values[name]) : whole,
  );
}

/**
 * The language switch: a button naming the other language; choosing it is
 * remembered (localStorage) and reloads the page, so every screen, including
 * strings made when a module loaded, is drawn again in the new language.
 */
export function languageSwitch({ className = "language-switch" } = {}) {
  const codes = Object.keys(LANGUAGES);
  const next = codes[(codes.indexOf(current) + 1) % codes.length];
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.dataset.testid = "language-switch";
  button.dataset.language = current;
  button.lang = next;
  button.textContent = next === "en" ? "EN" : "中";
  button.title = LANGUAGES[next];
  button.setAttribute("aria-label", `${t("Language")}: ${LANGUAGES[next]}`);
  button.onclick = () => {
    setLanguage(next);
    location.reload();
  };
  return button;
}
