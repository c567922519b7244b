#!/usr/bin/env bash
# `make demo`: the README's walk-through, end to end, on free ports and a throw-away data directory: a private
# MariaDB, the HTTP server and a worker; a few requests and the counter; then a burst of requests during which
# the worker is SIGKILLed and started again, and the counter is still exact; then everything is stopped and
# removed, and what to try next is printed. Exits non-zero if the count is not exact or a step times out.
set -euo pipefail
cd "$(dirname "$0")/.."

EOB="node bin/eob.js"
COUNTER=3f6c4d1e-8b7a-4c2d-9e5f-0a1b2c3d4e5f
BURST=400
work=$(mktemp -d "${TMPDIR:-/tmp}/eob-demo-XXXXXX")
pids=()

# Bold headings on a terminal, plain text in a log.
if [ -t 1 ]; then say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }; else say() { printf '\n== %s\n' "$*"; }; fi
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
# Polls a command until it succeeds, or gives up after $1 seconds naming what it waited for ($2).
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "demo: $what did not happen within ${limit} s (logs in $work)" >&2; return 1; fi
    sleep 0.2
  done
}
value() { curl -s "http://127.0.0.1:$HTTP_PORT/count/$COUNTER" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).value))'; }
value_is() { [ "$(value)" = "$1" ]; }
answers_at_least() { [ "$(wc -l < "$work/codes.txt")" -ge "$1" ]; }

cleanup() {
  # Workers and server first, then the database (SIGTERM: a clean shutdown), then the throw-away directory.
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
  if [ "${KEEP_DEMO_LOGS:-}" = "" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

DB_PORT=$(free_port)
HTTP_PORT=$(free_port)

say "1. a private MariaDB on 127.0.0.1:$DB_PORT (data in $work/db, removed at the end)"
$EOB db start --port "$DB_PORT" --datadir "$work/db" > "$work/db.log" 2>&1 &
pids+=($!)
wait_for 120 "the database start" grep -q '^MYSQL_URL=' "$work/db.log"
MYSQL_URL=$(sed -n 's/^MYSQL_URL=//p' "$work/db.log")
export MYSQL_URL
echo "ready: MYSQL_URL=$(sed -E 's#(//[^:/]+):[^@]*@#\1:<password>@#' <<< "$MYSQL_URL")"

say "2. the HTTP server on 127.0.0.1:$HTTP_PORT and one worker"
$EOB server --port "$HTTP_PORT" > "$work/server.log" 2>&1 &
pids+=($!)
wait_for 60 "the server's /healthz answering 200" curl -sf "http://127.0.0.1:$HTTP_PORT/healthz"
$EOB worker > "$work/worker1.log" 2>&1 &
worker=$!
pids+=($worker)
echo "server answers /healthz; worker pid $worker"

say "3. three requests, then the counter"
for i in 1 2 3; do curl -s -o /dev/null -w "POST /count/$COUNTER -> %{http_code}\n" -X POST "http://127.0.0.1:$HTTP_PORT/count/$COUNTER"; done
wait_for 30 "the counter reaching 3" value_is 3
echo "GET /count/$COUNTER -> $(curl -s "http://127.0.0.1:$HTTP_PORT/count/$COUNTER")"

say "4. $BURST more requests (8 at a time); the worker is SIGKILLed in the middle and started again"
seq "$BURST" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$HTTP_PORT/count/$COUNTER" > "$work/codes.txt" &
burst=$!
wait_for 60 "100 answers of the burst" answers_at_least 100
{ kill -KILL "$worker"; wait "$worker"; } 2>/dev/null || true
echo "SIGKILL worker $worker after $(wc -l < "$work/codes.txt") answers (a batch in hand, if any, was never acked: it is redone)"
$EOB worker > "$work/worker2.log" 2>&1 &
worker=$!
pids+=($worker)
echo "started worker $worker: it resumes from the last committed offset"
wait "$burst"
ok=$(grep -c '^2' "$work/codes.txt" || true)
echo "burst answered: $ok of $BURST with 2xx ($(sort "$work/codes.txt" | uniq -c | tr '\n' ' '))"
expected=$(( 3 + ok ))
wait_for 60 "the counter reaching $expected" value_is "$expected" || { echo "demo: NOT exact: counter $(value), expected $expected" >&2; exit 1; }
echo "GET /count/$COUNTER -> $(curl -s "http://127.0.0.1:$HTTP_PORT/count/$COUNTER")"
echo "exact: the counter is $expected = 3 + $ok acknowledged requests, nothing lost or counted twice across the kill"

say "5. stopping the worker, the server and the database"
cleanup
trap - EXIT
echo "stopped; the demo's data directory is removed"

cat <<'NEXT'

What to try next:
  make bench PROFILE=quick     how fast: drain and end-to-end msgs/s against the ceilings (~1-2 min);
                               open results/bench/latest/index.html
  make chaos PROFILE=quick     the fault matrix and the checker: exactly-once cases valid, controls caught (~3 min);
                               open results/chaos/latest/index.html
  node bin/eob.js worker --help    the worker's flags (batch size, isolation, the ack-mode controls)
  README.md "A walk-through" does the same by hand, one command at a time; docs/ has a page per subject
NEXT
