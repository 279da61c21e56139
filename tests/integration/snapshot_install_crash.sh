#!/usr/bin/env bash
# A follower killed at each step of installing a snapshot its leader sent
# (three real lorad processes on 127.2.11.1-3, log_keep_entries 0 so a
# checkpoint drops the leader's log and a follower that missed writes
# needs the snapshot). For each install step k (LORA_TEST_INSTALL_CRASH=k,
# storage/install.c and node/snapshot.c: 1 staged copy fsynced, 2 marker
# written, 3 state/ moved aside, 4 staged copy moved in, 5 verified, 6 raft
# log dropped and snapshot meta saved, 7 state.old removed):
#   - follower F is stopped, the leader takes 5 acknowledged writes and a
#     checkpoint, F is started with the crash point and exits there (86);
#   - F restarts without it: its restored hard state, log and state agree
#     (the log starts at or below the applied index, the commit index is
#     at least the applied one, the term is the cluster's; from step 2 on,
#     when the marker is down, the start finished the install: log and
#     state at the checkpoint sent; at step 1 the old state stayed), no
#     install marker or state.old is left, and its digest at the leader's
#     last bookmark equals the leader's, with every acknowledged write
#     counted;
# then, with the other follower stopped, F's acknowledgement is needed to
# commit: 5 more writes commit and the two nodes agree.
. "$(dirname "$0")/lib.sh"
it_setup 127.2.11 "$1"
P=$(it_peers 3)
FLAGS="--log-keep-entries 0 --checkpoint-entries 1000000"
it_start_all 3 "$P" $FLAGS || it_done
it_need_leader 1
L=$IT_LEADER
F=$((L % 3 + 1))
G=$((F % 3 + 1))
ACKED=0

# writes N: N writes through the leader, each acknowledged (200)
writes() {
	local k
	for k in $(seq 1 "$1"); do
		it_post_leader "$L" /query '{"query":"CREATE (:Acked)"}' || return 1
		ACKED=$((ACKED + 1))
		BM=$(it_field bookmark)
	done
}
# count_on ID N: node ID counts N acknowledged writes
count_on() {
	it_query "$1" '{"query":"MATCH (a:Acked) RETURN count(a) AS c","format":"rowArrays"}'
	grep -q "\"rows\":\[\[$2\]\]" <<<"$IT_BODY"
}
same_as_leader() { # same_as_leader ID: digests at $BM
	local dl df
	dl=$(it_digest "$L" "$BM")
	df=$(it_digest "$1" "$BM")
	it_same "$dl" "$df"
}
# restored_agrees K: F's last "restored:" line, after its restart, has a
# log starting at or below the applied index and a commit index at or
# above it; and, when the crash came after the install marker (K >= 2),
# the install was finished at the start: log and state both at the
# checkpoint CK the leader sent; before it (K = 1), the old state stayed
restored_agrees() {
	local line t s last c a
	line=$(tail -n +"$FSTART" "$IT_DIR/n$F.log" | grep -o 'restored: term [0-9]*, log ([0-9]*, [0-9]*\], commit [0-9]*, applied [0-9]*' | tail -1)
	read -r t s last c a < <(tr -c '0-9\n' ' ' <<<"$line")
	it_log "node $F $line"
	[ -n "${a:-}" ] && [ "$s" -le "$a" ] && [ "$a" -le "$c" ] &&
		[ "$c" -le "$last" ] && [ "$t" -ge 1 ] || return 1
	if [ "$1" -ge 2 ]; then
		[ "$s" = "$CK" ] && [ "$a" = "$CK" ]
	else
		[ "$a" -lt "$CK" ]
	fi
}
term_of() {
	it_get "$1" /cluster/status
	grep -o '"term":[0-9]*' <<<"$IT_BODY" | head -1 | cut -d: -f2
}
same_term() { it_same "$(term_of "$L")" "$(term_of "$F")"; }
clean() { [ ! -e "$IT_DIR/n$F/INSTALLING" ] && [ ! -e "$IT_DIR/n$F/state.old" ]; }

it_check "5 writes acknowledged" writes 5
for k in ${SIC_STEPS:-1 2 3 4 5 6 7}; do
	it_kill9 "$F"
	it_check "step $k: 5 writes acknowledged without node $F" writes 5
	it_post "$L" /admin/checkpoint '{}'
	CK=$(grep -o '"index":[0-9]*' <<<"$IT_BODY" | cut -d: -f2)
	it_check "step $k: the leader checkpoints at $CK (its log dropped)" it_status_is 200
	LORA_TEST_INSTALL_CRASH=$k it_launch "$F" "$P" $FLAGS
	it_exit_code "$F"
	it_check "step $k: node $F dies installing the leader's snapshot (exit $RC)" [ "$RC" = 86 ]
	FSTART=$(($(wc -l <"$IT_DIR/n$F.log") + 1))
	it_start "$F" "$P" $FLAGS || it_done
	it_check "step $k: restarted, hard state, log and state agree" restored_agrees "$k"
	# from step 2 start-up finished the install: nothing may be left at
	# once. At step 1 the old state stayed, the leader sends the snapshot
	# again and node $F installs it (its marker and state.old exist while
	# it does): a leftover is one still there once it caught up.
	[ "$k" -ge 2 ] && it_check "step $k: no install marker or state.old left after start-up" clean
	it_check "step $k: node $F's digest equals the leader's" it_wait 60 same_as_leader "$F"
	it_check "step $k: no install marker or state.old left" it_wait 10 clean
	it_check "step $k: node $F counts all $ACKED acknowledged writes" count_on "$F" "$ACKED"
	it_check "step $k: node $F is in the leader's term" it_wait 10 same_term
done

# F's own log and hard state now carry the commits: without G, F must
# acknowledge every write
it_kill9 "$G"
it_check "without node $G, 5 writes need node $F and commit" writes 5
it_check "node $F's digest equals the leader's" it_wait 60 same_as_leader "$F"
it_check "and it counts all $ACKED writes" count_on "$F" "$ACKED"
it_done
