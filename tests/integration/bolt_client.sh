#!/usr/bin/env bash
# A Bolt client of our own (bolt_client.c) on three real nodes
# (127.0.221.1-3): against the leader, the handshake (5.4, 4.4, 5.2, 3.0
# refused), PackStream round trips of every value type, RUN / PULL n /
# has_more / DISCARD, BEGIN / COMMIT / ROLLBACK, a syntax error, IGNORED,
# RESET, and ROUTE's table naming the leader as the writer; against a
# follower, a forwarded write and its bookmark, a write transaction begun
# there and run on the leader (own writes, ROLLBACK, a failed statement,
# COMMIT seen on the follower, the leader and the third node), a read
# transaction, ROUTE.
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
it_done
