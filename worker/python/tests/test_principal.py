"""The caller a call carries: read strictly from the bus, handed to handlers as `ctx.principal()`.

Unit tests with a stand-in for the NATS message and connection (the real bus is in
tests/tests/worker_principal.rs). Run:
`PYTHONPATH=worker/python/src .venv/bin/python -m unittest discover -s worker/python/tests`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import unittest
from types import SimpleNamespace
from typing import Any

from mcpbus_worker import Context, Principal, Worker
from mcpbus_worker import contract as c
from mcpbus_worker.principal import MalformedPrincipal, principal_of
from mcpbus_worker.worker import _Call

ALICE = {
    "issuer": "https://issuer.test",
    "subject": "alice",
    "scopes": ["tools:read", "tools:call"],
    "claims": {"groups": ["ops"]},
}


def call(principal: Any = None, *, name: str = "who") -> dict[str, Any]:
    """A `tools/call` as a gateway publishes it; `principal` left out when None."""
    request = {
        "protocol": c.PROTOCOL_VERSION,
        "call_id": "c1",
        "method": "tools/call",
        "params": {"name": name, "arguments": {}},
        "reply_to": "mcpbus.v2.reply.demo.gw.c1",
        "deadline_ms": int(time.time() * 1000) + 30_000,
        "lane": "stateless",
        "protocol_version": "2026-07-28",
        "client_capabilities": {},
    }
    if principal is not None:
        request["principal"] = principal
    return request


class ReadingThePrincipal(unittest.TestCase):
    def test_every_field_is_read(self) -> None:
        p = principal_of(call(ALICE))
        self.assertEqual(
            p, Principal("https://issuer.test", "alice", ("tools:read", "tools:call"), {"groups": ["ops"]})
        )
        self.assertTrue(p.has_scope("tools:call"))
        self.assertFalse(p.has_scope("admin"))

    def test_scopes_and_claims_may_be_left_out(self) -> None:
        p = principal_of(call({"issuer": "https://issuer.test", "subject": "svc"}))
        self.assertEqual((p.scopes, p.claims), ((), {}))

    def test_without_auth_there_is_none(self) -> None:
        self.assertIsNone(principal_of(call()))
        self.assertIsNone(principal_of({**call(), "principal": None}))

    def test_unknown_fields_are_ignored(self) -> None:
        p = principal_of(call({**ALICE, "added_in_a_later_version": 1}))
        self.assertEqual(p.subject, "alice")

    def test_a_malformed_principal_is_refused(self) -> None:
        for bad in [
            "alice",
            ["alice"],
            {"subject": "alice"},
            {"issuer": "https://issuer.test"},
            {"issuer": "https://issuer.test", "subject": 7},
            {"issuer": "https://issuer.test", "subject": "a", "scopes": "tools:call"},
            {"issuer": "https://issuer.test", "subject": "a", "scopes": [1]},
            {"issuer": "https://issuer.test", "subject": "a", "scopes": None},
            {"issuer": "https://issuer.test", "subject": "a", "claims": []},
            {"issuer": "https://issuer.test", "subject": "a", "claims": None},
        ]:
            with self.subTest(bad=bad), self.assertRaises(MalformedPrincipal):
                principal_of(call(bad))

    def test_a_handler_cannot_change_it(self) -> None:
        p = principal_of(call(ALICE))
        with self.assertRaises(dataclasses.FrozenInstanceError):
            p.subject = "mallory"  # type: ignore[misc]
        self.assertEqual(hash(p), hash(principal_of(call(ALICE))))

    def test_claims_are_a_copy(self) -> None:
        request = call(ALICE)
        principal_of(request).claims["groups"] = ["admins"]
        self.assertEqual(principal_of(request).claims, {"groups": ["ops"]})


class FakeMsg:
    """A JetStream message: the body and what the worker did with it."""

    def __init__(self, request: Any) -> None:
        self.data = json.dumps(request).encode()
        self.metadata = SimpleNamespace(num_delivered=1)
        self.done: list[str] = []

    async def term(self) -> None:
        self.done.append("term")

    async def ack(self) -> None:
        self.done.append("ack")

    async def in_progress(self) -> None:
        pass


class FakeNats:
    """Core NATS: records publishes; a cancellation subscription that never fires."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.published.append((subject, json.loads(payload)))

    async def subscribe(self, subject: str) -> Any:
        async def next_msg(timeout: Any = None) -> None:
            await asyncio.Event().wait()

        async def unsubscribe() -> None:
            pass

        return SimpleNamespace(next_msg=next_msg, unsubscribe=unsubscribe)


def worker_reporting_the_caller() -> Worker:
    worker = Worker("t", instance="w1")

    @worker.tool()
    async def who(ctx: Context) -> dict:
        p = ctx.principal()
        return {"caller": None if p is None else [p.subject, list(p.scopes)]}

    return worker


def run_call(request: Any) -> tuple[FakeMsg, FakeNats]:
    msg, nc = FakeMsg(request), FakeNats()
    asyncio.run(_Call(worker_reporting_the_caller(), nc, None, msg).run())
    return msg, nc


def result_of(nc: FakeNats) -> Any:
    results = [body["result"] for _, body in nc.published if body["type"] == "result"]
    assert len(results) == 1, nc.published
    return results[0]["structuredContent"]


class TheHandlerSeesTheCaller(unittest.TestCase):
    def test_the_principal_on_the_call_reaches_ctx_principal(self) -> None:
        msg, nc = run_call(call(ALICE))
        self.assertEqual(result_of(nc), {"caller": ["alice", ["tools:read", "tools:call"]]})
        self.assertEqual(msg.done, ["ack"])

    def test_without_one_ctx_principal_is_none(self) -> None:
        msg, nc = run_call(call())
        self.assertEqual(result_of(nc), {"caller": None})

    def test_a_malformed_principal_is_a_malformed_call(self) -> None:
        # Answered malformed_call, then terminated, without running: a handler never runs
        # with a caller half understood.
        msg, nc = run_call(call({"issuer": "https://issuer.test", "subject": ["alice"]}))
        self.assertEqual(msg.done, ["term"])
        [(_, reply)] = nc.published
        self.assertEqual((reply["type"], reply["error"]["code"]), ("error", c.INTERNAL_ERROR))
        self.assertEqual(reply["error"]["data"], {"reason": c.REASON_MALFORMED_CALL})

    def test_a_body_that_is_not_an_object_is_an_unreadable_call(self) -> None:
        msg, nc = run_call(["not", "a", "call"])
        self.assertEqual((msg.done, nc.published), (["term"], []))


if __name__ == "__main__":
    unittest.main()
