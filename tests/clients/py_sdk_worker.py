"""A Python SDK worker that changes what it serves while it runs (PROTOCOL section 9), for
tests/tests/python_worker.rs: `grow` adds the tool `grown`, `shrink` removes it.

Pool from MCPBUS_POOL (default `pysdk`); NATS from the MCPBUS_NATS_* environment.
"""

import asyncio
import logging
import os

from mcpbus_worker import Context, Worker

worker = Worker(os.environ.get("MCPBUS_POOL", "pysdk"), heartbeat=1.0)


async def grown(text: str) -> str:
    """Added at run time."""
    return f"grown: {text}"


@worker.tool(description="Adds the tool `grown` to this worker's catalogue.")
async def grow(ctx: Context) -> str:
    ctx.catalogue.add_tool(grown, idempotent=True)
    return "grew"


@worker.tool(description="Removes the tool `grown`.")
async def shrink(ctx: Context) -> str:
    return "shrank" if ctx.catalogue.remove_tool("grown") else "nothing to remove"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(worker.run())
