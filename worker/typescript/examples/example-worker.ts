/**
 * The SDK's example worker: pool `ts-example` (or MCPBUS_POOL), a few tools showing
 * structured output, progress, logs, cancellation, an input request on both lanes, and the
 * caller. Run: `node dist/examples/example-worker.js` with MCPBUS_NATS_URL set.
 */

import { defineTool, ToolError, Worker, z } from "../src/index.js";

const worker = new Worker({ pool: process.env.MCPBUS_POOL || "ts-example", maxInFlight: 8, heartbeatMs: 1000 });

/** Sleeps `ms`, or less when the call is stopped. */
const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

worker.tool(
  defineTool(
    {
      name: "ts_add",
      title: "Add",
      description: "Adds two numbers.",
      input: z.object({ a: z.number().describe("First addend"), b: z.number().describe("Second addend") }),
      idempotent: true,
      annotations: { readOnlyHint: true },
    },
    ({ a, b }) => ({ sum: a + b }),
  ),
);

worker.tool(
  defineTool(
    {
      name: "ts_countdown",
      description: "Counts down from n, with progress and a log line per step; cancellable.",
      input: z.object({ n: z.number().int().min(1).max(1000), interval_ms: z.number().int().min(0).default(100) }),
      idempotent: true,
    },
    async ({ n, interval_ms }, ctx) => {
      for (let i = 1; i <= n; i++) {
        if (ctx.signal.aborted) return;
        await ctx.progress(i, n, `${n - i} to go`);
        await ctx.log("info", `tick ${n - i}`, "countdown");
        await pause(interval_ms, ctx.signal);
      }
      return "liftoff";
    },
  ),
);

worker.tool(
  defineTool(
    {
      name: "ts_greet",
      description: "Asks the user for their name (elicitation), then greets them.",
      input: z.object({}),
    },
    async (_args, ctx) => {
      const answer = (await ctx.ask(
        "elicitation/create",
        {
          message: "What is your name?",
          requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
        },
        { key: "name" },
      )) as { action?: string; content?: { name?: string } };
      if (answer.action !== "accept") throw new ToolError(`the user chose ${answer.action ?? "nothing"}`);
      return `Hello, ${answer.content?.name ?? "stranger"}!`;
    },
  ),
);

worker.tool(
  defineTool(
    {
      name: "ts_fail",
      description: "Always fails with the given message (a tool error the model reads).",
      input: z.object({ message: z.string() }),
      idempotent: true,
    },
    ({ message }) => {
      throw new ToolError(message);
    },
  ),
);

worker.tool(
  defineTool(
    { name: "ts_whoami", description: "Who is calling, as the gateway verified it.", input: z.object({}), idempotent: true },
    (_args, ctx) => (ctx.principal ? { issuer: ctx.principal.issuer, subject: ctx.principal.subject } : "anonymous"),
  ),
);

await worker.run();
// Drained and deregistered (PROTOCOL.md §4.3): exit 0 even if a handler ignored its abort signal.
process.exit(0);
