/**
 * What a worker serves, and its `CatalogRecord` (PROTOCOL 4.1). A handler or the program may
 * change it while the worker runs (PROTOCOL 9): the worker then puts the new record under its
 * new digest, then a worker record naming it, and gateways tell clients `list_changed`.
 */

import * as c from "./contract.js";
import type { ToolDef } from "./tool.js";

/** 64-bit FNV-1a of `text`, in hex: the digest the Rust SDK uses for a catalogue. */
export function fnv1a64(text: string): string {
  let hash = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * prime) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

export class Catalogue {
  private readonly tools = new Map<string, ToolDef>();
  private readonly listeners = new Set<() => void>();

  /** Adds (or replaces) a tool; announced to the cluster at once when the worker runs. */
  add(tool: ToolDef): this {
    this.tools.set(tool.name, tool);
    this.changed();
    return this;
  }

  /** Removes a tool; true if it was there. */
  remove(name: string): boolean {
    const had = this.tools.delete(name);
    if (had) this.changed();
    return had;
  }

  get(name: string): ToolDef | undefined {
    return this.tools.get(name);
  }

  names(): string[] {
    return [...this.tools.keys()].sort();
  }

  get size(): number {
    return this.tools.size;
  }

  /** Called after every change (the worker re-registers). Returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The `CatalogRecord` of `pool`: tools sorted by name, digest of their JSON. */
  record(pool: string): { protocol: number; pool: string; digest: string; tools: unknown[] } {
    const tools = this.names().map((name) => (this.tools.get(name) as ToolDef).entry());
    return { protocol: c.PROTOCOL_VERSION, pool, digest: fnv1a64(JSON.stringify(tools)), tools };
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
