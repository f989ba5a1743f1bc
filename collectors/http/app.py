"""The collector's ASGI app, built by ``create_app(settings, producer, registry)``.

Segment-compatible: ``POST /v1/batch`` and single-message ``/v1/<type>``; the write key as
the HTTP Basic username or ``writeKey`` in the body. A 200 is sent only once every accepted
event is acknowledged by Kafka or fsynced to the disk spool. Invalid events in a batch are
dead-lettered with their reason, and the valid ones still go through.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import ipaddress
import os
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import lru_cache
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collectors.http.contract import validate_batch_envelope
from collectors.http.delivery import Delivery
from collectors.http.normalize import (
    CLAMPED_FLAG,
    MESSAGE_TYPES,
    Limits,
    Receipt,
    encode_record,
    normalize,
)
from collectors.http.openapi import build_openapi
from collectors.http.privacy import anonymize_ip
from collectors.http.producer import EventProducer
from collectors.http.ratelimit import RateLimiter
from collectors.http.snippet import SNIPPET_FILES, load_snippets, snippet_response
from collectors.http.spool import DiskSpool, SpoolFull
from pipeline.deadletter import dead_letter_record
from pipeline.errors import InvalidEvent
from pipeline.forget.forgetlist import ForgetList, forget_list_path
from pipeline.metrics import CollectorMetrics
from pipeline.settings import Settings
from pipeline.timeutil import utc_now

__all__ = ["create_app", "write_access_line"]


def write_access_line(line: bytes) -> None:
    """Write one access-log line to stdout with a single system call.

    The logging module's per-record work (record object, formatter, handler lock, flush)
    cost more than the rest of a request's bookkeeping on the collector's hot path.
    """
    data = line + b"\n"
    while data:
        data = data[os.write(1, data) :]


_MAX_ERRORS_SHOWN = 20
_CORS_METHODS = "POST, OPTIONS"
_CORS_HEADERS = "Content-Type, Content-Encoding, Authorization"


class _Refused(Exception):
    """The whole request is refused with ``status`` and a JSON error naming ``field``."""

    def __init__(
        self,
        status: int,
        field: str,
        reason: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.field, self.reason = status, field, reason
        self.headers = headers or {}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed, refused past ``limit`` without buffering more."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "body", "too_large", f"body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "body", "too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise _Refused(415, "content-encoding", "unsupported", "only gzip bodies are accepted")
    inflater = zlib.decompressobj(wbits=31)
    try:
        # max_length stops a gzip bomb at the limit instead of inflating it whole.
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise _Refused(400, "body", "gzip", "body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _Refused(413, "body", "too_large", f"decompressed body exceeds {limit} bytes")
    if not inflater.eof:
        raise _Refused(400, "body", "gzip", "gzip body is truncated")
    return out


@lru_cache(maxsize=65_536)  # per request on the hot path; ipaddress parsing is slow
def _ip_bucket(ip: str | None) -> str:
    """The rate-limit bucket of a client: its IPv4 address, or its IPv6 /64 (one host
    can use a whole /64, so single IPv6 addresses would be free fresh buckets)."""
    if ip is None:
        return "-"
    if ":" in ip:
        try:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        except ValueError:
            return ip
    return ip


def _basic_auth_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _Refused(
            401, "authorization", "malformed", "Authorization header is not valid Basic credentials"
        ) from None
    return decoded.partition(":")[0]


def create_app(
    settings: Settings,
    producer: EventProducer,
    registry: CollectorRegistry,
    clock: Callable[[], float] = time.monotonic,
    access_log: Callable[[bytes], None] | None = None,
) -> Starlette:
    """Build the collector app around an ``EventProducer`` (Kafka in production).

    ``access_log`` receives one JSON line (bytes) per request; ``write_access_line`` sends
    them to stdout.
    """
    metrics = CollectorMetrics.create(registry)
    metrics.spool_max_bytes.set(settings.spool_max_bytes)
    delivery = Delivery(
        producer,
        DiskSpool(settings.spool_dir, settings.spool_max_bytes),
        settings.produce_timeout_s,
        metrics,
    )
    origins = {k.key: frozenset(k.origins) for k in settings.write_keys}
    any_origin = frozenset().union(*origins.values()) if origins else frozenset()
    limits = Limits.from_settings(settings)
    per_key = RateLimiter(settings.rate_limit_key_eps, settings.rate_limit_burst_s)
    per_ip = RateLimiter(settings.rate_limit_ip_eps, settings.rate_limit_burst_s)
    raw_topic, dead_topic = settings.topic("raw"), settings.topic("dead_letter")
    openapi = orjson.dumps(build_openapi())
    snippets = load_snippets()
    forgotten = ForgetList(forget_list_path(settings.data_dir), clock=clock)

    def client_ip(request: Request) -> str | None:
        if settings.trust_forwarded_for:
            # The rightmost hop is the one our own proxy appended; the left ones are
            # whatever the client chose to send.
            forwarded = request.headers.get("x-forwarded-for", "")
            if forwarded:
                return forwarded.split(",")[-1].strip()
        return request.client.host if request.client else None

    def cors_headers(origin: str | None, allowed: frozenset[str]) -> dict[str, str]:
        if origin is None or not ({origin, "*"} & allowed):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def refusal_cors(origin: str | None) -> dict[str, str]:
        # A refusal carries no data, so any page may read it (``*``: nothing is echoed
        # back): the snippet must see a 400 or 401 and drop the batch, not an opaque
        # network error that it would retry forever.
        if origin is None:
            return {}
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}

    def authenticate(request: Request, body: Any) -> str:
        key = _basic_auth_key(request)
        body_key = body.get("writeKey") if isinstance(body, dict) else None
        if body_key is not None and not isinstance(body_key, str):
            raise _Refused(400, "writeKey", "type", "writeKey must be a string")
        if key is None:
            key = body_key
        if not key:
            raise _Refused(
                401,
                "writeKey",
                "missing",
                "no write key: send it as the Basic auth username or as writeKey in the body",
            )
        if key not in origins:
            raise _Refused(401, "writeKey", "unknown", "unknown write key")
        origin = request.headers.get("origin")
        if origin is not None and not cors_headers(origin, origins[key]):
            raise _Refused(
                403,
                "origin",
                "not_allowed",
                f"origin {origin[:100]!r} is not allowed for this write key",
            )
        return key

    def rate_limit(key: str, ip: str | None, events: int) -> None:
        now = clock()
        wait = max(per_key.take(key, events, now), per_ip.take(_ip_bucket(ip), events, now))
        if wait:
            raise _Refused(
                429,
                "rate",
                "rate_limited",
                "too many events; slow down",
                {"Retry-After": RateLimiter.retry_after(wait)},
            )

    def dead(
        reason: str, field: str | None, message: str, payload: bytes, received: Any, key: str | None
    ) -> tuple[str, None, bytes]:
        metrics.events_rejected.labels(reason).inc()
        return (
            dead_topic,
            None,
            dead_letter_record(
                stage="collector",
                reason=reason,
                field=field,
                message=message,
                payload=payload,
                received_at=received,
                write_key=key,
            ),
        )

    async def ingest(request: Request, default_type: str | None, stats: dict[str, Any]) -> Response:
        raw_body = await _read_body(request, settings.max_body_bytes)
        # Stamped once the body is whole, with no await from here to the producer's queue:
        # per partition, `raw` order is then `received_at` order (a trickling body cannot
        # land behind a later request yet carry the earlier time), which is the order the
        # stream sees and the order `autocap verify` assumes.
        received_at = utc_now()
        stats["bytes"] = len(raw_body)
        try:
            body = orjson.loads(raw_body)
        except orjson.JSONDecodeError:
            body = None
        key = stats["key"] = authenticate(request, body)
        ip = client_ip(request)
        stored_ip = stats["ip"] = anonymize_ip(ip, settings.ip_mode)
        if not isinstance(body, dict):
            rate_limit(key, ip, 1)  # garbage is rate limited like anything else
            # Authenticated garbage is kept for debugging the client that sent it.
            problem = "body is not valid JSON" if body is None else "body must be a JSON object"
            with contextlib.suppress(SpoolFull):
                await delivery.deliver([dead("json", "body", problem, raw_body, received_at, key)])
            raise _Refused(400, "body", "json" if body is None else "type", problem)
        if default_type is None:
            try:
                validate_batch_envelope(body)
            except InvalidEvent as exc:
                raise _Refused(400, exc.field, exc.rule, str(exc)) from None
            messages = body["batch"]
            if len(messages) > settings.max_batch_events:
                raise _Refused(
                    413,
                    "batch",
                    "too_many",
                    f"batch holds more than {settings.max_batch_events} messages",
                )
        else:
            messages = [body]
        rate_limit(key, ip, len(messages))
        frame: list[tuple[str, bytes | None, bytes]] = []
        errors: list[dict[str, Any]] = []
        accepted = 0
        receipt = Receipt.at(received_at, body.get("sentAt"), stored_ip)
        for index, message in enumerate(messages):
            if isinstance(message, dict) and forgotten.holds(message):
                metrics.events_forgotten.inc()  # `autocap forget`: answered, never stored
                continue
            try:
                record = normalize(message, receipt, default_type=default_type, limits=limits)
                value = encode_record(record, limits)
            except InvalidEvent as exc:
                errors.append(
                    {"index": index, "field": exc.field, "reason": exc.rule, "message": str(exc)}
                )
                frame.append(
                    dead(exc.rule, exc.field, str(exc), orjson.dumps(message), received_at, key)
                )
                continue
            if CLAMPED_FLAG in record.get("flags", ()):
                metrics.timestamps_clamped.inc()
            partition_key = record["anonymous_id"] or record["user_id"]
            frame.append((raw_topic, partition_key.encode(), value))
            accepted += 1
        try:
            stats["via"] = await delivery.deliver(frame)
        except SpoolFull as exc:
            raise _Refused(
                503, "kafka", "unavailable", f"{exc}; retry later", {"Retry-After": "30"}
            ) from exc
        metrics.events_accepted.inc(accepted)
        stats.update(events=accepted, rejected=len(errors))
        if errors and default_type is not None:
            # A single message that is refused is an error for its sender (and dead-lettered).
            raise _Refused(400, errors[0]["field"], errors[0]["reason"], errors[0]["message"])
        answer: dict[str, Any] = {"success": True}
        if errors:
            answer |= {
                "accepted": accepted,
                "rejected": len(errors),
                "errors": errors[:_MAX_ERRORS_SHOWN],
            }
        return _json(200, answer, cors_headers(request.headers.get("origin"), origins[key]))

    def endpoint(route: str, default_type: str | None) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            stats: dict[str, Any] = {"key": None, "bytes": 0, "ip": None}
            try:
                response = await ingest(request, default_type, stats)
            except _Refused as exc:
                stats["error"] = exc.reason
                # code/message at the top are what Segment and RudderStack SDKs read.
                response = _json(
                    exc.status,
                    {
                        "success": False,
                        "code": exc.reason,
                        "message": str(exc),
                        "error": {"field": exc.field, "reason": exc.reason, "message": str(exc)},
                    },
                    exc.headers | refusal_cors(request.headers.get("origin")),
                )
            elapsed = time.perf_counter() - started
            metrics.requests.labels(route, str(response.status_code)).inc()
            metrics.request_seconds.labels(route).observe(elapsed)
            metrics.received_bytes.inc(stats["bytes"])
            if access_log is not None:
                stats["key"] = (stats["key"] or "")[:8] or None  # a prefix identifies the source
                access_log(
                    orjson.dumps(
                        {
                            "route": route,
                            "status": response.status_code,
                            "ms": round(elapsed * 1000, 2),
                            **stats,
                        }
                    )
                )
            return response

        return handle

    async def preflight(request: Request) -> Response:
        origin = request.headers.get("origin")
        method = request.headers.get("access-control-request-method", "").upper()
        headers = cors_headers(origin, any_origin)
        if not headers or method not in ("POST", ""):
            return Response(status_code=403)
        return Response(
            status_code=204,
            headers={
                **headers,
                "Access-Control-Allow-Methods": _CORS_METHODS,
                "Access-Control-Allow-Headers": _CORS_HEADERS,
                "Access-Control-Max-Age": "86400",
            },
        )

    async def healthz(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(request: Request) -> Response:
        # Either way events keep being accepted while the spool has room; `kafka` readiness
        # tells a load balancer (and an operator) as soon as Kafka stops taking them.
        spool_bytes = delivery.spool.size_bytes
        if delivery.kafka_takes_events():
            return _json(200, {"status": "ready", "spool_bytes": spool_bytes})
        if not delivery.is_ready():
            reason = "kafka unreachable and spool full"
            return _json(503, {"status": "unready", "reason": reason, "spool_bytes": spool_bytes})
        if settings.readiness == "spool":
            return _json(200, {"status": "ready", "spooling": True, "spool_bytes": spool_bytes})
        reason = "kafka is not taking events: spooling"
        return _json(503, {"status": "unready", "reason": reason, "spool_bytes": spool_bytes})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi_endpoint(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    def snippet_endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            return snippet_response(request, snippets.get(name))

        return serve

    routes = [
        Route("/v1/batch", endpoint("batch", None), methods=["POST"]),
        Route("/v1/batch", preflight, methods=["OPTIONS"]),
    ]
    for kind in sorted(MESSAGE_TYPES):
        routes += [
            Route(f"/v1/{kind}", endpoint(kind, kind), methods=["POST"]),
            Route(f"/v1/{kind}", preflight, methods=["OPTIONS"]),
        ]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    ]
    routes += [Route(f"/{name}", snippet_endpoint(name), methods=["GET"]) for name in SNIPPET_FILES]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await delivery.start()
        # Start-up objects live forever: keep them out of the collector's full GC passes,
        # which otherwise stall every request in flight (~18 ms every few seconds).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await delivery.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.delivery = delivery
    return app
