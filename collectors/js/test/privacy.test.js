import assert from "node:assert/strict";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import { holdsTypedText, isIgnored, isRedacted, isSensitiveField, luhn, maskText, maskUrl } from "../src/privacy.js";

const VISA = "4111111111111111"; // Luhn-valid test number

test("luhn accepts card numbers and refuses near misses", () => {
  assert.equal(luhn(VISA), true);
  assert.equal(luhn("4111111111111112"), false);
  assert.equal(luhn("5555555555554444"), true);
  assert.equal(luhn("0"), false); // too short to be a card
});

test("maskText masks emails and Luhn-valid card numbers only", () => {
  assert.equal(maskText("mail ada.l+x@acme.co.uk now"), "mail [email] now");
  assert.equal(maskText(`card ${VISA}.`), "card [card].");
  assert.equal(maskText("card 4111 1111 1111 1111 ok"), "card [card] ok");
  assert.equal(maskText("card 4111-1111-1111-1111"), "card [card]");
  // Order numbers that fail the check are kept: they are what analysts need.
  assert.equal(maskText("order 4111111111111112"), "order 4111111111111112");
  assert.equal(maskText("Buy now"), "Buy now");
});

test("maskText masks SSN-shaped numbers, not other dashed numbers", () => {
  assert.equal(maskText("SSN 078-05-1120."), "SSN [ssn].");
  assert.equal(maskText("ssn 078 05 1120"), "ssn [ssn]");
  assert.equal(maskText("part 912-34-5678, 078-05 1120, 078-00-1120"), "part 912-34-5678, 078-05 1120, 078-00-1120");
  assert.equal(maskText("tel 555-123-4567"), "tel 555-123-4567");
});

test("maskUrl masks the query string and fragment, not the path", () => {
  assert.equal(
    maskUrl("https://shop.example/u/ada@acme.io?email=ada%40acme.io&plan=pro#c=" + VISA),
    "https://shop.example/u/ada@acme.io?email=%5Bemail%5D&plan=pro#c=%5Bcard%5D",
  );
  assert.equal(maskUrl("/plain/path"), "/plain/path");
  assert.equal(maskUrl("?q=a+b%ZZ"), "?q=a+b%ZZ"); // undecodable parts are kept as they are
});

function dom(html) {
  return new JSDOM(`<body>${html}</body>`).window.document;
}

test("sensitive fields: password, hidden, cc autocomplete and sensitive names or ids", () => {
  const doc = dom(`
    <input id="a" type="password"><input id="b" type="hidden"><input id="c" autocomplete="cc-number">
    <input id="d" name="user_cvv"><input id="ssn"><input id="f" name="IBAN"><input id="g" name="cc_exp">
    <select id="h" name="card_type"></select><textarea id="i" name="api_token"></textarea>
    <input id="ok1" name="email" type="email"><input id="ok2" name="accent"><input id="ok3" name="shipping">
    <textarea id="ok4" name="comment"></textarea><button id="ok5" name="password">Go</button>`);
  for (const id of ["a", "b", "c", "d", "ssn", "f", "g", "h", "i"]) assert.equal(isSensitiveField(doc.getElementById(id)), true, id);
  for (const id of ["ok1", "ok2", "ok3", "ok4", "ok5"]) assert.equal(isSensitiveField(doc.getElementById(id)), false, id);
});

test("ignored and redacted subtrees, typed text", () => {
  const doc = dom(`
    <div data-autocap-ignore><span id="a">x</span></div><div class="x autocap-no-capture"><b id="b">y</b></div>
    <p data-autocap-redact><i id="c">secret</i></p><span id="d">plain</span>
    <div contenteditable="true" id="e">typed</div>`);
  assert.equal(isIgnored(doc.getElementById("a")), true);
  assert.equal(isIgnored(doc.getElementById("b")), true);
  assert.equal(isIgnored(doc.getElementById("d")), false);
  assert.equal(isRedacted(doc.getElementById("c")), true);
  assert.equal(isRedacted(doc.getElementById("d")), false);
  assert.equal(holdsTypedText(doc.createElement("textarea")), true);
  assert.equal(holdsTypedText(doc.getElementById("d")), false);
});
