/**
 * The worker the kit (`mcpbusctl worker-check`) runs against this SDK: exactly the tools of
 * PROTOCOL.md §10, on the pool, NATS login and instance the kit passes in the environment
 * (MCPBUS_POOL, MCPBUS_NATS_*, MCPBUS_INSTANCE), max_in_flight 4, heartbeat 1000 ms.
 */

import { defineTool, ToolError, Worker, z } from "../src/index.js";

const worker = new Worker({ maxInFlight: 4, heartbeatMs: 1000 });

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

const text = z.object({ text: z.string() });

worker
  .tool(defineTool({ name: "kit_echo", input: text, idempotent: true }, ({ text }) => text))
  .tool(defineTool({ name: "kit_once", input: text }, ({ text }) => text))
  .tool(
    defineTool(
      { name: "kit_progress", input: z.object({ steps: z.number().int(), delay_ms: z.number().int() }), idempotent: true },
      async ({ steps, delay_ms }, ctx) => {
        for (let i = 1; i <= steps; i++) {
          await ctx.progress(i, steps);
          await pause(delay_ms, ctx.signal);
        }
        await ctx.log("info", "progress done", "kit");
        return `done ${steps}`;
      },
    ),
  )
  .tool(
    defineTool({ name: "kit_slow", input: z.object({ ms: z.number().int() }) }, async ({ ms }, ctx) => {
      await pause(ms, ctx.signal);
      return `slept ${ms}`;
    }),
  )
  .tool(
    defineTool({ name: "kit_fail", input: z.object({ message: z.string() }), idempotent: true }, ({ message }) => {
      throw new ToolError(message);
    }),
  )
  .tool(
    defineTool({ name: "kit_ask", input: z.object({}) }, async (_args, ctx) => {
      const answer = (await ctx.ask(
        "elicitation/create",
        {
          message: "kit?",
          requestedSchema: { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] },
        },
        { key: "answer" },
      )) as { content?: { answer?: unknown } };
      return `answer: ${String(answer.content?.answer)}`;
    }),
  );

await worker.run();
// Drained and deregistered (PROTOCOL.md §4.3): exit 0 even if a handler ignored its abort signal.
process.exit(0);
