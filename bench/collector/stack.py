"""The real pieces under test: settings for a run, the collector process, counting records.

The broker is ``pipeline.broker.EmbeddedBroker``; the collector is ``python -m pipeline
collector``, exactly what ``autocap up`` runs. Every process started here is stopped on the
way out, errors included, and dies with the benchmark if the benchmark is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.processes import die_with_parent, free_port, stop_process
from pipeline.settings import Settings, WriteKey

__all__ = ["WRITE_KEY", "bench_settings", "collector_process", "count_records"]

WRITE_KEY = "wk_bench_0123456789"
_READY_TIMEOUT_S = 30.0


def bench_settings(bootstrap: str, data_dir: Path, partitions: int, log_level: str) -> Settings:
    """Settings for one run: fresh topics, a free collector port, the embedded broker's rules."""
    return Settings(
        kafka_bootstrap=bootstrap,
        data_dir=data_dir,
        topic_prefix="bench" + uuid.uuid4().hex[:8],
        collector_port=free_port(),
        write_keys=(WriteKey(WRITE_KEY),),
        kafka_idempotence=False,  # the embedded broker refuses InitProducerId
        partitions=partitions,
        log_level=log_level,
        # One load generator stands for many browsers: per-key and per-IP limits are off.
        rate_limit_key_eps=0.0,
        rate_limit_ip_eps=0.0,
    )


def _child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCAP_")}
    return env | settings.to_env()


def _wait_ready(proc: subprocess.Popen[bytes], settings: Settings, log: Path) -> None:
    url = f"http://{settings.collector_host}:{settings.collector_port}/readyz"
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"collector exited with code {proc.returncode}:\n{tail}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=1) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"collector not ready at {url} within {_READY_TIMEOUT_S:g}s (see {log})")


@contextlib.contextmanager
def collector_process(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m pipeline collector`` with ``settings``, ready to serve; SIGTERM on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = settings.data_dir / "collector.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "collector"],
            env=_child_env(settings),
            cwd=settings.data_dir,  # no stray autocap.toml from the caller's directory
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    try:
        _wait_ready(proc, settings, log)
        yield proc
    finally:
        stop_process(proc, grace_s=10.0)


def count_records(bootstrap: str, topic: str, expected: int, idle_s: float = 5.0) -> int:
    """Records on ``topic``, read from the start until ``expected`` or ``idle_s`` of silence.

    They are counted by reading them: the embedded broker's end offsets undercount.
    """
    return asyncio.run(_count_records(bootstrap, topic, expected, idle_s))


async def _count_records(bootstrap: str, topic: str, expected: int, idle_s: float) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, client_id="autocap-bench", enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        seen, quiet_since = 0, time.monotonic()
        while seen < expected and time.monotonic() - quiet_since < idle_s:
            fetched = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if fetched:
                seen += sum(len(records) for records in fetched.values())
                quiet_since = time.monotonic()
        return seen
    finally:
        await consumer.stop()
