#!/usr/bin/env bash
# tests/bench/bench_protocols.sh - the protocols side by side (run on
# demand; not part of the test suite), on a three-node release cluster on
# 127.0.204.1-3 (run it in a network namespace of its own):
#   - point-lookup latency (MATCH (p:P {id: $id}) RETURN p.name, an index
#     on :P(id), BENCH_KEYS nodes, BENCH_LOOKUPS sequential lookups on a
#     follower): Bolt through the JavaScript driver, HTTP from the same
#     JavaScript process (keep-alive), and the native protocol through the
#     C client;
#   - write throughput at BENCH_CLIENTS (64) sessions through the
#     JavaScript driver (neo4j:// routing), auto-commit (session.run) and
#     in managed transactions (executeWrite: BEGIN, RUN, COMMIT, each
#     holding the writer), to put next to bench_cluster.sh's HTTP figure
#     at 64 clients;
#   - change-stream delivery lag: one write at a time over HTTP to the
#     leader while GET /changes streams from a follower, from the
#     acknowledgement to the event's arrival (p50, p99).
# Needs node and tests/client/bolt/node_modules (npm install --prefix
# tests/client/bolt). Environment: BENCH_BUILD (default build/release),
# BENCH_SECONDS (10), BENCH_LOOKUPS (2000), BENCH_KEYS (10000),
# BENCH_CLIENTS (64), BENCH_LAG_WRITES (500), LORA_SEED.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/lib.sh"
build=${BENCH_BUILD:-$root/build/release}
LC_LORAD=$build/node/lorad
LOOKUP=$build/tests/bench/bench_cluster_lookup
JS=$root/tests/client/bolt/bench.js
export NODE_PATH=$root/tests/client/bolt/node_modules
SECS=${BENCH_SECONDS:-10}
LOOKUPS=${BENCH_LOOKUPS:-2000}
KEYS=${BENCH_KEYS:-10000}
CLIENTS=${BENCH_CLIENTS:-64}
LAG_WRITES=${BENCH_LAG_WRITES:-500}
export LORA_SEED=${LORA_SEED:-$RANDOM}
LC_PREFIX=127.0.204
LC_N=3
LC_DIR=$(mktemp -d /tmp/lora-bench-proto.XXXXXX)
trap 'lc_kill_all; rm -rf "$LC_DIR"' EXIT
trap 'exit 2' INT TERM
for b in "$LC_LORAD" "$LOOKUP"; do
	[ -x "$b" ] || { echo "missing $b (a release tree: cmake -DCMAKE_BUILD_TYPE=Release)"; exit 2; }
done
[ -d "$NODE_PATH/neo4j-driver" ] || { echo "missing neo4j-driver: npm install --prefix tests/client/bolt"; exit 2; }
lc_log "LORA_SEED=$LORA_SEED"

lc_write_configs "election_ms = 300" "heartbeat_ms = 50" "log_level = warn"
for i in 1 2 3; do lc_start "$i"; done
for i in 1 2 3; do lc_wait_health "$i" 60 || exit 1; done
leader=$(lc_wait_leader 30) || exit 1
follower=$((leader % 3 + 1))
q() { lc_curl -s -m 60 -X POST "http://$(lc_http "$1")/query" -d "$2"; }
q "$leader" '{"query":"CREATE INDEX p_id FOR (p:P) ON (p.id)"}' >/dev/null
bm=$(q "$leader" '{"query":"UNWIND range(0, '"$((KEYS - 1))"') AS i CREATE (:P {id: i, name: \"p\" + toString(i)})"}' |
	lc_json_field bookmark)
lc_digest "$follower" "$bm" >/dev/null
lc_log "$KEYS :P nodes, leader $leader, lookups on follower $follower"

node "$JS" lookup-bolt "$LC_PREFIX" "$follower" 200 "$KEYS" >/dev/null # warm up
for l in bolt http; do
	lc_log "$(node "$JS" "lookup-$l" "$LC_PREFIX" "$follower" "$LOOKUPS" "$KEYS")"
done
lc_log "$("$LOOKUP" "$(lc_client "$follower")" "$LOOKUPS" "$KEYS" 2>/dev/null)"
lc_log "$(node "$JS" writes-bolt "$LC_PREFIX" "$CLIENTS" "$SECS")"
lc_log "$(node "$JS" writes-bolt-tx "$LC_PREFIX" "$CLIENTS" "$SECS")"
lc_log "$(node "$JS" cdc-lag "$LC_PREFIX" "$leader" "$follower" "$LAG_WRITES")"
