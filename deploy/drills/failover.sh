#!/usr/bin/env bash
# deploy/drills/failover.sh - leader failover drill.
#
# Starts a three-node cluster of its own, writes load through the C client
# library (lora-load records every acknowledged write), kills the leader with
# SIGKILL, measures the time without a leader and the time to the first
# acknowledged write after the kill, restarts the old leader, waits until all
# three nodes have applied the same index, then checks that every
# acknowledged write is present exactly once on every node and that the
# nodes' state digests match. Prints a verdict line; exits 1 when anything
# acknowledged is lost (or the cluster misbehaves), 2 on a setup failure.
#
# Environment (all optional):
#   LORAD, LORA_LOAD   binaries (default build/release/{node/lorad,client/lora-load})
#   DRILL_PREFIX       loopback prefix of the nodes (default 127.0.31 -> .1-.3)
#   DRILL_DIR          work directory (default: a new temp dir, removed at exit)
#   DRILL_CLIENTS      concurrent writers (default 4)
#   DRILL_LOAD_MS      length of the write load (default 12000)
#   DRILL_KILL_AFTER_MS when to kill the leader (default 4000)
#   DRILL_KEEP=1       keep the work directory (logs) afterwards
#   DRILL_TLS=1        TLS on every port (a development CA in the work
#                      directory, deploy/gen-certs.sh; lora-load gets LORA_CA)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/deploy/lib.sh"

LC_LORAD=${LORAD:-$root/build/release/node/lorad}
LOAD=${LORA_LOAD:-$root/build/release/client/lora-load}
LC_PREFIX=${DRILL_PREFIX:-127.0.31}
LC_N=3
CLIENTS=${DRILL_CLIENTS:-4}
LOAD_MS=${DRILL_LOAD_MS:-12000}
KILL_AFTER_MS=${DRILL_KILL_AFTER_MS:-4000}
own_dir=0
if [ -z "${DRILL_DIR:-}" ]; then
	DRILL_DIR=$(mktemp -d /tmp/lora-failover.XXXXXX)
	own_dir=1
fi
LC_DIR=$DRILL_DIR
load_pid=""

cleanup() {
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
	lc_kill_all
	if [ $own_dir = 1 ] && [ "${DRILL_KEEP:-0}" != 1 ]; then
		rm -rf "$DRILL_DIR"
	fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

fail() { lc_fail failover "$@"; }

lc_need_binaries failover "$LC_LORAD" "$LOAD"

lc_log "failover drill: nodes $LC_PREFIX.1-3, work dir $DRILL_DIR"
if [ "${DRILL_TLS:-0}" = 1 ]; then
	lc_tls_init "$DRILL_DIR/tls" || { lc_log "cannot make certificates"; exit 2; }
	lc_log "TLS on every port (CA $LC_CACERT)"
fi
lc_write_configs "election_ms = 300" "heartbeat_ms = 50" "log_level = info"
for i in 1 2 3; do lc_start "$i"; done
for i in 1 2 3; do lc_wait_health "$i" 60 || fail "node $i did not start"; done
leader=$(lc_wait_leader 30) || fail "no leader elected in 30 s"
lc_log "cluster up, leader is node $leader"

acked="$DRILL_DIR/acked.txt"
: >"$acked"
"$LOAD" write -a "$(lc_clients)" --clients "$CLIENTS" --duration-ms "$LOAD_MS" \
	--acked "$acked" --label Drill --prefix f >"$DRILL_DIR/load.out" 2>&1 &
load_pid=$!
lc_log "writing with $CLIENTS clients for $LOAD_MS ms (lora-load pid $load_pid)"

sleep "$(awk "BEGIN {print $KILL_AFTER_MS / 1000}")"
leader=$(lc_leader)
[ -n "$leader" ] || fail "no leader before the kill"
before=$(wc -l <"$acked")
pid=$(lc_pid "$leader")
kill -KILL "$pid"
t_kill=$(lc_now_ms) # right after the signal: writes sent later need a new leader
lc_kill9 "$leader"  # reap it, forget its pid file
lc_log "killed leader node $leader with SIGKILL ($before writes acknowledged so far)"

others=""
for i in 1 2 3; do [ "$i" != "$leader" ] && others="$others${others:+,}$(lc_client "$i")"; done
# Polled from one process over the native protocol every 10 ms.
w=$("$LOAD" wait-leader -a "$others" --not "$leader" --since-ms "$t_kill" --timeout-ms 30000)
[ $? = 0 ] || fail "no new leader within 30 s of the kill"
new_leader=$(echo "$w" | sed -n 's/^leader=\([0-9]*\) .*/\1/p')
no_leader_ms=$(echo "$w" | sed -n 's/.* ms=\([0-9]*\)$/\1/p')
lc_log "node $new_leader is leader after $no_leader_ms ms without one"

wait "$load_pid"
load_rc=$?
load_pid=""
cat "$DRILL_DIR/load.out"
[ $load_rc -le 1 ] || fail "lora-load failed (exit $load_rc)"
first_write_ms=$(lc_first_ack_after "$acked" 2 3 "$t_kill")
[ "$first_write_ms" != none ] || fail "no write was acknowledged after the kill"
total=$(wc -l <"$acked")
lc_log "first acknowledged write $first_write_ms ms after the kill; $total acknowledged in all"

lc_start "$leader"
lc_wait_health "$leader" 60 || fail "old leader $leader did not restart"
lc_log "restarted node $leader"
applied=$(lc_wait_converged 60) || fail "nodes did not converge on one applied index"
lc_log "all nodes applied index $applied"
rejoined=$(lc_get "$(lc_http "$leader")/cluster/status" | grep -o '"role":[^,}]*' | head -n 3 | tr '\n' ' ')
lc_log "node $leader rejoined, roles seen by it: $rejoined"

lost=0
for i in 1 2 3; do
	out=$("$LOAD" verify -a "$(lc_client "$i")" --acked "$acked" --label Drill)
	rc=$?
	lc_log "verify node $i: $out"
	[ $rc = 0 ] || lost=1
done
[ $lost = 0 ] || fail "acknowledged writes missing or duplicated (see above)"

digests=""
for i in 1 2 3; do
	d=$(lc_digest "$i" "$applied")
	[ -n "$d" ] || fail "node $i gave no digest at index $applied"
	lc_log "node $i digest at $applied: $d"
	digests="$digests $d"
done
[ "$(echo $digests | tr ' ' '\n' | sort -u | wc -l)" = 1 ] || fail "digests differ:$digests"

echo "VERDICT: PASS failover: $total acknowledged writes, 0 lost, no leader for ${no_leader_ms} ms, first acknowledged write ${first_write_ms} ms after the kill, old leader rejoined, digests match at index $applied"
