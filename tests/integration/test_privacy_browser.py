"""Privacy end to end in real Chromium, through the whole pipeline (`autocap up`): the
secrets a page holds never reach any Kafka topic nor any file of the lake or the warehouse;
with Do-Not-Track or an opt-out the page sends nothing; with ``AUTOCAP_IP_MODE=drop`` no
column anywhere holds the visitor's IP address.

Pages are served from ``localhost`` and the collector answered on ``localhost`` too, so the
visitor's address (127.0.0.1) appears in no URL: if it is anywhere, it came from the IP.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import ClassVar

import duckdb
import pytest
from kafka import KafkaConsumer
from playwright.sync_api import Browser, Request

from pipeline.broker import EmbeddedBroker
from pipeline.settings import Settings, WriteKey
from tests.conftest import wait_until
from tests.integration.test_browser import KEY, _loader, _Pages, browser  # noqa: F401
from tests.reliability.harness import Pipeline

SECRETS = {
    "password": "hunter2-Secret!",
    "hidden input": "hidden-csrf-9f8e7d",
    "cc-number field": "5555555555554444",
    "cardnum field": "378282246310005",
    "visible card": "4111 1111 1111 1111",
    "visible card digits": "4111111111111111",
    "ssn": "078-05-1120",
    "opted-out element": "Private Ledger Button",
    "opted-out field": "typed-under-opt-out",
}
VISITOR_IP = "127.0.0.1"

PAGE = """<!doctype html><html><head><title>Secrets</title>
{loader}
</head><body>
<p id="card-text">Your card 4111 1111 1111 1111 is on file</p>
<p id="ssn-text">SSN 078-05-1120 verified</p>
<form id="pay" onsubmit="event.preventDefault()">
  <input id="pw" name="pw" type="password">
  <input id="csrf" name="csrf" type="hidden" value="hidden-csrf-9f8e7d">
  <input id="ccn" name="payment" autocomplete="cc-number">
  <input id="cardnum" name="cardnum">
  <input id="nickname" name="nickname">
  <button id="pay-button" type="submit">Pay</button>
</form>
<div class="panel" data-autocap-ignore>
  <button id="ledger">Private Ledger Button</button>
  <input id="private-note" name="note">
</div>
<button id="sentinel">Sentinel</button>
</body></html>"""


class _SecretPages(_Pages):
    routes: ClassVar[dict[str, bytes]] = {}


@dataclass
class Site:
    pages: str
    pipeline: Pipeline


@pytest.fixture(scope="module")
def site(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`autocap up` (IP mode drop) on the session's broker, and a page server."""
    import uuid

    from pipeline.processes import free_port

    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecretPages)
    pages = f"http://localhost:{server.server_address[1]}"
    data = tmp_path_factory.mktemp("privacy")
    settings = Settings(
        data_dir=data / "data",
        topic_prefix="p" + uuid.uuid4().hex[:10],
        collector_port=free_port(),
        demo_port=free_port(),
        worker_metrics_port=free_port(),
        sink_metrics_port=free_port(),
        health_metrics_port=free_port(),
        materializer_metrics_port=free_port(),
        write_keys=(WriteKey(KEY, (pages,)),),
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        consumer_session_timeout_s=3.0,
        sink_batch_max_seconds=0.2,
        partitions=2,
        ip_mode="drop",
    )
    loader = _loader(f"http://localhost:{settings.collector_port}")
    _SecretPages.routes = {"/secrets.html": PAGE.format(loader=loader).encode()}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pipeline = Pipeline(settings, data / "up.log").start()
    try:
        yield Site(pages, pipeline)
    finally:
        server.shutdown()
        pipeline.stop()


def _topic_bytes(settings: Settings) -> bytes:
    """Every record of every autocap topic (and the stream's changelogs), keys and values."""
    probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    topics = [t for t in probe.topics() if t.startswith(settings.topic_prefix)]
    probe.close()
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    chunks = [(m.key or b"") + b"\x00" + (m.value or b"") for m in consumer]
    consumer.close()
    assert len(topics) >= 5, topics
    return b"\n".join(chunks)


def _warehouse_text(settings: Settings) -> str:
    """Every row of every Parquet file under the data dir and of every warehouse view, as
    JSON text (so a secret in any column, nested or not, is found)."""
    con = duckdb.connect()
    parts = []
    for parquet in sorted(settings.data_dir.rglob("*.parquet")):
        rows = con.execute("SELECT to_json(t)::VARCHAR FROM read_parquet(?) t", [str(parquet)])
        parts += [r[0] for r in rows.fetchall()]
    con.close()
    catalog = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        views = [
            r[0]
            for r in catalog.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        ]
        tables = [
            r[0] for r in catalog.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        ]
        for name in [*views, *tables]:
            # Identifiers from the catalog itself, quoted: no user input reaches this SQL.
            quoted = '"' + name.replace('"', '""') + '"'
            parts += [
                r[0]
                for r in catalog.execute(f"SELECT to_json(t)::VARCHAR FROM {quoted} t").fetchall()
            ]
    finally:
        catalog.close()
    assert parts
    return "\n".join(parts)


def _events_of(settings: Settings, anon: str) -> list[str]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT event FROM events WHERE anonymous_id = ? ORDER BY timestamp", [anon]
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def test_secrets_never_reach_kafka_or_the_warehouse_and_no_ip_is_kept(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    settings = site.pipeline.settings
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.pages}/secrets.html")
    page.wait_for_function("window.autocap && window.autocap.anonymousId")
    anon = str(page.evaluate("autocap.anonymousId"))
    page.click("#card-text")
    page.click("#ssn-text")
    page.fill("#pw", SECRETS["password"])
    page.fill("#ccn", SECRETS["cc-number field"])
    page.fill("#cardnum", SECRETS["cardnum field"])
    page.fill("#nickname", "Ada")
    page.click("#ledger")
    page.fill("#private-note", SECRETS["opted-out field"])
    page.click("#pay-button")
    page.click("#sentinel")
    context.close()

    def landed() -> bool:
        try:
            return "$click" in _events_of(settings, anon) and len(_events_of(settings, anon)) >= 6
        except duckdb.Error:
            return False

    wait_until(landed, 60, interval=0.5, what="the visitor's events in the warehouse")
    events = _events_of(settings, anon)
    assert {"$pageview", "$click", "$change", "$submit"} <= set(events), events

    wire = _topic_bytes(settings)
    lake = _warehouse_text(settings)
    assert anon.encode() in wire and anon in lake  # the search does see this visitor
    assert "[card]" in lake and "[ssn]" in lake  # the visible secrets were masked, not lost
    for what, secret in SECRETS.items():
        assert secret.encode() not in wire, f"{what} reached Kafka"
        assert secret not in lake, f"{what} reached the lake or warehouse"
    assert VISITOR_IP.encode() not in wire and "127.0.0.0" not in wire.decode(errors="replace")
    assert VISITOR_IP not in lake and "127.0.0.0" not in lake


@pytest.mark.parametrize("how", ["nothing (control)", "dnt", "global privacy control", "opted out"])
def test_do_not_track_and_opt_out_send_zero_requests(
    site: Site,
    browser: Browser,  # noqa: F811
    how: str,
) -> None:
    init = {
        "nothing (control)": "",
        "dnt": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
        "global privacy control": (
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
        ),
        "opted out": (
            "try { localStorage.setItem('autocap_state', JSON.stringify({optedOut: true})) }"
            " catch (e) {}"
        ),
    }[how]
    context = browser.new_context()
    if init:
        context.add_init_script(init)
    collector = f"http://localhost:{site.pipeline.settings.collector_port}"
    sent: list[str] = []

    def note(request: Request) -> None:
        # The snippet's own script comes from the collector; anything else there is data.
        if request.url.startswith(collector) and "/autocap" not in request.url:
            sent.append(f"{request.method} {request.url}")

    context.on("request", note)
    page = context.new_page()
    page.goto(f"{site.pages}/secrets.html")
    page.wait_for_function("window.autocap && window.autocap.anonymousId")
    page.click("#card-text")
    page.fill("#nickname", "Ada")
    page.click("#pay-button")
    page.evaluate("autocap.track('Explicit Call', {a: 1}); autocap.flush()")
    page.wait_for_timeout(1500)  # several flush intervals (200 ms)
    page.goto("about:blank")  # page leave: the beacon path too
    page.wait_for_timeout(500)
    context.close()
    if how == "nothing (control)":
        assert any(r.startswith("POST") for r in sent), "the control page sent nothing"
    else:
        assert sent == [], f"{how}: the page sent {sent}"
