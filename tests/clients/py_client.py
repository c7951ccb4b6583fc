"""Drives a real MCP client (the Python `mcp` SDK) against an mcpbus gateway.

Usage: py_client.py URL MODE    (MODE: auto | legacy)

Lists tools, calls `echo` and `add`, and prints one JSON object with what it saw, so the
Rust integration test can assert on it. Any exception exits non-zero.
"""

import asyncio
import json
import sys

from mcp import Client


async def main(url: str, mode: str) -> None:
    kwargs = {} if mode == "auto" else {"mode": mode}
    async with Client(url, **kwargs) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"text": "hello from python"})
        add = await client.call_tool("add", {"a": 2, "b": 3})
        fail = await client.call_tool("fail", {"message": "boom"})
        version = getattr(client, "protocol_version", None)
        session = getattr(client, "session", None)
        if version is None and session is not None:
            for attr in ("protocol_version", "negotiated_version"):
                version = getattr(session, attr, None) or version
        out = {
            "protocol_version": str(version) if version is not None else None,
            "tools": sorted(t.name for t in tools.tools),
            "echo": [c.text for c in echo.content if getattr(c, "type", "") == "text"],
            "echo_is_error": bool(echo.is_error),
            "add_structured": add.structured_content,
            "fail_is_error": bool(fail.is_error),
            "fail_text": [c.text for c in fail.content if getattr(c, "type", "") == "text"],
        }
        print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
