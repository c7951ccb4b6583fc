/**
 * Declaring a tool: its MCP `Tool` declaration (the input schema generated from a zod 4
 * schema by `z.toJSONSchema`), the validation of its arguments, and the turning of what its
 * handler returns or throws into the call's final reply (PROTOCOL.md §5.8).
 */

import { z } from "zod";

import * as c from "./contract.js";
import type { ToolContext } from "./context.js";
import { InputRequired, ProtocolError, ToolError } from "./errors.js";
import { log } from "./log.js";
import { type ReplyEvent, wireError } from "./replies.js";

/** An MCP `CallToolResult`. */
export interface CallToolResult {
  content: Array<Record<string, unknown>>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
  _meta?: Record<string, unknown>;
}

/**
 * What a handler may return: a string (one text block), a `CallToolResult` (an object with a
 * `content` array), a plain JSON object (structured content, with its JSON as text), or
 * nothing (empty content).
 */
export type ToolReturn = string | CallToolResult | Record<string, unknown> | null | undefined | void;

export type ZodObjectSchema = z.ZodObject<z.ZodRawShape>;

export interface ToolSpec<S extends ZodObjectSchema> {
  name: string;
  title?: string;
  description?: string;
  /** The arguments: a zod object schema. It is the `inputSchema` and validates every call. */
  input: S;
  /** MCP tool annotations. */
  annotations?: Record<string, unknown>;
  /**
   * A call interrupted by a worker crash may run again (`annotations.idempotentHint: true`).
   * Leave it off for anything that must not happen twice: a redelivered call is then
   * answered `worker_lost` instead.
   */
  idempotent?: boolean;
  /** How long a gateway waits for this tool's result (catalogue `timeout_ms`). */
  timeoutMs?: number;
  /**
   * Tasks (2026-07-28): `optional` or `required` declares `execution.taskSupport`; the call
   * escalates to a task as its handler starts, unless `escalatesItself` (then the handler
   * calls `ctx.runAsTask()` when it sees it will take long).
   */
  taskSupport?: "optional" | "required";
  escalatesItself?: boolean;
  _meta?: Record<string, unknown>;
}

export type ToolHandler<S extends ZodObjectSchema> = (args: z.output<S>, ctx: ToolContext) => Promise<ToolReturn> | ToolReturn;

/** A declared tool. Make one with `defineTool`. */
export class ToolDef {
  constructor(
    readonly name: string,
    /** The MCP `Tool` exactly as clients see it. */
    readonly declaration: Record<string, unknown>,
    readonly timeoutMs: number | undefined,
    readonly escalates: boolean,
    private readonly validate: (args: unknown) => { ok: true; value: unknown } | { ok: false; problem: string },
    private readonly handler: (args: unknown, ctx: ToolContext) => Promise<ToolReturn> | ToolReturn,
  ) {}

  get idempotent(): boolean {
    const annotations = this.declaration.annotations as Record<string, unknown> | undefined;
    return annotations?.[c.IDEMPOTENT_HINT] === true;
  }

  /** The catalogue entry (`ToolEntry`). */
  entry(): Record<string, unknown> {
    return this.timeoutMs === undefined ? { tool: this.declaration } : { tool: this.declaration, timeout_ms: this.timeoutMs };
  }

  /**
   * Runs the handler on the call's `arguments`; the final reply. Never throws: invalid
   * arguments, tool errors and crashes become results with `isError`, protocol errors
   * errors, and an `InputRequired` an `InputRequiredResult`.
   */
  async call(args: unknown, ctx: ToolContext): Promise<ReplyEvent> {
    const checked = this.validate(args ?? {});
    if (!checked.ok) return result(toolError(`invalid arguments: ${checked.problem}`));
    try {
      if (this.escalates) await ctx.runAsTask();
      return result(asResult(await this.handler(checked.value, ctx)));
    } catch (e) {
      if (e instanceof InputRequired) return result(e.result);
      if (e instanceof ToolError) return result(toolError(e.message));
      if (e instanceof ProtocolError) return { type: c.REPLY.error, error: wireError(e.code, e.message, e.data) };
      // A bug in handler code (or its reaction to an abort): report it, keep the worker up.
      const kind = e instanceof Error ? e.name : typeof e;
      if (!ctx.signal.aborted) log.warn(`tool ${this.name} (call ${ctx.callId}) failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return result(toolError(`the tool failed with an internal error: ${kind}`));
    }
  }
}

const result = (value: unknown): ReplyEvent => ({ type: c.REPLY.result, result: value });

export function toolError(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A handler's return value as a `CallToolResult`. */
export function asResult(value: ToolReturn): CallToolResult {
  if (value === undefined || value === null) return { content: [], isError: false };
  if (typeof value === "string") return { content: [{ type: "text", text: value }], isError: false };
  if (isObject(value) && Array.isArray(value.content)) {
    const given = value as unknown as CallToolResult;
    return { ...given, isError: given.isError === true };
  }
  if (isObject(value)) {
    return { content: [{ type: "text", text: JSON.stringify(value) }], structuredContent: value, isError: false };
  }
  return { content: [{ type: "text", text: JSON.stringify(value) }], isError: false };
}

/** The `inputSchema` of a zod object schema: JSON Schema 2020-12 as zod 4 writes it for input. */
export function inputSchema(schema: ZodObjectSchema): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  // The dialect is MCP's default (2020-12); older clients choke on `$schema`, so leave it out.
  delete json.$schema;
  json.type = "object";
  if (!isObject(json.properties)) json.properties = {};
  return json;
}

/** Declares a tool: `worker.tool(defineTool({...}, async (args, ctx) => ...))`. */
export function defineTool<S extends ZodObjectSchema>(spec: ToolSpec<S>, handler: ToolHandler<S>): ToolDef {
  const annotations: Record<string, unknown> = { ...(spec.annotations ?? {}) };
  if (spec.idempotent) annotations[c.IDEMPOTENT_HINT] = true;
  const declaration: Record<string, unknown> = { name: spec.name, inputSchema: inputSchema(spec.input) };
  if (spec.title !== undefined) declaration.title = spec.title;
  if (spec.description !== undefined) declaration.description = spec.description;
  if (Object.keys(annotations).length > 0) declaration.annotations = annotations;
  if (spec.taskSupport !== undefined) declaration.execution = { taskSupport: spec.taskSupport };
  if (spec._meta !== undefined) declaration._meta = spec._meta;
  const validate = (args: unknown) => {
    const parsed = spec.input.safeParse(args);
    return parsed.success
      ? ({ ok: true, value: parsed.data } as const)
      : ({ ok: false, problem: z.prettifyError(parsed.error).replace(/\s*\n\s*/g, " ") } as const);
  };
  return new ToolDef(
    spec.name,
    declaration,
    spec.timeoutMs,
    spec.taskSupport !== undefined && !spec.escalatesItself,
    validate,
    handler as (args: unknown, ctx: ToolContext) => Promise<ToolReturn> | ToolReturn,
  );
}
