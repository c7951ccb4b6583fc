"""Calls the kit worker's `kit_ask` with the Python `mcp` SDK, which answers the worker's
elicitation: as a server request on a 2025 session (MODE legacy), as an MRTR round on
2026-07-28 (MODE auto). Then once more from a client that declares no elicitation.

Usage: py_ask_client.py URL MODE. Prints one JSON object for tests/tests/python_worker.rs.
"""

import asyncio
import json
import sys
from typing import Any

from mcp import Client, types


async def on_elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    on_elicit.asked.append(params.message)
    return types.ElicitResult(action="accept", content={"answer": "yes"})


on_elicit.asked = []


def texts(result: Any) -> list[str]:
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def main(url: str, mode: str) -> None:
    kwargs: dict[str, Any] = {} if mode == "auto" else {"mode": mode}
    out: dict[str, Any] = {}
    async with Client(url, elicitation_callback=on_elicit, **kwargs) as client:
        out["protocol_version"] = str(client.protocol_version)
        asked = await client.call_tool("kit_ask", {})
        out["asked"] = texts(asked)
        out["asked_is_error"] = bool(asked.is_error)
        out["questions"] = on_elicit.asked
    async with Client(url, **kwargs) as client:
        try:
            refused = await client.call_tool("kit_ask", {})
            out["without_capability"] = {"result": texts(refused), "is_error": bool(refused.is_error)}
        except Exception as e:  # a JSON-RPC error
            error = getattr(e, "error", None)
            out["without_capability"] = {"code": getattr(error, "code", None), "message": str(e)}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
