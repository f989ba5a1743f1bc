"""`autocap up` as a user runs it: real broker, collector, Faust worker, sink and DuckDB."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import psutil
import pytest

from pipeline.cluster import running_bootstrap
from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import AUTOCAP_BIN, WRITE_KEY, autocap, child_env, wait_until


class Up:
    """A running `autocap up` whose output is collected in the background."""

    def __init__(self, settings: Settings, *args: str) -> None:
        self.settings = settings
        env = child_env(settings, COLUMNS="200")
        env.pop("AUTOCAP_KAFKA_BOOTSTRAP", None)  # embedded broker
        self.proc = autocap("up", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_up(self, timeout: float = 60) -> None:
        wait_until(
            lambda: "autocap is up" in self.output or self.proc.poll() is not None,
            timeout,
            what="`autocap up` to come up",
        )
        assert self.proc.poll() is None, self.output

    def family(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def post(self, *messages: dict) -> httpx.Response:
        url = f"http://127.0.0.1:{self.settings.collector_port}/v1/batch"
        return httpx.post(url, json={"batch": list(messages)}, auth=(WRITE_KEY, ""), timeout=10)

    def count(self, where: str = "true") -> int:
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return int(con.execute(f"SELECT count(*) FROM events WHERE {where}").fetchone()[0])
        finally:
            con.close()


@pytest.fixture
def up(make_settings) -> Iterator[Up]:  # type: ignore[no-untyped-def]
    started = Up(make_settings())
    yield started
    if started.proc.poll() is None:
        started.proc.kill()
        started.proc.wait()


def _survivors(procs: list[psutil.Process]) -> list[str]:
    """The command lines of the processes still alive (a zombie counts as dead)."""
    alive = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(p.cmdline()[-2:]))
        except psutil.NoSuchProcess:
            pass
    return alive


def _gone(procs: list[psutil.Process]) -> bool:
    return not _survivors(procs)


def test_up_end_to_end_then_ctrl_c_leaves_nothing(up: Up) -> None:
    up.wait_up()
    family = up.family()
    names = " ".join(" ".join(p.cmdline()) for p in family)
    for role in ("broker", "collector", "worker", "sink"):
        assert f"pipeline {role}" in names
    assert "tansu" in names

    sent = time.monotonic()
    resp = up.post(
        {"type": "track", "event": "Signed Up", "anonymousId": "curl-1", "messageId": "e2e-1"}
    )
    assert resp.status_code == 200
    # Visible to an analyst's read-only connection while the pipeline keeps running.
    wait_until(
        lambda: up.count("event_id = 'e2e-1'") == 1,
        10,
        interval=0.2,
        what="the event in warehouse.duckdb within 10 s",
    )
    latency = time.monotonic() - sent
    assert latency < 10
    # ...and to the `duckdb` shell, exactly as the README shows it.
    shell = subprocess.run(
        [
            str(Path(sys.executable).parent / "duckdb"),
            str(up.settings.warehouse_path),
            "-readonly",
            "-csv",
            "-c",
            "SELECT event, anonymous_id FROM events",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shell.returncode == 0, shell.stderr
    assert "Signed Up,curl-1" in shell.stdout
    assert up.proc.poll() is None

    up.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert up.proc.wait(30) == 0
    assert "autocap: stopped" in up.output
    wait_until(lambda: _gone(family), 5, what="every child to exit")


def test_a_killed_worker_is_restarted_and_events_still_arrive(up: Up) -> None:
    up.wait_up()
    worker = next(p for p in up.family() if "pipeline worker" in " ".join(p.cmdline()))
    os.kill(worker.pid, signal.SIGKILL)
    wait_until(lambda: "worker exited with code -9" in up.output, 10, what="death reported")
    wait_until(lambda: "restarting worker" in up.output, 10, what="restart")
    assert (
        up.post({"type": "page", "anonymousId": "after-crash", "messageId": "ac-1"}).status_code
        == 200
    )
    wait_until(
        lambda: up.count("event_id = 'ac-1'") == 1,
        40,
        interval=0.5,
        what="an event processed by the restarted worker",
    )
    family = up.family()
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(30) == 0
    wait_until(lambda: _gone(family), 5, what="every child to exit")


def test_up_killed_with_sigkill_leaves_no_orphans(up: Up) -> None:
    up.wait_up()
    family = up.family()
    assert len(family) >= 5
    up.proc.kill()
    up.proc.wait()
    deadline = time.monotonic() + 20
    while _survivors(family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _survivors(family), f"outlived autocap up: {_survivors(family)}"


def test_demo_traffic_reaches_the_warehouse(make_settings) -> None:  # type: ignore[no-untyped-def]
    up = Up(make_settings(), "--demo", "--rate", "50")
    running = up.settings.data_dir / "kafka_bootstrap"
    try:
        up.wait_up()
        wait_until(
            lambda: up.count("event = '$pageview'") > 0,
            30,
            interval=0.5,
            what="demo page views in the warehouse",
        )
        # Commands run beside it (autocap import) find the embedded broker here.
        assert running_bootstrap(up.settings) == running.read_text().strip()
        assert running.read_text().startswith("127.0.0.1:")
    finally:
        up.proc.send_signal(signal.SIGINT)
        up.proc.wait(30)
    assert not running.exists()


def _one_clear_line(out: str) -> str:
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    assert lines[0].startswith("autocap: error: ")
    return lines[0]


def test_taken_collector_port_fails_fast(make_settings) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = make_settings(collector_port=port)
        env = child_env(settings)
        env.pop("AUTOCAP_KAFKA_BOOTSTRAP", None)
        started = time.monotonic()
        done = subprocess.run(
            [AUTOCAP_BIN, "up"], env=env, capture_output=True, text=True, timeout=30
        )
    assert done.returncode != 0
    assert time.monotonic() - started < 10
    line = _one_clear_line(done.stderr + done.stdout)
    assert f"127.0.0.1:{port}" in line and "AUTOCAP_COLLECTOR_PORT" in line


def test_unreachable_bootstrap_fails_fast(make_settings) -> None:  # type: ignore[no-untyped-def]
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(kafka_bootstrap=dead, kafka_connect_timeout_s=2.0)
    for command in (["up"], ["worker"], ["sink"], ["collector"]):
        started = time.monotonic()
        done = subprocess.run(
            [AUTOCAP_BIN, *command],
            env=child_env(settings),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode != 0, command
        assert time.monotonic() - started < 10, command
        line = _one_clear_line(done.stderr + done.stdout)
        assert dead in line and "AUTOCAP_KAFKA_BOOTSTRAP" in line, line


def test_bad_setting_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "AUTOCAP_COLLECTOR_PORT": "eighty", "AUTOCAP_DATA_DIR": str(tmp_path)}
    done = subprocess.run([AUTOCAP_BIN, "up"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "AUTOCAP_COLLECTOR_PORT: expected an integer" in _one_clear_line(done.stderr)


def test_rocksdb_store_on_the_embedded_broker_is_refused(make_settings) -> None:  # type: ignore[no-untyped-def]
    env = child_env(make_settings(worker_store="rocksdb"))
    env.pop("AUTOCAP_KAFKA_BOOTSTRAP", None)
    done = subprocess.run([AUTOCAP_BIN, "up"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    line = _one_clear_line(done.stderr + done.stdout)
    assert "AUTOCAP_WORKER_STORE=rocksdb needs a real Kafka cluster" in line
