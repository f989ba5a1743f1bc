/* autocap.js | Apache-2.0 | the autocap snippet: see collectors/js/README */
(() => {
  // src/privacy.js
  var EMAIL = /[\w.%+-]+@[a-z\d-]+(?:\.[a-z\d-]+)*\.[a-z]{2,}/gi;
  var CARDISH = /\b\d(?:[ -]?\d){12,18}\b/g;
  var SSN = /\b(?!000|666|9\d\d)\d{3}([ -])(?!00)\d{2}\1(?!0000)\d{4}\b/g;
  var SENSITIVE_NAME = /pass|pwd|secret|token|(?:^|[^a-z])cc|card|cvv|cvc|csc|ssn|social.?sec|iban|(?:^|[^a-z])pin(?:[^a-z]|$)|account.?n|routing|tax.?id/i;
  var IGNORE = "data-autocap-ignore";
  var REDACT = "data-autocap-redact";
  var NO_CAPTURE_CLASS = "autocap-no-capture";
  function luhn(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let d = +digits[digits.length - 1 - i];
      if (i % 2) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return digits.length > 12 && sum % 10 === 0;
  }
  function maskText(text) {
    return String(text).replace(EMAIL, "[email]").replace(SSN, "[ssn]").replace(CARDISH, (m) => luhn(m.replace(/\D/g, "")) ? "[card]" : m);
  }
  function decode(part) {
    try {
      return decodeURIComponent(part.replace(/\+/g, " "));
    } catch (e) {
      return part;
    }
  }
  function maskUrl(url) {
    url = String(url);
    const at = url.search(/[?#]/);
    if (at < 0) return url;
    const tail = url.slice(at).replace(/[^?#&=]+/g, (part) => {
      const plain = decode(part);
      const masked = maskText(plain);
      return masked === plain ? part : encodeURIComponent(masked);
    });
    return url.slice(0, at) + tail;
  }
  function isSensitiveField(el) {
    const tag = el.localName;
    if (tag !== "input" && tag !== "textarea" && tag !== "select") return false;
    const type = (el.getAttribute("type") || "").toLowerCase();
    const auto = (el.getAttribute("autocomplete") || "").toLowerCase();
    return type === "password" || type === "hidden" || /(^|\s)cc-|one-time-code|current-password|new-password/.test(auto) || SENSITIVE_NAME.test(el.getAttribute("name") || "") || SENSITIVE_NAME.test(el.id || "");
  }
  function isIgnored(el) {
    for (; el && el.nodeType === 1; el = el.parentNode) {
      if (el.hasAttribute(IGNORE) || el.classList && el.classList.contains(NO_CAPTURE_CLASS))
        return true;
    }
    return false;
  }
  function isRedacted(el) {
    for (; el && el.nodeType === 1; el = el.parentNode) {
      if (el.hasAttribute(REDACT)) return true;
    }
    return false;
  }
  function holdsTypedText(el) {
    return /^(input|textarea|select)$/.test(el.localName) || el.isContentEditable === true;
  }

  // src/elements.js
  var INTERACTIVE = /^(a|button|input|select|textarea|label|summary|option)$/;
  var ROLES = /^(button|link|checkbox|radio|switch|tab|menuitem\w*|option|treeitem)$/;
  var MAX_TEXT = 255;
  var MAX_ATTR = 256;
  var MAX_CLASSES = 20;
  var MAX_DATA_ATTRS = 20;
  function cut(text, max) {
    return text.length > max ? text.slice(0, max) : text;
  }
  function squash(text) {
    return text.replace(/\s+/g, " ").trim();
  }
  function clickTarget(node, win, maxDepth = 12) {
    let el = node && node.nodeType === 1 ? node : node && node.parentElement;
    if (!el || el.localName === "html") return null;
    for (let cur = el, i = 0; cur && cur.nodeType === 1 && i < maxDepth; cur = cur.parentElement, i++) {
      if (cur.localName === "body") break;
      if (INTERACTIVE.test(cur.localName) || ROLES.test(cur.getAttribute("role") || "")) return cur;
    }
    let pointer = null;
    for (let cur = el, i = 0; cur && cur.localName !== "body" && i < maxDepth; cur = cur.parentElement, i++) {
      if (win.getComputedStyle(cur).cursor !== "pointer") break;
      pointer = cur;
    }
    return pointer || el;
  }
  function elementText(el, own, budget = { nodes: 500 }) {
    if (holdsTypedText(el)) {
      const type = (el.getAttribute("type") || "").toLowerCase();
      return /^(submit|button|reset)$/.test(type) ? el.value || "" : "";
    }
    if (isRedacted(el)) return "***";
    let out = "";
    for (let child = el.firstChild; child && out.length < 4 * MAX_TEXT && budget.nodes-- > 0; child = child.nextSibling) {
      if (child.nodeType === 3) out += " " + child.nodeValue;
      else if (!own && child.nodeType === 1 && !/^(script|style|noscript|template)$/.test(child.localName) && !isIgnored(child) && !isSensitiveField(child))
        out += " " + elementText(child, false, budget);
    }
    return out;
  }
  function position(el) {
    let child = 1;
    let ofType = 1;
    for (let sib = el.previousElementSibling; sib; sib = sib.previousElementSibling) {
      child++;
      if (sib.localName === el.localName) ofType++;
    }
    return [child, ofType];
  }
  function describe(el, target) {
    const out = { tag: cut(el.localName || "unknown", 64) };
    const redacted = isRedacted(el);
    const attr = (name) => el.getAttribute(name);
    if (el.id) out.id = cut(el.id, MAX_ATTR);
    const classes = (attr("class") || "").split(/\s+/).filter(Boolean);
    if (classes.length) out.classes = classes.slice(0, MAX_CLASSES).map((c) => cut(c, MAX_ATTR));
    const text = cut(maskText(squash(elementText(el, !target))), MAX_TEXT);
    if (text) out.text = text;
    if (attr("href") != null) out.href = cut(maskUrl(attr("href")), 2048);
    for (const name of ["name", "type", "role"]) {
      if (attr(name)) out[name] = cut(attr(name), name === "name" ? MAX_ATTR : 64);
    }
    if (attr("aria-label")) out.aria_label = redacted ? "***" : cut(maskText(attr("aria-label")), MAX_ATTR);
    [out.nth_child, out.nth_of_type] = position(el);
    const data = {};
    let count = 0;
    for (const { name, value } of el.attributes) {
      if (name.startsWith("data-") && !name.startsWith("data-autocap") && count++ < MAX_DATA_ATTRS)
        data[cut(name, MAX_ATTR)] = redacted ? "***" : cut(maskText(value), MAX_ATTR);
    }
    if (count) out.attributes = data;
    return out;
  }
  function elementChain(el, maxDepth = 12, maxBytes = 8192) {
    if (!el || isIgnored(el) || isSensitiveField(el)) return null;
    const chain = [];
    for (let cur = el; cur && cur.nodeType === 1 && cur.localName !== "html" && chain.length < maxDepth; cur = cur.parentElement) {
      chain.push(describe(cur, cur === el));
    }
    while (chain.length > 1 && JSON.stringify(chain).length > maxBytes) chain.pop();
    return chain;
  }

  // src/version.js
  var VERSION = "0.1.0";

  // src/context.js
  var UTM = { name: "utm_campaign", source: "utm_source", medium: "utm_medium", term: "utm_term", content: "utm_content" };
  function cut2(text, max) {
    text = String(text || "");
    return text.length > max ? text.slice(0, max) : text;
  }
  function campaign(search) {
    const params = new URLSearchParams(search || "");
    const out = {};
    for (const key in UTM) {
      const value = params.get(UTM[key]);
      if (value) out[key] = cut2(maskText(value), 256);
    }
    return out;
  }
  function pageContext(win) {
    const loc = win.location;
    const doc = win.document;
    const nav = win.navigator || {};
    const scr = win.screen || {};
    const context = {
      page: {
        url: cut2(maskUrl(loc.href), 4096),
        path: cut2(loc.pathname, 2048),
        referrer: cut2(maskUrl(doc.referrer), 4096),
        title: cut2(maskText(doc.title), 1024),
        search: cut2(maskUrl(loc.search), 2048)
      },
      userAgent: cut2(nav.userAgent, 2048),
      locale: cut2(nav.language, 64),
      screen: { width: scr.width, height: scr.height, density: win.devicePixelRatio },
      library: { name: "autocap.js", version: VERSION }
    };
    const utm = campaign(loc.search);
    for (const key in utm) {
      context.campaign = utm;
      break;
    }
    return context;
  }

  // src/autocapture.js
  var RageClicks = class {
    constructor({ clicks = 3, ms = 1e3, px = 30 } = {}) {
      Object.assign(this, { clicks, ms, px, hits: [] });
    }
    /** Record a click at (x, y) at time t (ms); true when it completes a rage click. */
    add(x, y, t) {
      this.hits = this.hits.filter((h) => t - h.t <= this.ms && Math.hypot(x - h.x, y - h.y) <= this.px);
      this.hits.push({ x, y, t });
      if (this.hits.length < this.clicks) return false;
      this.hits = [];
      return true;
    }
  };
  function scrollDepth(win) {
    const doc = win.document.documentElement;
    const height = Math.max(doc.scrollHeight, win.document.body ? win.document.body.scrollHeight : 0);
    if (!height) return 100;
    return Math.min(100, Math.round((win.scrollY + win.innerHeight) / height * 100));
  }
  function autocapture(win, emit, unload, o, safe) {
    const doc = win.document;
    const rage = new RageClicks(o.rageClick);
    const on = (target, type, fn) => target.addEventListener(type, safe(fn), { capture: true, passive: true });
    let page = null;
    let measured = 0;
    const measure = () => {
      if (page) page.scroll = Math.max(page.scroll, scrollDepth(win));
    };
    const leave = () => {
      if (!page) return;
      measure();
      if (o.pageleave)
        emit("$pageleave", null, { time_on_page_ms: Date.now() - page.start, max_scroll_depth: page.scroll }, page.context);
      page = null;
    };
    const view = () => {
      if (page && page.href === win.location.href) return;
      leave();
      page = { href: win.location.href, start: Date.now(), scroll: 0, context: pageContext(win) };
      measure();
      if (o.pageviews) emit("$pageview", null, {}, page.context);
    };
    const routeChanged = () => win.setTimeout(safe(view), 0);
    for (const name of ["pushState", "replaceState"]) {
      const original = win.history[name];
      if (typeof original !== "function") continue;
      win.history[name] = function() {
        const result = original.apply(this, arguments);
        safe(routeChanged)();
        return result;
      };
    }
    on(win, "popstate", routeChanged);
    on(win, "hashchange", routeChanged);
    on(win, "pageshow", (e) => e.persisted && view());
    on(win, "pagehide", () => {
      leave();
      unload();
    });
    on(doc, "visibilitychange", () => doc.visibilityState === "hidden" && unload());
    on(win, "scroll", () => {
      const now = Date.now();
      if (now - measured > 100) {
        measured = now;
        measure();
      }
    });
    on(doc, "click", (e) => {
      const origin = e.composedPath ? e.composedPath()[0] : e.target;
      const chain = elementChain(clickTarget(origin, win, o.maxDepth), o.maxDepth);
      if (!chain) return;
      if (o.clicks) emit("$click", chain, {});
      if (o.rageclicks && rage.add(e.clientX, e.clientY, Date.now())) emit("$rageclick", chain, {});
    });
    on(doc, "submit", (e) => {
      const chain = o.submits && elementChain(e.target, o.maxDepth);
      if (chain) emit("$submit", chain, {});
    });
    on(doc, "change", (e) => {
      const el = e.target;
      const chain = o.changes && el && /^(input|select|textarea)$/.test(el.localName) && elementChain(el, o.maxDepth);
      if (chain) emit("$change", chain, {});
    });
    view();
  }

  // src/delivery.js
  function backoff(attempt, random = Math.random, base = 1e3, cap = 6e4) {
    const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 16));
    return Math.round(ceiling / 2 + random() * ceiling / 2);
  }
  function retryable(status) {
    return status === 0 || status === 408 || status === 429 || status >= 500;
  }
  var BEACON_BYTES = 6e4;
  var Delivery = class {
    /**
     * ``options``: queue, post(body) -> Promise<status>, beacon(body) -> bool, envelope(batch) -> body,
     * batchSize, interval (ms), online() -> bool, and timers {set, clear} (setTimeout's).
     */
    constructor(options) {
      Object.assign(this, options);
      this.attempts = 0;
      this.inflight = null;
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
      for (; ; ) {
        const batch = this.queue.peek(this.batchSize, this.inflight);
        if (!batch.length) return;
        const body = this.envelope(batch);
        if (body.length > BEACON_BYTES || !this.beacon(body)) return;
        this.queue.remove(batch);
      }
    }
  };

  // src/queue.js
  var Queue = class {
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
      }
    }
  };

  // src/store.js
  var YEAR = 365 * 24 * 3600;
  function uuid(crypto) {
    if (crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    if (crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.random() * 256 | 0;
    b[6] = b[6] & 15 | 64;
    b[8] = b[8] & 63 | 128;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  function localStore(win) {
    try {
      const s = win.localStorage;
      s.setItem("__autocap_probe", "1");
      s.removeItem("__autocap_probe");
      return s;
    } catch (e) {
      return null;
    }
  }
  var Store = class {
    constructor(win, prefix, cookieDomain) {
      this.doc = win.document;
      this.secure = win.location.protocol === "https:";
      this.storage = localStore(win);
      this.prefix = prefix;
      this.domain = cookieDomain;
      this.memory = {};
    }
    get(name) {
      try {
        const v = this.storage ? this.storage.getItem(this.prefix + name) : this.memory[name];
        return v == null ? null : JSON.parse(v);
      } catch (e) {
        return null;
      }
    }
    set(name, value) {
      const text = JSON.stringify(value);
      try {
        if (value == null) this.storage.removeItem(this.prefix + name);
        else this.storage.setItem(this.prefix + name, text);
      } catch (e) {
        if (value == null) delete this.memory[name];
        else this.memory[name] = text;
      }
    }
    cookie(name) {
      try {
        const m = this.doc.cookie.match(new RegExp(`(?:^|; )${this.prefix}${name}=([^;]*)`));
        return m ? decodeURIComponent(m[1]) : null;
      } catch (e) {
        return null;
      }
    }
    setCookie(name, value, maxAge = YEAR) {
      try {
        this.doc.cookie = `${this.prefix}${name}=${encodeURIComponent(value)}; path=/; max-age=${maxAge}; SameSite=Lax` + (this.domain ? `; domain=${this.domain}` : "") + (this.secure ? "; Secure" : "");
      } catch (e) {
      }
    }
    /** The device's anonymousId: cookie first, then localStorage, else a new one (saved in both). */
    anonymousId(crypto, fresh) {
      let id = fresh ? null : this.cookie("id") || this.get("id");
      if (!id) id = uuid(crypto);
      this.setCookie("id", id);
      this.set("id", id);
      return id;
    }
  };

  // src/client.js
  var DEFAULTS = {
    batchSize: 20,
    flushInterval: 1e3,
    maxQueue: 500,
    maxDepth: 12,
    respectDnt: true,
    optOutByDefault: false,
    cookieDomain: null,
    autocapture: true,
    rageClick: {},
    debug: false
  };
  var CAPTURE = ["pageviews", "pageleave", "clicks", "rageclicks", "submits", "changes"];
  function warn(message) {
    try {
      console.warn(`[autocap] ${message}`);
    } catch (e) {
    }
  }
  function isId(id) {
    return typeof id === "string" && id.trim() !== "" || typeof id === "number" && isFinite(id);
  }
  var Autocap = class {
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
      this.safe = (fn) => function() {
        try {
          const result = fn.apply(this, arguments);
          if (result && typeof result.catch === "function") result.catch(() => {
          });
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
      const o = this.o = Object.assign({}, DEFAULTS, { host: this.defaultHost }, options);
      if (!o.host) return warn("init needs {host: 'https://your-collector'}");
      const store = this.store = new Store(win, "autocap_", o.cookieDomain);
      this.state = store.get("state") || {};
      this.anonymousId = store.anonymousId(win.crypto);
      const nav = win.navigator || {};
      this.dnt = o.respectDnt && (nav.doNotTrack === "1" || win.doNotTrack === "1" || nav.globalPrivacyControl === true);
      const url = `${o.host.replace(/\/+$/, "")}/v1/batch`;
      const safe = this.safe;
      this.delivery = new Delivery({
        queue: new Queue(store.storage, `autocap_queue_${writeKey}`, o.maxQueue, (fn) => win.setTimeout(safe(fn), 300)),
        // text/plain and the key in the body: a "simple" CORS request, no preflight round trip.
        post: (body) => win.fetch(url, {
          method: "POST",
          body,
          headers: { "Content-Type": "text/plain" },
          credentials: "omit",
          keepalive: body.length < 6e4
        }).then((r) => r.status, () => 0),
        beacon: (body) => !!nav.sendBeacon && nav.sendBeacon(url, new Blob([body], { type: "text/plain" })),
        envelope: (batch) => JSON.stringify({ batch, sentAt: (/* @__PURE__ */ new Date()).toISOString(), writeKey }),
        batchSize: o.batchSize,
        interval: o.flushInterval,
        online: () => nav.onLine !== false,
        timers: { set: (fn, ms) => win.setTimeout(safe(fn), ms), clear: (t) => win.clearTimeout(t) },
        random: Math.random,
        warn
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
          safe
        );
      }
      for (const [name, args] of this.pending.splice(0)) this[name].apply(this, args);
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
          timestamp: (/* @__PURE__ */ new Date()).toISOString(),
          context: context || this.context()
        },
        fields
      );
      if (this.state.userId != null && m.userId == null) m.userId = this.state.userId;
      if (this.state.groupId != null && m.groupId == null) m.groupId = this.state.groupId;
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
      if (name && typeof name === "object") [name, properties] = [void 0, name];
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
  };
  var METHODS = ["init", "track", "page", "identify", "group", "alias", "register", "reset", "optOut", "optIn", "flush"];
  for (const name of METHODS) {
    const method = Autocap.prototype[name];
    Autocap.prototype[name] = function() {
      if (!this.delivery && name !== "init") {
        if (this.pending.length < 100) this.pending.push([name, Array.prototype.slice.call(arguments)]);
        return;
      }
      return this.safe(method).apply(this, arguments);
    };
  }

  // src/index.js
  (function(win) {
    try {
      const stub = win.autocap;
      if (stub && stub.__autocap) return;
      const script = win.document.currentScript;
      const client = new Autocap(win, script && script.src);
      win.autocap = client;
      if (Array.isArray(stub)) {
        const calls = stub.filter((c) => c[0] === "init").concat(stub.filter((c) => c[0] !== "init"));
        for (const [name, ...args] of calls) if (typeof client[name] === "function") client[name](...args);
      }
    } catch (e) {
    }
  })(window);
})();
