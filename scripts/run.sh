#!/usr/bin/env bash
# Runs the whole mcpbus stack on this machine:
#   - nats-server with JetStream, data in .mcpbus/nats (port $MCPBUS_NATS_PORT, default 4222)
#   - one gateway on http://$MCPBUS_LISTEN/mcp (default 127.0.0.1:8080), its metrics on
#     http://$MCPBUS_METRICS_LISTEN/metrics (default 127.0.0.1:9464). Without auth flags the
#     gateway serves loopback only; set MCPBUS_AUTH_ISSUERS and MCPBUS_AUTH_AUDIENCE (README,
#     "Running with an authorization server"), or MCPBUS_AUTH=none, to listen beyond it.
#   - the demo worker
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

NATS_PORT=${MCPBUS_NATS_PORT:-4222}
LISTEN=${MCPBUS_LISTEN:-127.0.0.1:8080}
HTTP_PORT=${LISTEN##*:}
METRICS_LISTEN=${MCPBUS_METRICS_LISTEN:-127.0.0.1:9464}
METRICS_PORT=${METRICS_LISTEN##*:}
DATA=.mcpbus

ensure_nats_server
NATS=${NATS_SERVER_BIN:-nats-server}
for p in "$NATS_PORT" "$HTTP_PORT" "$METRICS_PORT"; do
  if port_in_use "$p"; then
    echo "port $p is already in use; set MCPBUS_NATS_PORT / MCPBUS_LISTEN / MCPBUS_METRICS_LISTEN to free ones" >&2
    exit 1
  fi
done

echo "building mcpbus (first build takes a few minutes)..." >&2
cargo build --quiet --bins -p mcpbus-gateway -p mcpbus-worker
BIN=${CARGO_TARGET_DIR:-target}/debug

mkdir -p "$DATA/nats" "$DATA/logs"
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped." >&2
}
trap stop INT TERM EXIT

"$NATS" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$DATA/nats" >"$DATA/logs/nats.log" 2>&1 &
pids+=($!)
wait_for_port "$NATS_PORT" 10 || { echo "nats-server did not start; see $DATA/logs/nats.log" >&2; exit 1; }

NATS_URL="nats://127.0.0.1:$NATS_PORT"
# Their logs go through tee (a pipe), where the default is JSON: text reads better here, and
# stays free of colour codes in the log files. MCPBUS_LOG_FORMAT=json to see the JSON lines;
# OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 to send traces to a local collector.
export MCPBUS_LOG_FORMAT=${MCPBUS_LOG_FORMAT:-text}
"$BIN/mcpbus-worker" --nats "$NATS_URL" demo 2> >(tee -a "$DATA/logs/worker.log" >&2) &
pids+=($!)
"$BIN/mcpbus-gateway" --nats "$NATS_URL" --listen "$LISTEN" --metrics-listen "$METRICS_LISTEN" 2> >(tee -a "$DATA/logs/gateway.log" >&2) &
pids+=($!)

for _ in $(seq 1 100); do
  curl -sf "http://$LISTEN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<TXT

mcpbus is running.
  MCP endpoint:  http://$LISTEN/mcp      (health: /healthz, readiness: /readyz)
  Metrics:       http://$METRICS_LISTEN/metrics
  NATS:          $NATS_URL               (data in $DATA/nats, logs in $DATA/logs)

Connect with the Python MCP SDK (pip install mcp==2.3.0):
  python3 -c 'import asyncio; from mcp import Client
async def main():
    async with Client("http://$LISTEN/mcp") as c:
        print([t.name for t in (await c.list_tools()).tools])
        print((await c.call_tool("echo", {"text": "hello"})).content)
asyncio.run(main())'

Press Ctrl-C to stop.
TXT

wait -n "${pids[@]}"
