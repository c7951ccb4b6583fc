/**
 * Who is calling (PROTOCOL 5.7): the caller a gateway verified from the client's access
 * token. Absent when the gateway runs without authorization. Never a token. Malformed means
 * the whole call is refused before any handler runs: never a caller half understood.
 */

export interface Principal {
  /** The token's `iss`. Compare issuer and subject together, never the subject alone. */
  readonly issuer: string;
  /** The token's `sub` (or an introspected token's `client_id`). */
  readonly subject: string;
  /** Scopes granted to the token, in the authorization server's order (empty when absent). */
  readonly scopes: readonly string[];
  /** The operator's allow-listed claims, as they were (empty when absent). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export class MalformedPrincipal extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The principal of a call body's `principal` field: `null` when absent or null. */
export function principalOf(value: unknown): Principal | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) throw new MalformedPrincipal("principal is not an object");
  const { issuer, subject, scopes, claims } = value;
  if (typeof issuer !== "string") throw new MalformedPrincipal("principal.issuer is not a string");
  if (typeof subject !== "string") throw new MalformedPrincipal("principal.subject is not a string");
  if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every((s) => typeof s === "string"))) {
    throw new MalformedPrincipal("principal.scopes is not an array of strings");
  }
  if (claims !== undefined && !isObject(claims)) {
    throw new MalformedPrincipal("principal.claims is not an object");
  }
  return Object.freeze({
    issuer,
    subject,
    scopes: Object.freeze([...((scopes as string[] | undefined) ?? [])]),
    claims: Object.freeze({ ...((claims as Record<string, unknown> | undefined) ?? {}) }),
  });
}
