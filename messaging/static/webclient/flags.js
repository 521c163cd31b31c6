// Feature flags (gray release; docs/protocol.md, "Flags"): the client-visible
// features as this device sees them. A full snapshot comes with the login answer
// and with every websocket hello; `flag` sync entries carry the changes, naming
// the devices they concern. Every value has a revision: the highest one wins, so
// an entry that arrives late or is replayed never undoes a newer value.

export const CHAT_SEARCH = "web.chat_search";

export class Flags {
  constructor(deviceId, snapshot = {}) {
    this.deviceId = deviceId === undefined || deviceId === null ? null : String(deviceId);
    this.values = new Map(); // key → {enabled, revision}
    this.listeners = new Set();
    this.applySnapshot(snapshot);
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  enabled(key) {
    const value = this.values.get(key);
    return Boolean(value && value.enabled);
  }

  snapshot() {
    return Object.fromEntries([...this.values].map(([key, value]) => [key, { ...value }]));
  }

  /** A full snapshot: every client-visible feature; those it leaves out are gone. */
  applySnapshot(snapshot) {
    const given = snapshot && typeof snapshot === "object" ? snapshot : {};
    let changed = false;
    for (const [key, value] of Object.entries(given)) {
      changed = this.put(key, Boolean(value && value.enabled), Number(value && value.revision) || 0) || changed;
    }
    for (const key of [...this.values.keys()]) {
      if (!(key in given)) {
        changed = changed || this.enabled(key);
        this.values.delete(key);
      }
    }
    if (changed) this.emit();
  }

  /** A `flag` entry's payload: {feature, revision, devices: {"<device id>": bool}}. */
  applyEntry(payload) {
    if (!payload || typeof payload.feature !== "string" || !payload.devices) return;
    const value = this.deviceId === null ? undefined : payload.devices[this.deviceId];
    if (value === undefined) return; // the change does not concern this device
    if (this.put(payload.feature, Boolean(value), Number(payload.revision) || 0)) this.emit();
  }

  put(key, enabled, revision) {
    const known = this.values.get(key);
    if (known && known.revision > revision) return false;
    this.values.set(key, { enabled, revision });
    return !known || known.enabled !== enabled;
  }

  emit() {
    for (const listener of this.listeners) listener();
  }
}
