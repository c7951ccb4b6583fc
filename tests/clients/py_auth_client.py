"""The real Python MCP SDK as an OAuth client of an mcpbus gateway, unattended.

Usage: py_auth_client.py URL MODE ISSUER CLIENT_ID

MODE: auto | legacy. The SDK's own client-credentials support
(`ClientCredentialsOAuthProvider`) does the whole MCP authorization flow: the gateway's 401,
its Protected Resource Metadata, the authorization server's metadata, the token request with
`resource=URL`, then the bearer header on every request. The client secret is
`<CLIENT_ID>-secret` (see tests/clients/oidc/provider.mjs). Prints one JSON object.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


class MemoryStorage:
    """Tokens for this run only."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def main(url: str, mode: str, issuer: str, client_id: str) -> None:
    storage = MemoryStorage()
    auth = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=storage,
        client_id=client_id,
        client_secret=f"{client_id}-secret",
        scope="mcp:tools",
        issuer=issuer,
    )
    http = create_mcp_http_client(auth=auth)
    kwargs = {} if mode == "auto" else {"mode": mode}
    async with http:
        async with Client(streamable_http_client(url, http_client=http), **kwargs) as client:
            tools = await client.list_tools()
            echo = await client.call_tool("echo", {"text": "hello with a token"})
            print(
                json.dumps(
                    {
                        "tools": sorted(t.name for t in tools.tools),
                        "echo": [c.text for c in echo.content if getattr(c, "type", "") == "text"],
                        "got_token": storage.tokens is not None,
                    }
                )
            )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
