// Privacy rules as pure functions: what may be captured from an element or a string.
// Everything the snippet sends passes through these; they have their own unit tests.

const EMAIL = /[\w.%+-]+@[a-z\d-]+(?:\.[a-z\d-]+)*\.[a-z]{2,}/gi;
// 13 to 19 digits, optionally split by spaces or dashes: checked with Luhn before masking,
// so order numbers and phone numbers that fail the check are kept.
const CARDISH = /\b\d(?:[ -]?\d){12,18}\b/g;
// US social security numbers as people write them (123-45-6789, 123 45 6789); area 000,
// 666 and 9xx are never issued, so those (often part numbers) are kept.
const SSN = /\b(?!000|666|9\d\d)\d{3}([ -])(?!00)\d{2}\1(?!0000)\d{4}\b/g;
const SENSITIVE_NAME =
  /pass|pwd|secret|token|(?:^|[^a-z])cc|card|cvv|cvc|csc|ssn|social.?sec|iban|(?:^|[^a-z])pin(?:[^a-z]|$)|account.?n|routing|tax.?id/i;
const IGNORE = "data-autocap-ignore";
const REDACT = "data-autocap-redact";
const NO_CAPTURE_CLASS = "autocap-no-capture";

/** Whether the digits pass the Luhn checksum (what every card number does). */
export function luhn(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = +digits[digits.length - 1 - i];
    if (i % 2) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return digits.length > 12 && sum % 10 === 0;
}

/** The string with emails, Luhn-valid card numbers and SSN-shaped numbers replaced by
 * [email], [card] and [ssn]. */
export function maskText(text) {
  return String(text)
    .replace(EMAIL, "[email]")
    .replace(SSN, "[ssn]")
    .replace(CARDISH, (m) => (luhn(m.replace(/\D/g, "")) ? "[card]" : m));
}

function decode(part) {
  try {
    return decodeURIComponent(part.replace(/\+/g, " "));
  } catch (e) {
    return part;
  }
}

/** The URL with emails and card numbers masked in its query string and fragment. */
export function maskUrl(url) {
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

/** Whether ``el`` is a form field whose content must never be captured, nor the field itself. */
export function isSensitiveField(el) {
  const tag = el.localName;
  if (tag !== "input" && tag !== "textarea" && tag !== "select") return false;
  const type = (el.getAttribute("type") || "").toLowerCase();
  const auto = (el.getAttribute("autocomplete") || "").toLowerCase();
  return (
    type === "password" ||
    type === "hidden" ||
    /(^|\s)cc-|one-time-code|current-password|new-password/.test(auto) ||
    SENSITIVE_NAME.test(el.getAttribute("name") || "") ||
    SENSITIVE_NAME.test(el.id || "")
  );
}

/** Whether ``el`` or an ancestor opted out of capture (data-autocap-ignore, .autocap-no-capture). */
export function isIgnored(el) {
  for (; el && el.nodeType === 1; el = el.parentNode) {
    if (el.hasAttribute(IGNORE) || (el.classList && el.classList.contains(NO_CAPTURE_CLASS)))
      return true;
  }
  return false;
}

/** Whether ``el`` is inside an element whose text is masked (data-autocap-redact). */
export function isRedacted(el) {
  for (; el && el.nodeType === 1; el = el.parentNode) {
    if (el.hasAttribute(REDACT)) return true;
  }
  return false;
}

/** Whether the text of ``el`` is typed by the visitor (fields, contenteditable): never captured. */
export function holdsTypedText(el) {
  return /^(input|textarea|select)$/.test(el.localName) || el.isContentEditable === true;
}
