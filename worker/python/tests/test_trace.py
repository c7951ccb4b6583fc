"""Trace context through a Python worker (PROTOCOL.md §11, ADR 0020): a call's `traceparent`
is carried on into its replies; with OpenTelemetry the handler span is a child of the
gateway's span, the replies carry the handler span's context, and the time in the queue is a
span starting when JetStream stored the call. Unit tests with the bus stood in for."""

from __future__ import annotations

import asyncio
import datetime
import unittest
from typing import Any
from unittest import mock

from fakes import FakeJetStream, FakeMsg, FakeNats, Log, call

from mcpbus_worker import Worker
from mcpbus_worker import contract as c
from mcpbus_worker import telemetry
from mcpbus_worker.worker import _Call

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"


def worker() -> Worker:
    w = Worker("t", instance="w1")

    @w.tool()
    async def echo(text: str) -> str:
        return text

    return w


def run(headers: dict[str, str] | None, **fields: Any) -> Log:
    log = Log()
    msg = FakeMsg(log, call("echo", {"text": "hi"}, **fields))
    msg.headers = headers
    msg.subject = "mcpbus.v2.call.t"
    msg.metadata.timestamp = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(milliseconds=50)
    asyncio.run(_Call(worker(), FakeNats(log), FakeJetStream(log), msg).run())
    return log


class Extract(unittest.TestCase):
    def test_takes_valid_w3c_values(self) -> None:
        got = telemetry.extract({"traceparent": TRACEPARENT, "tracestate": "a=b"})
        self.assertEqual(got, {"traceparent": TRACEPARENT, "tracestate": "a=b"})
        self.assertEqual(telemetry.trace_id(got), PARENT_TRACE)

    def test_ignores_malformed_values(self) -> None:
        for bad in ["", "junk", TRACEPARENT.upper(), f"00-{'0' * 32}-{PARENT_SPAN}-01",
                    f"00-{PARENT_TRACE}-{'0' * 16}-01", "ff" + TRACEPARENT[2:], TRACEPARENT + "-x"]:
            self.assertEqual(telemetry.extract({"traceparent": bad}), {}, bad)
        self.assertEqual(telemetry.extract(None), {})


class WithoutTracing(unittest.TestCase):
    """No tracer provider (or no OpenTelemetry at all): the call's context goes on as is."""

    def check_passed_on(self) -> None:
        log = run({"traceparent": TRACEPARENT, "tracestate": "a=b"})
        self.assertEqual([r["type"] for r in log.replies()], ["accepted", "result"])
        for h in log.headers:
            self.assertEqual(h.get("traceparent"), TRACEPARENT)
            self.assertEqual(h.get("tracestate"), "a=b")

    def test_the_api_alone_passes_the_context_on(self) -> None:
        self.check_passed_on()

    def test_without_opentelemetry_the_context_is_passed_on(self) -> None:
        with mock.patch.object(telemetry, "HAVE_OTEL", False):
            self.check_passed_on()

    def test_durable_replies_carry_it_beside_their_message_id(self) -> None:
        log = run({"traceparent": TRACEPARENT}, reply_durable=True)
        self.assertTrue(log.headers)
        for h in log.headers:
            self.assertEqual(h["traceparent"], TRACEPARENT)
            self.assertIn(c.HEADER_MSG_ID, h)

    def test_a_call_without_context_sends_none(self) -> None:
        log = run(None)
        self.assertEqual([r["type"] for r in log.replies()], ["accepted", "result"])
        self.assertTrue(all("traceparent" not in h for h in log.headers))


@unittest.skipUnless(telemetry.HAVE_OTEL, "the [otel] extra is not installed")
class WithTracing(unittest.TestCase):
    def setUp(self) -> None:
        try:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        except ImportError:
            self.skipTest("opentelemetry-sdk is not installed")
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        patch = mock.patch.object(telemetry.otel_trace, "get_tracer", self.provider.get_tracer)
        patch.start()
        self.addCleanup(patch.stop)

    def test_the_handler_span_is_a_child_of_the_gateway_span(self) -> None:
        log = run({"traceparent": TRACEPARENT})
        spans = {s.name: s for s in self.exporter.get_finished_spans()}
        self.assertEqual(set(spans), {"mcpbus.queue", "execute_tool echo"})
        handler, queue = spans["execute_tool echo"], spans["mcpbus.queue"]
        for s in (handler, queue):
            self.assertEqual(format(s.context.trace_id, "032x"), PARENT_TRACE)
            self.assertEqual(format(s.parent.span_id, "016x"), PARENT_SPAN)
        self.assertEqual(handler.attributes["gen_ai.tool.name"], "echo")
        self.assertEqual(handler.attributes["mcp.method.name"], "tools/call")
        self.assertEqual(handler.attributes["call_id"], "c1")
        # The queue span starts when JetStream stored the call, before the handler ran.
        self.assertLess(queue.start_time, handler.start_time)
        # Replies carry the handler span's context.
        own = f"00-{PARENT_TRACE}-{format(handler.context.span_id, '016x')}-01"
        self.assertTrue(log.headers)
        self.assertTrue(all(h["traceparent"] == own for h in log.headers), log.headers)

    def test_a_call_without_context_starts_a_trace(self) -> None:
        log = run(None)
        [handler] = self.exporter.get_finished_spans()
        self.assertIsNone(handler.parent)
        self.assertTrue(all(h["traceparent"][3:35] == format(handler.context.trace_id, "032x") for h in log.headers))


if __name__ == "__main__":
    unittest.main()
