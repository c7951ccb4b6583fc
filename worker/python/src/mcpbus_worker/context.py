"""What a handler knows about its call, and how it talks back while it runs."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from . import contract as c
from .principal import Principal


class _CallView(Protocol):
    """What a `Context` reads from the call it belongs to (the worker's `_Call`). Declared
    here, so that this module does not import the worker that imports it."""

    request: dict[str, Any]
    instance: str
    principal: Principal | None
    cancelled: asyncio.Event

    @property
    def wants_progress(self) -> bool: ...

    async def send(self, event: dict[str, Any]) -> None: ...


class Context:
    """Handed to a handler that declares a parameter annotated `Context`."""

    def __init__(self, call: _CallView) -> None:
        self._call = call

    @property
    def call_id(self) -> str:
        return self._call.request["call_id"]

    @property
    def instance(self) -> str:
        return self._call.instance

    def principal(self) -> Principal | None:
        """Who is calling: issuer, subject, scopes and allow-listed claims, as the gateway
        verified them from the client's access token.

        `None` when the gateway runs without authorization. The token itself is never
        available: gateways do not pass tokens through (the MCP specification forbids it),
        so a worker that calls upstream services uses its own credentials. The principal says
        who the gateway let in; it does not prove the call came from a gateway (that is up
        to the bus's credentials and permissions)."""
        return self._call.principal

    @property
    def client_capabilities(self) -> dict[str, Any]:
        return self._call.request.get("client_capabilities") or {}

    @property
    def cancelled(self) -> asyncio.Event:
        """Set when the client cancels the call or the worker's drain deadline passes. The
        handler is also cancelled (`asyncio.CancelledError`) right after."""
        return self._call.cancelled

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """`notifications/progress`, sent only if the client asked for progress."""
        if not self._call.wants_progress:
            return
        event: dict[str, Any] = {"type": c.REPLY_PROGRESS, "progress": progress}
        if total is not None:
            event["total"] = total
        if message is not None:
            event["message"] = message
        await self._call.send(event)

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """`notifications/message`; the gateway filters by the client's log level."""
        event: dict[str, Any] = {"type": c.REPLY_LOG, "level": level, "data": data}
        if logger is not None:
            event["logger"] = logger
        await self._call.send(event)
