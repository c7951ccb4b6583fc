"""`ctx.ask`: questions to the client on both lanes, as the Rust SDK asks them. Unit tests
with the bus stood in for (`fakes.py`); tests/tests/python_worker.rs asks a real client."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

from fakes import FakeJetStream, FakeMsg, FakeNats, Log, call

from mcpbus_worker import Context, Worker
from mcpbus_worker import contract as c
from mcpbus_worker.context import MAX_PENDING_ASKS
from mcpbus_worker.worker import _Call

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
ELICITING = {"elicitation": {}}


def worker() -> Worker:
    w = Worker("t", instance="w1")

    @w.tool()
    async def two(ctx: Context) -> str:
        first = await ctx.elicit("first?", SCHEMA, key="a")
        second = await ctx.ask(c.CLIENT_METHOD_ELICITATION, {"message": "second?", "requestedSchema": SCHEMA})
        return f"{first['content']['answer']} {second['content']['answer']}"

    @w.tool()
    async def swallow(ctx: Context) -> str:
        try:
            await ctx.elicit("x?", SCHEMA)
        except Exception:  # a broad handler must not turn the round into a result
            return "swallowed"
        return "answered"

    @w.tool()
    async def many(ctx: Context) -> str:
        await asyncio.gather(*(ctx.elicit(f"{i}?", SCHEMA) for i in range(MAX_PENDING_ASKS + 1)))
        return "all"

    return w


def run(body: dict[str, Any], nc_setup: Any = None) -> Log:
    async def go() -> Log:
        log = Log()
        nc = FakeNats(log)
        if nc_setup:
            nc_setup(nc)
        await _Call(worker(), nc, FakeJetStream(log), FakeMsg(log, body)).run()
        return log

    return asyncio.run(go())


def final(log: Log) -> dict[str, Any]:
    return log.replies()[-1]


def answer(text: str) -> dict[str, Any]:
    return {"action": "accept", "content": {"answer": text}}


class StatelessLane(unittest.TestCase):
    def test_the_first_round_asks_and_carries_no_answers(self) -> None:
        log = run(call("two", client_capabilities=ELICITING))
        result = final(log)["result"]
        self.assertEqual(result["resultType"], "input_required")
        self.assertEqual(list(result["inputRequests"]), ["a"])
        self.assertEqual(result["inputRequests"]["a"]["method"], "elicitation/create")
        self.assertEqual(result["inputRequests"]["a"]["params"]["message"], "first?")
        self.assertEqual(result["requestState"], {"answers": {}})
        self.assertEqual(log.settled(), ["ack"])

    def test_the_handler_reruns_and_earlier_answers_come_from_the_state(self) -> None:
        round2 = call("two", client_capabilities=ELICITING,
                      params={"name": "two", "arguments": {}, "requestState": {"answers": {}},
                              "inputResponses": {"a": answer("one"), "stray": answer("?")}})
        result = final(run(round2))["result"]
        self.assertEqual(list(result["inputRequests"]), ["input-0"])
        self.assertEqual(result["requestState"], {"answers": {"a": answer("one")}})
        round3 = call("two", client_capabilities=ELICITING,
                      params={"name": "two", "arguments": {}, "requestState": result["requestState"],
                              "inputResponses": {"input-0": answer("two")}})
        result = final(run(round3))["result"]
        self.assertEqual(result["content"][0]["text"], "one two")

    def test_a_broad_except_does_not_swallow_the_round(self) -> None:
        result = final(run(call("swallow", client_capabilities=ELICITING)))["result"]
        self.assertEqual(result["resultType"], "input_required")

    def test_without_the_capability_it_is_a_missing_capability_error(self) -> None:
        log = run(call("two", client_capabilities={"sampling": {}}))
        error = final(log)["error"]
        self.assertEqual(error["code"], c.MISSING_CAPABILITY)
        self.assertEqual(error["data"], {"requiredCapabilities": {"elicitation": {}}})
        # On a 2025 session (no code for it) a tool error; nothing was asked.
        log = run(call("two", lane="session", client_capabilities={"sampling": {}}))
        self.assertIs(final(log)["result"]["isError"], True)
        self.assertNotIn("request", [r["type"] for r in log.replies()])


class SessionLane(unittest.TestCase):
    def test_each_question_is_a_request_reply_answered_on_its_subject(self) -> None:
        def answering(nc: FakeNats) -> None:
            async def on_publish(subject: str, body: Any) -> None:
                if body and body.get("type") == "request":
                    text = "one" if body["seq"] == 1 else "two"
                    nc.deliver(f"mcpbus.v2.answer.t.c1.{body['seq']}", {"protocol": 2, "result": answer(text)})

            nc.on_publish = on_publish

        log = run(call("two", lane="session", client_capabilities=ELICITING), answering)
        self.assertEqual(final(log)["result"]["content"][0]["text"], "one two")
        requests = [r for r in log.replies() if r["type"] == "request"]
        self.assertEqual([r["seq"] for r in requests], [1, 2])
        self.assertEqual(requests[0]["method"], "elicitation/create")
        # Each answer subject was subscribed before its request went out.
        for seq in (1, 2):
            subscribed = log.index(("subscribe", f"mcpbus.v2.answer.t.c1.{seq}"))
            sent = next(i for i, e in enumerate(log) if e[0] == "publish" and e[2].get("seq") == seq)
            self.assertLess(subscribed, sent)

    def test_a_refusal_is_a_tool_error(self) -> None:
        def refusing(nc: FakeNats) -> None:
            async def on_publish(subject: str, body: Any) -> None:
                if body and body.get("type") == "request":
                    nc.deliver(f"mcpbus.v2.answer.t.c1.{body['seq']}",
                               {"protocol": 2, "error": {"code": -1, "message": "no thanks"}})

            nc.on_publish = on_publish

        result = final(run(call("two", lane="session", client_capabilities=ELICITING), refusing))["result"]
        self.assertIs(result["isError"], True)
        self.assertIn("no thanks", result["content"][0]["text"])

    def test_pending_questions_are_capped(self) -> None:
        log = run(call("many", lane="session", client_capabilities=ELICITING))
        result = final(log)["result"]
        self.assertIs(result["isError"], True)
        self.assertIn("at once", result["content"][0]["text"])
        asked = [r for r in log.replies() if r["type"] == "request"]
        self.assertEqual(len(asked), MAX_PENDING_ASKS)


if __name__ == "__main__":
    unittest.main()
