#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, and the integration tests against a
# real nats-server, real gateway and worker processes, and the real Python MCP SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_nats_server

# The Python MCP SDK for the client-compatibility tests, in a project-local venv.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import mcp' 2>/dev/null; then
  echo "creating .venv with mcp==2.3.0" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check mcp==2.3.0
fi

cargo fmt --all -- --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
# The integration tests start the binaries, so build them first.
cargo build --quiet --workspace --bins
cargo test --workspace
