/** Every subject and key the worker touches, built from `contract.ts` (PROTOCOL 3, 4, 5, 9). */

import * as c from "./contract.js";

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Pools and instances become subject tokens and KV keys: 1–64 of `[A-Za-z0-9_-]`. */
export function validName(kind: "pool" | "instance", name: string): string {
  if (!NAME.test(name)) {
    throw new Error(`${kind} name ${JSON.stringify(name)} must be 1-64 characters of [A-Za-z0-9_-]`);
  }
  return name;
}

export const callSubject = (pool: string) => `${c.CALL_SUBJECT_PREFIX}${pool}`;
export const poolConsumer = (pool: string) => `${c.POOL_CONSUMER_PREFIX}${pool}`;
export const inboxPrefix = (pool: string) => `${c.WORKER_INBOX_PREFIX}${pool}`;
export const serviceName = (pool: string) => `${c.SERVICE_NAME_PREFIX}${pool}`;
export const kvStream = (bucket: string) => `${c.KV_STREAM_PREFIX}${bucket}`;
export const kvSubject = (bucket: string, key: string) => `${c.KV_SUBJECT_PREFIX}${bucket}.${key}`;
export const workerKey = (pool: string, instance: string) => `${pool}.${instance}`;
export const catalogKey = (pool: string, digest: string) => `${pool}.${digest}`;

/** Where a call's cancellation arrives: its `cancel_on`, else the pool's per-call subject. */
export const cancelSubject = (pool: string, callId: string, cancelOn?: string) =>
  cancelOn ?? `${c.CANCEL_SUBJECT_PREFIX}${pool}.${callId}`;

/** Where the operator asks this instance to drain, as SIGTERM does (PROTOCOL.md §4.3). */
export const drainSubject = (pool: string, instance: string) => `${c.DRAIN_SUBJECT_PREFIX}${pool}.${instance}`;
/** Where this instance holds a subscription while its connection lives; gateways probe it (PROTOCOL.md §4.2, ADR 0029). */
export const aliveSubject = (pool: string, instance: string) => `${c.ALIVE_SUBJECT_PREFIX}${pool}.${instance}`;

/** Where the client's answer to request `seq` of a call arrives (session lane). */
export const answerSubject = (pool: string, callId: string, seq: number) =>
  `${c.ANSWER_SUBJECT_PREFIX}${pool}.${callId}.${seq}`;

/** `Nats-Msg-Id` of reply `n` of one delivery of a call (PROTOCOL.md §5.2). */
export const durableReplyId = (callId: string, delivery: number, n: number) => `${callId}:${delivery}:${n}`;

// -- JetStream API -------------------------------------------------------------------------
export const streamInfo = (stream: string) => `${c.JS_API_PREFIX}STREAM.INFO.${stream}`;
/** Create-by-name-and-filter: the only consumer-create a pool's permissions allow. */
export const consumerCreate = (pool: string) =>
  `${c.JS_API_PREFIX}CONSUMER.CREATE.${c.CALLS_STREAM}.${poolConsumer(pool)}.${callSubject(pool)}`;
/** The last message on the pool's worker records, by a direct get with the subject in the API subject. */
export const poolRecordsLast = (pool: string) =>
  `${c.JS_API_PREFIX}DIRECT.GET.${kvStream(c.WORKERS_BUCKET)}.${kvSubject(c.WORKERS_BUCKET, `${pool}.*`)}`;
