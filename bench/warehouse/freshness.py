"""``python -m bench.warehouse.freshness``: how soon an accepted event can be queried.

Starts ``autocap up`` (embedded broker, default settings but free ports and a temp data
dir), posts ``--events`` single-event batches at ``--rate`` per second through the real
collector, and polls ``warehouse.duckdb`` (read-only, a new connection each time, as an
analyst would) until each event_id is visible in ``events``. Freshness = visible time -
time the collector answered 200. Target (issue 9): p95 at most 10 s. The floor it is
compared with is what the settings allow by construction: the sink's batch age
(``AUTOCAP_SINK_BATCH_MAX_SECONDS``) plus the catalog refresh
(``AUTOCAP_CATALOG_REFRESH_S``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import duckdb
import httpx

from bench.collector.stats import percentile
from pipeline.processes import die_with_parent, free_port, stop_process
from pipeline.settings import Settings, WriteKey

_KEY = "wk_fresh_0123456789"
_TARGET_P95_S = 10.0


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("autocap up exited")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"not ready: {url}")


def _visible(warehouse: Path, ids: list[str]) -> set[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT event_id FROM events WHERE event_id IN (SELECT unnest($ids))", {"ids": ids}
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def main() -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse.freshness")
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            collector_port=free_port(),
            worker_metrics_port=free_port(),
            sink_metrics_port=free_port(),
            health_metrics_port=free_port(),
            materializer_metrics_port=free_port(),
            write_keys=(WriteKey(_KEY),),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCAP_")}
        log = Path(tmp) / "up.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "up"],
                env=env | settings.to_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        try:
            base = f"http://127.0.0.1:{settings.collector_port}"
            _wait_ready(base + "/readyz", proc)
            accepted: dict[str, float] = {}
            seen: dict[str, float] = {}
            start = time.monotonic()
            with httpx.Client(base_url=base, auth=(_KEY, ""), timeout=10) as client:
                for n in range(args.events):
                    due = start + n / args.rate
                    while time.monotonic() < due:
                        time.sleep(min(0.05, due - time.monotonic()))
                    event_id = str(uuid.uuid4())
                    message = {"type": "track", "event": "Fresh", "anonymousId": f"f{n % 7}"}
                    body = {"batch": [{**message, "messageId": event_id}]}
                    if client.post("/v1/batch", json=body).status_code == 200:
                        accepted[event_id] = time.monotonic()
                    pending = [i for i in accepted if i not in seen]
                    if n % 5 == 0 and pending:
                        for i in _visible(settings.warehouse_path, pending):
                            seen[i] = time.monotonic()
            deadline = time.monotonic() + 60
            while len(seen) < len(accepted) and time.monotonic() < deadline:
                pending = [i for i in accepted if i not in seen]
                for i in _visible(settings.warehouse_path, pending):
                    seen[i] = time.monotonic()
                time.sleep(0.2)
        finally:
            stop_process(proc, grace_s=20)
    lags = [seen[i] - accepted[i] for i in seen]
    missing = len(accepted) - len(seen)
    floor = settings.sink_batch_max_seconds + settings.catalog_refresh_s
    p50, p95 = percentile(lags, 50), percentile(lags, 95)
    verdict = "PASS" if missing == 0 and p95 <= _TARGET_P95_S else "FAIL"
    print(
        f"{len(accepted)} accepted, {len(seen)} visible, {missing} never seen within 60 s;"
        f" freshness p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(lags):.2f} s"
        f" (floor by construction {floor:.1f} s: p95/floor {p95 / floor:.2f});"
        f" target p95 ≤ {_TARGET_P95_S:g} s: {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
