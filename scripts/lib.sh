# Shared helpers for the scripts in this folder. Source it; do not run it.

# Makes sure nats-server is on PATH: installs it with apt when running as root, otherwise
# says how to. Honours NATS_SERVER_BIN.
ensure_nats_server() {
  if [ -n "${NATS_SERVER_BIN:-}" ]; then
    return 0
  fi
  if command -v nats-server >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "nats-server not found; installing it with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null 2>&1 || {
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null
    }
    return 0
  fi
  echo "nats-server is not installed. Install it with: sudo apt-get install -y nats-server" >&2
  echo "(or point NATS_SERVER_BIN at a nats-server binary)" >&2
  return 1
}

# Whether something listens on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits up to $2 seconds for 127.0.0.1:$1 to accept connections.
wait_for_port() {
  local port=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    port_in_use "$port" && return 0
    sleep 0.1
  done
  return 1
}
