"""What a handler knows about its call, and how it talks back while it runs: progress,
logs, and questions to the client (`ask`) on both lanes."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from . import contract as c
from . import protocol as p
from .principal import Principal

if TYPE_CHECKING:
    from .catalogue import Catalogue
    from .mrtr import Rounds

#: Questions one call may have waiting for the client at once (session lane): each holds a
#: subscription, so a handler asking in a loop without awaiting cannot pile them up.
MAX_PENDING_ASKS = 8

#: The capability a client must declare for each request a worker may send it.
CAPABILITY_OF = {
    c.CLIENT_METHOD_ELICITATION: c.CAPABILITY_ELICITATION,
    c.CLIENT_METHOD_SAMPLING: c.CAPABILITY_SAMPLING,
    c.CLIENT_METHOD_ROOTS: c.CAPABILITY_ROOTS,
}


class _CallView(Protocol):
    """What a `Context` reads from the call it belongs to (the worker's `_Call`). Declared
    here, so that this module does not import the worker that imports it."""

    request: dict[str, Any]
    pool: str
    instance: str
    principal: Principal | None
    cancelled: asyncio.Event
    catalogue: "Catalogue"
    rounds: "Rounds"

    @property
    def wants_progress(self) -> bool: ...

    async def send(self, event: dict[str, Any]) -> None: ...

    async def subscribe(self, subject: str) -> Any: ...

    async def announce(self, level: str, data: Any, logger: str | None) -> None: ...


class Context:
    """Handed to a handler that declares a parameter annotated `Context`."""

    def __init__(self, call: _CallView) -> None:
        self._call = call
        #: Requests sent to the client on this call's stream; the next one's `seq` is this + 1.
        self._asked = 0
        #: Keys given to unnamed questions in this run (`input-0`, `input-1`, ..., as the Rust SDK): a rerun
        #: asks in the same order, so the same question gets the same key.
        self._unnamed = 0
        self._pending = 0

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

    async def announce(self, level: str, data: Any, *, logger: str | None = None) -> None:
        """Sends a server-wide `notifications/message` to every session in the cluster, not
        only this call's client (ADR 0023); waits until a gateway stored it."""
        await self._call.announce(level, data, logger)

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """`notifications/message`; the gateway filters by the client's log level."""
        event: dict[str, Any] = {"type": c.REPLY_LOG, "level": level, "data": data}
        if logger is not None:
            event["logger"] = logger
        await self._call.send(event)

    @property
    def lane(self) -> str:
        """`session` (2025 revisions) or `stateless` (2026-07-28)."""
        return self._call.request["lane"]

    @property
    def catalogue(self) -> "Catalogue":
        """What this worker serves; a change reaches every client as `list_changed`."""
        return self._call.catalogue

    @property
    def resumed(self) -> bool:
        """Whether this run continues an earlier round (2026-07-28): the gateway verified the
        `requestState` the client brought back."""
        return self._call.rounds.resumed

    def client_supports(self, capability: str) -> bool:
        """Whether the client declared `capability` (`elicitation`, `sampling`, `roots`)."""
        return capability in self.client_capabilities

    async def elicit(self, message: str, requested_schema: dict[str, Any], *, key: str | None = None) -> Any:
        """`elicitation/create`: the client's `ElicitResult` (`action`, `content`)."""
        return await self.ask(
            c.CLIENT_METHOD_ELICITATION, {"message": message, "requestedSchema": requested_schema}, key=key
        )

    async def ask(self, method: str, params: Any, *, key: str | None = None) -> Any:
        """Asks the client (`elicitation/create`, `sampling/createMessage`, `roots/list`) and
        returns its result. If the client did not declare the capability: `ProtocolError`
        -32021 on 2026-07-28, a `ToolError` on a 2025 session; `ToolError` if it refused, did not answer before the deadline, or the
        call was cancelled.

        The same call works on both lanes. On a 2025 session the request goes to the client
        on the call's stream and this waits for the answer. On 2026-07-28 the round ends here
        (`InputRequired`, which the SDK turns into an `InputRequiredResult` whose key is
        `key`, default `input-<n>` from 0) and the handler runs again from the start when the client
        retries; earlier answers come back in the `requestState`, so each `ask` of the rerun
        returns at once until the first new one. Do nothing irreversible before the last `ask`.
        """
        (answer,) = await self.ask_all([(key, method, params)])
        return answer

    async def ask_all(self, asks: list[tuple[str | None, str, Any]]) -> list[Any]:
        """Several questions (`(key or None, method, params)`), answered in order: on
        2026-07-28 in one `InputRequiredResult`, on a session one after the other."""
        named: list[tuple[str, str, Any]] = []
        for key, method, params in asks:
            self._check_capability(method)
            if key is None:
                key = f"input-{self._unnamed}"
                self._unnamed += 1
            named.append((key, method, params))
        if self.lane != c.LANE_SESSION:
            return self._call.rounds.answers(named)
        return [await self._ask_on_stream(method, params) for _, method, params in named]

    def _check_capability(self, method: str) -> None:
        from .declarations import ProtocolError, ToolError

        capability = CAPABILITY_OF.get(method)
        if capability is None:
            raise ToolError(f"cannot ask the client for {method!r}")
        if not self.client_supports(capability):
            message = f"the client did not declare the {capability!r} capability, so it cannot be asked for {method}"
            # 2026-07-28 has an error for exactly this; the 2025 revisions get a tool error.
            if self.lane == c.LANE_SESSION:
                raise ToolError(message)
            raise ProtocolError(
                c.MISSING_CAPABILITY,
                message,
                {"requiredCapabilities": {capability: {}}},
            )

    async def _ask_on_stream(self, method: str, params: Any) -> Any:
        """Session lane: the request travels on the call's stream, the answer on the bus,
        to a subject subscribed before the request is sent."""
        from .declarations import ToolError

        if self._pending >= MAX_PENDING_ASKS:
            raise ToolError(f"more than {MAX_PENDING_ASKS} questions to the client at once")
        self._asked += 1
        seq = self._asked
        self._pending += 1
        try:
            answers = await self._call.subscribe(p.answer_subject(self._call.pool, self.call_id, seq))
            try:
                await self._call.send({"type": c.REPLY_REQUEST, "seq": seq, "method": method, "params": params})
                remaining = self._call.request["deadline_ms"] / 1000 - time.time()
                try:
                    msg = await answers.next_msg(timeout=max(0.001, remaining))
                except asyncio.TimeoutError as e:  # nats-py's timeout is one too
                    raise ToolError(f"the client did not answer {method} in time") from e
            finally:
                try:
                    await answers.unsubscribe()
                except Exception:
                    pass
        finally:
            self._pending -= 1
        try:
            answer = json.loads(msg.data)
        except ValueError as e:
            raise ToolError(f"unreadable answer from the client to {method}") from e
        if isinstance(answer, dict) and "result" in answer:
            return answer["result"]
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            raise ToolError(f"the client refused {method}: {error.get('message', '')}")
        raise ToolError(f"the client's answer to {method} was empty")
