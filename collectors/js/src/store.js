// Where the snippet keeps its state on the visitor's device: the anonymousId in a
// first-party cookie (shared by the site's pages and subdomains when ``cookieDomain`` is
// set) with localStorage as fallback; everything else in localStorage.

const YEAR = 365 * 24 * 3600;

/** A random RFC 4122 version 4 UUID. */
export function uuid(crypto) {
  if (crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = new Uint8Array(16);
  if (crypto && crypto.getRandomValues) crypto.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = (Math.random() * 256) | 0;
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** localStorage, or null when the browser refuses it (privacy modes, sandboxed frames). */
export function localStore(win) {
  try {
    const s = win.localStorage;
    s.setItem("__autocap_probe", "1");
    s.removeItem("__autocap_probe");
    return s;
  } catch (e) {
    return null;
  }
}

export class Store {
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
      this.doc.cookie =
        `${this.prefix}${name}=${encodeURIComponent(value)}; path=/; max-age=${maxAge}; SameSite=Lax` +
        (this.domain ? `; domain=${this.domain}` : "") +
        (this.secure ? "; Secure" : "");
    } catch (e) {
      // Cookies disabled: localStorage keeps the id.
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
}
