"""``autocap status``: throughput, lag, freshness and firing alerts on one screen.

Two sources give the same ``Status``: a Prometheus server (``AUTOCAP_PROMETHEUS_URL``:
rates over the last minute, every instance of a scaled-out deployment, and its firing
alerts), or, without one, this machine's roles scraped twice ``interval_s`` apart (rates
from the difference; alerts unknown, since only Prometheus evaluates them).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from pipeline.errors import MonitoringUnavailable
from pipeline.settings import Settings

__all__ = ["Status", "from_prometheus", "from_scrapes", "render", "role_urls"]

#: (role, rate name in the status, counter summed across instances)
_RATES = (
    ("collector", "accepted_eps", "autocap_collector_events_accepted_total"),
    ("collector", "rejected_eps", "autocap_collector_events_rejected_total"),
    ("worker", "processed_eps", "autocap_worker_events_processed_total"),
    ("sink", "rows_written_eps", "autocap_sink_rows_written_total"),
)

Fetch = Callable[[str, float], bytes]


@dataclass
class Status:
    """What ``autocap status`` shows; ``None`` means unknown (not measured)."""

    source: str
    roles: dict[str, bool] = field(default_factory=dict)
    throughput: dict[str, float | None] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)
    freshness_seconds: float | None = None
    kafka_up: bool | None = None
    spool_bytes: float | None = None
    alerts: list[dict[str, str]] | None = None

    def to_json(self) -> bytes:
        """The status as JSON (what ``--format json`` prints)."""
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def _fetch(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - configured URL
        body: bytes = resp.read()
        return body


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def role_urls(settings: Settings) -> dict[str, str]:
    """Each role's /metrics on this machine, from the settings' hosts and ports."""
    metrics = _local(settings.metrics_host)
    return {
        "collector": f"http://{_local(settings.collector_host)}:{settings.collector_port}/metrics",
        "worker": f"http://{metrics}:{settings.worker_metrics_port}/metrics",
        "sink": f"http://{metrics}:{settings.sink_metrics_port}/metrics",
        "health": f"http://{metrics}:{settings.health_metrics_port}/metrics",
        "materializer": f"http://{metrics}:{settings.materializer_metrics_port}/metrics",
    }


Samples = list[tuple[str, dict[str, str], float]]


def _scrape(url: str, fetch: Fetch, timeout_s: float) -> Samples | None:
    try:
        text = fetch(url, timeout_s).decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _sum(samples: Samples | None, name: str) -> float | None:
    if samples is None:
        return None
    return sum(v for n, _, v in samples if n == name)


def _one(samples: Samples | None, name: str) -> float | None:
    return next((v for n, _, v in samples or () if n == name), None)


#: Longer than the health exporter's own Kafka timeouts (connect, end offsets, committed).
_HEALTH_SCRAPE_S = 20.0


def from_scrapes(
    settings: Settings,
    interval_s: float = 2.0,
    fetch: Fetch = _fetch,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Status:
    """Scrape this machine's roles twice and derive rates from the counters' difference."""
    urls = role_urls(settings)
    # The health exporter asks Kafka while it is scraped (each step up to 5 s when Kafka is
    # down): give it longer, or it would read as down exactly when its answer matters.
    timeouts = {role: _HEALTH_SCRAPE_S if role == "health" else 2.0 for role in urls}
    counted = {role for role, _, _ in _RATES}  # only their counters feed the rates
    started = clock()
    first = {role: _scrape(urls[role], fetch, timeouts[role]) for role in counted}
    sleep(interval_s)
    second = {role: _scrape(url, fetch, timeouts[role]) for role, url in urls.items()}
    elapsed = max(clock() - started, 1e-6)
    status = Status(source="scraped " + ", ".join(sorted(urls)) + " on this machine")
    status.roles = {role: samples is not None for role, samples in second.items()}
    for role, key, name in _RATES:
        before, after = _sum(first[role], name), _sum(second[role], name)
        rate = None
        # A counter that went down means the process restarted in between: no rate.
        if before is not None and after is not None and after >= before:
            rate = (after - before) / elapsed
        status.throughput[key] = rate
    health = second["health"]
    for name, labels, value in health or ():
        if name == "autocap_consumer_lag_messages":
            status.lag[labels["group"]] = status.lag.get(labels["group"], 0.0) + value
    status.freshness_seconds = _one(health, "autocap_pipeline_freshness_seconds")
    kafka = _one(health, "autocap_kafka_up")
    status.kafka_up = None if kafka is None else kafka == 1.0
    status.spool_bytes = _one(second["collector"], "autocap_collector_spool_bytes")
    return status


def _query(base: str, promql: str, fetch: Fetch) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        answer = orjson.loads(fetch(url, 5.0))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise MonitoringUnavailable(
            f"Prometheus at {base} did not answer ({exc}); check AUTOCAP_PROMETHEUS_URL,"
            " or unset it to read the roles' /metrics directly"
        ) from None
    if answer.get("status") != "success":
        raise MonitoringUnavailable(f"Prometheus at {base} refused {promql!r}: {answer}")
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _scalar(rows: Iterable[dict[str, Any]]) -> float | None:
    return next((float(r["value"][1]) for r in rows), None)


def from_prometheus(settings: Settings, fetch: Fetch = _fetch) -> Status:
    """Ask the configured Prometheus server: rates over a minute, and its firing alerts."""
    base = str(settings.prometheus_url).rstrip("/")
    status = Status(source=f"Prometheus at {base}")
    for row in _query(base, 'max by (job) (up{job=~"autocap-.+"})', fetch):
        status.roles[row["metric"]["job"].removeprefix("autocap-")] = row["value"][1] == "1"
    for _role, key, name in _RATES:
        status.throughput[key] = _scalar(_query(base, f"sum(rate({name}[1m]))", fetch))
    lag = "sum by (group) (max by (group, topic, partition) (autocap_consumer_lag_messages))"
    for row in _query(base, lag, fetch):
        status.lag[row["metric"]["group"]] = float(row["value"][1])
    status.freshness_seconds = _scalar(
        _query(base, "min(autocap_pipeline_freshness_seconds)", fetch)
    )
    kafka = _scalar(_query(base, "max(autocap_kafka_up)", fetch))
    status.kafka_up = None if kafka is None else kafka == 1.0
    status.spool_bytes = _scalar(_query(base, "sum(autocap_collector_spool_bytes)", fetch))
    try:
        alerts = orjson.loads(fetch(f"{base}/api/v1/alerts", 5.0))["data"]["alerts"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise MonitoringUnavailable(f"Prometheus at {base}: no alert list ({exc})") from None
    status.alerts = [
        {
            "name": a["labels"].get("alertname", ""),
            "severity": a["labels"].get("severity", ""),
            "summary": a.get("annotations", {}).get("summary", ""),
        }
        for a in alerts
        if a.get("state") == "firing"
    ]
    return status


def _rate(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.1f}/s"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no events in the lake yet, or health exporter down)"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def render(status: Status) -> Table:
    """One screen: roles, throughput, lag, freshness, alerts."""
    table = Table(title="autocap status", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    roles = "  ".join(
        f"{role} [green]up[/]" if up else f"{role} [red]down[/]"
        for role, up in sorted(status.roles.items())
    )
    table.add_row("roles", roles or "none found")
    kafka = {None: "unknown", True: "[green]reachable[/]", False: "[red]unreachable[/]"}
    table.add_row("kafka", kafka[status.kafka_up])
    labels = {
        "accepted_eps": "accepted",
        "rejected_eps": "rejected",
        "processed_eps": "processed (worker)",
        "rows_written_eps": "written (sink)",
    }
    table.add_row(
        "throughput",
        "   ".join(f"{labels[k]} {_rate(v)}" for k, v in status.throughput.items()),
    )
    lag = "   ".join(f"{group} {value:,.0f}" for group, value in sorted(status.lag.items()))
    table.add_row("consumer lag", lag or "unknown")
    table.add_row("freshness", _age(status.freshness_seconds))
    if status.spool_bytes:
        table.add_row("spool", f"[yellow]{status.spool_bytes:,.0f} bytes waiting for Kafka[/]")
    if status.alerts is None:
        table.add_row("alerts", "unknown (set AUTOCAP_PROMETHEUS_URL to see firing alerts)")
    elif not status.alerts:
        table.add_row("alerts", "[green]none firing[/]")
    else:
        table.add_row(
            "alerts",
            "\n".join(
                f"[red]{a['name']}[/] ({a['severity']}): {a['summary']}" for a in status.alerts
            ),
        )
    table.caption = f"source: {status.source}"
    return table
