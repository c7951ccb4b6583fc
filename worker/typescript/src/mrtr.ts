/**
 * Asking the client on the stateless lane: multi round-trip requests (PROTOCOL 5.4).
 *
 * The handler runs once per round. Answers from earlier rounds come back inside the
 * `requestState` (sealed by the gateway, so the client cannot alter them), answers to the
 * latest questions in `inputResponses`. The first question without an answer ends the round
 * with an `InputRequiredResult` carrying every answer so far: the state is
 * `{"answers": {key: answer}}`, the same as the Rust SDK's.
 */

import { InputRequired } from "./errors.js";

/** One question for the client: an `inputRequests` entry. */
export interface Ask {
  /** Names the question in `inputRequests` (unique within the request). */
  key: string;
  /** `elicitation/create`, `sampling/createMessage` or `roots/list`. */
  method: string;
  params: unknown;
}

const ANSWERS = "answers";

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The answers one run of a handler can draw on. */
export class Rounds {
  /** Settled in earlier rounds, plus those this run used so far. */
  private readonly carried: Map<string, unknown>;
  /** What the client sent with this retry. */
  private readonly fresh: Map<string, unknown>;
  /** Whether the request carried a `requestState` (the gateway verified it). */
  readonly resumed: boolean;

  constructor(params: Record<string, unknown>) {
    const state = params.requestState;
    const carried = isObject(state) && isObject(state[ANSWERS]) ? state[ANSWERS] : {};
    const fresh = isObject(params.inputResponses) ? params.inputResponses : {};
    this.carried = new Map(Object.entries(carried));
    this.fresh = new Map(Object.entries(fresh));
    this.resumed = state !== undefined && state !== null;
  }

  /**
   * The answers to `asks` in order, or throws `InputRequired` asking for those missing.
   * Keys the handler never asks about are ignored, as the specification asks.
   */
  answers(asks: readonly Ask[]): unknown[] {
    const answers: unknown[] = [];
    const missing: Record<string, unknown> = {};
    for (const ask of asks) {
      const known = this.carried.has(ask.key) ? this.carried.get(ask.key) : this.fresh.get(ask.key);
      if (known !== undefined) {
        this.carried.set(ask.key, known);
        answers.push(known);
      } else {
        missing[ask.key] = { method: ask.method, params: ask.params };
      }
    }
    if (Object.keys(missing).length === 0) return answers;
    throw new InputRequired({
      resultType: "input_required",
      inputRequests: missing,
      requestState: { [ANSWERS]: Object.fromEntries(this.carried) },
    });
  }
}
