"""The outcome table every SDK follows (issue 16): what a call gets, in which order, and how
its message is settled. Unit tests with the bus stood in for (`fakes.py`)."""

from __future__ import annotations

import asyncio
import time
import unittest
from typing import Any
from unittest import mock

from fakes import FakeJetStream, FakeMsg, FakeNats, Log, call

from mcpbus_worker import Context, ToolError, Worker
from mcpbus_worker import call as call_module
from mcpbus_worker import contract as c
from mcpbus_worker.worker import _Call


def worker() -> Worker:
    w = Worker("t", instance="w1")

    @w.tool(idempotent=True)
    async def echo(text: str) -> str:
        return text

    @w.tool()
    async def once(text: str) -> str:
        return text

    @w.tool()
    async def crash() -> str:
        raise RuntimeError("bug")

    @w.tool()
    async def fail() -> str:
        raise ToolError("nope")

    @w.tool(idempotent=True)
    async def chatty(ctx: Context) -> str:
        await ctx.log("info", "one")
        return "done"

    @w.prompt()
    async def broken() -> str:
        raise RuntimeError("bug")

    @w.prompt()
    async def needy(code: str) -> str:
        return code

    @w.resource("t://r")
    async def r(uri: str) -> str:
        return "text"

    return w


def run(body: Any = None, *, raw: bytes | None = None, delivered: int = 1, failures: int = 0, w: Worker | None = None) -> tuple[Log, FakeJetStream]:
    log = Log()
    js = FakeJetStream(log, failures)
    msg = FakeMsg(log, body, delivered=delivered, raw=raw)
    with (
        mock.patch.object(call_module, "DURABLE_FIRST_PAUSE_SECONDS", 0.001),
        mock.patch.object(call_module, "DURABLE_MAX_PAUSE_SECONDS", 0.002),
        mock.patch.object(call_module, "DURABLE_RETRY_SECONDS", 0.05),
    ):
        asyncio.run(_Call(w or worker(), FakeNats(log), js, msg).run())
    return log, js


def only_error(log: Log) -> dict[str, Any]:
    [reply] = log.replies()
    assert reply["type"] == "error", reply
    return reply["error"]


class UnreadableBodies(unittest.TestCase):
    def test_are_terminated_without_a_reply(self) -> None:
        bodies = [
            dict(raw=b"not json"),
            dict(raw=b"\xff\xfe"),
            dict(body=["a", "list"]),
            dict(body={k: v for k, v in call().items() if k != "call_id"}),
            dict(body={k: v for k, v in call().items() if k != "reply_to"}),
            dict(body=call(call_id=7)),
            dict(body=call(reply_to=None)),
        ]
        for given in bodies:
            with self.subTest(given=given):
                log, _ = run(**given)
                self.assertEqual(log, [("term",)])


class RefusedBeforeRunning(unittest.TestCase):
    def check(self, body: Any, code: int, data: dict[str, Any], **kw: Any) -> None:
        log, _ = run(body, **kw)
        error = only_error(log)
        self.assertEqual((error["code"], error.get("data")), (code, data))
        # The reply goes out before the TERM, and nothing runs (no `accepted`).
        self.assertEqual([e[0] for e in log], ["publish", "term"])

    def test_unknown_protocol(self) -> None:
        self.check(call(protocol=3, method=7), c.INTERNAL_ERROR, {"reason": "unsupported_protocol", "protocol": 3})

    def test_malformed_calls(self) -> None:
        bad = [
            {k: v for k, v in call().items() if k != "method"},
            {k: v for k, v in call().items() if k != "deadline_ms"},
            {k: v for k, v in call().items() if k != "lane"},
            call(deadline_ms="soon"),
            call(lane="carrier-pigeon"),
            call(params=[1]),
            call(reply_durable="yes"),
            call(protocol="2"),
            call(principal={"issuer": "i"}),
            call(principal="alice"),
        ]
        for body in bad:
            with self.subTest(body=body):
                self.check(body, c.INTERNAL_ERROR, {"reason": "malformed_call"})

    def test_deadline_passed(self) -> None:
        self.check(call(deadline_ms=int(time.time() * 1000) - 1), c.INTERNAL_ERROR, {"reason": "deadline_passed"})

    def test_redelivered_non_idempotent_tool(self) -> None:
        self.check(call("once", {"text": "x"}), c.INTERNAL_ERROR, {"reason": "worker_lost", "tool": "once"}, delivered=2)

    def test_redelivered_idempotent_tool_runs_again(self) -> None:
        log, _ = run(call("echo", {"text": "x"}), delivered=2)
        self.assertEqual([r["type"] for r in log.replies()], ["accepted", "result"])
        self.assertEqual(log.settled(), ["ack"])

    def test_unknown_names(self) -> None:
        self.check(call("nope"), c.INVALID_PARAMS, {"reason": "unknown_tool", "tool": "nope"})
        self.check(call(method="tools/burn"), c.METHOD_NOT_FOUND, {"reason": "unknown_method", "method": "tools/burn"})
        self.check(call(method="prompts/get", params={"name": "nope"}), c.INVALID_PARAMS, {"reason": "unknown_prompt", "prompt": "nope"})
        self.check(call(method="prompts/get", params={"name": "needy", "arguments": {}}), c.INVALID_PARAMS, None)
        self.check(
            call(method="completion/complete", params={"ref": {"type": "ref/prompt", "name": "nope"}}),
            c.INVALID_PARAMS,
            {"reason": "unknown_completion_ref"},
        )
        self.check(
            call(method="resources/read", params={"uri": "t://x"}, lane="session"),
            c.RESOURCE_NOT_FOUND,
            {"reason": "unknown_resource", "uri": "t://x"},
        )
        self.check(
            call(method="resources/read", params={"uri": "t://x"}),
            c.INVALID_PARAMS,
            {"reason": "unknown_resource", "uri": "t://x"},
        )


class CallsThatRun(unittest.TestCase):
    def test_invalid_arguments_are_a_tool_error_after_accepted(self) -> None:
        for arguments in ({}, {"text": 5}, [1, 2]):
            with self.subTest(arguments=arguments):
                log, _ = run(call("echo", arguments))
                accepted, result = log.replies()
                self.assertEqual(accepted["type"], "accepted")
                self.assertIs(result["result"]["isError"], True)
                self.assertIn("invalid arguments", result["result"]["content"][0]["text"])
                if arguments != [1, 2]:
                    self.assertIn("text:", result["result"]["content"][0]["text"])
                self.assertEqual(log.settled(), ["ack"])

    def test_a_tool_error_and_a_crash_are_results(self) -> None:
        for name, text in (("fail", "nope"), ("crash", "internal error")):
            log, _ = run(call(name))
            result = log.replies()[-1]["result"]
            self.assertIs(result["isError"], True)
            self.assertIn(text, result["content"][0]["text"])
            self.assertEqual(log.settled(), ["ack"])

    def test_a_crash_elsewhere_is_an_internal_error(self) -> None:
        log, _ = run(call(method="prompts/get", params={"name": "broken"}))
        error = log.replies()[-1]["error"]
        self.assertEqual((error["code"], error["data"]), (c.INTERNAL_ERROR, {"reason": "internal"}))
        self.assertEqual(log.settled(), ["ack"])


class Cancelled(unittest.TestCase):
    def test_sends_nothing_more_and_acks_once_the_handler_stopped(self) -> None:
        async def go() -> tuple[Log, list[str]]:
            log = Log()
            w = worker()
            seen: list[str] = []

            @w.tool()
            async def wait() -> str:
                try:
                    await asyncio.sleep(60)
                except asyncio.CancelledError:
                    seen.append("stopped")
                    log.append(("stopped",))
                    raise
                return "never"

            nc = FakeNats(log)
            task = asyncio.create_task(_Call(w, nc, FakeJetStream(log), FakeMsg(log, call("wait"))).run())
            await asyncio.sleep(0.05)
            nc.deliver("mcpbus.v2.cancel.t.c1", {})
            await task
            return log, seen

        log, seen = asyncio.run(go())
        self.assertEqual([r["type"] for r in log.replies()], ["accepted"])
        self.assertEqual([e[0] for e in log if e[0] in ("stopped", "ack")], ["stopped", "ack"])


class DurableReplies(unittest.TestCase):
    def test_are_numbered_and_stored_before_the_ack(self) -> None:
        log, _ = run(call("chatty", reply_durable=True), delivered=2)
        ids = [e[3] for e in log if e[0] == "store"]
        self.assertEqual(ids, ["c1:2:0", "c1:2:1", "c1:2:2"])
        self.assertEqual(log[-1], ("ack",))

    def test_a_failed_store_is_retried_with_the_same_id(self) -> None:
        log, js = run(call("echo", {"text": "x"}, reply_durable=True), failures=2)
        self.assertEqual(js.attempts[:3], ["c1:1:0"] * 3)
        self.assertEqual(log.settled(), ["ack"])

    def test_a_final_reply_never_stored_leaves_the_call_to_be_redelivered(self) -> None:
        log, js = run(call("echo", {"text": "x"}, reply_durable=True), failures=-1)
        # Attempts at `accepted` until the retry budget ends (dropped: the call goes on),
        # then at the result, each under its own id.
        accepted, result = js.attempts.count("c1:1:0"), js.attempts.count("c1:1:1")
        self.assertGreater(accepted, 1)
        self.assertGreater(result, 1)
        self.assertEqual(js.attempts, ["c1:1:0"] * accepted + ["c1:1:1"] * result)
        self.assertEqual(log.settled(), ["nak"])

    def test_a_refusal_never_stored_is_not_terminated(self) -> None:
        log, js = run(call("nope", reply_durable=True), failures=-1)
        self.assertGreater(len(js.attempts), 1)
        self.assertEqual(set(js.attempts), {"c1:1:0"})
        self.assertEqual(log.settled(), ["nak"])

    def test_retries_stop_once_the_deadline_passed(self) -> None:
        soon = int(time.time() * 1000) + 300
        w = worker()

        @w.tool()
        async def slowish() -> str:
            await asyncio.sleep(0.4)
            return "late"

        log, js = run(call("slowish", reply_durable=True, deadline_ms=soon), failures=-1, w=w)
        self.assertLessEqual(js.attempts.count("c1:1:1"), 1, "no retry after the deadline")


if __name__ == "__main__":
    unittest.main()
