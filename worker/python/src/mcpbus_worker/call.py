"""One call, from its JetStream message to its acknowledgement, as the SDKs' outcome table
says: refused calls are answered, then terminated; a call that runs sends `accepted`, its
progress, logs and questions, exactly one `result` or `error`, then is acknowledged. A
durable reply is stored with retries; a final reply that could not be stored leaves the call
to be delivered again (NAK) rather than acknowledged.

May touch the call's message, its reply subject, its cancel and answer subjects; nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from . import contract as c
from . import metrics
from . import protocol as p
from . import telemetry
from .announce import announce
from .context import Context
from .decide import Refused, Unreadable, decide, read_call
from .declarations import ProtocolError, tool_error
from .mrtr import InputRequired, Rounds
from .principal import Principal

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("mcpbus_worker")

#: Storing one durable reply (PROTOCOL.md 5.2): how long it is retried while the events
#: stream's leader moves, how long each attempt waits for the stream's acknowledgement, and
#: the first and longest pause between attempts (doubling).
DURABLE_RETRY_SECONDS = 10.0
DURABLE_ACK_WAIT_SECONDS = 2.0
DURABLE_FIRST_PAUSE_SECONDS = 0.05
DURABLE_MAX_PAUSE_SECONDS = 0.5
#: How long a stopped (cancelled, past its deadline, drained) handler may take to unwind
#: before the call is settled anyway.
HANDLER_STOP_GRACE_SECONDS = 5.0


class _Call:
    """One call. `abandon()` stops it from outside (the drain deadline): its handler is
    cancelled and the message NAKed, so another replica takes it."""

    def __init__(self, worker: "Worker", nc: Any, js: Any, msg: Any) -> None:
        self.worker = worker
        self.pool = worker.pool
        self.instance = worker.instance
        self.catalogue = worker.catalogue
        self.nc = nc
        self.js = js
        self.msg = msg
        self.request: dict[str, Any] = {}
        self.principal: Principal | None = None
        self.rounds = Rounds({})
        #: Replies sent so far in this delivery: `n` of the next durable reply's id.
        self.sent = 0
        self.cancelled = asyncio.Event()
        #: Set by `abandon`: the drain deadline passed while the handler ran.
        self.abandoned = False
        self._work: asyncio.Task[dict[str, Any]] | None = None
        #: The call's trace (PROTOCOL.md §11): what its replies carry in their headers.
        self.trace = telemetry.CallTrace({})

    @property
    def wants_progress(self) -> bool:
        meta = (self.request.get("params") or {}).get("_meta") or {}
        return isinstance(meta, dict) and c.META_PROGRESS_TOKEN in meta

    @property
    def delivered(self) -> int:
        try:
            return int(self.msg.metadata.num_delivered)
        except Exception:
            return 1

    def _deadline(self) -> float | None:
        deadline = self.request.get("deadline_ms")
        return deadline / 1000 if isinstance(deadline, (int, float)) else None

    async def subscribe(self, subject: str) -> Any:
        return await self.nc.subscribe(subject)

    async def announce(self, level: str, data: Any, logger: str | None) -> None:
        await announce(self.nc, self.pool, level, data, logger=logger)

    def _tool_label(self) -> str | None:
        """The tool a `tools/call` is measured under (`_other` if not served); None for
        other methods, which are not measured."""
        if self.request.get("method") != c.METHOD_TOOLS_CALL:
            return None
        name = (self.request.get("params") or {}).get("name")
        return name if isinstance(name, str) and name in self.catalogue.tools else "_other"

    async def send(self, event: dict[str, Any], *, final: bool = False) -> bool:
        """Publishes one reply; whether it is known to have arrived (a durable one stored).
        A core publish cannot be confirmed: a lost one shows as the gateway's timeout."""
        call_id = self.request["call_id"]
        payload = p.encode(p.reply(call_id, self.instance, event))
        subject = self.request["reply_to"]
        trace_headers = self.trace.headers()
        if self.request.get("reply_durable") is not True:
            try:
                if trace_headers:
                    await self.nc.publish(subject, payload, headers=trace_headers)
                else:
                    await self.nc.publish(subject, payload)
            except Exception as e:
                log.warning("call %s: could not publish a reply: %s", call_id, e)
            return True
        # Stored replies let a client resume on another gateway: each stored once, under an
        # id that carries the delivery, so a rerun's replies are not taken for duplicates.
        msg_id = p.durable_reply_id(call_id, self.delivered, self.sent)
        self.sent += 1
        deadline = self._deadline()
        give_up = time.time() + DURABLE_RETRY_SECONDS
        if deadline is not None:
            give_up = min(give_up, deadline)
        pause, attempt = DURABLE_FIRST_PAUSE_SECONDS, 1
        while True:
            try:
                await self.js.publish(subject, payload, timeout=DURABLE_ACK_WAIT_SECONDS, headers={**trace_headers, c.HEADER_MSG_ID: msg_id})
                return True
            except Exception as e:
                log.warning("call %s: storing reply %s failed (attempt %d): %s", call_id, msg_id, attempt, e)
            if time.time() + pause >= give_up:
                break
            await asyncio.sleep(pause)
            pause, attempt = min(pause * 2, DURABLE_MAX_PAUSE_SECONDS), attempt + 1
        if not final:
            log.warning("call %s: dropped reply %s, which could not be stored; the call goes on", call_id, msg_id)
        return False

    async def _settle(self, how: str) -> None:
        """ACK, TERM or NAK the message."""
        try:
            await getattr(self.msg, how)()
        except Exception as e:
            log.warning("call %s: %s failed: %s", self.request.get("call_id", "?"), how, e)

    async def _answer_and_settle(self, event: dict[str, Any], how: str) -> None:
        """The final reply, then `how`; NAK instead when a durable final reply was not stored."""
        stored = await self.send(event, final=True)
        await self._settle(how if stored else "nak")

    def abandon(self) -> None:
        """The drain deadline passed: stop the handler; the call will be NAKed."""
        self.abandoned = True
        self.cancelled.set()
        if self._work is not None:
            self._work.cancel()

    async def run(self) -> None:
        """Never raises: a bad message or a failing handler must not take the worker down."""
        try:
            await self._run()
        except Exception:
            log.exception("call failed unexpectedly")

    async def _run(self) -> None:
        try:
            self.request, self.principal = read_call(self.msg.data)
        except Unreadable as e:
            log.warning("discarding an unreadable call: %s", e)
            await self._settle("term")
            return
        except Refused as e:
            # Readable enough to answer: string call_id and reply_to.
            self.request = json.loads(self.msg.data)
            self.trace = telemetry.CallTrace(telemetry.extract(getattr(self.msg, "headers", None)))
            log.warning("refusing call %s: %s", self.request["call_id"], e)
            await self._answer_and_settle(e.event, "term")
            return
        with telemetry.call_span(self.msg, self.request, str(self.pool), str(self.instance)) as trace:
            self.trace = trace
            await self._run_decided()

    async def _run_decided(self) -> None:
        tool = self._tool_label()
        try:
            decide(self.catalogue, self.request, self.delivered)
        except Refused as e:
            log.info("refusing call %s: %s", self.request["call_id"], e)
            if tool is not None:
                metrics.refused(self.pool, tool)
            await self._answer_and_settle(e.event, "term")
            return
        running = metrics.Running(self.pool, tool) if tool is not None else None
        outcome = await self._run_call()
        if running is not None:
            running.finish(outcome)

    async def _run_call(self) -> str:
        """Runs a decided call to its end; its outcome label (`metrics.outcome_of`, or why
        nobody waits: cancelled, timeout, abandoned)."""
        self.rounds = Rounds(self.request.get("params") or {})
        await self.send({"type": c.REPLY_ACCEPTED})
        # Subscribed before the work starts, so a cancellation is never missed.
        cancel = await self.nc.subscribe(p.cancel_subject(self.request, self.pool))
        lease = asyncio.create_task(self._keep_lease())
        self._work = asyncio.create_task(self._run_handler())
        cancelled = asyncio.create_task(cancel.next_msg(timeout=None))
        remaining = self.request["deadline_ms"] / 1000 - time.time()
        try:
            done, _ = await asyncio.wait(
                {self._work, cancelled}, timeout=max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED
            )
            if self._work in done and not self.abandoned:
                final = self._work.result()
                await self._answer_and_settle(final, "ack")
                return metrics.outcome_of(final)
            # Cancelled by the client, past the deadline, or the drain deadline: nobody waits
            # for an answer. Settle once the handler has stopped.
            self.cancelled.set()
            self._work.cancel()
            await asyncio.wait({self._work}, timeout=HANDLER_STOP_GRACE_SECONDS)
            why = "abandoned" if self.abandoned else ("cancelled" if cancelled in done else "timeout")
            log.info("call %s ended without an answer: %s", self.request["call_id"], why)
            await self._settle("nak" if self.abandoned else "ack")
            return why
        finally:
            lease.cancel()
            cancelled.cancel()
            try:
                await cancel.unsubscribe()
            except Exception:
                pass

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(c.POOL_ACK_WAIT_SECONDS / 3)
            try:
                await self.msg.in_progress()
            except Exception:
                pass

    async def _run_handler(self) -> dict[str, Any]:
        """The final reply of a call that runs."""
        params = self.request.get("params") or {}
        method = self.request["method"]
        ctx = Context(self)
        try:
            if method == c.METHOD_TOOLS_CALL:
                tool = self.catalogue.tools.get(params.get("name"))
                if tool is None:  # removed since the call was decided
                    return p.wire_error(c.INVALID_PARAMS, f"Unknown tool: {params.get('name')}",
                                        {"reason": c.REASON_UNKNOWN_TOOL, "tool": params.get("name")})
                return {"type": c.REPLY_RESULT, "result": await tool.call(ctx, params.get("arguments"))}
            if method == c.METHOD_RESOURCES_READ:
                resource = self.catalogue.resources.get(params.get("uri"))
                if resource is None:
                    code = c.RESOURCE_NOT_FOUND if self.request["lane"] == c.LANE_SESSION else c.INVALID_PARAMS
                    return p.wire_error(code, f"Resource not found: {params.get('uri')}",
                                        {"reason": c.REASON_UNKNOWN_RESOURCE, "uri": params.get("uri")})
                return {"type": c.REPLY_RESULT, "result": await resource.read(ctx, params["uri"])}
            if method == c.METHOD_PROMPTS_GET:
                prompt = self.catalogue.prompts.get(params.get("name"))
                if prompt is None:
                    return p.wire_error(c.INVALID_PARAMS, f"Unknown prompt: {params.get('name')}",
                                        {"reason": c.REASON_UNKNOWN_PROMPT})
                return {"type": c.REPLY_RESULT, "result": await prompt.get(params.get("arguments") or {})}
            return {"type": c.REPLY_RESULT, "result": {"completion": {"values": [], "total": 0, "hasMore": False}}}
        except InputRequired as e:
            # Not a failure: the round ends asking the client (2026-07-28).
            return {"type": c.REPLY_RESULT, "result": e.result}
        except ProtocolError as e:
            return p.wire_error(e.code, e.message, e.data)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in handler code: report it, keep the worker up
            log.exception("call %s: handler failed", self.request["call_id"])
            message = f"the worker failed with an internal error: {type(e).__name__}"
            if method == c.METHOD_TOOLS_CALL:
                return {"type": c.REPLY_RESULT, "result": tool_error(message)}
            return p.wire_error(c.INTERNAL_ERROR, message, {"reason": c.REASON_INTERNAL})
