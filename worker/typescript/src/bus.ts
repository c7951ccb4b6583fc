/**
 * The NATS side of a worker, on nats.js (`@nats-io/transport-node`, `@nats-io/jetstream`):
 * JetStream API requests on exactly the subjects a pool's permissions allow (PROTOCOL 9),
 * and the adapters the call runner uses (replies, answers, cancellation, call messages).
 * Everything else in the SDK talks to these interfaces, so unit tests need no server.
 */

import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";

import type { AnswerBus } from "./context.js";
import type { ReplyBus } from "./replies.js";
import type { CallMessage } from "./runner.js";
import * as c from "./contract.js";

/** An error a JetStream API request answered with (`{"error": {code, err_code, description}}`). */
export class JsApiError extends Error {
  override name = "JsApiError";
  constructor(
    readonly subject: string,
    readonly code: number,
    readonly errCode: number,
    description: string,
  ) {
    super(`${subject}: ${description} (${code}/${errCode})`);
  }
}

const encoder = new TextEncoder();

/** A JetStream API request; the parsed answer, or `JsApiError`. Transport errors propagate. */
export async function jsApi(nc: NatsConnection, subject: string, body: unknown, timeoutMs = 5_000): Promise<Record<string, unknown>> {
  const payload = body === undefined ? new Uint8Array() : encoder.encode(JSON.stringify(body));
  const msg = await nc.request(subject, payload, { timeout: timeoutMs });
  const answer = JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
  const error = answer.error as { code?: number; err_code?: number; description?: string } | undefined;
  if (error) throw new JsApiError(subject, error.code ?? 0, error.err_code ?? 0, error.description ?? "error");
  return answer;
}

export function replyBus(nc: NatsConnection, js: JetStreamClient): ReplyBus {
  return {
    publish: (subject, payload) => nc.publish(subject, payload),
    publishStored: async (subject, payload, msgId, timeoutMs) => {
      await js.publish(subject, payload, { msgID: msgId, timeout: timeoutMs });
    },
  };
}

export function answerBus(nc: NatsConnection): AnswerBus {
  return {
    async awaitOne(subject) {
      const sub = nc.subscribe(subject, { max: 1 });
      // The server has the subscription once the flush returns: the request may go out.
      await nc.flush();
      let settle: (v: Uint8Array | null) => void = () => {};
      const answer = new Promise<Uint8Array | null>((resolve) => (settle = resolve));
      void (async () => {
        for await (const m of sub) return settle(m.data);
        settle(null);
      })();
      return {
        answer,
        cancel: () => {
          sub.unsubscribe();
          settle(null);
        },
      };
    },
  };
}

/** Subscribes to a call's cancel subject; any message there fires `onCancel`. */
export function watchCancel(nc: NatsConnection, subject: string, onCancel: () => void): () => void {
  const sub = nc.subscribe(subject, { max: 1, callback: (err) => (err ? undefined : onCancel()) });
  return () => sub.unsubscribe();
}

export function callMessage(m: JsMsg): CallMessage {
  return {
    data: m.data,
    delivery: m.info.deliveryCount,
    ack: () => m.ack(),
    nak: () => m.nak(),
    term: () => m.term(),
    working: () => m.working(),
  };
}

/** A KV put as a plain JetStream publish to `$KV.<bucket>.<key>` (the only subjects a worker may write). */
export async function kvPut(js: JetStreamClient, subject: string, value: unknown): Promise<void> {
  await js.publish(subject, encoder.encode(JSON.stringify(value)));
}

/** A KV delete: an empty message with `KV-Operation: DEL`. */
export async function kvDelete(js: JetStreamClient, subject: string): Promise<void> {
  const h = natsHeaders();
  h.set(c.HEADER_KV_OPERATION, c.KV_OPERATION_DELETE);
  await js.publish(subject, new Uint8Array(), { headers: h });
}
