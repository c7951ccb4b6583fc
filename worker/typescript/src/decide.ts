/**
 * Whether a readable call may run, and which tool runs it: every refusal a worker gives
 * before any handler code starts (PROTOCOL.md §5.8), with the JSON-RPC error the client gets.
 * This worker serves tools only, so a resource, prompt or completion is refused as unknown.
 */

import * as c from "./contract.js";
import type { CallRequest } from "./call.js";
import type { Catalogue } from "./catalogue.js";
import { type WireError, wireError } from "./replies.js";
import type { ToolDef } from "./tool.js";

export type Decision = { run: ToolDef } | { refuse: WireError };

const str = (v: unknown) => (typeof v === "string" ? v : "");

export function decide(request: CallRequest, delivery: number, catalogue: Catalogue, nowMs: number): Decision {
  if (request.deadlineMs <= nowMs) {
    return {
      refuse: wireError(c.CODE.internalError, "the call's deadline passed before a worker picked it up", {
        reason: c.REASON.deadlinePassed,
      }),
    };
  }
  switch (request.method) {
    case c.METHOD_TOOLS_CALL: {
      const name = str(request.params.name);
      const tool = catalogue.get(name);
      if (tool === undefined) {
        return {
          refuse: wireError(c.CODE.invalidParams, `Unknown tool: ${name}`, { reason: c.REASON.unknownTool, tool: name }),
        };
      }
      if (delivery > 1 && !tool.idempotent) {
        return {
          refuse: wireError(
            c.CODE.internalError,
            `the worker running tool ${JSON.stringify(name)} stopped before answering; the tool is not idempotent (annotations.idempotentHint), so it was not run again`,
            { reason: c.REASON.workerLost, tool: name },
          ),
        };
      }
      return { run: tool };
    }
    case c.METHOD_RESOURCES_READ: {
      const uri = str(request.params.uri);
      const code = request.lane === c.LANE_SESSION ? c.CODE.resourceNotFound : c.CODE.invalidParams;
      return { refuse: wireError(code, `Resource not found: ${uri}`, { reason: c.REASON.unknownResource, uri }) };
    }
    case c.METHOD_PROMPTS_GET: {
      const name = str(request.params.name);
      return { refuse: wireError(c.CODE.invalidParams, `Unknown prompt: ${name}`, { reason: c.REASON.unknownPrompt, prompt: name }) };
    }
    default:
      return {
        refuse: wireError(c.CODE.methodNotFound, `worker does not serve method ${JSON.stringify(request.method)}`, {
          reason: c.REASON.unknownMethod,
          method: request.method,
        }),
      };
  }
}
