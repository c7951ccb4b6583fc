"""The worker: registration and heartbeats, pulling calls, running them, draining.

Follows bus-schema/PROTOCOL.md: catalogue in the catalogue KV bucket, liveness in the
workers bucket, calls pulled from the pool's durable consumer on the calls stream at most
`max_in_flight` at a time, replies to each call's `reply_to`, acknowledgement after the
final reply. Every name and limit of the bus comes from `contract.py`.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import nats as _nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.errors import NotFoundError

from . import contract as c
from . import protocol as p
from .connection import NatsOptions, redact_url
from .context import Context
from .principal import MalformedPrincipal, Principal, principal_of
from .declarations import (
    Prompt,
    ProtocolError,
    Resource,
    Tool,
    _arguments_model,
    prompt_decl,
    tool_decl,
    tool_error,
)

log = logging.getLogger("mcpbus_worker")

#: How long one pull waits for calls before it is renewed: a stop is noticed within it.
PULL_WAIT_SECONDS = 1.0
#: Attempts at storing one durable reply.
DURABLE_ATTEMPTS = 5
#: This SDK's version, as the worker record and the NATS service API show it.
SDK_VERSION = "0.1.0"
SDK = f"mcpbus-python/{SDK_VERSION}"


class Worker:
    """A pool of MCP tools, resources and prompts served over NATS.

    ```python
    worker = Worker("weather")

    @worker.tool(description="Current temperature")
    async def temperature(city: str) -> dict:
        return {"city": city, "celsius": 21}

    asyncio.run(worker.run("nats://127.0.0.1:4222"))
    ```
    """

    def __init__(
        self,
        pool: str,
        *,
        instance: str | None = None,
        max_in_flight: int = 16,
        heartbeat: float = c.DEFAULT_HEARTBEAT_SECONDS,
        ttl: float = c.DEFAULT_TTL_SECONDS,
        drain_timeout: float = 30.0,
    ) -> None:
        self.pool = pool
        self.instance = instance or uuid.uuid4().hex[:12]
        self.max_in_flight = max(1, max_in_flight)
        self.heartbeat = heartbeat
        self.ttl = ttl
        self.drain_timeout = drain_timeout
        self.tools: dict[str, Tool] = {}
        self.resources: dict[str, Resource] = {}
        self.prompts: dict[str, Prompt] = {}

    # -- declarations -------------------------------------------------------------------

    def tool(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        title: str | None = None,
        idempotent: bool = False,
        read_only: bool = False,
        timeout: float | None = None,
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Declares an async function as a tool; its parameters' type hints become the
        `inputSchema`. A parameter annotated `Context` receives the call's context.
        `idempotent=True` lets a call interrupted by a worker crash run again elsewhere."""

        def register(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            tool_name = name or fn.__name__
            if tool_name in self.tools:
                raise ValueError(f"tool {tool_name!r} is declared twice")
            model, context_param = _arguments_model(fn)
            annotations = {}
            if idempotent:
                annotations[c.IDEMPOTENT_HINT] = True
            if read_only:
                annotations["readOnlyHint"] = True
            self.tools[tool_name] = Tool(
                name=tool_name,
                handler=fn,
                model=model,
                context_param=context_param,
                decl=tool_decl(tool_name, fn, model, description, title, annotations or None),
                timeout_ms=int(timeout * 1000) if timeout is not None else None,
            )
            return fn

        return register

    def resource(
        self, uri: str, *, name: str | None = None, description: str | None = None, mime_type: str = "text/plain"
    ) -> Callable[[Callable[[str], Awaitable[Any]]], Callable[[str], Awaitable[Any]]]:
        """Declares an async function `(uri) -> str | bytes` serving the resource at `uri`."""

        def register(fn: Callable[[str], Awaitable[Any]]) -> Callable[[str], Awaitable[Any]]:
            decl: dict[str, Any] = {"uri": uri, "name": name or fn.__name__, "mimeType": mime_type}
            if description:
                decl["description"] = description
            self.resources[uri] = Resource(uri=uri, handler=fn, decl=decl)
            return fn

        return register

    def prompt(
        self, name: str | None = None, *, description: str | None = None
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Declares an async function returning the prompt's text (or a `GetPromptResult`);
        its parameters are the prompt's arguments."""

        def register(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            prompt_name = name or fn.__name__
            model, _ = _arguments_model(fn)
            self.prompts[prompt_name] = Prompt(
                name=prompt_name, handler=fn, model=model, decl=prompt_decl(prompt_name, fn, model, description)
            )
            return fn

        return register

    def catalog_record(self) -> dict[str, Any]:
        tools = [t.entry() for _, t in sorted(self.tools.items())]
        resources = [r.decl for _, r in sorted(self.resources.items())]
        prompts = [pr.decl for _, pr in sorted(self.prompts.items())]
        return {
            "protocol": c.PROTOCOL_VERSION,
            "pool": self.pool,
            "digest": p.digest(tools, resources, prompts),
            "tools": tools,
            "resources": resources,
            "resource_templates": [],
            "prompts": prompts,
        }

    # -- running ------------------------------------------------------------------------

    async def run(self, nats: str | NatsOptions | None = None, *, stop: asyncio.Event | None = None) -> None:
        """Connects (`nats`: seed URLs, comma-separated, or `NatsOptions`; default: from the
        MCPBUS_NATS_* environment), registers, serves calls until `stop` is set (or
        SIGTERM/SIGINT), then drains: stops pulling, lets running calls finish up to
        `drain_timeout`, deregisters."""
        if not (self.tools or self.resources or self.prompts):
            raise ValueError("a worker needs at least one tool, resource or prompt")
        if isinstance(nats, NatsOptions):
            nats.validate()
            options = nats
        else:
            options = NatsOptions.from_settings(servers=nats) if nats else NatsOptions.from_env()
        stop = stop or _stop_on_signals()
        log.info("connecting to NATS at %s", ", ".join(redact_url(s) for s in options.servers))
        # Under NATS permissions a pool's workers may read only its inboxes (ADR 0013).
        if options.inbox_prefix is None:
            options = options.with_inbox_prefix(f"{c.WORKER_INBOX_PREFIX}{self.pool}")
        nc = await _nats.connect(**options.connect_kwargs(), name=f"mcpbus-worker-py/{self.pool}")
        # nats-py keeps the server's INFO only privately; without it there is nothing to check.
        options.check_connection(getattr(nc, "_server_info", None) or {"tls_required": True})
        js = nc.jetstream()
        await _ensure_calls(js, self.pool)
        workers = await _ensure_kv(
            js,
            c.WORKERS_BUCKET,
            c.WORKERS_HISTORY,
            c.WORKERS_MAX_AGE_SECONDS,
            c.WORKERS_MAX_BYTES,
            c.WORKERS_MAX_MSG_SIZE,
        )
        catalogs = await _ensure_kv(
            js,
            c.CATALOG_BUCKET,
            c.CATALOG_HISTORY,
            c.CATALOG_MAX_AGE_SECONDS,
            c.CATALOG_MAX_BYTES,
            c.CATALOG_MAX_MSG_SIZE,
        )
        catalog = self.catalog_record()
        registered_ms = await _pool_registered_ms(js, self.pool)
        record = {
            "protocol": c.PROTOCOL_VERSION,
            "pool": self.pool,
            "instance": self.instance,
            "catalog_digest": catalog["digest"],
            "heartbeat_ms": int(self.heartbeat * 1000),
            "ttl_ms": int(self.ttl * 1000),
            "max_in_flight": self.max_in_flight,
            "sdk": SDK,
            c.WORKER_REGISTERED_MS: registered_ms,
        }
        # The catalogue first: gateways list an instance once they have both.
        await catalogs.put(p.catalog_key(self.pool, catalog["digest"]), p.encode(catalog))
        await workers.put(p.worker_key(self.pool, self.instance), p.encode(record))
        log.info("worker registered: pool=%s instance=%s tools=%d", self.pool, self.instance, len(self.tools))
        service = await self._announce(nc)

        beating = asyncio.create_task(self._heartbeat(workers, catalogs, catalog, record, stop))
        running: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.max_in_flight)
        sub = await js.pull_subscribe_bind(durable=p.pool_consumer(self.pool), stream=c.CALLS_STREAM)
        try:
            while not stop.is_set():
                await slots.acquire()
                free = 1
                while free < self.max_in_flight and not slots.locked():
                    await slots.acquire()
                    free += 1
                try:
                    msgs = await sub.fetch(batch=free, timeout=PULL_WAIT_SECONDS)
                except NatsTimeout:
                    msgs = []
                except Exception as e:  # the connection is away; nats-py reconnects
                    log.warning("pull failed: %s", e)
                    msgs = []
                    await asyncio.sleep(1)
                for _ in range(free - len(msgs)):
                    slots.release()
                for msg in msgs:
                    task = asyncio.create_task(_Call(self, nc, js, msg).run())
                    running.add(task)
                    task.add_done_callback(lambda t: (running.discard(t), slots.release()))
        finally:
            log.info("draining: no new calls; waiting for %d running", len(running))
            if running:
                _, late = await asyncio.wait(running, timeout=self.drain_timeout)
                for task in late:
                    task.cancel()
            stop.set()
            await beating
            try:
                await asyncio.wait_for(workers.delete(p.worker_key(self.pool, self.instance)), timeout=5)
            except Exception as e:
                log.warning("deregistration failed; gateways will expire this worker: %s", e)
            if service is not None:
                try:
                    await service.stop()
                except Exception as e:
                    log.warning("stopping the service-API registration failed: %s", e)
            # Replies are already out (each was awaited); flush, then close without draining
            # the pull subscription, which would wait for a pull request that is not coming.
            try:
                await asyncio.wait_for(nc.flush(), timeout=5)
            finally:
                await nc.close()
            log.info("worker stopped")

    async def _announce(self, nc: Any) -> Any:
        """Registers with the NATS service API as `mcpbus-<pool>` (PROTOCOL section 4), so
        `nats micro ls` lists this replica. Optional: a failure only costs the visibility."""
        try:
            import nats.micro

            return await nats.micro.add_service(
                nc,
                name=p.service_name(self.pool),
                version=SDK_VERSION,
                description=f"mcpbus worker pool {self.pool}",
                metadata={"pool": self.pool, "instance": self.instance, "sdk": SDK},
            )
        except Exception as e:
            log.warning("cannot announce the worker to the NATS service API: %s", e)
            return None

    async def _heartbeat(self, workers: Any, catalogs: Any, catalog: dict, record: dict, stop: asyncio.Event) -> None:
        last_catalog = time.monotonic()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.heartbeat)
                return
            except asyncio.TimeoutError:
                pass
            try:
                if time.monotonic() - last_catalog > c.CATALOG_REFRESH_SECONDS:
                    await catalogs.put(p.catalog_key(self.pool, catalog["digest"]), p.encode(catalog))
                    last_catalog = time.monotonic()
                await workers.put(p.worker_key(self.pool, self.instance), p.encode(record))
            except Exception as e:
                log.warning("heartbeat failed; retrying: %s", e)


@dataclass
class _Outcome:
    event: dict[str, Any] | None


class _Call:
    """One call, from its message to its acknowledgement."""

    def __init__(self, worker: Worker, nc: Any, js: Any, msg: Any) -> None:
        self.worker = worker
        self.nc = nc
        self.js = js
        self.msg = msg
        self.instance = worker.instance
        self.request: dict[str, Any] = {}
        self.principal: Principal | None = None
        self.sent = 0
        self.cancelled = asyncio.Event()

    @property
    def wants_progress(self) -> bool:
        meta = (self.request.get("params") or {}).get("_meta") or {}
        return c.META_PROGRESS_TOKEN in meta

    async def send(self, event: dict[str, Any]) -> None:
        payload = p.encode(p.reply(self.request["call_id"], self.instance, event))
        subject = self.request["reply_to"]
        if not self.request.get("reply_durable"):
            await self.nc.publish(subject, payload)
            return
        # Stored replies let a client resume on another gateway: store each once.
        msg_id = p.durable_reply_id(self.request["call_id"], self.msg.metadata.num_delivered, self.sent)
        self.sent += 1
        for attempt in range(1, DURABLE_ATTEMPTS + 1):
            try:
                await self.js.publish(subject, payload, headers={c.HEADER_MSG_ID: msg_id})
                return
            except Exception as e:
                log.warning("storing a reply failed (attempt %d): %s", attempt, e)
                await asyncio.sleep(0.2 * attempt)

    async def run(self) -> None:
        try:
            self.request = json.loads(self.msg.data)
            if not isinstance(self.request, dict):
                raise ValueError("a call is a JSON object")
            self.principal = principal_of(self.request)
        except MalformedPrincipal as e:
            # As unreadable as bad JSON (PROTOCOL 5.2): never run a handler with a caller
            # half understood.
            log.warning("discarding a call with a malformed principal: %s", e)
            await self.msg.term()
            return
        except ValueError:
            log.warning("discarding an unreadable call")
            await self.msg.term()
            return
        refusal = self._refusal()
        if refusal is not None:
            await self.msg.term()
            await self.send(refusal)
            return
        await self.send({"type": c.REPLY_ACCEPTED})
        cancel = await self.nc.subscribe(p.cancel_subject(self.request, self.worker.pool))
        lease = asyncio.create_task(self._keep_lease())
        work = asyncio.create_task(self._work())
        cancelled = asyncio.create_task(cancel.next_msg(timeout=None))
        remaining = self.request["deadline_ms"] / 1000 - time.time()
        try:
            done, _ = await asyncio.wait({work, cancelled}, timeout=max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                outcome = work.result()
                if outcome.event is not None:
                    await self.send(outcome.event)
            else:
                # Cancelled by the client, or past the deadline: nobody waits for an answer.
                self.cancelled.set()
                work.cancel()
                log.info("call %s %s", self.request["call_id"], "cancelled" if cancelled in done else "past its deadline")
        finally:
            lease.cancel()
            cancelled.cancel()
            await cancel.unsubscribe()
        await self.msg.ack()

    def _refusal(self) -> dict[str, Any] | None:
        """What refuses the call before it runs, if anything (PROTOCOL 5.2, 5.3)."""
        if self.request.get("deadline_ms", 0) / 1000 <= time.time():
            return p.wire_error(
                c.INTERNAL_ERROR, "the call's deadline passed before a worker picked it up", {"reason": c.REASON_DEADLINE_PASSED}
            )
        if self.request.get("method") == c.METHOD_TOOLS_CALL:
            name = (self.request.get("params") or {}).get("name")
            tool = self.worker.tools.get(name)
            if tool is None:
                return p.wire_error(c.INVALID_PARAMS, f"Unknown tool: {name}")
            if self.msg.metadata.num_delivered > 1 and not tool.idempotent:
                return p.wire_error(
                    c.INTERNAL_ERROR,
                    f"the worker running tool {name!r} stopped before answering; the tool is not idempotent, so it was not run again",
                    {"reason": c.REASON_WORKER_LOST, "tool": name},
                )
        return None

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(c.POOL_ACK_WAIT_SECONDS / 3)
            try:
                await self.msg.in_progress()
            except Exception:
                pass

    async def _work(self) -> _Outcome:
        params = self.request.get("params") or {}
        method = self.request.get("method")
        ctx = Context(self)
        try:
            if method == c.METHOD_TOOLS_CALL:
                tool = self.worker.tools[params.get("name")]
                return _Outcome({"type": c.REPLY_RESULT, "result": await tool.call(ctx, params.get("arguments"))})
            if method == c.METHOD_RESOURCES_READ:
                uri = params.get("uri", "")
                resource = self.worker.resources.get(uri)
                if resource is None:
                    code = c.RESOURCE_NOT_FOUND if self.request.get("lane") == c.LANE_SESSION else c.INVALID_PARAMS
                    return _Outcome(p.wire_error(code, f"Resource not found: {uri}", {"uri": uri}))
                return _Outcome({"type": c.REPLY_RESULT, "result": await resource.read(ctx, uri)})
            if method == c.METHOD_PROMPTS_GET:
                prompt = self.worker.prompts.get(params.get("name"))
                if prompt is None:
                    return _Outcome(p.wire_error(c.INVALID_PARAMS, f"Unknown prompt: {params.get('name')}"))
                return _Outcome({"type": c.REPLY_RESULT, "result": await prompt.get(params.get("arguments") or {})})
            if method == c.METHOD_COMPLETION_COMPLETE:
                return _Outcome({"type": c.REPLY_RESULT, "result": {"completion": {"values": [], "total": 0, "hasMore": False}}})
            return _Outcome(p.wire_error(c.METHOD_NOT_FOUND, f"worker does not serve method {method!r}"))
        except ProtocolError as e:
            return _Outcome(p.wire_error(e.code, e.message, e.data))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in handler code: report it, keep the worker up
            log.exception("handler failed")
            message = f"the worker failed with an internal error: {type(e).__name__}"
            if method == c.METHOD_TOOLS_CALL:
                return _Outcome({"type": c.REPLY_RESULT, "result": tool_error(message)})
            return _Outcome(p.wire_error(c.INTERNAL_ERROR, message))


async def _ensure_calls(js: Any, pool: str) -> None:
    """The calls stream and the pool's consumer, created if missing (PROTOCOL section 3)."""
    try:
        await js.stream_info(c.CALLS_STREAM)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=c.CALLS_STREAM,
                description=c.CALLS_STREAM_DESCRIPTION,
                subjects=[c.CALLS_WILDCARD],
                retention=api.RetentionPolicy(c.CALLS_RETENTION),
                discard=api.DiscardPolicy(c.CALLS_DISCARD),
                max_msgs=c.CALLS_MAX_MESSAGES,
                max_age=c.CALLS_MAX_AGE_SECONDS,
                duplicate_window=c.CALLS_DEDUP_WINDOW_SECONDS,
                max_bytes=c.CALLS_MAX_BYTES,
                max_msg_size=c.CALLS_MAX_MSG_SIZE,
                storage=api.StorageType(c.CALLS_STORAGE),
            )
        )
    try:
        await js.consumer_info(c.CALLS_STREAM, p.pool_consumer(pool))
    except NotFoundError:
        await js.add_consumer(
            c.CALLS_STREAM,
            # Named as well as durable: the server is then asked on the subject that names
            # the consumer and its filter, which a pool's NATS permissions allow (ADR 0013).
            api.ConsumerConfig(
                name=p.pool_consumer(pool),
                durable_name=p.pool_consumer(pool),
                description=p.pool_consumer_description(pool),
                filter_subject=p.call_subject(pool),
                ack_policy=api.AckPolicy(c.POOL_ACK_POLICY),
                ack_wait=c.POOL_ACK_WAIT_SECONDS,
                max_deliver=c.POOL_MAX_DELIVER,
                max_ack_pending=c.POOL_MAX_ACK_PENDING,
            ),
        )


async def _ensure_kv(
    js: Any, bucket: str, history: int, max_age: float, max_bytes: int, max_msg_size: int
) -> Any:
    """Opens a KV bucket, declaring its stream first if it is missing (as PROTOCOL section 3
    spells it: the stream directly, which works on nats-server 2.9 too). An existing bucket
    keeps its limits: gateways own them (ADR 0007)."""
    try:
        await js.stream_info(p.kv_stream(bucket))
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=p.kv_stream(bucket),
                subjects=[p.kv_subjects(bucket)],
                max_msgs_per_subject=history,
                max_age=max_age,
                max_bytes=max_bytes,
                max_msg_size=max_msg_size,
                allow_rollup_hdrs=c.KV_ALLOW_ROLLUP,
                deny_delete=c.KV_DENY_DELETE,
                allow_direct=c.KV_ALLOW_DIRECT,
                discard=api.DiscardPolicy(c.KV_DISCARD),
                storage=api.StorageType(c.KV_STORAGE),
            )
        )
    return await js.key_value(bucket)


async def _pool_registered_ms(js: Any, pool: str) -> int:
    """Since when `pool` has served: the `registered_ms` of its most recently written live
    record, else now (PROTOCOL section 4). A new replica inherits it, so every replica states
    the same time and a rolling upgrade keeps the names the pool registered first. Read by
    one direct get of the pool's records, the only way a worker may read the bucket (PROTOCOL
    section 9). Best effort: a record that cannot be read means now."""
    now = int(time.time() * 1000)
    records = f"{c.KV_SUBJECT_PREFIX}{c.WORKERS_BUCKET}.{pool}{c.KV_KEY_SEPARATOR}*"
    try:
        last = await js.get_msg(f"{c.KV_STREAM_PREFIX}{c.WORKERS_BUCKET}", subject=records, direct=True)
        record = json.loads(last.data or b"")  # a deleted key's marker has no body
        written = last.time or _header_time(last.headers or {})
        if written is None:
            return now
        live = int(written.timestamp() * 1000) + int(record.get("ttl_ms", 0)) >= now
        since = record.get(c.WORKER_REGISTERED_MS)
        if record.get("pool") == pool and live and since is not None:
            return min(int(since), now)
    except Exception as e:
        log.info("no live record of the pool to inherit its registration time from: %s", e)
    return now


def _header_time(headers: dict[str, Any]) -> Any:
    """The `Nats-Time-Stamp` of a direct-get answer, if any."""
    stamp = headers.get("Nats-Time-Stamp")
    if not stamp:
        return None
    # RFC 3339 with nanoseconds; Python parses microseconds.
    head, _, rest = stamp.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    return datetime.datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
