import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import { Autocap } from "../src/client.js";
import { assertValidEvent, browser } from "./helpers.js";

const HOST = "https://collector.example";

/** A client on a jsdom page whose fetch records the bodies it is given. */
function start(html = '<button id="b">Go</button>', options = {}, prepare = () => {}) {
  const win = browser(html);
  const bodies = [];
  win.fetch = async (url, init) => {
    bodies.push({ url, init, body: JSON.parse(init.body) });
    return { status: 200 };
  };
  prepare(win);
  const client = new Autocap(win, `${HOST}/autocap.min.js`);
  client.init("wk_1", { flushInterval: 5, ...options });
  return { win, client, bodies, events: () => bodies.flatMap((b) => b.body.batch) };
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

test("init sends a $pageview and custom events to the collector as text/plain with the key", async () => {
  const { client, bodies, events } = start();
  client.track("Signed Up", { plan: "pro" });
  await settle();
  const [pageview, signup] = events();
  assert.equal(bodies[0].url, `${HOST}/v1/batch`);
  assert.equal(bodies[0].init.headers["Content-Type"], "text/plain");
  assert.equal(bodies[0].body.writeKey, "wk_1");
  assert.equal(pageview.event, "$pageview");
  assert.equal(pageview.context.page.path, "/products");
  assert.equal(signup.event, "Signed Up");
  assert.deepEqual(signup.properties, { plan: "pro" });
  assert.equal(signup.anonymousId, pageview.anonymousId);
  assert.notEqual(signup.messageId, pageview.messageId);
  for (const e of events()) assertValidEvent(e);
});

test("clicks, changes and submits are captured, values and passwords never", async () => {
  const { win, events } = start(
    '<form id="f"><input id="e" name="email"><input id="p" type="password"><button id="s" type="button">Send <i id="i">></i></button></form>',
  );
  const $ = (id) => win.document.getElementById(id);
  $("e").value = "ada@acme.io";
  $("e").dispatchEvent(new win.Event("change", { bubbles: true }));
  $("p").value = "hunter2";
  $("p").dispatchEvent(new win.Event("change", { bubbles: true }));
  $("i").dispatchEvent(new win.MouseEvent("click", { bubbles: true }));
  $("f").dispatchEvent(new win.Event("submit", { bubbles: true }));
  await settle();
  const seen = events().map((e) => [e.event, e.elements && e.elements[0].id]);
  assert.deepEqual(seen, [["$pageview", undefined], ["$change", "e"], ["$click", "s"], ["$submit", "f"]]);
  const wire = JSON.stringify(events());
  assert.ok(!wire.includes("hunter2") && !wire.includes("ada@acme.io"));
  for (const e of events()) assertValidEvent(e);
});

test("three quick clicks in one place are a rage click; the thresholds are options", async () => {
  const { win, events } = start(undefined, { rageClick: { clicks: 4 } });
  for (let i = 0; i < 4; i++) win.document.getElementById("b").dispatchEvent(new win.MouseEvent("click", { bubbles: true, clientX: 10 + i, clientY: 10 }));
  await settle();
  const names = events().map((e) => e.event);
  assert.equal(names.filter((n) => n === "$click").length, 4);
  assert.deepEqual(names.filter((n) => n === "$rageclick"), ["$rageclick"]);
  assert.equal(names.indexOf("$rageclick"), 5); // after the fourth click, not the third
});

test("SPA navigation: pushState, replaceState, popstate and hashchange are page views", async () => {
  const { win, events } = start();
  win.history.pushState({}, "", "/cart");
  await settle(5);
  win.history.replaceState({}, "", "/cart?step=2");
  await settle(5);
  win.location.hash = "#pay";
  await settle(5);
  win.history.pushState({}, "", "/cart?step=2#pay"); // same URL: not a new view
  await settle();
  const views = events().filter((e) => e.event === "$pageview").map((e) => e.context.page.url);
  assert.deepEqual(views, [
    "https://shop.example/products?utm_source=news&utm_campaign=spring",
    "https://shop.example/cart",
    "https://shop.example/cart?step=2",
    "https://shop.example/cart?step=2#pay",
  ]);
  const leaves = events().filter((e) => e.event === "$pageleave");
  assert.equal(leaves.length, 3);
  assert.equal(leaves[0].context.page.path, "/products"); // the page left, not the new one
  assert.ok(leaves[0].properties.time_on_page_ms >= 0);
  assert.ok(leaves[0].properties.max_scroll_depth >= 0 && leaves[0].properties.max_scroll_depth <= 100);
});

test("identify, group and register stick to later events; reset forgets them", async () => {
  const { client, events } = start("", { autocapture: false });
  client.register({ app: "web" });
  client.identify("u-1", { email: "ada@acme.io" });
  client.group("acct-1", { name: "Acme" });
  client.track("Ordered", { total: 3 });
  client.alias("u-2");
  const before = client.anonymousId;
  client.reset();
  client.track("After Logout");
  await settle();
  const [identify, group, ordered, alias, after] = events();
  assert.equal(identify.userId, "u-1");
  assert.deepEqual(identify.traits, { email: "ada@acme.io" });
  assert.deepEqual([group.groupId, group.userId], ["acct-1", "u-1"]);
  assert.deepEqual(ordered.properties, { app: "web", total: 3 });
  assert.deepEqual([ordered.userId, ordered.groupId], ["u-1", "acct-1"]);
  assert.deepEqual([alias.type, alias.userId, alias.previousId], ["alias", "u-2", "u-1"]);
  assert.equal(after.userId, undefined);
  assert.deepEqual(after.properties, {});
  assert.notEqual(after.anonymousId, before);
  for (const e of events()) assertValidEvent(e);
});

test("the anonymousId survives a reload (cookie), and localStorage alone is enough", () => {
  const win = browser("");
  const first = new Autocap(win, `${HOST}/a.js`);
  first.init("wk_1", { autocapture: false });
  assert.match(win.document.cookie, new RegExp(`autocap_id=${first.anonymousId}`));
  const again = new Autocap(win, `${HOST}/a.js`);
  again.init("wk_1", { autocapture: false });
  assert.equal(again.anonymousId, first.anonymousId);
  win.document.cookie = "autocap_id=; max-age=0; path=/";
  const fromStorage = new Autocap(win, `${HOST}/a.js`);
  fromStorage.init("wk_1", { autocapture: false });
  assert.equal(fromStorage.anonymousId, first.anonymousId);
});

test("optOut drops the queue and stops capture until optIn; Do-Not-Track is respected", async () => {
  const { client, events } = start("", { autocapture: false, flushInterval: 10000 });
  client.track("Queued");
  client.optOut();
  client.track("While Out");
  client.optIn();
  client.track("Back");
  await client.flush();
  assert.deepEqual(events().map((e) => e.event), ["Back"]);
  const dnt = start("", {}, (win) => Object.defineProperty(win.navigator, "doNotTrack", { value: "1" }));
  dnt.client.track("Tracked?");
  await settle();
  assert.deepEqual(dnt.events(), []);
  const ignoring = start("", { respectDnt: false }, (win) => Object.defineProperty(win.navigator, "doNotTrack", { value: "1" }));
  await settle();
  assert.equal(ignoring.events().length, 1);
});

test("misuse and hostile input never throw into the page", async () => {
  const warnings = [];
  const original = console.warn;
  console.warn = (m) => warnings.push(m);
  try {
    const { client, events } = start("", { autocapture: false });
    const cyclic = {};
    cyclic.self = cyclic;
    client.track("Cyclic", cyclic);
    client.track();
    client.track("$click");
    client.identify(null);
    client.group();
    client.init("wk_again");
    client.track("Fine", { big: 1n === 1n });
    await settle();
    assert.deepEqual(events().filter((e) => e.type === "track").map((e) => e.event), ["Fine"]);
    assert.ok(warnings.some((w) => /track needs/.test(w)) && warnings.some((w) => /twice/.test(w)));
  } finally {
    console.warn = original;
  }
});

test("the built bundle replaces the loader stub and replays its calls, init first", async () => {
  const loader = readFileSync(new URL("../loader.html", import.meta.url), "utf8");
  const bundle = readFileSync(new URL("../dist/autocap.js", import.meta.url), "utf8");
  const stub = loader.match(/<script>([\s\S]*)<\/script>/)[1];
  const dom = new JSDOM(`<body><button>Go</button></body>`, { url: "https://shop.example/", runScripts: "outside-only" });
  const win = dom.window;
  const bodies = [];
  win.fetch = async (url, init) => (bodies.push([url, JSON.parse(init.body)]), { status: 200 });
  win.eval(`autocap = []; autocap.track = function(){ autocap.push(["track"].concat([].slice.call(arguments))) };
    autocap.track("Before Load", {early: true});`);
  win.eval(stub.replace("COLLECTOR", HOST)); // the stub keeps the existing queue
  assert.equal(win.document.querySelector("script").src, `${HOST}/autocap.min.js`);
  Object.defineProperty(win.document, "currentScript", { value: { src: `${HOST}/autocap.min.js` }, configurable: true });
  win.eval(bundle);
  assert.equal(win.autocap.__autocap, true);
  await settle(20); // the first batch (what init found) is answered...
  await win.autocap.flush(); // ...then the calls replayed after init
  assert.deepEqual(new Set(bodies.map(([url, body]) => `${url} ${body.writeKey}`)), new Set([`${HOST}/v1/batch WRITE_KEY`]));
  const sent = bodies.flatMap(([, body]) => body.batch);
  assert.deepEqual(sent.map((e) => e.event).sort(), ["$pageview", "Before Load"]);
  assert.deepEqual(sent.find((e) => e.event === "Before Load").properties, { early: true });
  win.eval(bundle); // loaded twice: the first client stays
  assert.equal(win.autocap.o.host, HOST);
});
