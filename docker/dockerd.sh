#!/usr/bin/env bash
# A private Docker engine for the project: its own socket, data root and exec root, so it neither needs nor
# touches a system dockerd. Host network only (no bridge, no iptables): containers run with --network host
# and every address stays on 127.0.0.1.
#   docker/dockerd.sh start   # prints DOCKER_HOST=unix://...; waits until the engine answers
#   docker/dockerd.sh stop    # stops the engine this script started (by its pid file), and its containers
#   docker/dockerd.sh env     # prints the DOCKER_HOST line only
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${EOB_DOCKERD_DIR:-$PWD/.eob/dockerd}
# The exec root holds containerd's socket, whose path must stay under the 108 bytes of a unix socket name:
# a short path under /tmp whatever the length of the project's path.
exec_root=/tmp/eob-dockerd-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
sock=$dir/docker.sock
pidfile=$dir/dockerd.pid
log=$dir/dockerd.log

say() { printf 'dockerd.sh: %s\n' "$*" >&2; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  start)
    if ! command -v dockerd >/dev/null 2>&1; then
      say "dockerd not found: install Debian's docker.io (apt-get install docker.io), or run make test-docker via .ci/run with EOB_DOCKER=1"
      exit 1
    fi
    mkdir -p "$dir/data" "$exec_root"
    if running; then
      say "already running (pid $(cat "$pidfile"))"
    else
      say "starting a private dockerd: socket $sock, data root $dir/data, log $log"
      # setsid: the engine outlives this script but not `docker/dockerd.sh stop`; its children (containerd,
      # shims) are found through the pid file, never by name.
      # Own containerd namespaces: where a system containerd runs, dockerd uses it instead of starting its
      # own, and the system engine's containers (namespace moby) must stay out of this engine's sight.
      setsid dockerd --iptables=false --ip6tables=false --bridge=none \
        --containerd-namespace eob --containerd-plugins-namespace eob-plugins \
        --data-root "$dir/data" --exec-root "$exec_root" -H "unix://$sock" --pidfile "$pidfile" \
        >"$log" 2>&1 </dev/null &
      for _ in $(seq 1 150); do
        if docker -H "unix://$sock" version >/dev/null 2>&1; then break; fi
        sleep 0.2
      done
      if ! docker -H "unix://$sock" version >/dev/null 2>&1; then
        say "dockerd did not answer within 30 s; its log:"; tail -n 30 "$log" >&2; exit 1
      fi
    fi
    echo "DOCKER_HOST=unix://$sock"
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile")
      ids=$(docker -H "unix://$sock" ps -aq 2>/dev/null || true)
      if [ -n "$ids" ]; then docker -H "unix://$sock" rm -f $ids >/dev/null 2>&1 || true; fi
      say "stopping dockerd (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then say "dockerd $pid still running after 30 s: SIGKILL"; kill -KILL "$pid"; fi
      # The exec root is runtime state only: sockets and libnetwork's bind mount of the host network namespace
      # (netns/default), which outlives the engine; the data root and its images stay.
      findmnt -rn -o TARGET | grep "^$exec_root/" | sort -r | while read -r target; do umount "$target" || true; done
      rm -rf --one-file-system "$exec_root" || say "could not remove $exec_root"
    else
      say "not running"
    fi
    ;;
  env)
    echo "DOCKER_HOST=unix://$sock"
    ;;
  *)
    say "usage: docker/dockerd.sh start|stop|env"; exit 2 ;;
esac
