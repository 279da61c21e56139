#!/usr/bin/env bash
# tests/bench/bench_cdc_old.sh - what cdc_old_values costs the write path
# (run on demand; not part of the test suite).
#
# A three-node LoraDB cluster on 127.0.7.1-3 (fresh data each run) holds
# 1,000 :U nodes (an index on i, four properties each); bench_http sends
# single-statement updates over HTTP, MATCH (u:U {i: $n % 1000}) SET u.v =
# $k, from BENCH_CLIENTS closed-loop clients spread over the nodes for
# BENCH_SECONDS. Runs alternate cdc_old_values off and on, BENCH_ROUNDS
# times each, so that the machine's other load falls on both alike.
#
# Environment: BENCH_BUILD (release build dir, default build/release),
# LORAD, BENCH_HTTP, BENCH_SECONDS (default 10), BENCH_CLIENTS (default
# 16), BENCH_ROUNDS (default 3), BENCH_WARM (default 0: bench_http's
# window starts before the connects, as when this script's figures in
# docs/benchmarks.md were taken; 1: after every client's first write).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/lib.sh"
build=${BENCH_BUILD:-$root/build/release}
LC_LORAD=${LORAD:-$build/node/lorad}
HTTPB=${BENCH_HTTP:-$build/tests/bench/bench_http}
SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-16}
ROUNDS=${BENCH_ROUNDS:-3}
work=$(mktemp -d /tmp/lora-bench-old.XXXXXX)
results=()

cleanup() {
	LC_PREFIX=127.0.7 LC_DIR=$work/lora lc_kill_all
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
for b in "$HTTPB" "$LC_LORAD"; do
	[ -x "$b" ] || { echo "missing $b (build a release tree)"; exit 2; }
done

one_run() { # one_run ROUND true|false
	LC_PREFIX=127.0.7 LC_DIR=$work/lora LC_N=3
	rm -rf "$LC_DIR"
	lc_write_configs "election_ms = 300" "heartbeat_ms = 50" "log_level = warn" \
		"cdc_old_values = $2"
	BENCH_AUTHORIZATION="Basic $(printf '%s' "$LC_AUTH" | base64 -w0)"
	export BENCH_AUTHORIZATION
	local i leader line
	for i in 1 2 3; do lc_start "$i"; done
	for i in 1 2 3; do lc_wait_health "$i" 60 || return 1; done
	leader=$(lc_wait_leader 30) || return 1
	lc_post "$leader" /query '{"query":"CREATE INDEX u_i FOR (u:U) ON (u.i)"}' >/dev/null
	lc_post "$leader" /query '{"query":"UNWIND range(0, 999) AS i CREATE (:U {i: i, v: \"seed\", name: \"user \" + toString(i), score: i * 1.5})"}' >/dev/null
	line=$("$HTTPB" --mode lora --endpoints 127.0.7.1:4747,127.0.7.2:4747,127.0.7.3:4747 \
		--clients "$CLIENTS" --duration-ms $((SECS * 1000)) --prefix "r$1" --warm "${BENCH_WARM:-0}" \
		--query 'MATCH (u:U {i: $n % 1000}) SET u.v = $k')
	lc_log "round $1 cdc_old_values=$2: $line"
	results+=("old_values=$2 $line")
	lc_kill_all
}

lc_log "cdc_old_values cost: updates, $CLIENTS clients, $SECS s per run, $ROUNDS rounds; $(nproc) cores"
for r in $(seq 1 "$ROUNDS"); do
	one_run "$r" false || lc_log "run failed"
	one_run "$r" true || lc_log "run failed"
done
echo
echo "== results =="
printf '%s\n' "${results[@]}"
