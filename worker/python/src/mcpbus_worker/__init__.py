"""Python SDK for mcpbus tool workers.

Declare tools, resources and prompts on a `Worker` with decorators (JSON Schema comes from
type hints), then `await worker.run(nats)` (seed URLs, or `NatsOptions` with credentials and
TLS; default from the MCPBUS_NATS_* environment). `worker.catalogue` (and `ctx.catalogue`)
changes what is served while it runs; `ctx.ask` asks the client on both lanes;
`worker.announce` (and `ctx.announce`) sends a server-wide message. The wire
protocol is bus-schema/PROTOCOL.md.
"""

from .announce import AnnounceError
from .catalogue import Catalogue
from .connection import NatsOptions, NatsOptionsError
from .context import Context
from .declarations import ProtocolError, ToolError
from .mrtr import InputRequired
from .principal import Principal
from .worker import Worker

__all__ = [
    "AnnounceError",
    "Catalogue",
    "Context",
    "InputRequired",
    "NatsOptions",
    "NatsOptionsError",
    "Principal",
    "ProtocolError",
    "ToolError",
    "Worker",
]
