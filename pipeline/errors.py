"""Every error autocap raises on purpose, under one root.

The CLI prints ``str(error)`` as one line and exits non-zero, so each message says what is
wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AutocapError",
    "BrokerStartFailed",
    "BrokerUnavailable",
    "ChildFailed",
    "ConfigError",
    "ForgetError",
    "FunnelError",
    "ImportFailed",
    "InvalidEvent",
    "MonitoringUnavailable",
    "PathsError",
    "PortInUse",
    "QueryError",
    "RetentionError",
    "SegmentError",
    "TopicSetupFailed",
    "UndecodableRecord",
    "VerifyMismatch",
]


class AutocapError(Exception):
    """Root of every autocap error; carries a message a user can act on."""

    exit_code = 1


class ConfigError(AutocapError):
    """A setting (flag, ``AUTOCAP_*`` variable or ``autocap.toml`` key) is invalid."""

    exit_code = 2


class PortInUse(AutocapError):
    """A port autocap must listen on is already taken by another process."""


class BrokerUnavailable(AutocapError):
    """The Kafka bootstrap servers did not answer metadata within the timeout."""


class BrokerStartFailed(AutocapError):
    """The embedded Tansu broker could not be started."""


class TopicSetupFailed(AutocapError):
    """The project's topics could not be created or do not match the settings."""


class ChildFailed(AutocapError):
    """A supervised process of ``autocap up`` kept dying; the whole pipeline stopped."""


class MonitoringUnavailable(AutocapError):
    """The Prometheus server ``autocap status`` was told to ask did not answer."""


class QueryError(AutocapError):
    """An analyst query failed (bad SQL, or no warehouse yet)."""


class InvalidEvent(AutocapError):
    """A message is malformed: it is dead-lettered and counted, never retried."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule


class UndecodableRecord(AutocapError):
    """A record on one of the sink's topics does not fit its lake table (not JSON, not an
    object, a required field missing, a wrong type, a timestamp that does not parse): the
    sink dead-letters it with this message and goes on, it is never retried."""

    def __init__(self, table: str, reason: str, payload: bytes) -> None:
        super().__init__(
            f"{table}: {reason} (dead-lettered; fix the producer, then re-send the record)"
        )
        self.table = table
        self.reason = reason
        self.payload = payload


class FunnelError(AutocapError):
    """A funnel definition is invalid (steps, window, mode, property...)."""

    exit_code = 2


class ImportFailed(AutocapError):
    """``autocap import`` cannot read an input file (missing, unreadable, wrong format)."""

    exit_code = 2


class RetentionError(AutocapError):
    """A retention query is invalid (events, period, number of periods...)."""

    exit_code = 2


class PathsError(AutocapError):
    """A paths query is invalid (event, direction, steps, top...)."""

    exit_code = 2


class SegmentError(AutocapError):
    """A segment cannot be computed or exported as asked (unknown segment, missing view,
    below the k-anonymity floor...)."""

    exit_code = 2


class VerifyMismatch(AutocapError):
    """``autocap verify`` found differences between the stream's results and the batch's."""


class ForgetError(AutocapError):
    """`autocap forget` was given a bad id or could not finish (what is left is named)."""
