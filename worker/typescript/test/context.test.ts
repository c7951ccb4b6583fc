/** Asking the client on both lanes, progress, the caller, registration time, settings. */

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { Catalogue } from "../src/catalogue.js";
import { connectOptions, describe, settingsFromEnv } from "../src/connection.js";
import type { AnswerBus } from "../src/context.js";
import { Rounds } from "../src/mrtr.js";
import { Call } from "../src/runner.js";
import { poolConsumerConfig, registeredFrom } from "../src/startup.js";
import { consumerCreate, poolRecordsLast } from "../src/subjects.js";
import { defineTool, inputSchema } from "../src/tool.js";
import { z } from "zod";
import { call, enc, env, FakeBus, FakeMessage } from "./fakes.js";

const ELICIT = { message: "kit?", requestedSchema: { type: "object" } };

function asking() {
  const c = new Catalogue();
  c.add(
    defineTool({ name: "ask", input: z.object({}) }, async (_a, ctx) => {
      const a = (await ctx.ask("elicitation/create", ELICIT, { key: "answer" })) as { content: { answer: string } };
      await ctx.progress(1, 1);
      return `answer: ${a.content.answer}`;
    }),
  );
  return c;
}

const capable = { elicitation: {} };

test("stateless lane: the first round is an InputRequiredResult, the retry runs to the end", async () => {
  const bus = new FakeBus();
  await new Call(env(asking(), bus), new FakeMessage(enc(call({ params: { name: "ask" }, client_capabilities: capable })))).run();
  const first = bus.sent[1]!.body.result as Record<string, unknown>;
  assert.deepEqual(first, {
    resultType: "input_required",
    inputRequests: { answer: { method: "elicitation/create", params: ELICIT } },
    requestState: { answers: {} },
  });
  const retry = new FakeBus();
  const params = {
    name: "ask",
    requestState: first.requestState,
    inputResponses: { answer: { action: "accept", content: { answer: "yes" } }, other: {} },
    _meta: { progressToken: "p" },
  };
  await new Call(env(asking(), retry), new FakeMessage(enc(call({ params, client_capabilities: capable })))).run();
  assert.deepEqual(
    retry.sent.map((s) => s.body.type),
    ["accepted", "progress", "result"],
  );
  assert.deepEqual(retry.sent[2]!.body.result, { content: [{ type: "text", text: "answer: yes" }], isError: false });
});

test("without the capability the client is never asked: -32021 stateless, a tool error on a session", async () => {
  const stateless = new FakeBus();
  await new Call(env(asking(), stateless), new FakeMessage(enc(call({ params: { name: "ask" }, lane: "stateless" })))).run();
  const error = stateless.sent[1]!.body.error as { code: number; data: unknown };
  assert.equal(error.code, -32021);
  assert.deepEqual(error.data, { requiredCapabilities: { elicitation: {} } });

  const session = new FakeBus();
  await new Call(env(asking(), session), new FakeMessage(enc(call({ params: { name: "ask" }, lane: "session" })))).run();
  const result = session.sent[1]!.body.result as { isError: boolean; content: { text: string }[] };
  assert.equal(result.isError, true);
  assert.match(result.content[0]!.text, /elicitation/);
});

test("session lane: a request reply with seq 1, the answer on the pool's answer subject", async () => {
  const bus = new FakeBus();
  const subjects: string[] = [];
  const answers: AnswerBus = {
    async awaitOne(subject) {
      subjects.push(subject);
      return {
        answer: new Promise((resolve) =>
          setTimeout(() => resolve(enc({ protocol: 2, result: { action: "accept", content: { answer: "si" } } })), 10),
        ),
        cancel() {},
      };
    },
  };
  const msg = new FakeMessage(enc(call({ params: { name: "ask" }, lane: "session", client_capabilities: capable })));
  await new Call(env(asking(), bus, answers), msg).run();
  assert.deepEqual(subjects, ["mcpbus.v2.answer.demo.c1.1"]);
  const request = bus.sent[1]!.body;
  assert.deepEqual(request, { protocol: 2, call_id: "c1", instance: "w1", type: "request", seq: 1, method: "elicitation/create", params: ELICIT });
  assert.deepEqual((bus.sent[2]!.body.result as { content: unknown }).content, [{ type: "text", text: "answer: si" }]);
  assert.deepEqual(msg.acks, ["ACK"]);
});

test("answers accumulate across rounds and a missing one is asked again", () => {
  const r = new Rounds({ requestState: { answers: { a: 1 } }, inputResponses: { b: 2 } });
  assert.deepEqual(r.answers([{ key: "a", method: "m", params: {} }, { key: "b", method: "m", params: {} }]), [1, 2]);
  assert.throws(
    () => r.answers([{ key: "c", method: "roots/list", params: {} }]),
    (e: { result: { requestState: unknown; inputRequests: Record<string, unknown> } }) => {
      assert.deepEqual(e.result.requestState, { answers: { a: 1, b: 2 } });
      assert.deepEqual(Object.keys(e.result.inputRequests), ["c"]);
      return true;
    },
  );
});

test("the handler sees the principal; progress is sent only with a progressToken", async () => {
  const c = new Catalogue();
  c.add(
    defineTool({ name: "who", input: z.object({}) }, async (_a, ctx) => {
      await ctx.progress(1);
      return ctx.principal ? `${ctx.principal.issuer} ${ctx.principal.subject} ${ctx.principal.scopes.join(",")}` : "anonymous";
    }),
  );
  const bus = new FakeBus();
  const principal = { issuer: "https://i", subject: "alice", scopes: ["a", "b"], claims: { g: 1 }, extra: true };
  await new Call(env(c, bus), new FakeMessage(enc(call({ params: { name: "who" }, principal })))).run();
  assert.deepEqual(
    bus.sent.map((s) => s.body.type),
    ["accepted", "result"],
  );
  assert.deepEqual((bus.sent[1]!.body.result as { content: unknown }).content, [{ type: "text", text: "https://i alice a,b" }]);
  const none = new FakeBus();
  await new Call(env(c, none), new FakeMessage(enc(call({ params: { name: "who" }, principal: null })))).run();
  assert.deepEqual((none.sent[1]!.body.result as { content: unknown }).content, [{ type: "text", text: "anonymous" }]);
});

test("the input schema is JSON Schema without $schema; a catalogue digest follows its tools", () => {
  const schema = inputSchema(z.object({ text: z.string(), n: z.number().int().optional() }));
  assert.equal(schema.$schema, undefined);
  assert.equal(schema.type, "object");
  assert.deepEqual(schema.required, ["text"]);
  const c = new Catalogue();
  c.add(defineTool({ name: "a", input: z.object({}) }, () => "a"));
  const before = c.record("demo").digest;
  assert.match(before, /^[0-9a-f]{16}$/);
  let changes = 0;
  c.onChange(() => changes++);
  c.add(defineTool({ name: "b", input: z.object({}), idempotent: true }, () => "b"));
  assert.notEqual(c.record("demo").digest, before);
  assert.equal(changes, 1);
  assert.deepEqual((c.record("demo").tools[1] as { tool: { annotations: unknown } }).tool.annotations, { idempotentHint: true });
});

test("start-up uses only the subjects a pool may use, and the agreed consumer", () => {
  assert.equal(consumerCreate("kit-ts"), "$JS.API.CONSUMER.CREATE.MCPBUS_CALLS.mcpbus-pool-kit-ts.mcpbus.v2.call.kit-ts");
  assert.equal(poolRecordsLast("kit-ts"), "$JS.API.DIRECT.GET.KV_mcpbus-workers.$KV.mcpbus-workers.kit-ts.*");
  assert.deepEqual(poolConsumerConfig("p"), {
    durable_name: "mcpbus-pool-p",
    name: "mcpbus-pool-p",
    filter_subject: "mcpbus.v2.call.p",
    ack_policy: "explicit",
    ack_wait: 30_000_000_000,
    max_deliver: 5,
    max_ack_pending: 10_000,
    deliver_policy: "all",
    replay_policy: "instant",
  });
});

test("registered_ms is inherited only from a live record of the pool", () => {
  const now = Date.parse("2026-01-01T00:00:10Z");
  const stamp = "2026-01-01T00:00:08.123456789Z";
  const record = (r: Record<string, unknown>) => enc({ pool: "p", ttl_ms: 6000, registered_ms: 1000, ...r });
  assert.equal(registeredFrom("p", 0, stamp, record({}), now), 1000);
  assert.equal(registeredFrom("p", 0, "2026-01-01T00:00:01Z", record({}), now), now, "expired");
  assert.equal(registeredFrom("p", 0, stamp, record({ pool: "q" }), now), now, "another pool");
  assert.equal(registeredFrom("p", 0, stamp, record({ registered_ms: undefined }), now), now);
  assert.equal(registeredFrom("p", 404, "", new Uint8Array(), now), now, "no record");
  assert.equal(registeredFrom("p", 0, stamp, new Uint8Array(), now), now, "a delete marker");
});

test("connection settings come from MCPBUS_NATS_*; secrets are read from files and never shown", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcpbus-ts-"));
  const file = join(dir, "pw");
  writeFileSync(file, "s3cret\n");
  const s = settingsFromEnv({ MCPBUS_NATS_URL: "nats://a:4222, nats://b:4222", MCPBUS_NATS_USER: "u", MCPBUS_NATS_PASSWORD_FILE: file });
  assert.deepEqual(s.servers, ["nats://a:4222", "nats://b:4222"]);
  assert.equal(s.password, "s3cret");
  assert.doesNotMatch(describe(s), /s3cret/);
  const o = connectOptions(settingsFromEnv({ MCPBUS_NATS_URL: "nats://u:p%40ss@h:4222" }));
  assert.deepEqual([o.servers, o.user, o.pass], [["nats://h:4222"], "u", "p@ss"]);
  assert.doesNotMatch(describe(settingsFromEnv({ MCPBUS_NATS_URL: "nats://u:pw@h:4222" })), /pw/);
  assert.throws(() => settingsFromEnv({ MCPBUS_NATS_USER: "u" }), /needs a password/);
  assert.throws(() => settingsFromEnv({ MCPBUS_NATS_TOKEN: "t", MCPBUS_NATS_USER: "u", MCPBUS_NATS_PASSWORD: "p" }), /cannot be combined/);
  assert.throws(() => settingsFromEnv({ MCPBUS_NATS_TLS_CERT: file }), /needs MCPBUS_NATS_TLS_KEY/);
  assert.throws(() => settingsFromEnv({ MCPBUS_NATS_CREDS: join(dir, "missing") }), /MCPBUS_NATS_CREDS: cannot read/);
});
