#!/usr/bin/env bash
# deploy/drills/recovery.sh - recovery drill.
#
# On a three-node cluster of its own with small checkpoint settings:
#   1. stop a follower; write enough that the leader takes checkpoints and
#      drops the log the follower would need; restart it: it must catch up
#      from the leader's checkpoint;
#   2. wipe another follower's data directory and bring it back empty: it
#      must catch up the same way;
#   3. restart the whole cluster: everything acknowledged is still there;
#   4. take a backup (POST /admin/checkpoint {"backup": NAME}) and restore it
#      into a NEW cluster on other addresses: it holds every write
#      acknowledged before the backup.
# After each step every acknowledged write must be on every node exactly
# once and the digests must match. Prints a verdict line; exits 1 when
# anything acknowledged is lost, 2 on a setup failure.
#
# Environment (all optional):
#   LORAD, LORA_LOAD     binaries (default build/release/{node/lorad,client/lora-load})
#   DRILL_PREFIX         loopback prefix of the cluster (default 127.0.32)
#   DRILL_RESTORE_PREFIX prefix of the restored cluster (default 127.0.33)
#   DRILL_DIR            work directory (default: a new temp dir, removed at exit)
#   DRILL_WRITES         writes while the follower is down (default 1500)
#   DRILL_CHECKPOINT_ENTRIES / DRILL_LOG_KEEP  (default 200 / 50)
#   DRILL_SKIP_RESTORE=1 stop after step 3
#   DRILL_KEEP=1         keep the work directory (logs) afterwards
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/deploy/lib.sh"

LC_LORAD=${LORAD:-$root/build/release/node/lorad}
LOAD=${LORA_LOAD:-$root/build/release/client/lora-load}
PREFIX=${DRILL_PREFIX:-127.0.32}
RESTORE_PREFIX=${DRILL_RESTORE_PREFIX:-127.0.33}
WRITES=${DRILL_WRITES:-1500}
CKPT=${DRILL_CHECKPOINT_ENTRIES:-200}
KEEP=${DRILL_LOG_KEEP:-50}
LC_N=3
own_dir=0
if [ -z "${DRILL_DIR:-}" ]; then
	DRILL_DIR=$(mktemp -d /tmp/lora-recovery.XXXXXX)
	own_dir=1
fi
acked="$DRILL_DIR/acked.txt"
acked_backup="$DRILL_DIR/acked-before-backup.txt"

use_main() { LC_PREFIX=$PREFIX; LC_DIR=$DRILL_DIR/main; }
use_restored() { LC_PREFIX=$RESTORE_PREFIX; LC_DIR=$DRILL_DIR/restored; }

cleanup() {
	use_restored; lc_kill_all
	use_main; lc_kill_all
	if [ $own_dir = 1 ] && [ "${DRILL_KEEP:-0}" != 1 ]; then
		rm -rf "$DRILL_DIR"
	fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

fail() { lc_fail recovery "$@"; }

lc_need_binaries recovery "$LC_LORAD" "$LOAD"

# write COUNT PREFIX: acknowledged writes through the client library.
write() {
	"$LOAD" write -a "$(lc_clients)" --clients 4 --count $(($1 / 4)) \
		--acked "$acked" --label Drill --prefix "$2" |
		sed 's/^/    /'
	[ "${PIPESTATUS[0]}" -le 1 ] || fail "lora-load failed"
}

# check WHAT [ACKED_FILE]: converged, nothing lost on any node, digests match.
check() {
	local what=$1 file=${2:-$acked} applied i out d digests=""
	applied=$(lc_wait_converged 90) || fail "$what: nodes did not converge"
	for i in $(seq 1 "$LC_N"); do
		out=$("$LOAD" verify -a "$(lc_client "$i")" --acked "$file" --label Drill)
		[ $? = 0 ] || fail "$what: node $i: $out"
		d=$(lc_digest "$i" "$applied")
		[ -n "$d" ] || fail "$what: node $i gave no digest"
		digests="$digests $d"
	done
	[ "$(echo $digests | tr ' ' '\n' | sort -u | wc -l)" = 1 ] ||
		fail "$what: digests differ at $applied:$digests"
	lc_log "$what: OK, $(wc -l <"$file") acknowledged writes on all nodes, applied $applied, digests match"
}

start_all() {
	local i
	for i in 1 2 3; do lc_start "$i"; done
	for i in 1 2 3; do lc_wait_health "$i" 60 || fail "node $i did not start"; done
	lc_wait_leader 30 >/dev/null || fail "no leader elected"
}

follower_of() { # a live node that is not the leader
	local l=$1 i
	for i in 1 2 3; do
		[ "$i" != "$l" ] && lc_alive "$i" && { echo "$i"; return; }
	done
}

use_main
lc_log "recovery drill: nodes $LC_PREFIX.1-3, checkpoint every $CKPT entries, keep $KEEP; work dir $DRILL_DIR"
lc_write_configs "checkpoint_entries = $CKPT" "log_keep_entries = $KEEP" \
	"election_ms = 300" "heartbeat_ms = 50"
: >"$acked"
start_all
write 200 a

# 1. a follower misses more than the log keeps
leader=$(lc_leader)
f=$(follower_of "$leader")
lc_stop "$f"
lc_log "step 1: stopped follower node $f; writing $WRITES while it is down"
write "$WRITES" b
ck=$(lc_post "$leader" /admin/checkpoint '{}')
lc_log "checkpoint on leader node $leader: $ck"
lc_start "$f"
lc_wait_health "$f" 60 || fail "node $f did not restart"
check "step 1 (follower $f caught up after missing $WRITES writes)"
grep -i -m 3 'checkpoint\|snapshot' "$(lc_logfile "$f")" | sed 's/^/    node log: /'

# 2. a node comes back with an empty data directory
leader=$(lc_leader)
w=$(follower_of "$leader")
[ "$w" = "$f" ] && w=$(for i in 1 2 3; do [ "$i" != "$leader" ] && [ "$i" != "$f" ] && echo "$i"; done)
lc_stop "$w"
rm -rf "$(lc_datadir "$w")"
lc_log "step 2: stopped node $w and wiped its data directory"
write 200 c
lc_start "$w"
lc_wait_health "$w" 60 || fail "node $w did not start empty"
check "step 2 (node $w rebuilt from empty)"

# 3. full-cluster restart
lc_stop_all 20
lc_log "step 3: stopped all nodes; starting them again"
start_all
check "step 3 (full restart)"
write 100 d
check "step 3 (writes after the restart)"

kept=$(wc -l <"$acked")

# 4. backup and restore into a new cluster
if [ "${DRILL_SKIP_RESTORE:-0}" = 1 ]; then
	lc_stop_all 20
	echo "VERDICT: PASS recovery (steps 1-3; restore skipped by DRILL_SKIP_RESTORE): follower caught up after missing $WRITES writes, empty node rebuilt, full restart kept all $kept acknowledged writes"
	exit 0
fi
leader=$(lc_leader)
cp "$acked" "$acked_backup"
# a backup is named; the node writes it under its backup_dir and says where
resp=$(lc_post "$leader" /admin/checkpoint '{"backup": "drill-backup"}')
lc_log "step 4: backup on node $leader: $resp"
backup=$(echo "$resp" | lc_json_field backup)
backup_index=$(echo "$resp" | lc_json_field index)
[ -d "$backup" ] && [ -n "$backup_index" ] || fail "no backup at $backup"
write 100 e # after the backup: not expected in the restore
lc_stop_all 20

use_restored
lc_write_configs "checkpoint_entries = $CKPT" "log_keep_entries = $KEEP"
for i in 1 2 3; do
	# Restore: the backup becomes the state of every node of the new
	# cluster (docs/operations.md, "Backup and restore").
	mkdir -p "$(lc_datadir "$i")"
	cp -a "$backup" "$(lc_datadir "$i")/state"
done
lc_log "restoring the backup (index $backup_index) into a new cluster on $LC_PREFIX.1-3"
start_all
n=0
while [ "$(lc_applied 1)" -lt "$backup_index" ] 2>/dev/null && [ $n -lt 50 ]; do
	sleep 0.2
	n=$((n + 1))
done
a=$(lc_applied 1)
[ "${a:-0}" -ge "$backup_index" ] 2>/dev/null ||
	fail "step 4: restored node 1 reports applied index ${a:-none}, below the backup's $backup_index: lorad did not take the backup as its starting state"
check "step 4 (restored cluster)" "$acked_backup"
# The restored cluster must also take new writes (and not skip them as
# already applied).
acked="$DRILL_DIR/acked-restored.txt"
cp "$acked_backup" "$acked"
write 100 f
check "step 4 (writes on the restored cluster)"

echo "VERDICT: PASS recovery: follower caught up after missing $WRITES writes, empty node rebuilt, full restart kept all $kept acknowledged writes, backup (index $backup_index) restored into a new cluster with all $(wc -l <"$acked_backup") writes acknowledged before it, and it took $(($(wc -l <"$acked") - $(wc -l <"$acked_backup"))) new writes"
