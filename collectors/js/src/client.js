// The public API (window.autocap): init, track, page, identify, group, alias, register,
// reset, optOut, optIn, flush. Calls made before init are kept and replayed by init.
// Every method is wrapped so that an error inside the snippet never reaches the page.

import { autocapture } from "./autocapture.js";
import { pageContext } from "./context.js";
import { Delivery } from "./delivery.js";
import { Queue } from "./queue.js";
import { Store, uuid } from "./store.js";

const DEFAULTS = {
  batchSize: 20,
  flushInterval: 1000,
  maxQueue: 500,
  maxDepth: 12,
  respectDnt: true,
  optOutByDefault: false,
  cookieDomain: null,
  autocapture: true,
  rageClick: {},
  debug: false,
};
const CAPTURE = ["pageviews", "pageleave", "clicks", "rageclicks", "submits", "changes"];

function warn(message) {
  try {
    console.warn(`[autocap] ${message}`);
  } catch (e) {
    // No console: nothing to say it with.
  }
}

function isId(id) {
  return (typeof id === "string" && id.trim() !== "") || (typeof id === "number" && isFinite(id));
}

export class Autocap {
  /** ``scriptSrc`` is where the snippet was loaded from: its origin is the default host. */
  constructor(win, scriptSrc) {
    this.__autocap = true;
    this.win = win;
    this.pending = [];
    try {
      this.defaultHost = scriptSrc ? new URL(scriptSrc).origin : "";
    } catch (e) {
      this.defaultHost = "";
    }
    const self = this;
    this.safe = (fn) =>
      function () {
        try {
          const result = fn.apply(this, arguments);
          if (result && typeof result.catch === "function") result.catch(() => {});
          return result;
        } catch (e) {
          if (self.o && self.o.debug) warn(`internal error: ${e && e.message}`);
        }
      };
  }

  /** Start with ``writeKey``; options: host, batchSize, flushInterval, autocapture, ... */
  init(writeKey, options) {
    if (this.o) return warn("init called twice; the second call is ignored");
    if (!isId(writeKey)) return warn("init needs a write key");
    const win = this.win;
    const o = (this.o = Object.assign({}, DEFAULTS, { host: this.defaultHost }, options));
    if (!o.host) return warn("init needs {host: 'https://your-collector'}");
    const store = (this.store = new Store(win, "autocap_", o.cookieDomain));
    this.state = store.get("state") || {};
    this.anonymousId = store.anonymousId(win.crypto);
    const nav = win.navigator || {};
    this.dnt = o.respectDnt && (nav.doNotTrack === "1" || win.doNotTrack === "1" || nav.globalPrivacyControl === true);
    const url = `${o.host.replace(/\/+$/, "")}/v1/batch`;
    const safe = this.safe;
    this.delivery = new Delivery({
      queue: new Queue(store.storage, `autocap_queue_${writeKey}`, o.maxQueue, (fn) => win.setTimeout(safe(fn), 300)),
      // text/plain and the key in the body: a "simple" CORS request, no preflight round trip.
      post: (body) =>
        win
          .fetch(url, {
            method: "POST",
            body,
            headers: { "Content-Type": "text/plain" },
            credentials: "omit",
            keepalive: body.length < 60000,
          })
          .then((r) => r.status, () => 0),
      beacon: (body) => !!nav.sendBeacon && nav.sendBeacon(url, new Blob([body], { type: "text/plain" })),
      envelope: (batch) => JSON.stringify({ batch, sentAt: new Date().toISOString(), writeKey }),
      batchSize: o.batchSize,
      interval: o.flushInterval,
      online: () => nav.onLine !== false,
      timers: { set: (fn, ms) => win.setTimeout(safe(fn), ms), clear: (t) => win.clearTimeout(t) },
      random: Math.random,
      warn,
    });
    win.addEventListener("online", safe(() => this.delivery.wake()));
    if (o.autocapture && !this.dnt) {
      const ac = o.autocapture === true ? {} : o.autocapture;
      const opts = { rageClick: o.rageClick, maxDepth: o.maxDepth };
      for (const name of CAPTURE) opts[name] = ac[name] !== false;
      autocapture(
        win,
        (event, elements, properties, context) => {
          const m = { event, properties: Object.assign({}, this.state.props, properties) };
          if (elements) m.elements = elements;
          this.send("track", m, context);
        },
        () => this.delivery.unload(),
        opts,
        safe,
      );
    }
    for (const [name, args] of this.pending.splice(0)) this[name].apply(this, args);
    // What an earlier page left in storage, once the page's own scripts have run.
    win.setTimeout(safe(() => this.delivery.flush()), 0);
  }

  enabled() {
    return !this.dnt && !(this.state.optedOut == null ? this.o.optOutByDefault : this.state.optedOut);
  }

  save() {
    this.store.set("state", this.state);
  }

  /** The page context, worked out again only when the URL or the title changes. */
  context() {
    const key = this.win.location.href + "\n" + this.win.document.title;
    if (!this.ctx || this.ctx.key !== key) this.ctx = { key, value: pageContext(this.win) };
    return this.ctx.value;
  }

  send(type, fields, context) {
    if (!this.enabled()) return;
    const m = Object.assign(
      {
        type,
        messageId: uuid(this.win.crypto),
        anonymousId: this.anonymousId,
        timestamp: new Date().toISOString(),
        context: context || this.context(),
      },
      fields,
    );
    if (this.state.userId != null && m.userId == null) m.userId = this.state.userId;
    if (this.state.groupId != null && m.groupId == null) m.groupId = this.state.groupId;
    // A copy detached from the caller's objects (throws on cycles: caught, event dropped).
    this.delivery.add(JSON.parse(JSON.stringify(m)));
  }

  /** A custom event; names starting with $ are reserved for autocapture. */
  track(event, properties) {
    if (typeof event !== "string" || !event || event[0] === "$")
      return warn("track needs an event name that does not start with $");
    this.send("track", { event, properties: Object.assign({}, this.state.props, properties) });
  }

  /** A Segment page call (autocapture sends $pageview by itself). */
  page(name, properties) {
    if (name && typeof name === "object") [name, properties] = [undefined, name];
    const m = { properties: Object.assign({}, this.state.props, properties) };
    if (name) m.name = String(name);
    this.send("page", m);
  }

  /** Link this device to ``userId`` (kept for later events) with optional traits. */
  identify(userId, traits) {
    if (userId && typeof userId === "object") [userId, traits] = [this.state.userId, userId];
    if (userId != null && !isId(userId)) return warn("identify needs a user id (string or number)");
    if (userId != null) this.state.userId = String(userId);
    this.save();
    this.send("identify", { traits: Object.assign({}, traits) });
  }

  /** Attach the user to account ``groupId`` (kept for later events) with its traits. */
  group(groupId, traits) {
    if (!isId(groupId)) return warn("group needs an account id (string or number)");
    this.state.groupId = String(groupId);
    this.save();
    this.send("group", { groupId: String(groupId), traits: Object.assign({}, traits) });
  }

  /** Merge ``previousId`` (default: the current user or device) into ``userId``. */
  alias(userId, previousId) {
    if (!isId(userId)) return warn("alias needs a user id");
    const previous = previousId == null ? this.state.userId || this.anonymousId : previousId;
    this.send("alias", { userId: String(userId), previousId: String(previous) });
  }

  /** Super properties: added to every later event from this device. */
  register(properties) {
    this.state.props = Object.assign({}, this.state.props, properties);
    this.save();
  }

  /** Forget the user, the account and the super properties; a new anonymousId (logout). */
  reset() {
    this.state = { optedOut: this.state.optedOut };
    this.save();
    this.anonymousId = this.store.anonymousId(this.win.crypto, true);
  }

  /** Stop capturing on this device (remembered) and drop what is queued. */
  optOut() {
    this.state.optedOut = true;
    this.save();
    this.delivery.queue.clear();
  }

  /** Capture again after optOut (or with optOutByDefault). */
  optIn() {
    this.state.optedOut = false;
    this.save();
  }

  /** Send a batch now. */
  flush() {
    return this.delivery.flush();
  }
}

const METHODS = ["init", "track", "page", "identify", "group", "alias", "register", "reset", "optOut", "optIn", "flush"];
for (const name of METHODS) {
  const method = Autocap.prototype[name];
  Autocap.prototype[name] = function () {
    if (!this.delivery && name !== "init") {
      // Before init (or after a failed one): keep the call for init to replay.
      if (this.pending.length < 100) this.pending.push([name, Array.prototype.slice.call(arguments)]);
      return;
    }
    return this.safe(method).apply(this, arguments);
  };
}
