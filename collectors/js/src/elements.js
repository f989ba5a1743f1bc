// The element chain of an autocaptured event: the meaningful target first, then its
// ancestors up to <body>, each described by the fields of schemas/event.schema.json
// (definitions/element), capped in depth and size. Reads the DOM, writes nothing.

import { holdsTypedText, isIgnored, isRedacted, isSensitiveField, maskText, maskUrl } from "./privacy.js";

const INTERACTIVE = /^(a|button|input|select|textarea|label|summary|option)$/;
const ROLES = /^(button|link|checkbox|radio|switch|tab|menuitem\w*|option|treeitem)$/;
const MAX_TEXT = 255;
const MAX_ATTR = 256;
const MAX_CLASSES = 20;
const MAX_DATA_ATTRS = 20;

function cut(text, max) {
  return text.length > max ? text.slice(0, max) : text;
}

/** Collapse whitespace and trim. */
export function squash(text) {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * The element a click on ``node`` is about: the nearest link, button, form control or
 * element with a clickable ARIA role; failing that, the outermost element of the run of
 * ``cursor: pointer`` ancestors (cursor is inherited, so the icon inside a clickable card
 * has it too); failing that, the element clicked. null for clicks outside <body>.
 */
export function clickTarget(node, win, maxDepth = 12) {
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

/** The visible text of ``el`` without ignored subtrees, masked inside redacted ones. */
export function elementText(el, own, budget = { nodes: 500 }) {
  if (holdsTypedText(el)) {
    const type = (el.getAttribute("type") || "").toLowerCase();
    // A button's value is its label, written by the site, not typed by the visitor.
    return /^(submit|button|reset)$/.test(type) ? el.value || "" : "";
  }
  if (isRedacted(el)) return "***";
  let out = "";
  // Bounded in nodes visited too: a click on a huge container must stay cheap.
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

/** One element as the schema describes it; ``target`` also gets its descendants' text. */
export function describe(el, target) {
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

/**
 * The chain from ``el`` up to <body>, at most ``maxDepth`` elements and about
 * ``maxBytes`` of JSON (outer elements are dropped first); null when ``el`` must not be
 * captured (ignored subtree or sensitive field).
 */
export function elementChain(el, maxDepth = 12, maxBytes = 8192) {
  if (!el || isIgnored(el) || isSensitiveField(el)) return null;
  const chain = [];
  for (let cur = el; cur && cur.nodeType === 1 && cur.localName !== "html" && chain.length < maxDepth; cur = cur.parentElement) {
    chain.push(describe(cur, cur === el));
  }
  while (chain.length > 1 && JSON.stringify(chain).length > maxBytes) chain.pop();
  return chain;
}
