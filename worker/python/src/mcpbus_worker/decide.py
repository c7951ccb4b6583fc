"""Whether a call pulled from the queue may run: every refusal a worker gives before handler
code starts, with the reply the client gets for it (the SDKs' outcome table, issue 16).

- `Unreadable`: nobody to answer (no string `call_id` and `reply_to`): TERM, no reply.
- `Refused`: answered with this `error`, then TERM.
- otherwise the call runs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import contract as c
from . import protocol as p
from .catalogue import Catalogue
from .principal import MalformedPrincipal, Principal, principal_of

LANES = ("session", "stateless")


class Unreadable(Exception):
    """The body cannot be answered: terminate it without a reply."""


class Refused(Exception):
    """The call is answered with `event` (an `error`) and terminated without running."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(event["error"]["message"])
        self.event = event


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_call(data: bytes) -> tuple[dict[str, Any], Principal | None]:
    """The `CallRequest` in `data` and its caller. Raises `Unreadable` or `Refused`."""
    try:
        request = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise Unreadable("not JSON") from e
    if not isinstance(request, dict):
        raise Unreadable("not a JSON object")
    for field in ("call_id", "reply_to"):
        if not isinstance(request.get(field), str) or not request[field]:
            raise Unreadable(f"{field} is missing or not a string")
    # Absent means this version, as bus-schema reads it.
    protocol = request.get("protocol", c.PROTOCOL_VERSION)
    if _is_int(protocol) and protocol != c.PROTOCOL_VERSION:
        raise Refused(
            p.wire_error(
                c.INTERNAL_ERROR,
                f"this worker speaks protocol {c.PROTOCOL_VERSION}, not {protocol}",
                {"reason": c.REASON_UNSUPPORTED_PROTOCOL, "protocol": protocol},
            )
        )
    problem = _malformed(request, protocol)
    principal = None
    if problem is None:
        try:
            principal = principal_of(request)
        except MalformedPrincipal as e:
            problem = str(e)
    if problem is not None:
        raise Refused(p.wire_error(c.INTERNAL_ERROR, f"malformed call: {problem}", {"reason": c.REASON_MALFORMED_CALL}))
    return request, principal


def _malformed(request: dict[str, Any], protocol: Any) -> str | None:
    """What is wrong with a call's known fields, if anything (the principal aside)."""
    if not _is_int(protocol):
        return "protocol is not a number"
    if not isinstance(request.get("method"), str):
        return "method is missing or not a string"
    if not _is_int(request.get("deadline_ms")) or request["deadline_ms"] < 0:
        return "deadline_ms is missing or not a non-negative integer"
    if request.get("lane") not in LANES:
        return "lane is missing or not session or stateless"
    optional = {
        "params": dict,
        "protocol_version": str,
        "client_capabilities": dict,
        "reply_durable": bool,
        "task_id": str,
        "cancel_on": str,
    }
    for field, kind in optional.items():
        value = request.get(field)
        if value is not None and not isinstance(value, kind):
            return f"{field} is not a {kind.__name__}"
    return None


def decide(served: Catalogue, request: dict[str, Any], delivered: int) -> None:
    """Raises `Refused` if the call may not run (deadline, redelivery, unknown name)."""
    if request["deadline_ms"] / 1000 <= time.time():
        raise Refused(
            p.wire_error(
                c.INTERNAL_ERROR,
                "the call's deadline passed before a worker picked it up",
                {"reason": c.REASON_DEADLINE_PASSED},
            )
        )
    params = request.get("params") or {}
    method = request["method"]
    if method == c.METHOD_TOOLS_CALL:
        name = params.get("name")
        tool = served.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            raise Refused(
                p.wire_error(c.INVALID_PARAMS, f"Unknown tool: {name}", {"reason": c.REASON_UNKNOWN_TOOL, "tool": name})
            )
        if delivered > 1 and not tool.idempotent:
            raise Refused(
                p.wire_error(
                    c.INTERNAL_ERROR,
                    f"the worker running tool {name!r} stopped before answering; the tool is not "
                    "idempotent (annotations.idempotentHint), so it was not run again",
                    {"reason": c.REASON_WORKER_LOST, "tool": name},
                )
            )
    elif method == c.METHOD_RESOURCES_READ:
        uri = params.get("uri")
        if not isinstance(uri, str) or uri not in served.resources:
            code = c.RESOURCE_NOT_FOUND if request["lane"] == c.LANE_SESSION else c.INVALID_PARAMS
            raise Refused(
                p.wire_error(code, f"Resource not found: {uri}", {"reason": c.REASON_UNKNOWN_RESOURCE, "uri": uri})
            )
    elif method == c.METHOD_PROMPTS_GET:
        name = params.get("name")
        prompt = served.prompts.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise Refused(
                p.wire_error(c.INVALID_PARAMS, f"Unknown prompt: {name}", {"reason": c.REASON_UNKNOWN_PROMPT, "prompt": name})
            )
        arguments = params.get("arguments") or {}
        for argument in prompt.decl.get("arguments", []):
            if argument.get("required") and (not isinstance(arguments, dict) or argument["name"] not in arguments):
                raise Refused(p.wire_error(c.INVALID_PARAMS, f"prompt {name!r} needs argument {argument['name']!r}"))
    elif method == c.METHOD_COMPLETION_COMPLETE:
        ref = params.get("ref") if isinstance(params.get("ref"), dict) else {}
        known = (ref.get("type") == "ref/prompt" and ref.get("name") in served.prompts) or (
            ref.get("type") == "ref/resource" and ref.get("uri") in served.resources
        )
        if not known:
            raise Refused(
                p.wire_error(
                    c.INVALID_PARAMS, f"Unknown completion reference {ref}", {"reason": c.REASON_UNKNOWN_COMPLETION_REF}
                )
            )
    else:
        raise Refused(
            p.wire_error(
                c.METHOD_NOT_FOUND,
                f"worker does not serve method {method!r}",
                {"reason": c.REASON_UNKNOWN_METHOD, "method": method},
            )
        )
