"""Tools, resources and prompts, declared with decorators; JSON Schema from type hints."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, get_type_hints

import pydantic

from . import contract as c
from .context import Context


class ToolError(Exception):
    """A tool failure the model should read: the client gets `isError: true` and the message."""


class ProtocolError(Exception):
    """A protocol-level failure: the client gets this JSON-RPC error instead of a result."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


Handler = Callable[..., Awaitable[Any]]


def _arguments_model(fn: Handler) -> tuple[type[pydantic.BaseModel], str | None]:
    """A pydantic model of `fn`'s parameters (its input schema), and the name of the
    parameter that receives the `Context`, if any."""
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    context_param = None
    for name, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(name, Any)
        if annotation is Context:
            context_param = name
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    model = pydantic.create_model(f"{fn.__name__}_arguments", **fields)  # type: ignore[call-overload]
    return model, context_param


def _input_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})
    return schema


@dataclass
class Tool:
    name: str
    handler: Handler
    model: type[pydantic.BaseModel]
    context_param: str | None
    decl: dict[str, Any]
    timeout_ms: int | None = None

    @property
    def idempotent(self) -> bool:
        return bool(self.decl.get("annotations", {}).get(c.IDEMPOTENT_HINT))

    def entry(self) -> dict[str, Any]:
        """The catalogue entry (`ToolEntry`)."""
        entry: dict[str, Any] = {"tool": self.decl}
        if self.timeout_ms is not None:
            entry["timeout_ms"] = self.timeout_ms
        return entry

    async def call(self, ctx: Context, arguments: Any) -> dict[str, Any]:
        """Runs the handler; the MCP `CallToolResult`. Protocol errors propagate."""
        try:
            args = self.model.model_validate(arguments or {})
        except pydantic.ValidationError as e:
            return tool_error(f"invalid arguments: {_problems(e)}")
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if self.context_param:
            kwargs[self.context_param] = ctx
        try:
            return as_result(await self.handler(**kwargs))
        except ToolError as e:
            return tool_error(str(e))


def _problems(e: pydantic.ValidationError) -> str:
    """What is wrong with some arguments, one `field: problem` per error, for a model to read."""
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'arguments'}: {err['msg']}" for err in e.errors()
    )


def tool_error(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


def as_result(value: Any) -> dict[str, Any]:
    """A handler's return value as a `CallToolResult`: text for strings, structured content
    (with its JSON as text) for mappings and models, content blocks passed through."""
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="json")
    if value is None:
        return {"content": [], "isError": False}
    if isinstance(value, str):
        return {"content": [{"type": "text", "text": value}], "isError": False}
    if isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"))
        return {"content": [{"type": "text", "text": text}], "structuredContent": value, "isError": False}
    if isinstance(value, list) and all(isinstance(b, dict) and "type" in b for b in value):
        return {"content": value, "isError": False}
    return {"content": [{"type": "text", "text": json.dumps(value)}], "isError": False}


@dataclass
class Resource:
    uri: str
    handler: Handler
    decl: dict[str, Any]

    async def read(self, ctx: Context, uri: str) -> dict[str, Any]:
        value = await self.handler(uri)
        mime = self.decl.get("mimeType", "text/plain")
        if isinstance(value, (bytes, bytearray)):
            import base64

            content = {"uri": uri, "mimeType": mime, "blob": base64.b64encode(value).decode()}
        else:
            content = {"uri": uri, "mimeType": mime, "text": str(value)}
        return {"contents": [content]}


@dataclass
class Prompt:
    name: str
    handler: Handler
    model: type[pydantic.BaseModel]
    decl: dict[str, Any] = field(default_factory=dict)

    async def get(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            args = self.model.model_validate(arguments or {})
        except pydantic.ValidationError as e:
            raise ProtocolError(c.INVALID_PARAMS, f"invalid prompt arguments: {_problems(e)}") from e
        value = await self.handler(**{n: getattr(args, n) for n in type(args).model_fields})
        if isinstance(value, str):
            value = {"messages": [{"role": "user", "content": {"type": "text", "text": value}}]}
        return value


def tool_decl(
    name: str,
    fn: Handler,
    model: type[pydantic.BaseModel],
    description: str | None,
    title: str | None,
    annotations: dict[str, Any] | None,
) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": name, "inputSchema": _input_schema(model)}
    if description or fn.__doc__:
        decl["description"] = description or inspect.cleandoc(fn.__doc__ or "")
    if title:
        decl["title"] = title
    if annotations:
        decl["annotations"] = annotations
    return decl


def prompt_decl(name: str, fn: Handler, model: type[pydantic.BaseModel], description: str | None) -> dict[str, Any]:
    arguments = [
        {"name": n, "required": f.is_required(), **({"description": f.description} if f.description else {})}
        for n, f in model.model_fields.items()
    ]
    decl: dict[str, Any] = {"name": name, "arguments": arguments}
    if description or fn.__doc__:
        decl["description"] = description or inspect.cleandoc(fn.__doc__ or "")
    return decl


__all__ = ["ProtocolError", "Prompt", "Resource", "Tool", "ToolError", "_arguments_model"]
