// DOM wiring for autocapture: page views (also SPA route changes), page leave with time on
// page and scroll depth, clicks, rage clicks, form submits and field changes. Every
// listener is passive and wrapped by ``safe`` so nothing here can break the host page.

import { clickTarget, elementChain } from "./elements.js";
import { pageContext } from "./context.js";

/** Rage clicks: ``clicks`` clicks within ``ms`` milliseconds and ``px`` pixels of each other. */
export class RageClicks {
  constructor({ clicks = 3, ms = 1000, px = 30 } = {}) {
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
}

/** How far down the page the viewport reaches now, in percent of the document height. */
export function scrollDepth(win) {
  const doc = win.document.documentElement;
  const height = Math.max(doc.scrollHeight, win.document.body ? win.document.body.scrollHeight : 0);
  if (!height) return 100;
  return Math.min(100, Math.round(((win.scrollY + win.innerHeight) / height) * 100));
}

/**
 * Start capturing on ``win``. ``emit(event, elements, properties, context)`` queues one
 * event; ``unload()`` hands the queue to sendBeacon. ``o`` holds the autocapture options.
 */
export function autocapture(win, emit, unload, o, safe) {
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
    if (page && page.href === win.location.href) return; // e.g. pushState then hashchange
    leave();
    page = { href: win.location.href, start: Date.now(), scroll: 0, context: pageContext(win) };
    measure();
    if (o.pageviews) emit("$pageview", null, {}, page.context);
  };
  // Frameworks change the title just after the URL: look once they are done.
  const routeChanged = () => win.setTimeout(safe(view), 0);

  for (const name of ["pushState", "replaceState"]) {
    const original = win.history[name];
    if (typeof original !== "function") continue;
    win.history[name] = function () {
      const result = original.apply(this, arguments);
      safe(routeChanged)();
      return result;
    };
  }
  on(win, "popstate", routeChanged);
  on(win, "hashchange", routeChanged);
  on(win, "pageshow", (e) => e.persisted && view()); // back from the bfcache: a new view
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
