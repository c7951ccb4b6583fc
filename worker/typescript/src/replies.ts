/**
 * Sending a call's replies (`CallReply`, PROTOCOL 5.2) to its `reply_to`: a plain publish, or,
 * for `reply_durable` calls, a JetStream publish with `Nats-Msg-Id: <call_id>:<delivery>:<n>`
 * retried by the rules of PROTOCOL.md §5.2. The caller learns whether a reply got through, so
 * that a final reply that could not be stored leads to a NAK instead of an ACK.
 */

import * as c from "./contract.js";
import { durableReplyId } from "./subjects.js";
import { log } from "./log.js";

export interface WireError {
  code: number;
  message: string;
  data?: unknown;
}

export function wireError(code: number, message: string, data?: unknown): WireError {
  return data === undefined ? { code, message } : { code, message, data };
}

/** One reply's body without its envelope: `{type: ..., ...}`. */
export type ReplyEvent = { type: string } & Record<string, unknown>;

/** What sending replies needs from NATS; the worker gives the real client, unit tests a fake. */
export interface ReplyBus {
  /** A plain publish; throws when the connection is closed. */
  publish(subject: string, payload: Uint8Array): void;
  /** A JetStream publish that resolves once the stream acknowledged it, or rejects. */
  publishStored(subject: string, payload: Uint8Array, msgId: string, timeoutMs: number): Promise<void>;
}

/** The call fields replying needs. */
export interface ReplyTarget {
  readonly callId: string;
  readonly replyTo: string;
  readonly replyDurable: boolean;
  readonly deadlineMs: number;
}

const encoder = new TextEncoder();

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

export class Replier {
  /** Index of the next reply of this delivery (`n` of its `Nats-Msg-Id`; `accepted` is 0). */
  private next = 0;

  constructor(
    private readonly bus: ReplyBus,
    private readonly target: ReplyTarget,
    private readonly instance: string,
    /** JetStream delivery count of the message (1 the first time): part of every durable id. */
    private readonly delivery: number,
    private readonly now: () => number = Date.now,
    private readonly pause: (ms: number) => Promise<void> = sleep,
  ) {}

  /** How many replies this delivery has sent (the `n` the next one gets). */
  get sent(): number {
    return this.next;
  }

  /** Sends one reply; true once it was published (plain) or stored (durable). */
  async send(event: ReplyEvent): Promise<boolean> {
    const body = { protocol: c.PROTOCOL_VERSION, call_id: this.target.callId, instance: this.instance, ...event };
    const payload = encoder.encode(JSON.stringify(body));
    if (!this.target.replyDurable) {
      try {
        this.bus.publish(this.target.replyTo, payload);
        return true;
      } catch (e) {
        log.warn(`call ${this.target.callId}: publishing a ${event.type} reply failed: ${String(e)}`);
        return false;
      }
    }
    const msgId = durableReplyId(this.target.callId, this.delivery, this.next++);
    // Retried under the same id (stored once) while the stream's leader moves, for a bounded
    // time and never past the call's deadline (PROTOCOL.md §5.2, ADR 0031).
    const giveUp = Math.min(this.now() + c.DURABLE_RETRY_MS, this.target.deadlineMs);
    let pause = c.DURABLE_FIRST_PAUSE_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bus.publishStored(this.target.replyTo, payload, msgId, c.DURABLE_ACK_TIMEOUT_MS);
        return true;
      } catch (e) {
        log.warn(`call ${this.target.callId}: storing reply ${msgId} failed (attempt ${attempt}): ${String(e)}`);
      }
      if (this.now() + pause >= giveUp) break;
      await this.pause(pause);
      pause = Math.min(pause * 2, c.DURABLE_MAX_PAUSE_MS);
    }
    return false;
  }
}
