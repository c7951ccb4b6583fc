/**
 * Drain over the bus (PROTOCOL.md §4.3): the operator (`mcpbusctl drain POOL/INSTANCE`)
 * publishes one message on the instance's drain subject, and the worker drains exactly as on
 * SIGTERM: no new pulls, running calls finish, its record goes, it exits.
 */

import type { NatsConnection } from "@nats-io/transport-node";

import { log } from "./log.js";
import { drainSubject } from "./subjects.js";

/** What listening needs of a connection. */
export type DrainBus = Pick<NatsConnection, "subscribe">;

/** Calls `drain` at the first message on this instance's drain subject; returns how to stop listening. */
export function listenForDrain(bus: DrainBus, pool: string, instance: string, drain: () => void): () => void {
  const sub = bus.subscribe(drainSubject(pool, instance), {
    callback: (err) => {
      if (err) return; // the subscription closing is no request to drain
      log.info("the operator asked this instance to drain");
      drain();
    },
  });
  return () => sub.unsubscribe();
}
