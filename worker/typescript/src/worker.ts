/**
 * The worker: connect, register and heartbeat, pull calls at most `maxInFlight` at a time,
 * run them, and drain on SIGTERM/SIGINT or the operator's drain request exactly as PROTOCOL.md §4.3. The bus objects are the
 * gateways'; a worker opens them and creates only its own pool's consumer (D).
 */

import { randomBytes } from "node:crypto";

import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";

import { answerBus, callMessage, kvDelete, kvPut, replyBus, watchCancel } from "./bus.js";
import { Catalogue } from "./catalogue.js";
import { connectOptions, describe, type NatsSettings, settingsFromEnv, validate } from "./connection.js";
import * as c from "./contract.js";
import { listenForDrain } from "./drain.js";
import { log } from "./log.js";
import { sleep } from "./replies.js";
import { Call, type CallEnv } from "./runner.js";
import { Service } from "./service.js";
import { ensurePoolConsumer, poolRegisteredMs, waitForStreams } from "./startup.js";
import { aliveSubject, catalogKey, inboxPrefix, kvSubject, poolConsumer, validName, workerKey } from "./subjects.js";
import type { ToolDef } from "./tool.js";

export interface WorkerOptions {
  /** The pool's name (default: `MCPBUS_POOL`). Its replicas share one queue. */
  pool?: string;
  /** This process's name, unique within the pool (default: `MCPBUS_INSTANCE`, else 12 random hex). */
  instance?: string;
  /** Calls run at once; more stay queued for other replicas. Default 16. */
  maxInFlight?: number;
  /** How often the worker record is re-put. Default 2000 ms. */
  heartbeatMs?: number;
  /** How long gateways route to this instance after its last beat; at least 2 × heartbeat (default 3 ×). */
  ttlMs?: number;
  /** How long a drain waits for running calls before stopping them (they are NAKed). Default 30 s. */
  drainTimeoutMs?: number;
  /** Connection settings (default: the MCPBUS_NATS_* environment). */
  nats?: NatsSettings;
  /** Whether to answer NATS service API pings as `mcpbus-<pool>` (default true). */
  serviceApi?: boolean;
}

export interface RunOptions {
  /** Drain when this fires (default: on SIGTERM or SIGINT; a second signal ends the drain wait at once). */
  signal?: AbortSignal;
}

export class Worker {
  readonly pool: string;
  readonly instance: string;
  readonly maxInFlight: number;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly drainTimeoutMs: number;
  /** What the worker serves; change it at any time (PROTOCOL 9). */
  readonly catalogue = new Catalogue();
  private readonly settings: NatsSettings | undefined;
  private readonly serviceApi: boolean;

  constructor(options: WorkerOptions = {}) {
    const pool = options.pool ?? process.env[c.ENV.pool];
    if (!pool) throw new Error(`a worker needs a pool: the pool option or ${c.ENV.pool}`);
    this.pool = validName("pool", pool);
    this.instance = validName("instance", options.instance ?? (process.env[c.ENV.instance] || randomBytes(6).toString("hex")));
    this.maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? c.DEFAULT_MAX_IN_FLIGHT));
    this.heartbeatMs = Math.max(100, options.heartbeatMs ?? c.DEFAULT_HEARTBEAT_MS);
    this.ttlMs = Math.max(2 * this.heartbeatMs, options.ttlMs ?? 3 * this.heartbeatMs);
    this.drainTimeoutMs = Math.max(0, options.drainTimeoutMs ?? c.DEFAULT_DRAIN_TIMEOUT_MS);
    this.settings = options.nats;
    this.serviceApi = options.serviceApi ?? true;
  }

  /** Adds a tool (see `defineTool`). */
  tool(def: ToolDef): this {
    this.catalogue.add(def);
    return this;
  }

  /** The `WorkerRecord` this instance beats with. */
  workerRecord(digest: string, registeredMs: number): Record<string, unknown> {
    return {
      protocol: c.PROTOCOL_VERSION,
      pool: this.pool,
      instance: this.instance,
      catalog_digest: digest,
      heartbeat_ms: this.heartbeatMs,
      ttl_ms: this.ttlMs,
      max_in_flight: this.maxInFlight,
      sdk: c.SDK,
      registered_ms: registeredMs,
      // `run` subscribes to the alive subject before the first put (PROTOCOL 4.2, ADR 0029).
      alive_subscription: true,
    };
  }

  /** Connects, registers, serves until stopped, then drains; resolves when the worker is gone. */
  async run(options: RunOptions = {}): Promise<void> {
    if (this.catalogue.size === 0) throw new Error("a worker needs at least one tool");
    const settings = this.settings ?? settingsFromEnv();
    validate(settings);
    const { stop, skipWait, drain, dispose } = stopSignals(options.signal);
    log.info(`connecting to NATS (${describe(settings)}) as pool ${this.pool} instance ${this.instance}`);
    // D.1: under NATS permissions a pool's workers may read only their own inboxes.
    const nc = await connect({ ...connectOptions(settings), name: `mcpbus-worker-ts/${this.pool}`, inboxPrefix: inboxPrefix(this.pool) });
    try {
      const js = jetstream(nc);
      if (!(await waitForStreams(nc, stop))) return;
      await ensurePoolConsumer(nc, this.pool);
      const registeredMs = await poolRegisteredMs(nc, this.pool);
      const registration = new Registration(this, js, registeredMs);
      // Held until the connection closes, and in place before the record says so: gateways
      // probe it, and the server's "no responders" once this connection is gone removes the
      // instance within about a second rather than a TTL (ADR 0029). Nothing is answered.
      nc.subscribe(aliveSubject(this.pool, this.instance), { callback: () => {} });
      await nc.flush();
      await registration.announce();
      log.info(`worker registered: pool=${this.pool} instance=${this.instance} tools=${this.catalogue.names().join(",")}`);
      const unlisten = this.catalogue.onChange(() => void registration.announce());
      const service = this.serviceApi ? new Service(nc, this.pool, this.instance, this.maxInFlight) : null;
      const beating = setInterval(() => void registration.beat(), this.heartbeatMs);
      const stopListening = listenForDrain(nc, this.pool, this.instance, drain);
      try {
        await this.serve(nc, js, stop, skipWait);
      } finally {
        stopListening();
        clearInterval(beating);
        unlisten();
        service?.stop();
        await registration.leave();
      }
    } finally {
      dispose();
      try {
        await nc.flush();
      } catch {
        // closing anyway
      }
      await nc.close();
      log.info("worker stopped");
    }
  }

  /** Pulls and runs calls until `stop`, then E.1 and E.3. */
  private async serve(nc: NatsConnection, js: JetStreamClient, stop: AbortSignal, skipWait: AbortSignal): Promise<void> {
    const env: CallEnv = {
      pool: this.pool,
      instance: this.instance,
      catalogue: this.catalogue,
      replies: replyBus(nc, js),
      answers: answerBus(nc),
      watchCancel: (subject, onCancel) => watchCancel(nc, subject, onCancel),
      now: Date.now,
    };
    const running = new Set<Call>();
    const finished = new Set<Promise<unknown>>();
    let freed: () => void = () => {};
    const slotFreed = () => new Promise<void>((resolve) => (freed = resolve));
    const consumer = await js.consumers.get(c.CALLS_STREAM, poolConsumer(this.pool));
    while (!stop.aborted) {
      if (running.size >= this.maxInFlight) {
        await Promise.race([slotFreed(), sleep(60_000, stop)]);
        continue;
      }
      try {
        // E.1: once `stop` fires no new pull starts; this one still delivers until it expires.
        const batch = await consumer.fetch({ max_messages: this.maxInFlight - running.size, expires: c.PULL_EXPIRES_MS });
        for await (const m of batch) {
          const call = new Call(env, callMessage(m));
          running.add(call);
          const done = call.run().finally(() => {
            running.delete(call);
            finished.delete(done);
            freed();
          });
          finished.add(done);
        }
      } catch (e) {
        // The connection is away (nats.js reconnects) or the consumer is being recreated.
        log.warn(`pull failed: ${e instanceof Error ? e.message : String(e)}`);
        await sleep(1_000, stop);
      }
    }
    log.info(`draining: no new calls; waiting up to ${this.drainTimeoutMs} ms for ${running.size} running`);
    if (running.size > 0) {
      // The wait ends when the calls do, at the drain timeout, or on a second signal.
      const waited = new AbortController();
      const ended = AbortSignal.any([waited.signal, skipWait]);
      await Promise.race([Promise.allSettled([...finished]), sleep(this.drainTimeoutMs, ended)]);
      waited.abort();
      if (running.size > 0) {
        log.warn(`drain timeout: stopping ${running.size} calls still running (NAK)`);
        for (const call of running) call.stopForDrain();
        await Promise.allSettled([...finished]);
      }
    }
  }
}

/** The catalogue and worker records of one running instance (PROTOCOL 4, 9). */
class Registration {
  private digest = "";
  private lastCatalogPut = 0;
  /** Serializes puts: a catalogue change and a beat never interleave out of order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly worker: Worker,
    private readonly js: JetStreamClient,
    private readonly registeredMs: number,
  ) {}

  /** The catalogue first, then a record naming it: gateways list an instance once they have both. */
  announce(): Promise<void> {
    return this.enqueue(async () => {
      const record = this.worker.catalogue.record(this.worker.pool);
      await kvPut(this.js, kvSubject(c.CATALOG_BUCKET, catalogKey(this.worker.pool, record.digest)), record);
      this.digest = record.digest;
      this.lastCatalogPut = Date.now();
      await this.putRecord();
    });
  }

  beat(): Promise<void> {
    return this.enqueue(async () => {
      if (Date.now() - this.lastCatalogPut > c.CATALOG_REFRESH_MS) {
        const record = this.worker.catalogue.record(this.worker.pool);
        await kvPut(this.js, kvSubject(c.CATALOG_BUCKET, catalogKey(this.worker.pool, record.digest)), record);
        this.lastCatalogPut = Date.now();
      }
      await this.putRecord();
    });
  }

  /** E.4: delete the key; gateways drop the instance at once. */
  async leave(): Promise<void> {
    await this.queue;
    try {
      await kvDelete(this.js, kvSubject(c.WORKERS_BUCKET, workerKey(this.worker.pool, this.worker.instance)));
    } catch (e) {
      log.warn(`deregistration failed; gateways will expire this worker: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private putRecord(): Promise<void> {
    const subject = kvSubject(c.WORKERS_BUCKET, workerKey(this.worker.pool, this.worker.instance));
    return kvPut(this.js, subject, this.worker.workerRecord(this.digest, this.registeredMs));
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(step).catch((e: unknown) => {
      log.warn(`registration put failed; retrying with the next beat: ${e instanceof Error ? e.message : String(e)}`);
    });
    return this.queue;
  }
}

/**
 * `stop` fires on the first SIGTERM/SIGINT (or `given`), or when `drain` is called (a drain
 * request on the bus); `skipWait` on the second signal.
 */
function stopSignals(given?: AbortSignal): {
  stop: AbortSignal;
  skipWait: AbortSignal;
  drain: () => void;
  dispose: () => void;
} {
  const stop = new AbortController();
  const skip = new AbortController();
  const drain = () => stop.abort();
  if (given) {
    given.addEventListener("abort", () => stop.abort(), { once: true });
    return { stop: stop.signal, skipWait: skip.signal, drain, dispose: () => {} };
  }
  const onSignal = (name: string) => {
    if (!stop.signal.aborted) {
      log.info(`${name}: draining`);
      stop.abort();
    } else {
      log.warn(`${name} again: not waiting for running calls any longer`);
      skip.abort();
    }
  };
  const term = () => onSignal("SIGTERM");
  const int = () => onSignal("SIGINT");
  process.on("SIGTERM", term);
  process.on("SIGINT", int);
  return {
    stop: stop.signal,
    skipWait: skip.signal,
    drain,
    dispose: () => {
      process.off("SIGTERM", term);
      process.off("SIGINT", int);
    },
  };
}
