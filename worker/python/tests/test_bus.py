"""Start-up, catalogue changes and drain, as the SDKs agreed (issue 16): a worker never
creates a stream, creates only its pool's consumer, stores a changed catalogue before a beat
names it, and runs what an open pull still delivers while it drains. Unit tests with the bus
stood in for (`fakes.py`); tests/tests/python_worker.rs runs them on the real one."""

from __future__ import annotations

import asyncio
import json
import unittest
from types import SimpleNamespace
from typing import Any
from unittest import mock

from fakes import FakeJetStream, FakeMsg, FakeNats, Log, call
from nats.errors import NoRespondersError

from mcpbus_worker import Worker
from mcpbus_worker import contract as c
from mcpbus_worker import startup
from mcpbus_worker import worker as worker_module
from mcpbus_worker.startup import JetStreamError, open_pool_consumer, wait_for_streams

NOT_FOUND_STREAM = {"error": {"code": 404, "err_code": 10059, "description": "stream not found"}}
NOT_FOUND_CONSUMER = {"error": {"code": 404, "err_code": 10014, "description": "consumer not found"}}


class ApiNats:
    """Answers JetStream API requests from a script: subject -> list of answers, the last
    repeated (an exception instance is raised instead)."""

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = script
        self.requests: list[tuple[str, Any]] = []

    async def request(self, subject: str, payload: bytes, timeout: float) -> Any:
        self.requests.append((subject, json.loads(payload) if payload else None))
        answers = self.script.get(subject) or [{"error": {"code": 403, "description": "unexpected"}}]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(data=json.dumps(answer).encode())


def run(coro: Any) -> Any:
    with mock.patch.object(startup, "TOPOLOGY_POLL_SECONDS", 0.001):
        return asyncio.run(coro)


class StartUp(unittest.TestCase):
    def test_waits_for_missing_streams_and_never_creates_one(self) -> None:
        nc = ApiNats({
            "$JS.API.STREAM.INFO.MCPBUS_CALLS": [NOT_FOUND_STREAM, NoRespondersError(), NOT_FOUND_STREAM, {}],
            "$JS.API.STREAM.INFO.KV_mcpbus-workers": [{}],
        })
        run(wait_for_streams(nc, ["MCPBUS_CALLS", "KV_mcpbus-workers"]))
        subjects = [s for s, _ in nc.requests]
        self.assertEqual(subjects.count("$JS.API.STREAM.INFO.MCPBUS_CALLS"), 4)
        self.assertFalse([s for s in subjects if "CREATE" in s])

    def test_other_failures_are_raised(self) -> None:
        nc = ApiNats({"$JS.API.STREAM.INFO.MCPBUS_CALLS": [{"error": {"code": 403, "description": "denied"}}]})
        with self.assertRaises(JetStreamError):
            run(wait_for_streams(nc, ["MCPBUS_CALLS"]))

    def test_creates_only_the_pool_consumer_by_name_and_filter_with_the_agreed_config(self) -> None:
        create = "$JS.API.CONSUMER.CREATE.MCPBUS_CALLS.mcpbus-pool-p.mcpbus.v2.call.p"
        nc = ApiNats({
            "$JS.API.CONSUMER.INFO.MCPBUS_CALLS.mcpbus-pool-p": [NOT_FOUND_CONSUMER],
            create: [{"config": {}}],
        })
        with self.assertLogs("mcpbus_worker", "INFO"):
            run(open_pool_consumer(nc, "p"))
        [(subject, body)] = [r for r in nc.requests if "CREATE" in r[0]]
        self.assertEqual(subject, create)
        self.assertEqual(body, {
            "stream_name": "MCPBUS_CALLS",
            "config": {
                "durable_name": "mcpbus-pool-p", "name": "mcpbus-pool-p",
                "description": "mcpbus: calls for pool p", "filter_subject": "mcpbus.v2.call.p",
                "ack_policy": "explicit", "ack_wait": 30_000_000_000, "max_deliver": 5, "max_ack_pending": 10_000,
                "deliver_policy": "all", "replay_policy": "instant",
            },
        })

    def test_an_existing_consumer_is_used_as_it_is(self) -> None:
        nc = ApiNats({"$JS.API.CONSUMER.INFO.MCPBUS_CALLS.mcpbus-pool-p": [{"config": {"max_deliver": 9}}]})
        with self.assertLogs("mcpbus_worker", "WARNING") as logs:
            run(open_pool_consumer(nc, "p"))
        self.assertIn("max_deliver", logs.output[0])
        self.assertEqual([s for s, _ in nc.requests], ["$JS.API.CONSUMER.INFO.MCPBUS_CALLS.mcpbus-pool-p"])


class FakeKV:
    def __init__(self, log: list[Any], name: str, failures: int = 0) -> None:
        self.log, self.name, self.failures = log, name, failures

    async def put(self, key: str, value: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("no ack")
        self.log.append((self.name, key, json.loads(value)))

    async def delete(self, key: str) -> None:
        self.log.append((self.name, key, None))


def a_worker() -> Worker:
    w = Worker("p", instance="w1", heartbeat=0.02)

    @w.tool()
    async def first() -> str:
        return "1"

    return w


class CatalogueChanges(unittest.TestCase):
    def change_while_beating(self, catalog_failures: int) -> list[Any]:
        async def go() -> list[Any]:
            log: list[Any] = []
            w = a_worker()
            reg = worker_module._Registration(w, FakeKV(log, "workers"), FakeKV(log, "catalog"), 1)
            await reg.register()
            reg.catalogs.failures = catalog_failures
            stop = asyncio.Event()
            beating = asyncio.create_task(reg.keep_alive(stop))
            await asyncio.sleep(0.05)

            async def second() -> str:
                return "2"

            w.catalogue.add_tool(second)
            await asyncio.sleep(0.2)
            stop.set()
            await beating
            return log

        return asyncio.run(go())

    def test_the_new_catalogue_is_stored_before_a_beat_names_it(self) -> None:
        for failures in (0, 2):
            with self.subTest(failures=failures):
                log = self.change_while_beating(failures)
                catalogs = [e for e in log if e[0] == "catalog"]
                self.assertEqual(len(catalogs), 2, log)
                new = catalogs[1][2]
                self.assertEqual(sorted(t["tool"]["name"] for t in new["tools"]), ["first", "second"])
                self.assertEqual(catalogs[1][1], f"p.{new['digest']}")
                stored_at = log.index(catalogs[1])
                naming = [i for i, e in enumerate(log) if e[0] == "workers" and e[2]["catalog_digest"] == new["digest"]]
                self.assertTrue(naming and naming[0] > stored_at, log)
                # Beats went on before the change, with the old digest.
                self.assertTrue(any(e[0] == "workers" and e[2]["catalog_digest"] == catalogs[0][2]["digest"]
                                    for e in log[1:stored_at]))


class Drain(unittest.TestCase):
    def test_a_call_an_open_pull_delivers_after_stop_runs_and_is_acked(self) -> None:
        async def go() -> tuple[Log, list[str]]:
            log = Log()
            nc = FakeNats(log)
            nc.new_inbox = lambda: "_INBOX.pool.p.x"
            stop = asyncio.Event()
            w = Worker("p", instance="w1", max_in_flight=2)

            @w.tool(idempotent=True)
            async def echo(text: str) -> str:
                await asyncio.sleep(0.05)
                return text

            pulls: list[str] = []

            async def on_publish(subject: str, body: Any) -> None:
                if subject.startswith("$JS.API.CONSUMER.MSG.NEXT."):
                    pulls.append(subject)
                    stop.set()  # SIGTERM while this pull is open

                    async def later() -> None:
                        await asyncio.sleep(0.02)
                        sub = nc.subs["_INBOX.pool.p.x.*"]
                        msg = FakeMsg(log, call("echo", {"text": "hi"}))
                        msg.subject = "_INBOX.pool.p.x.1"
                        sub.queue.put_nowait(msg)
                        sub.queue.put_nowait(SimpleNamespace(subject="_INBOX.pool.p.x.1", data=b"",
                                                             headers={"Status": "408"}))

                    asyncio.ensure_future(later())

            nc.on_publish = on_publish
            running: dict[Any, Any] = {}
            await w._pull_until(nc, FakeJetStream(log), stop, running)
            await w._drain(running)
            return log, pulls

        log, pulls = asyncio.run(go())
        self.assertEqual(len(pulls), 1, "no pull request after the stop")
        self.assertEqual(log.settled(), ["ack"])
        self.assertEqual(log.replies()[-1]["result"]["content"][0]["text"], "hi")

    def test_a_message_on_the_drain_subject_stops_the_worker_as_sigterm_does(self) -> None:
        async def go() -> tuple[Log, bool, bool, dict[str, Any]]:
            log = Log()
            nc = FakeNats(log)
            stop = asyncio.Event()
            listener = await a_worker()._listen_for_drain(nc, stop)
            await asyncio.sleep(0.01)
            before = stop.is_set()
            nc.deliver(f"{c.DRAIN_SUBJECT_PREFIX}p.w1", None)
            await asyncio.wait_for(stop.wait(), 5)
            await listener.close()
            return log, before, stop.is_set(), dict(nc.subs)

        log, before, after, subs = asyncio.run(go())
        self.assertEqual(log, [("subscribe", "mcpbus.v2.drain.p.w1")])
        self.assertFalse(before, "nothing asked yet")
        self.assertTrue(after)
        self.assertEqual(subs, {}, "unsubscribed once draining")

    def test_past_the_drain_timeout_a_call_is_stopped_and_nacked(self) -> None:
        async def go() -> Log:
            log = Log()
            w = Worker("p", instance="w1", drain_timeout=0.05)
            stopped = asyncio.Event()

            @w.tool()
            async def forever() -> str:
                try:
                    await asyncio.sleep(60)
                finally:
                    stopped.set()
                return "never"

            call_ = worker_module._Call(w, FakeNats(log), FakeJetStream(log), FakeMsg(log, call("forever")))
            task = asyncio.create_task(call_.run())
            await asyncio.sleep(0.02)
            await w._drain({task: call_})
            assert stopped.is_set()
            return log

        log = asyncio.run(go())
        self.assertEqual([r["type"] for r in log.replies()], ["accepted"])
        self.assertEqual(log.settled(), ["nak"])


if __name__ == "__main__":
    unittest.main()
