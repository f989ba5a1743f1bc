"""The collector's ASGI app, built by ``create_app(settings, producer, registry)``.

Segment-compatible: ``POST /v1/batch`` and single-message ``/v1/<type>``; the write key as
the HTTP Basic username or ``writeKey`` in the body. A 200 is sent only after Kafka
acknowledged every accepted event; invalid events in a batch are dead-lettered with their
reason and the valid ones still go through.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collectors.http.normalize import MESSAGE_TYPES, normalize
from collectors.http.producer import EventProducer, Record
from pipeline.deadletter import dead_letter_record
from pipeline.errors import BrokerUnavailable, InvalidEvent
from pipeline.metrics import CollectorMetrics
from pipeline.settings import Settings
from pipeline.timeutil import utc_now

__all__ = ["create_app"]

MAX_BODY_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
_MAX_ERRORS_SHOWN = 20


class _Refused(Exception):
    """The whole request is refused with ``status`` and a JSON error naming ``field``."""

    def __init__(self, status: int, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.reason = status, field, reason


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _refusal(exc: _Refused) -> Response:
    return _json(
        exc.status,
        {
            "success": False,
            "error": {"field": exc.field, "reason": exc.reason, "message": str(exc)},
        },
    )


async def _read_body(request: Request) -> bytes:
    """The request body, decompressed, refusing anything over the limit without buffering it."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Refused(413, "body", "too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise _Refused(415, "content-encoding", "unsupported", "only gzip bodies are accepted")
    inflater = zlib.decompressobj(wbits=31)
    try:
        # max_length stops a gzip bomb after the limit instead of inflating it whole.
        out = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise _Refused(400, "body", "gzip", "body is not valid gzip") from None
    if len(out) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise _Refused(
            413, "body", "too_large", f"decompressed body exceeds {MAX_BODY_BYTES} bytes"
        )
    if not inflater.eof:
        raise _Refused(400, "body", "gzip", "gzip body is truncated")
    return out


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
    settings: Settings, producer: EventProducer, registry: CollectorRegistry
) -> Starlette:
    """Build the collector app around an ``EventProducer`` (Kafka in production)."""
    metrics = CollectorMetrics.create(registry)
    known_keys = {k.key for k in settings.write_keys}
    raw_topic = settings.topic("raw")
    dead_letter_topic = settings.topic("dead_letter")

    def authenticate(request: Request, body: Any) -> str:
        key = _basic_auth_key(request)
        if key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
            key = body["writeKey"]
        if not key:
            raise _Refused(
                401,
                "writeKey",
                "missing",
                "no write key: send it as the Basic auth username or as writeKey in the body",
            )
        if key not in known_keys:
            raise _Refused(401, "writeKey", "unknown", "unknown write key")
        return key

    async def ingest(request: Request, default_type: str | None) -> Response:
        received_at = utc_now()
        raw_body = await _read_body(request)
        try:
            body = orjson.loads(raw_body)
        except orjson.JSONDecodeError:
            raise _Refused(400, "body", "json", "body is not valid JSON") from None
        write_key = authenticate(request, body)
        if not isinstance(body, dict):
            raise _Refused(400, "body", "type", "body must be a JSON object")
        if default_type is None:
            messages = body.get("batch")
            if not isinstance(messages, list):
                raise _Refused(400, "batch", "type", "batch must be an array of messages")
            if len(messages) > MAX_BATCH_EVENTS:
                raise _Refused(
                    413, "batch", "too_many", f"batch holds more than {MAX_BATCH_EVENTS} messages"
                )
        else:
            messages = [body]
        accepted: list[Record] = []
        dead: list[Record] = []
        errors: list[dict[str, Any]] = []
        for index, message in enumerate(messages):
            try:
                record = normalize(
                    message,
                    received_at=received_at,
                    batch_sent_at=body.get("sentAt"),
                    default_type=default_type,
                )
            except InvalidEvent as exc:
                metrics.events_rejected.labels(exc.rule).inc()
                errors.append(
                    {"index": index, "field": exc.field, "reason": exc.rule, "message": str(exc)}
                )
                dead.append(
                    (
                        None,
                        dead_letter_record(
                            stage="collector",
                            reason=exc.rule,
                            field=exc.field,
                            message=str(exc),
                            payload=orjson.dumps(message),
                            received_at=received_at,
                            write_key=write_key,
                        ),
                    )
                )
                continue
            key = (record["anonymous_id"] or record["user_id"]).encode()
            accepted.append((key, orjson.dumps(record)))
        try:
            await producer.send_all(dead_letter_topic, dead)
            await producer.send_all(raw_topic, accepted)
        except BrokerUnavailable as exc:
            raise _Refused(503, "kafka", "unavailable", f"{exc}; retry later") from exc
        metrics.events_accepted.inc(len(accepted))
        answer: dict[str, Any] = {"success": True}
        if errors:
            answer |= {
                "accepted": len(accepted),
                "rejected": len(errors),
                "errors": errors[:_MAX_ERRORS_SHOWN],
            }
        return _json(200, answer)

    def endpoint(route: str, default_type: str | None) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await ingest(request, default_type)
            except _Refused as exc:
                response = _refusal(exc)
            metrics.requests.labels(route, str(response.status_code)).inc()
            metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
            return response

        return handle

    async def healthz(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(request: Request) -> Response:
        if producer.is_ready():
            return _json(200, {"status": "ready"})
        return _json(503, {"status": "unready", "reason": "kafka unreachable"})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/v1/batch", endpoint("batch", None), methods=["POST"])]
    routes += [
        Route(f"/v1/{kind}", endpoint(kind, kind), methods=["POST"])
        for kind in sorted(MESSAGE_TYPES)
    ]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await producer.start()
        try:
            yield
        finally:
            await producer.stop()

    return Starlette(routes=routes, lifespan=lifespan)
