#!/usr/bin/env bash
# A state/ behind the node's own raft log (one real lorad on 127.0.69.1,
# log_keep_entries 0 so a checkpoint drops the whole log):
#  1. the reviewer's reproduction: 6 writes, a checkpoint, kill -9,
#     mv state state.old, restart. The node must not come up empty: it
#     restores its newest checkpoint, keeps state.old (renamed, reported),
#     and answers all 6 nodes.
#  2. the restore killed at each install step (LORA_TEST_INSTALL_CRASH=k),
#     then a plain restart: still all 6 nodes.
#  3. no checkpoint covers the log: the node refuses to start, naming the
#     checkpoint to put back; once it is back, it starts with all 6 nodes.
. "$(dirname "$0")/lib.sh"
it_setup 127.0.69 "$1"
P=$(it_peers 1)
D="$IT_DIR/n1"
FLAGS="--log-keep-entries 0 --checkpoint-entries 1000000"

count6() {
	it_query 1 '{"query":"MATCH (n) RETURN count(n) AS c","format":"rowArrays"}'
	grep -q '"rows":\[\[6\]\]' <<<"$IT_BODY"
}

it_start 1 "$P" $FLAGS || it_done
for k in 1 2 3 4 5 6; do
	it_post_leader 1 /query "{\"query\":\"CREATE (:W {k: $k})\"}" || it_fail "write $k"
done
it_post 1 /admin/checkpoint '{}'
CK=$(grep -o '"index":[0-9]*' <<<"$IT_BODY" | cut -d: -f2)
it_check "checkpoint taken at index $CK" [ "${CK:-0}" -ge 7 ]
it_kill9 1

# -- 1. the reproduction
mv "$D/state" "$D/state.old"
it_start 1 "$P" $FLAGS || it_done
it_check "all 6 acknowledged nodes are back" count6
it_check "the node says it restored checkpoint $CK" \
	grep -q "restored checkpoint .*$(printf %020d "$CK") (applied index $CK)" "$IT_DIR/n1.log"
kept() { [ -d "$D/state.old-kept-1" ] && [ ! -e "$D/state.old" ]; }
it_check "state.old is kept (as state.old-kept-1), not deleted" kept
it_check "the kept state.old is reported" grep -q "state.old-kept-1, not used" "$IT_DIR/n1.log"
it_kill9 1

clean() { [ ! -e "$D/INSTALLING" ] && [ ! -e "$D/state.old" ]; }
refused() { [ "$RC" != running ] && [ "$RC" != 0 ]; }
# -- 2. the restore killed at every install step, then a plain restart
for k in 1 2 3 4 5 7; do
	mkdir -p "$IT_DIR/moved"
	mv "$D/state" "$IT_DIR/moved/state-$k"
	LORA_TEST_INSTALL_CRASH=$k it_launch 1 "$P" $FLAGS
	it_exit_code 1
	it_check "restore crashes at install step $k (exit $RC)" [ "$RC" = 86 ]
	it_start 1 "$P" $FLAGS || it_done
	it_check "after a crash at step $k and a restart: all 6 nodes" count6
	it_check "after a crash at step $k: no marker or state.old left" clean
	it_kill9 1
done

# -- 3. nothing covers the log: refuse, name the way back
mkdir -p "$IT_DIR/saved"
mv "$D/checkpoints/"* "$IT_DIR/saved/"
mv "$D/state" "$IT_DIR/moved/state-refuse"
it_launch 1 "$P" $FLAGS
it_exit_code 1
it_check "without a covering checkpoint the node refuses to start (exit $RC)" refused
it_check "the refusal names the missing index and the recovery steps" \
	grep -q "no local checkpoint covers them.*checkpoint at index $CK or later.*/checkpoints/.*new member with --join" "$IT_DIR/n1.log"
it_check "the refusal is the start-up error" grep -q "cannot start: state/ is missing but the raft log starts after index $CK: refusing" "$IT_DIR/n1.log"
it_check "the refusal created no empty state" [ ! -e "$D/state" ]
mv "$IT_DIR/saved/"* "$D/checkpoints/"
it_start 1 "$P" $FLAGS || it_done
it_check "with the checkpoint put back: all 6 nodes" count6
it_done
