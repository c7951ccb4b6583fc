/**
 * How a worker reaches NATS: seed servers, one way of authenticating, TLS, from the same
 * MCPBUS_NATS_* environment variables as the Rust binaries and the Python SDK
 * (bus_schema::connect). Secrets are never shown: `describe()` leaves out passwords, tokens
 * and seeds and shows URLs with their userinfo as `***`; errors name the setting and the
 * path, never what a file holds.
 */

import { readFileSync } from "node:fs";

import { credsAuthenticator, nkeyAuthenticator, type Authenticator } from "@nats-io/transport-node";
import type { NodeConnectionOptions } from "@nats-io/transport-node";

import { ENV } from "./contract.js";

export class NatsSettingsError extends Error {
  override name = "NatsSettingsError";
}

export const DEFAULT_URL = "nats://127.0.0.1:4222";

/** The validated connection settings. Secrets are kept out of `describe()` and errors. */
export interface NatsSettings {
  /** Seed server URLs, tried in turn; the rest of a cluster is learnt from them. */
  servers: string[];
  /** Path of a NATS `.creds` file (user JWT and nkey seed). */
  creds?: string;
  /** Path of a file holding a user nkey seed (`SU...`). */
  nkey?: string;
  user?: string;
  password?: string;
  token?: string;
  /** CA certificates (PEM) to trust instead of the system's. */
  tlsCa?: string;
  /** Client certificate and key (PEM) for servers that verify clients. */
  tlsCert?: string;
  tlsKey?: string;
  /** TLS before the server's INFO (servers with `handshake_first`, nats-server 2.10.4+). */
  tlsFirst?: boolean;
}

/** `url` with any userinfo replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)?[^/@?#]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ""}***@`);
}

function read(setting: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new NatsSettingsError(`${setting}: cannot read ${path} (${code})`);
  }
}

/** A secret given directly or in a file (not both); a file's final newline is dropped. */
function secret(env: NodeJS.ProcessEnv, direct: string, file: string): string | undefined {
  const value = env[direct] || undefined;
  const path = env[file] || undefined;
  if (value && path) throw new NatsSettingsError(`${direct} and ${file} both give it: give one`);
  if (!path) return value;
  const text = read(file, path).toString("utf8").replace(/[\r\n]+$/, "");
  if (!text) throw new NatsSettingsError(`${file}: ${path} is empty`);
  return text;
}

/** The settings from the environment (default: `process.env`), validated. */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): NatsSettings {
  const servers = (env[ENV.url] || DEFAULT_URL)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const settings: NatsSettings = { servers };
  const set = <K extends keyof NatsSettings>(key: K, value: NatsSettings[K] | undefined) => {
    if (value !== undefined && value !== "") settings[key] = value;
  };
  set("creds", env[ENV.creds]);
  set("nkey", env[ENV.nkey]);
  set("user", env[ENV.user]);
  set("password", secret(env, ENV.password, ENV.passwordFile));
  set("token", secret(env, ENV.token, ENV.tokenFile));
  set("tlsCa", env[ENV.tlsCa]);
  set("tlsCert", env[ENV.tlsCert]);
  set("tlsKey", env[ENV.tlsKey]);
  if (["1", "true", "yes", "on"].includes((env[ENV.tlsFirst] ?? "").toLowerCase())) settings.tlsFirst = true;
  validate(settings);
  return settings;
}

/** Refuses what cannot work, before connecting. */
export function validate(s: NatsSettings): void {
  if (s.servers.length === 0) throw new NatsSettingsError(`${ENV.url} names no NATS server`);
  const inUrl = s.servers.some((u) => /^([a-z]+:\/\/)?[^/@?#]*@/i.test(u));
  const ways = [
    s.creds ? ENV.creds : null,
    s.nkey ? ENV.nkey : null,
    s.user !== undefined ? ENV.user : s.password ? ENV.password : null,
    s.token ? ENV.token : null,
    inUrl ? `credentials in ${ENV.url}` : null,
  ].filter((w): w is string => w !== null);
  if (ways.length > 1) {
    throw new NatsSettingsError(`${ways.join(" and ")} cannot be combined: authenticate one way`);
  }
  if (s.user !== undefined && !s.password) {
    throw new NatsSettingsError(`${ENV.user} needs a password: ${ENV.password} or ${ENV.passwordFile}`);
  }
  if (s.password && s.user === undefined) throw new NatsSettingsError(`a password needs a user: ${ENV.user}`);
  if (Boolean(s.tlsCert) !== Boolean(s.tlsKey)) {
    throw new NatsSettingsError(s.tlsCert ? `${ENV.tlsCert} needs ${ENV.tlsKey}` : `${ENV.tlsKey} needs ${ENV.tlsCert}`);
  }
  for (const [setting, path] of [
    [ENV.creds, s.creds],
    [ENV.nkey, s.nkey],
    [ENV.tlsCa, s.tlsCa],
    [ENV.tlsCert, s.tlsCert],
    [ENV.tlsKey, s.tlsKey],
  ] as const) {
    if (path) read(setting, path);
  }
}

/** What the settings say, without any secret: for logs. */
export function describe(s: NatsSettings): string {
  const parts = [`servers=${s.servers.map(redactUrl).join(",")}`];
  if (s.creds) parts.push(`creds=${s.creds}`);
  if (s.nkey) parts.push(`nkey=${s.nkey}`);
  if (s.user !== undefined) parts.push(`user=${s.user}`);
  if (s.password) parts.push("password=***");
  if (s.token) parts.push("token=***");
  if (s.tlsCa || s.tlsCert || s.tlsFirst) parts.push("tls");
  return parts.join(" ");
}

/** Options for `connect` from `@nats-io/transport-node` (the caller adds name and inbox prefix). */
export function connectOptions(s: NatsSettings): NodeConnectionOptions {
  const opts: NodeConnectionOptions = { maxReconnectAttempts: -1, reconnectTimeWait: 1000 };
  const servers: string[] = [];
  for (const url of s.servers) {
    // nats.js does not read credentials from a URL; the Rust and Python clients do.
    const m = /^([a-z]+:\/\/)?([^/@?#]*)@(.*)$/i.exec(url);
    if (m) {
      const [user, ...rest] = (m[2] ?? "").split(":");
      if (rest.length > 0) {
        opts.user = decodeURIComponent(user ?? "");
        opts.pass = decodeURIComponent(rest.join(":"));
      } else {
        opts.token = decodeURIComponent(user ?? "");
      }
      servers.push(`${m[1] ?? ""}${m[3] ?? ""}`);
    } else {
      servers.push(url);
    }
  }
  opts.servers = servers;
  const authenticators: Authenticator[] = [];
  if (s.creds) authenticators.push(credsAuthenticator(new Uint8Array(read(ENV.creds, s.creds))));
  if (s.nkey) {
    const seed = read(ENV.nkey, s.nkey).toString("utf8").trim();
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  if (authenticators.length > 0) opts.authenticator = authenticators;
  if (s.user !== undefined) {
    opts.user = s.user;
    opts.pass = s.password;
  }
  if (s.token) opts.token = s.token;
  if (s.tlsCa || s.tlsCert || s.tlsFirst) {
    opts.tls = {};
    if (s.tlsCa) opts.tls.caFile = s.tlsCa;
    if (s.tlsCert) opts.tls.certFile = s.tlsCert;
    if (s.tlsKey) opts.tls.keyFile = s.tlsKey;
    if (s.tlsFirst) opts.tls.handshakeFirst = true;
  }
  return opts;
}
