"""``autocap up``: the whole pipeline on one machine, as supervised child processes."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from pipeline.cluster import RUNNING_BOOTSTRAP_FILE, ensure_topics, wait_for_kafka
from pipeline.demo.site import DEMO_DEFINITIONS, site_origins
from pipeline.errors import BrokerStartFailed, BrokerUnavailable, ChildFailed, ConfigError
from pipeline.processes import ensure_port_free, free_port
from pipeline.settings import Settings, WriteKey, generate_write_key
from pipeline.supervisor import ChildSpec, Supervisor, last_line
from pipeline.warehouse.catalog import publish_catalog
from pipeline.warehouse.lake import Lake

__all__ = ["run_up"]


def _write_keys(settings: Settings) -> tuple[tuple[WriteKey, ...], bool]:
    """Configured keys, or the one kept in the data dir (generated on first run)."""
    if settings.write_keys:
        return settings.write_keys, False
    path = settings.data_dir / "write_key"
    if path.exists():
        return (WriteKey(path.read_text(encoding="utf-8").strip()),), False
    key = generate_write_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return (WriteKey(key),), True


def _demo_keys(keys: tuple[WriteKey, ...], settings: Settings) -> tuple[WriteKey, ...]:
    """The first key also allows the demo site's origins, so its pages can send events."""
    first = keys[0]
    extra = tuple(o for o in site_origins(settings) if o not in first.origins)
    return (WriteKey(first.key, first.origins + extra), *keys[1:])


def _demo_definitions(settings: Settings) -> Path:
    """The user's definitions file, or the demo's example when there is none."""
    return settings.definitions_path if settings.definitions_path.exists() else DEMO_DEFINITIONS


def _check_ports(settings: Settings, embedded: bool, demo: bool = False) -> None:
    if demo:
        ensure_port_free(
            settings.collector_host, settings.demo_port, "the demo site", "AUTOCAP_DEMO_PORT"
        )
    ensure_port_free(
        settings.collector_host, settings.collector_port, "the collector", "AUTOCAP_COLLECTOR_PORT"
    )
    ensure_port_free(
        settings.metrics_host,
        settings.worker_metrics_port,
        "the worker's metrics",
        "AUTOCAP_WORKER_METRICS_PORT",
    )
    ensure_port_free(
        settings.metrics_host,
        settings.sink_metrics_port,
        "the sink's metrics",
        "AUTOCAP_SINK_METRICS_PORT",
    )
    ensure_port_free(
        settings.metrics_host,
        settings.health_metrics_port,
        "the health exporter's metrics",
        "AUTOCAP_HEALTH_METRICS_PORT",
    )
    ensure_port_free(
        settings.metrics_host,
        settings.materializer_metrics_port,
        "the materializer's metrics",
        "AUTOCAP_MATERIALIZER_METRICS_PORT",
    )
    if embedded and settings.broker_port:
        ensure_port_free(
            settings.broker_host, settings.broker_port, "the embedded broker", "AUTOCAP_BROKER_PORT"
        )


def _wait_ready(
    url: str,
    supervisor: Supervisor,
    stop: threading.Event,
    timeout_s: float,
    role: str = "collector",
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        supervisor.check()
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - our own URL
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    if not stop.is_set():
        raise ChildFailed(
            f"the {role} did not become ready at {url} within {timeout_s:g}s "
            f"(log: {supervisor.log_path(role)}): "
            f"{last_line(supervisor.log_path(role))}"
        )


def _banner(
    console: Console, settings: Settings, bootstrap: str, embedded: bool, new_key: bool, demo: bool
) -> None:
    collector = f"http://{settings.collector_host}:{settings.collector_port}"
    table = Table(title="autocap is up", show_header=False, title_justify="left")
    table.add_row("collector", f"{collector}/v1/batch   (metrics {collector}/metrics)")
    table.add_row("snippet", f"<script src={collector}/autocap.min.js>   (README: Snippet)")
    table.add_row("broker", bootstrap + ("   (embedded Tansu, memory storage)" if embedded else ""))
    table.add_row(
        "worker", f"metrics http://{settings.metrics_host}:{settings.worker_metrics_port}/metrics"
    )
    table.add_row(
        "sink", f"metrics http://{settings.metrics_host}:{settings.sink_metrics_port}/metrics"
    )
    table.add_row(
        "health",
        f"metrics http://{settings.metrics_host}:{settings.health_metrics_port}/metrics"
        "   (lag, freshness; `autocap status`)",
    )
    table.add_row(
        "materialize",
        f"metrics http://{settings.metrics_host}:{settings.materializer_metrics_port}/metrics"
        "   (defined-event tags, funnel tables)",
    )
    table.add_row("warehouse", f"duckdb {settings.warehouse_path} -readonly")
    table.add_row("logs", str(settings.logs_dir) + "/")
    key = settings.write_keys[0].key
    table.add_row("write key", key + ("   (generated; kept in data dir)" if new_key else ""))
    if demo:
        site = f"http://127.0.0.1:{settings.demo_port}/"
        table.add_row("demo site", f"{site}   (pricing, signup, app, shop: clicks are captured)")
        table.add_row("demo", "simulated B2B and B2C visitors are posting to the collector")
        table.add_row("definitions", str(settings.definitions_path))
        table.add_row("report", "autocap report --out report.html")
    console.print(table)
    console.print(
        f"Send an event:\n  curl -u {key}: -H 'content-type: application/json' "
        f'{collector}/v1/batch -d \'{{"batch":[{{"type":"track","event":"Signed Up",'
        f'"anonymousId":"a1"}}]}}\'\nStop with Ctrl-C.',
        highlight=False,
        soft_wrap=True,
    )


def run_up(
    settings: Settings,
    *,
    demo: bool = False,
    demo_rate: float = 5.0,
    demo_days: int = 0,
    console: Console | None = None,
) -> None:
    """Start broker (when embedded), sink, worker, collector, health exporter and
    materializer (with ``demo``: the demo site and the traffic simulator, after importing
    ``demo_days`` of history); run until Ctrl-C/SIGTERM."""
    console = console or Console()
    embedded = not settings.kafka_bootstrap
    if embedded and settings.worker_store == "rocksdb":
        raise ConfigError(
            "AUTOCAP_WORKER_STORE=rocksdb needs a real Kafka cluster: the embedded broker"
            " under-reports changelog end offsets, which Faust's RocksDB recovery refuses;"
            " use memory, or set AUTOCAP_KAFKA_BOOTSTRAP"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _check_ports(settings, embedded, demo)
    keys, new_key = _write_keys(settings)
    if demo:
        keys = _demo_keys(keys, settings)
        settings = settings.with_overrides(definitions_path=_demo_definitions(settings))

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def report(message: str) -> None:
        console.print(f"[yellow]autocap:[/] {message}", highlight=False)

    supervisor = Supervisor(settings.logs_dir, report)
    python = [sys.executable, "-m", "pipeline"]
    try:
        if embedded:
            port = settings.broker_port or free_port(settings.broker_host)
            bootstrap = f"{settings.broker_host}:{port}"
            supervisor.start(
                ChildSpec(
                    "broker",
                    [*python, "broker"],
                    {**os.environ, **settings.to_env(), "AUTOCAP_BROKER_PORT": str(port)},
                    critical=True,
                )
            )
            try:
                wait_for_kafka(bootstrap, max(15.0, settings.kafka_connect_timeout_s))
            except BrokerUnavailable:
                supervisor.check()  # reports the broker's own last words if it died
                raise BrokerStartFailed(
                    f"the embedded broker did not answer on {bootstrap} "
                    f"(log: {supervisor.log_path('broker')})"
                ) from None
            (settings.data_dir / RUNNING_BOOTSTRAP_FILE).write_text(bootstrap + "\n")
        else:
            bootstrap = str(settings.kafka_bootstrap)
            wait_for_kafka(bootstrap, settings.kafka_connect_timeout_s)
        # Children get fully resolved settings; the embedded broker refuses InitProducerId.
        child_settings = settings.with_overrides(
            kafka_bootstrap=bootstrap,
            write_keys=keys,
            kafka_idempotence=settings.kafka_idempotence and not embedded,
        )
        ensure_topics(child_settings, bootstrap)
        # The catalog exists before the banner, so an analyst can open it right away.
        publish_catalog(settings.warehouse_path, Lake(settings.lake_dir))
        env = {**os.environ, **child_settings.to_env()}
        for role in ("sink", "worker", "collector", "health", "materialize"):
            supervisor.start(ChildSpec(role, [*python, role], env))
        collector_url = f"http://{settings.collector_host}:{settings.collector_port}"
        _wait_ready(collector_url + "/readyz", supervisor, stop, timeout_s=60)
        if demo:
            supervisor.start(ChildSpec("demo-site", [*python, "demo-site"], env))
            site = f"http://{settings.collector_host}:{settings.demo_port}/"
            _wait_ready(site, supervisor, stop, timeout_s=30, role="demo-site")
            simulate = [*python, "simulate", "--rate", str(demo_rate)]
            supervisor.start(ChildSpec("demo", [*simulate, "--days", str(demo_days)], env))
        if not stop.is_set():
            _banner(console, child_settings, bootstrap, embedded, new_key, demo)
        while not stop.wait(0.25):
            supervisor.check()
    finally:
        if stop.is_set():
            console.print("autocap: stopping...", highlight=False)
        supervisor.stop_all()
        (settings.data_dir / RUNNING_BOOTSTRAP_FILE).unlink(missing_ok=True)
    console.print("autocap: stopped", highlight=False)
