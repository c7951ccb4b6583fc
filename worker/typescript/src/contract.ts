/**
 * The names and limits of the mcpbus bus (bus-schema/PROTOCOL.md, version 2, and the worker
 * rules of PROTOCOL.md), in one place. The rest of the SDK reads these; `subjects.ts`
 * builds subjects and keys from them. No other file spells a subject, stream, bucket,
 * header, code or limit of the bus.
 */

/** Carried in every body (`"protocol": 2`). */
export const PROTOCOL_VERSION = 2;

// -- Subjects -------------------------------------------------------------------------------
export const CALL_SUBJECT_PREFIX = "mcpbus.v2.call.";
export const CANCEL_SUBJECT_PREFIX = "mcpbus.v2.cancel.";
export const ANSWER_SUBJECT_PREFIX = "mcpbus.v2.answer.";
/** Where the operator asks one instance to drain (`mcpbusctl drain`): this plus `<pool>.<instance>`. */
export const DRAIN_SUBJECT_PREFIX = "mcpbus.v2.drain.";
/** Where the instance holds a subscription while its connection lives, probed by gateways (ADR 0029): this plus `<pool>.<instance>`. */
export const ALIVE_SUBJECT_PREFIX = "mcpbus.v2.alive.";
/** The only inboxes a pool's workers may subscribe to on a bus with permissions (ADR 0013). */
export const WORKER_INBOX_PREFIX = "_INBOX.pool.";
/** NATS service API name of a pool: this plus the pool. */
export const SERVICE_NAME_PREFIX = "mcpbus-";

// -- JetStream objects (workers only open them; gateways create them) -----------------------
export const CALLS_STREAM = "MCPBUS_CALLS";
export const WORKERS_BUCKET = "mcpbus-workers";
export const CATALOG_BUCKET = "mcpbus-catalog";
export const KV_STREAM_PREFIX = "KV_";
export const KV_SUBJECT_PREFIX = "$KV.";
export const POOL_CONSUMER_PREFIX = "mcpbus-pool-";
/** How long JetStream waits for an ack (or `+WPI`) before delivering a call again. */
export const POOL_ACK_WAIT_MS = 30_000;
export const POOL_MAX_DELIVER = 5;
export const POOL_MAX_ACK_PENDING = 10_000;
/** Re-put the catalogue this often so it never reaches the bucket's 24 h age limit. */
export const CATALOG_REFRESH_MS = 3_600_000;

// -- JetStream API subjects a worker may use (PROTOCOL section 9) ---------------------------
export const JS_API_PREFIX = "$JS.API.";

// -- Headers ---------------------------------------------------------------------------------
export const HEADER_MSG_ID = "Nats-Msg-Id";
export const HEADER_KV_OPERATION = "KV-Operation";
export const KV_OPERATION_DELETE = "DEL";
export const HEADER_NATS_TIME_STAMP = "Nats-Time-Stamp";

// -- Reply types (`CallReply.type`) ----------------------------------------------------------
export const REPLY = {
  accepted: "accepted",
  progress: "progress",
  log: "log",
  request: "request",
  detach: "detach",
  escalate: "escalate",
  result: "result",
  error: "error",
} as const;

export const LANE_SESSION = "session";
export const LANE_STATELESS = "stateless";
export const IDEMPOTENT_HINT = "idempotentHint";

// -- MCP vocabulary --------------------------------------------------------------------------
export const METHOD_TOOLS_CALL = "tools/call";
export const METHOD_RESOURCES_READ = "resources/read";
export const METHOD_PROMPTS_GET = "prompts/get";
export const METHOD_COMPLETION_COMPLETE = "completion/complete";
export const META_PROGRESS_TOKEN = "progressToken";

/** JSON-RPC codes a worker reports. */
export const CODE = {
  invalidParams: -32602,
  methodNotFound: -32601,
  internalError: -32603,
  resourceNotFound: -32002,
  /** 2026-07-28: the request needs a client capability the client did not declare. */
  missingCapability: -32021,
} as const;

/** `error.data.reason` of every refusal (PROTOCOL.md §5.8). */
export const REASON = {
  unsupportedProtocol: "unsupported_protocol",
  malformedCall: "malformed_call",
  deadlinePassed: "deadline_passed",
  workerLost: "worker_lost",
  unknownTool: "unknown_tool",
  unknownMethod: "unknown_method",
  unknownPrompt: "unknown_prompt",
  unknownResource: "unknown_resource",
  internal: "internal",
} as const;

/** The client request a capability allows (never ask for what the client did not declare). */
export const CAPABILITY_OF_METHOD: Readonly<Record<string, string>> = {
  "elicitation/create": "elicitation",
  "sampling/createMessage": "sampling",
  "roots/list": "roots",
};

// -- Liveness and flow defaults (PROTOCOL section 4, PROTOCOL.md §6 and §4.3) ----------------------
export const DEFAULT_HEARTBEAT_MS = 2_000;
export const DEFAULT_MAX_IN_FLIGHT = 16;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** How long one pull request stays open; a drain waits at most this for it to end. */
export const PULL_EXPIRES_MS = 2_000;
/** How long the start-up read of the pool's registration time may take. */
export const REGISTERED_MS_READ_LIMIT_MS = 3_000;
/** Retry interval while the bus's streams do not exist yet. */
export const STREAM_WAIT_RETRY_MS = 500;

// -- Durable replies (PROTOCOL.md §5.2) --------------------------------------------------------
/** How long a durable reply is retried while the events stream's leader moves (ADR 0031). */
export const DURABLE_RETRY_MS = 10_000;
/** How long one attempt waits for the stream's acknowledgement. */
export const DURABLE_ACK_TIMEOUT_MS = 2_000;
/** The first pause between attempts; it doubles up to the last. */
export const DURABLE_FIRST_PAUSE_MS = 50;
export const DURABLE_MAX_PAUSE_MS = 500;

// -- What one call may make the worker hold ---------------------------------------------------
/** Requests to the client one call may make (`ask` on the session lane, `inputRequests`). */
export const MAX_ASKS_PER_CALL = 32;
/** How long a cancelled or expired handler gets to stop before the call is acknowledged anyway. */
export const STOP_GRACE_MS = 5_000;

// -- Connection settings (environment variables, as bus_schema::connect) --------------------
export const ENV = {
  url: "MCPBUS_NATS_URL",
  creds: "MCPBUS_NATS_CREDS",
  nkey: "MCPBUS_NATS_NKEY",
  user: "MCPBUS_NATS_USER",
  password: "MCPBUS_NATS_PASSWORD",
  passwordFile: "MCPBUS_NATS_PASSWORD_FILE",
  token: "MCPBUS_NATS_TOKEN",
  tokenFile: "MCPBUS_NATS_TOKEN_FILE",
  tlsCa: "MCPBUS_NATS_TLS_CA",
  tlsCert: "MCPBUS_NATS_TLS_CERT",
  tlsKey: "MCPBUS_NATS_TLS_KEY",
  tlsFirst: "MCPBUS_NATS_TLS_FIRST",
  pool: "MCPBUS_POOL",
  instance: "MCPBUS_INSTANCE",
} as const;

export const SDK_NAME = "mcpbus-typescript";
export const SDK_VERSION = "0.1.0";
export const SDK = `${SDK_NAME}/${SDK_VERSION}`;
