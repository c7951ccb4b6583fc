#!/usr/bin/env bash
# Instructions per call in the gateway and the demo worker, under valgrind's callgrind
# (docs/PERFORMANCE.md, "Tracing"): a nats-server, the release worker and gateway of TARGETDIR
# each under callgrind, then CALLS rounds of one session-lane and one stateless-lane `echo`
# call, one at a time. Run it with two CALLS values and divide the difference of the totals by
# twice the difference of CALLS: start-up cancels out. MODE `on` exports every span to a
# rotel collector (.venv-otel, from scripts/test.sh).
#   tests/perf/callgrind_calls.sh target /tmp/cg-off-20 20 off; ... target /tmp/cg-off-220 220 off
# usage: callgrind_calls.sh TARGETDIR OUTPREFIX CALLS [off|on]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$1; OUT=$2; N=$3; MODE=${4:-off}
D=$(mktemp -d)
P=$((20000 + RANDOM % 20000))
nats-server -a 127.0.0.1 -p $P -js -sd $D/js > $D/nats.log 2>&1 & NATS=$!
sleep 1
ENV=()
if [ "$MODE" = on ]; then
  $ROOT/.venv-otel/lib/python3.11/site-packages/rotel/rotel-agent start --otlp-http-endpoint 127.0.0.1:$((P+1)) --otlp-grpc-endpoint 127.0.0.1:$((P+4)) --exporter blackhole --pid-file $D/r.pid --log-file $D/r.log > $D/rotel.log 2>&1 & ROTEL=$!
  sleep 1
  ENV=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$((P+1)) OTEL_TRACES_SAMPLER=always_on); fi
env "${ENV[@]}" MCPBUS_LOG_FORMAT=text valgrind --tool=callgrind --callgrind-out-file=$OUT.worker.cg $T/release/mcpbus-worker --nats nats://127.0.0.1:$P demo > $D/w.log 2>&1 & W=$!
env "${ENV[@]}" MCPBUS_LOG_FORMAT=text valgrind --tool=callgrind --callgrind-out-file=$OUT.gateway.cg $T/release/mcpbus-gateway --nats nats://127.0.0.1:$P --listen 127.0.0.1:$((P+2)) --metrics-listen 127.0.0.1:$((P+3)) --json-tool-calls > $D/g.log 2>&1 & G=$!
for i in $(seq 1 300); do curl -sf http://127.0.0.1:$((P+2))/readyz >/dev/null && break; sleep 0.5; done
$ROOT/.venv/bin/python - $((P+2)) $N <<'PY'
import sys, json, time, http.client
port, n = int(sys.argv[1]), int(sys.argv[2])
url = "/mcp"
h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
class R:
    def __init__(self, resp):
        self.text = resp.read().decode()
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
class C:
    def __init__(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    def post(self, url, headers, json):
        import json as j
        self.conn.request("POST", url, body=j.dumps(json), headers=headers)
        return R(self.conn.getresponse())
c = C()
# wait for the echo tool
for _ in range(600):
    r = c.post(url, headers={**h, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}, json={"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"cg","version":"0"}}}})
    if "echo" in r.text: break
    time.sleep(0.5)
r = c.post(url, headers=h, json={"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"cg","version":"0"}}})
sid = r.headers["mcp-session-id"]
hs = {**h, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
c.post(url, headers=hs, json={"jsonrpc":"2.0","method":"notifications/initialized"})
hl = {**h, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo"}
meta = {"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"cg","version":"0"}}
ok = 0
for i in range(n):
    r = c.post(url, headers=hs, json={"jsonrpc":"2.0","id":i+1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}})
    ok += '"hello"' in r.text
    r = c.post(url, headers=hl, json={"jsonrpc":"2.0","id":i+1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},"_meta":meta}})
    ok += '"hello"' in r.text
print("ok", ok, "of", 2*n)
PY
kill -TERM $G $W; wait $G $W 2>/dev/null; kill $NATS; wait $NATS 2>/dev/null
[ -n "${ROTEL:-}" ] && kill $ROTEL
rm -rf $D
for f in $OUT.gateway.cg $OUT.worker.cg; do echo "$f $(grep -m1 '^summary:\|^totals:' $f)"; done
