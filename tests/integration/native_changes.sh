#!/usr/bin/env bash
# The change stream over the native protocol (ChangesRequest polled by the
# C client's lora_client_changes, through the shell's :changes) on three
# real nodes (127.0.203.1-3): a subscriber connected to the leader follows
# 60 writes (each with its request id) while the leader is killed -9 after
# the 20th; it goes on from another node, and sees every committed write
# exactly once, in log order; :changes FROM UNTIL ends by itself.
# Resuming from a bookmark the log has compacted away is refused with
# LORA_NOT_FOUND naming the checkpoint.
# Usage: native_changes.sh LORAD LORA
. "$(dirname "$0")/lib.sh"
it_setup 127.0.203 "$1"
LORA=$2
N_WRITES=60

# answers of at most 16 KiB (the test hook stands for the client's 64 MiB
# message limit, below)
export LORA_CDC_NATIVE_BYTES_TESTING=16384
it_start_all 3 "$(it_peers 3)" || it_done
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1))
G=$((F % 3 + 1))
it_query "$L" '{"query":"RETURN 1"}'
B0=$(it_field bookmark)

# the subscriber: the leader's address first, so that it polls the node
# about to be killed
"$LORA" -q -a "$IT_NET.$L:4748,$IT_NET.$F:4748,$IT_NET.$G:4748" \
	-c ":changes $B0" >"$IT_DIR/sub.out" 2>"$IT_DIR/sub.err" &
SUB=$!

# write K: retried with its request id until acknowledged (a retry of a
# write that did commit is answered from dedupe, not applied again)
write() {
	local k=$1 i l
	for i in $(seq 1 100); do
		for l in 1 2 3; do
			[ -f "$IT_DIR/n$l.pid" ] || continue
			it_query "$l" '{"query":"CREATE (:W {k: '"$k"'})","requestId":"w-'"$k"'"}'
			[ "$IT_STATUS" = 200 ] && return 0
		done
		sleep 0.1
	done
	return 1
}
for k in $(seq 1 $N_WRITES); do
	write "$k" || it_fail "write $k not acknowledged"
	if [ "$k" = 20 ]; then
		it_check "the subscriber saw the first writes from the leader" \
			it_wait 20 grep -q '"w-20"' "$IT_DIR/sub.out"
		it_log "killing leader $L"
		it_kill9 "$L"
	fi
done
B1=$(it_field bookmark)
it_query "$F" '{"query":"CREATE (:Other)"}'
it_check "the subscriber saw the last write" it_wait 30 grep -q "\"w-$N_WRITES\"" "$IT_DIR/sub.out"
kill "$SUB" 2>/dev/null
wait "$SUB" 2>/dev/null
once_each() {
	local k c
	for k in $(seq 1 $N_WRITES); do
		c=$(grep -c "\"w-$k\"" "$IT_DIR/sub.out")
		[ "$c" = 1 ] || { echo "w-$k seen $c times"; return 1; }
	done
}
it_check "every write seen exactly once" once_each
in_order() {
	grep -o '^{"index":[0-9]*' "$IT_DIR/sub.out" | cut -d: -f2 >"$IT_DIR/idx"
	sort -n -u "$IT_DIR/idx" | cmp -s - "$IT_DIR/idx"
}
it_check "events in log order, none twice" in_order
it_check "one event per write, plus the Other" test "$(grep -c '"index"' "$IT_DIR/sub.out")" = $((N_WRITES + 1))

# a stream that ends by itself at until
"$LORA" -q -a "$IT_NET.$G:4748" --route any -c ":changes $B0 $B1" >"$IT_DIR/w.out" 2>&1
it_check ":changes FROM UNTIL ends by itself with the $N_WRITES writes" \
	test "$(grep -c '"createNode"' "$IT_DIR/w.out")" = "$N_WRITES"

# an event larger than one answer carries: the events before it come in an
# answer of their own, then a clear error naming its index and the HTTP
# stream (the client retried the too-big answer until it gave up, and lost
# the events packed with it)
# (the first leader was killed above: through F)
it_query "$F" '{"query":"CREATE (:Small {s: 1})"}'
BS=$(it_field bookmark)
it_query "$F" '{"query":"UNWIND range(1, 400) AS i CREATE (:Big {i: i})"}'
BB=$(it_field bookmark)
big_refused() {
	"$LORA" -q -a "$IT_NET.$F:4748" --route any -c ":changes $((BS - 1)) $BB" >"$IT_DIR/big.out" 2>&1
	grep -q '"Small"' "$IT_DIR/big.out" &&
		grep -q "LORA_LIMIT.*change event at index $BB .*GET /changes" "$IT_DIR/big.out" ||
		{ head -c 600 "$IT_DIR/big.out"; return 1; }
}
it_check "an event over one answer: the ones before it, then LORA_LIMIT naming it" big_refused

# a bookmark the log no longer holds (node restarted keeping no log
# entries, then a checkpoint)
it_stop "$G"
it_launch "$G" "$(it_peers 3)" --log-keep-entries 0
it_wait_up "$G"
compacted() {
	it_post "$G" /admin/checkpoint '{}'
	"$LORA" -q -a "$IT_NET.$G:4748" --route any -c ":changes 0 5" >"$IT_DIR/c.out" 2>&1
	grep -q 'LORA_NOT_FOUND.*compacted into a checkpoint' "$IT_DIR/c.out"
}
it_check "a compacted bookmark: LORA_NOT_FOUND naming the checkpoint" it_wait 30 compacted
it_done
