// The REST API (docs/api.md): JSON in and out, the ticket in the Authorization
// header (never in a URL), every error as {code, message, details}.

import { language, t } from "./i18n.js";

const OVERLOAD_RETRIES = 3;
const TICKET_ERRORS = new Set(["not_authenticated", "ticket_invalid", "ticket_expired", "ticket_revoked"]);

export class ApiError extends Error {
  constructor(status, body) {
    const payload = body && typeof body === "object" ? body : {};
    super(payload.message || `Request failed (${status || "network"})`);
    this.status = status;
    this.code = payload.code || (status ? "http_" + status : "network_error");
    this.details = payload.details || {};
  }

  get ticketRefused() {
    return this.status === 401 && TICKET_ERRORS.has(this.code);
  }

  get homeElsewhere() {
    return this.status === 421 && this.code === "home_elsewhere";
  }
}

export class Api {
  /**
   * `onTicketRefused` is called when the server no longer accepts the ticket;
   * `onHomeElsewhere` when it sends the ticket's user to their home data centre
   * (421 `home_elsewhere`, docs/protocol.md §2b).
   */
  constructor({ ticket = null, onTicketRefused = () => {}, onHomeElsewhere = () => {}, timeoutMs = 15000 } = {}) {
    this.ticket = ticket;
    this.onTicketRefused = onTicketRefused;
    this.onHomeElsewhere = onHomeElsewhere;
    this.timeoutMs = timeoutMs;
    this.inFlight = 0;
  }

  /**
   * One request. Refused by FastReject (503 `overloaded`, docs/overload.md), it is
   * asked again after `retry_after` plus up to half as much at random, at most
   * OVERLOAD_RETRIES times: the refusal comes before any handler, so even a POST
   * did nothing and may be repeated.
   */
  async call(method, path, options = {}) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.callOnce(method, path, options);
      } catch (error) {
        if (!(error instanceof ApiError) || error.code !== "overloaded" || attempt >= OVERLOAD_RETRIES) {
          throw error;
        }
        const seconds = Number(error.details.retry_after) || 1;
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000 * (1 + Math.random() / 2)));
      }
    }
  }

  async callOnce(method, path, { body, query, auth = true, timeoutMs = this.timeoutMs } = {}) {
    let url = path;
    if (query) {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query)) {
        if (value !== undefined && value !== null && value !== "") params.set(name, value);
      }
      const text = params.toString();
      if (text) url += (url.includes("?") ? "&" : "?") + text;
    }
    // The server's messages in the client's language (Django's LocaleMiddleware).
    const headers = { Accept: "application/json", "Accept-Language": language() };
    if (auth && this.ticket) headers.Authorization = `Ticket ${this.ticket}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response;
    let payload = null;
    this.inFlight += 1;
    try {
      try {
        response = await fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: controller.signal,
          credentials: "omit",
          cache: "no-store",
        });
      } catch {
        throw new ApiError(0, {
          code: "network_error",
          message: controller.signal.aborted ? t("The server did not answer in time.") : t("No connection to the server."),
        });
      }
      try {
        payload = response.status === 204 ? null : await response.json();
      } catch {
        payload = null;
      }
    } finally {
      clearTimeout(timer);
      this.inFlight -= 1;
    }
    if (response.status === 204) return null;
    if (!response.ok) {
      const error = new ApiError(response.status, payload);
      if (auth && error.ticketRefused) this.onTicketRefused(error);
      if (auth && this.ticket && error.homeElsewhere) this.onHomeElsewhere(error);
      throw error;
    }
    return payload;
  }

  get(path, query) {
    return this.call("GET", path, { query });
  }

  post(path, body = {}) {
    return this.call("POST", path, { body });
  }

  /** Every page of a paginated list ({count, next, results}), up to `maxPages`. */
  async all(path, query = {}, maxPages = 20) {
    const results = [];
    for (let page = 1; page <= maxPages; page++) {
      const answer = await this.get(path, { ...query, page, page_size: 100 });
      results.push(...answer.results);
      if (!answer.next) return { results, complete: true };
    }
    return { results, complete: false };
  }

  // --- Accounts and contacts -------------------------------------------------------
  login(identifier, password, device) {
    return this.call("POST", "/api/accounts/login", {
      body: { identifier, password, device },
      auth: false,
    });
  }
  logout() {
    return this.post("/api/accounts/logout");
  }
  me() {
    return this.get("/api/accounts/me");
  }
  friends() {
    return this.all("/api/contacts/friends");
  }
  incomingRequests() {
    return this.all("/api/contacts/requests", { direction: "incoming" });
  }
  search(q) {
    return this.get("/api/contacts/search", { q });
  }
  sendRequest(toUserId, greeting) {
    return this.post("/api/contacts/requests", { to_user_id: toUserId, greeting });
  }
  acceptRequest(id) {
    return this.post(`/api/contacts/requests/${id}/accept`);
  }
  declineRequest(id) {
    return this.post(`/api/contacts/requests/${id}/decline`);
  }

  // --- Messaging ----------------------------------------------------------------------
  topology() {
    // Asked between reconnect attempts: never let it hold a reconnect up for long.
    return this.call("GET", "/api/topology", { auth: false, timeoutMs: 3000 });
  }
  conversations() {
    return this.all("/api/messaging/conversations");
  }
  conversation(id) {
    return this.get(`/api/messaging/conversations/${id}`);
  }
  history(id, { before, limit = 50 } = {}) {
    return this.get(`/api/messaging/conversations/${id}/messages`, { before, limit });
  }
  openDirect(userId) {
    return this.post("/api/messaging/conversations/direct", { user_id: userId });
  }
  createGroup(name, members) {
    return this.post("/api/messaging/groups", { name, members });
  }
  // Groups (owner and admins manage; docs/protocol.md §5) and one's own chat settings.
  updateGroup(id, fields) {
    return this.call("PATCH", `/api/messaging/groups/${id}`, { body: fields });
  }
  inviteToGroup(id, userIds) {
    return this.post(`/api/messaging/groups/${id}/members`, { user_ids: userIds });
  }
  removeFromGroup(id, userId) {
    return this.call("DELETE", `/api/messaging/groups/${id}/members/${userId}`);
  }
  leaveGroup(id) {
    return this.post(`/api/messaging/groups/${id}/leave`);
  }
  setGroupAdmin(id, userId, admin) {
    return this.call(admin ? "PUT" : "DELETE", `/api/messaging/groups/${id}/admins/${userId}`);
  }
  hideMessage(id) {
    return this.post("/api/messaging/hide", { message: id });
  }
  chatSettings(id, fields) {
    return this.call("PATCH", `/api/messaging/conversations/${id}/settings`, { body: fields });
  }
  // --- Official accounts ----------------------------------------------------------------
  searchOfficial(q) {
    return this.get("/api/official/search", { q });
  }
  followingOfficial() {
    return this.get("/api/official/following");
  }
  followOfficial(id) {
    return this.post(`/api/official/accounts/${id}/follow`);
  }
  unfollowOfficial(id) {
    return this.post(`/api/official/accounts/${id}/unfollow`);
  }
  officialForConversation(conversationId) {
    return this.get(`/api/official/conversations/${conversationId}`);
  }
  officialMenuTap(id, button) {
    return this.post(`/api/official/accounts/${id}/menu`, button.type === "view"
      ? { type: "view", url: button.url } : { type: "click", key: button.key });
  }
  // --- Wallet (amounts in fen) -------------------------------------------------------------
  wallet() {
    return this.get("/api/wallet");
  }
  walletHistory(page = 1) {
    return this.get("/api/wallet/history", { page, page_size: 50 });
  }
  topUp(clientId, amount) {
    return this.post("/api/wallet/topups", { client_id: clientId, amount });
  }
  topUpStatus(id) {
    return this.get(`/api/wallet/topups/${id}`);
  }
  withdraw(clientId, amount) {
    return this.post("/api/wallet/withdrawals", { client_id: clientId, amount });
  }
  withdrawal(id) {
    return this.get(`/api/wallet/withdrawals/${id}`);
  }
  // --- Red packets (amounts in fen; docs/api.md, Red packets) -------------------------------
  redPacketCovers() {
    return this.get("/api/redpackets/covers");
  }
  sendRedPacket(fields) {
    return this.post("/api/redpackets", fields);
  }
  grabRedPacket(id) {
    return this.post(`/api/redpackets/${encodeURIComponent(id)}/grab`);
  }
  redPacket(id) {
    return this.get(`/api/redpackets/${encodeURIComponent(id)}`);
  }
  async attachment(id) {
    const response = await fetch(`/api/messaging/attachments/${encodeURIComponent(id)}`, {
      headers: { Authorization: `Ticket ${this.ticket}` },
      credentials: "omit",
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    return response.blob();
  }
}
