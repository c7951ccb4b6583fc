/** Drain over the bus (PROTOCOL.md §4.3): a message on the instance's drain subject starts the drain. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { type DrainBus, listenForDrain } from "../src/drain.js";
import "./fakes.js";

type Callback = (err: Error | null, msg: unknown) => void;

/** Records the one subscription and lets the test deliver to it. */
class FakeSubscriptions {
  subject = "";
  callback: Callback | undefined;
  unsubscribed = false;
  subscribe(subject: string, opts?: { callback?: Callback }) {
    this.subject = subject;
    this.callback = opts?.callback;
    return {
      unsubscribe: () => {
        this.unsubscribed = true;
      },
    };
  }
}

test("a message on the instance's drain subject drains it, as SIGTERM does", () => {
  const bus = new FakeSubscriptions();
  let drains = 0;
  const stop = listenForDrain(bus as unknown as DrainBus, "p", "w1", () => drains++);
  assert.equal(bus.subject, "mcpbus.v2.drain.p.w1");
  assert.equal(drains, 0);
  bus.callback?.(null, {});
  assert.equal(drains, 1);
  stop();
  assert.ok(bus.unsubscribed);
});

test("the subscription closing is no request to drain", () => {
  const bus = new FakeSubscriptions();
  let drains = 0;
  listenForDrain(bus as unknown as DrainBus, "p", "w1", () => drains++);
  bus.callback?.(new Error("closed"), undefined);
  assert.equal(drains, 0);
});
