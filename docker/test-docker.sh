#!/usr/bin/env bash
# make test-docker: the Docker path against a real engine. Starts a private dockerd (its own socket, data root
# and exec root under .eob/dockerd-test; the data root is kept, so the next run's images are cached), builds
# the local images, runs the real-engine tests (test/docker/, not in npm test) and the quick docker chaos, and
# stops the engine and its containers on exit, whatever happened. Host network: the containers listen on
# 127.0.0.1 on the ports below, never the machine's 3306 / 5432 / 8080.
# Needs root, dockerd, debootstrap and docker-compose (Debian: docker.io debootstrap docker-compose; .ci/run
# installs them when EOB_DOCKER=1).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test-docker: %s\n' "$*" >&2; }

missing=()
for tool in dockerd docker debootstrap docker-compose; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "missing: ${missing[*]}; on Debian: apt-get install docker.io debootstrap docker-compose (or run EOB_DOCKER=1 .ci/run)"
  exit 1
fi
[ "$(id -u)" -eq 0 ] || { say "needs root (dockerd and debootstrap); run it as root or with sudo"; exit 1; }

export EOB_DOCKERD_DIR=${EOB_DOCKERD_DIR:-$PWD/.eob/dockerd-test}
# Ports of this run, apart from make chaos BACKEND=docker's defaults (13306 / 18080), so a developer's run
# on another engine does not collide with this one.
export EOB_TEST_DB_PORT=${EOB_TEST_DB_PORT:-13406}
export EOB_TEST_SERVER_PORT=${EOB_TEST_SERVER_PORT:-18180}

started=$(date +%s)
stop_engine() {
  local status=$?
  docker/dockerd.sh stop || true
  say "exit status $status after $(( $(date +%s) - started )) s"
}
trap stop_engine EXIT
trap 'exit 130' INT TERM

engine=$(docker/dockerd.sh start) # a plain assignment, so set -e stops here when the engine does not start
export "$engine"
say "engine: $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}') at $DOCKER_HOST"

step=$(date +%s)
docker/build-images.sh
say "images ready in $(( $(date +%s) - step )) s"

step=$(date +%s)
node --import tsx --test --test-concurrency=1 --test-force-exit test/docker/*.test.ts
say "real-engine tests passed in $(( $(date +%s) - step )) s"

step=$(date +%s)
CI=1 node bin/eob.js chaos --backend docker --profile quick \
  --docker-db-port "$EOB_TEST_DB_PORT" --docker-server-port "$EOB_TEST_SERVER_PORT" --docker-project eob-test-chaos
say "quick docker chaos passed in $(( $(date +%s) - step )) s"
