#!/usr/bin/env bash
# make docker-images: the project's three local images, built with no image registry.
#   eob-base:bookworm    Debian bookworm from debootstrap (the machine's Debian mirror), then `docker import`
#   eob-mariadb:bookworm Debian's mariadb-server on that base (docker/mariadb/)
#   eob-app:local        this machine's node binary + the project and its node_modules (docker/app/)
# Each image carries the hash of its inputs in the label eob.inputs; an image whose label matches is kept,
# so a second run takes seconds, and a change of any input rebuilds that image and the ones built on it.
# Needs root (debootstrap) and a Docker engine (DOCKER_HOST, e.g. from docker/dockerd.sh start).
# Builds run under `nice -n 10`: they are heavy and the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/.eob/images
mkdir -p "$work"

say() { printf 'docker-images: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
label_of() { docker image inspect --format '{{ index .Config.Labels "eob.inputs" }}' "$1" 2>/dev/null || true; }
hash_stdin() { sha256sum | cut -c1-16; }

command -v docker >/dev/null || fail "no docker client: install docker.io (Debian) or Docker"
docker version >/dev/null 2>&1 || fail "no Docker engine answers at ${DOCKER_HOST:-the default socket}; start one (docker/dockerd.sh start, then export the DOCKER_HOST it prints)"

# The Debian mirror: EOB_DEBIAN_MIRROR, else the first deb.debian.org-style URI of this machine's apt sources.
mirror=${EOB_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}')
fi
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list 2>/dev/null | awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}')
fi
mirror=${mirror:-http://deb.debian.org/debian}
suite=bookworm

# --- base ---------------------------------------------------------------------------------------------
base_inputs=$( { echo "$mirror $suite minbase v1"; } | hash_stdin)
if [ "$(label_of eob-base:$suite)" = "$base_inputs" ]; then
  say "eob-base:$suite up to date ($base_inputs)"
else
  command -v debootstrap >/dev/null || fail "debootstrap not found: apt-get install debootstrap"
  [ "$(id -u)" -eq 0 ] || fail "debootstrap needs root: run as root (or sudo make docker-images)"
  rootfs=$work/rootfs-$suite
  rm -rf "$rootfs"
  say "eob-base:$suite: debootstrap $suite from $mirror (minbase; a few minutes)"
  start=$(date +%s)
  nice -n 10 debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed (log: $work/debootstrap.log)"; }
  # apt inside the images uses the same mirror, with the security suite beside it.
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" > "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  say "eob-base:$suite: debootstrap took $(( $(date +%s) - start )) s; docker import"
  tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change "LABEL eob.inputs=$base_inputs" --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "eob-base:$suite" >/dev/null
  rm -rf "$rootfs"
fi
base_id=$(docker image inspect --format '{{.Id}}' "eob-base:$suite")

# Legacy builder: the Debian engine has no buildx plugin beside it, and the host network lets apt reach the
# mirror without a bridge.
build() { # tag inputs context dockerfile
  say "$1: building (inputs $2)"
  local start; start=$(date +%s)
  DOCKER_BUILDKIT=0 nice -n 10 docker build --network host --label "eob.inputs=$2" -t "$1" -f "$4" "$3" 2>&1 \
    | sed -u 's/^/  /' >&2
  say "$1: built in $(( $(date +%s) - start )) s"
}

# --- mariadb ------------------------------------------------------------------------------------------
db_inputs=$( { echo "$base_id"; cat docker/mariadb/Dockerfile docker/mariadb/entrypoint.sh; } | hash_stdin)
if [ "$(label_of eob-mariadb:$suite)" = "$db_inputs" ]; then
  say "eob-mariadb:$suite up to date ($db_inputs)"
else
  build "eob-mariadb:$suite" "$db_inputs" docker/mariadb docker/mariadb/Dockerfile
fi

# --- app ----------------------------------------------------------------------------------------------
node_bin=$(command -v node) || fail "no node on PATH: the app image copies this machine's Node.js binary"
node_bin=$(readlink -f "$node_bin")
[ -d node_modules ] || fail "no node_modules: run make install first"
app_files() { find bin src -type f | LC_ALL=C sort; echo tsconfig.json package.json package-lock.json; }
app_inputs=$( {
  echo "$base_id"; sha256sum "$node_bin" | cut -d' ' -f1; cat docker/app/Dockerfile
  app_files | xargs sha256sum; cat node_modules/.package-lock.json
} | hash_stdin)
if [ "$(label_of eob-app:local)" = "$app_inputs" ]; then
  say "eob-app:local up to date ($app_inputs)"
else
  context=$work/app-context
  rm -rf "$context"; mkdir -p "$context/app"
  # Hard links (or copies across file systems): the context costs no space and no time.
  cp -l "$node_bin" "$context/node" 2>/dev/null || cp "$node_bin" "$context/node"
  for f in bin src node_modules tsconfig.json package.json package-lock.json; do
    cp -al "$f" "$context/app/" 2>/dev/null || cp -a "$f" "$context/app/"
  done
  build eob-app:local "$app_inputs" "$context" docker/app/Dockerfile
  rm -rf "$context"
fi

# The images a rebuild replaced (untagged, still labelled): their layers are not used by anything any more.
docker image prune -f --filter label=eob.inputs >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^eob-' >&2
