/** The outcome table (PROTOCOL.md §5.8), row by row, against a recording bus. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Catalogue } from "../src/catalogue.js";
import { ToolError } from "../src/errors.js";
import { Call } from "../src/runner.js";
import { defineTool } from "../src/tool.js";
import { z } from "zod";
import { call, enc, env, FakeBus, FakeMessage } from "./fakes.js";

function catalogue() {
  const c = new Catalogue();
  c.add(defineTool({ name: "echo", input: z.object({ text: z.string() }), idempotent: true }, ({ text }) => text));
  c.add(defineTool({ name: "once", input: z.object({ text: z.string() }) }, ({ text }) => text));
  c.add(
    defineTool({ name: "fail", input: z.object({}), idempotent: true }, () => {
      throw new ToolError("nope");
    }),
  );
  c.add(
    defineTool({ name: "crash", input: z.object({}) }, () => {
      throw new TypeError("bug");
    }),
  );
  c.add(
    defineTool({ name: "slow", input: z.object({ ms: z.number() }) }, async ({ ms }, ctx) => {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        ctx.signal.addEventListener("abort", () => (clearTimeout(t), resolve()));
      });
      return "slept";
    }),
  );
  return c;
}

async function run(body: unknown, delivery = 1, bus = new FakeBus()) {
  const msg = new FakeMessage(typeof body === "string" ? enc(body) : enc(body), delivery);
  const e = env(catalogue(), bus);
  const outcome = await new Call(e, msg).run();
  return { outcome, bus, msg, replies: bus.sent.map((s) => s.body) };
}

test("an unreadable call is terminated without a reply", async () => {
  for (const body of ["not json", "[1]", JSON.stringify({ call_id: "c1" }), JSON.stringify({ call_id: 1, reply_to: "x" })]) {
    const { replies, msg, outcome } = await run(body);
    assert.equal(outcome, "unreadable");
    assert.deepEqual(replies, []);
    assert.deepEqual(msg.acks, ["TERM"]);
  }
  const bytes = new FakeMessage(new Uint8Array([0xff, 0xfe]));
  await new Call(env(catalogue(), new FakeBus()), bytes).run();
  assert.deepEqual(bytes.acks, ["TERM"]);
});

test("a protocol that is not an integer is a malformed call; an absent one means 2", async () => {
  const bad = await run(call({ protocol: "2" }));
  assert.equal((bad.replies[0]!.error as { data: { reason: string } }).data.reason, "malformed_call");
  const body = call({});
  delete (body as Record<string, unknown>).protocol;
  const absent = await run(body);
  assert.equal(absent.replies[0]!.type, "accepted");
});

test("an unknown protocol is answered unsupported_protocol, then terminated", async () => {
  const { replies, msg, bus } = await run(call({ protocol: 3 }));
  assert.equal(replies.length, 1);
  assert.equal(replies[0]!.type, "error");
  assert.deepEqual(replies[0]!.error, {
    code: -32603,
    message: "this worker speaks protocol 2, not 3",
    data: { reason: "unsupported_protocol", protocol: 3 },
  });
  assert.deepEqual(msg.acks, ["TERM"]);
  assert.deepEqual(bus.order, ["reply:error"]);
});

test("malformed calls are answered malformed_call, then terminated", async () => {
  for (const bad of [
    { method: 7 },
    { method: undefined },
    { deadline_ms: "soon" },
    { deadline_ms: undefined },
    { lane: undefined },
    { lane: "other" },
    { params: [] },
    { client_capabilities: "all" },
    { principal: "alice" },
    { principal: { subject: "alice" } },
    { principal: { issuer: "i", subject: "a", scopes: [1] } },
    { principal: { issuer: "i", subject: "a", claims: [] } },
  ]) {
    const { replies, msg } = await run(call(bad));
    assert.equal((replies[0]?.error as { data: { reason: string } }).data.reason, "malformed_call", JSON.stringify(bad));
    assert.deepEqual(msg.acks, ["TERM"]);
  }
});

test("refusals before running: deadline, unknown tool and method, worker_lost", async () => {
  const cases: [Record<string, unknown>, number, number, Record<string, unknown>][] = [
    [{ deadline_ms: Date.now() - 1 }, 1, -32603, { reason: "deadline_passed" }],
    [{ params: { name: "nope" } }, 1, -32602, { reason: "unknown_tool", tool: "nope" }],
    [{ method: "sampling/createMessage" }, 1, -32601, { reason: "unknown_method", method: "sampling/createMessage" }],
    [{ method: "prompts/get", params: { name: "p" } }, 1, -32602, { reason: "unknown_prompt", prompt: "p" }],
    [{ method: "resources/read", params: { uri: "x://y" }, lane: "session" }, 1, -32002, { reason: "unknown_resource", uri: "x://y" }],
    [{ method: "resources/read", params: { uri: "x://y" } }, 1, -32602, { reason: "unknown_resource", uri: "x://y" }],
    [{ params: { name: "once", arguments: { text: "a" } } }, 2, -32603, { reason: "worker_lost", tool: "once" }],
  ];
  for (const [overrides, delivery, code, data] of cases) {
    const { replies, msg } = await run(call(overrides), delivery);
    assert.equal(replies.length, 1, JSON.stringify(overrides));
    const error = replies[0]!.error as { code: number; data: unknown };
    assert.equal(error.code, code, JSON.stringify(overrides));
    assert.deepEqual(error.data, data);
    assert.deepEqual(msg.acks, ["TERM"]);
  }
});

test("a redelivered idempotent tool runs again", async () => {
  const { replies, msg } = await run(call(), 3);
  assert.deepEqual(
    replies.map((r) => r.type),
    ["accepted", "result"],
  );
  assert.deepEqual(msg.acks, ["ACK"]);
});

test("a successful call: accepted, result, then ACK; the envelope names call and instance", async () => {
  const { replies, msg, bus } = await run(call());
  assert.deepEqual(replies[0], { protocol: 2, call_id: "c1", instance: "w1", type: "accepted" });
  assert.deepEqual(replies[1]!.result, { content: [{ type: "text", text: "hi" }], isError: false });
  assert.equal(bus.sent[1]!.subject, "mcpbus.v2.reply.demo.gw.c1");
  assert.deepEqual(msg.acks, ["ACK"]);
});

test("invalid arguments, tool errors and crashes are results with isError, ACKed", async () => {
  for (const [params, text] of [
    [{ name: "echo", arguments: { text: 3 } }, /^invalid arguments: .*text/],
    [{ name: "fail", arguments: {} }, /^nope$/],
    [{ name: "crash", arguments: {} }, /internal error: TypeError/],
  ] as const) {
    const { replies, msg } = await run(call({ params }));
    assert.equal(replies[0]!.type, "accepted");
    const result = replies[1]!.result as { isError: boolean; content: { text: string }[] };
    assert.equal(result.isError, true);
    assert.match(result.content[0]!.text, text);
    assert.deepEqual(msg.acks, ["ACK"]);
  }
});

test("a cancelled call sends nothing more and is ACKed once the handler stopped", async () => {
  const bus = new FakeBus();
  const e = env(catalogue(), bus);
  const msg = new FakeMessage(enc(call({ params: { name: "slow", arguments: { ms: 10_000 } }, cancel_on: "mcpbus.v2.cancel.demo.h1" })));
  const running = new Call(e, msg).run();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(e.watched, ["mcpbus.v2.cancel.demo.h1"]);
  e.cancel("mcpbus.v2.cancel.demo.h1");
  assert.equal(await running, "stopped");
  assert.deepEqual(
    bus.sent.map((s) => s.body.type),
    ["accepted"],
  );
  assert.deepEqual(msg.acks, ["ACK"]);
});

test("without cancel_on the call listens on the pool's per-call subject", async () => {
  const bus = new FakeBus();
  const e = env(catalogue(), bus);
  await new Call(e, new FakeMessage(enc(call()))).run();
  assert.deepEqual(e.watched, ["mcpbus.v2.cancel.demo.c1"]);
});

test("a call past its deadline while running sends nothing more and is ACKed", async () => {
  const { replies, msg, outcome } = await run(call({ params: { name: "slow", arguments: { ms: 10_000 } }, deadline_ms: Date.now() + 50 }));
  assert.equal(outcome, "stopped");
  assert.deepEqual(
    replies.map((r) => r.type),
    ["accepted"],
  );
  assert.deepEqual(msg.acks, ["ACK"]);
});

test("past the drain timeout the handler is stopped and the call NAKed", async () => {
  const bus = new FakeBus();
  const msg = new FakeMessage(enc(call({ params: { name: "slow", arguments: { ms: 10_000 } } })));
  const c = new Call(env(catalogue(), bus), msg);
  const running = c.run();
  await new Promise((r) => setTimeout(r, 20));
  c.stopForDrain();
  assert.equal(await running, "nak");
  assert.deepEqual(msg.acks, ["NAK"]);
  assert.deepEqual(
    bus.sent.map((s) => s.body.type),
    ["accepted"],
  );
});

test("durable replies carry <call_id>:<delivery>:<n> and the final one must be stored", async () => {
  const bus = new FakeBus();
  const { msg } = await run(call({ reply_durable: true }), 2, bus);
  assert.deepEqual(
    bus.sent.map((s) => s.msgId),
    ["c1:2:0", "c1:2:1"],
  );
  assert.deepEqual(msg.acks, ["ACK"]);

  const failing = new FakeBus();
  failing.storeOnly = 1; // accepted is stored, the result never is: NAK, never ACK
  const { msg: lost } = await run(call({ reply_durable: true }), 1, failing);
  assert.deepEqual(lost.acks, ["NAK"]);
  // The result is tried until the retry budget (10 s of pauses on the test's clock) ends.
  assert.ok(failing.attempts > 1 + 10, `the final reply is retried: ${failing.attempts} attempts`);

  const flaky = new FakeBus();
  flaky.failStored = 2; // two lost acks, then stored under the same id
  const { msg: kept } = await run(call({ reply_durable: true }), 1, flaky);
  assert.deepEqual(kept.acks, ["ACK"]);
  assert.deepEqual(
    flaky.sent.map((s) => s.msgId),
    ["c1:1:0", "c1:1:1"],
  );
});

test("a durable refusal is stored before the TERM", async () => {
  const bus = new FakeBus();
  const { msg } = await run(call({ reply_durable: true, params: { name: "nope" } }), 1, bus);
  assert.deepEqual(
    bus.sent.map((s) => s.msgId),
    ["c1:1:0"],
  );
  assert.deepEqual(msg.acks, ["TERM"]);
});
