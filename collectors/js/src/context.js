// Page context of every event: url, path, title, referrer, search, UTM campaign, screen,
// locale and library, with emails and card numbers masked in the URLs' query strings.

import { maskText, maskUrl } from "./privacy.js";
import { VERSION } from "./version.js";

const UTM = { name: "utm_campaign", source: "utm_source", medium: "utm_medium", term: "utm_term", content: "utm_content" };

function cut(text, max) {
  text = String(text || "");
  return text.length > max ? text.slice(0, max) : text;
}

/** The UTM campaign fields of a query string (``?utm_source=...``), masked. */
export function campaign(search) {
  const params = new URLSearchParams(search || "");
  const out = {};
  for (const key in UTM) {
    const value = params.get(UTM[key]);
    if (value) out[key] = cut(maskText(value), 256);
  }
  return out;
}

// No timezone: Intl.DateTimeFormat costs the page ~13 ms on its first use (ICU data).
/** The Segment-style ``context`` of an event on the page ``win`` shows now. */
export function pageContext(win) {
  const loc = win.location;
  const doc = win.document;
  const nav = win.navigator || {};
  const scr = win.screen || {};
  const context = {
    page: {
      url: cut(maskUrl(loc.href), 4096),
      path: cut(loc.pathname, 2048),
      referrer: cut(maskUrl(doc.referrer), 4096),
      title: cut(maskText(doc.title), 1024),
      search: cut(maskUrl(loc.search), 2048),
    },
    userAgent: cut(nav.userAgent, 2048),
    locale: cut(nav.language, 64),
    screen: { width: scr.width, height: scr.height, density: win.devicePixelRatio },
    library: { name: "autocap.js", version: VERSION },
  };
  const utm = campaign(loc.search);
  for (const key in utm) {
    context.campaign = utm;
    break;
  }
  return context;
}
