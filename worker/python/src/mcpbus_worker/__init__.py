"""Python SDK for mcpbus tool workers.

Declare tools, resources and prompts on a `Worker` with decorators (JSON Schema comes from
type hints), then `await worker.run(nats_url)`. The wire protocol is bus-schema/PROTOCOL.md.
"""

from .context import Context
from .declarations import ProtocolError, ToolError
from .principal import Principal
from .worker import Worker

__all__ = ["Context", "Principal", "ProtocolError", "ToolError", "Worker"]
