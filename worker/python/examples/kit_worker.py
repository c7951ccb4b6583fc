"""The worker-kit tools, served by the Python SDK: what `mcpbusctl worker-check` checks.

Run by the kit, which sets MCPBUS_POOL, MCPBUS_INSTANCE and MCPBUS_NATS_URL (plus any
MCPBUS_NATS_* login); every MCPBUS_NATS_* setting is read as the Rust binaries read it.
`max_in_flight` 4, a heartbeat every second. Stops gracefully on SIGTERM or Ctrl-C.

| Tool | Behaviour |
|---|---|
| `kit_echo` | `text` back (idempotent) |
| `kit_once` | `text` back (not idempotent) |
| `kit_progress` | `steps` progress notifications `delay_ms` apart, a log line, `done <steps>` |
| `kit_slow` | waits `ms` (stops at once when cancelled), `slept <ms>` |
| `kit_fail` | a tool error with `message` |
| `kit_ask` | asks the client `kit?` (elicitation), `answer: <answer>` |
"""

import asyncio
import logging
import os
import sys

from mcpbus_worker import Context, ToolError, Worker
from mcpbus_worker.connection import NatsOptions, NatsOptionsError

ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}

worker = Worker(
    os.environ.get("MCPBUS_POOL", "kit-python"),
    instance=os.environ.get("MCPBUS_INSTANCE") or None,
    max_in_flight=4,
    heartbeat=1.0,
)


@worker.tool(description="Returns the given text.", idempotent=True)
async def kit_echo(text: str) -> str:
    return text


@worker.tool(description="Returns the given text; not safe to run twice.")
async def kit_once(text: str) -> str:
    return text


@worker.tool(description="Reports progress steps times, delay_ms apart, then logs.", idempotent=True)
async def kit_progress(ctx: Context, steps: int, delay_ms: int) -> str:
    for i in range(1, steps + 1):
        await ctx.progress(i, steps)  # sent only when the call has a progressToken
        await asyncio.sleep(delay_ms / 1000)
    await ctx.log("info", "progress done", logger="kit")
    return f"done {steps}"


@worker.tool(description="Waits ms milliseconds; stops at once when cancelled.")
async def kit_slow(ms: int) -> str:
    await asyncio.sleep(ms / 1000)
    return f"slept {ms}"


@worker.tool(description="Fails with the given message.", idempotent=True)
async def kit_fail(message: str) -> str:
    raise ToolError(message)


@worker.tool(description="Asks the client for an answer (elicitation).")
async def kit_ask(ctx: Context) -> str:
    result = await ctx.elicit("kit?", ANSWER_SCHEMA, key="answer")
    content = result.get("content") or {}
    return f"answer: {content.get('answer')}"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        nats = NatsOptions.from_env()
    except NatsOptionsError as e:
        sys.exit(f"kit_worker: error: {e}")
    asyncio.run(worker.run(nats))


if __name__ == "__main__":
    main()
