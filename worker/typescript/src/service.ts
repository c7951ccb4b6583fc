/**
 * Visibility to NATS tooling (PROTOCOL.md §4.4, optional): answers the NATS service API's
 * `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` as service `mcpbus-<pool>`, so `nats micro ls`
 * lists the replicas. Written here (three subjects, three JSON answers) rather than taken
 * from `@nats-io/services`, which has only pre-releases for nats.js v3. Pingers must ask
 * with an inbox under `_INBOX.srv`, the only one a pool's workers may answer to.
 */

import { randomBytes } from "node:crypto";

import type { NatsConnection, Subscription } from "@nats-io/transport-node";

import * as c from "./contract.js";
import { log } from "./log.js";
import { serviceName } from "./subjects.js";

const VERBS = { PING: "io.nats.micro.v1.ping_response", INFO: "io.nats.micro.v1.info_response", STATS: "io.nats.micro.v1.stats_response" } as const;

export class Service {
  private readonly subs: Subscription[] = [];

  constructor(nc: NatsConnection, pool: string, instance: string, maxInFlight: number) {
    const name = serviceName(pool);
    const id = randomBytes(11).toString("hex").toUpperCase();
    const started = new Date().toISOString();
    const base = {
      name,
      id,
      version: c.SDK_VERSION,
      metadata: { pool, instance, max_in_flight: String(maxInFlight), sdk: c.SDK },
    };
    const answers: Record<keyof typeof VERBS, Record<string, unknown>> = {
      PING: { type: VERBS.PING, ...base },
      INFO: { type: VERBS.INFO, ...base, description: `mcpbus worker pool ${pool}`, endpoints: [] },
      STATS: { type: VERBS.STATS, ...base, started, endpoints: [] },
    };
    for (const verb of Object.keys(VERBS) as (keyof typeof VERBS)[]) {
      const body = new TextEncoder().encode(JSON.stringify(answers[verb]));
      for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${name}`, `$SRV.${verb}.${name}.${id}`]) {
        this.subs.push(
          nc.subscribe(subject, {
            callback: (err, msg) => {
              if (err || !msg.reply) return;
              try {
                msg.respond(body);
              } catch (e) {
                log.debug(`service API answer failed: ${String(e)}`);
              }
            },
          }),
        );
      }
    }
  }

  stop(): void {
    for (const sub of this.subs) sub.unsubscribe();
  }
}
