"""Stand-ins for the bus in unit tests: a JetStream message, core NATS and JetStream publish,
all writing to one log so that tests can check the order of replies and acknowledgements.
(The real bus is in tests/tests/python_worker.rs.)"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from types import SimpleNamespace
from typing import Any

from mcpbus_worker import contract as c

# The SDK logs every refusal and failed store; tests check what it does instead.
logging.getLogger("mcpbus_worker").setLevel(logging.CRITICAL)


def call(name: str = "echo", arguments: Any = None, **fields: Any) -> dict[str, Any]:
    """A `tools/call` as a gateway publishes it; `fields` override or add fields."""
    request = {
        "protocol": c.PROTOCOL_VERSION,
        "call_id": "c1",
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments if arguments is not None else {}},
        "reply_to": "mcpbus.v2.reply.t.gw.c1",
        "deadline_ms": int(time.time() * 1000) + 30_000,
        "lane": "stateless",
        "protocol_version": "2026-07-28",
        "client_capabilities": {},
    }
    request.update(fields)
    return request


class Log(list):
    """What happened, in order: ("publish", subject, body), ("store", subject, body, msg_id),
    ("subscribe", subject), ("ack" | "term" | "nak",). `headers` holds each publish's and
    store's headers, in the same order."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict[str, str]] = []

    def replies(self) -> list[dict[str, Any]]:
        return [e[2] for e in self if e[0] in ("publish", "store")]

    def settled(self) -> list[str]:
        return [e[0] for e in self if e[0] in ("ack", "term", "nak")]


class FakeMsg:
    def __init__(self, log: Log, body: Any, *, delivered: int = 1, raw: bytes | None = None) -> None:
        self.log = log
        self.data = raw if raw is not None else json.dumps(body).encode()
        self.metadata = SimpleNamespace(num_delivered=delivered)
        self.headers = None

    async def ack(self) -> None:
        self.log.append(("ack",))

    async def term(self) -> None:
        self.log.append(("term",))

    async def nak(self) -> None:
        self.log.append(("nak",))

    async def in_progress(self) -> None:
        pass


class FakeSub:
    def __init__(self, nc: "FakeNats", subject: str) -> None:
        self.nc = nc
        self.subject = subject
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def next_msg(self, timeout: float | None = None) -> Any:
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def unsubscribe(self) -> None:
        self.nc.subs.pop(self.subject, None)


class FakeNats:
    """Core NATS: records publishes and subscriptions; `answer(subject, body)` delivers a
    message to a subscription; `on_publish` may react to a publish (a client answering)."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.subs: dict[str, FakeSub] = {}
        self.on_publish: Any = None

    async def publish(self, subject: str, payload: bytes = b"", reply: str = "", headers: Any = None) -> None:
        body = json.loads(payload) if payload else None
        self.log.append(("publish", subject, body))
        self.log.headers.append(dict(headers or {}))
        if self.on_publish is not None:
            await self.on_publish(subject, body)

    async def subscribe(self, subject: str) -> FakeSub:
        self.log.append(("subscribe", subject))
        sub = FakeSub(self, subject)
        self.subs[subject] = sub
        return sub

    def deliver(self, subject: str, body: Any) -> None:
        self.subs[subject].queue.put_nowait(SimpleNamespace(data=json.dumps(body).encode(), headers=None, subject=subject))


class FakeJetStream:
    """JetStream publish that fails the first `failures` attempts (all, if negative)."""

    def __init__(self, log: Log, failures: int = 0) -> None:
        self.log = log
        self.failures = failures
        self.attempts: list[str] = []

    async def publish(self, subject: str, payload: bytes, timeout: float | None = None, headers: Any = None) -> Any:
        msg_id = headers[c.HEADER_MSG_ID]
        self.attempts.append(msg_id)
        if self.failures != 0:
            self.failures -= 1
            raise TimeoutError("no ack")
        self.log.append(("store", subject, json.loads(payload), msg_id))
        self.log.headers.append(dict(headers))
        return SimpleNamespace(seq=1)
