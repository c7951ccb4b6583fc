"""Server-wide messages from a worker (ADR 0023): a `notifications/message` to every
session-lane client's standalone stream in the cluster, filtered by each session's log
level. A gateway checks, stores and confirms it; the logger shown is `<pool>[/<logger>]`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from . import contract as c

#: How long to wait for a gateway's confirmation, in seconds.
TIMEOUT_SECONDS = 5.0


class AnnounceError(Exception):
    """The announcement was refused (`code`, `data`), or no gateway confirmed it
    (`code` None): it may still have been stored; `announce` again with the same `id`
    stores it at most once."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.data = code, data


async def announce(nc: Any, pool: str, level: str, data: Any, *, logger: str | None = None, id: str | None = None) -> None:
    levels = c.LOG_LEVELS.split(",")
    if level not in levels:
        raise ValueError(f"unknown log level {level!r}; one of {', '.join(levels)}")
    body: dict[str, Any] = {"protocol": c.PROTOCOL_VERSION, "id": id or uuid.uuid4().hex, "level": level, "data": data}
    if logger is not None:
        body["logger"] = logger
    payload = json.dumps(body).encode()
    if len(payload) > c.ANNOUNCEMENT_MAX_BYTES:
        raise ValueError(f"the announcement is {len(payload)} bytes; the limit is {c.ANNOUNCEMENT_MAX_BYTES}")
    try:
        msg = await nc.request(f"{c.ANNOUNCE_PREFIX}{pool}", payload, timeout=TIMEOUT_SECONDS)
    except Exception as e:
        raise AnnounceError(f"no gateway confirmed the announcement: {e}") from e
    try:
        reply = json.loads(msg.data)
    except ValueError as e:
        raise AnnounceError(f"unreadable confirmation: {e}") from e
    error = reply.get("error")
    if error:
        raise AnnounceError(f"announcement refused: {error.get('message')}", error.get("code"), error.get("data"))
