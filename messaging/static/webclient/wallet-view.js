// The wallet: balance, history of movements with their reasons, top-up through the
// payment provider's pay page, withdrawal. Amounts travel in fen (integers); people
// type and read yuan. The server decides everything (docs/api.md, Wallet).

import { toast } from "./dialogs.js";
import { h, renderKeyed, replace } from "./dom.js";
import { separatorTime } from "./format.js";
import { t } from "./i18n.js";

const POLL_MS = 1500;
const POLL_LIMIT_MS = 30 * 60 * 1000; // a pay page left open longer is checked on return
const FINAL = { topup: new Set(["paid", "closed", "anomaly"]), withdrawal: new Set(["succeeded", "failed"]) };

/** "12.34" (yuan, at most two decimals) → 1234 fen; null if it is not an amount. */
export function parseYuan(text) {
  const match = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

/** 1234 → "¥12.34"; with `signed`, "+¥12.34" / "−¥12.34". */
export function yuan(fen, { signed = false } = {}) {
  const n = Math.abs(Number(fen) || 0);
  const text = `¥${Math.floor(n / 100)}.${String(n % 100).padStart(2, "0")}`;
  if (!signed) return fen < 0 ? `−${text}` : text;
  return `${fen < 0 ? "−" : "+"}${text}`;
}

export class WalletPage {
  constructor(app) {
    this.app = app;
    this.summary = null; // GET /api/wallet
    this.movements = [];
    this.nextPage = null;
    this.order = null; // the top-up or withdrawal being followed: {kind, id, amount, status, payUrl}
    this.drafts = { topup: null, withdrawal: null }; // {clientId, amount}: a retry reuses the id
    this.timer = null;
    this.view = null;
    this.error = "";
  }

  // --- Data ------------------------------------------------------------------------------

  async open() {
    await this.refresh();
  }

  async refresh() {
    try {
      const [summary, history] = await Promise.all([this.app.api.wallet(), this.app.api.walletHistory()]);
      this.summary = summary;
      this.movements = history.results;
      this.nextPage = history.next ? 2 : null;
      this.error = "";
    } catch (error) {
      this.error = error.message;
    }
    this.app.scheduleRender();
  }

  async loadMore() {
    if (!this.nextPage) return;
    try {
      const page = await this.app.api.walletHistory(this.nextPage);
      const seen = new Set(this.movements.map((m) => m.id));
      this.movements.push(...page.results.filter((m) => !seen.has(m.id)));
      this.nextPage = page.next ? this.nextPage + 1 : null;
    } catch (error) {
      toast(error.message, { error: true });
    }
    this.app.scheduleRender();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  // --- Actions -----------------------------------------------------------------------------

  async topUp(text, button) {
    const amount = this.checkAmount(text, "topup");
    if (amount === null) return;
    // Opened during the click, before any await, so the browser lets it open.
    const page = window.open("about:blank", "_blank");
    const draft = this.draft("topup", amount);
    button.disabled = true;
    try {
      const topup = await this.app.api.topUp(draft.clientId, amount);
      this.drafts.topup = null;
      this.follow({ kind: "topup", id: topup.id, amount, status: topup.status, payUrl: topup.pay_url });
      if (page && topup.pay_url) {
        page.opener = null;
        page.location.href = topup.pay_url;
      } else if (page) {
        page.close();
      }
    } catch (error) {
      if (page) page.close();
      if (error.code !== "network_error") this.drafts.topup = null;
      toast(error.message, { error: true });
    } finally {
      button.disabled = false;
    }
  }

  async withdraw(text, button) {
    const amount = this.checkAmount(text, "withdrawal");
    if (amount === null) return;
    const draft = this.draft("withdrawal", amount);
    button.disabled = true;
    try {
      const withdrawal = await this.app.api.withdraw(draft.clientId, amount);
      this.drafts.withdrawal = null;
      this.follow({ kind: "withdrawal", id: withdrawal.id, amount, status: withdrawal.status });
      await this.refresh(); // the amount left the wallet at once
    } catch (error) {
      if (error.code !== "network_error") this.drafts.withdrawal = null;
      toast(error.message, { error: true });
    } finally {
      button.disabled = false;
    }
  }

  /** The same client id for a retry of the same request, a new one otherwise. */
  draft(kind, amount) {
    const current = this.drafts[kind];
    if (current && current.amount === amount) return current;
    this.drafts[kind] = { clientId: crypto.randomUUID(), amount };
    return this.drafts[kind];
  }

  checkAmount(text, kind) {
    const amount = parseYuan(text);
    const limits = this.summary && this.summary.limits;
    if (amount === null || amount <= 0) {
      toast("Enter an amount in yuan, like 12.50.", { error: true });
      return null;
    }
    if (limits && (amount < limits[`${kind}_min`] || amount > limits[`${kind}_max`])) {
      toast(t("Between {min} and {max}, please.", { min: yuan(limits[`${kind}_min`]), max: yuan(limits[`${kind}_max`]) }), { error: true });
      return null;
    }
    return amount;
  }

  /** Watch an order until the server says how it ended. */
  follow(order) {
    this.stop();
    this.order = { ...order, since: Date.now() };
    this.app.scheduleRender();
    this.poll();
  }

  poll() {
    const order = this.order;
    if (!order || FINAL[order.kind].has(order.status)) return;
    this.timer = setTimeout(async () => {
      try {
        const fresh = order.kind === "topup"
          ? await this.app.api.topUpStatus(order.id) : await this.app.api.withdrawal(order.id);
        if (this.order !== order) return;
        order.status = fresh.status;
        order.failure = fresh.failure_message || fresh.failure_reason || "";
        if (FINAL[order.kind].has(order.status)) {
          this.announce(order);
          await this.refresh();
          return;
        }
      } catch {
        // Asked again below; the order's fate is on the server either way.
      }
      this.app.scheduleRender();
      if (Date.now() - order.since < POLL_LIMIT_MS) this.poll();
    }, POLL_MS);
  }

  announce(order) {
    const messages = {
      paid: t("{amount} added to your wallet.", { amount: yuan(order.amount) }),
      succeeded: t("{amount} withdrawn.", { amount: yuan(order.amount) }),
      failed: t("The withdrawal failed and {amount} is back in your wallet.", { amount: yuan(order.amount) }),
      closed: t("The top-up was not paid in time."),
      anomaly: t("The top-up could not be credited; support will look into it."),
    };
    toast(messages[order.status] || order.status, { error: order.status !== "paid" && order.status !== "succeeded" });
  }

  // --- Rendering -----------------------------------------------------------------------------

  renderSide(container) {
    const balance = this.summary ? yuan(this.summary.balance) : "…";
    if (container.__sig === balance) return;
    container.__sig = balance;
    replace(container, h("div", { class: "wallet-side-card" },
      h("div", { class: "muted small" }, t("Balance")),
      h("div", { class: "wallet-side-balance", testid: "wallet-side-balance" }, balance)));
  }

  render(main) {
    if (!this.view || main.__wallet !== this.view) {
      this.view = this.build();
      main.__wallet = this.view;
      replace(main, this.view.root);
    }
    const { view, summary, order } = this;
    view.balance.textContent = summary ? yuan(summary.balance) : "…";
    view.balance.dataset.fen = summary ? String(summary.balance) : "";
    view.error.textContent = this.error;
    view.error.hidden = !this.error;
    const available = !summary || summary.payments_available;
    view.unavailable.hidden = available;
    for (const control of view.controls) control.disabled = !available;
    view.status.hidden = !order;
    if (order) this.renderStatus(view.status, order);
    view.more.hidden = !this.nextPage;
    view.empty.hidden = this.movements.length > 0 || !summary;
    renderKeyed(view.history, this.movements, (m) => m.id, (m) => movementRow(m), () => {});
  }

  renderStatus(node, order) {
    const sig = JSON.stringify([order.id, order.kind, order.status, order.failure]);
    if (node.__sig === sig) return;
    node.__sig = sig;
    node.dataset.status = order.status;
    const waiting = {
      topup: { created: t("Placing the order…"), pending: t("Waiting for your payment on the pay page…") },
      withdrawal: { pending: t("Sending…"), processing: t("Waiting for the payment provider…") },
    }[order.kind][order.status];
    const done = {
      paid: t("Top-up received."), closed: t("Top-up not paid in time."), anomaly: t("Top-up held for review."),
      succeeded: t("Withdrawal paid out."), failed: (order.failure ? t("Withdrawal refunded: {reason}", { reason: order.failure }) : t("Withdrawal refunded.")),
    }[order.status];
    replace(node,
      h("span", {}, order.kind === "topup" ? t("Top-up of {amount}: ", { amount: yuan(order.amount) }) : t("Withdrawal of {amount}: ", { amount: yuan(order.amount) })),
      h("span", { testid: "wallet-order-text" }, waiting || done || order.status),
      order.kind === "topup" && order.status === "pending" && order.payUrl
        ? h("a", { class: "btn-link", href: order.payUrl, target: "_blank", rel: "noopener noreferrer",
          testid: "wallet-pay-link" }, t("Open the pay page")) : null);
  }

  build() {
    const topupAmount = h("input", { class: "input", testid: "wallet-topup-amount", inputmode: "decimal",
      placeholder: t("Amount in yuan, e.g. 50"), "aria-label": t("Top-up amount in yuan") });
    const topupButton = h("button", { type: "submit", class: "btn btn-primary", testid: "wallet-topup-button" }, t("Top up"));
    const withdrawAmount = h("input", { class: "input", testid: "wallet-withdraw-amount", inputmode: "decimal",
      placeholder: t("Amount in yuan"), "aria-label": t("Withdrawal amount in yuan") });
    const withdrawButton = h("button", { type: "submit", class: "btn", testid: "wallet-withdraw-button" }, t("Withdraw"));
    const view = {
      balance: h("div", { class: "wallet-balance", testid: "wallet-balance" }),
      error: h("p", { class: "error", hidden: true }),
      unavailable: h("p", { class: "muted", testid: "wallet-unavailable", hidden: true },
        "Top-ups and withdrawals are not available on this server."),
      status: h("div", { class: "card wallet-status", testid: "wallet-order-status", role: "status", hidden: true }),
      history: h("div", { class: "wallet-history", testid: "wallet-history" }),
      empty: h("p", { class: "muted", testid: "wallet-history-empty", hidden: true }, t("No movements yet.")),
      more: h("button", { type: "button", class: "btn btn-link load-more", testid: "wallet-history-more",
        onclick: () => this.loadMore() }, t("Earlier movements")),
      controls: [topupAmount, topupButton, withdrawAmount, withdrawButton],
    };
    const form = (input, button, action, hint) => h("form", {
      class: "search-form",
      onsubmit: (event) => {
        event.preventDefault();
        action(input.value, button);
      },
    }, input, button, h("span", { class: "muted small wallet-hint" }, hint));
    view.root = h("section", { class: "pane", testid: "wallet-page" },
      h("header", { class: "pane-header" }, h("h2", {}, t("Wallet"))),
      h("div", { class: "pane-body" },
        h("div", { class: "card wallet-card" }, h("div", { class: "muted" }, t("Balance")), view.balance),
        view.error, view.unavailable,
        h("h3", { class: "wallet-heading" }, t("Top up through WeChat Pay")),
        form(topupAmount, topupButton, (text, button) => this.topUp(text, button), t("You pay on the provider's page.")),
        h("h3", { class: "wallet-heading" }, t("Withdraw to your WeChat Pay balance")),
        form(withdrawAmount, withdrawButton, (text, button) => this.withdraw(text, button), ""),
        view.status,
        h("h3", { class: "wallet-heading" }, t("Movements")),
        view.history, view.empty, view.more));
    return view;
  }
}

function movementRow(movement) {
  return h("div", { class: "wallet-movement", testid: "wallet-movement", dataset: { kind: movement.kind, amount: String(movement.amount) } },
    h("div", { class: "wallet-movement-text" },
      h("div", { testid: "wallet-movement-reason" }, movement.reason),
      h("div", { class: "muted small" }, separatorTime(movement.created_at))),
    h("div", { class: `wallet-amount ${movement.amount < 0 ? "out" : "in"}`, testid: "wallet-movement-amount" },
      yuan(movement.amount, { signed: true })));
}
