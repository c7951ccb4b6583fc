/** Stand-ins for the bus in unit tests: a recording reply bus, call messages, cancellation. */

import { log } from "../src/log.js";

// Unit tests assert on behaviour, not on log lines.
log.sink = () => {};

import type { AnswerBus } from "../src/context.js";
import { Catalogue } from "../src/catalogue.js";
import type { ReplyBus } from "../src/replies.js";
import type { CallEnv, CallMessage } from "../src/runner.js";

export const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));

export class FakeMessage implements CallMessage {
  acks: string[] = [];
  constructor(
    readonly data: Uint8Array,
    readonly delivery = 1,
  ) {}
  ack() {
    this.acks.push("ACK");
  }
  nak() {
    this.acks.push("NAK");
  }
  term() {
    this.acks.push("TERM");
  }
  working() {
    this.acks.push("WPI");
  }
}

export interface Sent {
  subject: string;
  body: Record<string, unknown>;
  msgId?: string;
}

/** Records every reply; `failStored` makes stored publishes fail that many times (Infinity: always). */
export class FakeBus implements ReplyBus {
  sent: Sent[] = [];
  /** Everything in order, replies and acks, to check "reply before TERM". */
  order: string[] = [];
  failStored = 0;
  /** Stored publishes after this many successes fail (Infinity: none do). */
  storeOnly = Infinity;
  attempts = 0;
  publish(subject: string, payload: Uint8Array) {
    const body = JSON.parse(new TextDecoder().decode(payload));
    this.sent.push({ subject, body });
    this.order.push(`reply:${body.type}`);
  }
  async publishStored(subject: string, payload: Uint8Array, msgId: string) {
    this.attempts++;
    if (this.sent.length >= this.storeOnly) throw new Error("no ack");
    if (this.failStored > 0) {
      this.failStored--;
      throw new Error("no ack");
    }
    const body = JSON.parse(new TextDecoder().decode(payload));
    this.sent.push({ subject, body, msgId });
    this.order.push(`reply:${body.type}`);
  }
}

export function env(catalogue: Catalogue, bus: FakeBus, answers: AnswerBus | null = null) {
  const cancels = new Map<string, () => void>();
  // Pauses between attempts at storing a reply move this clock instead of waiting.
  let skipped = 0;
  const e: CallEnv & { cancel(subject: string): void; watched: string[] } = {
    pool: "demo",
    instance: "w1",
    catalogue,
    replies: bus,
    answers,
    watched: [],
    watchCancel(subject, onCancel) {
      e.watched.push(subject);
      cancels.set(subject, onCancel);
      return () => cancels.delete(subject);
    },
    cancel(subject) {
      cancels.get(subject)?.();
    },
    now: () => Date.now() + skipped,
    pause: async (ms: number) => {
      skipped += ms;
    },
  };
  return e;
}

export function call(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    protocol: 2,
    call_id: "c1",
    method: "tools/call",
    params: { name: "echo", arguments: { text: "hi" } },
    reply_to: "mcpbus.v2.reply.demo.gw.c1",
    deadline_ms: Date.now() + 60_000,
    lane: "stateless",
    protocol_version: "2026-07-28",
    client_capabilities: {},
    ...overrides,
  };
}
