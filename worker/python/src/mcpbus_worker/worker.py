"""The worker: registration and heartbeats, pulling calls, running them, draining.

Follows bus-schema/PROTOCOL.md and the SDKs' agreed rules (issue 16): waits for the streams and
buckets the gateways declare (never creates one), creates or opens only its pool's consumer,
registers its catalogue then its liveness record, pulls calls at most `max_in_flight` at a time
and runs each (`call.py`), republishes the catalogue when it changes, and drains on SIGTERM or when the operator asks
(`mcpbusctl drain`).
Every name and limit of the bus comes from `contract.py`.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import signal
import time
import uuid
from typing import Any, Awaitable, Callable

import nats as _nats

from . import contract as c
from . import metrics
from . import protocol as p
from . import telemetry
from .announce import AnnounceError, announce
from .call import HANDLER_STOP_GRACE_SECONDS, _Call
from .catalogue import Catalogue
from .connection import NatsOptions, redact_url
from .startup import open_pool_consumer, wait_for_streams

#: Where the worker serves its own metrics (`host:port`) when `metrics_port` is not given; the
#: same variable as `mcpbus-worker --metrics-listen` (not a bus setting: not in `contract.py`).
ENV_METRICS_LISTEN = "MCPBUS_WORKER_METRICS_LISTEN"

log = logging.getLogger("mcpbus_worker")

#: How long one pull request stays open on the server (`expires`): a drain waits at most
#: this long for the last one to end, running whatever it still delivers.
PULL_EXPIRES_SECONDS = 5.0
#: How much longer than `expires` a pull is waited for when the server's end-of-request
#: status does not come (a lost connection).
PULL_GRACE_SECONDS = 1.0
#: This SDK's version, as the worker record and the NATS service API show it.
SDK_VERSION = "0.2.0"
SDK = f"mcpbus-python/{SDK_VERSION}"

__all__ = ["Worker", "_Call"]


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
        metrics_port: int | None = None,
    ) -> None:
        self.pool = pool
        #: Unique within the pool: two live processes with one name overwrite each other.
        self.instance = instance or uuid.uuid4().hex[:12]
        self.max_in_flight = max(1, max_in_flight)
        self.heartbeat = heartbeat
        #: At least two beats, so that one late beat does not drop the instance.
        self.ttl = max(ttl, 2 * heartbeat)
        self.drain_timeout = drain_timeout
        #: Where `/metrics` is served (127.0.0.1), with prometheus_client; None: at
        #: MCPBUS_WORKER_METRICS_LISTEN (`host:port`) if set, else nowhere.
        self.metrics_port = metrics_port
        #: The bus connection while running (for `announce`).
        self._nc: Any = None
        #: What is served; changeable while running (PROTOCOL section 9).
        self.catalogue = Catalogue()

    @property
    def tools(self) -> dict[str, Any]:
        return self.catalogue.tools

    @property
    def resources(self) -> dict[str, Any]:
        return self.catalogue.resources

    @property
    def prompts(self) -> dict[str, Any]:
        return self.catalogue.prompts

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
        `idempotent=True` lets a call interrupted by a worker crash run again elsewhere.
        (`worker.catalogue.add_tool` adds one while running.)"""

        def register(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            tool_name = name or fn.__name__
            if tool_name in self.catalogue.tools:
                raise ValueError(f"tool {tool_name!r} is declared twice")
            self.catalogue.add_tool(
                fn, tool_name, description=description, title=title, idempotent=idempotent,
                read_only=read_only, timeout=timeout,
            )
            return fn

        return register

    def resource(
        self, uri: str, *, name: str | None = None, description: str | None = None, mime_type: str = "text/plain"
    ) -> Callable[[Callable[[str], Awaitable[Any]]], Callable[[str], Awaitable[Any]]]:
        """Declares an async function `(uri) -> str | bytes` serving the resource at `uri`."""

        def register(fn: Callable[[str], Awaitable[Any]]) -> Callable[[str], Awaitable[Any]]:
            self.catalogue.add_resource(fn, uri, name=name, description=description, mime_type=mime_type)
            return fn

        return register

    def prompt(
        self, name: str | None = None, *, description: str | None = None
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Declares an async function returning the prompt's text (or a `GetPromptResult`);
        its parameters are the prompt's arguments."""

        def register(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            self.catalogue.add_prompt(fn, name, description=description)
            return fn

        return register

    def catalog_record(self) -> dict[str, Any]:
        return self.catalogue.record(self.pool)

    # -- running ------------------------------------------------------------------------

    async def run(self, nats: str | NatsOptions | None = None, *, stop: asyncio.Event | None = None) -> None:
        """Connects (`nats`: seed URLs, comma-separated, or `NatsOptions`; default: from the
        MCPBUS_NATS_* environment), waits for the bus's streams, registers, serves calls
        until `stop` is set (or SIGTERM/SIGINT, or a drain request on the bus), then drains: no new pull requests, running
        calls (and any the last pull still delivers) finish up to `drain_timeout` while the
        heartbeat goes on, those still running then are stopped and NAKed; deregisters."""
        if not self.catalogue:
            raise ValueError("a worker needs at least one tool, resource or prompt")
        if isinstance(nats, NatsOptions):
            nats.validate()
            options = nats
        else:
            options = NatsOptions.from_settings(servers=nats) if nats else NatsOptions.from_env()
        stop = stop or _stop_on_signals()
        # Spans over OTLP/HTTP when OTEL_* asks for them and the [otel] extra is installed.
        tracer_provider = telemetry.setup_from_env("mcpbus-worker-python")
        if self.metrics_port is not None:
            metrics.serve(self.metrics_port)
        elif os.environ.get(ENV_METRICS_LISTEN):
            host, _, port = os.environ[ENV_METRICS_LISTEN].rpartition(":")
            metrics.serve(int(port), host or "127.0.0.1")
        log.info("connecting to NATS at %s", ", ".join(redact_url(s) for s in options.servers))
        # Under NATS permissions a pool's workers may read only its inboxes (ADR 0013).
        if options.inbox_prefix is None:
            options = options.with_inbox_prefix(f"{c.WORKER_INBOX_PREFIX}{self.pool}")
        nc = await _nats.connect(**options.connect_kwargs(), name=f"mcpbus-worker-py/{self.pool}")
        # nats-py keeps the server's INFO only privately; without it there is nothing to check.
        options.check_connection(getattr(nc, "_server_info", None) or {"tls_required": True})
        js = nc.jetstream()
        self._nc = nc
        # A stop while waiting for the gateways' streams ends the wait.
        starting = asyncio.ensure_future(self._start(nc, js))
        await _first(asyncio.shield(starting), stop.wait())
        if not starting.done():
            starting.cancel()
            log.info("stopped before registering")
            await nc.close()
            return
        registration = starting.result()
        log.info("worker registered: pool=%s instance=%s tools=%d", self.pool, self.instance, len(self.tools))
        service = await self._announce(nc)
        drain_asked = await self._listen_for_drain(nc, stop)

        # Heartbeats go on through the drain, until the last call is settled.
        stop_beating = asyncio.Event()
        beating = asyncio.create_task(registration.keep_alive(stop_beating))
        running: dict[asyncio.Task[None], _Call] = {}
        try:
            await self._pull_until(nc, js, stop, running)
        finally:
            await drain_asked.close()
            await self._drain(running)
            if tracer_provider is not None:
                tracer_provider.shutdown()  # flushes the spans not yet exported
            stop_beating.set()
            await beating
            await registration.deregister()
            if service is not None:
                try:
                    await service.stop()
                except Exception as e:
                    log.warning("stopping the service-API registration failed: %s", e)
            # Replies are already out (each was awaited); flush, then close.
            try:
                await asyncio.wait_for(nc.flush(), timeout=5)
            except Exception as e:
                log.warning("flushing the connection failed: %s", e)
            finally:
                await nc.close()
            log.info("worker stopped")

    async def announce(self, level: str, data: Any, *, logger: str | None = None, id: str | None = None) -> None:
        """Sends a server-wide `notifications/message` to every session in the cluster
        (ADR 0023) and waits until a gateway stored it. Only while `run` is connected.
        Raises `AnnounceError` when refused or unconfirmed (retry with the same `id`)."""
        if self._nc is None:
            raise AnnounceError("the worker is not connected")
        await announce(self._nc, self.pool, level, data, logger=logger, id=id)

    async def _listen_for_drain(self, nc: Any, stop: asyncio.Event) -> "_DrainListener":
        """Sets `stop` when the operator asks this instance to drain over the bus
        (`mcpbusctl drain POOL/INSTANCE`, PROTOCOL 4.3): the same drain as SIGTERM."""
        subject = p.drain_subject(self.pool, self.instance)
        try:
            sub = await nc.subscribe(subject)
        except Exception as e:
            log.warning("cannot listen for drain requests (SIGTERM still drains): %s", e)
            sub = None
        return _DrainListener(sub, stop)

    async def _hold_alive_subscription(self, nc: Any) -> bool:
        """Subscribes to this instance's alive subject until the connection ends, before the
        record says so (PROTOCOL 4.2, ADR 0029): gateways probe it, and the server's "no
        responders" once the connection is gone removes the instance within about a second,
        not a TTL. Nothing is answered. Without it the TTL alone applies."""

        async def ignore(_msg: Any) -> None:
            return None

        try:
            await nc.subscribe(p.alive_subject(self.pool, self.instance), cb=ignore)
            await nc.flush()
            return True
        except Exception as e:
            log.warning("cannot hold the alive subscription (gateways will wait for the TTL): %s", e)
            return False

    async def _start(self, nc: Any, js: Any) -> "_Registration":
        """Waits for the streams and buckets, opens the pool's consumer, registers."""
        await wait_for_streams(
            nc, [c.CALLS_STREAM, p.kv_stream(c.WORKERS_BUCKET), p.kv_stream(c.CATALOG_BUCKET)]
        )
        await open_pool_consumer(nc, self.pool)
        registration = _Registration(
            self, await js.key_value(c.WORKERS_BUCKET), await js.key_value(c.CATALOG_BUCKET),
            await _pool_registered_ms(js, self.pool),
        )
        registration.record[c.WORKER_ALIVE_SUBSCRIPTION] = await self._hold_alive_subscription(nc)
        await registration.register()
        return registration

    async def _pull_until(self, nc: Any, js: Any, stop: asyncio.Event, running: dict[asyncio.Task[None], _Call]) -> None:
        """Pulls calls while `stop` is not set, asking for at most the free capacity. A pull
        request open when `stop` is set is followed to its end: everything it delivers runs
        as usual (never NAKed: a NAK would raise the delivery count and turn a call of a
        non-idempotent tool into worker_lost)."""
        slot_freed = asyncio.Event()
        # One subscription for every pull; each pull request gets its own reply subject
        # under it, so that the end of an older request is not taken for this one's.
        base = nc.new_inbox()
        deliveries = await nc.subscribe(f"{base}.*")
        pulls = 0

        def start(msg: Any) -> None:
            call = _Call(self, nc, js, msg)
            task = asyncio.create_task(call.run())
            running[task] = call
            task.add_done_callback(lambda t: (running.pop(t, None), slot_freed.set()))

        try:
            while not stop.is_set():
                free = self.max_in_flight - len(running)
                if free <= 0:
                    slot_freed.clear()
                    await _first(slot_freed.wait(), stop.wait())
                    continue
                pulls += 1
                reply = f"{base}.{pulls}"
                expires = int(PULL_EXPIRES_SECONDS * 1_000_000_000)
                try:
                    await nc.publish(p.pull_subject(self.pool), json.dumps({"batch": free, "expires": expires}).encode(), reply=reply)
                except Exception as e:  # the connection is away; nats-py reconnects
                    log.warning("pull request failed: %s", e)
                    await _first(asyncio.sleep(1), stop.wait())
                    continue
                await self._follow_pull(deliveries, reply, free, start)
            # Anything an older pull delivered meanwhile runs too.
            while True:
                try:
                    msg = await deliveries.next_msg(timeout=0.05)
                except Exception:
                    break
                if not _status(msg):
                    start(msg)
        finally:
            try:
                await deliveries.unsubscribe()
            except Exception:
                pass

    async def _follow_pull(self, deliveries: Any, reply: str, batch: int, start: Callable[[Any], None]) -> None:
        """Runs what one pull request delivers, until it has delivered `batch` calls or the
        server ends it (its `expires`, or a status such as a consumer gone)."""
        until = time.monotonic() + PULL_EXPIRES_SECONDS + PULL_GRACE_SECONDS
        got = 0
        while got < batch:
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                msg = await deliveries.next_msg(timeout=left)
            except Exception:  # nats-py's timeout; or the connection closing
                return
            status = _status(msg)
            if status is None:
                got += 1
                start(msg)
            elif status == "100":  # idle heartbeat or flow control: the request goes on
                continue
            elif msg.subject == reply:
                if status not in ("404", "408"):
                    log.warning("pull request ended: %s %s", status, (msg.headers or {}).get("Description", ""))
                return

    async def _drain(self, running: dict[asyncio.Task[None], _Call]) -> None:
        """Waits for running calls up to `drain_timeout`; then stops the rest, whose calls
        are NAKed (another replica reruns them if idempotent, else answers worker_lost)."""
        log.info("draining: no new calls; waiting for %d running", len(running))
        if not running:
            return
        _, late = await asyncio.wait(set(running), timeout=self.drain_timeout)
        if not late:
            return
        log.warning("drain timeout passed; stopping %d calls, which are left to other replicas", len(late))
        for task in late:
            call = running.get(task)
            if call is not None:
                call.abandon()
        await asyncio.wait(late, timeout=HANDLER_STOP_GRACE_SECONDS + 1)

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
                metadata={
                    "pool": self.pool,
                    "instance": self.instance,
                    "max_in_flight": str(self.max_in_flight),
                    "sdk": SDK,
                },
            )
        except Exception as e:
            log.warning("cannot announce the worker to the NATS service API: %s", e)
            return None


class _Registration:
    """The worker's catalogue and liveness record in the two buckets. A changed catalogue is
    stored under its new digest first, then a beat names it; a failure is retried on the next
    beat, and no beat names a catalogue that is not stored."""

    def __init__(self, worker: Worker, workers: Any, catalogs: Any, registered_ms: int) -> None:
        self.worker = worker
        self.workers = workers
        self.catalogs = catalogs
        self.catalogue = worker.catalogue
        self.catalog = self.catalogue.record(worker.pool)
        self.record = {
            "protocol": c.PROTOCOL_VERSION,
            "pool": worker.pool,
            "instance": worker.instance,
            "catalog_digest": self.catalog["digest"],
            "heartbeat_ms": int(worker.heartbeat * 1000),
            "ttl_ms": int(worker.ttl * 1000),
            "max_in_flight": worker.max_in_flight,
            "sdk": SDK,
            c.WORKER_REGISTERED_MS: registered_ms,
        }
        self.key = p.worker_key(worker.pool, worker.instance)
        #: A changed catalogue not stored yet.
        self.pending = False
        self.catalogue.changed.clear()

    async def register(self) -> None:
        """The catalogue first: gateways list an instance once they have both."""
        await self.catalogs.put(p.catalog_key(self.worker.pool, self.catalog["digest"]), p.encode(self.catalog))
        await self.beat()

    async def beat(self) -> None:
        await self.workers.put(self.key, p.encode(self.record))

    async def republish(self) -> None:
        """Switches to the catalogue served now, if it changed."""
        record = self.catalogue.record(self.worker.pool)
        if record["digest"] != self.catalog["digest"]:
            self.catalog = record
            self.record["catalog_digest"] = record["digest"]
            self.pending = True
        if not self.pending:
            return
        try:
            await self.register()
            self.pending = False
            log.info("catalogue changed; republished as %s", record["digest"])
        except Exception as e:
            log.warning("publishing the changed catalogue failed; retrying at the next beat: %s", e)

    async def keep_alive(self, stop: asyncio.Event) -> None:
        """Beats every `heartbeat` until `stop`; republishes the catalogue when it changes
        and re-puts it hourly so that it never ages out."""
        last_refresh = time.monotonic()
        next_beat = time.monotonic() + self.worker.heartbeat
        while not stop.is_set():
            left = max(0.0, next_beat - time.monotonic())
            woke = await _first(stop.wait(), self.catalogue.changed.wait(), timeout=left)
            if stop.is_set():
                return
            if woke:
                self.catalogue.changed.clear()
                await self.republish()
                continue
            next_beat = time.monotonic() + self.worker.heartbeat
            try:
                if self.pending:
                    await self.republish()
                    continue
                if time.monotonic() - last_refresh > c.CATALOG_REFRESH_SECONDS:
                    await self.catalogs.put(p.catalog_key(self.worker.pool, self.catalog["digest"]), p.encode(self.catalog))
                    last_refresh = time.monotonic()
                await self.beat()
            except Exception as e:
                log.warning("heartbeat failed; retrying: %s", e)

    async def deregister(self) -> None:
        try:
            await asyncio.wait_for(self.workers.delete(self.key), timeout=5)
        except Exception as e:
            log.warning("deregistration failed; gateways will expire this worker: %s", e)


class _DrainListener:
    """Waits for one message on the instance's drain subject, then sets `stop`."""

    def __init__(self, sub: Any, stop: asyncio.Event) -> None:
        self.sub = sub
        self.task = asyncio.create_task(self._wait(stop)) if sub is not None else None

    async def _wait(self, stop: asyncio.Event) -> None:
        try:
            await self.sub.next_msg(timeout=None)
        except Exception:
            return  # the connection closed: that is no request to drain
        log.info("the operator asked this instance to drain")
        stop.set()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception as e:
                log.debug("unsubscribing from drain requests failed: %s", e)


async def _first(*aws: Awaitable[Any], timeout: float | None = None) -> bool:
    """Waits for the first of `aws` (or `timeout`); cancels the rest. Whether one finished."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    finally:
        for t in tasks:
            t.cancel()


def _status(msg: Any) -> str | None:
    """The status of a JetStream control message (`404`, `408`, `409`, `100`), else None."""
    headers = getattr(msg, "headers", None) or {}
    status = headers.get("Status")
    return str(status) if status else None


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
