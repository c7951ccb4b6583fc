"""The worker's own metrics (through prometheus_client) and server-wide messages (ADR 0023).
Unit tests with the bus stood in for (`fakes.py`)."""

from __future__ import annotations

import asyncio
import json
import unittest
from types import SimpleNamespace
from typing import Any

from fakes import call
from test_outcomes import run, worker

from mcpbus_worker import AnnounceError
from mcpbus_worker import contract as c
from mcpbus_worker import metrics
from mcpbus_worker.announce import announce


def calls(tool: str, outcome: str) -> float:
    import prometheus_client

    value = prometheus_client.REGISTRY.get_sample_value(
        "mcpbus_worker_calls_total", {"pool": "t", "tool": tool, "outcome": outcome}
    )
    return value or 0.0


@unittest.skipUnless(metrics.enabled(), "prometheus_client is not installed")
class WorkerMetrics(unittest.TestCase):
    def test_calls_are_counted_by_tool_and_outcome(self) -> None:
        before = {k: calls(*k) for k in [("echo", "result"), ("fail", "tool_error"), ("_other", "refused")]}
        run(call("echo", {"text": "x"}))
        run(call("fail", {}))
        run(call("nope", {}))
        for key, was in before.items():
            with self.subTest(key=key):
                self.assertEqual(calls(*key), was + 1)
        import prometheus_client

        self.assertEqual(prometheus_client.REGISTRY.get_sample_value("mcpbus_worker_in_flight", {"pool": "t"}), 0)
        ran = prometheus_client.REGISTRY.get_sample_value(
            "mcpbus_worker_call_seconds_count", {"pool": "t", "tool": "echo"}
        )
        self.assertGreaterEqual(ran or 0, 1)

    def test_prompts_are_not_counted_as_tools(self) -> None:
        before = calls("_other", "result")
        run(call(method=c.METHOD_PROMPTS_GET, params={"name": "needy", "arguments": {"code": "x"}}))
        self.assertEqual(calls("_other", "result"), before)


class FakeRequester:
    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def request(self, subject: str, payload: bytes, timeout: float) -> Any:
        self.sent.append((subject, json.loads(payload)))
        if isinstance(self.reply, Exception):
            raise self.reply
        return SimpleNamespace(data=json.dumps(self.reply).encode())


class Announcements(unittest.TestCase):
    def test_a_stored_announcement(self) -> None:
        nc = FakeRequester({"protocol": 2})
        asyncio.run(announce(nc, "t", "warning", {"text": "soon"}, logger="deploy", id="a1"))
        [(subject, body)] = nc.sent
        self.assertEqual(subject, "mcpbus.v2.announce.t")
        self.assertEqual(
            body, {"protocol": 2, "id": "a1", "level": "warning", "logger": "deploy", "data": {"text": "soon"}}
        )

    def test_a_refusal_carries_its_code_and_reason(self) -> None:
        nc = FakeRequester({"protocol": 2, "error": {"code": -32000, "message": "slow down", "data": {"reason": "rate_limited"}}})
        with self.assertRaises(AnnounceError) as e:
            asyncio.run(announce(nc, "t", "info", "x"))
        self.assertEqual((e.exception.code, e.exception.data), (-32000, {"reason": "rate_limited"}))

    def test_no_gateway_is_unconfirmed(self) -> None:
        with self.assertRaises(AnnounceError) as e:
            asyncio.run(announce(FakeRequester(TimeoutError()), "t", "info", "x"))
        self.assertIsNone(e.exception.code)

    def test_bad_levels_and_sizes_are_refused_before_sending(self) -> None:
        nc = FakeRequester({})
        with self.assertRaises(ValueError):
            asyncio.run(announce(nc, "t", "loud", "x"))
        with self.assertRaises(ValueError):
            asyncio.run(announce(nc, "t", "info", "x" * c.ANNOUNCEMENT_MAX_BYTES))
        self.assertEqual(nc.sent, [])


if __name__ == "__main__":
    unittest.main()
