// Shared by the unit tests: a jsdom window, and the event schema the collector enforces.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";
import Ajv from "ajv";

export const SCHEMA = JSON.parse(readFileSync(new URL("../../../schemas/event.schema.json", import.meta.url)));
// The schema's patterns are written for Python's and Rust's regex engines: no unicode mode.
const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
const validate = ajv.compile(SCHEMA);

/** Fail with the schema's complaints unless ``message`` is a valid event. */
export function assertValidEvent(message) {
  if (!validate(message)) throw new Error(`invalid event: ${JSON.stringify(validate.errors, null, 1)}`);
}

/** A jsdom window on ``url`` with ``html`` in its body. */
export function browser(html, url = "https://shop.example/products?utm_source=news&utm_campaign=spring") {
  return new JSDOM(`<!doctype html><title>Shop</title><body>${html}</body>`, { url, pretendToBeVisual: true }).window;
}
