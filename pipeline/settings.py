"""The one typed settings object, built once at start-up and passed down.

Precedence, highest first: command-line flags, ``AUTOCAP_*`` environment variables,
``autocap.toml`` (in the working directory, or the file named by ``--config`` /
``AUTOCAP_CONFIG``), then the defaults below. Every field's environment variable is
``AUTOCAP_`` + the field name in upper case; ``autocap config`` prints the effective values
and where each came from.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

__all__ = ["Settings", "WriteKey", "generate_write_key", "load_settings", "setting_docs"]

ENV_PREFIX = "AUTOCAP_"
_WRITE_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{8,128}$")
_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^\*$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_URL_RE = re.compile(r"^https?://[^\s/]+(/\S*)?$")


@dataclass(frozen=True)
class WriteKey:
    """A source's write key and the browser origins allowed to send with it (CORS)."""

    key: str
    origins: tuple[str, ...] = ()

    def render(self) -> str:
        """The ``AUTOCAP_WRITE_KEYS`` spelling of this key: ``key=origin|origin``."""
        return self.key + ("=" + "|".join(self.origins) if self.origins else "")


def _doc(text: str, **extra: Any) -> Any:
    return {"doc": text, **extra}


@dataclass(frozen=True)
class Settings:
    """Everything a process of autocap needs to know, resolved once."""

    kafka_bootstrap: str | None = field(
        default=None,
        metadata=_doc("Kafka bootstrap servers (host:port,...). Unset: `autocap up` embeds Tansu."),
    )
    data_dir: Path = field(
        default=Path("autocap-data"),
        metadata=_doc("Where the lake, warehouse.duckdb, logs and worker state live."),
    )
    definitions_path: Path = field(
        default=Path("definitions.yaml"),
        metadata=_doc("The analyst's definitions (defined events); missing means none."),
    )
    topic_prefix: str = field(
        default="autocap",
        metadata=_doc("Topic names are `<prefix>.raw`, ...; also prefixes consumer group ids."),
    )
    partitions: int = field(
        default=4, metadata=_doc("Partitions for every topic autocap creates.", low=1, high=1024)
    )
    replication_factor: int = field(
        default=1, metadata=_doc("Replication factor for created topics.", low=1, high=16)
    )
    kafka_idempotence: bool = field(
        default=True,
        metadata=_doc(
            "Idempotent producers and exactly-once Faust. Forced off on the embedded broker,"
            " which refuses InitProducerId."
        ),
    )
    kafka_connect_timeout_s: float = field(
        default=10.0,
        metadata=_doc("Give up if Kafka does not answer metadata within this.", low=0.5),
    )
    consumer_session_timeout_s: float = field(
        default=10.0,
        metadata=_doc("Consumer group session timeout; groups join in about half.", low=1.0),
    )
    broker_host: str = field(
        default="127.0.0.1", metadata=_doc("Address the embedded broker listens on.")
    )
    broker_port: int | None = field(
        default=None,
        metadata=_doc("Port of the embedded broker; unset picks a free one.", low=1, high=65535),
    )
    collector_host: str = field(
        default="127.0.0.1",
        metadata=_doc("Address the HTTP collector binds; 0.0.0.0 to face the network."),
    )
    collector_port: int = field(
        default=8000, metadata=_doc("Port of the HTTP collector.", low=1, high=65535)
    )
    demo_port: int = field(
        default=8080,
        metadata=_doc(
            "Port of the demo website `autocap up --demo` serves (on the collector's address).",
            low=1,
            high=65535,
        ),
    )
    metrics_host: str = field(
        default="127.0.0.1",
        metadata=_doc("Address the worker's, sink's and health exporter's /metrics bind."),
    )
    worker_metrics_port: int = field(
        default=9101,
        metadata=_doc("Prometheus /metrics port of the stream worker.", low=1, high=65535),
    )
    sink_metrics_port: int = field(
        default=9102, metadata=_doc("Prometheus /metrics port of the sink.", low=1, high=65535)
    )
    health_metrics_port: int = field(
        default=9103,
        metadata=_doc(
            "Prometheus /metrics port of the health exporter (consumer lag, freshness).",
            low=1,
            high=65535,
        ),
    )
    prometheus_url: str | None = field(
        default=None,
        metadata=_doc(
            "Prometheus server `autocap status` asks for rates and firing alerts"
            " (http://host:9090); unset: status scrapes the roles itself."
        ),
    )
    write_keys: tuple[WriteKey, ...] = field(
        default=(),
        metadata=_doc(
            "Comma-separated write keys, each optionally `=origin|origin` for CORS."
            " `autocap up` generates one when none is set."
        ),
    )
    max_body_bytes: int = field(
        default=512_000,
        metadata=_doc("Largest request body, before and after gzip (413 above).", low=1024),
    )
    max_batch_events: int = field(
        default=2500, metadata=_doc("Most messages in one /v1/batch request.", low=1)
    )
    max_event_bytes: int = field(
        default=32_768,
        metadata=_doc("Largest single event, as JSON (dead-lettered above).", low=256),
    )
    max_property_depth: int = field(
        default=16,
        metadata=_doc("Deepest nesting of objects/arrays in one event.", low=2, high=64),
    )
    max_string_length: int = field(
        default=16_384, metadata=_doc("Longest string value anywhere in an event.", low=64)
    )
    rate_limit_key_eps: float = field(
        default=10_000.0,
        metadata=_doc("Events per second one write key may send (429 above); 0 = no limit.", low=0),
    )
    rate_limit_ip_eps: float = field(
        default=1_000.0,
        metadata=_doc("Events per second one client IP may send (429 above); 0 = no limit.", low=0),
    )
    rate_limit_burst_s: float = field(
        default=2.0, metadata=_doc("Seconds of rate a client may send in one burst.", low=0.1)
    )
    ip_mode: str = field(
        default="truncate",
        metadata=_doc(
            "Client IP kept in events: full, truncate (/24 and /48) or drop.",
            choices=("full", "truncate", "drop"),
        ),
    )
    trust_forwarded_for: bool = field(
        default=False,
        metadata=_doc("Take the client IP from X-Forwarded-For (only behind your own proxy)."),
    )
    produce_timeout_s: float = field(
        default=5.0,
        metadata=_doc("Wait this long for Kafka's ack before spooling to disk instead.", low=0.1),
    )
    header_timeout_s: float = field(
        default=10.0,
        metadata=_doc(
            "The collector closes a connection whose request headers take longer (slow-loris).",
            low=0.1,
        ),
    )
    access_log: bool = field(
        default=True, metadata=_doc("The collector writes one JSON line per request to stdout.")
    )
    readiness: str = field(
        default="kafka",
        metadata=_doc(
            "When /readyz says ready: kafka (events go straight to Kafka; unready while"
            " spooling) or spool (while the spool still has room).",
            choices=("kafka", "spool"),
        ),
    )
    spool_max_bytes: int = field(
        default=256 * 1024 * 1024,
        metadata=_doc("Disk spool for Kafka outages; 503 once it is full.", low=1024),
    )
    sink_batch_max_records: int = field(
        default=10_000, metadata=_doc("The sink writes a Parquet file at this many rows.", low=1)
    )
    sink_batch_max_seconds: float = field(
        default=1.0, metadata=_doc("...or when its oldest buffered row is this old.", low=0.05)
    )
    catalog_refresh_s: float = field(
        default=1.0,
        metadata=_doc(
            "The sink republishes warehouse.duckdb at most this often when new files landed.",
            low=0.0,
        ),
    )
    materialize_interval_s: float = field(
        default=30.0,
        metadata=_doc(
            "How often the materializer refreshes defined-event tags and funnel tables.",
            low=0.5,
        ),
    )
    segment_min_size: int = field(
        default=100,
        metadata=_doc(
            "`autocap segment check` calls a segment with fewer members too small for a campaign.",
            low=1,
        ),
    )
    segment_k_anonymity: int = field(
        default=10,
        metadata=_doc(
            "`autocap segment export` refuses a segment with fewer members (k-anonymity"
            " floor) unless --force.",
            low=1,
        ),
    )
    materializer_metrics_port: int = field(
        default=9104,
        metadata=_doc("Prometheus /metrics port of the materializer.", low=1, high=65535),
    )
    compact_interval_s: float = field(
        default=30.0,
        metadata=_doc("How often the sink merges small lake files (0 = never).", low=0.0),
    )
    compact_grace_s: float = field(
        default=120.0,
        metadata=_doc(
            "Merged-away lake files stay this long for queries that already listed them.",
            low=0.0,
        ),
    )
    session_inactivity_minutes: float = field(
        default=30.0, metadata=_doc("A session ends after this long without events.", low=0.01)
    )
    session_max_hours: float = field(
        default=24.0, metadata=_doc("A session is split after this long.", low=0.01)
    )
    max_devices_per_person: int = field(
        default=20,
        metadata=_doc("A person linked to more devices is flagged (shared login or bot).", low=1),
    )
    session_timer_s: float = field(
        default=30.0,
        metadata=_doc("How often the worker looks for idle sessions to summarise.", low=0.1),
    )
    hole_check_s: float = field(
        default=15.0,
        metadata=_doc(
            "How often the worker looks for partitions it skipped records of (a hole two"
            " checks in a row sends the partition back to its committed offset).",
            low=0.1,
        ),
    )
    cohort_timer_s: float = field(
        default=10.0,
        metadata=_doc(
            "How often the worker re-evaluates cohorts whose time-based criteria may have"
            " flipped (members leave on time without new events).",
            low=0.1,
        ),
    )
    worker_stage2: bool = field(
        default=True,
        metadata=_doc(
            "The worker also runs stage 2 (profiles, accounts); set alike on every worker."
        ),
    )
    worker_store: str = field(
        default="memory",
        metadata=_doc(
            "Where a worker keeps table state: memory (rebuilt from the changelog at start) or"
            " rocksdb (on disk under data_dir/worker/<metrics port>, only the tail is replayed;"
            " real Kafka only).",
            choices=("memory", "rocksdb"),
        ),
    )
    log_level: str = field(
        default="info",
        metadata=_doc(
            "debug, info, warning or error.", choices=("debug", "info", "warning", "error")
        ),
    )

    # Where each value came from ("default", "autocap.toml", "env", "flag"); not a setting.
    sources: Mapping[str, str] = field(
        default_factory=dict, compare=False, repr=False, metadata={"internal": True}
    )

    @property
    def warehouse_path(self) -> Path:
        """The analysts' catalog file."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def lake_dir(self) -> Path:
        """Root of the Parquet lake."""
        return self.data_dir / "lake"

    @property
    def spool_dir(self) -> Path:
        """This collector's disk spool (one per listen address, so collectors never share)."""
        return self.data_dir / "spool" / f"collector-{self.collector_port}"

    @property
    def logs_dir(self) -> Path:
        """Per-role log files written by ``autocap up``."""
        return self.data_dir / "logs"

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic (``raw`` -> ``autocap.raw``)."""
        return f"{self.topic_prefix}.{name}"

    def group_id(self, role: str) -> str:
        """Consumer group id for a role (``sink`` -> ``autocap-sink``)."""
        return f"{self.topic_prefix}-{role}"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values replaced (they are recorded as coming from ``autocap``)."""
        sources = {**self.sources, **dict.fromkeys(changes, "autocap")}
        return replace(self, sources=sources, **changes)

    def to_env(self) -> dict[str, str]:
        """Every setting as ``AUTOCAP_*`` variables, so a child process rebuilds the same object."""
        env: dict[str, str] = {}
        for f in _setting_fields():
            value = getattr(self, f.name)
            if value is None:
                continue
            env[ENV_PREFIX + f.name.upper()] = _render(value)
        return env


def _setting_fields() -> list[Any]:
    return [f for f in fields(Settings) if not f.metadata.get("internal")]


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(k.render() for k in value)
    return str(value)


def parse_write_keys(text: str, where: str) -> tuple[WriteKey, ...]:
    """Parse ``key[=origin|origin],key2`` into write keys, naming the bad part on error."""
    keys: list[WriteKey] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, _, origins_text = item.partition("=")
        key = key.strip()
        if not _WRITE_KEY_RE.match(key):
            raise ConfigError(
                f"{where}: write key {key[:20]!r} must be 8-128 characters of A-Z a-z 0-9 _ . -"
            )
        origins = tuple(o.strip().rstrip("/") for o in origins_text.split("|") if o.strip())
        for origin in origins:
            if not _ORIGIN_RE.match(origin):
                raise ConfigError(
                    f"{where}: CORS origin {origin!r} for key {key[:8]}... must look like"
                    " https://shop.example or https://shop.example:8443, or be *"
                )
        if any(k.key == key for k in keys):
            raise ConfigError(f"{where}: write key {key[:8]}... is listed twice")
        keys.append(WriteKey(key, origins))
    return tuple(keys)


def generate_write_key() -> str:
    """A fresh random write key (what ``autocap up`` prints when none is configured)."""
    return "wk_" + secrets.token_urlsafe(24)


def _parse_bool(text: str, where: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{where}: expected true or false, got {text!r}")


def _parse_number(
    kind: Callable[[str], Any], text: str, where: str, meta: Mapping[str, Any]
) -> Any:
    try:
        value = kind(text.strip())
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{where}: expected {noun}, got {text!r}") from None
    low, high = meta.get("low"), meta.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{where}: must be {bounds}, got {value}")
    return value


def _coerce(name: str, raw: object, where: str) -> Any:
    """Turn a flag, env or toml value into the field's type, or raise ConfigError."""
    spec = {f.name: f for f in _setting_fields()}[name]
    meta = spec.metadata
    if raw is None:
        return None
    if name == "write_keys":
        if isinstance(raw, list | tuple):
            raw = ",".join(str(x) for x in raw)
        return parse_write_keys(str(raw), where)
    text = raw if isinstance(raw, str) else None
    kind = spec.type
    if kind == "bool":
        return raw if isinstance(raw, bool) else _parse_bool(str(raw), where)
    if kind in ("int", "int | None"):
        if isinstance(raw, bool) or (text is None and not isinstance(raw, int)):
            raise ConfigError(f"{where}: expected an integer, got {raw!r}")
        if text is not None and kind == "int | None" and not text.strip():
            return None
        return _parse_number(int, str(raw), where, meta)
    if kind == "float":
        if isinstance(raw, bool) or (text is None and not isinstance(raw, int | float)):
            raise ConfigError(f"{where}: expected a number, got {raw!r}")
        return _parse_number(float, str(raw), where, meta)
    if not isinstance(raw, str | Path):
        raise ConfigError(f"{where}: expected a string, got {raw!r}")
    value = str(raw).strip()
    if kind == "Path":
        if not value:
            raise ConfigError(f"{where}: must not be empty")
        return Path(value).expanduser()
    choices = meta.get("choices")
    if choices and value.lower() not in choices:
        raise ConfigError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    if name == "topic_prefix" and not _PREFIX_RE.match(value):
        raise ConfigError(f"{where}: expected 1-64 characters of A-Z a-z 0-9 _ -, got {value!r}")
    if kind == "str | None" and not value:
        return None
    if name == "prometheus_url" and not _URL_RE.match(value):
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {value!r}")
    return value.lower() if choices else value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    known = {f.name for f in _setting_fields()}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r} (see `autocap config`)")
    return data


def load_settings(
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build the settings from flags, then ``AUTOCAP_*`` env, then ``autocap.toml``.

    ``flags`` holds only the flags the user actually passed (``None`` values are ignored).
    ``config_path`` wins over ``AUTOCAP_CONFIG``; without either, ``./autocap.toml`` is read
    when it exists.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    if config_path is None and env.get(ENV_PREFIX + "CONFIG"):
        config_path = Path(env[ENV_PREFIX + "CONFIG"])
        if not config_path.exists():
            raise ConfigError(f"AUTOCAP_CONFIG: {config_path} does not exist")
    if config_path is None:
        default = (cwd or Path.cwd()) / "autocap.toml"
        config_path = default if default.exists() else None
    toml = _read_toml(config_path) if config_path else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for f in _setting_fields():
        env_name = ENV_PREFIX + f.name.upper()
        if f.name in flags:
            values[f.name] = _coerce(f.name, flags[f.name], f"--{f.name.replace('_', '-')}")
            sources[f.name] = "flag"
        elif env_name in env:
            values[f.name] = _coerce(f.name, env[env_name], env_name)
            sources[f.name] = "env"
        elif f.name in toml:
            values[f.name] = _coerce(f.name, toml[f.name], f"{config_path}: {f.name}")
            sources[f.name] = str(config_path)
        else:
            sources[f.name] = "default"
    return Settings(**values, sources=sources)


def setting_docs() -> list[tuple[str, str, str, str]]:
    """(field, env var, default, description) for every setting: the README's table."""
    rows = []
    for f in _setting_fields():
        default = f.default if f.default is not MISSING else f.default_factory()
        shown = "(unset)" if default is None or default == () else _render(default)
        rows.append((f.name, ENV_PREFIX + f.name.upper(), shown, f.metadata["doc"]))
    return rows
