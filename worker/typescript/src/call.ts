/**
 * Reading a `CallRequest` off the queue (PROTOCOL 5.1) into the first rows of the outcome
 * table (PROTOCOL.md §5.8): unreadable (nobody to answer), unsupported protocol and malformed
 * (answered, then terminated), or a call to decide on. Never throws: a malformed call must
 * never crash the worker.
 */

import * as c from "./contract.js";
import { MalformedPrincipal, principalOf, type Principal } from "./principal.js";
import { type WireError, wireError } from "./replies.js";

export type Lane = typeof c.LANE_SESSION | typeof c.LANE_STATELESS;

/** A call as the worker uses it: every field checked. */
export interface CallRequest {
  readonly callId: string;
  readonly replyTo: string;
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly deadlineMs: number;
  readonly lane: Lane;
  readonly protocolVersion: string | undefined;
  readonly clientCapabilities: Record<string, unknown>;
  readonly replyDurable: boolean;
  readonly cancelOn: string | undefined;
  readonly taskId: string | undefined;
  readonly principal: Principal | null;
}

/** Where a body falls in the outcome table before anything is decided about its method. */
export type Parsed =
  | { kind: "unreadable"; why: string }
  /** Answer `error` to `replyTo` (with `callId`), then TERM. `replyDurable` as the body said, if it said. */
  | { kind: "refuse"; callId: string; replyTo: string; replyDurable: boolean; deadlineMs: number; error: WireError }
  | { kind: "call"; request: CallRequest };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const decoder = new TextDecoder("utf-8", { fatal: true });

export function parseCall(body: Uint8Array): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    return { kind: "unreadable", why: "the body is not UTF-8 JSON" };
  }
  if (!isObject(value)) return { kind: "unreadable", why: "the body is not a JSON object" };
  const { call_id: callId, reply_to: replyTo } = value;
  if (typeof callId !== "string" || typeof replyTo !== "string") {
    return { kind: "unreadable", why: "call_id or reply_to is missing or not a string" };
  }
  // What the refusal needs to reach the gateway the way it listens (stored or plain).
  const durable = value.reply_durable === true;
  const deadline = typeof value.deadline_ms === "number" ? value.deadline_ms : 0;
  const refuse = (error: WireError): Parsed => ({
    kind: "refuse",
    callId,
    replyTo,
    replyDurable: durable,
    deadlineMs: deadline,
    error,
  });
  const malformed = (why: string) =>
    refuse(wireError(c.CODE.internalError, `malformed call: ${why}`, { reason: c.REASON.malformedCall }));
  // Absent means this version (as bus-schema decodes it); an integer other than ours is a
  // version we do not speak; anything else is a malformed field (PROTOCOL.md §5.8).
  const protocol = value.protocol ?? c.PROTOCOL_VERSION;
  if (!Number.isInteger(protocol)) return malformed("protocol is not an integer");
  if (protocol !== c.PROTOCOL_VERSION) {
    return refuse(
      wireError(c.CODE.internalError, `this worker speaks protocol ${c.PROTOCOL_VERSION}, not ${JSON.stringify(protocol)}`, {
        reason: c.REASON.unsupportedProtocol,
        protocol,
      }),
    );
  }
  const { method, params, deadline_ms, lane, protocol_version, client_capabilities, reply_durable, cancel_on, task_id } =
    value;
  if (typeof method !== "string") return malformed("method is missing or not a string");
  if (typeof deadline_ms !== "number" || !Number.isFinite(deadline_ms)) {
    return malformed("deadline_ms is missing or not a number");
  }
  if (lane !== c.LANE_SESSION && lane !== c.LANE_STATELESS) return malformed("lane is missing or unknown");
  if (params !== undefined && params !== null && !isObject(params)) return malformed("params is not an object");
  if (protocol_version !== undefined && protocol_version !== null && typeof protocol_version !== "string") {
    return malformed("protocol_version is not a string");
  }
  if (client_capabilities !== undefined && client_capabilities !== null && !isObject(client_capabilities)) {
    return malformed("client_capabilities is not an object");
  }
  if (reply_durable !== undefined && reply_durable !== null && typeof reply_durable !== "boolean") {
    return malformed("reply_durable is not a boolean");
  }
  for (const [name, field] of [
    ["cancel_on", cancel_on],
    ["task_id", task_id],
  ] as const) {
    if (field !== undefined && field !== null && typeof field !== "string") return malformed(`${name} is not a string`);
  }
  let principal: Principal | null;
  try {
    principal = principalOf(value.principal);
  } catch (e) {
    if (e instanceof MalformedPrincipal) return malformed(e.message);
    throw e;
  }
  return {
    kind: "call",
    request: {
      callId,
      replyTo,
      method,
      params: (params as Record<string, unknown> | null | undefined) ?? {},
      deadlineMs: deadline_ms,
      lane,
      protocolVersion: (protocol_version as string | null | undefined) ?? undefined,
      clientCapabilities: (client_capabilities as Record<string, unknown> | null | undefined) ?? {},
      replyDurable: reply_durable === true,
      cancelOn: (cancel_on as string | null | undefined) ?? undefined,
      taskId: (task_id as string | null | undefined) ?? undefined,
      principal,
    },
  };
}
