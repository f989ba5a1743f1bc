"""``autocap collector``: serve the collector app with uvicorn until SIGTERM/Ctrl-C."""

from __future__ import annotations

import uvicorn

from collectors.http.app import create_app, write_access_line
from collectors.http.headertimeout import header_timeout_protocol
from collectors.http.producer import KafkaEventProducer
from pipeline.metrics import process_registry
from pipeline.settings import Settings

__all__ = ["run_collector"]


def run_collector(settings: Settings, bootstrap: str) -> None:
    """Serve on the configured port; uvicorn handles the signals and drains requests."""
    app = create_app(
        settings,
        KafkaEventProducer(settings, bootstrap),
        process_registry(),
        access_log=write_access_line if settings.access_log else None,
    )
    config = uvicorn.Config(
        app,
        host=settings.collector_host,
        port=settings.collector_port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        # httptools, plus a deadline for request headers (slow-loris).
        http=header_timeout_protocol(settings.header_timeout_s),
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    uvicorn.Server(config).run()
