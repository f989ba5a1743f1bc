// The outgoing queue: events waiting for the collector, persisted in localStorage so a
// reload does not lose them. Bounded: past ``max`` the oldest are dropped.

export class Queue {
  /**
   * ``storage`` is localStorage (or null: memory only); ``key`` names this queue in it.
   * ``defer(fn)`` runs ``fn`` a little later: writes are coalesced through it, because
   * serializing a long queue on every click would cost the page milliseconds (page hide
   * calls ``save()`` directly, so a reload still finds everything).
   */
  constructor(storage, key, max = 500, defer = (fn) => fn()) {
    this.storage = storage;
    this.key = key;
    this.max = max;
    this.defer = defer;
    this.dirty = false;
    this.items = [];
    try {
      const saved = storage && JSON.parse(storage.getItem(key) || "[]");
      if (Array.isArray(saved)) this.items = saved.slice(-max);
    } catch (e) {
      // Unreadable or corrupt storage: start empty rather than break the page.
    }
  }

  get length() {
    return this.items.length;
  }

  /** Append an event; the oldest are dropped past the bound. */
  push(event) {
    this.items.push(event);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
    this.saveSoon();
  }

  /** The first ``n`` events not in ``skip`` (a set of messageIds), left in the queue. */
  peek(n, skip) {
    const out = [];
    for (const e of this.items) {
      if (out.length >= n) break;
      if (!skip || !skip.has(e.messageId)) out.push(e);
    }
    return out;
  }

  /** Drop the events of ``batch`` (by messageId). */
  remove(batch) {
    const gone = new Set(batch.map((e) => e.messageId));
    this.items = this.items.filter((e) => !gone.has(e.messageId));
    this.saveSoon();
  }

  /** Drop everything (opt-out). */
  clear() {
    this.items = [];
    this.save();
  }

  saveSoon() {
    if (this.dirty) return;
    this.dirty = true;
    this.defer(() => this.save());
  }

  /** Write the queue to storage now. */
  save() {
    this.dirty = false;
    try {
      if (!this.storage) return;
      if (this.items.length) this.storage.setItem(this.key, JSON.stringify(this.items));
      else this.storage.removeItem(this.key);
    } catch (e) {
      // Quota exceeded or storage disabled: the queue still lives in memory.
    }
  }
}
