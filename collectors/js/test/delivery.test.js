import assert from "node:assert/strict";
import { test } from "node:test";
import { Delivery, backoff, retryable } from "../src/delivery.js";
import { Queue } from "../src/queue.js";

class MemoryStorage {
  constructor() {
    this.data = {};
  }
  getItem(k) {
    return k in this.data ? this.data[k] : null;
  }
  setItem(k, v) {
    this.data[k] = String(v);
  }
  removeItem(k) {
    delete this.data[k];
  }
}

/** Timers run by hand: ``fire()`` runs what is due, in order. */
class Timers {
  constructor() {
    this.pending = [];
    this.set = (fn, ms) => {
      const t = { fn, ms };
      this.pending.push(t);
      return t;
    };
    this.clear = (t) => (this.pending = this.pending.filter((p) => p !== t));
  }
  async fire() {
    const due = this.pending.splice(0);
    for (const t of due) await t.fn();
  }
}

function setup({ statuses = [], online = true, batchSize = 3, storage = new MemoryStorage(), beacon } = {}) {
  const posted = [];
  const beacons = [];
  const timers = new Timers();
  const state = { online, warnings: [] };
  const delivery = new Delivery({
    queue: new Queue(storage, "q", 10),
    post: async (body) => {
      posted.push(JSON.parse(body).batch.map((e) => e.messageId));
      return statuses.length ? statuses.shift() : 200;
    },
    beacon: beacon || ((body) => (beacons.push(JSON.parse(body).batch.map((e) => e.messageId)), true)),
    envelope: (batch) => JSON.stringify({ batch }),
    batchSize,
    interval: 1000,
    online: () => state.online,
    timers,
    random: () => 0.5,
    warn: (m) => state.warnings.push(m),
  });
  return { delivery, posted, beacons, timers, state, storage };
}

const ev = (n) => ({ messageId: `m${n}` });

test("backoff doubles from 1 s with jitter in [half, full], capped at 60 s", () => {
  assert.equal(backoff(1, () => 0), 500);
  assert.equal(backoff(1, () => 1), 1000);
  assert.equal(backoff(3, () => 1), 4000);
  assert.equal(backoff(30, () => 1), 60000);
  assert.equal(backoff(30, () => 0), 30000);
  assert.deepEqual([0, 429, 503, 500, 408].map(retryable), [true, true, true, true, true]);
  assert.deepEqual([200, 400, 401, 403, 413].map(retryable), [false, false, false, false, false]);
});

test("a full batch is sent at once, a partial one after the interval", async () => {
  const { delivery, posted, timers } = setup();
  delivery.add(ev(1));
  delivery.add(ev(2));
  assert.deepEqual(posted, []);
  assert.equal(timers.pending[0].ms, 1000);
  delivery.add(ev(3));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(posted, [["m1", "m2", "m3"]]);
  assert.equal(delivery.queue.length, 0);
});

test("network errors, 429 and 503 are retried with growing backoff; the same messageIds", async () => {
  const { delivery, posted, timers } = setup({ statuses: [0, 429, 503, 200] });
  delivery.add(ev(1));
  const waits = [];
  for (let i = 0; i < 4; i++) {
    waits.push(timers.pending[0].ms);
    await timers.fire();
  }
  assert.deepEqual(waits, [1000, 750, 1500, 3000]); // interval, then backoff(1..3) at random 0.5
  assert.deepEqual(posted, [["m1"], ["m1"], ["m1"], ["m1"]]);
  assert.equal(delivery.queue.length, 0);
  assert.equal(delivery.attempts, 0);
});

test("a batch refused with another 4xx is dropped, not retried", async () => {
  const { delivery, posted, timers, state } = setup({ statuses: [400] });
  delivery.add(ev(1));
  await timers.fire();
  assert.equal(delivery.queue.length, 0);
  assert.deepEqual(timers.pending, []);
  assert.deepEqual(posted, [["m1"]]);
  assert.match(state.warnings[0], /HTTP 400/);
});

test("offline: nothing is sent until wake(), then at once", async () => {
  const { delivery, posted, timers, state } = setup({ online: false });
  delivery.add(ev(1));
  await timers.fire();
  assert.deepEqual(posted, []);
  state.online = true;
  await delivery.wake();
  assert.deepEqual(posted, [["m1"]]);
});

test("the queue is persisted, bounded, and found again by a new page", () => {
  const storage = new MemoryStorage();
  const queue = new Queue(storage, "q", 3);
  for (let i = 1; i <= 5; i++) queue.push(ev(i));
  assert.deepEqual(new Queue(storage, "q", 3).items.map((e) => e.messageId), ["m3", "m4", "m5"]);
  queue.remove([ev(3), ev(5)]);
  assert.deepEqual(new Queue(storage, "q").items, [ev(4)]);
  storage.setItem("q", "{not json");
  assert.deepEqual(new Queue(storage, "q").items, []); // corrupt storage: start empty
});

test("page hide beacons the queue when the collector is healthy", () => {
  const { delivery, beacons } = setup({ batchSize: 2 });
  for (let i = 1; i <= 3; i++) delivery.queue.push(ev(i));
  delivery.unload();
  assert.deepEqual(beacons, [["m1", "m2"], ["m3"]]);
  assert.equal(delivery.queue.length, 0);
});

test("page hide while failing or offline keeps the queue in storage for the next page", async () => {
  const { delivery, beacons, timers, storage } = setup({ statuses: [503] });
  delivery.add(ev(1));
  await timers.fire(); // 503: backing off
  delivery.add(ev(2));
  delivery.unload();
  assert.deepEqual(beacons, []);
  assert.deepEqual(new Queue(storage, "q").items, [ev(1), ev(2)]);
  const offline = setup({ online: false });
  offline.delivery.add(ev(1));
  offline.delivery.unload();
  assert.deepEqual(offline.beacons, []);
});

test("a refused beacon leaves the events queued", () => {
  const { delivery } = setup({ beacon: () => false });
  delivery.queue.push(ev(1));
  delivery.unload();
  assert.equal(delivery.queue.length, 1);
});

test("flush never rejects, even when building the body throws", async () => {
  const { delivery } = setup();
  delivery.envelope = () => {
    throw new Error("boom");
  };
  delivery.queue.push(ev(1));
  await delivery.flush(); // resolves: an unhandled rejection would reach the page's console
  assert.equal(delivery.inflight, null);
  assert.equal(delivery.queue.length, 1);
});

test("queue writes are coalesced through defer; save() writes at once", () => {
  const storage = new MemoryStorage();
  let writes = 0;
  const setItem = storage.setItem.bind(storage);
  storage.setItem = (k, v) => (writes++, setItem(k, v));
  const deferred = [];
  const queue = new Queue(storage, "q", 10, (fn) => deferred.push(fn));
  for (let i = 1; i <= 5; i++) queue.push(ev(i));
  assert.equal(writes, 0);
  assert.equal(deferred.length, 1); // one write scheduled for the five pushes
  deferred.shift()();
  assert.equal(writes, 1);
  assert.equal(new Queue(storage, "q").length, 5);
  queue.push(ev(6));
  queue.save(); // page hide: now, not later
  assert.equal(new Queue(storage, "q").length, 6);
});
