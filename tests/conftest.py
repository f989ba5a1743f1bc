"""Shared fixtures: a real embedded broker per test session, isolated settings per test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.broker import EmbeddedBroker
from pipeline.processes import free_port
from pipeline.settings import Settings, WriteKey

WRITE_KEY = "wk_test_0123456789"
#: The installed console script, beside the interpreter running the tests.
AUTOCAP_BIN = str(Path(sys.executable).parent / "autocap")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real Tansu broker on a free loopback port, shared by the whole test session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker(log_path=log)
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with a unique topic prefix (so fresh topics and group ids), free ports,
    a temp data dir and short consumer timeouts; keyword arguments override."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "topic_prefix": "t" + uuid.uuid4().hex[:10],
            "collector_port": free_port(),
            "demo_port": free_port(),
            "worker_metrics_port": free_port(),
            "sink_metrics_port": free_port(),
            "health_metrics_port": free_port(),
            "materializer_metrics_port": free_port(),
            "write_keys": (WriteKey(WRITE_KEY, ("https://shop.example",)),),
            "consumer_session_timeout_s": 3.0,
            "sink_batch_max_seconds": 0.2,
            "kafka_idempotence": False,
            "partitions": 2,
        }
        values.update(overrides)
        return Settings(**values)

    return build


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for an ``autocap`` subprocess running with ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCAP_")}
    env.update(settings.to_env())
    env.update(extra)
    return env


def autocap(
    *args: str, env: dict[str, str], cwd: Path | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """Start ``autocap ARGS`` as a real subprocess (the installed entry point's module)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args], env=env, cwd=cwd, text=True, **popen
    )


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")
