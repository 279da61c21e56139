#!/usr/bin/env bash
# A Bolt client of our own (bolt_client.c) on three real nodes
# (127.0.221.1-3): against the leader, the handshake (5.4, 4.4, 5.2, 3.0
# refused), PackStream round trips of every value type, RUN / PULL n /
# has_more / DISCARD, BEGIN / COMMIT / ROLLBACK, a syntax error, IGNORED,
# RESET, and ROUTE's table naming the leader as the writer; against a
# follower, a forwarded write and its bookmark, a write transaction begun
# there and run on the leader (own writes, ROLLBACK, a failed statement,
# COMMIT seen on the follower, the leader and the third node), a read
# transaction, ROUTE. Clients that leave with a result open (socket
# closed; GOODBYE) are counted in lora_statements_client_gone_total{api="bolt"}
# and their statements freed. Follower F restarted with a 3 s transaction
# life (the test hook LORA_TX_LIFE_MS_TESTING, when built with the hooks):
# a read transaction kept busy past it ends with TransactionTimedOut.
# Usage: bolt_client.sh LORAD BOLT_CLIENT
. "$(dirname "$0")/lib.sh"
it_setup 127.0.221 "$1"
BC=$2

it_start_all 3 "$(it_peers 3)" || it_done
L=$(it_leader 1)
it_check "a leader" test -n "$L"
F=$((L % 3 + 1))
it_check "the Bolt client's checks against leader $L" \
	"$BC" "$IT_NET.$L" 7687 "$IT_NET.$L"
# (ROUTE lists a member once it has gossiped: the follower run may be
# repeated until it does; each run is idempotent)
on_follower() { "$BC" "$IT_NET.$F" 7687 "$IT_NET.$L" follower >"$IT_DIR/f.out" 2>&1; }
it_check "the Bolt client's follower checks against follower $F" it_wait 20 on_follower
cat "$IT_DIR/f.out"
# the write transaction committed through the follower, on the third node
T=$((F % 3 + 1))
third_sees() {
	it_query "$T" '{"format":"rowArrays","query":"MATCH (t:BFT {k: 3, seen: true}) RETURN count(t) AS c"}' &&
		echo "$IT_BODY" | grep -q '"rows":\[\[1\]\]'
}
it_check "the follower's transaction is on node $T too" it_wait 20 third_sees

# clients that leave with a result open
metric() { # metric NODE NAME -> its value (0 when absent)
	curl -s -m 5 "$IT_SCHEME://$IT_NET.$1:4747/metrics" |
		awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}
GONE='lora_statements_client_gone_total{api="bolt"}'
none_open() { [ "$(metric "$L" lora_statements_open)" = 0 ]; }
it_check "no statement open on the leader" it_wait 20 none_open
G0=$(metric "$L" "$GONE")
it_check "two sessions leave a result open" "$BC" "$IT_NET.$L" 7687 "$IT_NET.$L" gone
gone_counted() { [ "$(metric "$L" "$GONE")" = $((G0 + 2)) ] && none_open; }
it_check "both counted as gone (bolt), their statements freed" it_wait 20 gone_counted
it_log "$GONE went from $G0 to $(metric "$L" "$GONE")"

# a read transaction's life (as HTTP's): follower F with a 3 s life
it_stop "$F"
LORA_TX_LIFE_MS_TESTING=3000 it_start "$F" "$(it_peers 3)"
if grep -q "test hook LORA_TX_LIFE_MS_TESTING=3000 is set and honoured" \
	"$IT_DIR/n$F.log"; then
	it_check "a busy read transaction on follower $F ends at its life" \
		"$BC" "$IT_NET.$F" 7687 "$IT_NET.$L" life 3000
else
	it_log "skipped the read transaction's life: built without LORA_TEST_HOOKS"
fi
it_done
