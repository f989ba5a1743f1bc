import assert from "node:assert/strict";
import { test } from "node:test";
import { clickTarget, elementChain } from "../src/elements.js";
import { pageContext } from "../src/context.js";
import { assertValidEvent, browser } from "./helpers.js";

const PAGE = `
<nav id="top" class="menu main">
  <ul><li>Home</li><li class="item"><a id="pricing" href="/pricing?ref=ada@acme.io" data-track="nav" data-autocap-x="internal"
    aria-label="See pricing">Pricing <svg><path id="icon"></path></svg></a></li></ul>
</nav>
<main>
  <button id="buy" class="btn primary" type="submit"><span id="label">Buy  now
   for <b>4111 1111 1111 1111</b></span></button>
  <div role="button" id="fake"><i id="fake-icon">*</i></div>
  <div id="card" style="cursor: pointer"><div id="card-body" style="cursor: pointer"><em id="card-text">Card</em></div></div>
  <p id="para">Just text</p>
  <form id="signup"><input id="email" name="email" value="ada@acme.io"><input id="pw" type="password" value="hunter2">
    <textarea id="bio">my life story</textarea><input id="go" type="submit" value="Sign up">
    <label id="lab">Remember <span data-autocap-ignore>ada@secret.io</span></label></form>
  <div data-autocap-ignore><button id="ignored">Hidden</button></div>
  <div data-autocap-redact><button id="redacted" data-user="Ada" aria-label="Ada's account">Ada Lovelace</button></div>
</main>`;

test("clickTarget attributes a click inside a control to the control", () => {
  const win = browser(PAGE);
  const $ = (id) => win.document.getElementById(id);
  assert.equal(clickTarget($("label"), win).id, "buy");
  assert.equal(clickTarget($("label").firstChild, win).id, "buy"); // a text node
  assert.equal(clickTarget($("icon"), win).id, "pricing");
  assert.equal(clickTarget($("fake-icon"), win).id, "fake");
  assert.equal(clickTarget($("card-text"), win).id, "card"); // outermost cursor:pointer
  assert.equal(clickTarget($("para"), win).id, "para");
  assert.equal(clickTarget(win.document.documentElement, win), null);
});

test("elementChain describes the target and its ancestors up to body", () => {
  const win = browser(PAGE);
  const chain = elementChain(win.document.getElementById("pricing"));
  assert.deepEqual(chain[0], {
    tag: "a",
    id: "pricing",
    text: "Pricing",
    href: "/pricing?ref=%5Bemail%5D",
    aria_label: "See pricing",
    nth_child: 1,
    nth_of_type: 1,
    attributes: { "data-track": "nav" },
  });
  assert.deepEqual(chain.map((e) => e.tag), ["a", "li", "ul", "nav", "body"]);
  assert.deepEqual(chain[1], { tag: "li", classes: ["item"], nth_child: 2, nth_of_type: 2 });
  assert.deepEqual(chain[3].classes, ["menu", "main"]);
});

test("target text is trimmed, whitespace collapsed, card numbers masked", () => {
  const win = browser(PAGE);
  const [button, main] = elementChain(win.document.getElementById("buy"));
  assert.equal(button.text, "Buy now for [card]");
  assert.equal(button.type, "submit");
  assert.equal(main.text, undefined); // ancestors carry only their own text nodes
  const long = browser(`<button id="b">${"word ".repeat(200)}</button>`);
  assert.equal(elementChain(long.document.getElementById("b"))[0].text.length, 255);
});

test("form fields: never their values; sensitive and ignored ones not at all", () => {
  const win = browser(PAGE);
  const $ = (id) => win.document.getElementById(id);
  const email = elementChain($("email"));
  assert.equal(email[0].name, "email");
  assert.equal(email[0].text, undefined);
  assert.ok(!JSON.stringify(email).includes("ada@acme.io"));
  assert.equal(elementChain($("bio"))[0].text, undefined);
  assert.equal(elementChain($("go"))[0].text, "Sign up"); // a button's label is not typed
  assert.equal(elementChain($("lab"))[0].text, "Remember"); // ignored text left out
  assert.equal(elementChain($("pw")), null);
  assert.equal(elementChain($("ignored")), null);
  const form = JSON.stringify(elementChain($("signup")));
  assert.ok(!form.includes("hunter2") && !form.includes("story") && !form.includes("ada@"), form);
});

test("redacted subtrees keep structure, lose text and attribute values", () => {
  const win = browser(PAGE);
  const [button] = elementChain(win.document.getElementById("redacted"));
  assert.equal(button.text, "***");
  assert.equal(button.aria_label, "***");
  assert.deepEqual(button.attributes, { "data-user": "***" });
});

test("chains are capped in depth and size", () => {
  const deep = browser("<div>".repeat(40) + '<a id="t" href="/x">x</a>' + "</div>".repeat(40));
  assert.equal(elementChain(deep.document.getElementById("t"), 5).length, 5);
  const wide = browser(
    `<div class="${"c".repeat(200)} ${"d".repeat(200)}">`.repeat(30) + '<a id="t">x</a>' + "</div>".repeat(30),
  );
  const chain = elementChain(wide.document.getElementById("t"), 30, 4096);
  assert.ok(JSON.stringify(chain).length <= 4096);
  assert.ok(chain.length >= 2 && chain[0].tag === "a");
});

test("an autocaptured event validates against schemas/event.schema.json", () => {
  const win = browser(PAGE);
  const context = pageContext(win);
  assert.deepEqual(context.campaign, { name: "spring", source: "news" });
  assert.equal(context.page.path, "/products");
  assert.equal(context.page.title, "Shop");
  assert.equal(context.library.name, "autocap.js");
  for (const id of ["pricing", "buy", "fake", "card", "email", "redacted", "signup"]) {
    assertValidEvent({
      type: "track",
      event: "$click",
      messageId: "m-" + id,
      anonymousId: "a-1",
      timestamp: new Date().toISOString(),
      context,
      properties: {},
      elements: elementChain(win.document.getElementById(id)),
    });
  }
  // The validator is real: a malformed element is refused.
  assert.throws(() =>
    assertValidEvent({ type: "track", event: "$click", anonymousId: "a-1", elements: [{ tag: "a", bogus: 1 }] }),
  );
});
