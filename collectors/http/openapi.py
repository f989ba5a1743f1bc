"""The collector's OpenAPI 3.1 document, built from ``schemas/event.schema.json``.

The document in the repository (``schemas/openapi.json``) is this function's output, and a
test keeps them equal: regenerate with ``autocap openapi > schemas/openapi.json``.
"""

from __future__ import annotations

import copy
from typing import Any

from collectors.http.contract import event_schema
from pipeline import __version__
from pipeline.resources import resource_dir

__all__ = ["build_openapi", "openapi_path"]

_TYPES = ("alias", "group", "identify", "page", "screen", "track")


def _rebase_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                v.replace("#/definitions/", "#/components/schemas/")
                if k == "$ref"
                else _rebase_refs(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase_refs(v) for v in node]
    return node


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _responses() -> dict[str, Any]:
    return {
        "200": {
            "description": "Every accepted event is acknowledged by Kafka or fsynced to "
            "the spool. Rejected events are listed and dead-lettered.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        },
        "400": _error("Malformed body (not JSON, bad gzip, batch not an array)."),
        "401": _error("Missing, malformed or unknown write key."),
        "403": _error("Origin not allowed for this write key."),
        "413": _error("Body or batch over the configured limits."),
        "415": _error("Content-Encoding other than gzip."),
        "429": _error("Rate limited; see Retry-After."),
        "503": _error("Kafka unreachable and the disk spool full; retry later."),
    }


def _post(summary: str, schema_ref: str) -> dict[str, Any]:
    body = {"schema": {"$ref": schema_ref}}
    return {
        "post": {
            "summary": summary,
            "security": [{"basicAuth": []}, {}],
            "requestBody": {
                "required": True,
                "content": {"application/json": body, "text/plain": body},
            },
            "responses": _responses(),
        }
    }


def _single(event: dict[str, Any], kind: str, with_key: dict[str, Any]) -> dict[str, Any]:
    """The body of ``/v1/<kind>``: an Event whose ``type`` may be left out (it defaults)."""
    single = copy.deepcopy(event)
    single["required"] = [r for r in single["required"] if r != "type"]
    single["properties"] |= {"type": {"const": kind}, **with_key}
    own_rules = [
        rule["then"]
        for rule in single["allOf"]
        if rule["if"].get("properties", {}).get("type") == {"const": kind}
    ]
    single["allOf"] += [{"if": {"not": {"required": ["type"]}}, "then": then} for then in own_rules]
    return single


def build_openapi() -> dict[str, Any]:
    """The OpenAPI document for the collector's HTTP API."""
    event = copy.deepcopy(event_schema())
    definitions = event.pop("definitions")
    batch = definitions.pop("batch")
    # Messages are judged one by one: an invalid one is reported (and dead-lettered) in the
    # 200 answer while the others go through, so the envelope accepts any item.
    batch["properties"]["batch"]["items"] = {
        "description": "Validated one by one against #/components/schemas/Event."
    }
    for key in ("$schema", "$id"):
        event.pop(key, None)
    with_key = {
        "writeKey": {
            "type": ["string", "null"],
            "description": "Write key, when not sent as the Basic auth username "
            "(what sendBeacon can send).",
        }
    }
    schemas: dict[str, Any] = {
        **definitions,
        "Event": event,
        **{f"{kind.title()}Message": _single(event, kind, with_key) for kind in _TYPES},
        "Batch": batch,
        "Accepted": {
            "type": "object",
            "required": ["success"],
            "properties": {
                "success": {"const": True},
                "accepted": {"type": "integer"},
                "rejected": {"type": "integer"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "field": {"type": "string"},
                            "reason": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["success", "code", "message", "error"],
            "properties": {
                "success": {"const": False},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "error": {
                    "type": "object",
                    "required": ["field", "reason", "message"],
                    "properties": {
                        "field": {"type": "string"},
                        "reason": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
    paths: dict[str, Any] = {
        "/v1/batch": _post("Send a batch of messages", "#/components/schemas/Batch")
    }
    for kind in _TYPES:
        paths[f"/v1/{kind}"] = _post(
            f"Send one {kind} message", f"#/components/schemas/{kind.title()}Message"
        )
    plain = {"200": {"description": "OK"}}
    paths |= {
        "/healthz": {"get": {"summary": "The process is alive", "responses": plain}},
        "/readyz": {
            "get": {
                "summary": "Kafka reachable or spool has room",
                "responses": {
                    **plain,
                    "503": {"description": "Neither Kafka nor the spool can take events"},
                },
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": plain}},
    }
    script = {
        "200": {"description": "The script (gzip when accepted), cacheable for an hour"},
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        "404": {"description": "The snippet is not built in this install"},
    }
    for name, what in (("autocap.js", "readable"), ("autocap.min.js", "minified")):
        paths[f"/{name}"] = {
            "get": {"summary": f"The autocap.js browser snippet, {what}", "responses": script}
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "autocap collector",
            "version": __version__,
            "description": "Segment-compatible event ingestion.",
        },
        "paths": paths,
        "components": {
            "schemas": _rebase_refs(schemas),
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Write key as the username, empty password.",
                }
            },
        },
    }


def openapi_path() -> str:
    """Where the checked-in document lives."""
    return str(resource_dir("schemas") / "openapi.json")
