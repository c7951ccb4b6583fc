#!/usr/bin/env bash
# Issue 18: every P benchmark, before and after, side by side. BEFORE and AFTER are the
# release directories of two builds (cargo build --release --workspace --bins, each in its own
# CARGO_TARGET_DIR); AFTER's mcpbus-bench drives both, choosing the build by MCPBUS_BIN_DIR.
set -u
B=${BEFORE:?release dir of the build before} A=${AFTER:?release dir of the build after}
BENCH=$A/mcpbus-bench
out=${OUT:-/tmp/mcpbus-side-by-side}; mkdir -p $out
run() { local name=$1; shift; echo "== $name $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; "$@"; }
cd "$(dirname "$0")/../.."
for i in 1 2; do
  run "replay before $i" env MCPBUS_BIN_DIR=$B $BENCH replay --events 1000 --rounds 10 > $out/replay-before-$i.txt 2>&1
  run "replay after $i"  env MCPBUS_BIN_DIR=$A $BENCH replay --events 1000 --rounds 10 > $out/replay-after-$i.txt 2>&1
done
run "presence before" env MCPBUS_BIN_DIR=$B $BENCH presence --rounds 3 > $out/presence-before.txt 2>&1
run "presence after"  env MCPBUS_BIN_DIR=$A $BENCH presence --rounds 3 > $out/presence-after.txt 2>&1
for i in 1 2; do
  run "direct before $i" env MCPBUS_BIN_DIR=$B $BENCH direct --secs 3 --rounds 1 > $out/direct-before-$i.txt 2>&1
  run "direct after $i"  env MCPBUS_BIN_DIR=$A $BENCH direct --secs 3 --rounds 1 > $out/direct-after-$i.txt 2>&1
done
run "fanout before" env MCPBUS_BIN_DIR=$B $BENCH fanout --streams 1000,10000 --rounds 2 > $out/fanout-before.txt 2>&1
run "fanout after"  env MCPBUS_BIN_DIR=$A $BENCH fanout --streams 1000,10000 --rounds 2 > $out/fanout-after.txt 2>&1
run "fanout after h2" env MCPBUS_BIN_DIR=$A $BENCH fanout --streams 1000,10000 --rounds 2 --http2 250 > $out/fanout-after-h2.txt 2>&1
echo "== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
