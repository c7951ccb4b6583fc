"""The names and limits of the mcpbus bus, mirrored from bus-schema (Rust).

Only `NAME = literal` lines (str, int, float, bool), comments and this docstring: no imports,
no expressions. bus-schema/tests/python_mirror.rs reads this file as text and holds every
constant to the value bus-schema defines (or, for the few bus-schema leaves to PROTOCOL.md,
to that document), so neither side can change alone. A constant added here must be added to
that test too. Durations are in seconds, as nats-py takes them.

The rest of the SDK reads these; `protocol.py` builds subjects and keys from them. No other
file spells a subject, stream, bucket, header, code or limit of the bus.
"""

# -- Version: bus_schema::PROTOCOL_VERSION ----------------------------------------------

#: Carried in every body (`"protocol": 2`).
PROTOCOL_VERSION = 2

# -- Subjects: bus_schema::subjects --------------------------------------------------------

#: `subjects::call(pool)` is this plus the pool.
CALL_SUBJECT_PREFIX = "mcpbus.v2.call."
#: `subjects::cancel(pool, call_id)` is this plus the pool, a dot and the call id.
CANCEL_SUBJECT_PREFIX = "mcpbus.v2.cancel."
#: `subjects::worker_inbox_prefix(pool)` is this plus the pool: the only inboxes a pool's
#: workers may subscribe to when the bus enforces permissions (ADR 0013).
WORKER_INBOX_PREFIX = "_INBOX.pool."
#: `subjects::drain(pool, instance)` is this plus `<pool>.<instance>`: where the operator
#: (`mcpbusctl drain POOL/INSTANCE`) asks one instance to drain, as SIGTERM does (PROTOCOL 4.3).
DRAIN_SUBJECT_PREFIX = "mcpbus.v2.drain."
#: `subjects::alive(pool, instance)` is this plus `<pool>.<instance>`: the instance holds a
#: subscription here while its connection lives; gateways probe it (PROTOCOL 4.2, ADR 0029).
ALIVE_SUBJECT_PREFIX = "mcpbus.v2.alive."
#: `subjects::client_answer(pool, call_id, seq)` is this plus `<pool>.<call_id>.<seq>`: where
#: the client's answer to the worker's request number `seq` of a call arrives.
ANSWER_SUBJECT_PREFIX = "mcpbus.v2.answer."
#: `subjects::announce(pool)` is this plus the pool: where a worker asks a gateway for a
#: server-wide message (ADR 0023).
ANNOUNCE_PREFIX = "mcpbus.v2.announce."
#: `messages::ANNOUNCEMENT_MAX_BYTES`: the largest announcement request a gateway accepts.
ANNOUNCEMENT_MAX_BYTES = 16384
#: The JetStream API a worker calls (stream and consumer info, consumer create, pulls):
#: its subjects are this plus the operation, as `permissions::worker` allows them.
JS_API_PREFIX = "$JS.API."
#: `subjects::service_name(pool)` (NATS service API) is this plus the pool.
SERVICE_NAME_PREFIX = "mcpbus-"
#: Between pool and instance (`subjects::worker_key`) or pool and digest (`catalog_key`).
KV_KEY_SEPARATOR = "."

# -- The calls stream: bus_schema::topology::calls_stream ---------------------------------
# Gateways declare it and the buckets with their limits; a worker only waits for them.

CALLS_STREAM = "MCPBUS_CALLS"

# -- A pool's consumer: bus_schema::topology::pool_consumer -------------------------------

#: `topology::pool_consumer_name(pool)` is this plus the pool.
POOL_CONSUMER_PREFIX = "mcpbus-pool-"
#: The consumer's description is this plus the pool.
POOL_CONSUMER_DESCRIPTION_PREFIX = "mcpbus: calls for pool "
POOL_ACK_POLICY = "explicit"
#: How long JetStream waits for an acknowledgement (or `+WPI`) before delivering a call again.
POOL_ACK_WAIT_SECONDS = 30.0
POOL_MAX_DELIVER = 5
#: Not in bus-schema (a parameter of `pool_consumer`): PROTOCOL.md section 3 states it.
POOL_MAX_ACK_PENDING = 10_000
#: Deliver every queued call, as fast as pulled: the rest of the agreed configuration.
POOL_DELIVER_POLICY = "all"
POOL_REPLAY_POLICY = "instant"

# -- KV buckets: bus_schema::topology::{WORKERS_KV, CATALOG_KV, kv_stream} ----------------

WORKERS_BUCKET = "mcpbus-workers"
CATALOG_BUCKET = "mcpbus-catalog"
#: `topology::CATALOG_REFRESH`: re-put the catalogue this often so it never ages out.
CATALOG_REFRESH_SECONDS = 3600.0
#: A bucket is the stream `KV_<bucket>`; its keys are subjects under `$KV.<bucket>.`.
KV_STREAM_PREFIX = "KV_"
KV_SUBJECT_PREFIX = "$KV."

# -- Headers: bus_schema::headers ----------------------------------------------------------

#: `headers::MSG_ID`: JetStream de-duplication key of a durable reply.
HEADER_MSG_ID = "Nats-Msg-Id"
#: `headers::TRACEPARENT`, `headers::TRACESTATE`: W3C trace context on every message of a
#: call (PROTOCOL.md §11); a worker carries the call's on into its replies.
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"

# -- Bodies: bus_schema::messages (enum tags and what bus-schema reads) --------------------

#: `CallEvent` `type` tags a worker sends.
REPLY_ACCEPTED = "accepted"
REPLY_PROGRESS = "progress"
REPLY_LOG = "log"
REPLY_REQUEST = "request"
REPLY_RESULT = "result"
REPLY_ERROR = "error"
#: `Lane::Session`: the 2025 revisions' lane.
LANE_SESSION = "session"
#: The tool annotation `ToolEntry::idempotent` reads: may a call run again after a crash.
IDEMPOTENT_HINT = "idempotentHint"
#: Not in bus-schema (the Rust SDK spells them): `data.reason` values, PROTOCOL.md 5.2 and 5.3.
REASON_DEADLINE_PASSED = "deadline_passed"
REASON_WORKER_LOST = "worker_lost"
#: The rest of the outcome table's `data.reason` values (issue 16, the SDKs' agreed rules;
#: to be written into PROTOCOL.md).
REASON_UNSUPPORTED_PROTOCOL = "unsupported_protocol"
REASON_MALFORMED_CALL = "malformed_call"
REASON_UNKNOWN_TOOL = "unknown_tool"
REASON_UNKNOWN_METHOD = "unknown_method"
REASON_UNKNOWN_PROMPT = "unknown_prompt"
REASON_UNKNOWN_RESOURCE = "unknown_resource"
REASON_INTERNAL = "internal"
REASON_UNKNOWN_COMPLETION_REF = "unknown_completion_ref"

# -- The caller: bus_schema::principal::Principal, as CallRequest carries it --------------

#: `CallRequest.principal`: who is calling, as the gateway verified it. Absent (or null)
#: when the gateway runs without authorization. Never a token.
CALL_PRINCIPAL = "principal"
#: `WorkerRecord.registered_ms`: Unix ms since when the instance's pool has served (the
#: earliest of its live instances' when it started, else its start). When pools register one
#: name, gateways give it to the pool with the earliest time (ADR 0015).
WORKER_REGISTERED_MS = "registered_ms"
#: `WorkerRecord.alive_subscription`: true when the instance subscribed to its alive subject
#: before writing the record (ADR 0029); gateways then drop it soon after its connection dies.
WORKER_ALIVE_SUBSCRIPTION = "alive_subscription"
#: `Principal`'s fields. Issuer and subject are required strings; `scopes` (strings) and
#: `claims` (an object) are left out when empty.
PRINCIPAL_ISSUER = "issuer"
PRINCIPAL_SUBJECT = "subject"
PRINCIPAL_SCOPES = "scopes"
PRINCIPAL_CLAIMS = "claims"

# -- MCP vocabulary: bus_schema::mcp -------------------------------------------------------

METHOD_TOOLS_CALL = "tools/call"
METHOD_RESOURCES_READ = "resources/read"
METHOD_PROMPTS_GET = "prompts/get"
METHOD_COMPLETION_COMPLETE = "completion/complete"
#: `mcp::meta::PROGRESS_TOKEN`: present in `params._meta` when the client wants progress.
META_PROGRESS_TOKEN = "progressToken"
#: `mcp::code`: the JSON-RPC codes a worker reports.
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002
#: 2026-07-28 `MissingRequiredClientCapability`: the worker would need to ask the client for
#: something it did not declare.
MISSING_CAPABILITY = -32021
#: `mcp::result_type::INPUT_REQUIRED`: the `resultType` of an `InputRequiredResult` (5.4).
RESULT_INPUT_REQUIRED = "input_required"
#: `mcp::capability`: what a client declares, and the request to the client each allows.
CAPABILITY_ELICITATION = "elicitation"
CAPABILITY_SAMPLING = "sampling"
CAPABILITY_ROOTS = "roots"
CLIENT_METHOD_ELICITATION = "elicitation/create"
CLIENT_METHOD_SAMPLING = "sampling/createMessage"
CLIENT_METHOD_ROOTS = "roots/list"
#: `mcp::LogLevel::NAMES`, comma-separated, in increasing severity.
LOG_LEVELS = "debug,info,notice,warning,error,critical,alert,emergency"

# -- Liveness defaults: not in bus-schema; PROTOCOL.md section 4 states them ---------------

#: How often the `WorkerRecord` is re-put (`heartbeat_ms`).
DEFAULT_HEARTBEAT_SECONDS = 2.0
#: How long gateways keep routing to an instance after its last put (`ttl_ms`).
DEFAULT_TTL_SECONDS = 6.0

# -- Connection settings: bus_schema::connect::Setting (environment variables) -------------

#: Seed server URLs, comma-separated.
ENV_NATS_URL = "MCPBUS_NATS_URL"
#: Path of a NATS .creds file.
ENV_NATS_CREDS = "MCPBUS_NATS_CREDS"
#: Path of a file holding a user nkey seed.
ENV_NATS_NKEY = "MCPBUS_NATS_NKEY"
ENV_NATS_USER = "MCPBUS_NATS_USER"
#: The password itself (no flag takes it).
ENV_NATS_PASSWORD = "MCPBUS_NATS_PASSWORD"
ENV_NATS_PASSWORD_FILE = "MCPBUS_NATS_PASSWORD_FILE"
#: The token itself (no flag takes it).
ENV_NATS_TOKEN = "MCPBUS_NATS_TOKEN"
ENV_NATS_TOKEN_FILE = "MCPBUS_NATS_TOKEN_FILE"
ENV_NATS_TLS_CA = "MCPBUS_NATS_TLS_CA"
ENV_NATS_TLS_CERT = "MCPBUS_NATS_TLS_CERT"
ENV_NATS_TLS_KEY = "MCPBUS_NATS_TLS_KEY"
ENV_NATS_TLS_FIRST = "MCPBUS_NATS_TLS_FIRST"
