/**
 * What a handler knows about its call, and how it talks back while it runs: progress, log
 * lines, requests to the client (`ask`, on both lanes), tasks, the caller, and an
 * `AbortSignal` that fires on cancellation, on the call's deadline, and when a drain times out.
 */

import * as c from "./contract.js";
import type { CallRequest, Lane } from "./call.js";
import type { Catalogue } from "./catalogue.js";
import { ProtocolError, ToolError } from "./errors.js";
import { type Ask, Rounds } from "./mrtr.js";
import type { Principal } from "./principal.js";
import type { ReplyEvent } from "./replies.js";
import { answerSubject } from "./subjects.js";

/** Waiting for one message on one subject (the client's answer to a session-lane request). */
export interface AnswerBus {
  /**
   * Subscribes to `subject` for one message; resolves once the server has the subscription
   * (so a request published after it cannot be answered too early). `answer` resolves with
   * the message's body, or null if the wait ends first (`cancel`).
   */
  awaitOne(subject: string): Promise<{ answer: Promise<Uint8Array | null>; cancel(): void }>;
}

/** MCP log levels (RFC 5424 names), as `notifications/message` takes them. */
export type LogLevel = "debug" | "info" | "notice" | "warning" | "error" | "critical" | "alert" | "emergency";

export interface AskOptions {
  /** The `inputRequests` key on the stateless lane (default `input-<n>`); ignored on sessions. */
  key?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

export class ToolContext {
  /** Requests to the client so far (caps them, and numbers session-lane requests from 1). */
  private asked = 0;
  private escalated = false;
  private readonly rounds: Rounds;

  constructor(
    private readonly request: CallRequest,
    /** Sends one reply of this call (numbered, durable when the call asks for it). */
    private readonly send: (event: ReplyEvent) => Promise<boolean>,
    private readonly answers: AnswerBus | null,
    readonly pool: string,
    readonly instance: string,
    /** Fires on cancellation, the call's deadline, or a drain timeout; `reason` says which. */
    readonly signal: AbortSignal,
    /** What this worker serves; a handler may change it (PROTOCOL 9). */
    readonly catalogue: Catalogue,
  ) {
    this.rounds = new Rounds(request.params);
  }

  get callId(): string {
    return this.request.callId;
  }
  get lane(): Lane {
    return this.request.lane;
  }
  /** Unix ms after which nobody waits for this call. */
  get deadlineMs(): number {
    return this.request.deadlineMs;
  }
  /** What the client declared it can do; never ask for anything else. */
  get clientCapabilities(): Readonly<Record<string, unknown>> {
    return this.request.clientCapabilities;
  }
  /** Whether this run continues an earlier round (stateless lane, after an `InputRequiredResult`). */
  get resumed(): boolean {
    return this.rounds.resumed;
  }
  /** Whether the call runs as a task (after `runAsTask`). */
  get isTask(): boolean {
    return this.escalated;
  }

  /**
   * Who is calling: issuer, subject, scopes and allow-listed claims as the gateway verified
   * them from the client's access token; null when the gateway runs without authorization.
   * Never a token (gateways do not pass tokens through). It says whom a gateway let in; it is
   * as trustworthy as the bus permissions that let only gateways publish calls.
   */
  get principal(): Principal | null {
    return this.request.principal;
  }

  clientSupports(capability: string): boolean {
    return this.request.clientCapabilities[capability] !== undefined;
  }

  /** `notifications/progress`, sent only when the client asked for progress. Keep it increasing. */
  async progress(progress: number, total?: number, message?: string): Promise<void> {
    const meta = this.request.params._meta;
    if (!isObject(meta) || meta[c.META_PROGRESS_TOKEN] === undefined) return;
    const event: ReplyEvent = { type: c.REPLY.progress, progress };
    if (total !== undefined) event.total = total;
    if (message !== undefined) event.message = message;
    await this.send(event);
  }

  /** `notifications/message`; the gateway filters by the client's log level. */
  async log(level: LogLevel, data: unknown, logger?: string): Promise<void> {
    const event: ReplyEvent = { type: c.REPLY.log, level, data };
    if (logger !== undefined) event.logger = logger;
    await this.send(event);
  }

  /**
   * Makes the call a task (2026-07-28 tasks extension) when the client takes tasks and the
   * tool declares `taskSupport`: the client gets a task at once and polls it. Does nothing
   * otherwise, or the second time.
   */
  async runAsTask(): Promise<void> {
    if (this.request.taskId === undefined || this.escalated) return;
    this.escalated = true;
    await this.send({ type: c.REPLY.escalate });
  }

  /**
   * Lets the gateway end the client's stream now (session lane, durable replies only); the
   * client reconnects with `Last-Event-ID` on any gateway for the rest. Elsewhere a no-op.
   */
  async detachStream(): Promise<void> {
    if (this.request.lane === c.LANE_SESSION && this.request.replyDurable) {
      await this.send({ type: c.REPLY.detach });
    }
  }

  /**
   * Asks the client (`elicitation/create`, `sampling/createMessage`, `roots/list`) and returns
   * its result (for elicitation: `{action, content}`).
   *
   * Session lane: the request goes to the client on the call's stream and this waits for its
   * answer (until the deadline or cancellation). Stateless lane: the call ends here with an
   * `InputRequiredResult` (this throws `InputRequired`: let it propagate), and the handler
   * runs again from the start when the client retries; earlier answers come back sealed in
   * the `requestState`, so each `ask` of the rerun returns at once until the first new one.
   * Do nothing irreversible before the last `ask`.
   *
   * A client that did not declare the capability is never asked: this throws a
   * `ProtocolError` -32021 (missing capability) on the stateless lane, and a `ToolError` on a
   * session (the 2025 revisions have no code for it), as PROTOCOL.md §5.2 says.
   */
  async ask(method: string, params: unknown, options: AskOptions = {}): Promise<unknown> {
    const key = options.key ?? `input-${this.asked}`;
    const [answer] = await this.askAll([{ key, method, params }]);
    return answer;
  }

  /** Several questions; on the stateless lane in one `InputRequiredResult`, on a session one by one. */
  async askAll(asks: readonly Ask[]): Promise<unknown[]> {
    for (const ask of asks) this.checkCapability(ask.method);
    if (this.asked + asks.length > c.MAX_ASKS_PER_CALL) {
      throw new ToolError(`a call may ask the client at most ${c.MAX_ASKS_PER_CALL} times`);
    }
    if (this.request.lane === c.LANE_STATELESS) {
      this.asked += asks.length;
      return this.rounds.answers(asks);
    }
    const out: unknown[] = [];
    for (const ask of asks) out.push(await this.askOnStream(ask.method, ask.params));
    return out;
  }

  private checkCapability(method: string): void {
    const capability = c.CAPABILITY_OF_METHOD[method];
    if (capability === undefined) throw new ToolError(`cannot ask the client for ${JSON.stringify(method)}`);
    if (!this.clientSupports(capability)) {
      const message = `the client did not declare the ${JSON.stringify(capability)} capability, so it cannot be asked for ${method}`;
      if (this.request.lane === c.LANE_STATELESS) throw ProtocolError.missingCapability(capability, message);
      throw new ToolError(message);
    }
  }

  /** Session lane: the request travels on the call's stream, the answer on the bus. */
  private async askOnStream(method: string, params: unknown): Promise<unknown> {
    if (this.answers === null) throw new ToolError("not connected to the bus");
    const seq = ++this.asked;
    const waiting = await this.answers.awaitOne(answerSubject(this.pool, this.request.callId, seq));
    const stop = () => waiting.cancel();
    const timer = setTimeout(stop, Math.max(0, this.request.deadlineMs - Date.now()));
    this.signal.addEventListener("abort", stop, { once: true });
    try {
      await this.send({ type: c.REPLY.request, seq, method, params });
      const body = await waiting.answer;
      if (this.signal.aborted) throw this.signal.reason ?? new Error("aborted");
      if (body === null) throw new ToolError(`the client did not answer ${method} in time`);
      let answer: unknown;
      try {
        answer = JSON.parse(new TextDecoder().decode(body));
      } catch {
        throw new ToolError(`unreadable answer from the client to ${method}`);
      }
      if (isObject(answer) && answer.result !== undefined && answer.result !== null) return answer.result;
      if (isObject(answer) && isObject(answer.error)) {
        throw new ToolError(`the client refused ${method}: ${String(answer.error.message ?? "no message")}`);
      }
      throw new ToolError(`the client's answer to ${method} was empty`);
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener("abort", stop);
      waiting.cancel();
    }
  }
}
