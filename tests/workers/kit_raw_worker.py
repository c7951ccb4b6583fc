"""A worker written from the protocol alone, on raw nats-py, for the worker kit's own tests.

It serves the kit tools of PROTOCOL.md §10 (all but the optional kit_ask) and
follows the outcome table of section A, so that `mcpbusctl worker-check` passes it. With
`--bug NAME` it breaks one rule on purpose, and the kit must name the check that catches it:

  no-heartbeat        the worker record is put once, never again          -> heartbeat
  wrong-reply-index   durable reply ids count n from 1 instead of 0       -> call_session
  nak-on-drain        SIGTERM NAKs the running calls instead of finishing -> drain

The bugs live here, in a test-only worker, never behind switches in an SDK. It relies on
the kit for the topology: the calls stream, the buckets and the pool's consumer exist before
it starts (the kit creates them), so it only binds to them. Connection settings come from
the environment the kit sets: MCPBUS_NATS_URL (credentials may be in the URL),
MCPBUS_NATS_USER/MCPBUS_NATS_PASSWORD, MCPBUS_POOL, MCPBUS_INSTANCE.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

import nats

PROTOCOL = 2
MAX_IN_FLIGHT = 4
HEARTBEAT_MS = 1000
TTL_MS = 3000
PULL_EXPIRES_S = 1.0
DRAIN_TIMEOUT_S = 30.0
INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, RESOURCE_NOT_FOUND = -32603, -32602, -32601, -32002


def now_ms():
    return int(time.time() * 1000)


def text_result(text, is_error=False):
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


class ToolError(Exception):
    pass


def string_arg(args, name):
    value = args.get(name)
    if not isinstance(value, str):
        raise ToolError(f"invalid arguments: {name} must be a string")
    return value


def int_arg(args, name):
    value = args.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ToolError(f"invalid arguments: {name} must be an integer")
    return value


async def kit_echo(call, args):
    return text_result(string_arg(args, "text"))


async def kit_progress(call, args):
    steps, delay = int_arg(args, "steps"), int_arg(args, "delay_ms")
    for i in range(1, steps + 1):
        if call.progress_token is not None:
            await call.send({"type": "progress", "progress": i, "total": steps})
        await asyncio.sleep(delay / 1000)
    await call.send({"type": "log", "level": "info", "logger": "kit", "data": "progress done"})
    return text_result(f"done {steps}")


async def kit_slow(call, args):
    ms = int_arg(args, "ms")
    await asyncio.sleep(ms / 1000)
    return text_result(f"slept {ms}")


async def kit_fail(call, args):
    raise ToolError(string_arg(args, "message"))


def schema(**props):
    return {"type": "object", "properties": props, "required": list(props)}


STRING, INTEGER = {"type": "string"}, {"type": "integer"}
TOOLS = {
    "kit_echo": (kit_echo, schema(text=STRING), True),
    "kit_once": (kit_echo, schema(text=STRING), False),
    "kit_progress": (kit_progress, schema(steps=INTEGER, delay_ms=INTEGER), True),
    "kit_slow": (kit_slow, schema(ms=INTEGER), False),
    "kit_fail": (kit_fail, schema(message=STRING), True),
}


def malformed(body):
    """Why a readable call is malformed, or None."""
    if not isinstance(body.get("method"), str):
        return "method"
    deadline = body.get("deadline_ms")
    if not isinstance(deadline, int) or isinstance(deadline, bool):
        return "deadline_ms"
    if body.get("lane") not in ("session", "stateless"):
        return "lane"
    if not isinstance(body.get("params", {}), (dict, type(None))):
        return "params"
    principal = body.get("principal")
    if principal is not None:
        ok = (
            isinstance(principal, dict)
            and isinstance(principal.get("issuer"), str)
            and isinstance(principal.get("subject"), str)
            and isinstance(principal.get("scopes", []), list)
            and all(isinstance(s, str) for s in principal.get("scopes", []))
            and isinstance(principal.get("claims", {}), dict)
        )
        if not ok:
            return "principal"
    return None


class Call:
    """One delivery of one call: its replies, numbered, and its settlement."""

    def __init__(self, worker, msg, body, delivered):
        self.worker, self.msg, self.delivered = worker, msg, delivered
        self.call_id, self.reply_to = body["call_id"], body["reply_to"]
        self.durable = body.get("reply_durable") is True
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        self.params = params
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        self.progress_token = meta.get("progressToken")
        self.sent = 0 if worker.bug != "wrong-reply-index" else 1

    async def send(self, event):
        body = json.dumps({"protocol": PROTOCOL, "call_id": self.call_id,
                           "instance": self.worker.instance, **event}).encode()
        if self.durable:
            msg_id = f"{self.call_id}:{self.delivered}:{self.sent}"
            await self.worker.js.publish(self.reply_to, body, timeout=5.0, headers={"Nats-Msg-Id": msg_id})
        else:
            await self.worker.nc.publish(self.reply_to, body)
        self.sent += 1

    async def refuse(self, code, reason, message, **data):
        await self.send({"type": "error", "error": {"code": code, "message": message,
                                                      "data": {"reason": reason, **data}}})
        await self.worker.settle(self.msg, b"+TERM")


class Worker:
    def __init__(self, bug):
        self.bug = bug
        self.pool = os.environ["MCPBUS_POOL"]
        self.instance = os.environ["MCPBUS_INSTANCE"]
        self.in_flight = 0
        self.running = {}  # call_id -> (task, msg)
        self.stopping = asyncio.Event()
        self.nakked = set()  # acks subjects of calls NAKed on drain (the nak-on-drain bug)

    async def settle(self, msg, kind):
        await self.nc.publish(msg.reply, kind)
        await self.nc.flush()

    async def start(self):
        options = {"inbox_prefix": f"_INBOX.pool.{self.pool}"}
        if os.environ.get("MCPBUS_NATS_USER"):
            options["user"] = os.environ["MCPBUS_NATS_USER"]
            options["password"] = os.environ.get("MCPBUS_NATS_PASSWORD", "")
        self.nc = await nats.connect(os.environ["MCPBUS_NATS_URL"], **options)
        self.js = self.nc.jetstream()
        catalog = {"protocol": PROTOCOL, "pool": self.pool, "digest": "rawkit1", "tools": [
            {"tool": {"name": name, "inputSchema": schema_, "annotations": {"idempotentHint": idem}}}
            for name, (_, schema_, idem) in TOOLS.items()]}
        await self.nc.publish(f"$KV.mcpbus-catalog.{self.pool}.rawkit1", json.dumps(catalog).encode())
        self.record = json.dumps({"protocol": PROTOCOL, "pool": self.pool, "instance": self.instance,
                                  "catalog_digest": "rawkit1", "heartbeat_ms": HEARTBEAT_MS,
                                  "ttl_ms": TTL_MS, "max_in_flight": MAX_IN_FLIGHT,
                                  "sdk": "kit-raw-worker/0", "registered_ms": now_ms()}).encode()
        await self.beat()
        self.inbox = f"_INBOX.pool.{self.pool}.pull.{self.instance}"
        self.pulled = 0
        await self.nc.subscribe(self.inbox, cb=self.on_message)

    async def beat(self):
        await self.nc.publish(f"$KV.mcpbus-workers.{self.pool}.{self.instance}", self.record)
        await self.nc.flush()

    async def heartbeats(self):
        if self.bug == "no-heartbeat":
            return
        while True:
            await asyncio.sleep(HEARTBEAT_MS / 1000)
            await self.beat()

    async def pull(self):
        """Asks for at most the free capacity, one pull request at a time."""
        subject = f"$JS.API.CONSUMER.MSG.NEXT.MCPBUS_CALLS.mcpbus-pool-{self.pool}"
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            free = MAX_IN_FLIGHT - self.in_flight
            if free <= 0:
                await asyncio.sleep(0.02)
                continue
            self.pulled = 0
            request = {"batch": free, "expires": int(PULL_EXPIRES_S * 1e9)}
            await self.nc.publish(subject, json.dumps(request).encode(), reply=self.inbox)
            until = loop.time() + PULL_EXPIRES_S + 0.2
            while loop.time() < until and self.pulled < free:
                await asyncio.sleep(0.02)

    async def on_message(self, msg):
        if not msg.reply or not msg.reply.startswith("$JS.ACK."):
            return  # a pull status (no messages, expired)
        self.pulled += 1
        self.in_flight += 1
        task = asyncio.create_task(self.handle(msg))
        task.add_done_callback(lambda _: setattr(self, "in_flight", self.in_flight - 1))

    async def handle(self, msg):
        tokens = msg.reply.split(".")
        delivered = int(tokens[4] if len(tokens) == 9 else tokens[6])
        try:
            body = json.loads(msg.data)
        except ValueError:
            return await self.settle(msg, b"+TERM")
        if not isinstance(body, dict) or not isinstance(body.get("call_id"), str) \
                or not isinstance(body.get("reply_to"), str):
            return await self.settle(msg, b"+TERM")
        call = Call(self, msg, body, delivered)
        protocol = body.get("protocol", PROTOCOL)
        if not isinstance(protocol, int) or isinstance(protocol, bool):
            return await call.refuse(INTERNAL_ERROR, "malformed_call", "malformed call: protocol")
        if protocol != PROTOCOL:
            return await call.refuse(INTERNAL_ERROR, "unsupported_protocol", "unsupported protocol",
                                     protocol=protocol)
        if (field := malformed(body)) is not None:
            return await call.refuse(INTERNAL_ERROR, "malformed_call", f"malformed call: {field}")
        if body["deadline_ms"] <= now_ms():
            return await call.refuse(INTERNAL_ERROR, "deadline_passed", "deadline passed")
        method = body["method"]
        if method == "prompts/get":
            return await call.refuse(INVALID_PARAMS, "unknown_prompt", "unknown prompt",
                                     prompt=call.params.get("name"))
        if method == "resources/read":
            code = RESOURCE_NOT_FOUND if body["lane"] == "session" else INVALID_PARAMS
            return await call.refuse(code, "unknown_resource", "unknown resource",
                                     uri=call.params.get("uri"))
        if method != "tools/call":
            return await call.refuse(METHOD_NOT_FOUND, "unknown_method", "unknown method", method=method)
        name = call.params.get("name")
        if name not in TOOLS:
            return await call.refuse(INVALID_PARAMS, "unknown_tool", f"unknown tool {name}", tool=name)
        handler, _, idempotent = TOOLS[name]
        if delivered > 1 and not idempotent:
            return await call.refuse(INTERNAL_ERROR, "worker_lost", "worker lost", tool=name)
        await self.run(call, body, handler)

    async def run(self, call, body, handler):
        await call.send({"type": "accepted"})
        cancelled = asyncio.Event()
        cancel_subject = body.get("cancel_on") or f"mcpbus.v2.cancel.{self.pool}.{call.call_id}"
        async def on_cancel(_msg):
            cancelled.set()

        sub = await self.nc.subscribe(cancel_subject, cb=on_cancel)
        args = call.params.get("arguments") if isinstance(call.params.get("arguments"), dict) else {}
        work = asyncio.create_task(handler(call, args))
        self.running[call.call_id] = (work, call.msg)
        stop = asyncio.create_task(cancelled.wait())
        left = max(0.0, (body["deadline_ms"] - now_ms()) / 1000)
        try:
            await asyncio.wait({work, stop}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            await sub.unsubscribe()
            self.running.pop(call.call_id, None)
        if not work.done() or work.cancelled():
            work.cancel()
            if call.msg.reply not in self.nakked:
                await self.settle(call.msg, b"+ACK")
            return
        try:
            result = work.result()
        except ToolError as e:
            result = text_result(str(e), True)
        await call.send({"type": "result", "result": result})
        await self.settle(call.msg, b"+ACK")

    async def drain(self):
        if self.bug == "nak-on-drain":
            for task, msg in list(self.running.values()):
                self.nakked.add(msg.reply)
                await self.settle(msg, b"-NAK")
                task.cancel()
        await asyncio.sleep(PULL_EXPIRES_S + 0.2)  # an open pull may still deliver: run it
        until = time.monotonic() + DRAIN_TIMEOUT_S
        while self.in_flight > 0 and time.monotonic() < until:
            await asyncio.sleep(0.02)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", choices=["no-heartbeat", "wrong-reply-index", "nak-on-drain"])
    bug = parser.parse_args().bug
    worker = Worker(bug)
    await worker.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stopping.set)
    beating = asyncio.create_task(worker.heartbeats())
    await worker.pull()
    await worker.drain()
    beating.cancel()
    await worker.nc.publish(f"$KV.mcpbus-workers.{worker.pool}.{worker.instance}", b"",
                            headers={"KV-Operation": "DEL"})
    await worker.nc.flush()
    await worker.nc.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
