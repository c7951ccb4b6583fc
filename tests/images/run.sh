#!/usr/bin/env bash
# The image tests (issue 17), run by scripts/test.sh after the debug build:
#
#   tests/images/run.sh [BIN_DIR]     (default: ${CARGO_TARGET_DIR:-target}/debug)
#
# Makes sure a Docker daemon runs (lib.sh: ensure_docker), makes the base images from this
# machine's files (deploy/images/local-bases.sh: nothing can be pulled here), builds the
# four images with the Dockerfiles' prebuilt mode from BIN_DIR's binaries (stripped) and the
# Python SDK, runs tests/tests/images.rs against them, and removes every container, volume
# and image it made, and the daemon if it started it. A release build would not fit CI's
# time; the images differ from release ones only by the binaries' build profile.
#
# When no daemon can run (not root, no docker) it prints SKIPPED and why, and exits 0:
# visible, never a silent pass. MCPBUS_REQUIRE_IMAGE_TESTS=1 makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
started=$(date +%s)
bin_dir=${1:-${CARGO_TARGET_DIR:-target}/debug}

if ! ensure_docker; then
  echo "SKIPPED: the image tests (tests/tests/images.rs) did not run: $DOCKER_UNAVAILABLE" >&2
  [ "${MCPBUS_REQUIRE_IMAGE_TESTS:-0}" = 1 ] && exit 1
  exit 0
fi

run="run$$-$(date +%s)"
ctx=$(mktemp -d)
images=()
cleanup() {
  local ids
  ids=$("$DOCKER" ps -aq --filter "label=mcpbus-test-run=$run" 2>/dev/null || true)
  ids+=" $("$DOCKER" ps -aq --filter "label=com.docker.compose.project=mcpbus-test-$run" 2>/dev/null || true)"
  [ -z "${ids// /}" ] || "$DOCKER" rm -f $ids >/dev/null 2>&1 || true
  ids=$("$DOCKER" volume ls -q --filter "label=com.docker.compose.project=mcpbus-test-$run" 2>/dev/null || true)
  [ -z "$ids" ] || "$DOCKER" volume rm -f $ids >/dev/null 2>&1 || true
  [ ${#images[@]} -eq 0 ] || "$DOCKER" rmi -f "${images[@]}" >/dev/null 2>&1 || true
  rm -rf "$ctx"
  if [ -n "$DOCKERD_PID" ]; then
    # Its build cache would outlive it in /var/lib/docker.
    "$DOCKER" builder prune -af >/dev/null 2>&1 || true
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  echo "image tests: $(($(date +%s) - started)) s, cleaned up" >&2
}
trap cleanup EXIT

# The build contexts: stripped binaries (the debug symbols are most of a debug binary's
# size), and the Python SDK installed for the image's Python 3.11.
mkdir -p "$ctx/bin" "$ctx/python"
for b in mcpbus-gateway mcpbus-worker mcpbusctl; do
  [ -x "$bin_dir/$b" ] || { echo "$bin_dir/$b is missing: build the binaries first" >&2; exit 1; }
  strip -o "$ctx/bin/$b" "$bin_dir/$b"
done
.venv/bin/pip install --quiet --disable-pip-version-check --target "$ctx/python/site-packages" ./worker/python
cp worker/python/examples/example_worker.py "$ctx/python/"

for base in runtime python nats-server; do images+=("mcpbus-test/$base:$run"); done
DOCKER=$DOCKER deploy/images/local-bases.sh "mcpbus-test:$run" "$ctx"/bin/* >/dev/null
build() {
  local name=$1
  shift
  images+=("mcpbus-test/$name:$run")
  DOCKER_BUILDKIT=1 "$DOCKER" build -q -t "mcpbus-test/$name:$run" "$@" >/dev/null
}
for target in gateway worker ctl; do
  build "$target" -f deploy/images/Dockerfile --target "$target" --build-arg BINARIES=prebuilt \
    --build-arg "RUNTIME_IMAGE=mcpbus-test/runtime:$run" "$ctx/bin"
done
build python-worker -f deploy/images/python-worker.Dockerfile --build-arg PACKAGES=prebuilt \
  --build-arg "PYTHON_RUNTIME_IMAGE=mcpbus-test/python:$run" "$ctx/python"
echo "image tests: images built in $(($(date +%s) - started)) s" >&2
"$DOCKER" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep ":$run " >&2

MCPBUS_DOCKER=$DOCKER MCPBUS_COMPOSE=$COMPOSE MCPBUS_IMAGE_RUN=$run \
MCPBUS_IMAGE_GATEWAY=mcpbus-test/gateway:$run MCPBUS_IMAGE_WORKER=mcpbus-test/worker:$run \
MCPBUS_IMAGE_CTL=mcpbus-test/ctl:$run MCPBUS_IMAGE_PYTHON_WORKER=mcpbus-test/python-worker:$run \
MCPBUS_IMAGE_NATS=mcpbus-test/nats-server:$run \
  cargo test --quiet --workspace --test images -- --ignored --test-threads 1
