// Operator dashboards: fetch the page's panels (monitoring.dashboards) and draw
// them with uPlot, again every `refresh` seconds.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const panelsRoot = document.getElementById("panels");
  const tablesRoot = document.getElementById("tables");
  const rangeSelect = document.getElementById("range");
  const freshness = document.querySelector("[data-testid=freshness]");
  const COLORS = ["#07c160", "#e67e22", "#c0392b", "#2980b9", "#8e44ad", "#16a085", "#7f8c8d"];
  const charts = new Map(); // panel id -> {plot, lines, box}
  const state = { refreshes: 0, points: {}, lastUntil: null, error: null };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "testid") node.dataset.testid = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function stack(values) {
    const out = [];
    let acc = null;
    for (const line of values) {
      acc = line.map((v, i) => (v === null && (!acc || acc[i] === null) ? null : (v || 0) + ((acc && acc[i]) || 0)));
      out.push(acc);
    }
    return out;
  }

  function draw(panel) {
    let entry = charts.get(panel.id);
    const key = panel.lines.join("|");
    const width = Math.max(300, panelsRoot.clientWidth > 1200 ? (panelsRoot.clientWidth - 14) / 2 - 30 : panelsRoot.clientWidth - 30);
    if (!entry || entry.lines !== key) {
      if (entry) entry.box.remove();
      const box = el("div", { class: "panel", testid: `panel-${panel.id}` }, el("h2", { text: `${panel.title} (${panel.unit})` }));
      const empty = el("div", { class: "empty", testid: "panel-empty", text: "No data in this range yet." });
      box.append(empty);
      panelsRoot.append(box);
      // A stacked panel draws its running totals from the largest down, each filled to
      // zero and opaque, so each band shows in its own colour (drawn smallest-first,
      // the total's fill would cover every band). Legends show each line's own value.
      const order = panel.stacked ? panel.lines.map((_, i) => i).reverse() : panel.lines.map((_, i) => i);
      const opts = {
        width, height: 200,
        series: [{}, ...order.map((i) => ({
          label: panel.lines[i], stroke: COLORS[i % COLORS.length], width: 1.5,
          fill: panel.stacked ? COLORS[i % COLORS.length] + "cc" : undefined,
          value: (u, v, si, idx) => fmt(idx === null || idx === undefined || !entry.raw ? v : entry.raw[i][idx]),
        }))],
        axes: [{}, { size: 60 }],
        scales: { x: { time: true } },
      };
      entry = { lines: key, box, empty, order, raw: null };
      entry.plot = new uPlot(opts, [[]], box);
      charts.set(panel.id, entry);
    }
    entry.raw = panel.values;
    const values = panel.stacked ? stack(panel.values) : panel.values;
    entry.plot.setData([panel.times, ...entry.order.map((i) => values[i])]);
    const points = panel.values.reduce((n, line) => n + line.filter((v) => v !== null && v !== 0).length, 0);
    state.points[panel.id] = points;
    entry.box.dataset.points = String(points);
    entry.empty.hidden = points > 0;
  }

  /** 3 significant digits below 1000 (0.0123, 4.56, 789); whole numbers above (2,300, 12,345), never 2.30e+3. */
  function fmt(v, digits = 3) {
    if (v === null || v === undefined) return "–";
    const n = +v;
    if (!Number.isFinite(n)) return String(n);
    if (Math.abs(n) >= 10 ** digits) return Math.round(n).toLocaleString("en-US");
    return String(Number(n.toPrecision(digits)));
  }

  // "none" rows: traffic a label could not be given to (docs: monitoring/README.md).
  const NONE_MEANS = {
    module: "requests that matched no route (404s, probes)",
    version: "requests without a ticket (login, sign-up, health checks, static files)",
  };

  function nameCell(r, page) {
    const cell = el("td", {}, page ? link(config[page].replace(page.toUpperCase(), encodeURIComponent(r.name)), r.name) : r.name);
    if (r.name === "none" && NONE_MEANS[page]) {
      cell.title = NONE_MEANS[page];
      cell.append(el("span", { class: "none-means", testid: "none-means", text: ` · ${NONE_MEANS[page]}` }));
    }
    return cell;
  }

  function table(title, testid, headers, rows) {
    return el("div", { class: "panel" }, el("h2", { text: title }),
      el("table", { class: "grid", testid }, el("tr", {}, ...headers.map((h) => el("th", { text: h }))), ...rows));
  }

  function link(href, text) {
    return el("a", { href, text });
  }

  function renderTables(data) {
    tablesRoot.replaceChildren();
    const breakdown = (rows, page) => rows.map((r) => el("tr", {},
      nameCell(r, page),
      el("td", { text: fmt(r.rate) }), el("td", { text: r.error_rate === null ? "–" : `${fmt(r.error_rate * 100)} %` }),
      el("td", { text: fmt(r.p99_ms) })));
    const heads = ["name", "req/s", "5xx", "p99 ms"];
    if (data.modules) tablesRoot.append(table("Modules (last 5 min)", "modules", heads, breakdown(data.modules, "module")));
    if (data.versions) tablesRoot.append(table("Client versions (last 5 min)", "versions", heads, breakdown(data.versions, "version")));
    if (data.routes) tablesRoot.append(table("Routes (last 5 min)", "routes", heads, breakdown(data.routes, null)));
    if (data.firing) {
      tablesRoot.append(table("Open alerts", "firing", ["rule", "severity", "state", "since"], data.firing.map((a) => el("tr", {},
        el("td", {}, link(config.alert.replace(/0$/, String(a.id)), a.rule)), el("td", { text: a.severity }),
        el("td", { class: `state-${a.state}`, text: a.state }), el("td", { text: new Date(a.since).toLocaleTimeString() })))));
    }
    if (data.guard) {
      tablesRoot.append(table("Traffic guard: recent blocks", "guard-blocks", ["client", "endpoint", "repeats", "until"], data.guard.map((b) => el("tr", {},
        el("td", { text: b.identity }), el("td", { text: b.endpoint }), el("td", { text: String(b.repeats) }),
        el("td", { text: new Date(b.until).toLocaleTimeString() })))));
    }
  }

  async function refresh() {
    const params = new URLSearchParams({ page: config.page, name: config.name, range: rangeSelect.value });
    try {
      const response = await fetch(`${config.data}?${params}`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      for (const panel of data.panels) draw(panel);
      renderTables(data);
      state.refreshes += 1;
      state.lastUntil = data.until;
      state.error = null;
      freshness.textContent = `data until ${new Date(data.until * 1000).toLocaleTimeString()} · refreshes every ${config.refresh} s`;
    } catch (error) {
      state.error = String(error);
      freshness.textContent = `could not refresh: ${error.message}`;
    }
  }

  rangeSelect.addEventListener("change", refresh);
  window.__dashboard = { state: () => JSON.parse(JSON.stringify(state)), refresh };
  refresh();
  setInterval(refresh, config.refresh * 1000);
})();
