"""The mcpbus worker protocol, version 2, as bus-schema/PROTOCOL.md defines it.

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


def pool_consumer_config(pool: str) -> dict[str, Any]:
    """The pool consumer's configuration, exactly as the SDKs agreed to create it (replicas
    left out: it inherits the stream's)."""
    name = pool_consumer(pool)
    return {
        "durable_name": name,
        "name": name,
        "description": f"{c.POOL_CONSUMER_DESCRIPTION_PREFIX}{pool}",
        "filter_subject": call_subject(pool),
        "ack_policy": c.POOL_ACK_POLICY,
        "ack_wait": int(c.POOL_ACK_WAIT_SECONDS * 1_000_000_000),
        "max_deliver": c.POOL_MAX_DELIVER,
        "max_ack_pending": c.POOL_MAX_ACK_PENDING,
        "deliver_policy": c.POOL_DELIVER_POLICY,
        "replay_policy": c.POOL_REPLAY_POLICY,
    }


def stream_info_subject(stream: str) -> str:
    return f"{c.JS_API_PREFIX}STREAM.INFO.{stream}"


def consumer_info_subject(pool: str) -> str:
    return f"{c.JS_API_PREFIX}CONSUMER.INFO.{c.CALLS_STREAM}.{pool_consumer(pool)}"


def consumer_create_subject(pool: str) -> str:
    """Creates the consumer by name and filter: the only create a pool's permissions allow."""
    return f"{c.JS_API_PREFIX}CONSUMER.CREATE.{c.CALLS_STREAM}.{pool_consumer(pool)}.{call_subject(pool)}"


def pull_subject(pool: str) -> str:
    """Where pull requests for the pool's calls go."""
    return f"{c.JS_API_PREFIX}CONSUMER.MSG.NEXT.{c.CALLS_STREAM}.{pool_consumer(pool)}"


def answer_subject(pool: str, call_id: str, seq: int) -> str:
    """Where the client's answer to request `seq` of a call arrives (PROTOCOL 5.2)."""
    return f"{c.ANSWER_SUBJECT_PREFIX}{pool}.{call_id}.{seq}"


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


def cancel_subject(request: dict[str, Any], pool: str) -> str:
    """Where this call's cancellation arrives (PROTOCOL 5.6)."""
    return request.get("cancel_on") or f"{c.CANCEL_SUBJECT_PREFIX}{pool}{c.KV_KEY_SEPARATOR}{request['call_id']}"


def drain_subject(pool: str, instance: str) -> str:
    """Where the operator asks this instance to drain (PROTOCOL 4.3)."""
    return f"{c.DRAIN_SUBJECT_PREFIX}{pool}{c.KV_KEY_SEPARATOR}{instance}"


def alive_subject(pool: str, instance: str) -> str:
    """Where this instance holds a subscription while its connection lives: gateways probe it
    and drop the instance soon after its connection dies (PROTOCOL 4.2, ADR 0029)."""
    return f"{c.ALIVE_SUBJECT_PREFIX}{pool}{c.KV_KEY_SEPARATOR}{instance}"


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
    """An `error` reply event."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"type": c.REPLY_ERROR, "error": error}
