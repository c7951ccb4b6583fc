"""A small stdio MCP server (Python `mcp` SDK) for the bridge tests.

Tools: `py_server_shout` (text), `py_server_count` (progress while it counts),
`py_server_crash` (exits the process, to test the bridge's restart).
"""

import asyncio
import os

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

server = MCPServer("py-bridge-test")


@server.tool(description="Returns the text in capitals.")
async def py_server_shout(text: str) -> str:
    return text.upper()


@server.tool(description="Counts to n, reporting progress at each step.")
async def py_server_count(n: int, ctx: Context) -> str:
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)
        await asyncio.sleep(0.05)
    return f"counted to {n}"


@server.tool(description="Exits the server process at once.")
async def py_server_crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
