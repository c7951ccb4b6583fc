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

# Makes sure a Docker daemon answers, for the image tests: installs Debian's docker.io (and
# docker-compose when the CLI has no compose plugin) with apt when running as root, and
# starts /usr/sbin/dockerd when none runs. Sets DOCKER (the CLI: apt's /usr/bin/docker
# first, since another on PATH may lack the builder this daemon needs), COMPOSE (the
# compose command) and DOCKERD_PID (set only when this function started the daemon: the
# caller stops it). On failure returns 1 with the reason in DOCKER_UNAVAILABLE.
ensure_docker() {
  DOCKER_UNAVAILABLE=""
  DOCKERD_PID=""
  local root=0 log
  [ "$(id -u)" = "0" ] && root=1
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
    }
  }
  # A daemon that already answers is used as it is. Otherwise the daemon is what matters: a
  # machine may carry a docker CLI alone (this project's machines have a static one in
  # /usr/local/bin), which cannot run a test, so docker.io is installed for its dockerd.
  local answering=""
  for cli in /usr/bin/docker "$(command -v docker || true)"; do
    if [ -x "$cli" ] && "$cli" info >/dev/null 2>&1; then answering=$cli; break; fi
  done
  if [ -z "$answering" ] && { [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ]; }; then
    if [ "$root" = 1 ] && command -v apt-get >/dev/null 2>&1; then
      echo "no Docker daemon to start; installing docker.io with apt-get" >&2
      apt_install docker.io || { DOCKER_UNAVAILABLE="apt-get install docker.io failed"; return 1; }
    else
      DOCKER_UNAVAILABLE="no Docker daemon, and not root to install docker.io"
      return 1
    fi
  fi
  DOCKER=${answering:-/usr/bin/docker}
  [ -x "$DOCKER" ] || DOCKER=$(command -v docker)
  if ! "$DOCKER" info >/dev/null 2>&1; then
    if [ "$root" != 1 ] || [ ! -x /usr/sbin/dockerd ]; then
      DOCKER_UNAVAILABLE="no Docker daemon answers, and this user cannot start /usr/sbin/dockerd"
      return 1
    fi
    # No default bridge network (tests use the host's) and no iptables rules left behind.
    log=$(mktemp)
    /usr/sbin/dockerd --exec-opt native.cgroupdriver=cgroupfs --bridge none \
      --iptables=false --ip6tables=false >"$log" 2>&1 &
    DOCKERD_PID=$!
    local i
    for ((i = 0; i < 60; i++)); do
      "$DOCKER" info >/dev/null 2>&1 && break
      kill -0 "$DOCKERD_PID" 2>/dev/null || break
      sleep 0.5
    done
    if ! "$DOCKER" info >/dev/null 2>&1; then
      DOCKER_UNAVAILABLE="dockerd did not start: $(tail -3 "$log" | tr '\n' ' ')"
      kill "$DOCKERD_PID" 2>/dev/null || true
      DOCKERD_PID=""
      return 1
    fi
    echo "started dockerd (pid $DOCKERD_PID, log $log)" >&2
  fi
  if "$DOCKER" compose version >/dev/null 2>&1; then
    COMPOSE="$DOCKER compose"
  else
    if ! command -v docker-compose >/dev/null 2>&1 && [ "$root" = 1 ]; then
      apt_install docker-compose || true
    fi
    COMPOSE=$(command -v docker-compose || true)
    [ -n "$COMPOSE" ] || { DOCKER_UNAVAILABLE="no docker compose plugin and no docker-compose"; return 1; }
  fi
}
