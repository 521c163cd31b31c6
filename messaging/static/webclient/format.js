// Formatting of times, sizes and message previews.

import { t } from "./i18n.js";

const pad = (n) => String(n).padStart(2, "0");

export function clockTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Chat-list time: the clock today, "Yesterday", the weekday this week, else the date. */
export function listTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const days = Math.floor((startOfToday - new Date(d.getFullYear(), d.getMonth(), d.getDate())) / 864e5);
  if (days <= 0) return clockTime(iso);
  if (days === 1) return t("Yesterday");
  if (days < 7) return d.toLocaleDateString(undefined, { weekday: "short" });
  return `${d.getFullYear() % 100}/${d.getMonth() + 1}/${d.getDate()}`;
}

/** Separator label in a chat ("10:42", "Yesterday 10:42", "2026/11/3 10:42"). */
export function separatorTime(iso) {
  const label = listTime(iso);
  return label === clockTime(iso) ? label : `${label} ${clockTime(iso)}`;
}

export function fileSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Seconds left as "9s" or "1m 05s". */
export function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
}
