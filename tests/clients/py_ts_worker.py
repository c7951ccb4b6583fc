"""Drives the Python `mcp` SDK against the TypeScript SDK's example worker (pool `ts-example`).

Usage: py_ts_worker.py URL MODE    (MODE: auto | legacy)

Lists tools, calls `ts_add`, follows `ts_countdown`'s progress, and answers `ts_greet`'s
elicitation with the client's own callback (a request on the 2025 session stream in legacy
mode, an InputRequiredResult round on 2026-07-28 in auto mode). Prints one JSON object for
tests/tests/typescript_worker.rs. Any exception exits non-zero.
"""

import asyncio
import json
import sys
from typing import Any

from mcp import Client, types


async def on_elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    on_elicit.messages.append(params.message)
    return types.ElicitResult(action="accept", content={"name": "Ada"})


on_elicit.messages = []


def texts(result: Any) -> list[str]:
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def main(url: str, mode: str) -> None:
    kwargs: dict[str, Any] = {} if mode == "auto" else {"mode": mode}
    progress: list[list[float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append([value, total])

    async with Client(url, elicitation_callback=on_elicit, **kwargs) as client:
        tools = await client.list_tools()
        add = await client.call_tool("ts_add", {"a": 2, "b": 40})
        countdown = await client.call_tool("ts_countdown", {"n": 3, "interval_ms": 10}, progress_callback=on_progress)
        greet = await client.call_tool("ts_greet", {})
        bad = await client.call_tool("ts_add", {"a": "x"})
        print(
            json.dumps(
                {
                    "protocol_version": str(client.protocol_version),
                    "tools": sorted(t.name for t in tools.tools),
                    "add": add.structured_content,
                    "countdown": texts(countdown),
                    "progress": progress,
                    "greet": texts(greet),
                    "elicited": on_elicit.messages,
                    "bad_is_error": bool(bad.is_error),
                    "bad": texts(bad),
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
