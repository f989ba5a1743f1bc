"""A header-read timeout for uvicorn's httptools protocol (slow-loris defence).

uvicorn times out idle keep-alive connections but not a request whose headers arrive
slowly: a client that connects and sends a byte every few seconds holds a connection (and
its memory) for ever. This protocol closes any connection whose request line and headers
are not complete ``header_timeout_s`` after the connection opened or the request began.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeaderTimeoutProtocol", "header_timeout_protocol"]


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that drops connections slow to send their request headers."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock: the first request's headers are due within the timeout."""
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        """A new request on a kept-alive connection: its headers are due within the timeout."""
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        """Headers complete: the body is bounded by the app's own limits, not this timer."""
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the timer of a closed connection."""
        self._disarm_header_timer()
        super().connection_lost(exc)


def header_timeout_protocol(timeout_s: float) -> type[asyncio.Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)`` for ``timeout_s``."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": timeout_s})
