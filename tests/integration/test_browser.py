"""autocap.js in real headless Chromium, against the real collector process and broker.

Test pages are served from one local origin, the collector (which also serves the built
snippet) from another, so CORS is exercised. Pages load the snippet with the paste-in
loader from ``collectors/js/loader.html``. Every assertion is on what reached the raw
topic, read back from Kafka, not only on what the browser did. One browser per module;
each test gets a fresh browser context (new cookies and localStorage: a new visitor).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.processes import free_port
from pipeline.settings import Settings, WriteKey
from tests.conftest import autocap, child_env, wait_until

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "wk_browser_test_01"
PASSWORD = "hunter2-Secret!"
CARD = "4111111111111111"
EMAIL = "ada@acme.io"

SHOP = """<!doctype html><html><head><title>Shop</title>
{loader}
<script>autocap.track("Before Load", {{early: true}});</script>
</head><body>
<nav><a id="pricing" href="/spa.html?ref=nav" data-section="nav">Pricing</a></nav>
<button id="buy" class="btn primary"><svg width="12" height="12"><circle cx="6" cy="6" r="5"/></svg>
  <span id="buy-label">Buy now</span></button>
<div id="rage" style="cursor: pointer; width: 200px; height: 40px">
  <i id="rage-icon">Slow button</i></div>
<p id="contact">Mail {email} or card {card}</p>
<form id="signup" action="/nowhere" onsubmit="event.preventDefault()">
  <input id="email" name="email" type="email">
  <input id="password" name="password" type="password">
  <input id="cc" name="payment" autocomplete="cc-number">
  <textarea id="bio" name="bio"></textarea>
  <button id="submit" type="submit">Sign up</button>
</form>
<div data-autocap-ignore><button id="secret-button">Secret action</button></div>
<div data-autocap-redact><button id="account">Ada Lovelace</button></div>
<button id="sentinel">Sentinel</button>
</body></html>"""

SPA = """<!doctype html><html><head><title>App</title>
{loader}
</head><body style="margin: 0">
<button id="push" onclick="history.pushState({{}}, '', '/app/pricing'); document.title = 'Pricing'">
  Pricing</button>
<button id="replace" onclick="history.replaceState({{}}, '', '/app/pricing?plan=pro')">Pro</button>
<button id="hash" onclick="location.hash = 'faq'">FAQ</button>
<button id="back" onclick="history.back()">Back</button>
<div style="height: 5000px">tall</div>
</body></html>"""


@dataclass(frozen=True)
class Site:
    """Where things are: the test pages' origin and the collector."""

    pages: str
    collector: str
    settings: Settings


class _Pages(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.routes.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body or b"not found")

    def log_message(self, *args: Any) -> None:
        pass


def _loader(collector: str) -> str:
    """The paste-in loader as a site owner would paste it, with test options."""
    loader = (ROOT / "collectors" / "js" / "loader.html").read_text()
    loader = loader.replace("COLLECTOR", collector)
    # Tests that need other delivery options set window.AUTOCAP_TEST_OPTIONS first.
    return loader.replace(
        'autocap.init("WRITE_KEY");',
        f'autocap.init("{KEY}", window.AUTOCAP_TEST_OPTIONS || {{flushInterval: 200}});',
    )


@pytest.fixture(scope="module")
def site(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The collector role as a real process, and a page server on another origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    pages = f"http://127.0.0.1:{server.server_address[1]}"
    data_dir = tmp_path_factory.mktemp("browser")
    settings = Settings(
        data_dir=data_dir,
        topic_prefix="b" + uuid.uuid4().hex[:10],
        collector_port=free_port(),
        worker_metrics_port=free_port(),
        sink_metrics_port=free_port(),
        write_keys=(WriteKey(KEY, (pages,)),),
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        partitions=2,
    )
    ensure_topics(settings, broker.bootstrap)
    collector = f"http://127.0.0.1:{settings.collector_port}"
    loader = _loader(collector)
    _Pages.routes = {
        "/shop.html": SHOP.format(loader=loader, email=EMAIL, card=CARD).encode(),
        "/spa.html": SPA.format(loader=loader).encode(),
        "/bye.html": b"<!doctype html><title>Bye</title>bye",
    }
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log_path = data_dir / "collector.log"
    with log_path.open("w") as log:
        proc = autocap("collector", env=child_env(settings), stdout=log, stderr=subprocess.STDOUT)

    def ready() -> bool:
        try:
            return proc.poll() is not None or httpx.get(collector + "/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 30, what="collector ready")
        if proc.poll() is not None:
            pytest.fail(f"collector exited with {proc.returncode}:\n{log_path.read_text()}")
        yield Site(pages, collector, settings)
    finally:
        server.shutdown()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


class RawTopic:
    """The raw topic, read from the start and kept: ``events(anon)`` is what arrived so far."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        partitions = [
            TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic))
        ]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.records: list[tuple[bytes, dict[str, Any]]] = []

    def poll(self) -> None:
        for batch in self.consumer.poll(timeout_ms=200).values():
            self.records += [(m.value, orjson.loads(m.value)) for m in batch]

    def events(self, anon: str) -> list[dict[str, Any]]:
        """The records of one visitor, in arrival order."""
        return [r for _, r in self.records if r["anonymous_id"] == anon]

    def raw_bytes(self, anon: str) -> bytes:
        return b"\n".join(raw for raw, r in self.records if r["anonymous_id"] == anon)

    def wait_for(
        self,
        anon: str,
        done: Callable[[list[dict[str, Any]]], bool],
        what: str,
        timeout: float = 20,
    ) -> list[dict[str, Any]]:
        """Poll until ``done(events)``; the events seen so far are in the failure message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if done(self.events(anon)):
                return self.events(anon)
        seen = [(e["event"], (e.get("elements") or [{}])[0].get("id")) for e in self.events(anon)]
        pytest.fail(f"timed out waiting for {what}; arrived: {seen}")


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def clicked(events: list[dict[str, Any]], element_id: str) -> bool:
    return any(e["event"] == "$click" and e["elements"][0].get("id") == element_id for e in events)


@pytest.fixture(scope="module")
def raw(site: Site) -> Iterator[RawTopic]:
    topic = RawTopic(site.settings.kafka_bootstrap or "", site.settings.topic("raw"))
    yield topic
    topic.consumer.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Visitor:
    context: BrowserContext
    page: Page
    errors: list[str]

    def open(self, url: str) -> str:
        """Go to ``url``; the visitor's anonymousId once the snippet has started."""
        self.page.goto(url)
        self.page.wait_for_function("window.autocap && window.autocap.anonymousId")
        return str(self.page.evaluate("autocap.anonymousId"))

    def queued(self) -> list[str]:
        """messageIds waiting in localStorage."""
        ids = self.page.evaluate(
            f"JSON.parse(localStorage.getItem('autocap_queue_{KEY}') || '[]').map(e => e.messageId)"
        )
        return list(ids)


@pytest.fixture
def visitor(browser: Browser) -> Iterator[Visitor]:
    """A new visitor (fresh context); fails the test if the page saw an uncaught error."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield Visitor(context, page, errors)
    context.close()
    assert errors == [], f"uncaught errors on the page: {errors}"


def test_clicks_submits_and_changes_land_in_kafka_without_private_data(
    site: Site, raw: RawTopic, visitor: Visitor
) -> None:
    page = visitor.page
    anon = visitor.open(
        f"{site.pages}/shop.html?utm_source=news&utm_campaign=spring&contact={EMAIL}"
    )
    page.click("#buy-label")  # a span inside the button
    page.click("#contact")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.fill("#cc", CARD)
    page.fill("#bio", "my secret life")
    page.click("#secret-button")
    page.click("#account")
    page.click("#submit")
    page.click("#sentinel")
    events = raw.wait_for(anon, lambda es: clicked(es, "sentinel"), "the sentinel click")

    (early,) = named(events, "Before Load")  # called before the script had loaded
    assert early["properties"] == {"early": True}
    (view,) = named(events, "$pageview")
    context = view["context"]
    assert context["page"]["path"] == "/shop.html"
    assert context["page"]["title"] == "Shop"
    assert "contact=%5Bemail%5D" in context["page"]["url"]
    assert context["campaign"] == {"source": "news", "name": "spring"}
    assert context["library"] == {"name": "autocap.js", "version": "0.1.0"}
    assert context["screen"]["width"] > 0 and context["locale"]
    assert "Chrome" in context["userAgent"]
    assert context["ip"] == "127.0.0.0"  # the collector truncated it

    clicks = {e["elements"][0].get("id"): e for e in named(events, "$click")}
    buy = clicks["buy"]["elements"]
    assert buy[0] == {
        "tag": "button",
        "id": "buy",
        "classes": ["btn", "primary"],
        "text": "Buy now",
        "nth_child": 2,
        "nth_of_type": 1,
    }
    assert [e["tag"] for e in buy] == ["button", "body"]
    assert clicks["contact"]["elements"][0]["text"] == "Mail [email] or card [card]"
    assert clicks["account"]["elements"][0]["text"] == "***"
    assert "secret-button" not in clicks
    assert set(clicks) == {"buy", "contact", "account", "submit", "sentinel"}
    changes = [e["elements"][0]["id"] for e in named(events, "$change")]
    assert changes == ["email", "bio"]  # never the password or card field
    (submit,) = named(events, "$submit")
    assert submit["elements"][0]["id"] == "signup"

    wire = raw.raw_bytes(anon)
    for secret in (PASSWORD, CARD, EMAIL, "secret life", "Secret action", "Lovelace"):
        assert secret.encode() not in wire, secret
    assert len({e["event_id"] for e in events}) == len(events)


def test_spa_route_changes_are_page_views_with_page_leave(
    site: Site, raw: RawTopic, visitor: Visitor
) -> None:
    page = visitor.page
    anon = visitor.open(f"{site.pages}/spa.html")
    page.mouse.wheel(0, 10000)  # to the bottom: depth 100 for the first page
    page.wait_for_function("window.scrollY > 0")
    for button in ("#push", "#replace", "#hash", "#back"):
        page.click(button)
        page.wait_for_timeout(50)  # each route change is its own view
    events = raw.wait_for(
        anon, lambda es: len(named(es, "$pageview")) == 5, "five page views", timeout=20
    )
    views = [e["context"]["page"] for e in named(events, "$pageview")]
    assert [(v["path"], v["url"].split("/", 3)[3]) for v in views] == [
        ("/spa.html", "spa.html"),
        ("/app/pricing", "app/pricing"),  # pushState
        ("/app/pricing", "app/pricing?plan=pro"),  # replaceState
        ("/app/pricing", "app/pricing?plan=pro#faq"),  # hashchange
        ("/app/pricing", "app/pricing?plan=pro"),  # popstate (back)
    ]
    assert views[1]["title"] == "Pricing"  # read after the app changed it
    leaves = named(events, "$pageleave")
    assert len(leaves) == 4
    assert leaves[0]["context"]["page"]["path"] == "/spa.html"  # the page left
    assert leaves[0]["properties"]["max_scroll_depth"] == 100
    assert all(leave["properties"]["time_on_page_ms"] >= 0 for leave in leaves)


def test_rage_click(site: Site, raw: RawTopic, visitor: Visitor) -> None:
    anon = visitor.open(f"{site.pages}/shop.html")
    visitor.page.click("#rage-icon", click_count=3)  # three clicks, milliseconds apart
    events = raw.wait_for(anon, lambda es: bool(named(es, "$rageclick")), "a rage click")
    (rage,) = named(events, "$rageclick")
    assert rage["elements"][0]["id"] == "rage"  # the cursor:pointer box, not the icon
    assert len([e for e in named(events, "$click") if e["elements"][0]["id"] == "rage"]) == 3


def test_queue_survives_a_reload_while_the_collector_fails(
    site: Site, raw: RawTopic, visitor: Visitor
) -> None:
    page = visitor.page
    failures: list[str] = []

    def unavailable(route: Any) -> None:
        failures.append(route.request.url)
        route.fulfill(
            status=503,
            headers={"Access-Control-Allow-Origin": site.pages},
            body='{"success": false}',
        )

    page.route(f"{site.collector}/v1/batch", unavailable)
    anon = visitor.open(f"{site.pages}/shop.html")
    page.click("#buy")
    page.wait_for_function(f"(localStorage.getItem('autocap_queue_{KEY}') || '').includes('buy')")
    before = visitor.queued()
    page.reload()
    page.wait_for_function("window.autocap && window.autocap.anonymousId")
    # The first page's $pageleave, the new page's view and its "Before Load" call join.
    wait_until(
        lambda: len(visitor.queued()) == len(before) + 3, 10, what="the new page's events queued"
    )
    after = visitor.queued()
    assert set(before) <= set(after), "the reload lost queued events"
    assert failures, "the collector was never tried"
    raw.poll()
    assert raw.events(anon) == []
    page.unroute(f"{site.collector}/v1/batch")
    events = raw.wait_for(
        anon, lambda es: {e["event_id"] for e in es} >= set(after), "the queued events", 30
    )
    assert {e["event_id"] for e in events} == set(after)
    assert len({e["event_id"] for e in events}) == len(events), "an event arrived twice"
    assert len(named(events, "$pageview")) == 2 and clicked(events, "buy")
    assert len(named(events, "$pageleave")) == 1


def test_offline_then_online(site: Site, raw: RawTopic, visitor: Visitor) -> None:
    page = visitor.page
    anon = visitor.open(f"{site.pages}/shop.html")
    raw.wait_for(anon, lambda es: bool(named(es, "Before Load")), "the first events")
    wait_until(lambda: visitor.queued() == [], 10, what="the first events acknowledged")
    visitor.context.set_offline(True)
    page.click("#buy")
    page.click("#sentinel")
    wait_until(lambda: len(visitor.queued()) >= 2, 10, what="clicks queued while offline")
    page.wait_for_timeout(500)  # past the flush interval: still queued, nothing sent
    assert len(visitor.queued()) == 2
    assert not clicked(raw.events(anon), "buy")
    visitor.context.set_offline(False)
    events = raw.wait_for(anon, lambda es: clicked(es, "sentinel"), "the clicks after going online")
    assert clicked(events, "buy")
    wait_until(lambda: visitor.queued() == [], 10, what="the queue emptied")


def test_page_hide_sends_the_queue_by_beacon(site: Site, raw: RawTopic, visitor: Visitor) -> None:
    page = visitor.page
    # A long interval: what is queued when the visitor leaves can only go by sendBeacon.
    page.add_init_script("window.AUTOCAP_TEST_OPTIONS = {flushInterval: 600000, batchSize: 50}")
    anon = visitor.open(f"{site.pages}/shop.html")
    raw.wait_for(anon, lambda es: bool(named(es, "Before Load")), "what init sent")
    page.click("#buy")
    page.click("#sentinel")
    wait_until(lambda: len(visitor.queued()) == 2, 10, what="clicks queued (not sent)")
    page.goto(f"{site.pages}/bye.html")
    events = raw.wait_for(anon, lambda es: bool(named(es, "$pageleave")), "the page leave")
    (leave,) = named(events, "$pageleave")
    assert leave["properties"]["time_on_page_ms"] > 0
    assert 0 < leave["properties"]["max_scroll_depth"] <= 100
    assert clicked(events, "buy") and clicked(events, "sentinel")


def test_opt_out_and_hostile_calls(site: Site, raw: RawTopic, visitor: Visitor) -> None:
    page = visitor.page
    anon = visitor.open(f"{site.pages}/shop.html")
    page.evaluate("autocap.optOut()")
    page.click("#buy")
    page.evaluate(
        """() => {
        const cyclic = {}; cyclic.self = cyclic;
        autocap.track("Cyclic", cyclic);
        autocap.track(); autocap.identify({}); autocap.group(null); autocap.alias();
        autocap.optIn();
        autocap.identify("user-7", {plan: "pro"});
        }"""
    )
    page.click("#sentinel")
    events = raw.wait_for(anon, lambda es: clicked(es, "sentinel"), "the click after optIn")
    assert not clicked(events, "buy"), "captured while opted out"
    assert named(events, "Cyclic") == []
    (identify,) = [e for e in events if e["type"] == "identify" and e["user_id"]]
    assert identify["user_id"] == "user-7" and identify["traits"] == {"plan": "pro"}
    sentinel = next(e for e in named(events, "$click") if e["elements"][0]["id"] == "sentinel")
    assert sentinel["user_id"] == "user-7"
    assert json.loads(page.evaluate("localStorage.getItem('autocap_state')"))["optedOut"] is False
