"""The mcpbus worker protocol, version 1, as bus-schema/PROTOCOL.md defines it.

Subjects, JetStream objects and message shapes live here only; the rest of the SDK uses
these names.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

PROTOCOL_VERSION = 1
ROOT = "mcpbus.v1"

CALLS_STREAM = "MCPBUS_CALLS"
WORKERS_BUCKET = "mcpbus-workers"
CATALOG_BUCKET = "mcpbus-catalog"

#: How long JetStream waits for an acknowledgement before delivering a call again.
ACK_WAIT_SECONDS = 30.0
MAX_DELIVER = 5
POOL_MAX_ACK_PENDING = 10_000

# JSON-RPC codes a worker reports.
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002


def call_subject(pool: str) -> str:
    return f"{ROOT}.call.{pool}"


def pool_consumer(pool: str) -> str:
    return f"mcpbus-pool-{pool}"


def worker_key(pool: str, instance: str) -> str:
    return f"{pool}.{instance}"


def catalog_key(pool: str, digest: str) -> str:
    return f"{pool}.{digest}"


def cancel_subject(request: dict[str, Any]) -> str:
    """Where this call's cancellation arrives (PROTOCOL 5.6)."""
    return request.get("cancel_on") or f"{ROOT}.cancel.{request['call_id']}"


def digest(*parts: Any) -> str:
    """A content digest for the catalogue key: equal catalogues give equal digests."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def reply(call_id: str, instance: str, event: dict[str, Any]) -> dict[str, Any]:
    """A `CallReply` envelope around one event (`{"type": ..., ...}`)."""
    return {"protocol": PROTOCOL_VERSION, "call_id": call_id, "instance": instance, **event}


def wire_error(code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"type": "error", "error": error}
