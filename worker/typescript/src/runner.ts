/**
 * One call, from its message to its acknowledgement, row by row of the outcome table
 * (PROTOCOL.md §5.8): refusals are answered and then terminated; a call that runs is
 * `accepted`, watched for cancellation (B) and its deadline, kept leased with `+WPI`, and
 * ACKed after its final reply is out, NAKed only when that reply could not be stored (C) or
 * the worker's drain timed out with it still running (E).
 */

import * as c from "./contract.js";
import { parseCall } from "./call.js";
import type { Catalogue } from "./catalogue.js";
import { type AnswerBus, ToolContext } from "./context.js";
import { decide } from "./decide.js";
import { log } from "./log.js";
import { Replier, type ReplyBus, type ReplyEvent, sleep } from "./replies.js";
import { cancelSubject } from "./subjects.js";

/** A call message as JetStream delivered it. */
export interface CallMessage {
  readonly data: Uint8Array;
  /** JetStream delivery count: 1 the first time. */
  readonly delivery: number;
  ack(): void;
  nak(): void;
  term(): void;
  /** `+WPI`: still working, restart the ack wait. */
  working(): void;
}

/** Everything one call needs from the worker. */
export interface CallEnv {
  readonly pool: string;
  readonly instance: string;
  readonly catalogue: Catalogue;
  readonly replies: ReplyBus;
  readonly answers: AnswerBus | null;
  /** Subscribes to a call's cancel subject; `onCancel` fires on a message. Returns the unsubscribe. */
  watchCancel(subject: string, onCancel: () => void): () => void;
  now(): number;
  /** Waits between attempts at storing a reply (a real sleep unless a test says otherwise). */
  pause?(ms: number): Promise<void>;
}

/** Why a running call's signal fired. */
export type StopReason = "cancelled" | "deadline" | "drain";

export class StopError extends Error {
  override name = "AbortError";
  constructor(readonly reason: StopReason) {
    super(`call stopped: ${reason}`);
  }
}

/** How one call ended, for logs and tests. */
export type Outcome = "unreadable" | "refused" | "answered" | "stopped" | "nak";

export class Call {
  private readonly controller = new AbortController();

  constructor(
    private readonly env: CallEnv,
    private readonly msg: CallMessage,
  ) {}

  /** Stops the handler because the drain timed out: the call is then NAKed (E.3). */
  stopForDrain(): void {
    if (!this.controller.signal.aborted) this.controller.abort(new StopError("drain"));
  }

  async run(): Promise<Outcome> {
    try {
      return await this.handle();
    } catch (e) {
      // Only a bug in this SDK gets here: leave the message to redelivery rather than crash.
      log.error(`a call failed inside the SDK: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return "stopped";
    }
  }

  private async handle(): Promise<Outcome> {
    const { env, msg } = this;
    const parsed = parseCall(msg.data);
    if (parsed.kind === "unreadable") {
      log.warn(`terminating an unreadable call: ${parsed.why}`);
      msg.term();
      return "unreadable";
    }
    if (parsed.kind === "refuse") {
      const replier = new Replier(env.replies, parsed, env.instance, msg.delivery, env.now, env.pause);
      await replier.send({ type: c.REPLY.error, error: parsed.error });
      log.warn(`refused call ${parsed.callId}: ${parsed.error.message}`);
      msg.term();
      return "refused";
    }
    const request = parsed.request;
    const replier = new Replier(env.replies, request, env.instance, msg.delivery, env.now, env.pause);
    const decision = decide(request, msg.delivery, env.catalogue, env.now());
    if ("refuse" in decision) {
      await replier.send({ type: c.REPLY.error, error: decision.refuse });
      log.info(`refused call ${request.callId}: ${decision.refuse.message}`);
      msg.term();
      return "refused";
    }
    const signal = this.controller.signal;
    const stop = (reason: StopReason) => {
      if (!signal.aborted) this.controller.abort(new StopError(reason));
    };
    // B: subscribe before the call runs, to exactly the one subject gateways publish to.
    const unwatch = env.watchCancel(cancelSubject(env.pool, request.callId, request.cancelOn), () => stop("cancelled"));
    const deadline = setTimeout(() => stop("deadline"), Math.max(0, request.deadlineMs - env.now()));
    const lease = setInterval(() => msg.working(), c.POOL_ACK_WAIT_MS / 3);
    try {
      await replier.send({ type: c.REPLY.accepted });
      const send = (event: ReplyEvent) => this.sendWhileRunning(replier, event, request.callId);
      const ctx = new ToolContext(request, send, env.answers, env.pool, env.instance, signal, env.catalogue);
      const handled = decision.run.call(request.params.arguments, ctx);
      const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      const final = await Promise.race([handled, aborted.then(() => null)]);
      if (final === null || signal.aborted) {
        // Cancelled, past its deadline, or past the drain timeout: nothing more is sent.
        const reason = (signal.reason as StopError | undefined)?.reason ?? "cancelled";
        const stopped = await Promise.race([handled.then(() => true), sleep(c.STOP_GRACE_MS).then(() => false)]);
        if (!stopped) log.warn(`call ${request.callId}: the handler ignored its abort signal for ${c.STOP_GRACE_MS} ms`);
        log.info(`call ${request.callId} ${reason === "deadline" ? "past its deadline" : reason === "drain" ? "stopped by the drain timeout" : "cancelled"}`);
        if (reason === "drain") {
          msg.nak();
          return "nak";
        }
        msg.ack();
        return "stopped";
      }
      if (await replier.send(final)) {
        msg.ack();
        return "answered";
      }
      // C: the final reply is not stored; a redelivery answers instead.
      log.warn(`call ${request.callId}: the final reply could not be stored; NAK for redelivery`);
      msg.nak();
      return "nak";
    } finally {
      clearTimeout(deadline);
      clearInterval(lease);
      unwatch();
    }
  }

  /** Replies before the final one: dropped with a warning when they cannot be stored, and not
   * sent at all once the call was stopped. */
  private async sendWhileRunning(replier: Replier, event: ReplyEvent, callId: string): Promise<boolean> {
    if (this.controller.signal.aborted) return false;
    const ok = await replier.send(event);
    if (!ok) log.warn(`call ${callId}: dropped a ${event.type} reply that could not be sent`);
    return ok;
  }
}
