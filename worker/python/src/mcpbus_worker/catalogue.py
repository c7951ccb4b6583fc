"""What a worker serves, changeable while it runs (PROTOCOL section 9).

Declared with decorators before `Worker.run`, and added or removed at any time after, by the
worker's owner (`worker.catalogue`) or a handler (`ctx.catalogue`). Each change bumps
`revision`; the worker's registration notices it, stores the new `CatalogRecord` under its
new digest, then beats a `WorkerRecord` naming it, and gateways announce `list_changed`.
A call decides against what is served when it arrives.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from . import contract as c
from . import protocol as p
from .declarations import Prompt, Resource, Tool, _arguments_model, prompt_decl, tool_decl

Handler = Callable[..., Awaitable[Any]]


class Catalogue:
    """The tools, resources and prompts of one worker."""

    def __init__(self) -> None:
        #: By name, URI and name: what calls are decided against.
        self.tools: dict[str, Tool] = {}
        self.resources: dict[str, Resource] = {}
        self.prompts: dict[str, Prompt] = {}
        #: Counts changes, so that the registration can tell it has caught up.
        self.revision = 0
        #: Set on every change; the registration clears it when it has taken the change.
        self.changed = asyncio.Event()

    def __bool__(self) -> bool:
        return bool(self.tools or self.resources or self.prompts)

    def _bump(self) -> None:
        self.revision += 1
        self.changed.set()

    # -- tools ----------------------------------------------------------------------------

    def add_tool(
        self,
        fn: Handler,
        name: str | None = None,
        *,
        description: str | None = None,
        title: str | None = None,
        idempotent: bool = False,
        read_only: bool = False,
        timeout: float | None = None,
    ) -> Tool:
        """Serves `fn` as a tool (its parameters' type hints are the `inputSchema`), replacing
        any tool of that name."""
        tool_name = name or fn.__name__
        model, context_param = _arguments_model(fn)
        annotations: dict[str, Any] = {}
        if idempotent:
            annotations[c.IDEMPOTENT_HINT] = True
        if read_only:
            annotations["readOnlyHint"] = True
        tool = Tool(
            name=tool_name,
            handler=fn,
            model=model,
            context_param=context_param,
            decl=tool_decl(tool_name, fn, model, description, title, annotations or None),
            timeout_ms=int(timeout * 1000) if timeout is not None else None,
        )
        self.tools[tool_name] = tool
        self._bump()
        return tool

    def remove_tool(self, name: str) -> bool:
        """Stops serving tool `name`; false if there was none."""
        if self.tools.pop(name, None) is None:
            return False
        self._bump()
        return True

    # -- resources ------------------------------------------------------------------------

    def add_resource(
        self,
        fn: Callable[[str], Awaitable[Any]],
        uri: str,
        *,
        name: str | None = None,
        description: str | None = None,
        mime_type: str = "text/plain",
    ) -> Resource:
        """Serves `fn(uri) -> str | bytes` at `uri`, replacing any resource there."""
        decl: dict[str, Any] = {"uri": uri, "name": name or fn.__name__, "mimeType": mime_type}
        if description:
            decl["description"] = description
        resource = Resource(uri=uri, handler=fn, decl=decl)
        self.resources[uri] = resource
        self._bump()
        return resource

    def remove_resource(self, uri: str) -> bool:
        if self.resources.pop(uri, None) is None:
            return False
        self._bump()
        return True

    # -- prompts --------------------------------------------------------------------------

    def add_prompt(self, fn: Handler, name: str | None = None, *, description: str | None = None) -> Prompt:
        """Serves `fn` (returning the prompt's text or a `GetPromptResult`) as a prompt."""
        prompt_name = name or fn.__name__
        model, _ = _arguments_model(fn)
        prompt = Prompt(name=prompt_name, handler=fn, model=model, decl=prompt_decl(prompt_name, fn, model, description))
        self.prompts[prompt_name] = prompt
        self._bump()
        return prompt

    def remove_prompt(self, name: str) -> bool:
        if self.prompts.pop(name, None) is None:
            return False
        self._bump()
        return True

    # -- the record -----------------------------------------------------------------------

    def record(self, pool: str) -> dict[str, Any]:
        """The `CatalogRecord` of what is served now, with its content digest."""
        tools = [t.entry() for _, t in sorted(self.tools.items())]
        resources = [r.decl for _, r in sorted(self.resources.items())]
        prompts = [pr.decl for _, pr in sorted(self.prompts.items())]
        return {
            "protocol": c.PROTOCOL_VERSION,
            "pool": pool,
            "digest": p.digest(tools, resources, prompts),
            "tools": tools,
            "resources": resources,
            "resource_templates": [],
            "prompts": prompts,
        }
