"""An example mcpbus worker in Python: `python example_worker.py --nats nats://127.0.0.1:4222`.

Connection flags as mcpbus-worker's (`--nats-nkey FILE`, `--nats-tls-ca FILE`, ...), each also
from its MCPBUS_NATS_* variable; the password and token only from MCPBUS_NATS_PASSWORD /
MCPBUS_NATS_TOKEN or a file.

Serves `py_add` (structured output, idempotent), `py_countdown` (progress, logs,
cancellation), `py_fail` (a tool error), `py_whoami` (who is calling), the resource `py://motd` and the prompt
`py_review`. Stops gracefully on SIGTERM or Ctrl-C.
"""

import argparse
import asyncio
import logging
import sys

from mcpbus_worker import Context, ToolError, Worker
from mcpbus_worker.connection import NatsOptionsError, add_arguments, from_arguments

worker = Worker("py-example")


@worker.tool(description="Adds two integers.", idempotent=True, read_only=True)
async def py_add(a: int, b: int) -> dict:
    return {"sum": a + b}


@worker.tool(description="Counts down from n, one progress notification and log line per step.")
async def py_countdown(ctx: Context, n: int, interval_ms: int = 100) -> str:
    for i in range(n, 0, -1):
        await ctx.progress(n - i + 1, n, f"{i} to go")
        await ctx.log("info", {"remaining": i})
        await asyncio.sleep(interval_ms / 1000)
    return "liftoff"


@worker.tool(description="Always fails with the given message.")
async def py_fail(message: str = "py_fail always fails") -> str:
    raise ToolError(message)


@worker.tool(description="Which instance ran the call and, when the gateway checks tokens, who called.",
             idempotent=True, read_only=True)
async def py_whoami(ctx: Context) -> dict:
    out: dict = {"instance": ctx.instance}
    caller = ctx.principal()
    if caller is not None:
        out["principal"] = {
            "issuer": caller.issuer,
            "subject": caller.subject,
            "scopes": list(caller.scopes),
            "claims": caller.claims,
        }
    return out


@worker.resource("py://motd", name="motd", description="Message of the day")
async def motd(uri: str) -> str:
    return "Hello from a Python worker."


@worker.prompt(description="Asks for a review of some code.")
async def py_review(code: str, language: str = "python") -> str:
    return f"Please review this {language} code:\n{code}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", default="py-example")
    parser.add_argument("--instance")
    add_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        nats = from_arguments(args)
    except NatsOptionsError as e:
        sys.exit(f"example_worker: error: {e}")
    worker.pool = args.pool
    if args.instance:
        worker.instance = args.instance
    asyncio.run(worker.run(nats))


if __name__ == "__main__":
    main()
