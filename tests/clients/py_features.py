"""Drives the Python `mcp` SDK through an mcpbus cluster beyond plain tool calls.

Usage: py_features.py URL MODE    (MODE: auto | legacy)

Resources, prompts and completion; the client's own elicitation, sampling and roots
callbacks answering worker questions (server requests on a 2025 session, MRTR rounds on
2026-07-28); and, in auto mode, a task (the tasks extension), resolved by polling tasks/get.
Prints one JSON object for tests/tests/python_client.rs. Any exception exits non-zero.
"""

import asyncio
import json
import sys
from typing import Any, Literal

from mcp import Client, types
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp_types._types import RequestParams
from pydantic import ConfigDict, Field

TASKS = "io.modelcontextprotocol/tasks"


async def on_elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"username": "py", "email": "py@example.com", "name": "py"})


async def on_sample(_context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by python"),
        model="test-model",
        stop_reason="endTurn",
    )


async def on_roots(_context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///py/root", name="py root")])


class CreateTaskResult(types.Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str


class TaskState(types.Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")
    status: str
    result: dict[str, Any] | None = None


class TasksGetParams(RequestParams):
    task_id: str = Field(alias="taskId")


class TasksGet(types.Request[TasksGetParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class Tasks(ClientExtension):
    """The tasks extension, client side: a CreateTaskResult is polled until it settles."""

    identifier = TASKS

    def claims(self):
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    async def resolve(self, created: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        Tasks.created.append(created.task_id)
        for _ in range(200):
            state = await ctx.session.send_request(
                TasksGet(params=TasksGetParams(taskId=created.task_id)), TaskState
            )
            if state.status == "completed" and state.result is not None:
                return types.CallToolResult.model_validate(state.result)
            if state.status in ("failed", "cancelled"):
                raise RuntimeError(f"task {created.task_id} ended {state.status}")
            await asyncio.sleep(0.1)
        raise RuntimeError("the task did not finish")

    created: list[str] = []


def texts(result: Any) -> list[str]:
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def main(url: str, mode: str) -> None:
    kwargs: dict[str, Any] = {} if mode == "auto" else {"mode": mode}
    if mode == "auto":
        kwargs["extensions"] = [Tasks()]
    async with Client(
        url,
        elicitation_callback=on_elicit,
        sampling_callback=on_sample,
        list_roots_callback=on_roots,
        **kwargs,
    ) as client:
        resources = await client.list_resources()
        templates = await client.list_resource_templates()
        text = await client.read_resource("test://static-text")
        prompts = await client.list_prompts()
        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        completion = await client.complete(
            types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
            {"name": "arg1", "value": "test"},
        )
        elicited = await client.call_tool("test_elicitation", {"message": "who are you?"})
        sampled = await client.call_tool("test_sampling", {"prompt": "say something"})
        roots = await client.call_tool("test_input_required_result_list_roots", {})
        out: dict[str, Any] = {
            "protocol_version": str(client.protocol_version),
            "resources": sorted(r.uri for r in resources.resources),
            "templates": sorted(t.uri_template for t in templates.resource_templates),
            "read": [c.text for c in text.contents if hasattr(c, "text")],
            "prompts": sorted(p.name for p in prompts.prompts),
            "prompt": [m.content.text for m in prompt.messages if getattr(m.content, "type", "") == "text"],
            "completion": completion.completion.values,
            "elicited": texts(elicited),
            "sampled": texts(sampled),
            "roots": texts(roots),
        }
        if mode == "auto":
            task = await client.call_tool("slow_compute", {"seconds": 1, "label": "py-task"})
            out["task"] = texts(task)
            out["tasks_created"] = len(Tasks.created)
        print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
