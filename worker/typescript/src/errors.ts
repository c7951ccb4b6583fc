/**
 * How a handler ends other than with a result: a tool error the model reads, a protocol
 * error the client gets as JSON-RPC, or (thrown by the SDK itself) the client's input being
 * required on the stateless lane.
 */

import * as c from "./contract.js";

/** A tool failure the model should read: the client gets `isError: true` and this text. */
export class ToolError extends Error {
  override name = "ToolError";
}

/** A protocol-level failure: the client gets this JSON-RPC error instead of a result. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  /** -32021: the client did not declare the capability a request to it needs. */
  static missingCapability(capability: string, message: string): ProtocolError {
    return new ProtocolError(c.CODE.missingCapability, message, { requiredCapabilities: { [capability]: {} } });
  }
}

/**
 * Thrown by `ctx.ask` on the stateless lane (2026-07-28): the call ends with this
 * `InputRequiredResult` and the handler runs again when the client retries with its answers.
 * Handlers must let it propagate (do not catch it, or rethrow it) and do nothing irreversible
 * before their last `ask`.
 */
export class InputRequired extends Error {
  override name = "InputRequired";
  constructor(readonly result: Record<string, unknown>) {
    super("the client's input is required");
  }
}
