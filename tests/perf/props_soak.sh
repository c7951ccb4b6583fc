#!/usr/bin/env bash
# Generated hostile input for longer (issue 15, docs/PERFORMANCE.md): runs every property test
# of bus-schema and the gateway (the `props` modules beside each parser) again and again with
# PROPTEST_CASES cases each, until MINUTES have passed, then prints how many cases ran. The
# count is honest: proptest runs exactly PROPTEST_CASES passing cases per test, so a round
# contributes (property tests that passed) x CASES, and the totals are summed over rounds.
# A failing round stops the soak and prints proptest's minimal failing input.
#   CARGO_TARGET_DIR=... tests/perf/props_soak.sh 30 20000
# usage: props_soak.sh MINUTES [CASES]   (CASES: cases per property test per round, 10000)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MINUTES=${1:?usage: props_soak.sh MINUTES [CASES]}
CASES=${2:-10000}
PACKAGES=(-p mcpbus-bus-schema -p mcpbus-gateway)
cd "$ROOT"
# Built once, outside the clock.
cargo test "${PACKAGES[@]}" --lib --no-run -q || exit 1
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
START=$(date +%s)
END=$((START + MINUTES * 60))
ROUNDS=0 TESTS=0 TOTAL=0
while [ "$(date +%s)" -lt "$END" ]; do
  if ! PROPTEST_CASES=$CASES cargo test "${PACKAGES[@]}" --lib -q props:: > "$LOG" 2>&1; then
    cat "$LOG"
    echo "props_soak: a property failed in round $((ROUNDS + 1)); see above" >&2
    exit 1
  fi
  # One `test result` line per test binary; only the `props::` tests ran.
  PASSED=$(grep -o '[0-9]* passed' "$LOG" | awk '{s += $1} END {print s + 0}')
  ROUNDS=$((ROUNDS + 1))
  TESTS=$PASSED
  TOTAL=$((TOTAL + PASSED * CASES))
done
ELAPSED=$(( $(date +%s) - START ))
echo "props_soak: $ROUNDS rounds of $TESTS property tests x $CASES cases = $TOTAL cases in ${ELAPSED} s"
