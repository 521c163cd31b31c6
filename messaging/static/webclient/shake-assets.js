// Sponsor assets fetched ahead of the show (docs/shake.md "Sponsor assets", seed 004):
// a `shake_assets` sync entry, or the schedule answer, names the activity's manifest
// version; when it is new to us the client reads the manifest (GET /api/shake/assets)
// and, in idle time, fetches each asset it does not hold yet, checks its SHA-256
// (crypto.subtle) and keeps it in the Cache API, then tells the server what it holds
// (POST /api/shake/assets/held), again every `report_seconds` of the manifest while the
// page shows, so operators see the share of clients ready.
//
// A prize card shows the kept copy (an object URL: no request at the peak); where the
// browser has no Cache API or no crypto.subtle (a page not served over https or from
// localhost), it holds nothing verified, reports so, and shows the asset from our
// origin by its hashed URL (which the browser's own cache may still hold).

const CACHE_NAME = "shake-assets-v1";
const REPORT_MS = 60_000; // until a manifest says `report_seconds`
const IDLE_TIMEOUT_MS = 5_000;
// A sync entry can come before the answering access process has re-read the manifest
// (it does within a second or so): an older version than we were told is asked again,
// after 2 s, 4 s, … this many times.
const STALE_RETRY_MS = 2_000;
const STALE_RETRIES = 5;

function whenIdle(fn) {
  if (typeof requestIdleCallback === "function") requestIdleCallback(() => fn(), { timeout: IDLE_TIMEOUT_MS });
  else setTimeout(fn, 1000);
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class ShakeAssets {
  constructor(app) {
    this.app = app;
    this.activity = null;
    this.version = null; // the manifest version the server last named
    this.manifest = null; // {activity, version, assets: [{url, sha256, bytes, sponsor, role}]}
    this.held = new Map(); // sha256 → object URL of the kept, verified copy
    this.fetching = false;
    this.failed = {}; // sha256 → why it is not held (a network error, a wrong hash)
    this.reports = []; // what the server answered: {version, complete, missing}
    this.reportTimer = null;
    this.reportEvery = REPORT_MS;
    this.staleRetries = 0;
    this.error = ""; // why the last sync failed
  }

  get usable() {
    return typeof caches !== "undefined" && Boolean(globalThis.crypto && crypto.subtle);
  }

  /** The `assets` of a schedule answer, or a `shake_assets` entry's payload:
   * {activity, version}, or null. Also when the shake page is not showing: the
   * assets are fetched ahead, in idle time. */
  take(assets) {
    if (!assets || (assets.activity === this.activity && assets.version === this.version)) return;
    this.activity = assets.activity;
    this.version = assets.version;
    whenIdle(() => this.sync());
  }

  get reportMs() {
    const seconds = this.manifest && this.manifest.report_seconds;
    return seconds > 0 ? seconds * 1000 : REPORT_MS;
  }

  start() {
    clearInterval(this.reportTimer);
    this.reportEvery = this.reportMs;
    this.reportTimer = setInterval(() => this.report(), this.reportEvery);
  }

  stop() {
    clearInterval(this.reportTimer);
    this.reportTimer = null;
  }

  async sync() {
    if (this.fetching || this.activity === null) return;
    this.fetching = true;
    try {
      this.manifest = await this.app.api.callOnce("GET", "/api/shake/assets", { query: { activity: this.activity } });
      // The server's report period: the timer follows it while the page shows.
      if (this.reportTimer !== null && this.reportMs !== this.reportEvery) this.start();
      if (this.manifest.version < this.version) this.retryStale();
      else this.staleRetries = 0;
      if (this.usable) {
        const cache = await caches.open(CACHE_NAME);
        for (const entry of this.manifest.assets) {
          if (this.held.has(entry.sha256)) continue;
          await this.keep(cache, entry);
        }
      }
    } catch (error) {
      // The next schedule answer, or the next report, tries again.
      this.error = String((error && error.code) || error);
    } finally {
      this.fetching = false;
    }
    await this.report();
    this.app.scheduleRender();
  }

  retryStale() {
    if (this.staleRetries >= STALE_RETRIES) return; // the next schedule answer or report, then
    this.staleRetries += 1;
    setTimeout(() => whenIdle(() => this.sync()), STALE_RETRY_MS * this.staleRetries);
  }

  /** Hold one asset: the kept copy if it is there and still right, else fetched. */
  async keep(cache, entry) {
    let response = await cache.match(entry.url);
    if (!response) {
      try {
        response = await fetch(entry.url, { credentials: "omit" });
      } catch {
        this.failed[entry.sha256] = "network";
        return;
      }
      if (!response.ok) {
        this.failed[entry.sha256] = `status ${response.status}`;
        return;
      }
    }
    const bytes = await response.arrayBuffer();
    if (hex(await crypto.subtle.digest("SHA-256", bytes)) !== entry.sha256) {
      this.failed[entry.sha256] = "hash";
      await cache.delete(entry.url);
      return;
    }
    const type = response.headers.get("Content-Type") || entry.content_type;
    await cache.put(entry.url, new Response(bytes, { headers: { "Content-Type": type } }));
    this.held.set(entry.sha256, URL.createObjectURL(new Blob([bytes], { type })));
    delete this.failed[entry.sha256];
  }

  async report() {
    const manifest = this.manifest;
    if (!manifest || !manifest.activity || !manifest.assets.length) return;
    const held = manifest.assets.map((a) => a.sha256).filter((sha) => this.held.has(sha));
    try {
      const answer = await this.app.api.callOnce("POST", "/api/shake/assets/held", {
        body: { activity: manifest.activity, version: manifest.version, held },
      });
      this.reports.push({ version: manifest.version, complete: answer.complete, missing: answer.missing });
      // A newer manifest than ours: read it (the next sync fetches what is new).
      if (answer.version !== manifest.version) {
        this.version = answer.version;
        whenIdle(() => this.sync());
      }
    } catch {
      // Counted at the next report.
    }
  }

  /** Where to show a sponsor's logo or background from: the kept copy, else our
   * origin's hashed URL, else null (the server's `logo_url` as given). */
  urlOf(sponsorId, role) {
    const entry = this.manifest && this.manifest.assets.find((a) => a.sponsor === sponsorId && a.role === role);
    if (!entry) return null;
    return this.held.get(entry.sha256) || entry.url;
  }

  snapshot() {
    return {
      activity: this.activity,
      version: this.version,
      manifest: this.manifest,
      held: [...this.held.keys()],
      failed: { ...this.failed },
      error: this.error,
      fetching: this.fetching,
      reports: this.reports.map((r) => ({ ...r })),
    };
  }
}
