#!/usr/bin/env bash
# A crash right after the raft log write that starts a term (one real
# lorad on 127.1.170.1). With LORA_TEST_PERSIST_CRASH=1 the node _exit()s
# (86) right after the synced write that carries a Ready's entries when
# that Ready changes the term or vote: a single node electing itself
# writes its no-op entry there. Entry and term must reach the disk in one
# write. When the entry went first and the hard state after it, a kill in
# between left an entry of a term the hard state had not reached, and the
# next start refused the log ("cannot start: raft: entry 1 has term 1"), as
# integration_state_behind_log once did under load ("entry 10 has term 3").
#  1. a new node crashes there at its first election; restarted, it comes
#     up, leads and takes 6 writes;
#  2. kill -9, restart with the hook: it crashes at its next election (a
#     later term, over a log with data); restarted: all 6 nodes, and a
#     7th write is accepted;
#  3. LORA_TEST_PERSIST_CRASH=2 leaves the entries alone on disk, as the
#     old two writes did: the next start repairs the stored term (and
#     says so) instead of refusing; all 7 nodes, an 8th write accepted.
. "$(dirname "$0")/lib.sh"
it_setup 127.1.170 "$1"
P=$(it_peers 1)

count() {
	it_query 1 '{"query":"MATCH (n:W) RETURN count(n) AS c","format":"rowArrays"}'
	grep -q "\"rows\":\[\[$1\]\]" <<<"$IT_BODY"
}
gone() { ! kill -0 "$(cat "$IT_DIR/n1.pid")" 2>/dev/null; }
up_or_gone() { gone || curl -s -m 1 "http://$IT_NET.1:4747/health" | grep -q ok; }
started() { it_wait 60 up_or_gone && ! gone; }
no_refusal() { ! grep -q "cannot start" "$IT_DIR/n1.log"; }
write() { it_post_leader 1 /query "{\"query\":\"CREATE (:W {k: $1})\"}"; }
writes6() { for k in 1 2 3 4 5 6; do write "$k" || return 1; done; }

# crash_and_restart ROUND MODE: the node crashes at its election's log
# write (LORA_TEST_PERSIST_CRASH=MODE), then starts again without it.
crash_and_restart() {
	LORA_TEST_PERSIST_CRASH=$2 it_launch 1 "$P"
	it_exit_code 1
	it_check "round $1: killed right after its election's log write (exit $RC)" \
		[ "$RC" = 86 ]
	it_launch 1 "$P"
	if ! started; then
		it_fail "round $1: the node does not start after that crash"
		grep "cannot start" "$IT_DIR/n1.log"
		it_done
	fi
	it_check "round $1: the start did not refuse the log" no_refusal
}

crash_and_restart 1 1
it_check "round 1: 6 writes accepted" writes6
it_check "round 1: all 6 nodes" count 6
it_kill9 1
crash_and_restart 2 1
it_check "round 2: all 6 acknowledged nodes are back" count 6
it_check "round 2: a 7th write is accepted" write 7
it_check "round 2: 7 nodes" count 7
it_kill9 1
crash_and_restart 3 2
it_check "round 3: the start repaired the stored term and said so" \
	grep -q "the raft log holds entries of term .* but the stored term is" \
	"$IT_DIR/n1.log"
it_check "round 3: all 7 acknowledged nodes are back" count 7
it_check "round 3: an 8th write is accepted" write 8
it_check "round 3: 8 nodes" count 8
it_done
