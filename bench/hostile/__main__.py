"""``python -m bench.hostile [--runs N]``: hostile-input figures for docs/reliability.md.

Each run starts a fresh embedded broker and one real collector process, then measures,
each against a baseline taken side by side in the same run:

- gzip bomb (1 GiB of zeros, ~1 MB on the wire) → time to the 413 and collector RSS growth;
  baseline: the time of a valid 1 KB batch;
- 200 slow-loris connections → when each was closed, and valid traffic's p99 meanwhile;
  baseline: the same valid traffic's p99 with no slow connections;
- one write key flooding at 10x its quota → the other key's acceptance and p99;
  baseline: that other key's p99 alone.

Medians over the runs are printed last.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
import psutil

from bench.collector.stack import collector_process
from bench.hostile.attacks import Probe, gzip_bomb, p99, slow_loris, track
from pipeline.broker import EmbeddedBroker
from pipeline.cluster import ensure_topics
from pipeline.processes import free_port
from pipeline.settings import Settings, WriteKey

KEY, FLOOD_KEY, CALM_KEY = "wk_bench_main_0001", "wk_bench_flood_001", "wk_bench_calm_0001"
KEY_EPS = 50.0
HEADER_TIMEOUT_S = 1.0


def _settings(bootstrap: str, data_dir: Path) -> Settings:
    return Settings(
        kafka_bootstrap=bootstrap,
        data_dir=data_dir,
        topic_prefix="hb" + uuid.uuid4().hex[:8],
        collector_port=free_port(),
        write_keys=(WriteKey(KEY), WriteKey(FLOOD_KEY), WriteKey(CALM_KEY)),
        kafka_idempotence=False,
        partitions=1,
        max_body_bytes=2_000_000,  # the bomb is read and inflated, not refused by length
        header_timeout_s=HEADER_TIMEOUT_S,
        rate_limit_key_eps=KEY_EPS,
        rate_limit_burst_s=1.0,
        rate_limit_ip_eps=0.0,
        access_log=False,
        log_level="warning",
    )


def _post(url: str, body: bytes, **headers: str) -> tuple[int, float]:
    started = time.monotonic()
    resp = httpx.post(url, content=body, headers=headers, auth=(KEY, ""), timeout=60)
    return resp.status_code, time.monotonic() - started


def one_run(work: Path) -> dict[str, float]:
    """Every measurement once, on a fresh broker and collector."""
    figures: dict[str, float] = {}
    with EmbeddedBroker(log_path=work / "tansu.log") as broker:
        settings = _settings(broker.bootstrap, work / "data")
        ensure_topics(settings, broker.bootstrap)
        with collector_process(settings) as proc:
            url = f"http://127.0.0.1:{settings.collector_port}/v1/batch"
            rss = psutil.Process(proc.pid).memory_info
            small = orjson.dumps({"batch": [track()]})
            _post(url, small)  # warm up
            figures["valid_1kb_s"] = statistics.median(_post(url, small)[1] for _ in range(5))
            before = rss().rss
            times = []
            for _ in range(5):
                status, took = _post(url, gzip_bomb(), **{"Content-Encoding": "gzip"})
                assert status == 413, status
                times.append(took)
            figures["bomb_413_s"] = statistics.median(times)
            figures["bomb_rss_growth_mib"] = (rss().rss - before) / 2**20

            with Probe(url, KEY, rate=20) as quiet:
                time.sleep(5)
            with Probe(url, KEY, rate=20) as loud:
                loris = slow_loris("127.0.0.1", settings.collector_port, 200, wait_s=15)
                time.sleep(max(0.0, 5 - loris.slowest_close))
            figures["loris_still_open"] = loris.still_open
            figures["loris_slowest_close_s"] = loris.slowest_close
            figures["p99_no_loris_ms"] = p99(quiet.latencies) * 1000
            figures["p99_loris_ms"] = p99(loud.latencies) * 1000
            figures["loris_probe_non_200"] = sum(n for s, n in loud.statuses.items() if s != 200)

            time.sleep(1.5)
            with Probe(url, CALM_KEY, rate=10) as alone:
                time.sleep(5)
            with Probe(url, FLOOD_KEY, rate=50, events_per_request=10) as flood:
                time.sleep(0.5)
                with Probe(url, CALM_KEY, rate=10) as calm:
                    time.sleep(5)
            figures["p99_calm_alone_ms"] = p99(alone.latencies) * 1000
            figures["p99_calm_flood_ms"] = p99(calm.latencies) * 1000
            figures["calm_accepted_pct"] = (
                100 * calm.statuses.get(200, 0) / sum(calm.statuses.values())
            )
            figures["flood_429_pct"] = (
                100 * flood.statuses.get(429, 0) / sum(flood.statuses.values())
            )
    return figures


def main() -> None:
    """Run, print each run's figures and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="autocap-hostile-") as tmp:
            figures = one_run(Path(tmp))
        runs.append(figures)
        print(f"run {n + 1}: " + ", ".join(f"{k}={v:.3g}" for k, v in figures.items()))
    print("median over runs:")
    for name in runs[0]:
        print(f"  {name:24s} {statistics.median(r[name] for r in runs):10.3g}")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"ratios: bomb 413 / valid 1 KB = {med['bomb_413_s'] / med['valid_1kb_s']:.2f}x;"
        f" p99 under slow-loris / without = {med['p99_loris_ms'] / med['p99_no_loris_ms']:.2f}x;"
        f" calm key p99 under flood / alone = "
        f"{med['p99_calm_flood_ms'] / med['p99_calm_alone_ms']:.2f}x"
    )


if __name__ == "__main__":
    main()
