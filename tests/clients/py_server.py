"""A small MCP server (Python `mcp` SDK) for the bridge tests: stdio, or Streamable HTTP
with `--http PORT` (then it also requires `Authorization: Bearer test-token`).

Tools: `py_server_shout` (text), `py_server_count` (progress while it counts),
`py_server_crash` (exits the process, to test the bridge's restart), `py_server_env` (the
process's environment and user, to test what the bridge isolates).

With `OTEL_EXPORTER_OTLP_ENDPOINT` set (the bridge passes it with `--env`), the SDK's own
OpenTelemetry middleware exports its server spans over OTLP/HTTP: its parent is the trace
context the bridge put in the request's `_meta` (SEP-414), as the trace test checks.
"""

import asyncio
import json
import os

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    # Exported as each span ends: a bridged server is stopped, not shut down.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

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


@server.tool(description="The server process's environment variables, user and group, as JSON.")
async def py_server_env() -> str:
    return json.dumps({"env": dict(os.environ), "uid": os.getuid(), "gid": os.getgid()})


@server.tool(description="Exits the server process at once.")
async def py_server_crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        import uvicorn

        app = server.streamable_http_app()

        async def guarded(scope, receive, send):
            # A stand-in for a real server's auth: the bridge must send the configured token.
            if scope["type"] == "http":
                headers = dict(scope.get("headers") or [])
                if headers.get(b"authorization") != b"Bearer test-token":
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await app(scope, receive, send)

        uvicorn.run(guarded, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        server.run("stdio")
