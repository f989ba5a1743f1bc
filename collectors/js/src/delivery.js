// Batching and retries, independent of the DOM: ``post`` sends one body and resolves to
// the HTTP status (0 for a network error); ``beacon`` hands a body to the browser at page
// hide. Retries use exponential backoff with jitter on network errors, 429 and 5xx; a
// batch refused with another 4xx is dropped (sending it again cannot succeed).

/** Milliseconds to wait before retry number ``attempt`` (1, 2, ...): 1 s doubling, capped, with jitter. */
export function backoff(attempt, random = Math.random, base = 1000, cap = 60000) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 16));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Whether a send that ended with ``status`` should be tried again. */
export function retryable(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

const BEACON_BYTES = 60000; // browsers refuse beacons (and keepalive fetches) over 64 KiB

export class Delivery {
  /**
   * ``options``: queue, post(body) -> Promise<status>, beacon(body) -> bool, envelope(batch) -> body,
   * batchSize, interval (ms), online() -> bool, and timers {set, clear} (setTimeout's).
   */
  constructor(options) {
    Object.assign(this, options);
    this.attempts = 0; // consecutive failed sends
    this.inflight = null; // messageIds of the batch being posted
    this.timer = null;
  }

  /** Queue an event; sends at once when a batch is full, else within ``interval``. */
  add(event) {
    this.queue.push(event);
    if (this.queue.length >= this.batchSize && !this.attempts) this.flush();
    else this.schedule(this.interval);
  }

  schedule(ms) {
    if (this.timer == null) {
      this.timer = this.timers.set(() => {
        this.timer = null;
        this.flush();
      }, ms);
    }
  }

  /** Send one batch now (if online and nothing in flight); resolves when it is settled, never rejects. */
  flush() {
    return this.send().catch(() => {
      this.inflight = null;
    });
  }

  async send() {
    if (this.inflight || !this.queue.length || !this.online()) return;
    const batch = this.queue.peek(this.batchSize);
    this.inflight = new Set(batch.map((e) => e.messageId));
    let status = 0;
    try {
      status = await this.post(this.envelope(batch));
    } catch (e) {
      status = 0;
    }
    this.inflight = null;
    if (retryable(status)) {
      this.attempts++;
      this.schedule(backoff(this.attempts, this.random));
      return;
    }
    this.attempts = 0;
    this.queue.remove(batch);
    if (status >= 400) this.warn(`collector refused ${batch.length} events (HTTP ${status}); dropped`);
    if (this.queue.length) this.schedule(this.queue.length >= this.batchSize ? 0 : this.interval);
  }

  /** Back online: retry now instead of waiting out the backoff. */
  wake() {
    this.timers.clear(this.timer);
    this.timer = null;
    this.attempts = 0;
    this.flush();
  }

  /**
   * The page is being hidden or unloaded: hand what is queued to ``beacon``. Only when the
   * collector answered the last send and we are online; otherwise the events stay in
   * storage for the next page load (a beacon's fate is never known).
   */
  unload() {
    this.queue.save();
    if (this.attempts || !this.online()) return;
    for (;;) {
      const batch = this.queue.peek(this.batchSize, this.inflight);
      if (!batch.length) return;
      const body = this.envelope(batch);
      if (body.length > BEACON_BYTES || !this.beacon(body)) return;
      this.queue.remove(batch);
    }
  }
}
