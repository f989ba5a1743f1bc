"""kill -9 at random points: the collector, a stream worker (once mid-rebalance), and
`autocap up` as a whole. Clients retry with the same ids; nothing is lost, nothing counted
twice, and ``autocap verify`` is clean afterwards.

Each scenario has a short default variant and a long one behind ``slow`` (the sizes issue 10
names). All run on the session's real broker, so a restart keeps what Kafka holds.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.broker import EmbeddedBroker
from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import autocap, child_env, wait_until
from tests.reliability.harness import LoadGenerator, Pipeline, account, verify_clean

# (events, kills): the default run's variant, then issue 10's.
SHORT, LONG = (4_000, 2), (100_000, 5)


def _kill_points(total: int, kills: int, rng: random.Random) -> list[int]:
    """Answered-event counts at which to kill: random, spread over the run's middle."""
    return sorted(rng.sample(range(total // 10, total * 8 // 10, max(1, total // 200)), kills))


def _landing_s(total: int) -> float:
    """How long every accepted event may take to reach `events`: stage 1 is the slow part
    (a few hundred events a second on a shared 2-core box, behind the collector's ~1,000)."""
    return max(300.0, total / 80)


def _wait_answered(load: LoadGenerator, count: int, timeout: float) -> None:
    wait_until(lambda: load.answered >= count, timeout, interval=0.05, what=f"{count} answered")


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    "size", [pytest.param(SHORT, id="short"), pytest.param(LONG, id="100k", marks=pytest.mark.slow)]
)
def test_collector_killed_repeatedly_while_clients_retry(
    broker: EmbeddedBroker, make_settings, tmp_path: Path, size: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    total, kills = size
    settings: Settings = make_settings(kafka_bootstrap=broker.bootstrap)
    pipeline = Pipeline(settings, tmp_path / "up.log").start()
    rng = random.Random()
    try:
        load = LoadGenerator(pipeline.base + "/v1/batch", total, clients=4, batch=25).start()
        for point in _kill_points(total, kills, rng):
            _wait_answered(load, point, 300)
            collector = pipeline.child("collector")
            collector.send_signal(signal.SIGKILL)
            collector.wait(10)
        load.join(600)
        figures = account(load.ledger, settings, broker.bootstrap, timeout=_landing_s(total))
        deaths = pipeline.output().count("collector exited with code -9")
        assert deaths == kills, pipeline.output()[-3000:]
        # The kills cost answers: clients saw errors and retried with the same ids.
        assert load.ledger.retries > 0
        assert figures.accepted > 0
        verify_clean(settings)
    finally:
        pipeline.stop()


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    "size", [pytest.param(SHORT, id="short"), pytest.param(LONG, id="100k", marks=pytest.mark.slow)]
)
def test_worker_killed_repeatedly_once_during_a_two_worker_rebalance(
    broker: EmbeddedBroker, make_settings, tmp_path: Path, size: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    total, kills = size
    settings: Settings = make_settings(kafka_bootstrap=broker.bootstrap)
    pipeline = Pipeline(settings, tmp_path / "up.log").start()
    second: subprocess.Popen[str] | None = None
    rng = random.Random()
    try:
        load = LoadGenerator(pipeline.base + "/v1/batch", total, clients=2, batch=25).start()
        points = _kill_points(total, kills, rng)
        rebalance_at = rng.randrange(kills)
        for n, point in enumerate(points):
            _wait_answered(load, point, 300)
            worker = pipeline.child("worker")
            if n == rebalance_at:
                # A second worker joins the group; kill the first while the group rebalances.
                second = autocap(
                    "worker",
                    env=child_env(
                        settings,
                        AUTOCAP_WORKER_METRICS_PORT=str(free_port()),
                        AUTOCAP_LOG_LEVEL="info",
                    ),
                    stdout=(tmp_path / "worker2.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
                log = tmp_path / "worker2.log"  # one second worker: bound once
                # Its consumer joins the group once its tables are registered; the group
                # rebalances until partitions are assigned (about half the session timeout).
                wait_until(
                    lambda log=log: "Waiting for tables to be registered" in log.read_text(),
                    60,
                    interval=0.05,
                    what="the second worker to start joining the group",
                )
                mid_rebalance = "_on_partitions_assigned" not in log.read_text()
                assert mid_rebalance, "the group rebalanced before the kill could land in it"
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            time.sleep(rng.uniform(0, 2))
        load.join(600)
        account(load.ledger, settings, broker.bootstrap, timeout=_landing_s(total))
        assert pipeline.output().count("worker exited with code -9") == kills
        verify_clean(settings)
    finally:
        if second is not None:
            second.terminate()
            second.wait(30)
        pipeline.stop()


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    "size",
    [
        pytest.param((3_000, 1), id="short"),
        pytest.param((30_000, 3), id="long", marks=pytest.mark.slow),
    ],
)
def test_up_killed_as_a_whole_and_restarted(
    broker: EmbeddedBroker, make_settings, tmp_path: Path, size: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    """Every process of `autocap up` killed -9 at once (the broker is external, as in
    production: the embedded one keeps topics in memory only), then `autocap up` again."""
    total, kills = size
    settings: Settings = make_settings(kafka_bootstrap=broker.bootstrap)
    pipeline = Pipeline(settings, tmp_path / "up.log").start()
    rng = random.Random()
    try:
        load = LoadGenerator(pipeline.base + "/v1/batch", total, clients=2, batch=25).start()
        for point in _kill_points(total, kills, rng):
            _wait_answered(load, point, 300)
            pipeline.kill_whole()
            time.sleep(rng.uniform(0, 1))
            pipeline.start()
        load.join(600)
        account(load.ledger, settings, broker.bootstrap, timeout=_landing_s(total))
        verify_clean(settings)
    finally:
        pipeline.stop()
