"""Start-up on the bus, as the SDKs agreed (issue 16): a worker never creates a stream or a
bucket; it waits for the gateways to declare them, then creates or opens only its pool's
consumer, by name and filter (the one create its NATS permissions allow, ADR 0013).

Talks to the JetStream API directly (plain requests), so that what is sent is exactly what
PROTOCOL.md and `permissions.rs` name.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from nats.errors import NoRespondersError

from . import contract as c
from . import protocol as p

log = logging.getLogger("mcpbus_worker")

#: How often a missing stream or bucket is looked for again.
TOPOLOGY_POLL_SECONDS = 0.5
#: How long one JetStream API request waits for its answer.
API_TIMEOUT_SECONDS = 5.0
#: JetStream's codes for a missing stream or consumer.
STREAM_NOT_FOUND = 10059
CONSUMER_NOT_FOUND = 10014


class JetStreamError(Exception):
    """The JetStream API refused a request."""

    def __init__(self, subject: str, error: dict[str, Any]) -> None:
        super().__init__(f"{subject}: {error.get('description', error)}")
        self.code = error.get("code")
        self.err_code = error.get("err_code")


async def api(nc: Any, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JetStream API request; its answer, or `JetStreamError`."""
    payload = json.dumps(body).encode() if body is not None else b""
    msg = await nc.request(subject, payload, timeout=API_TIMEOUT_SECONDS)
    answer = json.loads(msg.data or b"{}")
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        raise JetStreamError(subject, answer["error"])
    return answer


async def wait_for_streams(nc: Any, names: list[str]) -> None:
    """Returns once every stream in `names` exists. A missing one (or JetStream not
    answering yet: no responders) is looked for again every 500 ms, logged once; any other
    failure is raised."""
    told = False
    for name in names:
        while True:
            try:
                await api(nc, p.stream_info_subject(name))
                break
            except JetStreamError as e:
                if e.err_code != STREAM_NOT_FOUND and e.code != 404:
                    raise
            except NoRespondersError:
                pass
            if not told:
                log.info("waiting for a gateway to declare stream %s (workers never create it)", name)
                told = True
            await asyncio.sleep(TOPOLOGY_POLL_SECONDS)


async def open_pool_consumer(nc: Any, pool: str) -> dict[str, Any]:
    """Creates the pool's consumer with the agreed configuration, or opens the existing one
    as it is (a warning if its settings differ; never deleted). Its info."""
    wanted = p.pool_consumer_config(pool)
    try:
        info = await api(nc, p.consumer_info_subject(pool))
    except JetStreamError as e:
        if e.err_code != CONSUMER_NOT_FOUND and e.code != 404:
            raise
        try:
            info = await api(nc, p.consumer_create_subject(pool), {"stream_name": c.CALLS_STREAM, "config": wanted})
            log.info("created consumer %s", wanted["name"])
        except JetStreamError:
            # Created by another replica meanwhile, with other settings: use it.
            info = await api(nc, p.consumer_info_subject(pool))
    config = info.get("config") or {}
    differs = sorted(k for k, v in wanted.items() if k != "name" and config.get(k) != v)
    if differs:
        log.warning(
            "consumer %s exists with other settings (%s); using it as it is", wanted["name"], ", ".join(differs)
        )
    return info
