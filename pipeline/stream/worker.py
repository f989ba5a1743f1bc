"""``autocap worker``: run the stream stages in this process until SIGTERM/Ctrl-C."""

from __future__ import annotations

import faust

from pipeline.metrics import WorkerMetrics, process_registry, serve_metrics
from pipeline.settings import Settings
from pipeline.stream.app import create_app
from pipeline.stream.end_offsets import trust_fetched_end_offsets
from pipeline.stream.positions import rewind_uncommitted_partitions
from pipeline.stream.sensor import instrument

__all__ = ["run_worker"]


def run_worker(settings: Settings, bootstrap: str) -> None:
    """Serve metrics, then hand the process to a Faust worker (it owns the signal handling)."""
    registry = process_registry()
    metrics = WorkerMetrics.create(registry)
    app = create_app(settings, bootstrap, metrics)
    trust_fetched_end_offsets(bootstrap)  # tables come back whole on the embedded broker too
    rewind_uncommitted_partitions()  # records fetched during a rebalance are not skipped
    instrument(app, metrics, registry)
    serve_metrics(registry, settings.metrics_host, settings.worker_metrics_port)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    # Faust's terminal spinner lowers the root logger to DEBUG so that every log call spins
    # it: each produced record then builds a debug LogRecord nobody reads (5% of a worker).
    worker.spinner = None
    worker.execute_from_commandline()
