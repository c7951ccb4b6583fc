/**
 * Start-up exactly as PROTOCOL.md §6: wait for the bus's stream and buckets (never create
 * them), create or open only this pool's consumer on the one subject the pool may use, and
 * read since when the pool has served (`registered_ms`) by one direct get.
 */

import type { NatsConnection } from "@nats-io/transport-node";

import { jsApi, JsApiError } from "./bus.js";
import * as c from "./contract.js";
import { log } from "./log.js";
import { sleep } from "./replies.js";
import { callSubject, consumerCreate, kvStream, poolConsumer, poolRecordsLast, streamInfo } from "./subjects.js";

const NANOS_PER_MS = 1_000_000;

/** The consumer configuration every SDK asks for (D.3). */
export function poolConsumerConfig(pool: string): Record<string, unknown> {
  return {
    durable_name: poolConsumer(pool),
    name: poolConsumer(pool),
    filter_subject: callSubject(pool),
    ack_policy: "explicit",
    ack_wait: c.POOL_ACK_WAIT_MS * NANOS_PER_MS,
    max_deliver: c.POOL_MAX_DELIVER,
    max_ack_pending: c.POOL_MAX_ACK_PENDING,
    deliver_policy: "all",
    replay_policy: "instant",
  };
}

/** D.2: until the calls stream and both buckets exist (retry every 500 ms); false if stopped first. */
export async function waitForStreams(nc: NatsConnection, stop: AbortSignal): Promise<boolean> {
  for (const stream of [c.CALLS_STREAM, kvStream(c.WORKERS_BUCKET), kvStream(c.CATALOG_BUCKET)]) {
    let attempts = 0;
    for (;;) {
      if (stop.aborted) return false;
      try {
        await jsApi(nc, streamInfo(stream), undefined, 2_000);
        break;
      } catch (e) {
        // Not found, no responders (JetStream not up), or a timeout: the gateways create it.
        if (attempts++ % 20 === 0) log.info(`waiting for stream ${stream}: ${e instanceof Error ? e.message : String(e)}`);
        await sleep(c.STREAM_WAIT_RETRY_MS, stop);
      }
    }
  }
  return true;
}

/** D.3: create or open the pool's durable pull consumer; one that differs is used as it is. */
export async function ensurePoolConsumer(nc: NatsConnection, pool: string): Promise<void> {
  const config = poolConsumerConfig(pool);
  try {
    await jsApi(nc, consumerCreate(pool), { stream_name: c.CALLS_STREAM, config });
  } catch (e) {
    if (!(e instanceof JsApiError)) throw e;
    // It exists with other settings (an operator's, or another SDK version's): use it, never delete it.
    log.warn(`pool consumer ${poolConsumer(pool)} exists with other settings; using it as it is: ${e.message}`);
  }
}

/**
 * D.4: the `registered_ms` of the last record on `$KV.mcpbus-workers.<pool>.*` if it is live
 * (written less than its `ttl_ms` ago), else now. At most 3 s; any failure means now.
 */
export async function poolRegisteredMs(nc: NatsConnection, pool: string, now: () => number = Date.now): Promise<number> {
  const at = now();
  try {
    const msg = await nc.request(poolRecordsLast(pool), new Uint8Array(), { timeout: c.REGISTERED_MS_READ_LIMIT_MS });
    return registeredFrom(pool, msg.headers?.code ?? 0, msg.headers?.get(c.HEADER_NATS_TIME_STAMP) ?? "", msg.data, at);
  } catch (e) {
    log.info(`no live record of pool ${pool} to inherit its registration time from: ${e instanceof Error ? e.message : String(e)}`);
    return at;
  }
}

/** The pure part of `poolRegisteredMs`: from a direct-get answer (status, time stamp, body). */
export function registeredFrom(pool: string, status: number, stamp: string, body: Uint8Array, now: number): number {
  if (status !== 0 && status !== 200) return now;
  const written = Date.parse(stamp.replace(/(\.\d{3})\d*/, "$1"));
  if (!Number.isFinite(written)) return now;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
  } catch {
    return now; // a deleted key's marker has no body
  }
  const ttl = typeof record.ttl_ms === "number" ? record.ttl_ms : 0;
  const since = record.registered_ms;
  if (record.pool !== pool || written + ttl < now || typeof since !== "number" || !Number.isFinite(since)) return now;
  return Math.min(since, now);
}
