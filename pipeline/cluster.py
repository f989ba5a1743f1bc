"""Reaching Kafka: wait for metadata, create the project's topics.

Library errors from kafka-python are translated here, once, into ``BrokerUnavailable`` and
``TopicSetupFailed`` with messages that name the servers and topics involved.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.errors import BrokerUnavailable, TopicSetupFailed
from pipeline.settings import Settings

__all__ = [
    "TOPICS",
    "ensure_topics",
    "parse_bootstrap",
    "running_bootstrap",
    "wait_for_kafka",
]

log = logging.getLogger(__name__)

#: Logical topic names (the prefix is added by ``Settings.topic``).
TOPICS = (
    "raw",
    "dead_letter",
    "enriched",
    "sessions",
    "identities",
    "profiles",
    "accounts",
    "cohort_changes",
    # Stage 2's re-key: what a person's events tell their accounts, keyed by account_id.
    "account_updates",
)


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """Split ``host:port,host:port`` into pairs; raise ``BrokerUnavailable`` if malformed."""
    servers = []
    for item in bootstrap.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise BrokerUnavailable(
                f"Kafka bootstrap {item.strip()!r} is not host:port (AUTOCAP_KAFKA_BOOTSTRAP)"
            )
        servers.append((host.strip("[]"), int(port)))
    return servers


def _any_tcp_open(servers: Iterable[tuple[str, int]], timeout: float) -> bool:
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def wait_for_kafka(bootstrap: str, timeout_s: float) -> None:
    """Block until the cluster answers a metadata request, or raise ``BrokerUnavailable``.

    Polls TCP first (cheap, no library logging noise), then asks for metadata, all within
    ``timeout_s``, so a wrong address fails in seconds instead of hanging in client retries.
    """
    servers = parse_bootstrap(bootstrap)
    deadline = time.monotonic() + timeout_s
    last_error = "connection refused"
    while time.monotonic() < deadline:
        if _any_tcp_open(servers, timeout=min(1.0, max(0.1, deadline - time.monotonic()))):
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=bootstrap,
                    request_timeout_ms=int(max(1.0, deadline - time.monotonic()) * 1000),
                    client_id="autocap-probe",
                )
            except KafkaError as exc:
                last_error = type(exc).__name__
            else:
                try:
                    admin.list_topics()
                    return
                except KafkaError as exc:
                    last_error = type(exc).__name__
                finally:
                    admin.close()
        time.sleep(0.2)
    raise BrokerUnavailable(
        f"Kafka at {bootstrap} did not answer within {timeout_s:g}s ({last_error});"
        " check AUTOCAP_KAFKA_BOOTSTRAP, or unset it to use the embedded broker"
    )


def ensure_topics(settings: Settings, bootstrap: str, names: Iterable[str] = TOPICS) -> list[str]:
    """Create the project's topics with explicit partitions; existing ones are left alone.

    Returns the topics that were created. Raises ``TopicSetupFailed`` if an existing topic has
    fewer partitions than configured (keyed state would be split differently than expected).
    """
    wanted = {settings.topic(n): n for n in names}
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(settings.kafka_connect_timeout_s * 1000),
            client_id="autocap-admin",
        )
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka at {bootstrap} is unreachable ({exc})") from exc
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        for topic in missing:
            try:
                admin.create_topics(
                    [NewTopic(topic, settings.partitions, settings.replication_factor)]
                )
                created.append(topic)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        present = [t for t in wanted if t not in missing]
        if present:
            for desc in admin.describe_topics(present):
                count = len(desc["partitions"])
                if count < settings.partitions:
                    raise TopicSetupFailed(
                        f"topic {desc['name']} has {count} partitions but AUTOCAP_PARTITIONS is"
                        f" {settings.partitions}; add partitions or lower the setting"
                    )
    except KafkaError as exc:
        raise TopicSetupFailed(f"could not create topics on {bootstrap}: {exc}") from exc
    finally:
        admin.close()
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


#: Written by `autocap up` while its embedded broker runs, so commands run beside it
#: (`autocap import`) find the broker without being told its (random) port.
RUNNING_BOOTSTRAP_FILE = "kafka_bootstrap"


def running_bootstrap(settings: Settings) -> str | None:
    """The configured bootstrap, else the embedded broker of an `autocap up` on this data
    dir, else None."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    path = settings.data_dir / RUNNING_BOOTSTRAP_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
