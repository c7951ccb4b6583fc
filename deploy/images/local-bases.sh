#!/usr/bin/env bash
# Makes the base images of deploy/images/ on a machine that cannot pull from a registry,
# from this machine's own Debian 12 files, and loads them into the local Docker:
#
#   deploy/images/local-bases.sh PREFIX BINARY...
#
#   PREFIX/runtime      stands in for gcr.io/distroless/cc-debian12:nonroot: the shared
#                       libraries `ldd` lists for BINARY... (glibc, libgcc), CA
#                       certificates, /etc/passwd with nonroot (65532); no shell
#   PREFIX/python       stands in for gcr.io/distroless/python3-debian12:nonroot: the above
#                       plus Debian's python3.11 and its standard library
#   PREFIX/nats-server  stands in for the official `nats` image: Debian's nats-server at
#                       /nats-server (the official image's entrypoint), plus busybox's
#                       wget for the compose health check, as the official alpine image has
#
# PREFIX is an image name prefix with a tag, e.g. `mcpbus-local:run1` gives
# mcpbus-local/runtime:run1 (the tag after the colon). Needs root or the docker group, and
# on Debian the packages nats-server, python3 and busybox-static (installed when missing,
# as root). Nothing is downloaded but those packages.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 PREFIX:TAG BINARY..." >&2
  exit 2
fi
prefix=${1%%:*}
tag=${1#*:}
[ "$tag" != "$1" ] || tag=latest
shift
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}

for pkg in nats-server:/usr/sbin/nats-server busybox-static:/bin/busybox python3.11:/usr/bin/python3.11; do
  if [ ! -x "${pkg#*:}" ]; then
    [ "$(id -u)" = 0 ] || { echo "$0: ${pkg#*:} is missing: apt-get install ${pkg%%:*}" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkg%%:*}" >/dev/null 2>&1 || {
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkg%%:*}" >/dev/null
    }
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Copies every shared library `ldd` lists for the given files into root $1, at its path
# (and the path it resolves to, for symlinked library folders).
copy_libraries() {
  local root=$1 lib
  shift
  # `lib => /path (addr)` and `\t/lib64/ld-linux... (addr)`; not the `file:` headers.
  for lib in $(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# The distroless layout that matters to the binaries: users, CA certificates, /tmp.
skeleton() {
  local root=$1
  mkdir -p "$root"/etc/ssl/certs "$root"/tmp "$root"/home/nonroot "$root"/lib64 "$root"/usr/local/bin
  chmod 1777 "$root"/tmp
  chown 65532:65532 "$root"/home/nonroot
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root"/etc/passwd
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root"/etc/group
  cp /etc/ssl/certs/ca-certificates.crt "$root"/etc/ssl/certs/
}

import() {
  local root=$1 name=$2
  shift 2
  tar -C "$root" -c . | "$DOCKER" import "$@" - "$prefix/$name:$tag" >/dev/null
  echo "$prefix/$name:$tag"
}

# The runtime base: the Rust binaries' libraries, and nothing they do not load.
runtime=$work/runtime
skeleton "$runtime"
copy_libraries "$runtime" "$@"
import "$runtime" runtime -c 'USER 65532:65532'

# The Python base: Debian's interpreter and standard library (what distroless python3 is
# made of), with the libraries of the interpreter and of its extension modules. Tests,
# IDLE, tkinter and the pip bootstrap are left out, as distroless leaves them out.
python=$work/python
skeleton "$python"
mkdir -p "$python"/usr/bin "$python"/usr/lib
cp /usr/bin/python3.11 "$python"/usr/bin/
ln -s python3.11 "$python"/usr/bin/python3
tar -C /usr/lib -c --exclude='python3.11/test' --exclude='python3.11/idlelib' \
  --exclude='python3.11/tkinter' --exclude='python3.11/ensurepip' \
  --exclude='python3.11/lib2to3' --exclude='__pycache__' python3.11 | tar -C "$python"/usr/lib -x
copy_libraries "$python" /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so
# Distroless python3 is built on its cc image: all of glibc, libgcc and libstdc++, which
# compiled wheels (pydantic-core) load.
for lib in $(dpkg -L libc6 libgcc-s1 libstdc++6 | grep -E '^/(usr/)?lib.*\.so[.0-9]*$'); do
  mkdir -p "$python$(dirname "$lib")"
  cp -a "$lib" "$python$lib"
done
import "$python" python -c 'USER 65532:65532' -c 'ENTRYPOINT ["/usr/bin/python3.11"]'

# nats-server as the official image runs it (as root, data in a volume).
nats=$work/nats
skeleton "$nats"
cp /usr/sbin/nats-server "$nats"/nats-server
mkdir -p "$nats"/bin
cp /bin/busybox "$nats"/bin/busybox
ln -s busybox "$nats"/bin/wget
copy_libraries "$nats" /usr/sbin/nats-server
import "$nats" nats-server -c 'ENTRYPOINT ["/nats-server"]' -c 'EXPOSE 4222 6222 8222'
