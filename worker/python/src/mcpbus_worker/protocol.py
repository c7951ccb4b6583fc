"""The mcpbus worker protocol, version 1, as bus-schema/PROTOCOL.md defines it.

Subjects, keys and message shapes are built here only, from the names and limits in
`contract.py`; the rest of the SDK uses these functions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import contract as c


def call_subject(pool: str) -> str:
    return f"{c.CALL_SUBJECT_PREFIX}{pool}"


def pool_consumer(pool: str) -> str:
    return f"{c.POOL_CONSUMER_PREFIX}{pool}"


def pool_consumer_description(pool: str) -> str:
    return f"{c.POOL_CONSUMER_DESCRIPTION_PREFIX}{pool}"


def service_name(pool: str) -> str:
    """The pool's name in the NATS service API (PROTOCOL section 4)."""
    return f"{c.SERVICE_NAME_PREFIX}{pool}"


def worker_key(pool: str, instance: str) -> str:
    return f"{pool}{c.KV_KEY_SEPARATOR}{instance}"


def catalog_key(pool: str, digest: str) -> str:
    return f"{pool}{c.KV_KEY_SEPARATOR}{digest}"


def kv_stream(bucket: str) -> str:
    """The stream that is KV bucket `bucket`."""
    return f"{c.KV_STREAM_PREFIX}{bucket}"


def kv_subjects(bucket: str) -> str:
    """What the stream of KV bucket `bucket` captures."""
    return f"{c.KV_SUBJECT_PREFIX}{bucket}{c.KV_SUBJECT_SUFFIX}"


def cancel_subject(request: dict[str, Any], pool: str) -> str:
    """Where this call's cancellation arrives (PROTOCOL 5.6)."""
    return request.get("cancel_on") or f"{c.CANCEL_SUBJECT_PREFIX}{pool}{c.KV_KEY_SEPARATOR}{request['call_id']}"


def durable_reply_id(call_id: str, delivery: int, n: int) -> str:
    """`Nats-Msg-Id` of reply `n` of one delivery of a call (PROTOCOL 5.2)."""
    return f"{call_id}:{delivery}:{n}"


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
    return {"protocol": c.PROTOCOL_VERSION, "call_id": call_id, "instance": instance, **event}


def wire_error(code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"type": c.REPLY_ERROR, "error": error}
